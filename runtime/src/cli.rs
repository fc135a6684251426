//! The `gust` command line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::app::App;
use crate::engine::{EngineConfig, GustEngine};
use crate::manifest::{AppSpec, Manifest};
use crate::server::Server;

/// gust: a WebAssembly function runtime.
#[derive(Debug, Parser)]
#[command(name = "gust", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a manifest, a single component, or (with no argument) the
    /// built-in examples.
    Serve {
        /// A `gust.toml`, or a `.wasm` component to serve on every path.
        target: Option<PathBuf>,
        /// Address to listen on [default: the manifest's, else 127.0.0.1:8080].
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Validate a manifest without serving it.
    Check {
        /// The `gust.toml` to check.
        manifest: PathBuf,
    },
}

impl Cli {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Serve { target, listen } => serve(target.as_deref(), listen),
            Command::Check { manifest } => check(&manifest),
        }
    }
}

fn load_spec(target: Option<&Path>) -> anyhow::Result<AppSpec> {
    match target {
        None => builtin_examples(),
        Some(path) if path.extension().is_some_and(|e| e == "wasm") => {
            Ok(AppSpec::single_component(path)?)
        }
        Some(path) => Ok(Manifest::load(path)?),
    }
}

#[cfg(feature = "builtin-examples")]
fn builtin_examples() -> anyhow::Result<AppSpec> {
    tracing::info!("no manifest given: serving the built-in examples");
    Ok(crate::examples::app_spec()?)
}

#[cfg(not(feature = "builtin-examples"))]
fn builtin_examples() -> anyhow::Result<AppSpec> {
    anyhow::bail!("this gust was built without the built-in examples: name a manifest or a .wasm")
}

fn serve(target: Option<&Path>, listen: Option<SocketAddr>) -> anyhow::Result<()> {
    let mut spec = load_spec(target)?;
    if let Some(listen) = listen {
        spec.server.listen = listen;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let engine = GustEngine::new(&EngineConfig::default())?;
        let app = App::load(&engine, spec)?;
        let routes: Vec<String> = app
            .router()
            .routes()
            .iter()
            .map(|r| r.pattern().to_string())
            .collect();
        let server = Server::new(app);
        let listener = server.bind().await?;
        let addr = listener.local_addr()?;
        tracing::info!(routes = ?routes, "routes");
        tracing::info!("serving on http://{addr}");
        server.serve(listener, shutdown_signal()).await
    })
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutdown signal received");
}

fn check(path: &Path) -> anyhow::Result<()> {
    let spec = Manifest::load(path)?;
    println!(
        "{}: ok, {} functions, {} routes",
        path.display(),
        spec.functions.len(),
        spec.router.routes().len()
    );
    for route in spec.router.routes() {
        let methods = route.methods().map_or_else(
            || "*".to_owned(),
            |ms| ms.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(","),
        );
        let function = &spec.functions[*route.target()];
        println!(
            "  {:<8} {:<32} -> {}",
            methods,
            route.pattern(),
            function.id
        );
    }
    Ok(())
}
