//! Hostile guest: never reads the request body and answers 200 `ignored` at
//! once. gust is expected to deliver the response anyway and to cope with the
//! unread body (discard it or close the connection) without hanging or
//! buffering it without bound.

use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct IgnoreBody;

impl wasi::exports::http::incoming_handler::Guest for IgnoreBody {
    fn handle(_request: IncomingRequest, out: ResponseOutparam) {
        let headers = Fields::from_list(&[("content-type".to_owned(), b"text/plain".to_vec())])
            .expect("static header is valid");
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("body is taken once");
        ResponseOutparam::set(out, Ok(response));
        {
            let stream = body.write().expect("stream is taken once");
            stream
                .blocking_write_and_flush(b"ignored")
                .expect("the client is reading");
        }
        OutgoingBody::finish(body, None).expect("body finishes");
    }
}

wasi::http::proxy::export!(IgnoreBody);
