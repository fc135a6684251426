//! The example applications of `guest-examples/` end to end, as a user
//! runs them: counter (atomic increments on SQLite and Redis), upload
//! (50 MiB streamed into a blob container and back), users (registration,
//! login, signed tokens) and gateway (users and counter composed
//! in-process). The shipped manifests (`guest-examples/*/gust.toml`) are
//! the ones served where a test can use them as they are.
//!
//! This file is long because each application's behaviour is one story
//! (every status its issue names); the helpers at the top are shared.

use std::path::Path;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use crate::support::s3::S3Server;
use crate::support::servers::redis;
use crate::support::{Reply, TestServer, manifest, send};

/// Concurrent increments of one counter.
const INCREMENTS: usize = 500;
/// The large upload.
const BIG: usize = 50 << 20;

/// The shipped manifest of the example `app`, with the components it
/// names (`../target/wasm32-wasip2/release/NAME.wasm`) as the test's
/// placeholders and the token secret read from `secret_file` instead of
/// the environment (which tests must not change).
fn example_manifest(app: &str, secret_file: &Path) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../guest-examples")
        .join(app)
        .join("gust.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    for name in ["counter", "upload", "users", "gateway"] {
        text = text.replace(
            &format!("\"../target/wasm32-wasip2/release/{name}.wasm\""),
            &format!("\"{{{}}}\"", name.to_uppercase()),
        );
    }
    text.replace(
        "env = \"GUST_TOKEN_KEY\"",
        &format!("file = {:?}", secret_file.display().to_string()),
    )
}

/// A token key in a file of its own.
fn secret_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("token_key");
    std::fs::write(&path, "test-token-key-0123456789abcdef\n").unwrap();
    path
}

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

/// The counter example, admitting every one of the concurrent requests
/// (100 run at once, the rest queue), with `head` (a backend mapping).
async fn counter_server(head: &str) -> TestServer {
    TestServer::start(
        manifest()
            .head(head)
            .function("counter", "{COUNTER}")
            .set("key_value_stores = [\"default\"]\nqueue = 1000\nqueue_timeout = \"60s\"")
            .route("/counter/{name}"),
    )
    .await
}

/// `INCREMENTS` concurrent `POST /counter/{name}`, each on its own
/// connection; every one must answer 200 with a value in `1..=INCREMENTS`,
/// and no value may be answered twice.
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
        values.push(reply.json()["value"].as_i64().unwrap());
    }
    values.sort_unstable();
    let expected: Vec<i64> = (1..=INCREMENTS as i64).collect();
    assert_eq!(values, expected, "each increment counted exactly once");
}

async fn counter_value(server: &TestServer, name: &str) -> i64 {
    let reply = server.get(&format!("/counter/{name}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()["value"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_counts_concurrent_increments_exactly_on_sqlite() {
    let server = counter_server("").await;
    assert_eq!(counter_value(&server, "hits").await, 0, "never counted");
    increment_concurrently(&server, "hits").await;
    assert_eq!(counter_value(&server, "hits").await, INCREMENTS as i64);
    // Counters are independent; bad names are refused.
    assert_eq!(counter_value(&server, "other").await, 0);
    let reply = server.get("/counter/a%20b").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_counts_concurrent_increments_exactly_on_redis() {
    let Some(redis) = redis() else { return };
    let head = format!(
        "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://{}\"",
        redis.addr
    );
    let server = counter_server(&head).await;
    increment_concurrently(&server, "hits").await;
    assert_eq!(counter_value(&server, "hits").await, INCREMENTS as i64);

    // The count lives in Redis: a second server (another gust process,
    // as far as the store can tell) sees it and adds to it.
    let second = counter_server(&head).await;
    assert_eq!(counter_value(&second, "hits").await, INCREMENTS as i64);
    let reply = second
        .send(request(Method::POST, "/counter/hits", Bytes::new()))
        .await;
    assert_eq!(reply.json()["value"], json!(INCREMENTS + 1));
    assert_eq!(counter_value(&server, "hits").await, INCREMENTS as i64 + 1);
}

/// Bytes that differ at every offset, so a chunk moved, dropped or
/// repeated shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64).wrapping_mul(2_654_435_761).to_le_bytes()[3])
        .collect()
}

/// FNV-1a, to report a mismatch without printing 50 MiB.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_streams_50_mib_in_and_out_in_little_memory() {
    upload_story("").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_streams_50_mib_in_and_out_of_s3() {
    let Some(s3) = S3Server::start() else { return };
    upload_story(&s3.container("uploads")).await;
}

/// Everything the upload example does, on the container backend `head`
/// maps (the embedded directory if empty).
async fn upload_story(head: &str) {
    // 51 MiB objects allowed: 50 MiB fits, 52 MiB does not.
    let server = TestServer::start(
        manifest()
            .head("[blob]\nmax_object_size = 53477376")
            .head(head)
            .function("upload", "{UPLOAD}")
            .set("blob_containers = [\"uploads\"]\ntimeout = \"60s\"")
            .route("/files")
            .route("/files/{name}"),
    )
    .await;

    let data = pattern(BIG);
    let put = server
        .send(request(Method::PUT, "/files/big.bin", data.clone()))
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.text());
    assert_eq!(put.json(), json!({"name": "big.bin", "size": BIG}));
    let put_record = server.record(&put.request_id()).await;

    let get = server.get("/files/big.bin").await;
    assert_eq!(get.status, StatusCode::OK, "{}", get.text());
    assert_eq!(
        get.headers[http::header::CONTENT_LENGTH],
        BIG.to_string().as_str()
    );
    assert_eq!(get.body.len(), BIG);
    assert_eq!(fnv(&get.body), fnv(&data), "byte-identical round trip");
    assert!(get.body == data);
    let get_record = server.record(&get.request_id()).await;

    // Neither direction held the file: the guest's memory stays a small
    // fraction of it.
    for (what, record) in [("upload", &put_record), ("download", &get_record)] {
        assert!(
            record.peak_memory_bytes < (BIG as u64) / 4,
            "{what} peaked at {} bytes of guest memory for a {BIG}-byte file",
            record.peak_memory_bytes
        );
    }
    eprintln!(
        "upload: 50 MiB in: {:?}, fuel {} (+{} host), peak memory {} B; out: {:?}, fuel {} (+{} host), peak memory {} B",
        put_record.duration,
        put_record.fuel_consumed,
        put_record.host_fuel,
        put_record.peak_memory_bytes,
        get_record.duration,
        get_record.fuel_consumed,
        get_record.host_fuel,
        get_record.peak_memory_bytes
    );

    // Listing and deleting.
    let small = server
        .send(request(Method::PUT, "/files/notes.txt", "hello"))
        .await;
    assert_eq!(small.status, StatusCode::CREATED, "{}", small.text());
    let list = server.get("/files").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text());
    assert_eq!(list.json(), json!(["big.bin", "notes.txt"]));
    let deleted = server
        .send(request(Method::DELETE, "/files/big.bin", Bytes::new()))
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    assert_eq!(
        server.get("/files/big.bin").await.status,
        StatusCode::NOT_FOUND
    );
    let again = server
        .send(request(Method::DELETE, "/files/big.bin", Bytes::new()))
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(server.get("/files").await.json(), json!(["notes.txt"]));
    assert_eq!(server.get("/files/notes.txt").await.text(), "hello");

    // An empty file is a file.
    let empty = server
        .send(request(Method::PUT, "/files/empty", Bytes::new()))
        .await;
    assert_eq!(empty.status, StatusCode::CREATED, "{}", empty.text());
    let empty = server.get("/files/empty").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.body.is_empty());

    // Over the container's limit: 413, and nothing stored.
    let too_big = server
        .send(request(
            Method::PUT,
            "/files/too-big.bin",
            pattern(52 << 20),
        ))
        .await;
    assert_eq!(
        too_big.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        too_big.text()
    );
    assert_eq!(
        server.get("/files/too-big.bin").await.status,
        StatusCode::NOT_FOUND
    );

    // Bad names: 400.
    for name in ["..secret", ".hidden", "a%20b", "a%2Fb"] {
        let reply = server
            .send(request(Method::PUT, &format!("/files/{name}"), "x"))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{name}: {}",
            reply.text()
        );
    }
    let long = "x".repeat(129);
    let reply = server.get(&format!("/files/{long}")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_short_stores_nothing() {
    let server = TestServer::start(
        manifest()
            .function("upload", "{UPLOAD}")
            .set("blob_containers = [\"uploads\"]")
            .route("/files")
            .route("/files/{name}"),
    )
    .await;
    // 10 MiB announced, 1 MiB sent, then the client goes away.
    let mut bytes = format!(
        "PUT /files/partial.bin HTTP/1.1\r\nhost: gust\r\ncontent-length: {}\r\n\r\n",
        10 << 20
    )
    .into_bytes();
    bytes.extend(pattern(1 << 20));
    let stream = crate::support::client::raw_request(server.addr, &bytes).await;
    drop(stream);
    let record = server.record_of("upload").await;
    // The client is gone (499), and the half-written object with it.
    assert_eq!(record.status, 499, "{record:?}");
    assert_eq!(
        server.get("/files/partial.bin").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(server.get("/files").await.json(), json!([]));
}

/// Logs `name` in with `password`.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_register_log_in_and_verify_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path());
    let server = TestServer::start(example_manifest("users", &secret)).await;

    let alice = json!({"name": "alice", "password": "correct horse"});
    let registered = server.send(post_json("/register", alice.clone())).await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.text()
    );
    assert_eq!(registered.json()["name"], "alice");
    let record = server.record(&registered.request_id()).await;
    eprintln!(
        "users: register (one PBKDF2 hash) took {:?}, fuel {} of {} ({:.1}%)",
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
    let record = server.record(&logged_in.request_id()).await;
    eprintln!(
        "users: login (one PBKDF2 hash, one HMAC) took {:?}, fuel {}",
        record.duration, record.fuel_consumed
    );

    let who = me(&server, Some(&token)).await;
    assert_eq!(who.status, StatusCode::OK, "{}", who.text());
    assert_eq!(who.json()["name"], "alice");

    // No token, garbage, a forged payload, a token of another key.
    assert_eq!(me(&server, None).await.status, StatusCode::UNAUTHORIZED);
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

    let other_dir = tempfile::tempdir().unwrap();
    let other_secret = other_dir.path().join("token_key");
    std::fs::write(&other_secret, "another key").unwrap();
    let other = TestServer::start(example_manifest("users", &other_secret)).await;
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
    assert_eq!(
        server.get("/users/nobody").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_refuse_expired_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path());
    // token_ttl 0: tokens expire the second they are issued.
    let text =
        example_manifest("users", &secret).replace("token_ttl = \"3600\"", "token_ttl = \"0\"");
    assert!(text.contains("token_ttl = \"0\""));
    let server = TestServer::start(text).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_merges_users_and_counter_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path());
    // The shipped all-in-one manifest: the four apps as one.
    let server = TestServer::start(example_manifest("gateway", &secret)).await;

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
    let answer = dashboard.json();
    assert_eq!(answer["user"], "alice");
    assert_eq!(answer["profile"]["name"], "alice");
    assert_eq!(
        answer["profile"]["created_at"],
        registered.json()["created_at"]
    );
    assert_eq!(answer["visits"], 3);

    // A user without a count has 0 visits; an unknown one is 404.
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
    assert_eq!(
        server.get("/dashboard/nobody").await.status,
        StatusCode::NOT_FOUND
    );
    let gateway = server.record(&dashboard.request_id()).await;
    assert_eq!(gateway.status, 200);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_counter_and_upload_manifests_serve() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path());
    let counter = TestServer::start(example_manifest("counter", &secret)).await;
    let reply = counter
        .send(request(Method::POST, "/counter/visits", Bytes::new()))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json(), json!({"name": "visits", "value": 1}));
    let reply = counter
        .send(request(Method::DELETE, "/counter/visits", Bytes::new()))
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);

    let upload = TestServer::start(example_manifest("upload", &secret)).await;
    let data = pattern(3 << 20);
    let put = upload
        .send(request(Method::PUT, "/files/photo.jpg", data.clone()))
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.text());
    let get = upload.get("/files/photo.jpg").await;
    assert_eq!(get.status, StatusCode::OK);
    assert!(get.body == data);
    assert_eq!(upload.get("/files").await.json(), json!(["photo.jpg"]));
}
