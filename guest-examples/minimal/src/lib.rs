//! The least a Rust `wasi:http/proxy` component can do and still answer:
//! it reads nothing from the request and writes a fixed body with one
//! non-blocking write. Built against the `wasi` crate alone, as `raw` is.
//!
//! It is the floor of the instantiation benchmarks (`benches/`,
//! `by_component` group): what one invocation costs in wasmtime when the
//! guest makes the fewest host calls a response needs.

use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Minimal;

impl wasi::exports::http::incoming_handler::Guest for Minimal {
    fn handle(_request: IncomingRequest, out: ResponseOutparam) {
        let response = OutgoingResponse::new(Fields::new());
        let Ok(body) = response.body() else { return };
        ResponseOutparam::set(out, Ok(response));
        if let Ok(stream) = body.write() {
            // 17 bytes fit the host's first write budget: no `check-write`.
            let _ = stream.write(b"Hello from gust!\n");
        }
        let _ = OutgoingBody::finish(body, None);
    }
}

wasi::http::proxy::export!(Minimal);
