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
    let reply = server.get("/fail").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.text(), "internal error\n");
    assert_eq!(server.record(&reply.request_id()).await.status, 500);

    // The store not granted: the helper's KvError.
    drop(server);
    let server = serve_example("python/tour", |text| {
        text.replace("key_value_stores = [\"default\"]", "")
    })
    .await;
    let reply = server.get("/kv").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        reply.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("access denied")),
        "{}",
        reply.text()
    );
}
