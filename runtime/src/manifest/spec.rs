//! The validated application: what the runtime loads.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{FunctionId, Manifest, ManifestError, Problem, resolve};
use crate::billing::Prices;
use crate::cache::CacheLocation;
use crate::quota::QuotaDecl;
use crate::router::{RoutePattern, Router};

/// Limits of one invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Fuel one invocation may consume. Default: [`Limits::DEFAULT_FUEL`].
    pub fuel: u64,
    /// Wall-clock deadline of one invocation, including time blocked in host
    /// calls. Default: [`Limits::DEFAULT_TIMEOUT`].
    pub timeout: Duration,
}

impl Limits {
    /// Ten billion instructions: seconds of CPU, enough for interpreters
    /// (Python, JavaScript) to start and answer, small enough to bill.
    pub const DEFAULT_FUEL: u64 = 10_000_000_000;
    /// Ten seconds.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    /// No invocation may be given more than an hour.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: Self::DEFAULT_FUEL,
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }
}

/// Server settings with defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSettings {
    /// Default: `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Largest request body, in bytes. Default: 64 MiB.
    pub max_body_size: u64,
    /// Time allowed for a client to send its request head. Default: 10 s.
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers), in bytes; larger
    /// heads get 431. Default: 64 KiB (at least 8 KiB). More than 100
    /// headers also get 431 (hyper's limit).
    pub max_header_size: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_size: 64 * 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            max_header_size: 64 * 1024,
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

/// A validated application: functions and the route table over them.
#[derive(Debug, Clone)]
pub struct AppSpec {
    /// The app's name (`default` unless the manifest names it).
    pub name: FunctionId,
    /// Server settings.
    pub server: ServerSettings,
    /// Ledger settings.
    pub ledger: LedgerSettings,
    /// Admin listener address, if any.
    pub admin: Option<SocketAddr>,
    /// Where compiled components are cached.
    pub cache: CacheLocation,
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
            server: ServerSettings::default(),
            ledger: LedgerSettings::default(),
            admin: None,
            cache: CacheLocation::Default,
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

fn check_limits(
    problems: &mut Problems,
    field: &str,
    fuel: Option<u64>,
    timeout: Option<Duration>,
) {
    if fuel == Some(0) {
        problems.push(format!("{field}.fuel"), "must be greater than 0");
    }
    if let Some(timeout) = timeout {
        if timeout.is_zero() {
            problems.push(format!("{field}.timeout"), "must be greater than 0");
        } else if timeout > Limits::MAX_TIMEOUT {
            problems.push(format!("{field}.timeout"), "must be at most 1h");
        }
    }
}

pub(super) fn validate(m: Manifest, base: &Path, origin: &str) -> Result<AppSpec, ManifestError> {
    let mut problems = Problems(Vec::new());

    let d = ServerSettings::default();
    let server = ServerSettings {
        listen: m.server.listen.unwrap_or(d.listen),
        max_body_size: m.server.max_body_size.unwrap_or(d.max_body_size),
        header_read_timeout: m
            .server
            .header_read_timeout
            .unwrap_or(d.header_read_timeout),
        max_header_size: m
            .server
            .max_header_size
            .unwrap_or(d.max_header_size)
            .max(8192),
    };
    if server.header_read_timeout.is_zero() {
        problems.push("server.header_read_timeout", "must be greater than 0");
    }

    check_limits(
        &mut problems,
        "defaults",
        m.defaults.fuel,
        m.defaults.timeout,
    );
    let defaults = Limits {
        fuel: m.defaults.fuel.unwrap_or(Limits::DEFAULT_FUEL),
        timeout: m.defaults.timeout.unwrap_or(Limits::DEFAULT_TIMEOUT),
    };

    let ledger_defaults = LedgerSettings::default();
    let location = match (&m.ledger.enabled, &m.ledger.path) {
        (Some(false), _) => LedgerLocation::Disabled,
        (_, Some(path)) if path.as_os_str() == ":memory:" => LedgerLocation::Memory,
        (_, Some(path)) => LedgerLocation::File(resolve(base, path)),
        (_, None) => LedgerLocation::Default,
    };
    let ledger = LedgerSettings {
        location,
        retention: m.ledger.retention.unwrap_or(ledger_defaults.retention),
        flush_interval: m
            .ledger
            .flush_interval
            .unwrap_or(ledger_defaults.flush_interval),
        max_size: m.ledger.max_size,
    };
    if ledger.flush_interval.is_zero() {
        problems.push("ledger.flush_interval", "must be greater than 0");
    }
    let prices = m.billing.clone().unwrap_or_default();

    let mut functions = Vec::new();
    for (id, decl) in &m.functions {
        let field = format!("functions.{id}");
        check_limits(&mut problems, &field, decl.fuel, decl.timeout);
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
            limits: Limits {
                fuel: decl.fuel.unwrap_or(defaults.fuel),
                timeout: decl.timeout.unwrap_or(defaults.timeout),
            },
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

    if m.routes.is_empty() {
        problems.push("routes", "no routes: add at least one [[routes]] entry");
    }
    let mut router = Router::new();
    for (i, route) in m.routes.into_iter().enumerate() {
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

    if problems.0.is_empty() {
        Ok(AppSpec {
            name: m.name.unwrap_or_else(default_name),
            server,
            ledger,
            admin: m.admin.listen,
            cache: match (m.cache.enabled, &m.cache.dir) {
                (Some(false), _) => CacheLocation::Disabled,
                (_, Some(dir)) => CacheLocation::Dir(resolve(base, dir)),
                (_, None) => CacheLocation::Default,
            },
            functions,
            router,
        })
    } else {
        Err(ManifestError {
            origin: origin.to_owned(),
            problems: problems.0,
        })
    }
}
