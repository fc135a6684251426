//! Hostile guest: answers 200 with a streamed body (no content-length),
//! writes and flushes three 1 KiB chunks of `x`, then traps before finishing
//! the body. The status line is already out, so gust cannot answer 500: the
//! client must see the body cut short (an aborted stream), never a complete
//! response.

use wasi::http::types::{Fields, IncomingRequest, OutgoingResponse, ResponseOutparam};

struct StreamTrap;

impl wasi::exports::http::incoming_handler::Guest for StreamTrap {
    fn handle(_request: IncomingRequest, out: ResponseOutparam) {
        let headers = Fields::from_list(&[("content-type".to_owned(), b"text/plain".to_vec())])
            .expect("static header is valid");
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("body is taken once");
        ResponseOutparam::set(out, Ok(response));

        let stream = body.write().expect("stream is taken once");
        let chunk = [b'x'; 1024];
        for _ in 0..3 {
            stream
                .blocking_write_and_flush(&chunk)
                .expect("the client is reading");
        }
        panic!("trapping in the middle of the body on purpose");
    }
}

wasi::http::proxy::export!(StreamTrap);
