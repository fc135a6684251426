//! Hostile guest: creates `wasi:http` `fields` resources in a loop and leaks
//! every one, never answering. Each handle is an entry in the host's resource
//! table, so this grows host memory rather than guest memory. gust is
//! expected to cap the table, trap the instance and answer 500.

use wasi::http::types::{Fields, IncomingRequest, ResponseOutparam};

struct HandleLeak;

impl wasi::exports::http::incoming_handler::Guest for HandleLeak {
    fn handle(_request: IncomingRequest, _out: ResponseOutparam) {
        loop {
            std::mem::forget(Fields::new());
        }
    }
}

wasi::http::proxy::export!(HandleLeak);
