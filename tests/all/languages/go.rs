//! The Go examples (`guest-examples/go/`), built from source by their
//! manifests' build commands (`sdk/go/build.sh`: `wit-bindgen go`, Go's
//! `GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared`, `wasm-tools
//! component embed` and `component new` with the proxy adapter) and served
//! over real HTTP: hello (a `net/http` handler through `gust.dev/sdk/go`)
//! and the users application (key-value and config; held to the Rust
//! users example's story, `stories::users_story`).

use super::{serve_example, toolchain};
use crate::stories::{
    TOKEN_KEY, hello_answers, token_key_file, token_key_from, users_expired_story, users_story,
};
use crate::support::TestServer;

/// What `sdk/go/build.sh` runs.
const TOOLS: &[&str] = &["go", "wit-bindgen", "wasm-tools"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_hello_answers_both_routes() {
    if !toolchain(TOOLS) {
        return;
    }
    let server = serve_example("go/hello", |text| text).await;
    // The Go runtime and net/http start in every fresh instance: a few
    // million fuel (sdk/go/README.md), far below the default budget.
    hello_answers(&server, "Go", 20_000_000).await;
}

/// The users manifest with the token key read from a file in `dir`
/// (tests must not set environment variables) and `token_ttl` as given.
async fn users_server(dir: &std::path::Path, key: &str, ttl: &str) -> TestServer {
    let secret = token_key_file(dir, key);
    serve_example("go/users", |text| {
        let edited = token_key_from(&text, &secret)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_users_register_log_in_and_verify_tokens() {
    if !toolchain(TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = users_server(dir.path(), TOKEN_KEY, "3600").await;
    let other_dir = tempfile::tempdir().unwrap();
    let other = users_server(other_dir.path(), "another key", "3600").await;
    // The Rust users example's story.
    users_story(&server, &other, "go users").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_users_refuse_expired_tokens() {
    if !toolchain(TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // token_ttl 0: tokens expire the second they are issued.
    let server = users_server(dir.path(), TOKEN_KEY, "0").await;
    users_expired_story(&server).await;
}
