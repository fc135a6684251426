//! A dashboard composed of two other functions, called in-process.
//!
//! `GET /dashboard/{user}` asks the users function for the user's public
//! profile (`http://users.gust.internal/users/{user}`) and the counter
//! function for the user's count (`http://counter.gust.internal/counter/{user}`)
//! and answers both in one JSON object:
//!
//! ```json
//! {"user": "alice", "profile": {"name": "alice", "created_at": 1764622800}, "visits": 3}
//! ```
//!
//! An unknown user is `404`; a function that fails or cannot be reached
//! is `502` with what it said. The manifest allows the two hosts:
//! `allowed_outbound_hosts = ["http://users.gust.internal",
//! "http://counter.gust.internal"]`.

use gust_sdk::{Body, Request, RequestExt, http};
use serde_json::{Value, json};

/// Longest user name passed on (the users function accepts 32).
const MAX_NAME: usize = 64;

fn dashboard(req: Request) -> http::Response<Body> {
    let user = req
        .param("user")
        .or_else(|| req.uri().path().strip_prefix("/dashboard/"))
        .unwrap_or("");
    if !valid_name(user) {
        return reply(
            http::StatusCode::BAD_REQUEST,
            json!({"error": "not a user name"}),
        );
    }
    let profile = match call(&format!("http://users.gust.internal/users/{user}")) {
        Ok((http::StatusCode::OK, profile)) => profile,
        Ok((http::StatusCode::NOT_FOUND, _)) => {
            return reply(
                http::StatusCode::NOT_FOUND,
                json!({"error": "no such user"}),
            );
        }
        Ok((status, body)) => return upstream_failed("users", &format!("{status}: {body}")),
        Err(e) => return upstream_failed("users", &e),
    };
    let visits = match call(&format!("http://counter.gust.internal/counter/{user}")) {
        Ok((http::StatusCode::OK, counter)) => counter.get("value").cloned().unwrap_or(Value::Null),
        Ok((status, body)) => return upstream_failed("counter", &format!("{status}: {body}")),
        Err(e) => return upstream_failed("counter", &e),
    };
    reply(
        http::StatusCode::OK,
        json!({"user": user, "profile": profile, "visits": visits}),
    )
}

/// `GET url`: its status and JSON body (`null` if the body is not JSON).
fn call(url: &str) -> Result<(http::StatusCode, Value), String> {
    let request = http::Request::get(url)
        .header("accept", "application/json")
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    let response = http::send(request).map_err(|e| e.to_string())?;
    let body = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
    Ok((response.status(), body))
}

fn upstream_failed(function: &str, what: &str) -> http::Response<Body> {
    gust_sdk::log::warn(format!("dashboard: {function} failed: {what}"));
    reply(
        http::StatusCode::BAD_GATEWAY,
        json!({"error": format!("the {function} function failed"), "detail": what}),
    )
}

/// Names that are one path segment, passed on unescaped.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn reply(status: http::StatusCode, value: Value) -> http::Response<Body> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(value.to_string()))
        .unwrap_or_default()
}

gust_sdk::export!(dashboard);
