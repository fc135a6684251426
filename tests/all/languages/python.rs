//! The Python examples (`guest-examples/python/`), built from source by
//! their manifests' build commands (componentize-py against gust's
//! `gust:function/handler` world, with the helper package `sdk/python/gust`
//! on the Python path) and served over real HTTP: hello, and the counter
//! application with the Rust counter's answers, on SQLite and on Redis.

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use serde_json::json;

use super::{serve_example, toolchain};
use crate::support::servers::redis;
use crate::support::{Reply, TestServer, send};

/// What the build commands run.
const TOOLS: &[&str] = &["componentize-py"];

/// Concurrent increments of one counter (all admitted at once: the
/// function's default concurrency is 100).
const INCREMENTS: usize = 100;

fn request(method: Method, path: &str, body: impl Into<Bytes>) -> Request<Bytes> {
    Request::builder()
        .method(method)
        .uri(path)
        .body(body.into())
        .unwrap()
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
async fn python_hello_answers_both_routes() {
    if !toolchain(TOOLS) {
        return;
    }
    let server = serve_example("python/hello", |text| text).await;
    let reply = server.get("/").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "Hello, world!\n");
    assert_eq!(header(&reply, "content-type"), "text/plain; charset=utf-8");
    assert_eq!(header(&reply, "content-length"), "14");
    let reply = server.get("/hello/gust").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "Hello, gust!\n");

    // Every request is a fresh instance of the pre-initialized
    // interpreter: about 1 M fuel (sdk/python/README.md), far inside the
    // default budget.
    let record = server.record(&reply.request_id()).await;
    assert_eq!(record.status, 200);
    assert!(
        record.fuel_consumed < 10_000_000,
        "a Python hello took {} fuel",
        record.fuel_consumed
    );
}

async fn counter_value(server: &TestServer, name: &str) -> i64 {
    let reply = server.get(&format!("/counter/{name}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()["value"].as_i64().unwrap()
}

async fn increment(server: &TestServer, name: &str) -> Reply {
    server
        .send(request(
            Method::POST,
            &format!("/counter/{name}"),
            Bytes::new(),
        ))
        .await
}

/// `INCREMENTS` concurrent `POST /counter/{name}`, each on its own
/// connection: every one answers 200 with a value in `1..=INCREMENTS`,
/// none twice.
async fn increment_concurrently(server: &TestServer, name: &str) {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let mut tasks = Vec::with_capacity(INCREMENTS);
    for _ in 0..INCREMENTS {
        let addr = server.addr;
        let path = format!("/counter/{name}");
        tasks.push(tokio::spawn(async move {
            tokio::time::timeout(
                crate::support::REQUEST_TIMEOUT * 2,
                send(addr, request(Method::POST, &path, Bytes::new())),
            )
            .await
            .expect("increment timed out")
            .expect("increment failed")
        }));
    }
    let mut values = Vec::with_capacity(INCREMENTS);
    for task in tasks {
        let reply = task.await.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(header(&reply, "content-type"), "application/json");
        let body = reply.json();
        assert_eq!(body["name"], name);
        values.push(body["value"].as_i64().unwrap());
    }
    values.sort_unstable();
    let expected: Vec<i64> = (1..=INCREMENTS as i64).collect();
    assert_eq!(values, expected, "each increment counted exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_counter_counts_concurrent_increments_exactly() {
    if !toolchain(TOOLS) {
        return;
    }
    let server = serve_example("python/counter", |text| text).await;
    assert_eq!(counter_value(&server, "hits").await, 0, "never counted");
    increment_concurrently(&server, "hits").await;
    assert_eq!(counter_value(&server, "hits").await, INCREMENTS as i64);

    // Counters are independent; bad names and other methods are refused
    // as the Rust counter refuses them.
    assert_eq!(counter_value(&server, "other").await, 0);
    let reply = increment(&server, "visits").await;
    assert_eq!(reply.json(), json!({"name": "visits", "value": 1}));
    for bad in ["a%20b", "a:b", &"x".repeat(129)] {
        let reply = server.get(&format!("/counter/{bad}")).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            reply.text()
        );
        assert_eq!(
            reply.json(),
            json!({"error": "a counter name is 1 to 128 of A-Z a-z 0-9 . _ -"})
        );
    }
    let longest = "x".repeat(128);
    assert_eq!(counter_value(&server, &longest).await, 0);
    let reply = server
        .send(request(Method::DELETE, "/counter/visits", Bytes::new()))
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
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
    let reply = increment(&server, "hits").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.json(), json!({"error": "the counter store failed"}));
    let record = server.record(&reply.request_id()).await;
    assert_eq!(record.status, 500);
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
    increment_concurrently(&server, "hits").await;
    assert_eq!(counter_value(&server, "hits").await, INCREMENTS as i64);

    // The count lives in Redis: a second server (another gust process,
    // as far as the store can tell) sees it and adds to it.
    let second = serve_example("python/counter", on_redis).await;
    assert_eq!(counter_value(&second, "hits").await, INCREMENTS as i64);
    let reply = increment(&second, "hits").await;
    assert_eq!(reply.json()["value"], json!(INCREMENTS + 1));
    assert_eq!(counter_value(&server, "hits").await, INCREMENTS as i64 + 1);
}
