//! The `gust` command line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use gust_runtime::app::{App, Apps};
use gust_runtime::cache::CacheLocation;
use gust_runtime::deploy::Deployer;
use gust_runtime::engine::{EngineConfig, GustEngine};
use gust_runtime::ledger::{self, Format, Ledger, UsageFilter};
use gust_runtime::logs::LogBook;
use gust_runtime::manifest::{AppSpec, Config, LedgerLocation, Manifest, RuntimeSpec};
use gust_runtime::node::{Node, NodeOptions};
use gust_runtime::server::Server;
use gust_runtime::telemetry::metrics::Metrics;

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
        /// Optional with an admin listener (a node serving deployed apps).
        target: Option<PathBuf>,
        /// A node's configuration: a `gust.toml` with operator sections
        /// only (`[server]`, `[admin]`, `[cache]`, ...); apps come through
        /// the deploy API. Needs an admin listener.
        #[arg(long, value_name = "FILE", conflicts_with = "target")]
        config: Option<PathBuf>,
        /// Settings that replace the manifest's.
        #[command(flatten)]
        overrides: Overrides,
        /// MiB of each pooled memory kept resident between instances
        /// [default: 16 on Linux 6.7+, else 0].
        #[arg(long, value_name = "MIB")]
        keep_resident: Option<usize>,
        /// Do not meter fuel: for measuring what metering costs. Fuel
        /// budgets are then not enforced and records show 0 Wasm fuel.
        #[arg(long)]
        no_fuel: bool,
        /// How long shutdown (Ctrl-C, SIGTERM) waits for in-flight
        /// invocations before cancelling them, e.g. `30s`, `500ms`.
        #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
        shutdown_grace: Duration,
        /// Build the functions first (as `gust build`), then rebuild any
        /// whose `watch` sources change and swap the new version in while
        /// serving (requests in flight finish on the old one).
        #[arg(long)]
        watch: bool,
    },
    /// Run the build commands of a manifest's functions
    /// (`[functions.ID.build]`), all at once.
    Build {
        /// The `gust.toml` [default: ./gust.toml].
        #[arg(default_value = "gust.toml")]
        manifest: PathBuf,
        /// Only these functions (repeatable).
        #[arg(long = "function", short = 'f', value_name = "ID")]
        functions: Vec<String>,
    },
    /// Create a function project from a template: a hello with a
    /// `gust.toml` that `gust build` builds and `gust serve` serves.
    New {
        /// The language: rust, python, js, go or c.
        template: String,
        /// The project's name (and its directory's).
        name: String,
        /// Where to create the project's directory [default: .].
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Usage totals and cost per function, read from a ledger.
    Usage {
        /// The ledger file [default: ledger.sqlite in gust's data dir].
        #[arg(long)]
        ledger: Option<PathBuf>,
        /// Only this function.
        #[arg(long)]
        function: Option<String>,
        /// Only usage since this time: RFC 3339 (`2026-11-22T10:00:00Z`)
        /// or a duration ago (`1h`, `30m`). Minute-granular.
        #[arg(long)]
        since: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Measure nanoseconds per unit of fuel on this machine.
    Calibrate {
        /// Timed runs per workload size (the median is used).
        #[arg(long, default_value_t = 7)]
        runs: usize,
    },
    /// Validate a manifest without serving it.
    Check {
        /// The `gust.toml` to check.
        manifest: PathBuf,
    },
    /// Deploy an app to a node: a directory with a `gust.toml` (packed
    /// with the components it names) or a `.tar`/`.tar.gz` bundle.
    Deploy {
        /// The app's directory, or a bundle [default: .].
        #[arg(default_value = ".")]
        source: PathBuf,
        /// The app's name [default: the manifest's `name`].
        #[arg(long)]
        app: Option<String>,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// List a node's apps.
    Apps {
        #[command(flatten)]
        node: NodeArgs,
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Put an app's previous version back in service.
    Rollback {
        /// The app.
        app: String,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Remove an app from a node, with its kept versions.
    Undeploy {
        /// The app.
        app: String,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Deploy API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token: printed once, only its hash is kept.
    Create {
        /// A token for this app only.
        #[arg(
            long,
            required_unless_present = "operator",
            conflicts_with = "operator"
        )]
        app: Option<String>,
        /// A token for every app.
        #[arg(long)]
        operator: bool,
        /// The token file [default: the node configuration's
        /// `[admin] tokens`, else `tokens` in the default state directory].
        #[arg(long, value_name = "FILE")]
        tokens: Option<PathBuf>,
        /// The node's configuration, for its token file.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

/// Where a node's deploy API is, and the token for it.
#[derive(Debug, Clone, clap::Args)]
struct NodeArgs {
    /// The node's admin listener, `http://HOST:PORT`.
    #[arg(long, env = "GUST_ADMIN", value_name = "URL")]
    admin: String,
    /// The deploy API token [default: $GUST_TOKEN].
    #[arg(long, env = "GUST_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl Cli {
    /// The log level when `RUST_LOG` is unset: `info` while serving, where
    /// the log is the record of what happened, `warn` for the one-shot
    /// commands, whose output is on stdout.
    pub fn default_log_level(&self) -> &'static str {
        match self.command {
            Command::Serve { .. } | Command::Build { .. } => "info",
            _ => "warn",
        }
    }

    /// Runs the command.
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Serve {
                target,
                config,
                overrides,
                keep_resident,
                no_fuel,
                shutdown_grace,
                watch,
            } => {
                let watched = match (watch, &target) {
                    (false, _) => None,
                    (true, Some(path)) if path.extension().is_none_or(|e| e != "wasm") => {
                        build(path, &[])?;
                        Some(path.clone())
                    }
                    (true, _) => anyhow::bail!("--watch needs a manifest (gust.toml) to watch"),
                };
                let mut spec = load_served(target.as_deref(), config.as_deref(), &overrides)?;
                overrides.apply_runtime(&mut spec.runtime);
                let mut engine = EngineConfig::default()
                    .with_settings(&spec.runtime.engine)
                    .fuel(!no_fuel);
                if let Some(mib) = keep_resident {
                    engine = engine.memory_keep_resident(mib << 20);
                }
                let watched = watched.map(|manifest| Watched {
                    manifest,
                    overrides,
                });
                serve(spec, engine, shutdown_grace, watched)
            }
            Command::Build {
                manifest,
                functions,
            } => build(&manifest, &functions),
            Command::New {
                template,
                name,
                dir,
            } => new(&template, &name, &dir),
            Command::Check { manifest } => check(&manifest),
            Command::Usage {
                ledger,
                function,
                since,
                format,
            } => {
                let path = ledger.unwrap_or_else(ledger::default_path);
                let conn = ledger::open_read_only(&path)?;
                let filter = UsageFilter {
                    function,
                    since: since
                        .as_deref()
                        .map(gust_runtime::ledger::parse_since)
                        .transpose()?,
                };
                print!(
                    "{}",
                    ledger::render(&ledger::usage(&conn, &filter)?, format)
                );
                Ok(())
            }
            Command::Calibrate { runs } => crate::calibrate::run(runs),
            Command::Deploy { source, app, node } => {
                crate::deploy::deploy(&source, app.as_deref(), &node.admin, node.token)
            }
            Command::Apps { node, json } => crate::deploy::apps(&node.admin, node.token, json),
            Command::Rollback { app, node } => {
                crate::deploy::rollback(&app, &node.admin, node.token)
            }
            Command::Undeploy { app, node } => {
                crate::deploy::undeploy(&app, &node.admin, node.token)
            }
            Command::Token {
                command:
                    TokenCommand::Create {
                        app,
                        operator: _,
                        tokens,
                        config,
                    },
            } => crate::deploy::create_token(app, tokens, config.as_deref()),
        }
    }
}

/// What `gust serve` serves: an app (unless a node serves deployed apps
/// only) and the operator's settings.
struct Served {
    app: Option<AppSpec>,
    runtime: RuntimeSpec,
}

/// The app to serve and the operator's settings: from a manifest, or a
/// component or the built-in examples with default settings; or, for a
/// node (an admin listener configured, no target), no app and the
/// settings of the node's configuration file.
fn load_served(
    target: Option<&Path>,
    config: Option<&Path>,
    overrides: &Overrides,
) -> anyhow::Result<Served> {
    if let Some(config) = config {
        return Ok(Served {
            app: None,
            runtime: Manifest::load_node(config)?,
        });
    }
    if target.is_none() && overrides.admin.is_some() {
        return Ok(Served {
            app: None,
            runtime: RuntimeSpec::default(),
        });
    }
    let Config { app, runtime } = load_spec(target)?;
    Ok(Served {
        app: Some(app),
        runtime,
    })
}

/// The app to serve and the operator's settings: from a manifest, or a
/// component or the built-in examples with default settings.
fn load_spec(target: Option<&Path>) -> anyhow::Result<Config> {
    let app = match target {
        None => builtin_examples()?,
        Some(path) if path.extension().is_some_and(|e| e == "wasm") => {
            AppSpec::single_component(path)?
        }
        Some(path) => return Ok(Manifest::load(path)?),
    };
    Ok(Config {
        app,
        runtime: RuntimeSpec::default(),
    })
}

#[cfg(feature = "builtin-examples")]
fn builtin_examples() -> anyhow::Result<AppSpec> {
    tracing::info!("no manifest given: serving the built-in examples");
    Ok(gust_runtime::examples::app_spec()?)
}

#[cfg(not(feature = "builtin-examples"))]
fn builtin_examples() -> anyhow::Result<AppSpec> {
    anyhow::bail!("this gust was built without the built-in examples: name a manifest or a .wasm")
}

/// Every connection is a file descriptor: raise the soft limit to the hard
/// one (often 1024 -> 1M), and say so when it still cannot hold
/// `max_connections` plus room for components, the ledger and the admin
/// listener.
fn raise_open_file_limit(max_connections: usize) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < max_connections as u64 + 256 => tracing::warn!(
            limit,
            max_connections,
            "the open-file limit is below [server].max_connections: accepting will fail before that many connections"
        ),
        Ok(limit) => tracing::debug!(limit, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

/// The command line's settings that replace the manifest's.
#[derive(Debug, Clone, clap::Args)]
struct Overrides {
    /// Address to listen on [default: the manifest's, else 127.0.0.1:8080].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Ledger file for usage records (`:memory:` for none on disk)
    /// [default: the manifest's, else ledger.sqlite in gust's data dir].
    #[arg(long, conflicts_with = "no_ledger")]
    ledger: Option<PathBuf>,
    /// Keep no ledger: usage is only logged.
    #[arg(long)]
    no_ledger: bool,
    /// Address of the admin listener (the deploy API, usage JSON,
    /// metrics); with one, `gust serve` is a node: apps deployed to it are
    /// restored on start [default: the manifest's `[admin] listen`, else
    /// none].
    #[arg(long)]
    admin: Option<SocketAddr>,
    /// The node's state directory (deployed apps, and by default the token
    /// file and audit log) [default: the manifest's `[admin] state_dir`,
    /// else `state` in gust's data directory].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Directory of the compiled-code cache [default: the manifest's
    /// `[cache] dir`, else ~/.cache/gust/compiled].
    #[arg(long, conflicts_with = "no_cache")]
    cache_dir: Option<PathBuf>,
    /// Compile every component on start, without the cache.
    #[arg(long)]
    no_cache: bool,
}

impl Overrides {
    fn apply(&self, spec: &mut Config) {
        self.apply_runtime(&mut spec.runtime);
    }

    fn apply_runtime(&self, runtime: &mut RuntimeSpec) {
        if let Some(listen) = self.listen {
            runtime.server.listen = listen;
        }
        if self.no_ledger {
            runtime.ledger.location = LedgerLocation::Disabled;
        } else if let Some(path) = &self.ledger {
            runtime.ledger.location = if path.as_os_str() == ":memory:" {
                LedgerLocation::Memory
            } else {
                LedgerLocation::File(path.clone())
            };
        }
        if self.admin.is_some() {
            runtime.admin.listen = self.admin;
        }
        if let Some(dir) = &self.state_dir {
            let admin = &mut runtime.admin;
            // The token file and audit log follow the state directory
            // unless they were set apart from it.
            if admin.tokens == admin.state_dir.join("tokens") {
                admin.tokens = dir.join("tokens");
            }
            if admin.audit_log == admin.state_dir.join("audit.log") {
                admin.audit_log = dir.join("audit.log");
            }
            admin.state_dir = dir.clone();
        }
        if self.no_cache {
            runtime.cache = CacheLocation::Disabled;
        } else if let Some(dir) = &self.cache_dir {
            runtime.cache = CacheLocation::Dir(dir.clone());
        }
    }
}

/// `serve --watch`: the manifest to reload, with the same overrides.
struct Watched {
    manifest: PathBuf,
    overrides: Overrides,
}

/// `gust build`: every function's build (or those named), output streamed.
fn build(manifest: &Path, only: &[String]) -> anyhow::Result<()> {
    let mut steps = gust_runtime::manifest::build_steps(manifest)?;
    if let Some(unknown) = only
        .iter()
        .find(|f| !steps.iter().any(|s| s.function.as_str() == f.as_str()))
    {
        anyhow::bail!(
            "{}: no function `{unknown}` with a [functions.{unknown}.build] table",
            manifest.display()
        );
    }
    if !only.is_empty() {
        steps.retain(|s| only.iter().any(|f| f == s.function.as_str()));
    }
    if steps.is_empty() {
        eprintln!("{}: no function has a build command", manifest.display());
        return Ok(());
    }
    let started = std::time::Instant::now();
    let built = gust_runtime::dev::build::run(&steps, gust_runtime::dev::build::Output::Stream)?;
    for b in &built {
        eprintln!(
            "built {:<20} {:>7.1}s  {:>9} bytes",
            b.function.as_str(),
            b.duration.as_secs_f64(),
            b.component_size
        );
    }
    eprintln!(
        "{} built in {:.1}s",
        built.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `gust new`: the project, and what to run next.
fn new(template: &str, name: &str, dir: &Path) -> anyhow::Result<()> {
    let project = gust_runtime::dev::new::create(template, name, dir)?;
    let shown = project.display();
    println!("created {shown} ({template})");
    println!("  cd {shown}");
    println!("  gust build");
    println!("  gust serve gust.toml");
    println!("  curl localhost:8080/hello/you");
    Ok(())
}

fn serve(
    mut spec: Served,
    engine: EngineConfig,
    grace: Duration,
    watched: Option<Watched>,
) -> anyhow::Result<()> {
    let runtime = gust_runtime::server::runtime_builder().build()?;
    raise_open_file_limit(spec.runtime.server.max_connections);
    // A node keeps every function's last log lines for its admin API.
    let logs = spec
        .runtime
        .admin
        .listen
        .map(|_| LogBook::new(spec.runtime.admin.log_lines));
    spec.runtime.capabilities.logs = logs.clone();
    let served = runtime.block_on(async move {
        let traces = gust_runtime::telemetry::traces::install(&spec.runtime.telemetry)?;
        let engine = GustEngine::new(&engine)?;
        let ledger = Ledger::open(&spec.runtime.ledger)?.map(Arc::new);
        let apps = Apps::new();
        let mut routes: Vec<String> = Vec::new();
        let mut app_id = None;
        match spec.app {
            Some(app) => {
                let mut app = App::load_with(&engine, app, &spec.runtime)?;
                if let Some(ledger) = &ledger {
                    app = app.on_invocation(ledger.sink())?;
                }
                routes = app
                    .router()
                    .routes()
                    .iter()
                    .map(|r| r.pattern().to_string())
                    .collect();
                app_id = Some(app.id().clone());
                // An empty registry has no host to conflict with.
                let _ = apps.insert(app);
            }
            None if spec.runtime.admin.listen.is_none() => anyhow::bail!(
                "a node serves deployed apps: it needs an admin listener ([admin] listen or --admin)"
            ),
            None => {}
        }
        // A node's metrics, for the versions `--watch` loads.
        let metrics = Arc::new(std::sync::OnceLock::new());
        let watcher = watched.zip(app_id).map(|(watched, app_id)| {
            let (path, loader) =
                reloader(watched, engine.clone(), ledger.clone(), metrics.clone(), logs.clone());
            tokio::spawn(gust_runtime::dev::watch::watch(
                path,
                apps.clone(),
                app_id,
                loader,
            ))
        });
        let served = match spec.runtime.admin.listen {
            None => {
                let server = Server::with_apps(apps, spec.runtime.server).shutdown_grace(grace);
                let listener = server.bind().await?;
                tracing::info!(routes = ?routes, "routes");
                tracing::info!("serving on http://{}", listener.local_addr()?);
                server.serve(listener, shutdown_signal()).await
            }
            Some(_) => {
                // A node: the deploy API on the admin listener, deployed
                // apps restored from the state directory before serving.
                let deployer = Deployer::new(engine.clone(), spec.runtime.clone(), apps)?;
                let options = NodeOptions {
                    ledger: ledger.clone(),
                    logs,
                    shutdown_grace: grace,
                };
                let node = Node::start(deployer, options).await?;
                let _ = metrics.set(node.metrics().clone());
                tracing::info!(routes = ?routes, "routes");
                tracing::info!("serving on http://{}", node.addr());
                shutdown_signal().await;
                node.shutdown().await
            }
        };
        if let Some(watcher) = watcher {
            watcher.abort();
        }
        if let Some(ledger) = ledger {
            // Commits every record: the server returns once every
            // invocation, finished or cancelled at the grace's end, has
            // handed in its record.
            tokio::task::spawn_blocking(move || ledger.close()).await?;
        }
        if let Some(traces) = traces {
            traces.shutdown().await;
        }
        served
    });
    // Nothing should be left running; whatever is must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    served
}

/// The manifest `serve --watch` watches, and how it loads a new version:
/// as at start, with the same overrides, engine, ledger, metrics and
/// (on a node) log book.
fn reloader(
    watched: Watched,
    engine: GustEngine,
    ledger: Option<Arc<Ledger>>,
    metrics: Arc<std::sync::OnceLock<Metrics>>,
    logs: Option<LogBook>,
) -> (PathBuf, gust_runtime::dev::watch::Loader) {
    let path = watched.manifest.clone();
    let loader = Box::new(move || {
        let mut spec = Manifest::load(&watched.manifest)?;
        watched.overrides.apply(&mut spec);
        spec.runtime.capabilities.logs = logs.clone();
        let mut app = App::load_with(&engine, spec.app, &spec.runtime)?;
        if let Some(ledger) = &ledger {
            app = app.on_invocation(ledger.sink())?;
        }
        if let Some(metrics) = metrics.get() {
            app = metrics.attach(app)?;
        }
        Ok(app)
    });
    (path, loader)
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
    let config = Manifest::load(path)?;
    App::check_capabilities(&config.app, &config.runtime)?;
    let spec = config.app;
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
    // What each function may reach (names and hosts only: config values
    // may hold secrets).
    for function in &spec.functions {
        let g = &function.grants;
        if g.is_empty() {
            continue;
        }
        let mut parts = Vec::new();
        for (what, names) in [
            ("stores", &g.key_value_stores),
            ("containers", &g.blob_containers),
            ("hosts", &g.allowed_outbound_hosts),
        ] {
            if !names.is_empty() {
                parts.push(format!("{what} {}", names.join(",")));
            }
        }
        for (what, table) in [("config", &g.config), ("env", &g.environment)] {
            if !table.is_empty() {
                let keys: Vec<&str> = table.keys().map(String::as_str).collect();
                parts.push(format!("{what} {}", keys.join(",")));
            }
        }
        println!("  {}: {}", function.id, parts.join("; "));
    }
    Ok(())
}
