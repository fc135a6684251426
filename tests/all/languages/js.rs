//! The JavaScript examples (`guest-examples/js/`), built from source by
//! their manifests' build commands (componentize-js against gust's
//! `gust:function/handler` world, with the helper `sdk/js/gust.js` copied
//! next to the app) and served over real HTTP: hello, and the gateway
//! application calling the Rust users and counter functions in-process
//! with `fetch()`.

use std::path::Path;

use http::{Method, StatusCode};
use serde_json::json;

use super::{serve_example, toolchain};
use crate::stories::{
    TOKEN_KEY, gateway_story, header, hello_answers, register, request, token_key_file,
    token_key_from, tour_failure_is_a_500, tour_key_value_and_config, tour_without_its_store,
};

/// What the build commands run.
const TOOLS: &[&str] = &["componentize-js"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_hello_answers_both_routes() {
    if !toolchain(TOOLS) {
        return;
    }
    let server = serve_example("js/hello", |text| text).await;
    // Every request is a fresh instance of the pre-initialized engine:
    // about 3 M fuel (sdk/js/README.md), far inside the default budget.
    hello_answers(&server, "JavaScript", 20_000_000).await;
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
    token_key_from(&text, secret_file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_gateway_merges_users_and_counter_in_process() {
    if !toolchain(TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let secret = token_key_file(dir.path(), TOKEN_KEY);
    let server = serve_example("js/gateway", |text| gateway_manifest(text, &secret)).await;
    // The Rust gateway's story.
    gateway_story(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_gateway_reports_a_call_it_may_not_make_as_502() {
    if !toolchain(TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let secret = token_key_file(dir.path(), TOKEN_KEY);
    // The counter host no longer allowed: fetch() fails, the gateway
    // answers 502 with what went wrong.
    let server = serve_example("js/gateway", |text| {
        gateway_manifest(text, &secret).replace(", \"http://counter.gust.internal\"", "")
    })
    .await;
    let registered = register(&server, "alice", "correct horse").await;
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

    // Key-value and config.
    tour_key_value_and_config(&server).await;

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
    tour_failure_is_a_500(&server).await;

    // The store not granted: the helper's KvError.
    drop(server);
    let server = serve_example("js/tour", |text| {
        text.replace("key_value_stores = [\"default\"]", "")
    })
    .await;
    let answer = tour_without_its_store(&server).await;
    assert_eq!(answer["kvError"], true, "{answer}");
}
