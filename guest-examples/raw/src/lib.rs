//! A `wasi:http/proxy` component that uses only the `wasi` crate, the way a
//! component written for any other runtime would. It answers with its method
//! and path.

use wasi::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Raw;

impl wasi::exports::http::incoming_handler::Guest for Raw {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let method = match request.method() {
            Method::Get => "GET".to_owned(),
            Method::Post => "POST".to_owned(),
            Method::Other(m) => m,
            other => format!("{other:?}").to_uppercase(),
        };
        let path = request.path_with_query().unwrap_or_default();
        let message = format!("raw wasi:http component saw {method} {path}\n");

        let headers = Fields::from_list(&[("content-type".to_owned(), b"text/plain".to_vec())])
            .expect("static header is valid");
        let response = OutgoingResponse::new(headers);
        response
            .set_status_code(200)
            .expect("200 is a valid status");
        let body = response.body().expect("body is taken once");
        ResponseOutparam::set(out, Ok(response));
        {
            let stream = body.write().expect("stream is taken once");
            stream
                .blocking_write_and_flush(message.as_bytes())
                .expect("message fits one write");
        }
        OutgoingBody::finish(body, None).expect("body finishes");
    }
}

wasi::http::proxy::export!(Raw);
