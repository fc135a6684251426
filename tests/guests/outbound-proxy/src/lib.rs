//! Forwards the request it gets through `wasi:http/outgoing-handler` and
//! answers with what came back, for the outbound HTTP tests:
//!
//! - `?url=URL` (the rest of the query, taken as it is, so `URL` may have
//!   a query of its own): sends the request's method and body to `URL`;
//! - `?self=NAME`: sends the same request to
//!   `http://NAME.gust.internal/PATH?self=NAME`, i.e. to itself when
//!   `NAME` is its own function: a loop that only gust can stop;
//! - `?times=N&url=URL`: sends it `N` times, one after another, and
//!   answers with the last response (or the first failure, `request #I
//!   failed: CODE`).
//!
//! The answer has the upstream status, its `location` and `content-type`,
//! its `x-request-id` as `x-upstream-request-id`, and its body (read
//! whole). A request or body that fails gives `502` with the error code
//! in the body.

use gust_sdk::bindings::wasi::http::outgoing_handler;
use gust_sdk::bindings::wasi::http::types::{
    Fields, IncomingResponse, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use gust_sdk::bindings::wasi::io::streams::StreamError;
use gust_sdk::{Request, Response, http};

fn failed(what: &str, detail: String) -> Response {
    http::Response::builder()
        .status(502)
        .body(format!("{what}: {detail}\n").into_bytes())
        .unwrap_or_default()
}

fn target(req: &Request) -> Option<String> {
    let query = req.uri().query()?;
    let query = match query.strip_prefix("times=") {
        Some(rest) => rest.split_once('&')?.1,
        None => query,
    };
    if let Some(url) = query.strip_prefix("url=") {
        return Some(url.to_owned());
    }
    let name = query.strip_prefix("self=")?;
    Some(format!(
        "http://{name}.gust.internal{}?self={name}",
        req.uri().path()
    ))
}

fn method(method: &http::Method) -> Method {
    match *method {
        http::Method::GET => Method::Get,
        http::Method::POST => Method::Post,
        http::Method::PUT => Method::Put,
        http::Method::DELETE => Method::Delete,
        http::Method::HEAD => Method::Head,
        ref other => Method::Other(other.as_str().to_owned()),
    }
}

fn forward(req: Request) -> Response {
    let times: u32 = req
        .uri()
        .query()
        .and_then(|q| q.strip_prefix("times="))
        .and_then(|rest| rest.split('&').next()?.parse().ok())
        .unwrap_or(1);
    let mut last = failed("bad request", "times=0".to_owned());
    for i in 1..=times {
        last = send(&req);
        if last.status() == 502 && times > 1 {
            let detail = String::from_utf8_lossy(last.body()).into_owned();
            return failed(&format!("request #{i} failed"), detail);
        }
    }
    last
}

fn send(req: &Request) -> Response {
    let Some(url) = target(req) else {
        return failed("bad request", "no ?url= or ?self=".to_owned());
    };
    let Ok(uri) = url.parse::<http::Uri>() else {
        return failed("bad url", url);
    };
    let outgoing = OutgoingRequest::new(Fields::new());
    let _ = outgoing.set_method(&method(req.method()));
    let scheme = match uri.scheme_str() {
        Some("https") => Scheme::Https,
        _ => Scheme::Http,
    };
    let _ = outgoing.set_scheme(Some(&scheme));
    let _ = outgoing.set_authority(uri.authority().map(|a| a.as_str()));
    let _ = outgoing.set_path_with_query(uri.path_and_query().map(|p| p.as_str()));
    let Ok(body) = outgoing.body() else {
        return failed("outbound request failed", "no body".to_owned());
    };
    let future = match outgoing_handler::handle(outgoing, None) {
        Ok(future) => future,
        Err(code) => return failed("outbound request failed", format!("{code:?}")),
    };
    if !req.body().is_empty() {
        let Ok(stream) = body.write() else {
            return failed("outbound request failed", "body stream".to_owned());
        };
        for chunk in req.body().chunks(4096) {
            if let Err(e) = stream.blocking_write_and_flush(chunk) {
                return failed("outbound request failed", format!("writing: {e:?}"));
            }
        }
        drop(stream);
    }
    let _ = OutgoingBody::finish(body, None);
    future.subscribe().block();
    match future.get() {
        Some(Ok(Ok(response))) => answer(response),
        Some(Ok(Err(code))) => failed("outbound request failed", format!("{code:?}")),
        other => failed("outbound request failed", format!("{other:?}")),
    }
}

fn answer(response: IncomingResponse) -> Response {
    let mut builder = http::Response::builder().status(response.status());
    let headers = response.headers();
    for (from, to) in [
        ("location", "location"),
        ("content-type", "content-type"),
        ("x-request-id", "x-upstream-request-id"),
    ] {
        if let Some(value) = headers.get(from).into_iter().next() {
            builder = builder.header(to, value);
        }
    }
    drop(headers);
    let Ok(body) = response.consume() else {
        return failed("body failed", "consumed".to_owned());
    };
    let Ok(stream) = body.stream() else {
        return failed("body failed", "no stream".to_owned());
    };
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                drop(stream);
                let code = gust_sdk::bindings::wasi::http::types::http_error_code(&e);
                return failed("body failed", format!("{code:?} {}", e.to_debug_string()));
            }
        }
    }
    builder.body(bytes).unwrap_or_default()
}

gust_sdk::export!(forward);
