//! Counts the requests its instance has served: shows whether an instance
//! was reused (`reuse` > 1) or fresh (always `1`).
//!
//! - `/.../trap` panics after counting, so that instance must not be reused;
//! - `/.../leak` leaks 100 `wasi:http` `fields` handles (host resources),
//!   more than an idle instance may hold, so that instance must be retired.

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
        for _ in 0..100 {
            std::mem::forget(wasi::http::types::Fields::new());
        }
    }
    format!("served {served}\n")
}

gust_sdk::export!(counter);
