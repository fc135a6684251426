//! Test guest: `wasi:blobstore` over HTTP, bodies streamed both ways (the
//! request body into the object, the object into the response), never
//! whole in the guest's memory. One operation per request, from the query
//! (values percent-decoded, so names may hold any byte):
//!
//! - `?op=put&c=C&name=N`: writes the request body as object N of
//!   container C; `&early=1` writes the body before `write-data`. Answers
//!   the bytes written, `413` if the object is too large.
//! - `?op=get&c=C&name=N[&start=S&end=E][&sync=1]`: the object (or the
//!   inclusive range) as the body, streamed (`consume-async`) or read whole
//!   (`consume-sync`).
//! - `?op=delete`, `?op=has` (`&times=N`: N calls), `?op=info` (size), `?op=list` (names, one a
//!   line, read 7 at a time), `?op=skip&n=K` (skips K names, then lists),
//!   `?op=clear`, `?op=exists`, `?op=delete-container`.
//! - `?op=copy&c=C&name=N&to=C2&to_name=N2`, `?op=move` likewise.
//! - `?op=open&c=C&count=K`: opens container C K times, keeping every
//!   handle; answers how many opened and the first error.
//! - `?op=drop-unfinished&c=C&name=N`: writes the body, `write-data`, then
//!   drops the value without `finish`.
//! - `?op=hello`: `hello`.
//!
//! An error value from the host answers `400`, with the error as the body.

use gust_sdk::bindings::wasi::blobstore::{blobstore, container, types};
use gust_sdk::bindings::wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use gust_sdk::bindings::wasi::io::streams::{InputStream, OutputStream, StreamError};

struct BlobHttp;

fn decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    out
}

fn param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then(|| String::from_utf8_lossy(&decode(v)).into_owned())
    })
}

/// Starts a response with `status`; returns its body stream.
fn respond(out: ResponseOutparam, status: u16) -> (OutgoingBody, OutputStream) {
    let response = OutgoingResponse::new(Fields::new());
    response.set_status_code(status).expect("a valid status");
    let body = response.body().expect("a new response has a body");
    ResponseOutparam::set(out, Ok(response));
    let stream = body.write().expect("a new body has a stream");
    (body, stream)
}

/// Writes all of `data`, waiting for room as needed.
fn write_all(stream: &OutputStream, mut data: &[u8]) -> Result<(), StreamError> {
    while !data.is_empty() {
        let n = stream.check_write()? as usize;
        if n == 0 {
            stream.subscribe().block();
            continue;
        }
        let n = n.min(data.len());
        stream.write(&data[..n])?;
        data = &data[n..];
    }
    Ok(())
}

fn flush(stream: &OutputStream) -> Result<(), StreamError> {
    stream.flush()?;
    stream.subscribe().block();
    stream.check_write().map(|_| ())
}

fn answer(out: ResponseOutparam, status: u16, text: &str) {
    let (body, stream) = respond(out, status);
    let _ = write_all(&stream, text.as_bytes());
    let _ = flush(&stream);
    drop(stream);
    let _ = OutgoingBody::finish(body, None);
}

/// Copies `from` into `to` until `from` ends; returns the bytes copied.
fn pump(from: &InputStream, to: &OutputStream) -> Result<u64, String> {
    let mut total = 0u64;
    loop {
        match from.blocking_read(64 * 1024) {
            Ok(chunk) => {
                total += chunk.len() as u64;
                write_all(to, &chunk).map_err(|e| stream_error(&e))?;
            }
            Err(StreamError::Closed) => return Ok(total),
            Err(e) => return Err(stream_error(&e)),
        }
    }
}

fn stream_error(e: &StreamError) -> String {
    match e {
        StreamError::Closed => "closed".into(),
        StreamError::LastOperationFailed(err) => err.to_debug_string(),
    }
}

fn put(
    request: IncomingRequest,
    c: &container::Container,
    name: &str,
    early: bool,
) -> Result<u64, String> {
    let value = types::OutgoingValue::new_outgoing_value();
    let sink = value
        .outgoing_value_write_body()
        .map_err(|()| "no body stream".to_owned())?;
    if !early {
        c.write_data(name, &value)?;
    }
    let body = request
        .consume()
        .map_err(|()| "no request body".to_owned())?;
    let source = body
        .stream()
        .map_err(|()| "no request body stream".to_owned())?;
    let written = pump(&source, &sink)?;
    flush(&sink).map_err(|e| stream_error(&e))?;
    drop(source);
    drop(body);
    drop(sink);
    if early {
        c.write_data(name, &value)?;
    }
    types::OutgoingValue::finish(value)?;
    Ok(written)
}

fn list(c: &container::Container, skip: u64) -> Result<String, String> {
    let names = c.list_objects()?;
    let mut out = String::new();
    if skip > 0 {
        let (skipped, _) = names.skip_stream_object_names(skip)?;
        out.push_str(&format!("skipped {skipped}\n"));
    }
    loop {
        let (batch, done) = names.read_stream_object_names(7)?;
        for name in batch {
            out.push_str(&name);
            out.push('\n');
        }
        if done {
            return Ok(out);
        }
    }
}

impl gust_sdk::bindings::exports::wasi::http::incoming_handler::Guest for BlobHttp {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let query = request
            .path_with_query()
            .and_then(|p| p.split_once('?').map(|(_, q)| q.to_owned()))
            .unwrap_or_default();
        let op = param(&query, "op").unwrap_or_default();
        let c_name = param(&query, "c").unwrap_or_default();
        // Names are taken as bytes, so a test can send any (invalid UTF-8
        // is replaced; NUL and the rest pass as they are).
        let name = param(&query, "name").unwrap_or_default();
        let result: Result<String, String> = (|| match op.as_str() {
            "hello" => Ok("hello".into()),
            "exists" => Ok(blobstore::container_exists(&c_name)?.to_string()),
            "delete-container" => blobstore::delete_container(&c_name).map(|()| "deleted".into()),
            "open" => {
                let count: u64 = param(&query, "count")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                let mut held = Vec::new();
                let mut first_error = None;
                for _ in 0..count {
                    match blobstore::get_container(&c_name) {
                        Ok(c) => held.push(c),
                        Err(e) => {
                            if first_error.is_none() {
                                first_error = Some(e);
                            }
                        }
                    }
                }
                Ok(format!("opened {} error {:?}", held.len(), first_error))
            }
            "copy" | "move" => {
                let src = types::ObjectId {
                    container: c_name.clone(),
                    object: name.clone(),
                };
                let dest = types::ObjectId {
                    container: param(&query, "to").unwrap_or_default(),
                    object: param(&query, "to_name").unwrap_or_default(),
                };
                if op == "copy" {
                    blobstore::copy_object(&src, &dest)?;
                } else {
                    blobstore::move_object(&src, &dest)?;
                }
                Ok(op.clone())
            }
            _ => Err(String::new()),
        })();
        match result {
            Ok(text) => return answer(out, 200, &text),
            Err(e) if !e.is_empty() => return answer(out, 400, &e),
            Err(_) => {}
        }
        let c = match if op == "create" {
            blobstore::create_container(&c_name)
        } else {
            blobstore::get_container(&c_name)
        } {
            Ok(c) => c,
            Err(e) => return answer(out, 400, &e),
        };
        let result: Result<String, String> = match op.as_str() {
            "put" => {
                let early = param(&query, "early").is_some();
                match put(request, &c, &name, early) {
                    Ok(n) => Ok(format!("{n}")),
                    Err(e) if e.contains("max_object_size") => return answer(out, 413, &e),
                    Err(e) => Err(e),
                }
            }
            "drop-unfinished" => (|| {
                let value = types::OutgoingValue::new_outgoing_value();
                let sink = value
                    .outgoing_value_write_body()
                    .map_err(|()| "no body stream".to_owned())?;
                c.write_data(&name, &value)?;
                let body = request
                    .consume()
                    .map_err(|()| "no request body".to_owned())?;
                let source = body
                    .stream()
                    .map_err(|()| "no request body stream".to_owned())?;
                let n = pump(&source, &sink)?;
                flush(&sink).map_err(|e| stream_error(&e))?;
                drop(sink);
                drop(value);
                Ok(format!("dropped after {n}"))
            })(),
            "get" => {
                let start = param(&query, "start")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let end = param(&query, "end")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(u64::MAX);
                let value = match c.get_data(&name, start, end) {
                    Ok(v) => v,
                    Err(e) => return answer(out, 404, &e),
                };
                if param(&query, "sync").is_some() {
                    match types::IncomingValue::incoming_value_consume_sync(value) {
                        Ok(bytes) => {
                            let (body, stream) = respond(out, 200);
                            let _ = write_all(&stream, &bytes);
                            let _ = flush(&stream);
                            drop(stream);
                            let _ = OutgoingBody::finish(body, None);
                            return;
                        }
                        Err(e) => Err(e),
                    }
                } else {
                    let source = match types::IncomingValue::incoming_value_consume_async(value) {
                        Ok(s) => s,
                        Err(e) => return answer(out, 400, &e),
                    };
                    let (body, stream) = respond(out, 200);
                    let _ = pump(&source, &stream);
                    let _ = flush(&stream);
                    drop(stream);
                    drop(source);
                    let _ = OutgoingBody::finish(body, None);
                    return;
                }
            }
            "delete" => c.delete_object(&name).map(|()| "deleted".into()),
            "has" => {
                // `&times=N`: N calls, for the benchmark of one operation.
                let times: u64 = param(&query, "times")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                let mut found = Ok(false);
                for _ in 0..times {
                    found = c.has_object(&name);
                }
                found.map(|b| b.to_string())
            }
            "info" => c
                .object_info(&name)
                .map(|m| format!("{} {} {}", m.size, m.container, m.name)),
            "list" => list(&c, 0),
            "skip" => list(
                &c,
                param(&query, "n").and_then(|v| v.parse().ok()).unwrap_or(0),
            ),
            "clear" => c.clear().map(|()| "cleared".into()),
            "create" | "name" => c.name(),
            "container-info" => c.info().map(|i| format!("{} {}", i.name, i.created_at)),
            _ => Err(format!("unknown op `{op}`")),
        };
        match result {
            Ok(text) => answer(out, 200, &text),
            Err(e) => answer(out, 400, &e),
        }
    }
}

gust_sdk::bindings::__export_handler!(BlobHttp with_types_in gust_sdk::bindings);
