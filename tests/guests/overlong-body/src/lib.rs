//! Hostile guest: declares `content-length: 5`, then writes 21 bytes in one
//! write. The host takes the write (and only then reports that it passed
//! the declared length), but hyper sends just the declared 5 bytes: gust is
//! expected to bill those, not the 21 the guest wrote.

use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

/// 21 bytes, against a declared length of 5.
const BODY: &[u8] = b"hello, overlong body\n";

struct OverlongBody;

impl wasi::exports::http::incoming_handler::Guest for OverlongBody {
    fn handle(_request: IncomingRequest, out: ResponseOutparam) {
        let headers = Fields::from_list(&[
            ("content-type".to_owned(), b"text/plain".to_vec()),
            ("content-length".to_owned(), b"5".to_vec()),
        ])
        .expect("static headers are valid");
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("body is taken once");
        ResponseOutparam::set(out, Ok(response));
        {
            let stream = body.write().expect("stream is taken once");
            // Fails after the bytes were queued: they exceed the length.
            let _ = stream.blocking_write_and_flush(BODY);
        }
        let _ = OutgoingBody::finish(body, None);
    }
}

wasi::http::proxy::export!(OverlongBody);
