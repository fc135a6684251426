//! A `wasi:http/proxy` component built with wit-bindgen against the
//! standard WIT, not gust-sdk, that uses `wasi:keyvalue@0.2.0-draft`,
//! `wasi:config@0.2.0-rc.1`, `wasi:logging` and `wasi:cli/environment`:
//!
//! - `GET /config` every setting, `GET /config/KEY` one (404 if unset)
//! - `GET /env` the environment, one `KEY=VALUE` per line
//! - `GET /kv/KEY?store=NAME` a value (404 if missing), `PUT` sets it to the
//!   body, `POST /kv/KEY/incr?store=NAME` increments it by 1
//! - `GET /log` logs one line at each level
//!
//! Errors of the host come back as 500 with the error in the body.

wit_bindgen::generate!({
    inline: r#"
        package test:foreign;
        world foreign {
            include wasi:http/proxy@0.2.12;
            import wasi:keyvalue/store@0.2.0-draft;
            import wasi:keyvalue/atomics@0.2.0-draft;
            import wasi:config/store@0.2.0-rc.1;
            import wasi:logging/logging@0.1.0-draft;
            import wasi:cli/environment@0.2.12;
        }
    "#,
    path: "../../../wit",
    generate_all,
});

use exports::wasi::http::incoming_handler::Guest;
use wasi::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use wasi::keyvalue0_2_0_draft::{atomics, store};

const MARKERS: [&str; 4] = ["/config", "/env", "/kv/", "/log"];

/// The path from the first route this guest knows on, so that it can be
/// mounted under any prefix (`/app/config/KEY` is `/config/KEY`).
fn local(path: &str) -> &str {
    MARKERS
        .iter()
        .filter_map(|m| path.find(m))
        .min()
        .map_or(path, |i| &path[i..])
}

struct Foreign;

fn respond(out: ResponseOutparam, status: u16, body: &[u8]) {
    let response = OutgoingResponse::new(Fields::new());
    let _ = response.set_status_code(status);
    let Ok(outgoing) = response.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = outgoing.write() {
        for chunk in body.chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                break;
            }
        }
    }
    let _ = OutgoingBody::finish(outgoing, None);
}

fn read_body(request: &IncomingRequest) -> Vec<u8> {
    let mut data = Vec::new();
    let Ok(body) = request.consume() else {
        return data;
    };
    if let Ok(stream) = body.stream() {
        while let Ok(chunk) = stream.blocking_read(65536) {
            data.extend_from_slice(&chunk);
        }
    }
    data
}

fn kv_error(e: store::Error) -> (u16, Vec<u8>) {
    let text = match e {
        store::Error::NoSuchStore => "no-such-store".to_owned(),
        store::Error::AccessDenied => "access-denied".to_owned(),
        store::Error::Other(s) => format!("other: {s}"),
    };
    (500, text.into_bytes())
}

fn kv(method: &Method, key: &str, store_name: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let bucket = match store::open(store_name) {
        Ok(bucket) => bucket,
        Err(e) => return kv_error(e),
    };
    if let Some(key) = key.strip_suffix("/incr") {
        return match atomics::increment(&bucket, key, 1) {
            Ok(n) => (200, n.to_string().into_bytes()),
            Err(e) => kv_error(e),
        };
    }
    match method {
        Method::Get => match bucket.get(key) {
            Ok(Some(value)) => (200, value),
            Ok(None) => (404, b"missing".to_vec()),
            Err(e) => kv_error(e),
        },
        Method::Put => match bucket.set(key, &body) {
            Ok(()) => (200, b"stored".to_vec()),
            Err(e) => kv_error(e),
        },
        _ => (405, b"use GET, PUT or POST .../incr".to_vec()),
    }
}

impl Guest for Foreign {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let method = request.method();
        let target = request.path_with_query().unwrap_or_default();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let path = local(path);
        let store_name = query
            .split('&')
            .find_map(|p| p.strip_prefix("store="))
            .unwrap_or("default")
            .to_owned();
        let body = read_body(&request);
        let (status, text) = if path == "/config" {
            match wasi::config0_2_0_rc_1::store::get_all() {
                Ok(all) => (
                    200,
                    all.iter()
                        .map(|(k, v)| format!("{k}={v}\n"))
                        .collect::<String>()
                        .into_bytes(),
                ),
                Err(e) => (500, format!("{e:?}").into_bytes()),
            }
        } else if let Some(key) = path.strip_prefix("/config/") {
            match wasi::config0_2_0_rc_1::store::get(key) {
                Ok(Some(value)) => (200, value.into_bytes()),
                Ok(None) => (404, b"unset".to_vec()),
                Err(e) => (500, format!("{e:?}").into_bytes()),
            }
        } else if path == "/env" {
            let lines: String = wasi::cli::environment::get_environment()
                .iter()
                .map(|(k, v)| format!("{k}={v}\n"))
                .collect();
            (200, lines.into_bytes())
        } else if let Some(key) = path.strip_prefix("/kv/") {
            kv(&method, key, &store_name, body)
        } else if path == "/log" {
            use wasi::logging::logging::{Level, log};
            log(Level::Info, "foreign", "hello from wasi:logging");
            log(Level::Error, "", "an error line");
            (200, b"logged".to_vec())
        } else {
            (404, b"no such route".to_vec())
        };
        respond(out, status, &text);
    }
}

export!(Foreign);
