//! Lazily loaded apps (`LoadMode::Lazy`): everything checked at load,
//! nothing resident until a function's first request, and the load index
//! that lets a warm start skip reading components.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gust_runtime::app::LoadMode;
use gust_runtime::cache::CacheLocation;
use gust_runtime::examples::{ECHO, HELLO};
use gust_runtime::manifest::{AppSpec, ComponentSource, FunctionId, FunctionSpec, ServerSettings};
use gust_runtime::{App, EngineConfig, GustEngine, Server};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn engine(mode: LoadMode) -> GustEngine {
    GustEngine::new(&EngineConfig::default().pooling(false).load_mode(mode)).unwrap()
}

/// `bytes` with a custom section naming `n`: the same code, a distinct
/// component (its own cache key).
fn distinct(bytes: &[u8], n: usize) -> Vec<u8> {
    let name = b"gust-distinct";
    let mut body = vec![name.len() as u8];
    body.extend_from_slice(name);
    body.extend_from_slice(n.to_string().as_bytes());
    let mut out = bytes.to_vec();
    out.push(0);
    out.push(body.len() as u8);
    out.extend_from_slice(&body);
    out
}

/// An app of one function per file in `files`, `/fN` routed to `fN`.
fn spec(files: &[PathBuf]) -> AppSpec {
    let functions = files
        .iter()
        .enumerate()
        .map(|(i, path)| {
            FunctionSpec::new(
                FunctionId::try_from(format!("f{i}")).unwrap(),
                ComponentSource::File(path.clone()),
            )
        })
        .collect();
    let routes = (0..files.len())
        .map(|i| (format!("/f{i}").parse().unwrap(), None, i))
        .collect();
    AppSpec::new(functions, routes).unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn cache(dir: &Path) -> CacheLocation {
    CacheLocation::Dir(dir.join("cache"))
}

/// Serves `app` on an ephemeral loopback port until the test ends.
async fn serve(app: App) -> SocketAddr {
    let settings = ServerSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..ServerSettings::default()
    };
    let server = Server::new(app, settings);
    let listener = server.bind().await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server.serve(listener, std::future::pending()));
    addr
}

/// `GET path` on a connection of its own: status and body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        String::from_utf8_lossy(&response).into_owned()
    };
    let response = tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .expect("an answer within a minute");
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lazy_app_is_checked_at_load_and_each_function_loaded_by_its_first_request() {
    let dir = tempfile::tempdir().unwrap();
    let files = vec![
        write(dir.path(), "a.wasm", &distinct(HELLO, 1)),
        write(dir.path(), "b.wasm", &distinct(HELLO, 2)),
        write(dir.path(), "c.wasm", ECHO),
    ];
    let lazy = engine(LoadMode::Lazy);

    let app = App::load(&lazy, spec(&files), &cache(dir.path())).unwrap();
    let report = app.load_report().clone();
    assert_eq!((report.functions, report.components), (3, 3));
    assert_eq!(report.compiled, 3, "compiled into the cache at load");
    assert_eq!(report.resident, 0, "{report:?}");
    assert!(app.functions().iter().all(|f| !f.is_resident()));

    let addr = serve(app.clone()).await;
    // Concurrent first requests share one load.
    let first = (0..8).map(|_| tokio::spawn(get(addr, "/f0")));
    for answer in first {
        assert_eq!(
            answer.await.unwrap(),
            (200, "Hello from gust!\n".to_owned())
        );
    }
    let resident: Vec<bool> = app.functions().iter().map(|f| f.is_resident()).collect();
    assert_eq!(resident, [true, false, false]);
    let (status, body) = get(addr, "/f2").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"path\":\"/f2\""), "{body}");
    assert!(app.functions()[2].is_resident());

    // A restart: every file known to the index, nothing compiled or read.
    let again = App::load(&lazy, spec(&files), &cache(dir.path())).unwrap();
    let report = again.load_report();
    assert_eq!(
        (report.compiled, report.cache_hits, report.resident),
        (0, 3, 0)
    );
    let addr = serve(again.clone()).await;
    assert_eq!(get(addr, "/f1").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_is_checked_again_and_serves_its_new_code() {
    let dir = tempfile::tempdir().unwrap();
    let files = vec![write(dir.path(), "a.wasm", &distinct(HELLO, 3))];
    let lazy = engine(LoadMode::Lazy);
    App::load(&lazy, spec(&files), &cache(dir.path())).unwrap();

    write(dir.path(), "a.wasm", &distinct(ECHO, 3));
    let app = App::load(&lazy, spec(&files), &cache(dir.path())).unwrap();
    assert_eq!(app.load_report().compiled, 1, "the new bytes were compiled");
    let addr = serve(app).await;
    let (status, body) = get(addr, "/f0").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("\"path\":\"/f0\""),
        "the echo answers: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lazy_function_whose_artifact_left_the_cache_is_compiled_by_its_first_request() {
    let dir = tempfile::tempdir().unwrap();
    let files = vec![write(dir.path(), "a.wasm", &distinct(HELLO, 4))];
    let lazy = engine(LoadMode::Lazy);
    let app = App::load(&lazy, spec(&files), &cache(dir.path())).unwrap();
    for entry in std::fs::read_dir(dir.path().join("cache")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "cwasm") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let addr = serve(app).await;
    assert_eq!(
        get(addr, "/f0").await,
        (200, "Hello from gust!\n".to_owned())
    );
}

#[test]
fn a_lazy_load_refuses_what_an_eager_load_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let lazy = engine(LoadMode::Lazy);
    let junk = vec![write(dir.path(), "junk.wasm", b"\0asm junk")];
    let err = App::load(&lazy, spec(&junk), &cache(dir.path()))
        .err()
        .unwrap();
    let err = format!("{err:#}");
    assert!(err.contains("compiling the component of `f0`"), "{err}");

    // A component that compiles but is no wasi:http handler.
    let module = wat::parse_str("(component)").unwrap();
    let empty = vec![write(dir.path(), "empty.wasm", &module)];
    for _ in 0..2 {
        // Not recorded as checked: refused again.
        let err = App::load(&lazy, spec(&empty), &cache(dir.path()))
            .err()
            .unwrap();
        let err = format!("{err:#}");
        assert!(err.contains("is not a wasi:http component"), "{err}");
    }
}

#[test]
fn auto_mode_is_eager_for_small_apps_and_lazy_for_large_ones() {
    let small = LoadMode::Auto { eager_up_to: 2 };
    assert!(!small.is_lazy(2));
    assert!(small.is_lazy(3));
    assert!(LoadMode::Lazy.is_lazy(1));
    assert!(!LoadMode::Eager.is_lazy(10_000));

    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (0..3)
        .map(|i| write(dir.path(), &format!("{i}.wasm"), &distinct(HELLO, 10 + i)))
        .collect();
    let auto = engine(small);
    let app = App::load(&auto, spec(&files[..2]), &cache(dir.path())).unwrap();
    assert_eq!(app.load_report().resident, 2);
    let app = App::load(&auto, spec(&files), &cache(dir.path())).unwrap();
    assert_eq!(app.load_report().resident, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_resident_functions_the_least_recently_used_is_unloaded_and_loads_again() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (0..3)
        .map(|i| write(dir.path(), &format!("{i}.wasm"), &distinct(HELLO, 20 + i)))
        .collect();
    let config = EngineConfig::default()
        .pooling(false)
        .load_mode(LoadMode::Lazy)
        .max_resident_functions(2);
    let engine = GustEngine::new(&config).unwrap();
    let app = App::load(&engine, spec(&files), &cache(dir.path())).unwrap();
    let addr = serve(app.clone()).await;
    let resident = || -> Vec<bool> { app.functions().iter().map(|f| f.is_resident()).collect() };
    let hello = (200, "Hello from gust!\n".to_owned());

    assert_eq!(get(addr, "/f0").await, hello);
    assert_eq!(get(addr, "/f1").await, hello);
    assert_eq!(resident(), [true, true, false]);
    assert_eq!(get(addr, "/f0").await, hello);
    assert_eq!(get(addr, "/f2").await, hello);
    let now = resident();
    assert_eq!(now.iter().filter(|r| **r).count(), 2, "{now:?}");
    assert!(now[2], "{now:?}");
    // Whatever was unloaded answers again.
    for path in ["/f0", "/f1", "/f2"] {
        assert_eq!(get(addr, path).await, hello);
    }
    assert_eq!(resident().iter().filter(|r| **r).count(), 2);
}
