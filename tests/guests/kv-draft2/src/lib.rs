//! Test guest importing `wasi:keyvalue@0.2.0-draft2` (Spin 3 and later),
//! written with wit-bindgen against the standard WIT. One endpoint, driven
//! by the query: `?op=OP&store=NAME&key=K` (or `keylen=N`), values from
//! the body, `value=V` or `len=N`:
//!
//! - `get` (404 if missing), `set`, `delete`, `exists`, `incr&by=N`
//! - `list`: every key, through the cursors (`N keys` then the sorted keys)
//! - `batch&n=N`: set-many, get-many, delete-many of N keys, checked
//! - `open-many&n=N&keep=1`: N opens (kept open with `keep=1`)
//! - `cas`: a compare-and-swap that loses to a write made meanwhile, then
//!   succeeds with the fresh handle it got back
//! - `cas-incr`: adds 1 to the decimal number at the key with
//!   compare-and-swap, retrying until a swap wins (answers the number and
//!   the retries)
//! - `bench&what=get|set|incr&n=N`: N operations on one bucket
//!
//! Host errors answer 403 (`access-denied`), 404 (`no-such-store`), 503
//! (`other` from a backend that is unavailable) or 500 (any other
//! `other`), with the error in the body.

wit_bindgen::generate!({
    inline: r#"
        package test:kv-draft2;
        world kv-draft2 {
            include wasi:http/proxy@0.2.12;
            import wasi:keyvalue/store@0.2.0-draft2;
            import wasi:keyvalue/atomics@0.2.0-draft2;
            import wasi:keyvalue/batch@0.2.0-draft2;
        }
    "#,
    path: "../../../wit",
    generate_all,
});

#[path = "../../kv-draft/src/common.rs"]
mod common;

use common::{Query, read_body, respond};
use exports::wasi::http::incoming_handler::Guest;
use wasi::http::types::{IncomingRequest, ResponseOutparam};
use wasi::keyvalue0_2_0_draft2::{atomics, batch, store};

struct KvDraft2;

type Answer = (u16, Vec<u8>);

fn error(e: store::Error) -> Answer {
    match e {
        store::Error::NoSuchStore => (404, b"no-such-store".to_vec()),
        store::Error::AccessDenied => (403, b"access-denied".to_vec()),
        store::Error::Other(s) if s.contains("unavailable") => {
            (503, format!("other: {s}").into_bytes())
        }
        store::Error::Other(s) => (500, format!("other: {s}").into_bytes()),
    }
}

fn cas_error(e: atomics::CasError) -> store::Error {
    match e {
        atomics::CasError::StoreError(e) => e,
        atomics::CasError::CasFailed(_) => store::Error::Other("unexpected cas-failed".into()),
    }
}

fn text(s: impl Into<String>) -> Answer {
    (200, s.into().into_bytes())
}

fn run(query: &Query, body: Vec<u8>) -> Result<Answer, store::Error> {
    let op = query.get("op").unwrap_or("get");
    let name = query.get("store").unwrap_or("default");
    if op == "open-many" {
        let n = query.num("n", 10_000);
        let keep = query.get("keep") == Some("1");
        let mut kept = Vec::new();
        let mut opened = 0;
        let mut first_error = String::from("none");
        for _ in 0..n {
            match store::open(name) {
                Ok(bucket) => {
                    opened += 1;
                    if keep {
                        kept.push(bucket);
                    }
                }
                Err(e) => {
                    first_error = format!("{e:?}");
                    break;
                }
            }
        }
        return Ok(text(format!(
            "opened {opened} of {n}; error: {first_error}"
        )));
    }
    let bucket = store::open(name)?;
    let key = query.key();
    Ok(match op {
        "get" => match bucket.get(&key)? {
            Some(value) => (200, value),
            None => (404, b"missing".to_vec()),
        },
        "set" => {
            bucket.set(&key, &query.value(body))?;
            text("stored")
        }
        "delete" => {
            bucket.delete(&key)?;
            text("deleted")
        }
        "exists" => text(bucket.exists(&key)?.to_string()),
        "incr" => {
            let by = query.get("by").and_then(|v| v.parse().ok()).unwrap_or(1);
            text(atomics::increment(&bucket, &key, by)?.to_string())
        }
        "list" => {
            let mut keys = Vec::new();
            let mut cursor = None;
            loop {
                let page = bucket.list_keys(cursor.as_deref())?;
                keys.extend(page.keys);
                match page.cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            keys.sort();
            text(format!("{} keys\n{}", keys.len(), keys.join("\n")))
        }
        "batch" => {
            let n = query.num("n", 10);
            let keys: Vec<String> = (0..n).map(|i| format!("{key}.{i}")).collect();
            let pairs: Vec<(String, Vec<u8>)> = keys
                .iter()
                .map(|k| (k.clone(), format!("v:{k}").into_bytes()))
                .collect();
            batch::set_many(&bucket, &pairs)?;
            let got = batch::get_many(&bucket, &keys)?;
            let all_back = got
                .iter()
                .zip(&pairs)
                .all(|((gk, gv), (k, v))| gk == k && gv.as_ref() == Some(v));
            let half: Vec<String> = keys.iter().step_by(2).cloned().collect();
            batch::delete_many(&bucket, &half)?;
            let left = batch::get_many(&bucket, &keys)?
                .iter()
                .filter(|(_, v)| v.is_some())
                .count();
            text(format!("set {n}, read back {all_back}, {left} left"))
        }
        "cas" => {
            bucket.set(&key, b"one")?;
            let cas = atomics::Cas::new(&bucket, &key)?;
            let seen = cas.current()?;
            // Another writer gets in between.
            bucket.set(&key, b"two")?;
            let fresh = match atomics::swap(cas, b"three") {
                Ok(()) => return Ok((409, b"swap won over a newer write".to_vec())),
                Err(atomics::CasError::StoreError(e)) => return Err(e),
                Err(atomics::CasError::CasFailed(fresh)) => fresh,
            };
            let fresh_seen = fresh.current()?;
            atomics::swap(fresh, b"four").map_err(cas_error)?;
            let last = bucket.get(&key)?;
            let show =
                |v: Option<Vec<u8>>| String::from_utf8_lossy(&v.unwrap_or_default()).into_owned();
            text(format!(
                "first saw {}, conflict saw {}, now {}",
                show(seen),
                show(fresh_seen),
                show(last)
            ))
        }
        "cas-incr" => {
            let mut cas = atomics::Cas::new(&bucket, &key)?;
            let mut retries = 0;
            loop {
                let current = cas.current()?;
                let n: i64 = current
                    .as_deref()
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                match atomics::swap(cas, (n + 1).to_string().as_bytes()) {
                    Ok(()) => break text(format!("{} after {retries} retries", n + 1)),
                    Err(atomics::CasError::CasFailed(fresh)) => {
                        retries += 1;
                        cas = fresh;
                    }
                    Err(atomics::CasError::StoreError(e)) => return Err(e),
                }
            }
        }
        "bench" => {
            let n = query.num("n", 100);
            let what = query.get("what").unwrap_or("get");
            for i in 0..n {
                match what {
                    "set" => bucket.set(&format!("{key}.{}", i % 64), b"0123456789abcdef")?,
                    "incr" => drop(atomics::increment(&bucket, &key, 1)?),
                    _ => drop(bucket.get(&key)?),
                }
            }
            text(format!("{n} x {what}"))
        }
        _ => (400, b"unknown op".to_vec()),
    })
}

impl Guest for KvDraft2 {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let query = Query::of(&request);
        let body = read_body(&request);
        let (status, answer) = run(&query, body).unwrap_or_else(error);
        respond(out, status, &answer);
    }
}

export!(KvDraft2);
