//! `wasi:config` (both versions), the environment and secrets: a function
//! sees exactly what its manifest gives it, secrets resolved, nothing of
//! the host's environment or of another function's settings.

use http::StatusCode;

use crate::support::{TestServer, engine, manifest, spec_in};

/// A secret file holding `value`, in a directory the test keeps.
fn secret_file(value: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, format!("{value}\n")).unwrap();
    let path = path.display().to_string();
    (dir, path)
}

fn granted(component: &str, secret_path: &str) -> String {
    manifest()
        .head(&format!("[secrets.token]\nfile = \"{secret_path}\""))
        .function("granted", component)
        .set(
            r#"config = { greeting = "hello", token = "Bearer {{ secrets.token }}" }
environment = { MODE = "test", KEY = "{{secrets.token}}" }"#,
        )
        .route("/granted/{*rest}")
        .function("plain", component)
        .route("/plain/{*rest}")
        .hello()
        .into()
}

/// Both `wasi:config` versions answer the same, per function.
async fn config_reaches_only_its_function(component: &str) {
    let (_keep, path) = secret_file("s3cret");
    let server = TestServer::start(granted(component, &path)).await;

    let reply = server.get("/granted/config/greeting").await;
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (StatusCode::OK, "hello")
    );
    let reply = server.get("/granted/config/token").await;
    assert_eq!(reply.text(), "Bearer s3cret", "secret expanded in place");
    let reply = server.get("/granted/config/missing").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = server.get("/granted/config").await;
    assert_eq!(reply.text(), "greeting=hello\ntoken=Bearer s3cret\n");

    // Another function of the same app sees none of it.
    let reply = server.get("/plain/config").await;
    assert_eq!(
        (reply.status, reply.text()),
        (StatusCode::OK, String::new())
    );
    let reply = server.get("/plain/config/greeting").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(server.get("/hello").await.status, StatusCode::OK);
}

#[tokio::test]
async fn config_rc1_reaches_only_its_function() {
    config_reaches_only_its_function("{FOREIGN_KV_CONFIG}").await;
}

#[tokio::test]
async fn config_draft_2024_09_27_reaches_only_its_function() {
    config_reaches_only_its_function("{CONFIG_DRAFT}").await;
}

#[tokio::test]
async fn environment_is_exactly_the_manifests() {
    let (_keep, path) = secret_file("s3cret");
    let server = TestServer::start(granted("{CONFIG_DRAFT}", &path)).await;
    // This process has PATH and HOME; no guest may see them.
    let reply = server.get("/granted/env").await;
    assert_eq!(reply.text(), "KEY=s3cret\nMODE=test\n");
    let reply = server.get("/plain/env").await;
    assert_eq!(
        (reply.status, reply.text()),
        (StatusCode::OK, String::new())
    );
}

#[tokio::test]
async fn a_secret_that_does_not_resolve_fails_the_load_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = manifest()
        .head("[secrets.token]\nenv = \"GUST_TEST_UNSET_VARIABLE_7f3a\"")
        .function("granted", "{CONFIG_DRAFT}")
        .set(r#"config = { token = "{{ secrets.token }}" }"#)
        .route("/x");
    let spec = spec_in(dir.path(), text);
    let err = gust_runtime::App::load_with(engine(), spec.app, &spec.runtime)
        .err()
        .expect("the load fails");
    let message = format!("{err:#}");
    assert!(message.contains("secret `token`"), "{message}");
    assert!(
        message.contains("GUST_TEST_UNSET_VARIABLE_7f3a"),
        "{message}"
    );
}

#[tokio::test]
async fn a_reference_to_an_undeclared_secret_is_a_manifest_problem() {
    let dir = tempfile::tempdir().unwrap();
    let text = crate::support::with_guest_paths(
        &manifest()
            .function("granted", "{CONFIG_DRAFT}")
            .set(r#"config = { token = "{{ secrets.nope }}", bad = "{{ env.HOME }}" }"#)
            .route("/x")
            .to_string(),
    );
    let path = dir.path().join("gust.toml");
    std::fs::write(&path, text).unwrap();
    let err = gust_runtime::Manifest::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("functions.granted.config.token: no secret named `nope` in [secrets]"),
        "{err}"
    );
    assert!(
        err.contains("functions.granted.config.bad: `{{ env.HOME }}`: only `{{ secrets.NAME }}` may be referenced"),
        "{err}"
    );
}
