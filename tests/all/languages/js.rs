//! The JavaScript examples (`guest-examples/js/`), built from source by
//! their manifests' build commands (componentize-js against gust's
//! `gust:function/handler` world, with the helper `sdk/js/gust.js` copied
//! next to the app) and served over real HTTP: hello, and the gateway
//! application calling the Rust users and counter functions in-process
//! with `fetch()`.

use std::path::Path;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use super::{serve_example, toolchain};
use crate::support::Reply;

/// What the build commands run.
const TOOLS: &[&str] = &["componentize-js"];

fn request(method: Method, path: &str, body: impl Into<Bytes>) -> Request<Bytes> {
    Request::builder()
        .method(method)
        .uri(path)
        .body(body.into())
        .unwrap()
}

fn post_json(path: &str, body: Value) -> Request<Bytes> {
    let mut request = request(Method::POST, path, body.to_string());
    request.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    request
}

fn header<'a>(reply: &'a Reply, name: &str) -> &'a str {
    reply
        .headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header in {reply:?}"))
        .to_str()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_hello_answers_both_routes() {
    if !toolchain(TOOLS) {
        return;
    }
    let server = serve_example("js/hello", |text| text).await;
    let reply = server.get("/").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "Hello, world!\n");
    assert_eq!(header(&reply, "content-type"), "text/plain; charset=utf-8");
    assert_eq!(header(&reply, "content-length"), "14");
    let reply = server.get("/hello/gust").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "Hello, gust!\n");

    // Every request is a fresh instance of the pre-initialized engine:
    // about 3 M fuel (sdk/js/README.md), far inside the default budget.
    let record = server.record(&reply.request_id()).await;
    assert_eq!(record.status, 200);
    assert!(
        record.fuel_consumed < 20_000_000,
        "a JavaScript hello took {} fuel",
        record.fuel_consumed
    );
}

/// The JS gateway's manifest with the Rust users and counter it serves
/// next to it as the test's components, and the token key from a file.
fn gateway_manifest(text: String, secret_file: &Path) -> String {
    let mut text = text;
    for name in ["users", "counter"] {
        let shipped = format!("\"../../target/wasm32-wasip2/release/{name}.wasm\"");
        assert!(text.contains(&shipped), "the shipped {name} path changed");
        text = text.replace(&shipped, &format!("\"{{{}}}\"", name.to_uppercase()));
    }
    text.replace(
        "env = \"GUST_TOKEN_KEY\"",
        &format!("file = {:?}", secret_file.display().to_string()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_gateway_merges_users_and_counter_in_process() {
    if !toolchain(TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("token_key");
    std::fs::write(&secret, "test-token-key-0123456789abcdef\n").unwrap();
    let server = serve_example("js/gateway", |text| gateway_manifest(text, &secret)).await;

    let registered = server
        .send(post_json(
            "/register",
            json!({"name": "alice", "password": "correct horse"}),
        ))
        .await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.text()
    );
    for _ in 0..3 {
        let reply = server
            .send(request(Method::POST, "/counter/alice", Bytes::new()))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    }

    let dashboard = server.get("/dashboard/alice").await;
    assert_eq!(dashboard.status, StatusCode::OK, "{}", dashboard.text());
    assert_eq!(header(&dashboard, "content-type"), "application/json");
    let answer = dashboard.json();
    assert_eq!(answer["user"], "alice");
    assert_eq!(answer["profile"]["name"], "alice");
    assert_eq!(
        answer["profile"]["created_at"],
        registered.json()["created_at"]
    );
    assert_eq!(answer["visits"], 3);

    // Two in-process calls, each recorded as a child of the dashboard's
    // request.
    let gateway = server.record(&dashboard.request_id()).await;
    assert_eq!(gateway.status, 200);
    assert_eq!(gateway.outbound_requests, 2);
    for child in [".1", ".2"] {
        let id = format!("{}{child}", dashboard.request_id());
        let record = server.record(&id).await;
        assert_eq!(record.status, 200, "{id}");
        assert_eq!(
            record.parent_request_id.as_deref(),
            Some(dashboard.request_id().as_str())
        );
    }

    // A user without a count has 0 visits; an unknown one is 404; a name
    // that is not one path segment is 400.
    let registered = server
        .send(post_json(
            "/register",
            json!({"name": "bob", "password": "correct horse"}),
        ))
        .await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.text()
    );
    let bob = server.get("/dashboard/bob").await;
    assert_eq!(bob.status, StatusCode::OK, "{}", bob.text());
    assert_eq!(bob.json()["visits"], 0);
    let nobody = server.get("/dashboard/nobody").await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND, "{}", nobody.text());
    assert_eq!(nobody.json(), json!({"error": "no such user"}));
    let bad = server.get("/dashboard/a%20b").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text());
    assert_eq!(bad.json(), json!({"error": "not a user name"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_gateway_reports_a_call_it_may_not_make_as_502() {
    if !toolchain(TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("token_key");
    std::fs::write(&secret, "test-token-key-0123456789abcdef\n").unwrap();
    // The counter host no longer allowed: fetch() fails, the gateway
    // answers 502 with what went wrong.
    let server = serve_example("js/gateway", |text| {
        gateway_manifest(text, &secret).replace(", \"http://counter.gust.internal\"", "")
    })
    .await;
    let registered = server
        .send(post_json(
            "/register",
            json!({"name": "alice", "password": "correct horse"}),
        ))
        .await;
    assert_eq!(registered.status, StatusCode::CREATED);
    let reply = server.get("/dashboard/alice").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
    let answer = reply.json();
    assert_eq!(answer["error"], "the counter function failed");
    assert!(answer["detail"].is_string(), "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_tour_covers_the_helper() {
    if !toolchain(TOOLS) {
        return;
    }
    let server = serve_example("js/tour", |text| text).await;

    // The request: a standard Request with params and route.
    let mut echo = request(Method::POST, "/echo?q=zz&other=1", "some body");
    echo.headers_mut()
        .insert("content-type", "text/x-test".parse().unwrap());
    let reply = server.send(echo).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        reply.json(),
        json!({
            "method": "POST", "path": "/echo", "q": "zz", "route": "/echo",
            "params": {}, "contentType": "text/x-test", "body": "some body",
        })
    );

    // Key-value: set, get, exists, increment, keys, delete.
    let reply = server
        .send(request(Method::PUT, "/kv/greeting", "hello \u{1F600}"))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    assert_eq!(reply.json(), json!({"stored": "greeting", "exists": true}));
    let reply = server.get("/kv/greeting").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "hello \u{1F600}");
    let reply = server
        .send(request(Method::POST, "/kv/hits", Bytes::new()))
        .await;
    assert_eq!(reply.json(), json!({"value": 2}));
    let reply = server
        .send(request(Method::POST, "/kv/hits", Bytes::new()))
        .await;
    assert_eq!(reply.json(), json!({"value": 4}));
    assert_eq!(
        server.get("/kv").await.json(),
        json!({"keys": ["greeting", "hits"]})
    );
    let reply = server
        .send(request(Method::DELETE, "/kv/greeting", Bytes::new()))
        .await;
    assert_eq!(
        reply.json(),
        json!({"deleted": "greeting", "exists": false})
    );
    assert_eq!(
        server.get("/kv/greeting").await.status,
        StatusCode::NOT_FOUND
    );

    // Config.
    assert_eq!(
        server.get("/config").await.json(),
        json!({
            "greeting": "hello from config", "missing": "fallback",
            "all": {"greeting": "hello from config"},
        })
    );

    // Each kind of answer.
    let reply = server.get("/answer/text").await;
    assert_eq!(reply.text(), "plain text\n");
    assert_eq!(header(&reply, "content-type"), "text/plain; charset=utf-8");
    let reply = server.get("/answer/bytes").await;
    assert_eq!(&reply.body[..], &[1, 2, 3]);
    let reply = server.get("/answer/json").await;
    assert_eq!(header(&reply, "content-type"), "application/json");
    assert_eq!(reply.json(), json!({"big": 1, "list": [1, "two"]}));
    let reply = server.get("/answer/empty").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert!(reply.body.is_empty());
    let reply = server.get("/answer/response").await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.text(), "made\n");
    assert_eq!(header(&reply, "x-tour"), "yes");
    assert_eq!(header(&reply, "content-length"), "5");

    // A thrown error: a 500, recorded as the function's answer.
    let reply = server.get("/fail").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.text(), "internal error\n");
    assert_eq!(server.record(&reply.request_id()).await.status, 500);

    // The store not granted: the helper's KvError.
    drop(server);
    let server = serve_example("js/tour", |text| {
        text.replace("key_value_stores = [\"default\"]", "")
    })
    .await;
    let reply = server.get("/kv").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    let answer = reply.json();
    assert_eq!(answer["kvError"], true, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("access denied")),
        "{answer}"
    );
}
