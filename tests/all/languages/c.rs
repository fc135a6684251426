//! The C examples (`guest-examples/c/`), built from source by their
//! manifests' build commands (`sdk/c/build.sh`: `wit-bindgen c`, clang-16
//! for wasm32-wasi, `wasm-tools component new` with the proxy adapter) and
//! served over real HTTP: hello, the counter application (the Rust
//! counter's answers, plus its config) and the tour of the helper
//! (`sdk/c/gust.h`).

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;

use super::{serve_example, toolchain};
use crate::stories::{
    counter_store_fails, counter_story, counter_value, header, hello_answers, increment, request,
};

/// What `sdk/c/build.sh` runs.
const TOOLS: &[&str] = &["clang-16", "wasm-ld-16", "wit-bindgen", "wasm-tools"];

/// Concurrent increments of one counter (all admitted at once: the
/// function's default concurrency is 100).
const INCREMENTS: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_hello_answers_both_routes() {
    if !toolchain(TOOLS) {
        return;
    }
    let server = serve_example("c/hello", |text| text).await;
    // No language runtime to start: a fresh instance is cheap.
    hello_answers(&server, "C", 500_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_counter_counts_concurrent_increments_exactly() {
    if !toolchain(TOOLS) {
        return;
    }
    // The Rust counter's story.
    counter_story(&serve_example("c/counter", |text| text).await, INCREMENTS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_counter_reads_its_config() {
    if !toolchain(TOOLS) {
        return;
    }
    const SHIPPED: &str = "config = { store = \"default\", max_name = \"128\" }";

    // max_name: the longest name accepted.
    let server = serve_example("c/counter", |text| {
        assert!(text.contains(SHIPPED), "the shipped config changed");
        text.replace(SHIPPED, "config = { max_name = \"5\" }")
    })
    .await;
    let reply = increment(&server, "abcde").await;
    assert_eq!(reply.json(), json!({"name": "abcde", "value": 1}));
    let reply = increment(&server, "abcdef").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    assert_eq!(
        reply.json(),
        json!({"error": "a counter name is 1 to 5 of A-Z a-z 0-9 . _ -"})
    );
    drop(server);

    // store: the store to open. One the manifest does not grant is a 500
    // with a JSON error (and a line in the log), never a crash; granted,
    // it counts apart from `default`.
    let server = serve_example("c/counter", |text| {
        text.replace(SHIPPED, "config = { store = \"tallies\" }")
    })
    .await;
    counter_store_fails(&server).await;
    drop(server);

    let server = serve_example("c/counter", |text| {
        text.replace(SHIPPED, "config = { store = \"tallies\" }")
            .replace(
                "key_value_stores = [\"default\"]",
                "key_value_stores = [\"default\", \"tallies\"]",
            )
    })
    .await;
    assert_eq!(increment(&server, "hits").await.json()["value"], 1);
    assert_eq!(increment(&server, "hits").await.json()["value"], 2);
    assert_eq!(counter_value(&server, "hits").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_tour_covers_the_helper() {
    if !toolchain(TOOLS) {
        return;
    }
    let server = serve_example("c/tour", |text| text).await;

    // The request view: method, query, a query parameter, headers (any
    // case), the body; the response builder: headers and body.
    let mut echo = request(Method::POST, "/echo?a=1&q=zz", "hello body");
    echo.headers_mut()
        .insert("content-type", "text/x-test".parse().unwrap());
    echo.headers_mut()
        .insert("user-agent", "c-test/1".parse().unwrap());
    let reply = server.send(echo).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "hello body");
    assert_eq!(header(&reply, "content-type"), "text/x-test");
    assert_eq!(header(&reply, "x-method"), "POST");
    assert_eq!(header(&reply, "x-query"), "a=1&q=zz");
    assert_eq!(header(&reply, "x-q"), "zz");
    assert_eq!(header(&reply, "x-agent"), "c-test/1");
    let reply = server.send(request(Method::PUT, "/echo", "")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(header(&reply, "x-q"), "(none)");
    assert_eq!(reply.body.len(), 0);

    // The body bound (config max_body = 65536): at it, fine; past it, 413.
    let at = vec![b'a'; 65536];
    let reply = server
        .send(request(Method::POST, "/echo", at.clone()))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body == at);
    let reply = server
        .send(request(Method::POST, "/echo", vec![b'a'; 65537]))
        .await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.text()
    );

    // Streaming after gust_res_send: 3 MiB, written as the client reads.
    let reply = server.get("/stream/3072").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body.len(), 3 << 20);
    assert!(reply.body.iter().all(|&b| b == b'x'));

    // Key-value: set, get, delete, absent.
    let reply = server
        .send(request(Method::PUT, "/kv/greeting", "bonjour"))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let reply = server.get("/kv/greeting").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "bonjour");
    let reply = server
        .send(request(Method::DELETE, "/kv/greeting", Bytes::new()))
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(
        server.get("/kv/greeting").await.status,
        StatusCode::NOT_FOUND
    );

    // Config: a value, and one not set.
    let reply = server.get("/config/greeting").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "hello from config");
    assert_eq!(
        server.get("/config/nope").await.status,
        StatusCode::NOT_FOUND
    );

    // Every header, in order, with the route gust matched.
    let reply = server.get("/headers").await;
    assert!(
        reply.text().contains("x-gust-route: /headers\n"),
        "{}",
        reply.text()
    );
}
