//! Does a known amount of work: `?n=N` rounds of an FNV-1a hash over a small
//! buffer. Fuel consumed grows linearly with `n`, which makes this the
//! reference workload for metering.

use gust_sdk::{Request, http};

fn work(req: Request) -> http::Response<String> {
    let n: u64 = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("n=")))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for round in 0..n {
        for byte in round.to_le_bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    http::Response::new(format!("{n} rounds: {hash:016x}\n"))
}

gust_sdk::export!(work);
