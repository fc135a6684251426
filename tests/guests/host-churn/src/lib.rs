//! Hostile guest: makes the host work and hold memory for it, through host
//! calls alone (its own linear memory stays small). One mode per request,
//! from the query:
//!
//! - `?random=N&times=K`: `get-random-bytes(N)`, K times (default once;
//!   `K=0` loops until stopped).
//! - `?u64=K`: K calls of `get-random-u64`, the cheapest host call (`K=0`
//!   loops until stopped).
//! - `?fields=K`: K rounds of creating a `fields`, appending one header and
//!   dropping it (3 host calls a round); `K=0` loops until stopped.
//! - `?hold=N&size=S`: creates N `fields` of one S-byte value each and keeps
//!   them all, then answers.
//! - `?read`: reads the request body in whatever chunks the host gives and
//!   answers with the number of chunks and bytes.
//!
//! Each answers `200` with what it did, if it gets that far.

use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct HostChurn;

fn param(query: &str, name: &str) -> Option<u64> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        if k == name { v.parse().ok().or(Some(0)) } else { None }
    })
}

fn answer(out: ResponseOutparam, text: &str) {
    let response = OutgoingResponse::new(Fields::new());
    let body = response.body().expect("a new response has a body");
    ResponseOutparam::set(out, Ok(response));
    let stream = body.write().expect("a new body has a stream");
    stream
        .blocking_write_and_flush(text.as_bytes())
        .expect("writing the answer");
    drop(stream);
    OutgoingBody::finish(body, None).expect("finishing the body");
}

impl wasi::exports::http::incoming_handler::Guest for HostChurn {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let query = request
            .path_with_query()
            .and_then(|p| p.split_once('?').map(|(_, q)| q.to_owned()))
            .unwrap_or_default();
        if let Some(len) = param(&query, "random") {
            let times = param(&query, "times").unwrap_or(1);
            let mut sum = 0u64;
            let mut done = 0u64;
            while times == 0 || done < times {
                let bytes = wasi::random::random::get_random_bytes(len);
                // One byte read, so the call is not optimised away.
                sum = sum.wrapping_add(bytes.first().copied().map_or(0, u64::from));
                done += 1;
            }
            answer(out, &format!("{times} x {len} random bytes, sum {sum}\n"));
        } else if let Some(calls) = param(&query, "u64") {
            let mut x = 0u64;
            let mut done = 0u64;
            while calls == 0 || done < calls {
                x = x.wrapping_add(wasi::random::random::get_random_u64());
                done += 1;
            }
            answer(out, &format!("{done} get-random-u64 calls, sum {x}\n"));
        } else if let Some(rounds) = param(&query, "fields") {
            let mut done = 0u64;
            while rounds == 0 || done < rounds {
                let fields = Fields::new();
                let _ = fields.append("x-churn", b"1");
                drop(fields);
                done += 1;
            }
            answer(out, &format!("{done} fields rounds\n"));
        } else if let Some(count) = param(&query, "hold") {
            let size = param(&query, "size").unwrap_or(1024) as usize;
            let value = vec![b'a'; size];
            let mut held = Vec::new();
            for _ in 0..count {
                let fields = Fields::new();
                let _ = fields.append("x-hold", &value);
                held.push(fields);
            }
            answer(out, &format!("holding {} fields of {size} bytes\n", held.len()));
        } else if param(&query, "read").is_some() {
            let body = request.consume().expect("the body, once");
            let stream = body.stream().expect("the body's stream, once");
            let (mut chunks, mut bytes) = (0u64, 0u64);
            while let Ok(chunk) = stream.blocking_read(1 << 16) {
                chunks += 1;
                bytes += chunk.len() as u64;
            }
            answer(out, &format!("{chunks} chunks, {bytes} bytes\n"));
        } else {
            answer(out, "no mode\n");
        }
    }
}

wasi::http::proxy::export!(HostChurn);
