//! The Python examples (`guest-examples/python/`), built from source by
//! their manifests' build commands (componentize-py against gust's
//! `gust:function/handler` world, with the helper package `sdk/python/gust`
//! on the Python path) and served over real HTTP: hello, and the counter
//! application with the Rust counter's answers, on SQLite and on Redis.

use http::{Method, StatusCode};
use serde_json::json;

use super::{serve_example, toolchain};
use crate::stories::{
    counter_shared_story, counter_store_fails, counter_story, header, hello_answers, request,
    tour_failure_is_a_500, tour_key_value_and_config, tour_without_its_store,
};
use crate::support::servers::redis;

/// What the build commands run.
const TOOLS: &[&str] = &["componentize-py"];

/// Concurrent increments of one counter (all admitted at once: the
/// function's default concurrency is 100).
const INCREMENTS: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_hello_answers_both_routes() {
    if !toolchain(TOOLS) {
        return;
    }
    let server = serve_example("python/hello", |text| text).await;
    // Every request is a fresh instance of the pre-initialized
    // interpreter: about 1 M fuel (sdk/python/README.md), far inside the
    // default budget.
    hello_answers(&server, "Python", 10_000_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_counter_counts_concurrent_increments_exactly() {
    if !toolchain(TOOLS) {
        return;
    }
    // The Rust counter's story.
    counter_story(
        &serve_example("python/counter", |text| text).await,
        INCREMENTS,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_counter_without_its_store_is_a_500_not_a_crash() {
    if !toolchain(TOOLS) {
        return;
    }
    // The store not granted: the helper's KvError, caught by the app.
    let server = serve_example("python/counter", |text| {
        assert!(text.contains("key_value_stores = [\"default\"]"));
        text.replace("key_value_stores = [\"default\"]", "")
    })
    .await;
    counter_store_fails(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_counter_counts_on_redis() {
    if !toolchain(TOOLS) {
        return;
    }
    let Some(redis) = redis() else { return };
    let on_redis = |text: String| {
        let name = "name = \"python-counter\"\n";
        assert!(text.contains(name), "the shipped name changed");
        text.replace(
            name,
            &format!(
                "{name}\n[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://{}\"\n",
                redis.addr
            ),
        )
    };
    let server = serve_example("python/counter", on_redis).await;
    counter_shared_story(
        &server,
        serve_example("python/counter", on_redis),
        INCREMENTS,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_tour_covers_the_helper() {
    if !toolchain(TOOLS) {
        return;
    }
    let server = serve_example("python/tour", |text| text).await;

    // The request: method, path, query, route, params (none here),
    // headers, body as text and JSON.
    let mut echo = request(Method::POST, "/echo?q=zz&other=1", "{\"a\": [1, 2]}");
    echo.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    let reply = server.send(echo).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        reply.json(),
        json!({
            "method": "POST", "path": "/echo", "q": "zz", "route": "/echo",
            "params": {}, "content_type": "application/json",
            "body": "{\"a\": [1, 2]}", "json": {"a": [1, 2]},
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
    assert!(reply.headers.get("content-type").is_none());
    let reply = server.get("/answer/json").await;
    assert_eq!(header(&reply, "content-type"), "application/json");
    assert_eq!(reply.json(), json!({"list": [1, "two"]}));
    let reply = server.get("/answer/response").await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.text(), "made\n");
    let tours: Vec<_> = reply.headers.get_all("x-tour").iter().collect();
    assert_eq!(tours, ["one", "two"]);
    assert_eq!(
        server.get("/answer/nothing").await.status,
        StatusCode::NOT_FOUND
    );

    // Outbound HTTP: the function itself in-process, and a host the
    // manifest does not allow (FetchError, no request sent).
    let reply = server.get("/fetch/self").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        reply.json(),
        json!({"status": 200, "content_type": "application/json", "body": {"list": [1, "two"]}})
    );
    let record = server.record(&reply.request_id()).await;
    assert_eq!(record.outbound_requests, 1);
    let reply = server.get("/fetch/denied").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
    assert!(
        reply.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("not-allowed.example")),
        "{}",
        reply.text()
    );

    // An exception: a 500, recorded as the function's answer.
    tour_failure_is_a_500(&server).await;

    // The store not granted: the helper's KvError.
    drop(server);
    let server = serve_example("python/tour", |text| {
        text.replace("key_value_stores = [\"default\"]", "")
    })
    .await;
    tour_without_its_store(&server).await;
}
