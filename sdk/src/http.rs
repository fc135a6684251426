//! The [`http`](::http) crate, re-exported whole, plus outbound requests
//! (`wasi:http/outgoing-handler`): [`send`] and [`send_streaming`].
//!
//! A function may call the hosts its manifest allows
//! (`allowed_outbound_hosts = ["https://api.example.com"]`), and other
//! functions of its app in-process at `http://FUNCTION.gust.internal`.
//!
//! ```no_run
//! use gust_sdk::{Request, RequestExt, http};
//!
//! fn profile(req: Request) -> Result<http::Response<Vec<u8>>, http::SendError> {
//!     let user = req.param("user").unwrap_or("nobody");
//!     let upstream = http::Request::get(format!("http://users.gust.internal/users/{user}"))
//!         .header("accept", "application/json")
//!         .body(Vec::new())
//!         .map_err(|e| http::SendError::InvalidRequest(e.to_string()))?;
//!     let answer = http::send(upstream)?;
//!     // Pass the upstream's status and body on.
//!     Ok(http::Response::builder()
//!         .status(answer.status())
//!         .header("content-type", "application/json")
//!         .body(answer.into_body())
//!         .unwrap_or_default())
//! }
//!
//! gust_sdk::export!(profile);
//! ```
//!
//! [`send_streaming`] takes any [`Body`] (a reader, chunks) and answers
//! with an [`IncomingBody`] read as it arrives, for bodies too large to
//! hold.

use std::fmt;
use std::io;

pub use ::http::*;

use crate::bindings::wasi::http::outgoing_handler;
use crate::bindings::wasi::http::types as wasi;
use crate::body::{Body, CopyError, IncomingBody};

/// Why an outbound request failed.
#[derive(Debug)]
pub enum SendError {
    /// The request cannot be expressed (no authority in the URI, a bad
    /// method or header, ...).
    InvalidRequest(String),
    /// The host or the upstream failed it: refused by the manifest's
    /// `allowed_outbound_hosts`, DNS, connection, timeout, ...
    Http(wasi::ErrorCode),
    /// Sending the request body or reading the response body failed.
    Body(io::Error),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::InvalidRequest(message) => write!(f, "invalid outbound request: {message}"),
            SendError::Http(code) => write!(f, "outbound request failed: {code:?}"),
            SendError::Body(e) => write!(f, "outbound body failed: {e}"),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::Body(e) => Some(e),
            _ => None,
        }
    }
}

/// Sends `request` and reads the whole response.
pub fn send<B: Into<Body>>(
    request: Request<B>,
) -> std::result::Result<Response<Vec<u8>>, SendError> {
    let response = send_streaming(request)?;
    let (parts, body) = response.into_parts();
    let bytes = body.bytes().map_err(SendError::Body)?;
    Ok(Response::from_parts(parts, bytes))
}

/// Sends `request`, streaming its body, and returns the response as soon
/// as its head arrives; its body is read as it arrives.
///
/// The request body is written whole before the response is returned
/// (a guest is one thread). An upstream that answers while it is still
/// reading (an echo) can therefore stall once its answer fills the
/// buffers between the two; upstreams that read the request before
/// answering (uploads, most APIs) stream any size in either direction.
pub fn send_streaming<B: Into<Body>>(
    request: Request<B>,
) -> std::result::Result<Response<IncomingBody>, SendError> {
    let (mut parts, body) = request.into_parts();
    let body: Body = body.into();
    if let Some(bytes) = body.as_bytes()
        && !bytes.is_empty()
    {
        parts
            .headers
            .entry(header::CONTENT_LENGTH)
            .or_insert_with(|| HeaderValue::from(bytes.len()));
    }
    let invalid = |what: &str| SendError::InvalidRequest(what.to_owned());
    let outgoing = wasi::OutgoingRequest::new(crate::response::fields(&parts.headers));
    outgoing
        .set_method(&method(&parts.method))
        .map_err(|()| invalid("method"))?;
    let scheme = match parts.uri.scheme_str() {
        Some("https") => wasi::Scheme::Https,
        Some("http") | None => wasi::Scheme::Http,
        Some(other) => wasi::Scheme::Other(other.to_owned()),
    };
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|()| invalid("scheme"))?;
    let authority = parts
        .uri
        .authority()
        .ok_or_else(|| invalid("the URI has no host"))?;
    outgoing
        .set_authority(Some(authority.as_str()))
        .map_err(|()| invalid("authority"))?;
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    outgoing
        .set_path_with_query(Some(path))
        .map_err(|()| invalid("path"))?;
    let outgoing_body = outgoing.body().map_err(|()| invalid("body"))?;

    let future = outgoing_handler::handle(outgoing, None).map_err(SendError::Http)?;
    // The body is written after `handle`, so the host streams it to the
    // upstream while it is produced.
    if body.as_bytes().is_none_or(|bytes| !bytes.is_empty()) {
        let stream = outgoing_body.write().map_err(|()| invalid("body stream"))?;
        match body.write_to(stream) {
            Ok(()) => {}
            Err(CopyError::Read(e)) | Err(CopyError::Write(e)) => return Err(SendError::Body(e)),
        }
    }
    wasi::OutgoingBody::finish(outgoing_body, None).map_err(SendError::Http)?;

    let incoming = loop {
        if let Some(answer) = future.get() {
            break answer;
        }
        future.subscribe().block();
    };
    let incoming = match incoming {
        Ok(Ok(response)) => response,
        Ok(Err(code)) => return Err(SendError::Http(code)),
        Err(()) => return Err(invalid("response already taken")),
    };
    let mut response = Response::builder().status(incoming.status());
    for (name, value) in incoming.headers().entries() {
        response = response.header(name, value);
    }
    let body = incoming
        .consume()
        .map_err(|()| invalid("response body already taken"))?;
    let body = IncomingBody::new(body).map_err(|e| invalid(&e))?;
    response
        .body(body)
        .map_err(|e| SendError::InvalidRequest(format!("response head: {e}")))
}

fn method(method: &Method) -> wasi::Method {
    match *method {
        Method::GET => wasi::Method::Get,
        Method::HEAD => wasi::Method::Head,
        Method::POST => wasi::Method::Post,
        Method::PUT => wasi::Method::Put,
        Method::DELETE => wasi::Method::Delete,
        Method::CONNECT => wasi::Method::Connect,
        Method::OPTIONS => wasi::Method::Options,
        Method::TRACE => wasi::Method::Trace,
        Method::PATCH => wasi::Method::Patch,
        ref other => wasi::Method::Other(other.as_str().to_owned()),
    }
}
