//! The compiled-code cache, and loading many functions.

use gust_runtime::cache::{CacheLocation, CompileCache};
use gust_runtime::manifest::{AppSpec, ComponentSource, FunctionId, FunctionSpec};
use gust_runtime::{App, EngineConfig, GustEngine};
use http::StatusCode;

use crate::support::{TestServer, engine, examples};

/// The compile cache in `dir`.
fn at(dir: &std::path::Path) -> CacheLocation {
    CacheLocation::Dir(dir.to_path_buf())
}

fn spec(sources: &[&'static [u8]]) -> AppSpec {
    let functions = sources
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            FunctionSpec::new(
                FunctionId::try_from(format!("f{i}")).unwrap(),
                ComponentSource::Embedded(bytes),
            )
        })
        .collect();
    let routes = (0..sources.len())
        .map(|i| (format!("/f{i}").parse().unwrap(), None, i))
        .collect();
    AppSpec::new(functions, routes).unwrap()
}

fn cache_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    files.sort();
    files
}

#[test]
fn restart_with_a_warm_cache_compiles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sources = [examples::HELLO, examples::ECHO];
    let cold = App::load(engine(), spec(&sources), &at(dir.path())).unwrap();
    assert_eq!(cold.load_report().compiled, 2);
    assert_eq!(cold.load_report().cache_hits, 0);
    assert_eq!(cache_files(dir.path()).len(), 2);

    let warm = App::load(engine(), spec(&sources), &at(dir.path())).unwrap();
    assert_eq!(
        warm.load_report().compiled,
        0,
        "a warm cache must not compile"
    );
    assert_eq!(warm.load_report().cache_hits, 2);
}

#[test]
fn identical_components_compile_once() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::load(engine(), spec(&[examples::HELLO; 5]), &at(dir.path())).unwrap();
    assert_eq!(app.load_report().functions, 5);
    assert_eq!(app.load_report().components, 1);
    assert_eq!(app.load_report().compiled, 1);
}

#[test]
fn damaged_cache_files_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let sources = [examples::HELLO];
    App::load(engine(), spec(&sources), &at(dir.path())).unwrap();
    let file = cache_files(dir.path()).pop().unwrap();
    let original = std::fs::read(&file).unwrap();

    // Truncated.
    std::fs::write(&file, &original[..original.len() / 2]).unwrap();
    let app = App::load(engine(), spec(&sources), &at(dir.path())).unwrap();
    assert_eq!(
        (app.load_report().rebuilt, app.load_report().compiled),
        (1, 1)
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        original,
        "rebuilt file is whole again"
    );

    // One flipped bit in the code.
    let mut tampered = original.clone();
    let last = tampered.len() - 100;
    tampered[last] ^= 0x40;
    std::fs::write(&file, &tampered).unwrap();
    let app = App::load(engine(), spec(&sources), &at(dir.path())).unwrap();
    assert_eq!(
        (app.load_report().rebuilt, app.load_report().compiled),
        (1, 1)
    );

    // And then it is a plain hit.
    let app = App::load(engine(), spec(&sources), &at(dir.path())).unwrap();
    assert_eq!(
        (app.load_report().cache_hits, app.load_report().compiled),
        (1, 0)
    );
}

#[test]
fn an_unwritable_cache_entry_compiles_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CompileCache::new(engine().engine(), &CacheLocation::Dir(dir.path().into()));
    // A directory where hello's artifact would go: it can be neither
    // written nor read as a file.
    let entry = cache.path(&cache.key(examples::HELLO)).unwrap();
    std::fs::create_dir(&entry).unwrap();
    for _ in 0..2 {
        let app = App::load(engine(), spec(&[examples::HELLO]), &at(dir.path())).unwrap();
        assert_eq!(
            (app.load_report().cache_hits, app.load_report().compiled),
            (0, 1)
        );
    }
    assert!(entry.is_dir(), "the obstacle is left alone");
}

#[test]
fn cache_is_keyed_by_engine_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let sources = [examples::HELLO];
    App::load(engine(), spec(&sources), &at(dir.path())).unwrap();
    // Fuel instrumentation changes the generated code.
    let no_fuel = GustEngine::new(&EngineConfig::default().fuel(false)).unwrap();
    let app = App::load(&no_fuel, spec(&sources), &at(dir.path())).unwrap();
    assert_eq!(
        (app.load_report().cache_hits, app.load_report().compiled),
        (0, 1)
    );
    assert_eq!(cache_files(dir.path()).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_functions_load_and_route() {
    let mut manifest = String::new();
    for i in 0..1000 {
        let component = if i % 2 == 0 { "{HELLO}" } else { "{ECHO}" };
        manifest += &format!(
            "[functions.fn{i}]\ncomponent = \"{component}\"\n[[routes]]\npath = \"/fn/{i}/{{*rest}}\"\nfunction = \"fn{i}\"\n"
        );
    }
    let server = TestServer::start(&manifest).await;
    for i in [0, 1, 2, 499, 998, 999] {
        let reply = server.get(&format!("/fn/{i}/x")).await;
        assert_eq!(reply.status, StatusCode::OK, "fn{i}");
        if i % 2 == 0 {
            assert_eq!(reply.text(), "Hello from gust!\n");
        } else {
            assert_eq!(reply.json()["route"], format!("/fn/{i}/{{*rest}}"));
        }
        assert_eq!(
            server.record(&reply.request_id()).await.function.as_str(),
            format!("fn{i}")
        );
    }
    assert_eq!(server.get("/fn/1000/x").await.status, StatusCode::NOT_FOUND);
}
