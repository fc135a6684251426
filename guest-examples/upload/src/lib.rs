//! File uploads into a blob container, streamed both ways.
//!
//! - `PUT /files/{name}` stores the request body as the object `name`
//!   (`201`, `{"name": ..., "size": ...}`); a body over the operator's
//!   object limit (`[blob] max_object_size`) gets `413`;
//! - `GET /files/{name}` answers the object, byte for byte (`404` if
//!   there is none);
//! - `GET /files` lists the objects' names as a JSON array;
//! - `DELETE /files/{name}` removes it (`204`; `404` if there is none).
//!
//! Names are 1 to 128 of `A-Z a-z 0-9 . _ -`, not starting with a dot;
//! anything else gets `400`. The body is never held whole: the handler
//! takes a [`StreamingRequest`] and copies it into the container a chunk
//! at a time, and a download is the object's reader as the response body.
//! The manifest grants the container: `blob_containers = ["uploads"]`.

use gust_sdk::{Body, RequestExt, StreamingRequest, blob, http};
use serde_json::json;

/// The container the manifest grants.
const CONTAINER: &str = "uploads";
/// Longest object name accepted.
const MAX_NAME: usize = 128;

fn files(req: StreamingRequest) -> http::Response<Body> {
    let path = req.uri().path().to_owned();
    let name = req
        .param("name")
        .map(str::to_owned)
        .or_else(|| path.strip_prefix("/files/").map(str::to_owned));
    let container = match blob::Container::open(CONTAINER) {
        Ok(container) => container,
        Err(e) => return failed(&e),
    };
    let method = req.method().clone();
    let Some(name) = name else {
        return match method {
            http::Method::GET => list(&container),
            _ => not_allowed("GET"),
        };
    };
    if !valid_name(&name) {
        return json_reply(
            http::StatusCode::BAD_REQUEST,
            json!({"error": "a file name is 1 to 128 of A-Z a-z 0-9 . _ -, not starting with a dot"}),
        );
    }
    match method {
        http::Method::PUT => put(&container, &name, req),
        http::Method::GET => get(&container, &name),
        http::Method::DELETE => delete(&container, &name),
        _ => not_allowed("GET, PUT, DELETE"),
    }
}

fn put(container: &blob::Container, name: &str, req: StreamingRequest) -> http::Response<Body> {
    match container.write(name, req.into_body()) {
        Ok(size) => json_reply(
            http::StatusCode::CREATED,
            json!({"name": name, "size": size}),
        ),
        Err(e) if e.is_too_large() => json_reply(
            http::StatusCode::PAYLOAD_TOO_LARGE,
            json!({"error": "the file is larger than this container accepts"}),
        ),
        // The client's body broke off: nothing was stored.
        Err(blob::Error::Source(e)) => json_reply(
            http::StatusCode::BAD_REQUEST,
            json!({"error": format!("reading the upload: {e}")}),
        ),
        Err(e) => failed(&e),
    }
}

fn get(container: &blob::Container, name: &str) -> http::Response<Body> {
    match container.read(name) {
        Ok(object) => http::Response::builder()
            .header("content-type", "application/octet-stream")
            .header("content-length", object.size())
            .body(Body::from_reader(object))
            .unwrap_or_default(),
        Err(blob::Error::NotFound(_)) => not_found(),
        Err(e) => failed(&e),
    }
}

fn delete(container: &blob::Container, name: &str) -> http::Response<Body> {
    match container.exists(name) {
        Ok(false) => not_found(),
        Ok(true) => match container.delete(name) {
            Ok(()) => http::Response::builder()
                .status(http::StatusCode::NO_CONTENT)
                .body(Body::empty())
                .unwrap_or_default(),
            Err(e) => failed(&e),
        },
        Err(e) => failed(&e),
    }
}

fn list(container: &blob::Container) -> http::Response<Body> {
    match container.list() {
        Ok(mut names) => {
            names.sort();
            json_reply(http::StatusCode::OK, json!(names))
        }
        Err(e) => failed(&e),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn not_found() -> http::Response<Body> {
    json_reply(
        http::StatusCode::NOT_FOUND,
        json!({"error": "no such file"}),
    )
}

fn not_allowed(allow: &'static str) -> http::Response<Body> {
    http::Response::builder()
        .status(http::StatusCode::METHOD_NOT_ALLOWED)
        .header("allow", allow)
        .body(Body::empty())
        .unwrap_or_default()
}

/// A container failure: logged with the host's words, answered `500`.
fn failed(e: &blob::Error) -> http::Response<Body> {
    gust_sdk::log::error(format!("uploads: {e}"));
    json_reply(
        http::StatusCode::INTERNAL_SERVER_ERROR,
        json!({"error": "the file store failed"}),
    )
}

fn json_reply(status: http::StatusCode, value: serde_json::Value) -> http::Response<Body> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(value.to_string()))
        .unwrap_or_default()
}

gust_sdk::export!(files);
