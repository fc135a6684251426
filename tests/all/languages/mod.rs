//! Functions written in Python, JavaScript, Go and C, built from source by
//! their toolchains the way a developer builds them (the build commands
//! of their `gust.toml`, run by gust's build runner as `gust build` runs
//! them) and served over real HTTP. A missing toolchain skips a test
//! loudly outside CI and fails it in CI (`.ci/run` installs them).
//!
//! Each example is built once per test run, however many tests serve it.

mod c;
mod go;
mod js;
mod python;
mod templates;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use gust_runtime::dev::build::{self, Output};
use gust_runtime::manifest::build_steps;

use crate::support::TestServer;
use crate::support::servers::require;

/// Whether every tool in `tools` is on `PATH`: `false` after a loud skip
/// message outside CI; panics in CI.
pub fn toolchain(tools: &[&str]) -> bool {
    tools
        .iter()
        .all(|tool| require(tool, ".ci/run installs it").is_some())
}

/// `guest-examples/EXAMPLE`.
pub fn example_dir(example: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../guest-examples")
        .join(example)
}

/// Runs the build commands of the manifest `dir/gust.toml` (each
/// directory once per test run; a failure is reported to every test that
/// asks again).
pub async fn build_once(dir: &Path) {
    type Results = Mutex<HashMap<PathBuf, Arc<Mutex<Option<Result<(), String>>>>>>;
    static BUILT: OnceLock<Results> = OnceLock::new();
    let slot = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry(dir.to_path_buf())
        .or_default()
        .clone();
    let manifest = dir.join("gust.toml");
    let result = tokio::task::spawn_blocking(move || {
        let mut slot = slot.lock().unwrap();
        slot.get_or_insert_with(|| {
            let steps = build_steps(&manifest).map_err(|e| e.to_string())?;
            build::run(&steps, Output::Quiet)
                .map(drop)
                .map_err(|e| format!("{e:#}"))
        })
        .clone()
    })
    .await
    .unwrap();
    if let Err(e) = result {
        panic!("building {}:\n{e}", dir.display());
    }
}

/// Builds `guest-examples/EXAMPLE` (once) and serves its `gust.toml`,
/// edited by `edit` (its text in, text out; `{USERS}`-style placeholders
/// name the Rust examples' components), with its components' relative
/// paths made absolute.
pub async fn serve_example(example: &str, edit: impl FnOnce(String) -> String) -> TestServer {
    let dir = example_dir(example);
    build_once(&dir).await;
    serve_manifest(&dir, edit).await
}

/// Serves `dir/gust.toml` (already built), edited by `edit`.
pub async fn serve_manifest(dir: &Path, edit: impl FnOnce(String) -> String) -> TestServer {
    let text = std::fs::read_to_string(dir.join("gust.toml")).unwrap();
    TestServer::start(absolute_components(&edit(text), dir)).await
}

/// `text` with every function's relative `component` path resolved
/// against `dir` (the test serves a copy of the manifest from a directory
/// of its own).
fn absolute_components(text: &str, dir: &Path) -> String {
    let mut doc: toml::Table = toml::from_str(text).unwrap_or_else(|e| panic!("{e}"));
    if let Some(functions) = doc.get_mut("functions").and_then(toml::Value::as_table_mut) {
        for (_, function) in functions.iter_mut() {
            let Some(function) = function.as_table_mut() else {
                continue;
            };
            let component = function.get("component").and_then(toml::Value::as_str);
            if let Some(path) = component
                && !path.starts_with('{')
                && Path::new(path).is_relative()
            {
                let absolute = dir.join(path).display().to_string();
                function.insert("component".into(), toml::Value::from(absolute));
            }
            // The build table's workdir would be the copy's directory.
            function.remove("build");
        }
    }
    toml::to_string(&doc).unwrap()
}
