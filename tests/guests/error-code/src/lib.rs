//! A guest that answers with a `wasi:http` error code instead of a
//! response, as a proxy does when its upstream fails: the host must turn it
//! into an HTTP error for the client and record it, and the instance has
//! done nothing wrong.

use wasi::http::types::{ErrorCode, IncomingRequest, ResponseOutparam};

struct ErrorCodeGuest;

impl wasi::exports::http::incoming_handler::Guest for ErrorCodeGuest {
    fn handle(_request: IncomingRequest, out: ResponseOutparam) {
        ResponseOutparam::set(
            out,
            Err(ErrorCode::InternalError(Some("deliberate".to_owned()))),
        );
    }
}

wasi::http::proxy::export!(ErrorCodeGuest);
