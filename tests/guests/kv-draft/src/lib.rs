//! Test guest importing `wasi:keyvalue@0.2.0-draft` (wasmtime, wasmCloud),
//! written with wit-bindgen against the standard WIT. One endpoint, driven
//! by the query: `?op=OP&store=NAME&key=K` (or `keylen=N`), values from
//! the body, `value=V` or `len=N`:
//!
//! - `get` (404 if missing), `set`, `delete`, `exists`, `incr&by=N`
//! - `list`: every key, through the cursors (`N keys` then the sorted keys)
//! - `batch&n=N`: set-many, get-many, delete-many of N keys, checked
//! - `open-many&n=N&keep=1`: N opens (kept open with `keep=1`)
//! - `bench&what=get|set|incr&n=N`: N operations on one bucket
//!
//! Host errors answer 403 (`access-denied`), 404 (`no-such-store`), 503
//! (`other` from a backend that is unavailable) or 500 (any other
//! `other`), with the error in the body.

wit_bindgen::generate!({
    inline: r#"
        package test:kv-draft;
        world kv-draft {
            include wasi:http/proxy@0.2.12;
            import wasi:keyvalue/store@0.2.0-draft;
            import wasi:keyvalue/atomics@0.2.0-draft;
            import wasi:keyvalue/batch@0.2.0-draft;
        }
    "#,
    path: "../../../wit",
    generate_all,
});

mod common;

use common::{Query, read_body, respond};
use exports::wasi::http::incoming_handler::Guest;
use wasi::http::types::{IncomingRequest, ResponseOutparam};
use wasi::keyvalue0_2_0_draft::{atomics, batch, store};

struct KvDraft;

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
        "incr" => text(atomics::increment(&bucket, &key, query.num("by", 1))?.to_string()),
        "list" => {
            let mut keys = Vec::new();
            let mut cursor = None;
            loop {
                let page = bucket.list_keys(cursor)?;
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
                .all(|(g, (k, v))| g.as_ref() == Some(&(k.clone(), v.clone())));
            let half: Vec<String> = keys.iter().step_by(2).cloned().collect();
            batch::delete_many(&bucket, &half)?;
            let left = batch::get_many(&bucket, &keys)?
                .iter()
                .filter(|v| v.is_some())
                .count();
            text(format!("set {n}, read back {all_back}, {left} left"))
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

impl Guest for KvDraft {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let query = Query::of(&request);
        let body = read_body(&request);
        let (status, answer) = run(&query, body).unwrap_or_else(error);
        respond(out, status, &answer);
    }
}

export!(KvDraft);
