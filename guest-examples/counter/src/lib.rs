//! Named counters in a key-value store.
//!
//! - `POST /counter/{name}` adds one, atomically, and answers the new
//!   value: `{"name": "visits", "value": 42}`;
//! - `GET /counter/{name}` answers the current value (0 if never
//!   counted).
//!
//! The increment is the store's atomic `increment`, so any number of
//! concurrent requests, on any number of instances or gust processes
//! sharing the store (Redis), count exactly once each. The manifest grants
//! the store: `key_value_stores = ["default"]`.

use gust_sdk::{Body, Request, RequestExt, http, kv};

/// Longest counter name accepted.
const MAX_NAME: usize = 128;

fn counter(req: Request) -> http::Response<Body> {
    // Routed by gust the name is a route parameter; called in-process
    // (`http://counter.gust.internal/counter/NAME`) it may only be in the
    // path.
    let name = req
        .param("name")
        .or_else(|| req.uri().path().strip_prefix("/counter/"))
        .unwrap_or("");
    if !valid_name(name) {
        return reply(
            http::StatusCode::BAD_REQUEST,
            "{\"error\":\"a counter name is 1 to 128 of A-Z a-z 0-9 . _ -\"}".to_owned(),
        );
    }
    let key = format!("counter:{name}");
    let result = kv::Store::open("default").and_then(|store| match *req.method() {
        http::Method::POST => store.increment(&key, 1).map(Some),
        // Incrementing by 0 reads the value in the store's own number
        // encoding; the existence check keeps GET from creating keys.
        http::Method::GET if store.exists(&key)? => store.increment(&key, 0).map(Some),
        http::Method::GET => Ok(Some(0)),
        _ => Ok(None),
    });
    match result {
        Ok(Some(value)) => reply(
            http::StatusCode::OK,
            format!("{{\"name\":\"{name}\",\"value\":{value}}}"),
        ),
        Ok(None) => http::Response::builder()
            .status(http::StatusCode::METHOD_NOT_ALLOWED)
            .header("allow", "GET, POST")
            .body(Body::empty())
            .unwrap_or_default(),
        Err(e) => {
            gust_sdk::log::error(format!("counter {name}: {e}"));
            reply(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "{\"error\":\"the counter store failed\"}".to_owned(),
            )
        }
    }
}

/// Names are safe in a key and in JSON without escaping.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn reply(status: http::StatusCode, json: String) -> http::Response<Body> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(json))
        .unwrap_or_default()
}

gust_sdk::export!(counter);
