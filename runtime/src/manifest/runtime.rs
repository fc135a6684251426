//! What the operator sets, validated: the server's listener and request
//! limits, the engine, the ledger, the admin listener and the compile
//! cache (`RuntimeSpec`), each section with its defaults and its own
//! validation. The tenant's part is in `spec`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::backends::CapabilitySettings;
use super::model::{AdminDecl, EngineDecl, LedgerDecl, LoadDecl, ServerDecl, TelemetryDecl};
use super::{Problems, resolve};
use crate::cache::CacheLocation;

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
    /// When functions are made resident; `None`: the engine's default
    /// (`EngineConfig::load_mode`).
    pub load: Option<LoadDecl>,
    /// With `load = "auto"` (or unset): the largest app loaded eagerly;
    /// `None`: the engine's default.
    pub eager_up_to: Option<usize>,
    /// Lazily loaded functions kept resident at most; `None`: the
    /// engine's default (`EngineConfig::max_resident_functions`).
    pub max_resident_functions: Option<usize>,
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
            load: None,
            eager_up_to: None,
            max_resident_functions: None,
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

/// What the operator sets: the server's listener and request limits, the
/// engine, the ledger, the admin listener and the compiled-code cache.
/// Shared by every app a server runs; in a one-app `gust.toml` it sits in
/// the same file as the app.
#[derive(Debug, Clone)]
pub struct RuntimeSpec {
    /// Prices of every function (`[billing]`); `None`: the defaults. In a
    /// node they apply to every deployed app.
    pub prices: Option<crate::billing::Prices>,
    /// Server settings.
    pub server: ServerSettings,
    /// Engine settings (used by whoever builds the engine: `gust serve`).
    pub engine: EngineSettings,
    /// Ledger settings.
    pub ledger: LedgerSettings,
    /// The admin listener and the deploy API's state.
    pub admin: AdminSettings,
    /// Traces.
    pub telemetry: TelemetrySettings,
    /// Where compiled components are cached.
    pub cache: CacheLocation,
    /// Backends, limits and secrets of the host capabilities.
    pub capabilities: CapabilitySettings,
}

impl Default for RuntimeSpec {
    fn default() -> Self {
        RuntimeSpec {
            prices: None,
            server: ServerSettings::default(),
            engine: EngineSettings::default(),
            ledger: LedgerSettings::default(),
            admin: AdminSettings::default(),
            telemetry: TelemetrySettings::default(),
            cache: CacheLocation::Default,
            capabilities: CapabilitySettings::default(),
        }
    }
}

/// `[server]`.
pub(super) fn server_settings(decl: &ServerDecl, problems: &mut Problems) -> ServerSettings {
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
pub(super) fn engine_settings(decl: &EngineDecl, problems: &mut Problems) -> EngineSettings {
    let e = EngineSettings::default();
    let engine = EngineSettings {
        max_wasm_stack: decl.max_wasm_stack.unwrap_or(e.max_wasm_stack),
        max_instances: decl.max_instances.unwrap_or(e.max_instances),
        max_memory_size: decl.max_memory_size.unwrap_or(e.max_memory_size),
        max_table_elements: decl.max_table_elements.unwrap_or(e.max_table_elements),
        max_running: decl.max_running,
        time_slice: decl.time_slice.unwrap_or(e.time_slice),
        load: decl.load,
        eager_up_to: decl.eager_up_to,
        max_resident_functions: decl.max_resident_functions,
    };
    if engine.eager_up_to.is_some() && matches!(engine.load, Some(LoadDecl::Eager | LoadDecl::Lazy))
    {
        problems.push("engine.eager_up_to", "only with load = \"auto\"");
    }
    if engine.max_resident_functions == Some(0) {
        problems.push("engine.max_resident_functions", "must be greater than 0");
    }
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
pub(super) fn ledger_settings(
    decl: &LedgerDecl,
    base: &Path,
    problems: &mut Problems,
) -> LedgerSettings {
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

/// `[admin]`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSettings {
    /// Address of the admin listener; none: no admin listener.
    pub listen: Option<SocketAddr>,
    /// Where deployed bundles are kept.
    pub state_dir: PathBuf,
    /// The token hashes file.
    pub tokens: PathBuf,
    /// The audit log.
    pub audit_log: PathBuf,
    /// Lines of guest output kept per function
    /// ([`AdminSettings::DEFAULT_LOG_LINES`]).
    pub log_lines: usize,
}

impl AdminSettings {
    /// Lines of guest output kept per function by default.
    pub const DEFAULT_LOG_LINES: usize = 1000;

    /// Settings with every file in `state_dir`.
    pub fn in_dir(state_dir: PathBuf) -> AdminSettings {
        AdminSettings {
            listen: None,
            tokens: state_dir.join("tokens"),
            audit_log: state_dir.join("audit.log"),
            state_dir,
            log_lines: AdminSettings::DEFAULT_LOG_LINES,
        }
    }
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings::in_dir(crate::dirs::data_dir().join("state"))
    }
}

/// `[telemetry]`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetrySettings {
    /// OTLP/HTTP endpoint; none: no traces.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the traces.
    pub service_name: String,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        TelemetrySettings {
            otlp_endpoint: None,
            service_name: "gust".to_owned(),
        }
    }
}

/// `[admin]`.
pub(super) fn admin_settings(
    decl: &AdminDecl,
    base: &Path,
    problems: &mut Problems,
) -> AdminSettings {
    let state_dir = decl.state_dir.as_ref().map_or_else(
        || AdminSettings::default().state_dir,
        |dir| resolve(base, dir),
    );
    let mut admin = AdminSettings::in_dir(state_dir);
    admin.listen = decl.listen;
    if let Some(tokens) = &decl.tokens {
        admin.tokens = resolve(base, tokens);
    }
    if let Some(audit) = &decl.audit_log {
        admin.audit_log = resolve(base, audit);
    }
    if let Some(lines) = decl.log_lines {
        if lines == 0 {
            problems.push("admin.log_lines", "must be greater than 0");
        }
        admin.log_lines = lines;
    }
    admin
}

/// `[telemetry]`.
pub(super) fn telemetry_settings(
    decl: &TelemetryDecl,
    problems: &mut Problems,
) -> TelemetrySettings {
    let mut telemetry = TelemetrySettings::default();
    if let Some(endpoint) = &decl.otlp_endpoint {
        match endpoint.parse::<http::Uri>() {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() =>
            {
                telemetry.otlp_endpoint = Some(endpoint.trim_end_matches('/').to_owned());
            }
            _ => problems.push(
                "telemetry.otlp_endpoint",
                format!("`{endpoint}` is not an http:// or https:// URL"),
            ),
        }
    }
    if let Some(name) = &decl.service_name {
        if name.trim().is_empty() {
            problems.push("telemetry.service_name", "must not be empty");
        }
        telemetry.service_name = name.clone();
    }
    telemetry
}
