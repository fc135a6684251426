//! # gust-benches
//!
//! The in-process half of gust's cold-start benchmarks: one invocation of the
//! `hello` example component (`gust_runtime::examples::HELLO`) through each
//! way of getting from component bytes to a running instance. The criterion
//! benchmark `benches/instantiate.rs` times every [`Mode`] twice: to a ready
//! instance only, and to a complete `wasi:http/incoming-handler` call with the
//! response body read. The end-to-end half (gust versus `wasmtime serve`
//! under load) is the script `e2e/run.sh`; the cold start of newly deployed
//! functions is the `coldstart` binary, and `bench.sh` runs criterion and
//! `coldstart` and plots both (`plot`); see `README.md`.
//!
//! Every engine here is built from gust's own [`EngineConfig`], so fuel
//! metering and epoch interruption are on in every mode, as in gust; only
//! the allocator differs.

pub mod support;

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use gust_runtime::{EngineConfig, GustEngine, Kind};
use http_body_util::{BodyExt as _, Empty};
use sha2::{Digest as _, Sha256};
use wasmtime::Store;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyPre};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// The fuel every benchmarked store starts with: gust's default budget.
pub const FUEL: u64 = 10_000_000_000;

/// The body the hello example answers with.
pub const HELLO_BODY: &[u8] = b"Hello from gust!\n";

/// The data of one benchmarked `Store`, mirroring gust's `HostState`
/// (whose constructor is private to gust-runtime): WASI with the process's
/// stdout and stderr, `wasi:http`, and a resource table.
pub struct BenchState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
}

impl BenchState {
    /// A fresh state, as gust builds for every request.
    pub fn new() -> Self {
        BenchState {
            wasi: WasiCtx::builder().inherit_stdout().inherit_stderr().build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
        }
    }
}

impl Default for BenchState {
    fn default() -> Self {
        Self::new()
    }
}

impl WasiView for BenchState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for BenchState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: Default::default(),
        }
    }
}

/// How an invocation gets its instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// (a) `Component::new` from the bytes every time, then link and
    /// instantiate (on-demand allocator).
    Compile,
    /// (b) `Component::deserialize` of an artifact serialized once, then
    /// link and instantiate (on-demand allocator).
    Deserialize,
    /// (c) `Linker::instantiate_async` of an already compiled component:
    /// linking and type-checking on every call (on-demand allocator).
    Instantiate,
    /// (d) `ProxyPre::instantiate_async` with the on-demand allocator.
    PreOnDemand,
    /// (e) `ProxyPre::instantiate_async` with the pooling allocator and
    /// copy-on-write memory images: gust's default engine.
    PrePooling,
}

impl Mode {
    /// Every mode, in the order of the issue.
    pub const ALL: [Mode; 5] = [
        Mode::Compile,
        Mode::Deserialize,
        Mode::Instantiate,
        Mode::PreOnDemand,
        Mode::PrePooling,
    ];

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Compile => "a_compile",
            Mode::Deserialize => "b_deserialize",
            Mode::Instantiate => "c_linker_instantiate",
            Mode::PreOnDemand => "d_pre_on_demand",
            Mode::PrePooling => "e_pre_pooling_cow",
        }
    }

    fn pooling(self) -> bool {
        self == Mode::PrePooling
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything a mode prepares once, before the timed loop.
pub struct Bench {
    mode: Mode,
    bytes: &'static [u8],
    /// Keeps the epoch ticker running.
    _gust: GustEngine,
    engine: wasmtime::Engine,
    linker: Linker<BenchState>,
    component: Component,
    serialized: Vec<u8>,
    pre: ProxyPre<BenchState>,
}

impl Bench {
    /// Prepares `mode` for the component `bytes` (normally
    /// `gust_runtime::examples::HELLO`).
    pub fn new(mode: Mode, bytes: &'static [u8]) -> anyhow::Result<Bench> {
        Self::on_engine(mode, bytes, Kind::P2)
    }

    /// Like [`Bench::new`], on gust's engine for components of `kind`
    /// (the WASIp3 one has the component model's async support).
    pub fn on_engine(mode: Mode, bytes: &'static [u8], kind: Kind) -> anyhow::Result<Bench> {
        let mut config = EngineConfig::default().pooling(mode.pooling());
        // For A/B runs of the pooled memory reset (see the README).
        if let Some(bytes) = std::env::var("GUST_BENCH_KEEP_RESIDENT")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            config = config.memory_keep_resident(bytes);
        }
        let gust = GustEngine::new(&config)?;
        if mode.pooling() && !gust.is_pooling() {
            bail!("the pooling allocator could not be reserved on this machine");
        }
        let engine = gust.engine_for(kind)?.clone();
        let linker = linker(&engine)?;
        let component = Component::new(&engine, bytes)
            .map_err(anyhow::Error::from)
            .context("compiling")?;
        let serialized = component
            .serialize()
            .map_err(anyhow::Error::from)
            .context("serializing")?;
        let pre = ProxyPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Bench {
            mode,
            bytes,
            _gust: gust,
            engine,
            linker,
            component,
            serialized,
            pre,
        })
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// A fresh store with gust's fuel budget and no effective deadline.
    pub fn store(&self) -> Store<BenchState> {
        store(&self.engine)
    }

    /// Gets an instance into `store` the way the mode says.
    pub async fn instantiate(&self, store: &mut Store<BenchState>) -> anyhow::Result<Proxy> {
        let component = match self.mode {
            Mode::PreOnDemand | Mode::PrePooling => {
                return Ok(self.pre.instantiate_async(store).await?);
            }
            Mode::Compile => Component::new(&self.engine, self.bytes)?,
            Mode::Deserialize => deserialize(&self.engine, &self.serialized)?,
            Mode::Instantiate => self.component.clone(),
        };
        let instance = self
            .linker
            .instantiate_async(&mut *store, &component)
            .await?;
        Ok(Proxy::new(&mut *store, &instance)?)
    }

    /// One whole invocation: a fresh store and instance, a `GET /hello`
    /// through `wasi:http/incoming-handler`, and the response body read to
    /// its end. Returns the body.
    pub async fn invoke(&self) -> anyhow::Result<Bytes> {
        let mut store = self.store();
        let proxy = self.instantiate(&mut store).await?;
        handle(&mut store, &proxy).await
    }

    /// Only an instance, dropped at once with its store.
    pub async fn instantiate_only(&self) -> anyhow::Result<()> {
        let mut store = self.store();
        self.instantiate(&mut store).await?;
        Ok(())
    }
}

/// A fresh store on `engine` (one of gust's, so metering fuel) with gust's
/// fuel budget and no effective deadline.
pub fn store(engine: &wasmtime::Engine) -> Store<BenchState> {
    let mut store = Store::new(engine, BenchState::new());
    store.set_fuel(FUEL).expect("gust engines consume fuel");
    store.set_epoch_deadline(u64::MAX / 2);
    store
}

/// A linker with what gust's host provides (WASI p2 and `wasi:http`), as
/// `App::load` builds one for every load.
pub fn linker(engine: &wasmtime::Engine) -> anyhow::Result<Linker<BenchState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    Ok(linker)
}

/// Deserializes a component that [`Component::serialize`] produced with an
/// engine of the same configuration.
///
/// # Safety
///
/// `Component::deserialize` is `unsafe` because it maps the bytes as machine
/// code without validating them. This is the one place the benchmarks call
/// it, and the only bytes it ever receives are (1) `Bench::serialized`,
/// which `Bench::new` produced in this process with `Component::serialize`
/// on the very engine passed back here, and which nothing mutates
/// afterwards, and (2) in [`cache_hit_steps`], artifacts that this
/// benchmark run wrote itself through gust's compile cache (a fresh
/// temporary directory) and that passed the same length and SHA-256 check
/// gust makes before it deserializes.
fn deserialize(engine: &wasmtime::Engine, serialized: &[u8]) -> anyhow::Result<Component> {
    // SAFETY: see the function's documentation: trusted bytes serialized by
    // this process for this engine.
    Ok(unsafe { Component::deserialize(engine, serialized) }?)
}

/// How long each step of a compile-cache hit takes, done one by one on a
/// file of gust's `CompileCache` (`"GUSTCC01" | SHA-256 | length (u64 LE) |
/// artifact`, see `gust_runtime::cache`).
#[derive(Debug, Clone, Copy)]
pub struct CacheHitSteps {
    /// Reading the file.
    pub read: Duration,
    /// Checking the artifact's length and SHA-256.
    pub verify: Duration,
    /// `Component::deserialize` of the artifact.
    pub deserialize: Duration,
    /// The artifact's size.
    pub artifact_bytes: usize,
}

/// Reads, verifies and deserializes the cache file `path` (written by
/// gust's compile cache for `engine` during this run), timing each step.
/// The component is dropped.
pub fn cache_hit_steps(engine: &wasmtime::Engine, path: &Path) -> anyhow::Result<CacheHitSteps> {
    const MAGIC: &[u8; 8] = b"GUSTCC01";
    const HEADER: usize = MAGIC.len() + 32 + 8;
    let started = Instant::now();
    let file = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let read = started.elapsed();

    let started = Instant::now();
    if file.len() < HEADER || &file[..MAGIC.len()] != MAGIC {
        bail!("{} is not a gust cache file", path.display());
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&file[MAGIC.len() + 32..HEADER]);
    let artifact = &file[HEADER..];
    if u64::try_from(artifact.len()).ok() != Some(u64::from_le_bytes(len))
        || Sha256::digest(artifact).as_slice() != &file[MAGIC.len()..MAGIC.len() + 32]
    {
        bail!("{} is damaged", path.display());
    }
    let verify = started.elapsed();

    let started = Instant::now();
    let component = deserialize(engine, artifact)?;
    let deserialize = started.elapsed();
    drop(component);
    Ok(CacheHitSteps {
        read,
        verify,
        deserialize,
        artifact_bytes: artifact.len(),
    })
}

/// Calls the handler of `proxy` with a real `GET http://localhost/hello`
/// and reads the whole response body.
pub async fn handle(store: &mut Store<BenchState>, proxy: &Proxy) -> anyhow::Result<Bytes> {
    let request = hyper::Request::builder()
        .method(http::Method::GET)
        .uri("http://localhost/hello")
        .body(Empty::<Bytes>::new())?;
    let request = store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, request)?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let out = store.data_mut().http().new_response_outparam(tx)?;
    let call = proxy
        .wasi_http_incoming_handler()
        .call_handle(&mut *store, request, out);
    let read = async {
        let response = rx.await.context("the guest sent no response")??;
        if response.status() != http::StatusCode::OK {
            bail!("unexpected status {}", response.status());
        }
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::Ok(body)
    };
    let (called, body) = tokio::join!(call, read);
    called?;
    body
}

/// A gust server (not listening) for the `hello` example at `/hello`, built
/// as `gust serve` builds it, on gust's default engine: what the `gust`
/// criterion group times through [`handle_hello`].
pub async fn hello_server() -> gust_runtime::Server {
    use gust_runtime::manifest::{ComponentSource, FunctionId, FunctionSpec, ServerSettings};
    // Kept for the process: the engine's epoch ticker runs while it lives.
    static ENGINE: std::sync::OnceLock<GustEngine> = std::sync::OnceLock::new();
    let engine =
        ENGINE.get_or_init(|| GustEngine::new(&EngineConfig::default()).expect("gust's engine"));
    let function = FunctionSpec::new(
        FunctionId::try_from("hello").expect("a valid id"),
        ComponentSource::Embedded(gust_runtime::examples::HELLO),
    );
    let route = "/hello".parse().expect("a valid route");
    let spec =
        gust_runtime::AppSpec::new(vec![function], vec![(route, None, 0)]).expect("a valid app");
    let app = gust_runtime::App::load(engine, spec, &gust_runtime::cache::CacheLocation::Disabled)
        .expect("loading hello");
    gust_runtime::Server::new(app, ServerSettings::default())
}

/// `GET /hello` through [`gust_runtime::Server::handle`]: routing, limits,
/// the invocation with everything gust arms a store with, the usage record;
/// returns the body read to its end.
pub async fn handle_hello(server: &gust_runtime::Server) -> Bytes {
    let request = http::Request::get("http://localhost/hello")
        .body(Empty::<Bytes>::new())
        .expect("a valid request");
    let response = server.handle(request).await;
    response
        .into_body()
        .collect()
        .await
        .map(|body| body.to_bytes())
        .unwrap_or_default()
}
