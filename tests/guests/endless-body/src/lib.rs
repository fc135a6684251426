//! Hostile guest: answers 200 with no content-length and then streams 64 KiB
//! chunks of `x` forever, stopping only when a write fails (the host closed
//! the body). gust is expected to end it: at the wall-clock deadline, when
//! the client goes away, or at a response size cap, and to cut the stream
//! rather than let it look complete.

use std::io::Write as _;

use wasi::http::types::{Fields, IncomingRequest, OutgoingResponse, ResponseOutparam};

struct EndlessBody;

impl wasi::exports::http::incoming_handler::Guest for EndlessBody {
    fn handle(_request: IncomingRequest, out: ResponseOutparam) {
        let headers = Fields::from_list(&[(
            "content-type".to_owned(),
            b"application/octet-stream".to_vec(),
        )])
        .expect("static header is valid");
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("body is taken once");
        ResponseOutparam::set(out, Ok(response));

        let mut stream = body.write().expect("stream is taken once");
        let chunk = vec![b'x'; 64 * 1024];
        // `write_all` (std's, over `check-write` + `write`) waits for the host
        // to take each piece, since one blocking write is limited to 4 KiB.
        while stream.write_all(&chunk).is_ok() && stream.blocking_flush().is_ok() {}
        // The body is dropped without `finish`: the response is not complete.
    }
}

wasi::http::proxy::export!(EndlessBody);
