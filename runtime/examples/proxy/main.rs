//! gust inside a reverse proxy: the functions of a `gust.toml` answer some
//! hosts or path prefixes, every other request is forwarded to an upstream.
//!
//! ```text
//! (cd guest-examples && cargo build --release --target wasm32-wasip2)
//! cargo run -p gust-runtime --example proxy -- guest-examples/counter/gust.toml \
//!     --upstream http://127.0.0.1:9000 --path /counter --host functions.localhost
//! curl -X POST localhost:8080/counter/visits                    # gust
//! curl -H 'host: functions.localhost' localhost:8080/counter/x  # gust
//! curl localhost:8080/anything/else                             # the upstream
//! ```
//!
//! The proxy is hyper 1 with hyper-util's client and server: the request
//! and response bodies stream both ways, hop-by-hop headers are dropped,
//! `x-forwarded-for`, `-host` and `-proto` are set, and an upstream that
//! cannot be reached is answered with 502 (504 past [`UPSTREAM_TIMEOUT`]
//! without a response head). gust is in it as a `Service`
//! ([`gust_runtime::server::GustService`]), the way it fits into any hyper,
//! axum or tower server.
//!
//! Why not Pingora: `pingora-proxy` 0.9.1 brings 77 crates this workspace
//! does not build yet, among them zlib-ng (built with CMake, which this
//! machine does not have) and zstd in C, and its `Server` owns the process
//! (`run_forever` never returns, with its own runtimes, daemonisation and
//! upgrade by descriptor passing) and listens on addresses given as
//! strings, so a test cannot serve it on an ephemeral port and learn which.
//! gust needs a `Service` and a tokio runtime; hyper, already built for
//! gust's own server, shows exactly that.

mod proxy;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use gust_runtime::{App, EngineConfig, GustEngine, Manifest, Server};

use proxy::{Proxy, Rules, UPSTREAM_TIMEOUT};

/// gust's functions for some hosts or paths, an upstream for the rest.
#[derive(Parser)]
struct Args {
    /// The `gust.toml` whose functions answer.
    manifest: PathBuf,
    /// Where every other request goes: `http://host:port`.
    #[arg(long)]
    upstream: String,
    /// A host gust answers (repeatable), without a port.
    #[arg(long = "host")]
    hosts: Vec<String>,
    /// A path prefix gust answers (repeatable); the path reaches gust
    /// unchanged.
    #[arg(long = "path")]
    paths: Vec<String>,
    /// The address to listen on. Default: the manifest's `[server] listen`.
    #[arg(long)]
    listen: Option<SocketAddr>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    if args.hosts.is_empty() && args.paths.is_empty() {
        tracing::warn!("no --host or --path: every request goes to the upstream");
    }
    // The runtime gust's own server runs on: guests need its I/O polling.
    let runtime = gust_runtime::server::runtime_builder().build()?;
    runtime.block_on(async move {
        let started = Instant::now();
        let config = Manifest::load(&args.manifest)?;
        let engine =
            GustEngine::new(&EngineConfig::default().with_settings(&config.runtime.engine))?;
        let app = App::load_with(&engine, config.app, &config.runtime)?;
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            manifest = %args.manifest.display(),
            "functions loaded"
        );
        let listen = args.listen.unwrap_or(config.runtime.server.listen);
        let gust = Server::new(app, config.runtime.server).into_service();
        let rules = Rules {
            hosts: args.hosts,
            path_prefixes: args.paths,
        };
        let proxy = Arc::new(Proxy::new(gust, rules.clone(), &args.upstream)?);
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        tracing::info!(
            addr = %listener.local_addr()?,
            upstream = %args.upstream,
            ?rules,
            upstream_timeout = ?UPSTREAM_TIMEOUT,
            "proxying"
        );
        proxy
            .serve(listener, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
    })
}
