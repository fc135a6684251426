//! # gust-runtime
//!
//! gust serves WebAssembly components that implement `wasi:http/proxy`. The
//! pipeline, one module per stage:
//!
//! 1. [`manifest`]: `gust.toml` parsed and validated into an [`AppSpec`].
//! 2. [`engine`]: the process's one wasmtime engine (pooling allocator,
//!    copy-on-write memory, fuel, epochs).
//! 3. [`app`] and [`function`]: every component compiled once and
//!    pre-instantiated; one fresh instance per request.
//! 4. [`router`]: the route table (no wasmtime inside).
//! 5. [`server`]: hyper, mapping every failure to an HTTP status.
//! 6. [`metering`]: the fuel and wall time of every invocation.
//!
//! Embedding it:
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use gust_runtime::{App, EngineConfig, GustEngine, Manifest, Server};
//!
//! let engine = GustEngine::new(&EngineConfig::default())?;
//! let spec = Manifest::load("gust.toml".as_ref())?;
//! let app = App::load(&engine, spec)?
//!     .on_invocation(|record| println!("{} used {} fuel", record.function, record.fuel_consumed))?;
//! let server = Server::new(app);
//! let listener = server.bind().await?;
//! server.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

pub mod admin;
mod admission;
pub mod app;
pub mod billing;
pub mod cache;
mod calibrate;
mod call;
pub mod cli;
mod dirs;
pub mod engine;
#[cfg(feature = "builtin-examples")]
pub mod examples;
pub mod function;
mod gate;
mod host;
mod host_work;
mod invoke;
pub mod ledger;
pub mod manifest;
pub mod metering;
mod output;
pub mod quota;
mod reuse;
pub mod router;
pub mod server;

pub use app::App;
pub use call::Kind;
pub use engine::{EngineConfig, GustEngine};
pub use function::Function;
pub use host::HostState;
pub use manifest::{AppSpec, Manifest, ManifestError};
pub use metering::{InvocationRecord, Outcome};
pub use server::Server;
