//! The `gust.toml` document as written: serde types, unknown fields rejected.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::backends::{BlobDecl, ContainerDecl, DataDecl, KeyValueDecl, SecretDecl, StoreDecl};
use super::hosts::HostPattern;
use crate::billing::{Prices, PricesOverride};
use crate::router::RoutePattern;

/// `[functions.ID.build]`: the command that builds the function's
/// component, for `gust build` and `gust serve --watch`. Serving never
/// runs it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildDecl {
    /// Run with `sh -c` in `workdir`, e.g. `"cargo build --release --target wasm32-wasip2"`.
    pub command: String,
    /// Directory to run it in, relative to the manifest's directory
    /// [default: the manifest's directory].
    pub workdir: Option<PathBuf>,
    /// Globs, relative to `workdir`, of the sources whose changes rebuild
    /// the function under `gust serve --watch`, e.g. `["src/**/*.rs"]`.
    #[serde(default)]
    pub watch: Vec<String>,
}

/// A whole `gust.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The app's name, recorded with every invocation. Default: `default`.
    pub name: Option<FunctionId>,
    /// The hosts the app answers (see [`HostPattern`]). Default: `["*"]`,
    /// every host no other app claims.
    #[serde(default)]
    pub hosts: Vec<HostPattern>,
    /// Server settings; every one has a default.
    #[serde(default)]
    pub server: ServerDecl,
    /// Limits that apply to every function unless it overrides them.
    #[serde(default)]
    pub defaults: LimitsDecl,
    /// Functions by id.
    #[serde(default)]
    pub functions: BTreeMap<FunctionId, FunctionDecl>,
    /// Routes, in declaration order.
    #[serde(default)]
    pub routes: Vec<RouteDecl>,
    /// Where usage records go.
    #[serde(default)]
    pub ledger: LedgerDecl,
    /// Prices for every function.
    pub billing: Option<Prices>,
    /// The admin listener.
    #[serde(default)]
    pub admin: AdminDecl,
    /// Traces over OTLP.
    #[serde(default)]
    pub telemetry: TelemetryDecl,
    /// The compiled-code cache.
    #[serde(default)]
    pub cache: CacheDecl,
    /// Process-wide engine settings.
    #[serde(default)]
    pub engine: EngineDecl,
    /// Where embedded stores and containers live.
    #[serde(default)]
    pub data: DataDecl,
    /// Backends of key-value store names.
    #[serde(default)]
    pub key_value_store: BTreeMap<String, StoreDecl>,
    /// Backends of blob container names.
    #[serde(default)]
    pub blob_container: BTreeMap<String, ContainerDecl>,
    /// Limits of every key-value store.
    #[serde(default)]
    pub key_value: KeyValueDecl,
    /// Limits of every blob container.
    #[serde(default)]
    pub blob: BlobDecl,
    /// Where secrets come from.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretDecl>,
}

/// `[engine]`: settings of the one wasmtime engine, shared by every
/// function (they cannot differ per function).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineDecl {
    /// Largest Wasm stack of one invocation, in bytes (deeper recursion
    /// traps with a stack overflow).
    pub max_wasm_stack: Option<usize>,
    /// Instances live at once across all functions (the pool's size).
    pub max_instances: Option<u32>,
    /// Largest linear memory any instance may have, in bytes (the pool's
    /// slot size; per-function `memory` limits are checked against it).
    pub max_memory_size: Option<usize>,
    /// Largest table any instance may have, in elements (the pool's slot
    /// size; per-function `table_elements` limits are checked against it).
    pub max_table_elements: Option<usize>,
    /// Guests executing at once (default: no limit).
    pub max_running: Option<usize>,
    /// How long a guest runs before it yields its worker thread, e.g.
    /// `"20ms"`.
    #[serde(default, with = "humantime_serde")]
    pub time_slice: Option<Duration>,
    /// When functions are made resident: `"auto"`, `"eager"` or `"lazy"`
    /// (see [`LoadDecl`]).
    pub load: Option<LoadDecl>,
    /// With `load = "auto"`: the largest app loaded eagerly, in functions.
    pub eager_up_to: Option<usize>,
    /// Lazily loaded functions kept resident at most; past it the least
    /// recently used is dropped (and loads again on its next request).
    pub max_resident_functions: Option<usize>,
}

/// `[engine] load`: when a function's compiled code and pre-instantiation
/// are made resident. Whichever it is, every component is compiled (into
/// the cache) and checked before its app serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadDecl {
    /// Eager for small apps (`eager_up_to` functions), lazy above (the
    /// default).
    Auto,
    /// Every function resident before its app serves.
    Eager,
    /// Each function made resident by its first request: thousands of
    /// mostly idle functions per node.
    Lazy,
}

/// `[cache]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheDecl {
    /// Directory of compiled artifacts, relative to the manifest.
    /// Default: `$XDG_CACHE_HOME/gust/compiled`, else `~/.cache/gust/compiled`.
    pub dir: Option<PathBuf>,
    /// `false` compiles every component on every start. Default: `true`.
    pub enabled: Option<bool>,
}

/// `[ledger]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerDecl {
    /// SQLite file, relative to the manifest; `":memory:"` keeps records in
    /// memory only. Default: `ledger.sqlite` in gust's data directory.
    pub path: Option<PathBuf>,
    /// `false` turns the ledger off. Default: `true`.
    pub enabled: Option<bool>,
    /// How long raw records are kept (rollups are kept forever).
    #[serde(default, with = "humantime_serde")]
    pub retention: Option<Duration>,
    /// How often the background writer commits a batch.
    #[serde(default, with = "humantime_serde")]
    pub flush_interval: Option<Duration>,
    /// Largest ledger file size in bytes (commits fail past it, as on a
    /// full disk).
    pub max_size: Option<u64>,
}

/// `[admin]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminDecl {
    /// Address of the admin listener (deploy API, usage, metrics, logs).
    /// Default: none; `gust serve --admin ADDR` also sets it.
    pub listen: Option<std::net::SocketAddr>,
    /// Where deployed apps' bundles are kept, to be restored at start.
    /// Default: `state` under gust's data directory.
    pub state_dir: Option<PathBuf>,
    /// The file of token hashes the deploy API accepts (`gust token
    /// create`). Default: `tokens` in the state directory.
    pub tokens: Option<PathBuf>,
    /// The audit log of every change made through the deploy API (JSON
    /// lines). Default: `audit.log` in the state directory.
    pub audit_log: Option<PathBuf>,
    /// Lines of guest output kept per function for `GET
    /// /v1/apps/{app}/logs`. Default: 1000.
    pub log_lines: Option<usize>,
}

/// `[telemetry]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryDecl {
    /// OTLP/HTTP endpoint traces are sent to, e.g.
    /// `http://127.0.0.1:4318`. Default: none (no traces).
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the traces. Default: `gust`.
    pub service_name: Option<String>,
}

/// `[server]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerDecl {
    /// Address to listen on, e.g. `127.0.0.1:8080`.
    pub listen: Option<std::net::SocketAddr>,
    /// Largest request body accepted, in bytes (413 past it).
    pub max_body_size: Option<u64>,
    /// Largest request head in bytes (431 past it).
    pub max_header_size: Option<usize>,
    /// How long a client may take to send its request headers.
    #[serde(default, with = "humantime_serde")]
    pub header_read_timeout: Option<Duration>,
    /// Most request headers (431 past it).
    pub max_headers: Option<usize>,
    /// Longest request target (path and query), in bytes (414 past it).
    pub max_url_length: Option<usize>,
    /// Most connections open at once; past it accepting waits.
    pub max_connections: Option<usize>,
    /// How long a connection may sit with no request in flight and no
    /// bytes moving before the server closes it.
    #[serde(default, with = "humantime_serde")]
    pub idle_timeout: Option<Duration>,
    /// How long a client may take to send a whole request body, from the
    /// end of its head (408 past it).
    #[serde(default, with = "humantime_serde")]
    pub body_read_timeout: Option<Duration>,
    /// Most concurrent HTTP/2 streams per connection.
    pub http2_max_concurrent_streams: Option<u32>,
}

/// Declares [`LimitsDecl`] and [`FunctionDecl`] from one list of limit
/// fields, and `FunctionDecl::limits`. The fields are repeated in
/// `FunctionDecl` rather than flattened because serde cannot reject unknown
/// fields next to a flattened struct; the macro keeps one list of them.
macro_rules! limit_decls {
    ($( $(#[$attr:meta])* $name:ident: $ty:ty, )*) => {
        /// Per-invocation limits: `[defaults]`, or inside a function where they
        /// override `[defaults]`. Every one is optional; `spec::Limits` documents
        /// the defaults.
        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct LimitsDecl {
            $( $(#[$attr])* pub $name: Option<$ty>, )*
        }

        /// `[functions.ID]`: the component, its own limits (each overrides
        /// `[defaults]`; see [`LimitsDecl`]), quota and prices.
        #[derive(Debug, Clone, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct FunctionDecl {
            /// Path to the component, relative to the manifest's directory.
            pub component: PathBuf,
            $( $(#[$attr])* pub $name: Option<$ty>, )*
            /// Fuel allowed per time window, e.g. `{ fuel = 10_000_000_000, window = "1h" }`.
            pub quota: Option<QuotaDecl>,
            /// Replaces some of `[billing]`'s prices for this function.
            pub billing: Option<PricesOverride>,
            /// Key-value stores it may open (see `grants`).
            #[serde(default)]
            pub key_value_stores: Vec<String>,
            /// Blob containers it may open.
            #[serde(default)]
            pub blob_containers: Vec<String>,
            /// Hosts it may send HTTP requests to.
            #[serde(default)]
            pub allowed_outbound_hosts: Vec<String>,
            /// `wasi:config` values.
            #[serde(default)]
            pub config: BTreeMap<String, String>,
            /// Environment variables.
            #[serde(default)]
            pub environment: BTreeMap<String, String>,
            /// How to build the component (`gust build`, `gust serve --watch`).
            pub build: Option<BuildDecl>,
        }

        impl FunctionDecl {
            /// The limits this function sets itself.
            pub fn limits(&self) -> LimitsDecl {
                LimitsDecl { $( $name: self.$name, )* }
            }
        }
    };
}

limit_decls! {
    /// Fuel (Wasm instructions) one invocation may consume.
    fuel: u64,
    /// Wall-clock deadline of one invocation, e.g. `"5s"` or `"250ms"`.
    #[serde(default, with = "humantime_serde")]
    timeout: Duration,
    /// Total linear memory of one instance, in bytes.
    memory: usize,
    /// Elements of any one table of an instance.
    table_elements: usize,
    /// Core instances (and tables, and memories) in one invocation's store.
    instances: usize,
    /// Host resource handles (`wasi:http` fields, streams, ...) live at once.
    resources: usize,
    /// Host memory (fields, body buffers, resources) held at once, bytes.
    host_memory: usize,
    /// Largest `wasi:random` request in one call, bytes.
    max_random_size: u64,
    /// Invocations of the function running at once.
    concurrency: u32,
    /// Requests waiting for a free slot when `concurrency` is reached.
    queue: u32,
    /// How long a request may wait in that queue, e.g. `"1s"`.
    #[serde(default, with = "humantime_serde")]
    queue_timeout: Duration,
    /// Largest response body, in bytes; the stream is cut past it.
    max_response_size: u64,
    /// Requests one instance may serve before it is thrown away; 1 (the
    /// default) is a fresh instance for every request.
    reuse: u32,
    /// Outbound HTTP requests one invocation may send.
    outbound_requests: u32,
    /// How long an outbound connection may take to open, e.g. `"5s"`.
    #[serde(default, with = "humantime_serde")]
    outbound_connect_timeout: Duration,
    /// Largest outbound response body, in bytes.
    outbound_response_size: u64,
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteDecl {
    /// The path pattern: `/hello`, `/users/{id}`, `/static/{*rest}`.
    pub path: RoutePattern,
    /// The function that serves it.
    pub function: FunctionId,
    /// Methods accepted; all when absent.
    pub methods: Option<Vec<MethodName>>,
}

/// A function id: 1 to 64 of `a-z`, `0-9`, `-`, `_`, starting with a letter
/// or digit. Ids appear in logs, metrics and billing records, so they are
/// kept plain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct FunctionId(String);

impl FunctionId {
    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for FunctionId {
    type Error = String;
    fn try_from(id: String) -> Result<Self, String> {
        let ok_first = id
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let ok_rest = id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if id.len() <= 64 && ok_first && ok_rest {
            Ok(FunctionId(id))
        } else {
            Err(format!(
                "invalid function id `{id}`: use 1 to 64 of a-z, 0-9, `-` and `_`, starting with a letter or digit"
            ))
        }
    }
}

impl TryFrom<&str> for FunctionId {
    type Error = String;
    fn try_from(id: &str) -> Result<Self, String> {
        id.to_owned().try_into()
    }
}

impl fmt::Display for FunctionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An HTTP method name, upper case (`GET`, `POST`, or an extension method).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct MethodName(pub http::Method);

impl TryFrom<String> for MethodName {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        let upper = !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase());
        match http::Method::from_bytes(name.as_bytes()) {
            Ok(method) if upper => Ok(MethodName(method)),
            _ => Err(format!(
                "invalid HTTP method `{name}`: use upper-case names like GET or POST"
            )),
        }
    }
}

/// A `humantime` duration (`"5s"`, `"250ms"`, `"1h"`).
pub(crate) fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "invalid duration `{text}`: {e} (write e.g. \"5s\" or \"250ms\")"
        ))
    })
}

/// [`duration`] for optional fields.
mod humantime_serde {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(deserialize_with = "super::duration")] Duration);
        Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.0))
    }
}

/// `quota = { fuel = N, window = "1h" }` in a function's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaDecl {
    /// Fuel allowed per window.
    pub fuel: u64,
    /// Window length, e.g. `"1h"`, `"1m"`.
    #[serde(deserialize_with = "super::duration")]
    pub window: Duration,
}
