//! Turning handler results into `wasi:http` outgoing responses.

use crate::Body;
use crate::bindings::wasi::http::types::{
    Fields, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

/// Anything a handler may return.
pub trait IntoResponse {
    /// Converts into a response.
    fn into_response(self) -> http::Response<Body>;
}

/// A response whose body is anything that converts into a [`Body`]: bytes,
/// text, or a streamed body.
impl<B: Into<Body>> IntoResponse for http::Response<B> {
    fn into_response(self) -> http::Response<Body> {
        self.map(Into::into)
    }
}

impl IntoResponse for String {
    fn into_response(self) -> http::Response<Body> {
        text(http::StatusCode::OK, self.into_bytes())
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> http::Response<Body> {
        text(http::StatusCode::OK, self.as_bytes().to_vec())
    }
}

impl<B: Into<Vec<u8>>> IntoResponse for (http::StatusCode, B) {
    fn into_response(self) -> http::Response<Body> {
        text(self.0, self.1.into())
    }
}

/// `Err` becomes `500` with the error's text as body.
impl<T: IntoResponse, E: std::fmt::Display> IntoResponse for Result<T, E> {
    fn into_response(self) -> http::Response<Body> {
        match self {
            Ok(ok) => ok.into_response(),
            Err(e) => text(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("{e}\n").into_bytes(),
            ),
        }
    }
}

fn text(status: http::StatusCode, body: Vec<u8>) -> http::Response<Body> {
    let mut response = http::Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Sends the head through `out`, then streams the body.
pub(crate) fn write(out: ResponseOutparam, response: http::Response<Body>) {
    let (mut parts, body) = response.into_parts();
    // A body known whole gets a length, not chunks.
    if let Some(bytes) = body.as_bytes() {
        parts
            .headers
            .entry(http::header::CONTENT_LENGTH)
            .or_insert_with(|| http::HeaderValue::from(bytes.len()));
    }
    let outgoing = OutgoingResponse::new(fields(&parts.headers));
    // A new response is 200 already; each host call skipped is ~1 µs.
    if parts.status != http::StatusCode::OK {
        let _ = outgoing.set_status_code(parts.status.as_u16());
    }
    let Ok(outgoing_body) = outgoing.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(outgoing));
    let empty = body.as_bytes().is_some_and(<[u8]>::is_empty);
    if !empty {
        let Ok(stream) = outgoing_body.write() else {
            return;
        };
        if body.write_to(stream).is_err() {
            // The client went away or the body's source failed: dropping
            // the body unfinished tells the host the response is cut short.
            return;
        }
    }
    let _ = OutgoingBody::finish(outgoing_body, None);
}

/// `headers` as `wasi:http` fields. Headers the host forbids (e.g.
/// hop-by-hop ones) are dropped rather than failing the whole message.
pub(crate) fn fields(headers: &http::HeaderMap) -> Fields {
    let entries: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    Fields::from_list(&entries).unwrap_or_else(|_| {
        let fields = Fields::new();
        for (name, value) in &entries {
            let _ = fields.append(name, value);
        }
        fields
    })
}
