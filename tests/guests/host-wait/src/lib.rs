//! Hostile guest: blocks forever inside a host call (waiting on a monotonic
//! clock pollable ~584 years away) and never answers. No Wasm runs while it
//! waits, so fuel and epoch interruption never fire; gust is expected to stop
//! it at the function's wall-clock deadline (504) all the same.

use wasi::clocks::monotonic_clock::subscribe_duration;
use wasi::http::types::{IncomingRequest, ResponseOutparam};

struct HostWait;

impl wasi::exports::http::incoming_handler::Guest for HostWait {
    fn handle(_request: IncomingRequest, _out: ResponseOutparam) {
        // Should the host ever wake it up, wait again: never answer.
        loop {
            subscribe_duration(u64::MAX).block();
        }
    }
}

wasi::http::proxy::export!(HostWait);
