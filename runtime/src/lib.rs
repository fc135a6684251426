//! # gust-runtime
//!
//! gust serves WebAssembly components that implement `wasi:http/proxy`. The
//! pipeline, one module per stage:
//!
//! 1. [`manifest`]: `gust.toml` parsed and validated into an [`AppSpec`].
//! 2. [`engine`]: the process's one wasmtime engine (pooling allocator,
//!    copy-on-write memory, fuel, epochs).
//! 3. [`app`] and [`function`]: every component compiled once and
//!    pre-instantiated; one fresh instance per request. Each instance's
//!    store holds the host state (`host`): WASI and `wasi:http`, the
//!    limits, the host work it is charged for (`host::work`) and one field
//!    per host capability (`host::capability`: one trait, `Capability`;
//!    adding a capability is one module, its grant, and one line in the
//!    `capabilities!` list).
//! 4. `exec`: what every trigger needs to invoke a function, and nothing
//!    of HTTP: quota and admission, a fresh or reused store with its fuel,
//!    deadline and time slices, the guest task under the gate, cancellation
//!    and shutdown, and the usage record (`exec::Completion`, which a
//!    trigger completes through `exec::TriggerEnd`). The core instantiates
//!    the component without knowing its exports. Adding a trigger (a timer,
//!    a queue consumer) is a module that calls `Function::prepare`, makes
//!    the record with `Prepared::completion` and its own `TriggerEnd`, and
//!    `Prepared::spawn`s a call that finds its export in the `Instance`;
//!    the core does not change.
//! 5. [`router`]: the route table (no wasmtime inside).
//! 6. [`server`]: the HTTP trigger: hyper, routing to functions, the
//!    `wasi:http` call (`server::invoke`: request, response head, the
//!    metered response body) and every failure mapped to an HTTP status.
//! 7. [`metering`]: the fuel and wall time of every invocation.
//!
//! Embedding it:
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use gust_runtime::{App, EngineConfig, GustEngine, Manifest, Server};
//!
//! let engine = GustEngine::new(&EngineConfig::default())?;
//! // The tenant's app and the operator's settings, from one file.
//! let config = Manifest::load("gust.toml".as_ref())?;
//! let app = App::load(&engine, config.app, &config.runtime.cache)?
//!     .on_invocation(|record| println!("{} used {} fuel", record.function, record.fuel_consumed))?;
//! let server = Server::new(app, config.runtime.server);
//! let listener = server.bind().await?;
//! server.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

pub mod admin;
mod admission;
pub mod app;
pub mod billing;
pub mod cache;
mod call;
pub mod deploy;
pub mod dev;
mod dirs;
pub mod engine;
#[cfg(feature = "builtin-examples")]
pub mod examples;
mod exec;
pub mod function;
mod gate;
pub mod headers;
mod host;
pub mod ledger;
pub mod logs;
pub mod manifest;
pub mod metering;
pub mod node;
mod quota;
mod reuse;
pub mod router;
pub mod server;
pub mod telemetry;

pub use app::{App, Apps};
pub use call::Kind;
pub use engine::{EngineConfig, GustEngine};
pub use function::Function;
pub use manifest::{AppSpec, Config, Manifest, ManifestError, RuntimeSpec};
pub use metering::{InvocationRecord, Outcome};
pub use server::Server;
