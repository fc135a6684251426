//! A gust server on an ephemeral loopback port, the guests it serves, and
//! clients for it (`client`), and manifests built a table at a time
//! (`manifest`).

pub mod client;
pub mod manifest;
pub mod s3;
pub mod servers;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use gust_runtime::ledger::Ledger;
use gust_runtime::manifest::LedgerSettings;
use gust_runtime::{App, EngineConfig, GustEngine, InvocationRecord, Manifest, Server};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::sync::oneshot;

/// The examples users see (`guest-examples/`): `HELLO`, `ECHO`, ...
pub use gust_runtime::examples;
/// The test guests (`tests/guests/`): `MEMORY_BOMB`, `P3_SPIN`, ...
pub use gust_tests::guests;
pub use manifest::manifest;

/// Every request a test makes is bounded by this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One engine for the whole test binary, as in a gust process.
pub fn engine() -> &'static GustEngine {
    static ENGINE: OnceLock<GustEngine> = OnceLock::new();
    ENGINE.get_or_init(|| GustEngine::new(&EngineConfig::default()).expect("engine"))
}

/// One compile cache for the whole test binary, so each example compiles
/// once; tests of the cache itself use directories of their own.
pub fn cache_dir() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
}

/// `{HELLO}`, `{MEMORY_BOMB}`, ... (the name of an example or a test
/// guest, upper case, `-` as `_`) replaced by its component's path.
pub fn with_guest_paths(manifest: &str) -> String {
    let mut text = manifest.to_owned();
    for (name, path) in examples::ALL.iter().chain(guests::ALL) {
        let key = format!("{{{}}}", name.to_uppercase().replace('-', "_"));
        text = text.replace(&key, path);
    }
    text
}

/// The validated manifest `manifest` (guest paths filled in), written to
/// `dir`, listening on an ephemeral port, with the shared compile cache.
pub fn spec_in(dir: &std::path::Path, manifest: impl Into<String>) -> gust_runtime::Config {
    let text = with_guest_paths(&manifest.into());
    let path = dir.join("gust.toml");
    std::fs::write(&path, text).unwrap();
    let mut spec = Manifest::load(&path).unwrap_or_else(|e| panic!("{e}"));
    spec.runtime.server.listen = "127.0.0.1:0".parse().unwrap();
    spec.runtime.cache = gust_runtime::cache::CacheLocation::Dir(cache_dir().to_path_buf());
    // Embedded stores and containers in the test's own directory, never
    // the user's data directory.
    if spec.runtime.capabilities.data_dir.is_none() {
        spec.runtime.capabilities.data_dir = Some(dir.join("data"));
    }
    spec
}

/// A running server. Shut down (gracefully) on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The server's apps, to swap a new version in while serving.
    pub apps: gust_runtime::Apps,
    records: Arc<Mutex<Vec<InvocationRecord>>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub ledger: Option<Arc<Ledger>>,
    _dir: tempfile::TempDir,
}

/// A response with its body read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn request_id(&self) -> String {
        self.headers
            .get("x-request-id")
            .expect("every response has x-request-id")
            .to_str()
            .unwrap()
            .to_owned()
    }
}

impl TestServer {
    /// Starts a server for a manifest (text, or [`manifest()`] built).
    /// `{HELLO}`, `{MEMORY_BOMB}`, ... in the text are replaced by the
    /// components' paths.
    pub async fn start(manifest: impl Into<String>) -> TestServer {
        Self::start_with_ledger(manifest, None).await
    }

    /// Like [`TestServer::start`], with a ledger attached as `gust serve`
    /// attaches it.
    pub async fn start_with_ledger(
        manifest: impl Into<String>,
        ledger: Option<LedgerSettings>,
    ) -> TestServer {
        Self::start_on(engine(), manifest, ledger).await
    }

    /// Like [`TestServer::start_with_ledger`], on an engine of the test's own.
    pub async fn start_on(
        engine: &GustEngine,
        manifest: impl Into<String>,
        ledger: Option<LedgerSettings>,
    ) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec_in(dir.path(), manifest);
        let records = Arc::new(Mutex::new(Vec::new()));
        let sink = records.clone();
        let mut app = App::load_with(engine, spec.app, &spec.runtime)
            .unwrap()
            .on_invocation(move |r| sink.lock().unwrap().push(r.clone()))
            .unwrap();
        let ledger =
            ledger.map(|settings| Arc::new(Ledger::open(&settings).unwrap().expect("enabled")));
        if let Some(ledger) = &ledger {
            app = app.on_invocation(ledger.sink()).unwrap();
        }
        let server = Server::new(app, spec.runtime.server).shutdown_grace(Duration::from_secs(10));
        let apps = server.apps();
        let listener = server.bind().await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(server.serve(listener, async {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            apps,
            records,
            shutdown: Some(tx),
            task: Some(task),
            ledger,
            _dir: dir,
        }
    }

    /// Stops accepting, waits for in-flight requests, returns the result.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let task = self.task.take().expect("stopped once");
        tokio::time::timeout(REQUEST_TIMEOUT, task).await??
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Request::get(path).body(Bytes::new()).unwrap())
            .await
    }

    /// Sends one request on a fresh HTTP/1.1 connection.
    pub async fn send(&self, request: Request<Bytes>) -> Reply {
        tokio::time::timeout(REQUEST_TIMEOUT, send(self.addr, request))
            .await
            .expect("request timed out")
            .expect("request failed")
    }

    /// Latencies of `n` sequential `GET /hello` requests (each must answer
    /// 200), with `pause` between them.
    pub async fn hello_latencies(&self, pause: Duration, n: usize) -> Vec<Duration> {
        let mut took = Vec::with_capacity(n);
        for _ in 0..n {
            let started = std::time::Instant::now();
            assert_eq!(self.get("/hello").await.status, StatusCode::OK);
            took.push(started.elapsed());
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
        took
    }

    /// Forgets the usage records collected so far.
    pub fn clear_records(&self) {
        self.records.lock().unwrap().clear();
    }

    /// Every usage record so far.
    pub fn records(&self) -> Vec<InvocationRecord> {
        self.records.lock().unwrap().clone()
    }

    /// Every usage record of `function` so far.
    pub fn records_for(&self, function: &str) -> Vec<InvocationRecord> {
        self.records()
            .into_iter()
            .filter(|r| r.function.as_str() == function)
            .collect()
    }

    /// The first usage record of `function`, waiting for it to appear.
    pub async fn record_of(&self, function: &str) -> InvocationRecord {
        self.wait_for(|r| r.function.as_str() == function, function)
            .await
    }

    /// The usage record of a request, waiting for its invocation to end.
    pub async fn record(&self, request_id: &str) -> InvocationRecord {
        self.wait_for(|r| r.request_id == request_id, request_id)
            .await
    }

    /// Records are finished when the guest and its response body are
    /// done, a little after the client has the response: poll, bounded.
    async fn wait_for(
        &self,
        matches: impl Fn(&InvocationRecord) -> bool,
        what: &str,
    ) -> InvocationRecord {
        for _ in 0..1000 {
            let found = self
                .records
                .lock()
                .unwrap()
                .iter()
                .find(|r| matches(r))
                .cloned();
            if let Some(record) = found {
                return record;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no usage record for {what}");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Sends one request to `addr` over a new HTTP/1.1 connection.
pub async fn send(addr: SocketAddr, request: Request<Bytes>) -> anyhow::Result<Reply> {
    let (mut sender, _connection) = client::try_http1(addr).await?;
    let response = sender
        .send_request(client::with_host(request.map(Full::new)))
        .await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}
