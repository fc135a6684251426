//! The example applications of `guest-examples/` end to end, as a user
//! runs them: counter (atomic increments on SQLite and Redis), upload
//! (50 MiB streamed into a blob container and back), users (registration,
//! login, signed tokens) and gateway (users and counter composed
//! in-process). The shipped manifests (`guest-examples/*/gust.toml`) are
//! the ones served where a test can use them as they are.
//!
//! The counter, users and gateway stories (every status their issues
//! name) are in `stories.rs`, where the same applications written in
//! other languages (`languages/`) are held to them too; the upload story
//! is here.

use std::path::Path;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;

use crate::stories::{
    TOKEN_KEY, counter_shared_story, counter_store_fails, counter_story, gateway_story, request,
    token_key_file, token_key_from, users_expired_story, users_story,
};
use crate::support::s3::S3Server;
use crate::support::servers::redis;
use crate::support::{TestServer, manifest};

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
    token_key_from(&text, secret_file)
}

/// A token key in a file of its own.
fn secret_file(dir: &Path) -> std::path::PathBuf {
    token_key_file(dir, TOKEN_KEY)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_counts_concurrent_increments_exactly_on_sqlite() {
    counter_story(&counter_server("").await, INCREMENTS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_without_its_store_is_a_500_not_a_crash() {
    let server = TestServer::start(
        manifest()
            .function("counter", "{COUNTER}")
            .route("/counter/{name}"),
    )
    .await;
    counter_store_fails(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_counts_concurrent_increments_exactly_on_redis() {
    let Some(redis) = redis() else { return };
    let head = format!(
        "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://{}\"",
        redis.addr
    );
    let server = counter_server(&head).await;
    counter_shared_story(&server, counter_server(&head), INCREMENTS).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_register_log_in_and_verify_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path());
    let server = TestServer::start(example_manifest("users", &secret)).await;
    let other_dir = tempfile::tempdir().unwrap();
    let other_secret = token_key_file(other_dir.path(), "another key");
    let other = TestServer::start(example_manifest("users", &other_secret)).await;
    users_story(&server, &other, "users").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_refuse_expired_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path());
    // token_ttl 0: tokens expire the second they are issued.
    let text =
        example_manifest("users", &secret).replace("token_ttl = \"3600\"", "token_ttl = \"0\"");
    assert!(text.contains("token_ttl = \"0\""));
    users_expired_story(&TestServer::start(text).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_merges_users_and_counter_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path());
    // The shipped all-in-one manifest: the four apps as one.
    gateway_story(&TestServer::start(example_manifest("gateway", &secret)).await).await;
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
