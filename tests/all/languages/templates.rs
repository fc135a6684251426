//! `gust new LANG NAME` for every language: the new project builds with
//! its own build command (as `gust build` runs it) and serves its hello,
//! unchanged, on both of its routes.

use gust_runtime::dev::new;

use super::{build_once, serve_manifest, toolchain};

/// Creates, builds and serves the template of `lang`; checks both routes.
async fn template_serves(lang: &str, tools: &[&str]) {
    if !toolchain(tools) {
        return;
    }
    let parent = tempfile::tempdir().unwrap();
    let dir = new::create(lang, "my-fn", parent.path()).unwrap();
    build_once(&dir).await;
    let server = serve_manifest(&dir, |text| text).await;
    let root = server.get("/").await;
    assert_eq!(root.status, 200, "{lang}: {}", root.text());
    assert_eq!(root.text(), "Hello, world!\n", "{lang}");
    let named = server.get("/hello/you").await;
    assert_eq!(named.status, 200, "{lang}: {}", named.text());
    assert_eq!(named.text(), "Hello, you!\n", "{lang}");
    let content_type = named
        .headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    assert!(
        content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("text/plain")),
        "{lang}: content-type {content_type:?}"
    );
}

#[tokio::test]
async fn rust() {
    template_serves("rust", &["cargo"]).await;
}

#[tokio::test]
async fn python() {
    template_serves("python", &["componentize-py"]).await;
}

#[tokio::test]
async fn js() {
    template_serves("js", &["componentize-js"]).await;
}

#[tokio::test]
async fn go() {
    template_serves("go", &["go", "wit-bindgen", "wasm-tools"]).await;
}

#[tokio::test]
async fn c() {
    template_serves(
        "c",
        &["clang-16", "wasm-ld-16", "wit-bindgen", "wasm-tools"],
    )
    .await;
}

#[test]
fn every_language_has_a_template() {
    assert_eq!(new::languages(), ["c", "go", "js", "python", "rust"]);
}

#[test]
fn new_refuses_bad_names_unknown_languages_and_existing_directories() {
    let parent = tempfile::tempdir().unwrap();
    let e = new::create("rust", "My_Fn", parent.path()).unwrap_err();
    assert!(e.to_string().contains("invalid name `My_Fn`"), "{e}");
    let e = new::create("cobol", "x", parent.path()).unwrap_err();
    assert!(e.to_string().contains("no template for `cobol`"), "{e}");
    std::fs::create_dir(parent.path().join("taken")).unwrap();
    let e = new::create("rust", "taken", parent.path()).unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
}
