//! Every way the server answers a request itself, and the status of each.

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, Full};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::metering::Outcome;

/// A request the server answers without (or instead of) a guest response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No route matches the path: 404.
    NotFound,
    /// Routes match the path, not the method: 405 with `Allow`.
    MethodNotAllowed(Vec<http::Method>),
    /// The body is larger than `[server].max_body_size`: 413.
    BodyTooLarge,
    /// The body did not arrive within `[server].body_read_timeout`: 408.
    BodyTimeout,
    /// The body's framing is invalid (HTTP/1.1 chunked encoding with a bad
    /// chunk size or bare-LF lines): 400.
    MalformedBody,
    /// The request target is longer than `[server].max_url_length`: 414.
    UriTooLong,
    /// More headers than `[server].max_headers` (HTTP/2; hyper answers
    /// HTTP/1.1 itself): 431.
    TooManyHeaders,
    /// The function's concurrency limit and queue are full, or the request
    /// waited too long in the queue: 503 with `Retry-After`.
    Busy,
    /// The request cannot be handed to a guest (e.g. no `Host`): 400.
    BadRequest,
    /// The invocation ended without a response (trap, fuel, deadline,
    /// overload, no response): the status of [`Outcome`].
    Failed(Outcome),
    /// The guest answered with a `wasi:http` error code: 500.
    GuestError,
    /// The function's fuel quota for the current window is used up: 429
    /// with `Retry-After` (whole seconds until the window rolls).
    QuotaExceeded(std::time::Duration),
}

impl Rejection {
    /// The status of this rejection, as usage records and logs show it.
    /// The client gets [`Rejection::wire_status`].
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::NotFound => StatusCode::NOT_FOUND,
            Rejection::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Rejection::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Rejection::MalformedBody => StatusCode::BAD_REQUEST,
            Rejection::UriTooLong => StatusCode::URI_TOO_LONG,
            Rejection::TooManyHeaders => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Rejection::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::BadRequest => StatusCode::BAD_REQUEST,
            Rejection::Failed(outcome) => super::invoke::failure_status(*outcome),
            Rejection::GuestError => StatusCode::INTERNAL_SERVER_ERROR,
            Rejection::QuotaExceeded(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The status the client gets: [`Rejection::status`], except that 499
    /// (the client went away) is for records and logs only. A client that
    /// ended its request early but still reads (e.g. half-closed the
    /// connection mid-body) gets 400.
    pub fn wire_status(&self) -> StatusCode {
        match self {
            Rejection::Failed(Outcome::ClientGone) => StatusCode::BAD_REQUEST,
            _ => self.status(),
        }
    }

    fn message(&self) -> &'static str {
        match self {
            Rejection::NotFound => "not found",
            Rejection::MethodNotAllowed(_) => "method not allowed",
            Rejection::BodyTooLarge => "request body too large",
            Rejection::BodyTimeout => "request body not received in time",
            Rejection::MalformedBody => "malformed request body",
            Rejection::UriTooLong => "URI too long",
            Rejection::TooManyHeaders => "too many request headers",
            Rejection::Busy => "function busy, retry later",
            Rejection::BadRequest => "bad request",
            Rejection::Failed(Outcome::Trap) => "function trapped",
            Rejection::Failed(Outcome::OutOfFuel) => "function ran out of fuel",
            Rejection::Failed(Outcome::Timeout) => "function timed out",
            Rejection::Failed(Outcome::Overloaded) => "server overloaded, retry later",
            Rejection::Failed(Outcome::NoResponse | Outcome::Ok) => "function sent no response",
            Rejection::GuestError => "function failed",
            Rejection::QuotaExceeded(_) => "function quota exceeded, retry later",
            Rejection::Failed(Outcome::ClientGone) => "request body incomplete",
            Rejection::Failed(Outcome::ResponseTooLarge) => "response too large",
        }
    }

    /// The response: the status, a short plain-text body, and `Allow` or
    /// `Retry-After` where they apply.
    pub fn into_response(self) -> hyper::Response<HyperOutgoingBody> {
        let mut response = hyper::Response::new(text_body(format!("{}\n", self.message())));
        *response.status_mut() = self.wire_status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        match &self {
            Rejection::MethodNotAllowed(allow) => {
                let allow: Vec<&str> = allow.iter().map(http::Method::as_str).collect();
                if let Ok(value) = HeaderValue::from_str(&allow.join(", ")) {
                    headers.insert(header::ALLOW, value);
                }
            }
            Rejection::Failed(Outcome::Overloaded) | Rejection::Busy => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Rejection::QuotaExceeded(rest) => {
                let secs = rest.as_secs() + u64::from(rest.subsec_nanos() > 0);
                headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            }
            _ => {}
        }
        response
    }
}

fn text_body(text: String) -> HyperOutgoingBody {
    Full::new(Bytes::from(text))
        .map_err(|never| match never {})
        .boxed_unsync()
}
