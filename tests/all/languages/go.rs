//! The Go examples (`guest-examples/go/`), built from source by their
//! manifests' build commands (`sdk/go/build.sh`: `wit-bindgen go`, Go's
//! `GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared`, `wasm-tools
//! component embed` and `component new` with the proxy adapter) and served
//! over real HTTP: hello (a `net/http` handler through `gust.dev/sdk/go`)
//! and the users application (key-value and config; the Rust users
//! example's statuses, as `applications.rs` checks them).

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use super::{serve_example, toolchain};
use crate::support::{Reply, TestServer, send};

/// What `sdk/go/build.sh` runs.
const TOOLS: &[&str] = &["go", "wit-bindgen", "wasm-tools"];

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
async fn go_hello_answers_both_routes() {
    if !toolchain(TOOLS) {
        return;
    }
    let server = serve_example("go/hello", |text| text).await;
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

    // The Go runtime and net/http start in every fresh instance: a few
    // million fuel (sdk/go/README.md), far below the default budget.
    let record = server.record(&reply.request_id()).await;
    eprintln!(
        "go hello: fuel {}, peak memory {} bytes, {:?}",
        record.fuel_consumed, record.peak_memory_bytes, record.duration
    );
    assert!(
        record.fuel_consumed < 20_000_000,
        "a Go hello took {} fuel",
        record.fuel_consumed
    );
}

/// The users manifest with the token key read from a file in `dir`
/// (tests must not set environment variables) and `token_ttl` as given.
async fn users_server(dir: &std::path::Path, key: &str, ttl: &str) -> TestServer {
    let secret = dir.join("token_key");
    std::fs::write(&secret, key).unwrap();
    serve_example("go/users", |text| {
        let edited = text
            .replace(
                "env = \"GUST_TOKEN_KEY\"",
                &format!("file = {:?}", secret.display().to_string()),
            )
            .replace("token_ttl = \"3600\"", &format!("token_ttl = \"{ttl}\""));
        assert!(edited.contains("file = "), "{edited}");
        assert!(
            edited.contains(&format!("token_ttl = \"{ttl}\"")),
            "{edited}"
        );
        edited
    })
    .await
}

async fn login(server: &TestServer, name: &str, password: &str) -> Reply {
    server
        .send(post_json(
            "/login",
            json!({"name": name, "password": password}),
        ))
        .await
}

async fn me(server: &TestServer, token: Option<&str>) -> Reply {
    let mut request = request(Method::GET, "/me", Bytes::new());
    if let Some(token) = token {
        request.headers_mut().insert(
            http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
    }
    server.send(request).await
}

/// Base64url without padding, as the users example encodes tokens.
fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_users_register_log_in_and_verify_tokens() {
    if !toolchain(TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = users_server(dir.path(), "test-token-key-0123456789abcdef\n", "3600").await;

    let alice = json!({"name": "alice", "password": "correct horse"});
    let registered = server.send(post_json("/register", alice.clone())).await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.text()
    );
    assert_eq!(registered.json()["name"], "alice");
    assert_eq!(header(&registered, "content-type"), "application/json");
    let record = server.record(&registered.request_id()).await;
    eprintln!(
        "go users: register (one PBKDF2 hash) took {:?}, fuel {} of {} ({:.1}%)",
        record.duration,
        record.fuel_consumed,
        record.fuel_budget,
        record.fuel_consumed as f64 * 100.0 / record.fuel_budget as f64
    );

    // Taken, malformed, invalid.
    let duplicate = server.send(post_json("/register", alice.clone())).await;
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
    let reply = server
        .send(post_json(
            "/register",
            json!({"name": "a b", "password": "long enough"}),
        ))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    let reply = server
        .send(post_json(
            "/register",
            json!({"name": "bob", "password": "short"}),
        ))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    let reply = server.send(request(Method::POST, "/login", "{")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());

    // Wrong password, unknown user: 401 alike.
    let wrong = login(&server, "alice", "battery staple").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.text());
    let unknown = login(&server, "mallory", "correct horse").await;
    assert_eq!(
        unknown.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        unknown.text()
    );

    let logged_in = login(&server, "alice", "correct horse").await;
    assert_eq!(logged_in.status, StatusCode::OK, "{}", logged_in.text());
    let token = logged_in.json()["token"].as_str().unwrap().to_owned();
    assert!(logged_in.json()["expires_at"].as_i64().unwrap() > 0);

    let who = me(&server, Some(&token)).await;
    assert_eq!(who.status, StatusCode::OK, "{}", who.text());
    assert_eq!(who.json()["name"], "alice");

    // No token, garbage, a forged payload, a flipped signature.
    let missing = me(&server, None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(header(&missing, "www-authenticate"), "Bearer");
    assert_eq!(
        me(&server, Some("not-a-token")).await.status,
        StatusCode::UNAUTHORIZED
    );
    let (_, signature) = token.split_once('.').unwrap();
    let forged_payload = base64_url(br#"{"sub":"mallory","exp":99999999999}"#);
    let forged = me(&server, Some(&format!("{forged_payload}.{signature}"))).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED, "{}", forged.text());
    let mut flipped = token.clone().into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    assert_eq!(
        me(&server, Some(&flipped)).await.status,
        StatusCode::UNAUTHORIZED
    );

    // A token signed with another key.
    let other_dir = tempfile::tempdir().unwrap();
    let other = users_server(other_dir.path(), "another key", "3600").await;
    assert_eq!(
        me(&other, Some(&token)).await.status,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_users_refuse_expired_tokens() {
    if !toolchain(TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // token_ttl 0: tokens expire the second they are issued.
    let server = users_server(dir.path(), "test-token-key-0123456789abcdef\n", "0").await;
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
    let logged_in = login(&server, "alice", "correct horse").await;
    assert_eq!(logged_in.status, StatusCode::OK, "{}", logged_in.text());
    let token = logged_in.json()["token"].as_str().unwrap().to_owned();
    let expired = me(&server, Some(&token)).await;
    assert_eq!(
        expired.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        expired.text()
    );
    assert!(expired.text().contains("expired"), "{}", expired.text());
}
