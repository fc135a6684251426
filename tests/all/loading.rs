//! Loading apps: invalid manifests and components fail with clear errors.

use gust_runtime::cache::CacheLocation;
use gust_runtime::{App, Manifest};

use crate::support::engine;

#[test]
fn invalid_manifest_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gust.toml");
    std::fs::write(
        &path,
        "[functions.hello]\ncomponent = \"nope.wasm\"\n[[routes]]\npath = \"/hello\"\nfunction = \"helo\"\n",
    )
    .unwrap();
    let err = Manifest::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("functions.hello.component: component file not found"),
        "{err}"
    );
    assert!(err.contains("nope.wasm"), "{err}");
    assert!(
        err.contains("routes[0].function: no function named `helo` (declared: hello)"),
        "{err}"
    );
}

#[test]
fn a_file_that_is_not_a_component_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("junk.wasm"), b"definitely not wasm").unwrap();
    let spec = gust_runtime::AppSpec::single_component(&dir.path().join("junk.wasm")).unwrap();
    let err = App::load(engine(), spec, &CacheLocation::Default)
        .err()
        .expect("junk must not load");
    let err = format!("{err:#}");
    assert!(err.contains("compiling the component of `junk`"), "{err}");
}

#[test]
fn a_component_that_is_not_a_proxy_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    // A valid component that exports nothing.
    std::fs::write(dir.path().join("empty.wasm"), b"\0asm\x0d\0\x01\0").unwrap();
    let spec = gust_runtime::AppSpec::single_component(&dir.path().join("empty.wasm")).unwrap();
    let err = App::load(engine(), spec, &CacheLocation::Default)
        .err()
        .expect("must not load");
    let err = format!("{err:#}");
    assert!(err.contains("is not a wasi:http component"), "{err}");
    assert!(
        err.contains("neither wasi:http/incoming-handler@0.2.x nor wasi:http/handler@0.3.x"),
        "{err}"
    );
}

#[test]
fn a_p3_component_needs_wasip3_support_on_the_engine() {
    use gust_runtime::{EngineConfig, GustEngine};
    let path = std::path::Path::new(crate::support::examples::P3_HELLO_PATH);
    let no_p3 = GustEngine::new(&EngineConfig::default().pooling(false).wasip3(false)).unwrap();
    let spec = gust_runtime::AppSpec::single_component(path).unwrap();
    let err = App::load(&no_p3, spec, &CacheLocation::Default)
        .err()
        .expect("must not load");
    let err = format!("{err:#}");
    assert!(err.contains("WASIp3 components are turned off"), "{err}");
    // A p2 component loads on that engine, and a p3 one where p3 is on.
    let spec = gust_runtime::AppSpec::single_component(std::path::Path::new(
        crate::support::examples::HELLO_PATH,
    ))
    .unwrap();
    App::load(&no_p3, spec, &CacheLocation::Default).unwrap();
    let spec = gust_runtime::AppSpec::single_component(path).unwrap();
    let app = App::load(engine(), spec, &CacheLocation::Default).unwrap();
    assert_eq!(app.functions()[0].kind(), gust_runtime::Kind::P3);
}
