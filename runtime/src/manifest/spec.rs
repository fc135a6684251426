//! The validated application: what the runtime loads.
//!
//! (Long: every section's validated settings and their defaults, and the
//! validation that reports every problem at once. Splitting it into
//! tenant and operator config is the next step of the restructure.)

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::model::QuotaDecl;
use super::model::{EngineDecl, LedgerDecl, LimitsDecl, RouteDecl, ServerDecl};
use super::{FunctionId, Manifest, ManifestError, Problem, resolve};
use crate::billing::Prices;
use crate::cache::CacheLocation;
use crate::router::{RoutePattern, Router};

/// Limits of one invocation, and of how many run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Fuel one invocation may consume (500 past it). Default:
    /// [`Limits::DEFAULT_FUEL`].
    pub fuel: u64,
    /// Wall-clock deadline of one invocation, including time blocked in host
    /// calls (504 past it). Default: [`Limits::DEFAULT_TIMEOUT`].
    pub timeout: Duration,
    /// Total linear memory of one instance, in bytes: growing past it
    /// fails (`memory.grow` returns -1; most guests then trap, 500).
    /// Default: 128 MiB, at most `[engine].max_memory_size`.
    pub memory: usize,
    /// Elements of any one table: growing past it fails. Default: 20,000,
    /// at most `[engine].max_table_elements`.
    pub table_elements: usize,
    /// Core instances in one invocation's store; also the most tables and
    /// the most memories. A component needs a handful. Default: 100.
    pub instances: usize,
    /// Resource handles one invocation may hold at once, in the host's
    /// table (`wasi:http` fields, bodies, streams, pollables) and, as a
    /// separate count, in the guest's own handle tables; past it the call
    /// that would create one traps (500). Default: 10,000.
    pub resources: usize,
    /// Host memory one invocation may hold, in bytes, outside its linear
    /// memory: `wasi:http` fields, body buffers, resource entries (an
    /// estimate kept by walking the host's resource table; it errs high).
    /// Past it the next host call traps (500). Counted in the record's
    /// peak memory. Default: 16 MiB.
    pub host_memory: usize,
    /// Largest `wasi:random` `get-random-bytes` (and the insecure variant)
    /// in one call, in bytes; a larger request traps (500). Default:
    /// 64 KiB, Web Crypto's `getRandomValues` quota.
    pub max_random_size: u64,
    /// Invocations of the function running at once. Default: 100.
    pub concurrency: u32,
    /// Requests that may wait for a free slot once `concurrency` is
    /// reached; past it, 503 with `Retry-After`. Default: 200.
    pub queue: u32,
    /// How long a request may wait in that queue before it gets 503.
    /// Default: 1 s.
    pub queue_timeout: Duration,
    /// Largest response body, in bytes: past it the stream is cut and the
    /// guest stopped. Default: 1 GiB.
    pub max_response_size: u64,
    /// Requests one instance may serve, one after another, before it is
    /// thrown away. Default: 1, a fresh instance for every request, so
    /// nothing one request leaves in the guest's memory reaches another.
    /// More trades that isolation for speed with guests whose start-up
    /// is costly (a Python or JavaScript runtime): an instance is reused
    /// only after a request that ended cleanly, never after a trap,
    /// timeout, or client that went away. Idle instances are kept up to
    /// `concurrency`.
    pub reuse: u32,
}

impl Limits {
    /// Ten billion instructions: seconds of CPU, enough for interpreters
    /// (Python, JavaScript) to start and answer, small enough to bill.
    pub const DEFAULT_FUEL: u64 = 10_000_000_000;
    /// Ten seconds.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    /// No invocation may be given more than an hour.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

    /// These limits with a declaration's overrides applied.
    pub fn with(mut self, decl: &LimitsDecl) -> Limits {
        self.fuel = decl.fuel.unwrap_or(self.fuel);
        self.timeout = decl.timeout.unwrap_or(self.timeout);
        self.memory = decl.memory.unwrap_or(self.memory);
        self.table_elements = decl.table_elements.unwrap_or(self.table_elements);
        self.instances = decl.instances.unwrap_or(self.instances);
        self.resources = decl.resources.unwrap_or(self.resources);
        self.host_memory = decl.host_memory.unwrap_or(self.host_memory);
        self.max_random_size = decl.max_random_size.unwrap_or(self.max_random_size);
        self.concurrency = decl.concurrency.unwrap_or(self.concurrency);
        self.queue = decl.queue.unwrap_or(self.queue);
        self.queue_timeout = decl.queue_timeout.unwrap_or(self.queue_timeout);
        self.max_response_size = decl.max_response_size.unwrap_or(self.max_response_size);
        self.reuse = decl.reuse.unwrap_or(self.reuse);
        self
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: Self::DEFAULT_FUEL,
            timeout: Self::DEFAULT_TIMEOUT,
            memory: 128 << 20,
            table_elements: 20_000,
            instances: 100,
            resources: 10_000,
            host_memory: 16 << 20,
            max_random_size: 64 << 10,
            concurrency: 100,
            queue: 200,
            queue_timeout: Duration::from_secs(1),
            max_response_size: 1 << 30,
            reuse: 1,
        }
    }
}

/// Server settings with defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSettings {
    /// Default: `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Largest request body, in bytes (413 past it). Default: 64 MiB.
    pub max_body_size: u64,
    /// Time allowed for a client to send its request head (HTTP/1.1: the
    /// connection is closed, with 408 if any of the head arrived). hyper
    /// starts this timer whenever it waits for a head, so it also bounds
    /// how long an idle keep-alive HTTP/1.1 connection stays open.
    /// Default: 10 s.
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers), in bytes; larger
    /// heads get 431. Default: 64 KiB (at least 8 KiB).
    pub max_header_size: usize,
    /// Most request headers (431 past it). Default: 100.
    pub max_headers: usize,
    /// Longest request target (path and query) in bytes (414 past it).
    /// Default: 8 KiB.
    pub max_url_length: usize,
    /// Most connections open at once; at the limit, new connections wait
    /// in the kernel's accept queue. Default: 10,000.
    pub max_connections: usize,
    /// A connection with no request in flight and no bytes moving for this
    /// long is closed (HTTP/2 with GOAWAY). Default: 30 s.
    pub idle_timeout: Duration,
    /// Time allowed for a whole request body to arrive after its head;
    /// past it the request gets 408 (a client trickling its body is cut
    /// off). Default: 30 s.
    pub body_read_timeout: Duration,
    /// Concurrent HTTP/2 streams per connection. Default: 100.
    pub http2_max_concurrent_streams: u32,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_size: 64 * 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            max_header_size: 64 * 1024,
            max_headers: 100,
            max_url_length: 8 * 1024,
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(30),
            http2_max_concurrent_streams: 100,
        }
    }
}

/// `[engine]` with defaults applied: settings of the process's one engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineSettings {
    /// Largest Wasm stack of one invocation, in bytes; deeper recursion
    /// traps (500). Default: 512 KiB.
    pub max_wasm_stack: usize,
    /// Instances live at once across all functions. Default: 1000.
    pub max_instances: u32,
    /// Largest linear memory of any instance, in bytes. Default: 256 MiB.
    pub max_memory_size: usize,
    /// Largest table of any instance, in elements. Default: 20,000.
    pub max_table_elements: usize,
    /// Guests executing Wasm at once; the rest wait their turn, new
    /// invocations before guests that used up a time slice. Default
    /// (`None`): no limit beyond the instance pool.
    pub max_running: Option<usize>,
    /// How long a guest runs before it yields its worker thread to other
    /// requests. Default: 20 ms; from 1 ms to 1 s.
    pub time_slice: Duration,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            max_wasm_stack: 512 << 10,
            max_instances: 1000,
            max_memory_size: 256 << 20,
            max_table_elements: 20_000,
            max_running: None,
            time_slice: Duration::from_millis(20),
        }
    }
}

/// Where usage records are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerLocation {
    /// `ledger.sqlite` in gust's data directory (`$XDG_DATA_HOME/gust`,
    /// else `~/.local/share/gust`, else the working directory).
    Default,
    /// A SQLite file.
    File(PathBuf),
    /// In memory only (tests, benchmarks): lost on exit.
    Memory,
    /// No ledger: records are only logged and passed to callbacks.
    Disabled,
}

/// Ledger settings with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerSettings {
    /// Where records go. Default: [`LedgerLocation::Default`].
    pub location: LedgerLocation,
    /// How long raw records are kept. Default: 7 days.
    pub retention: Duration,
    /// How often the writer commits a batch; the most records a crash can
    /// lose are those of the last interval. Default: 200 ms.
    pub flush_interval: Duration,
    /// Largest size of the ledger file, in bytes; past it commits fail
    /// (records are dropped and counted) as on a full disk. Default: none.
    pub max_size: Option<u64>,
}

impl Default for LedgerSettings {
    fn default() -> Self {
        LedgerSettings {
            location: LedgerLocation::Default,
            retention: Duration::from_secs(7 * 24 * 3600),
            flush_interval: Duration::from_millis(200),
            max_size: None,
        }
    }
}

/// Where a component's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentSource {
    /// A `.wasm` file on disk.
    File(PathBuf),
    /// Bytes compiled into the binary (the built-in examples).
    Embedded(&'static [u8]),
}

impl ComponentSource {
    /// Reads the component's bytes.
    pub fn read(&self) -> std::io::Result<std::borrow::Cow<'static, [u8]>> {
        match self {
            ComponentSource::File(path) => std::fs::read(path).map(Into::into),
            ComponentSource::Embedded(bytes) => Ok((*bytes).into()),
        }
    }
}

/// One validated function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpec {
    /// Its id.
    pub id: FunctionId,
    /// Its component.
    pub source: ComponentSource,
    /// Its limits, defaults applied.
    pub limits: Limits,
    /// Its prices, overrides applied.
    pub prices: Prices,
    /// Its fuel quota, if any.
    pub quota: Option<QuotaDecl>,
}

impl FunctionSpec {
    /// A function with default limits, no prices and no quota.
    pub fn new(id: FunctionId, source: ComponentSource) -> FunctionSpec {
        FunctionSpec {
            id,
            source,
            limits: Limits::default(),
            prices: Prices::default(),
            quota: None,
        }
    }
}

/// What the operator sets: the server's listener and request limits, the
/// engine, the ledger, the admin listener and the compiled-code cache.
/// Shared by every app a server runs; in a one-app `gust.toml` it sits in
/// the same file as the app.
#[derive(Debug, Clone)]
pub struct RuntimeSpec {
    /// Server settings.
    pub server: ServerSettings,
    /// Engine settings (used by whoever builds the engine: `gust serve`).
    pub engine: EngineSettings,
    /// Ledger settings.
    pub ledger: LedgerSettings,
    /// Admin listener address, if any.
    pub admin: Option<SocketAddr>,
    /// Where compiled components are cached.
    pub cache: CacheLocation,
}

impl Default for RuntimeSpec {
    fn default() -> Self {
        RuntimeSpec {
            server: ServerSettings::default(),
            engine: EngineSettings::default(),
            ledger: LedgerSettings::default(),
            admin: None,
            cache: CacheLocation::Default,
        }
    }
}

/// One validated `gust.toml`: a tenant's app and the operator's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// What the tenant wrote: functions, routes, limits, prices.
    pub app: AppSpec,
    /// What the operator set.
    pub runtime: RuntimeSpec,
}

/// What a tenant wrote, validated: the app's functions (with their limits,
/// prices, quotas and, later, grants) and the route table over them.
#[derive(Debug, Clone)]
pub struct AppSpec {
    /// The app's name (`default` unless the manifest names it).
    pub name: FunctionId,
    /// Functions, in id order.
    pub functions: Vec<FunctionSpec>,
    /// Routes; targets index into `functions`.
    pub router: Router<usize>,
}

impl AppSpec {
    /// An app from functions and routes `(pattern, methods, function index)`.
    pub fn new(
        functions: Vec<FunctionSpec>,
        routes: Vec<(RoutePattern, Option<Vec<http::Method>>, usize)>,
    ) -> Result<AppSpec, ManifestError> {
        let mut router = Router::new();
        for (pattern, methods, target) in routes {
            if target >= functions.len() {
                return Err(ManifestError::single(
                    "<app>",
                    "routes",
                    format!("route `{pattern}` names function #{target}, which does not exist"),
                ));
            }
            router
                .add(pattern, methods, target)
                .map_err(|e| ManifestError::single("<app>", "routes", e.to_string()))?;
        }
        Ok(AppSpec {
            name: default_name(),
            functions,
            router,
        })
    }

    /// Serves one component on every path and method, as `wasmtime serve`
    /// does. Its id is the file stem, cleaned to a valid id.
    pub fn single_component(path: &Path) -> Result<AppSpec, ManifestError> {
        let origin = path.display().to_string();
        if !path.is_file() {
            return Err(ManifestError::single(
                &origin,
                "",
                format!("component file not found: {origin}"),
            ));
        }
        let stem: String = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect();
        let id = FunctionId::try_from(stem)
            .or_else(|_| FunctionId::try_from("main"))
            .map_err(|e| ManifestError::single(&origin, "", e))?;
        let function = FunctionSpec::new(id, ComponentSource::File(path.to_path_buf()));
        let everything: RoutePattern =
            "/{*path}"
                .parse()
                .map_err(|e: crate::router::PatternError| {
                    ManifestError::single(&origin, "", e.to_string())
                })?;
        AppSpec::new(vec![function], vec![(everything, None, 0)])
    }
}

fn default_name() -> FunctionId {
    FunctionId::try_from("default").expect("`default` is a valid id")
}

struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            field: field.into(),
            message: message.into(),
        });
    }
}

fn check_limits(problems: &mut Problems, field: &str, decl: &LimitsDecl) {
    let mut positive = |name: &str, value: Option<u64>| {
        if value == Some(0) {
            problems.push(format!("{field}.{name}"), "must be greater than 0");
        }
    };
    let size = |v: Option<usize>| v.map(|v| v as u64);
    positive("fuel", decl.fuel);
    positive("memory", size(decl.memory));
    positive("table_elements", size(decl.table_elements));
    positive("instances", size(decl.instances));
    positive("resources", size(decl.resources));
    positive("host_memory", size(decl.host_memory));
    positive("max_random_size", decl.max_random_size);
    positive("concurrency", decl.concurrency.map(u64::from));
    positive("max_response_size", decl.max_response_size);
    positive("reuse", decl.reuse.map(u64::from));
    for (name, value) in [
        ("timeout", decl.timeout),
        ("queue_timeout", decl.queue_timeout),
    ] {
        if let Some(value) = value {
            if value.is_zero() {
                problems.push(format!("{field}.{name}"), "must be greater than 0");
            } else if value > Limits::MAX_TIMEOUT {
                problems.push(format!("{field}.{name}"), "must be at most 1h");
            }
        }
    }
}

/// Limits a function ends up with must fit the engine's pool slots.
fn check_against_engine(
    problems: &mut Problems,
    field: &str,
    limits: &Limits,
    engine: &EngineSettings,
) {
    if limits.memory > engine.max_memory_size {
        problems.push(
            format!("{field}.memory"),
            format!(
                "{} bytes is more than [engine].max_memory_size ({} bytes)",
                limits.memory, engine.max_memory_size
            ),
        );
    }
    if limits.table_elements > engine.max_table_elements {
        problems.push(
            format!("{field}.table_elements"),
            format!(
                "{} is more than [engine].max_table_elements ({})",
                limits.table_elements, engine.max_table_elements
            ),
        );
    }
}

pub(super) fn validate(m: Manifest, base: &Path, origin: &str) -> Result<Config, ManifestError> {
    let mut problems = Problems(Vec::new());
    // The operator's sections, then the tenant's: each validates itself
    // and reports every problem it finds.
    let server = server_settings(&m.server, &mut problems);
    let engine = engine_settings(&m.engine, &mut problems);
    check_limits(&mut problems, "defaults", &m.defaults);
    let defaults = Limits::default().with(&m.defaults);
    check_against_engine(&mut problems, "defaults", &defaults, &engine);
    let ledger = ledger_settings(&m.ledger, base, &mut problems);
    let functions = function_specs(&m, base, &defaults, &engine, &mut problems);
    let router = route_table(m.routes, &functions, &mut problems);

    if problems.0.is_empty() {
        Ok(Config {
            app: AppSpec {
                name: m.name.unwrap_or_else(default_name),
                functions,
                router,
            },
            runtime: RuntimeSpec {
                server,
                engine,
                ledger,
                admin: m.admin.listen,
                cache: match (m.cache.enabled, &m.cache.dir) {
                    (Some(false), _) => CacheLocation::Disabled,
                    (_, Some(dir)) => CacheLocation::Dir(resolve(base, dir)),
                    (_, None) => CacheLocation::Default,
                },
            },
        })
    } else {
        Err(ManifestError {
            origin: origin.to_owned(),
            problems: problems.0,
        })
    }
}

/// `[server]`.
fn server_settings(decl: &ServerDecl, problems: &mut Problems) -> ServerSettings {
    let d = ServerSettings::default();
    let server = ServerSettings {
        listen: decl.listen.unwrap_or(d.listen),
        max_body_size: decl.max_body_size.unwrap_or(d.max_body_size),
        header_read_timeout: decl.header_read_timeout.unwrap_or(d.header_read_timeout),
        max_header_size: decl.max_header_size.unwrap_or(d.max_header_size).max(8192),
        max_headers: decl.max_headers.unwrap_or(d.max_headers),
        max_url_length: decl.max_url_length.unwrap_or(d.max_url_length),
        max_connections: decl.max_connections.unwrap_or(d.max_connections),
        idle_timeout: decl.idle_timeout.unwrap_or(d.idle_timeout),
        body_read_timeout: decl.body_read_timeout.unwrap_or(d.body_read_timeout),
        http2_max_concurrent_streams: decl
            .http2_max_concurrent_streams
            .unwrap_or(d.http2_max_concurrent_streams),
    };
    for (name, value) in [
        ("header_read_timeout", server.header_read_timeout),
        ("idle_timeout", server.idle_timeout),
        ("body_read_timeout", server.body_read_timeout),
    ] {
        if value.is_zero() {
            problems.push(format!("server.{name}"), "must be greater than 0");
        }
    }
    for (name, value) in [
        ("max_headers", server.max_headers),
        ("max_url_length", server.max_url_length),
        ("max_connections", server.max_connections),
        (
            "http2_max_concurrent_streams",
            server.http2_max_concurrent_streams as usize,
        ),
    ] {
        if value == 0 {
            problems.push(format!("server.{name}"), "must be greater than 0");
        }
    }
    server
}

/// `[engine]`.
fn engine_settings(decl: &EngineDecl, problems: &mut Problems) -> EngineSettings {
    let e = EngineSettings::default();
    let engine = EngineSettings {
        max_wasm_stack: decl.max_wasm_stack.unwrap_or(e.max_wasm_stack),
        max_instances: decl.max_instances.unwrap_or(e.max_instances),
        max_memory_size: decl.max_memory_size.unwrap_or(e.max_memory_size),
        max_table_elements: decl.max_table_elements.unwrap_or(e.max_table_elements),
        max_running: decl.max_running,
        time_slice: decl.time_slice.unwrap_or(e.time_slice),
    };
    if engine.time_slice < Duration::from_millis(1) || engine.time_slice > Duration::from_secs(1) {
        problems.push("engine.time_slice", "must be between 1ms and 1s");
    }
    if engine.max_running == Some(0) {
        problems.push("engine.max_running", "must be greater than 0");
    }
    if engine.max_wasm_stack < 16 << 10 || engine.max_wasm_stack > 64 << 20 {
        problems.push(
            "engine.max_wasm_stack",
            "must be between 16 KiB and 64 MiB (16384 to 67108864 bytes)",
        );
    }
    if engine.max_instances == 0 {
        problems.push("engine.max_instances", "must be greater than 0");
    }
    engine
}

/// `[ledger]`.
fn ledger_settings(decl: &LedgerDecl, base: &Path, problems: &mut Problems) -> LedgerSettings {
    let ledger_defaults = LedgerSettings::default();
    let location = match (&decl.enabled, &decl.path) {
        (Some(false), _) => LedgerLocation::Disabled,
        (_, Some(path)) if path.as_os_str() == ":memory:" => LedgerLocation::Memory,
        (_, Some(path)) => LedgerLocation::File(resolve(base, path)),
        (_, None) => LedgerLocation::Default,
    };
    let ledger = LedgerSettings {
        location,
        retention: decl.retention.unwrap_or(ledger_defaults.retention),
        flush_interval: decl
            .flush_interval
            .unwrap_or(ledger_defaults.flush_interval),
        max_size: decl.max_size,
    };
    if ledger.flush_interval.is_zero() {
        problems.push("ledger.flush_interval", "must be greater than 0");
    }
    ledger
}

/// `[functions.*]`, with `[defaults]` and `[billing]` applied.
fn function_specs(
    m: &Manifest,
    base: &Path,
    defaults: &Limits,
    engine: &EngineSettings,
    problems: &mut Problems,
) -> Vec<FunctionSpec> {
    let prices = m.billing.clone().unwrap_or_default();
    let mut functions = Vec::new();
    for (id, decl) in &m.functions {
        let field = format!("functions.{id}");
        let own = decl.limits();
        check_limits(problems, &field, &own);
        let limits = defaults.with(&own);
        if own.memory.is_some() || own.table_elements.is_some() {
            check_against_engine(problems, &field, &limits, engine);
        }
        let path = resolve(base, &decl.component);
        if !path.is_file() {
            problems.push(
                format!("{field}.component"),
                format!("component file not found: {}", path.display()),
            );
        }
        functions.push(FunctionSpec {
            id: id.clone(),
            source: ComponentSource::File(path),
            limits,
            prices: decl
                .billing
                .as_ref()
                .map_or_else(|| prices.clone(), |o| prices.with_override(o)),
            quota: decl.quota,
        });
        if let Some(quota) = decl.quota {
            if quota.fuel == 0 {
                problems.push(format!("{field}.quota.fuel"), "must be greater than 0");
            }
            if quota.window.is_zero() {
                problems.push(format!("{field}.quota.window"), "must be greater than 0");
            }
        }
    }
    functions
}

/// `[[routes]]`, over `functions`.
fn route_table(
    routes: Vec<RouteDecl>,
    functions: &[FunctionSpec],
    problems: &mut Problems,
) -> Router<usize> {
    if routes.is_empty() {
        problems.push("routes", "no routes: add at least one [[routes]] entry");
    }
    let mut router = Router::new();
    for (i, route) in routes.into_iter().enumerate() {
        let field = format!("routes[{i}]");
        let Some(target) = functions.iter().position(|f| f.id == route.function) else {
            let known: Vec<&str> = functions.iter().map(|f| f.id.as_str()).collect();
            problems.push(
                format!("{field}.function"),
                format!(
                    "no function named `{}` (declared: {})",
                    route.function,
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            );
            continue;
        };
        if let Some(methods) = &route.methods
            && methods.is_empty()
        {
            problems.push(
                format!("{field}.methods"),
                "empty list: omit `methods` to accept every method",
            );
            continue;
        }
        let methods = route
            .methods
            .map(|ms| ms.into_iter().map(|m| m.0).collect());
        if let Err(conflict) = router.add(route.path, methods, target) {
            problems.push(format!("{field}.path"), conflict.to_string());
        }
    }
    router
}
