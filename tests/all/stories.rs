//! The behaviour the example applications share across languages, each
//! as one story a test runs against a server it started: a hello, the
//! counter, the users application and the gateway (and the parts of
//! the helpers' tours that answer alike). The Rust examples
//! (`applications.rs`) and their twins in other languages (`languages/`)
//! call the same story, so they are held to the same assertions; what
//! differs between them (how many increments, the fuel of a hello) is a
//! parameter.

use std::future::Future;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use crate::support::{Reply, TestServer, send};

pub fn request(method: Method, path: &str, body: impl Into<Bytes>) -> Request<Bytes> {
    Request::builder()
        .method(method)
        .uri(path)
        .body(body.into())
        .unwrap()
}

pub fn post_json(path: &str, body: Value) -> Request<Bytes> {
    let mut request = request(Method::POST, path, body.to_string());
    request.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    request
}

/// The value of the header `name` of `reply`, which must have it.
pub fn header<'a>(reply: &'a Reply, name: &str) -> &'a str {
    reply
        .headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header in {reply:?}"))
        .to_str()
        .unwrap()
}

/// A hello example: `GET /` is `Hello, world!\n` (its whole length
/// known), `GET /hello/gust` is `Hello, gust!\n`, both plain text; a
/// request takes less than `max_fuel` (what a fresh instance of the
/// `language`'s runtime costs, with room to spare).
pub async fn hello_answers(server: &TestServer, language: &str, max_fuel: u64) {
    let reply = server.get("/").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "Hello, world!\n");
    assert_eq!(header(&reply, "content-type"), "text/plain; charset=utf-8");
    // The whole body was written before the handler returned.
    assert_eq!(header(&reply, "content-length"), "14");
    let reply = server.get("/hello/gust").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "Hello, gust!\n");
    assert_eq!(header(&reply, "content-type"), "text/plain; charset=utf-8");

    let record = server.record(&reply.request_id()).await;
    eprintln!(
        "{language} hello: fuel {}, peak memory {} bytes, {:?}",
        record.fuel_consumed, record.peak_memory_bytes, record.duration
    );
    assert_eq!(record.status, 200);
    assert!(
        record.fuel_consumed < max_fuel,
        "a {language} hello took {} fuel",
        record.fuel_consumed
    );
}

/// `GET /counter/{name}`: 200 and the count.
pub async fn counter_value(server: &TestServer, name: &str) -> i64 {
    let reply = server.get(&format!("/counter/{name}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()["value"].as_i64().unwrap()
}

/// `POST /counter/{name}`.
pub async fn increment(server: &TestServer, name: &str) -> Reply {
    server
        .send(request(
            Method::POST,
            &format!("/counter/{name}"),
            Bytes::new(),
        ))
        .await
}

/// `increments` concurrent `POST /counter/{name}`, each on its own
/// connection: every one answers 200 with `{"name": NAME, "value": N}`
/// as JSON, N in `1..=increments`, no N twice.
pub async fn increment_concurrently(server: &TestServer, name: &str, increments: usize) {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let mut tasks = Vec::with_capacity(increments);
    for _ in 0..increments {
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
    let mut values = Vec::with_capacity(increments);
    for task in tasks {
        let reply = task.await.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(header(&reply, "content-type"), "application/json");
        let body = reply.json();
        assert_eq!(body["name"], name);
        values.push(body["value"].as_i64().unwrap());
    }
    values.sort_unstable();
    let expected: Vec<i64> = (1..=increments as i64).collect();
    assert_eq!(values, expected, "each increment counted exactly once");
}

/// The counter on a fresh store: `increments` concurrent increments
/// counted exactly, counters independent, bad names (and only those)
/// refused with a JSON error, methods other than GET and POST refused.
pub async fn counter_story(server: &TestServer, increments: usize) {
    assert_eq!(counter_value(server, "hits").await, 0, "never counted");
    increment_concurrently(server, "hits", increments).await;
    assert_eq!(counter_value(server, "hits").await, increments as i64);

    assert_eq!(counter_value(server, "other").await, 0);
    let reply = increment(server, "visits").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
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
    assert_eq!(counter_value(server, &longest).await, 0);
    let reply = server
        .send(request(Method::DELETE, "/counter/visits", Bytes::new()))
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
}

/// The counter whose store cannot be opened (not granted): a 500 with a
/// JSON error, recorded as the function's answer, never a crash.
pub async fn counter_store_fails(server: &TestServer) {
    let reply = increment(server, "hits").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.json(), json!({"error": "the counter store failed"}));
    let record = server.record(&reply.request_id()).await;
    assert_eq!(record.status, 500);
}

/// The counter on a shared store (Redis): `increments` concurrent
/// increments on `server`; then a `second` server (another gust process,
/// as far as the store can tell) sees the count and adds to it.
pub async fn counter_shared_story(
    server: &TestServer,
    second: impl Future<Output = TestServer>,
    increments: usize,
) {
    increment_concurrently(server, "hits", increments).await;
    assert_eq!(counter_value(server, "hits").await, increments as i64);

    let second = second.await;
    assert_eq!(counter_value(&second, "hits").await, increments as i64);
    let reply = increment(&second, "hits").await;
    assert_eq!(reply.json()["value"], json!(increments + 1));
    assert_eq!(counter_value(server, "hits").await, increments as i64 + 1);
}

/// The token key the users tests sign with.
pub const TOKEN_KEY: &str = "test-token-key-0123456789abcdef\n";

/// `key` in the file `dir/token_key`, its path returned.
pub fn token_key_file(dir: &Path, key: &str) -> PathBuf {
    let path = dir.join("token_key");
    std::fs::write(&path, key).unwrap();
    path
}

/// A users manifest's `text` with the token key read from `secret_file`
/// instead of the environment (which tests must not change).
pub fn token_key_from(text: &str, secret_file: &Path) -> String {
    text.replace(
        "env = \"GUST_TOKEN_KEY\"",
        &format!("file = {:?}", secret_file.display().to_string()),
    )
}

/// Registers `name` with `password`.
pub async fn register(server: &TestServer, name: &str, password: &str) -> Reply {
    server
        .send(post_json(
            "/register",
            json!({"name": name, "password": password}),
        ))
        .await
}

/// Registers a new user `name` with the password `correct horse`: 201.
pub async fn register_new(server: &TestServer, name: &str) -> Reply {
    let registered = register(server, name, "correct horse").await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.text()
    );
    registered
}

/// Logs `name` in with `password`.
pub async fn login(server: &TestServer, name: &str, password: &str) -> Reply {
    server
        .send(post_json(
            "/login",
            json!({"name": name, "password": password}),
        ))
        .await
}

/// `GET /me` with `token` as the bearer token, if any.
pub async fn me(server: &TestServer, token: Option<&str>) -> Reply {
    let mut request = request(Method::GET, "/me", Bytes::new());
    if let Some(token) = token {
        request.headers_mut().insert(
            http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
    }
    server.send(request).await
}

/// The users application on a fresh store, its tokens signed with
/// [`TOKEN_KEY`]: registration (taken, malformed and invalid refused),
/// login (a wrong password and an unknown user alike), tokens (missing,
/// garbage, forged, flipped, and `other`'s, signed with another key,
/// refused), a race to register one name, public profiles.
/// `what` names the application in what the story prints.
pub async fn users_story(server: &TestServer, other: &TestServer, what: &str) {
    let registered = register_new(server, "alice").await;
    assert_eq!(registered.json()["name"], "alice");
    assert_eq!(header(&registered, "content-type"), "application/json");
    let record = server.record(&registered.request_id()).await;
    eprintln!(
        "{what}: register (one PBKDF2 hash) took {:?}, fuel {} of {} ({:.1}%)",
        record.duration,
        record.fuel_consumed,
        record.fuel_budget,
        record.fuel_consumed as f64 * 100.0 / record.fuel_budget as f64
    );

    // Taken, malformed, invalid.
    let duplicate = register(server, "alice", "correct horse").await;
    assert_eq!(
        duplicate.status,
        StatusCode::CONFLICT,
        "{}",
        duplicate.text()
    );
    for body in [
        "{\"name\": \"bob\"",
        "not json",
        "{\"name\": 1, \"password\": 2}",
        "{\"name\": \"bob\"}",
    ] {
        let reply = server.send(request(Method::POST, "/register", body)).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.text()
        );
    }
    let reply = register(server, "a b", "long enough").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    let reply = register(server, "bob", "short").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    let reply = server.send(request(Method::POST, "/login", "{")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());

    // Wrong password, unknown user: 401 alike.
    let wrong = login(server, "alice", "battery staple").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.text());
    let unknown = login(server, "mallory", "correct horse").await;
    assert_eq!(
        unknown.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        unknown.text()
    );

    let logged_in = login(server, "alice", "correct horse").await;
    assert_eq!(logged_in.status, StatusCode::OK, "{}", logged_in.text());
    let token = logged_in.json()["token"].as_str().unwrap().to_owned();
    assert!(logged_in.json()["expires_at"].as_i64().unwrap() > 0);
    let record = server.record(&logged_in.request_id()).await;
    eprintln!(
        "{what}: login (one PBKDF2 hash, one HMAC) took {:?}, fuel {}",
        record.duration, record.fuel_consumed
    );

    let who = me(server, Some(&token)).await;
    assert_eq!(who.status, StatusCode::OK, "{}", who.text());
    assert_eq!(who.json()["name"], "alice");

    // No token, garbage, a forged payload, a flipped signature, a token
    // of another key.
    let missing = me(server, None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(header(&missing, "www-authenticate"), "Bearer");
    assert_eq!(
        me(server, Some("not-a-token")).await.status,
        StatusCode::UNAUTHORIZED
    );
    let (_, signature) = token.split_once('.').unwrap();
    let forged_payload = base64_url(br#"{"sub":"mallory","exp":99999999999}"#);
    let forged = me(server, Some(&format!("{forged_payload}.{signature}"))).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED, "{}", forged.text());
    let mut flipped = token.clone().into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    assert_eq!(
        me(server, Some(&flipped)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        me(other, Some(&token)).await.status,
        StatusCode::UNAUTHORIZED,
        "a token signed with another key"
    );

    // Concurrent registrations of one name: exactly one wins (the store's
    // compare-and-swap settles the race the existence check cannot).
    let mut racers = Vec::new();
    for i in 0..8 {
        let addr = server.addr;
        racers.push(tokio::spawn(async move {
            let body = json!({"name": "carol", "password": format!("password {i}")});
            send(addr, post_json("/register", body))
                .await
                .unwrap()
                .status
        }));
    }
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.unwrap());
    }
    statuses.sort();
    let mut expected = vec![StatusCode::CONFLICT; 7];
    expected.insert(0, StatusCode::CREATED);
    assert_eq!(statuses, expected);

    // Public profiles.
    let profile = server.get("/users/alice").await;
    assert_eq!(profile.status, StatusCode::OK, "{}", profile.text());
    assert_eq!(profile.json()["name"], "alice");
    assert!(profile.json().get("hash").is_none(), "{}", profile.text());
    assert!(profile.json().get("salt").is_none(), "{}", profile.text());
    assert_eq!(
        server.get("/users/nobody").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.get("/users/a%20b").await.status,
        StatusCode::BAD_REQUEST
    );
}

/// The users application whose tokens expire the second they are issued
/// (`token_ttl` 0): a fresh token is refused as expired.
pub async fn users_expired_story(server: &TestServer) {
    register_new(server, "alice").await;
    let logged_in = login(server, "alice", "correct horse").await;
    assert_eq!(logged_in.status, StatusCode::OK, "{}", logged_in.text());
    let token = logged_in.json()["token"].as_str().unwrap().to_owned();
    let expired = me(server, Some(&token)).await;
    assert_eq!(
        expired.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        expired.text()
    );
    assert!(expired.text().contains("expired"), "{}", expired.text());
}

/// The gateway, served with the users and counter functions it calls
/// in-process on a fresh store: the dashboard merges a user's profile and
/// count (two calls, each recorded as a child of the dashboard's
/// request); a user without a count has 0 visits, an unknown one is 404,
/// a name that is not one path segment 400.
pub async fn gateway_story(server: &TestServer) {
    let registered = register_new(server, "alice").await;
    for _ in 0..3 {
        let reply = increment(server, "alice").await;
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

    register_new(server, "bob").await;
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

/// The key-value and config endpoints of the Python and JavaScript
/// helpers' tours (`guest-examples/{python,js}/tour`), which answer
/// alike: set, get, exists, increment, keys, delete; a config value, a
/// default for one not set, all values.
pub async fn tour_key_value_and_config(server: &TestServer) {
    let reply = server
        .send(request(Method::PUT, "/kv/greeting", "hello \u{1F600}"))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    assert_eq!(reply.json(), json!({"stored": "greeting", "exists": true}));
    let reply = server.get("/kv/greeting").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "hello \u{1F600}");
    for value in [2, 4] {
        let reply = server
            .send(request(Method::POST, "/kv/hits", Bytes::new()))
            .await;
        assert_eq!(reply.json(), json!({"value": value}));
    }
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

    assert_eq!(
        server.get("/config").await.json(),
        json!({
            "greeting": "hello from config", "missing": "fallback",
            "all": {"greeting": "hello from config"},
        })
    );
}

/// A tour's `GET /fail`, whose handler raises: a 500, recorded as the
/// function's answer.
pub async fn tour_failure_is_a_500(server: &TestServer) {
    let reply = server.get("/fail").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.text(), "internal error\n");
    assert_eq!(server.record(&reply.request_id()).await.status, 500);
}

/// A tour served without its store: `GET /kv` is a 500 whose JSON error
/// (returned) says the store was denied (the helper's KvError).
pub async fn tour_without_its_store(server: &TestServer) -> Value {
    let reply = server.get("/kv").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    let answer = reply.json();
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("access denied")),
        "{answer}"
    );
    answer
}

/// Base64url without padding, as the users example encodes tokens.
fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}
