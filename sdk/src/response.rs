//! Turning handler results into `wasi:http` outgoing responses.

use crate::Response;
use crate::bindings::wasi::http::types::{
    Fields, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

/// Anything a handler may return.
pub trait IntoResponse {
    /// Converts into a response with a byte body.
    fn into_response(self) -> Response;
}

impl<B: Into<Vec<u8>>> IntoResponse for http::Response<B> {
    fn into_response(self) -> Response {
        self.map(Into::into)
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        text(http::StatusCode::OK, self.into_bytes())
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        text(http::StatusCode::OK, self.as_bytes().to_vec())
    }
}

impl<B: Into<Vec<u8>>> IntoResponse for (http::StatusCode, B) {
    fn into_response(self) -> Response {
        text(self.0, self.1.into())
    }
}

/// `Err` becomes `500` with the error's text as body.
impl<T: IntoResponse, E: std::fmt::Display> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(ok) => ok.into_response(),
            Err(e) => text(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("{e}\n").into_bytes(),
            ),
        }
    }
}

fn text(status: http::StatusCode, body: Vec<u8>) -> Response {
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// `wasi:io` limits one blocking write to 4096 bytes.
const WRITE_CHUNK: usize = 4096;

/// Sends the head through `out`, then streams the body.
pub(crate) fn write(out: ResponseOutparam, response: Response) {
    let (mut parts, body) = response.into_parts();
    // The whole body is known, so the client gets a length, not chunks.
    parts
        .headers
        .entry(http::header::CONTENT_LENGTH)
        .or_insert_with(|| http::HeaderValue::from(body.len()));
    let entries: Vec<(String, Vec<u8>)> = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    // Headers the host forbids (e.g. hop-by-hop ones) are dropped rather than
    // failing the whole response.
    let headers = Fields::from_list(&entries).unwrap_or_else(|_| {
        let fields = Fields::new();
        for (name, value) in &entries {
            let _ = fields.append(name, value);
        }
        fields
    });
    let outgoing = OutgoingResponse::new(headers);
    // A new response is 200 already; each host call skipped is ~1 µs.
    if parts.status != http::StatusCode::OK {
        let _ = outgoing.set_status_code(parts.status.as_u16());
    }
    let Ok(outgoing_body) = outgoing.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(outgoing));
    if !body.is_empty()
        && let Ok(stream) = outgoing_body.write()
    {
        for chunk in body.chunks(WRITE_CHUNK) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                // The client went away; nothing left to do.
                return;
            }
        }
    }
    let _ = OutgoingBody::finish(outgoing_body, None);
}
