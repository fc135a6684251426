//! Counts the requests its instance has served: shows whether an instance
//! was reused (`reuse` > 1) or fresh (always `1`).
//!
//! - `/.../trap` panics after counting, so that instance must not be reused;
//! - `/.../leak` leaks a `wasi:http` `fields` handle (a host resource), so
//!   reusing that instance would let leaks pile up.

use std::sync::atomic::{AtomicU64, Ordering};

use gust_sdk::Request;

static SERVED: AtomicU64 = AtomicU64::new(0);

fn counter(req: Request) -> String {
    let served = SERVED.fetch_add(1, Ordering::Relaxed) + 1;
    let path = req.uri().path();
    if path.ends_with("/trap") {
        panic!("trapping after request {served} on purpose");
    }
    if path.ends_with("/leak") {
        std::mem::forget(wasi::http::types::Fields::new());
    }
    format!("served {served}\n")
}

gust_sdk::export!(counter);
