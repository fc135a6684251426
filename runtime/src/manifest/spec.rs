//! The validated application, what a tenant wrote (`AppSpec`: functions
//! with their limits, prices and quotas, and the route table), and the
//! validation of a whole `gust.toml` into it and the operator's part
//! (`runtime`), reporting every problem at once.
//!
//! (Over 400 lines because every per-function limit is documented where it
//! is declared, with its default; the limits and their checks belong
//! together.)

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::backends::CapabilitySettings;
use super::grants::{Grants, check_grants};
use super::hosts::HostPattern;
use super::model::QuotaDecl;
use super::model::{LimitsDecl, RouteDecl};
use super::runtime::{EngineSettings, RuntimeSpec};
use super::sections::{OPERATOR_SECTIONS, refuse, runtime_spec};
use super::{FunctionId, Manifest, ManifestError, Problems, resolve};
use crate::billing::Prices;
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
    /// Outbound HTTP requests (and in-process calls to other functions)
    /// one invocation may send; past it, `HTTP-request-denied`. Default: 16.
    pub outbound_requests: u32,
    /// How long opening an outbound connection may take. Default: 5 s.
    pub outbound_connect_timeout: Duration,
    /// Largest outbound response body, in bytes; the body stream fails past
    /// it. Default: 64 MiB.
    pub outbound_response_size: u64,
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
        self.outbound_requests = decl.outbound_requests.unwrap_or(self.outbound_requests);
        self.outbound_connect_timeout = decl
            .outbound_connect_timeout
            .unwrap_or(self.outbound_connect_timeout);
        self.outbound_response_size = decl
            .outbound_response_size
            .unwrap_or(self.outbound_response_size);
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
            outbound_requests: 16,
            outbound_connect_timeout: Duration::from_secs(5),
            outbound_response_size: 64 << 20,
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
    /// What it may reach: stores, containers, hosts, config, environment.
    pub grants: Grants,
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
            grants: Grants::default(),
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
    /// The hosts it answers; never empty (`*` unless the manifest lists
    /// some).
    pub hosts: Vec<HostPattern>,
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
            hosts: vec![HostPattern::any()],
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
    positive("outbound_response_size", decl.outbound_response_size);
    for (name, value) in [
        ("timeout", decl.timeout),
        ("queue_timeout", decl.queue_timeout),
        ("outbound_connect_timeout", decl.outbound_connect_timeout),
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
    let runtime = runtime_spec(&m, base, &mut problems);
    let app = app_spec(m, base, &runtime, &mut problems);
    if problems.0.is_empty() {
        Ok(Config { app, runtime })
    } else {
        Err(ManifestError {
            origin: origin.to_owned(),
            problems: problems.0,
        })
    }
}

/// A tenant's `gust.toml` from a deployed bundle, validated against the
/// node's operator settings `runtime`: only the tenant's sections
/// (`name`, `hosts`, `defaults`, `functions`, `routes`) are allowed, and
/// no function's own `billing` (the node's prices apply); component paths
/// resolve against `base`. Every problem is reported at once.
pub fn validate_bundle(
    text: &str,
    base: &Path,
    origin: &str,
    runtime: &RuntimeSpec,
) -> Result<AppSpec, ManifestError> {
    let mut problems = Problems(Vec::new());
    refuse(
        text,
        OPERATOR_SECTIONS,
        "operator configuration: a deployed app may not set it (the node's settings apply)",
        &mut problems,
    );
    let m = Manifest::parse(text, origin)?;
    for (id, function) in &m.functions {
        if function.billing.is_some() {
            problems.push(
                format!("functions.{id}.billing"),
                "operator configuration: a deployed app may not set its prices (the node's `[billing]` applies)",
            );
        }
    }
    let app = app_spec(m, base, runtime, &mut problems);
    if problems.0.is_empty() {
        Ok(app)
    } else {
        Err(ManifestError {
            origin: origin.to_owned(),
            problems: problems.0,
        })
    }
}

/// The tenant's sections, checked against the operator's `runtime`.
fn app_spec(m: Manifest, base: &Path, runtime: &RuntimeSpec, problems: &mut Problems) -> AppSpec {
    check_limits(problems, "defaults", &m.defaults);
    let defaults = Limits::default().with(&m.defaults);
    check_against_engine(problems, "defaults", &defaults, &runtime.engine);
    let functions = function_specs(
        &m,
        base,
        &defaults,
        &runtime.engine,
        &runtime.capabilities,
        &runtime.prices,
        problems,
    );
    // Serving never builds, but a broken `build` table is still an error.
    super::build::steps(&m, base, problems);
    let mut hosts = m.hosts.clone();
    let mut seen = std::collections::BTreeSet::new();
    for (i, host) in hosts.iter().enumerate() {
        if !seen.insert(host) {
            problems.push(format!("hosts[{i}]"), format!("`{host}` is listed twice"));
        }
    }
    if hosts.is_empty() {
        hosts.push(HostPattern::any());
    }
    let router = route_table(m.routes, &functions, problems);
    AppSpec {
        name: m.name.unwrap_or_else(default_name),
        hosts,
        functions,
        router,
    }
}

/// `[functions.*]`, with `[defaults]` and `[billing]` applied.
fn function_specs(
    m: &Manifest,
    base: &Path,
    defaults: &Limits,
    engine: &EngineSettings,
    capabilities: &CapabilitySettings,
    prices: &Option<Prices>,
    problems: &mut Problems,
) -> Vec<FunctionSpec> {
    let prices = prices.clone().unwrap_or_default();
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
        let grants = Grants {
            key_value_stores: decl.key_value_stores.clone(),
            blob_containers: decl.blob_containers.clone(),
            allowed_outbound_hosts: decl.allowed_outbound_hosts.clone(),
            config: decl.config.clone(),
            environment: decl.environment.clone(),
        };
        check_grants(problems, &field, &grants, capabilities);
        functions.push(FunctionSpec {
            id: id.clone(),
            source: ComponentSource::File(path),
            limits,
            prices: decl
                .billing
                .as_ref()
                .map_or_else(|| prices.clone(), |o| prices.with_override(o)),
            quota: decl.quota,
            grants,
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
