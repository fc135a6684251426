//! A node: the public server and the admin listener with the deploy API
//! over one registry of apps, the apps of the state directory restored
//! before the first request is accepted. What `gust serve` runs when an
//! admin listener is configured, and what an embedder or a test starts:
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use gust_runtime::deploy::Deployer;
//! use gust_runtime::node::{Node, NodeOptions};
//! use gust_runtime::{Apps, EngineConfig, GustEngine, RuntimeSpec};
//!
//! let engine = GustEngine::new(&EngineConfig::default())?;
//! let mut runtime = RuntimeSpec::default();
//! runtime.server.listen = "127.0.0.1:0".parse()?;
//! runtime.admin = gust_runtime::manifest::AdminSettings::in_dir("state".into());
//! runtime.admin.listen = Some("127.0.0.1:0".parse()?);
//! let deployer = Deployer::new(engine, runtime, Apps::new())?;
//! let node = Node::start(deployer, NodeOptions::default()).await?;
//! println!("public {} admin {}", node.addr(), node.admin_addr());
//! node.shutdown().await
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::admin::Admin;
use crate::deploy::{Deployer, RestoreReport};
use crate::ledger::Ledger;
use crate::logs::LogBook;
use crate::server::{DEFAULT_SHUTDOWN_GRACE, Server};
use crate::telemetry::metrics::{DeployCounts, Metrics, Sources};

/// What a node is started with besides its deployer.
#[derive(Clone)]
pub struct NodeOptions {
    /// Usage records of every deployed app go here; the admin API's usage
    /// reads them.
    pub ledger: Option<Arc<Ledger>>,
    /// Where `GET /v1/apps/{app}/logs` reads from [default: the runtime's
    /// `capabilities.logs`, which the apps write to].
    pub logs: Option<LogBook>,
    /// How long shutdown waits for in-flight requests. Default:
    /// [`DEFAULT_SHUTDOWN_GRACE`].
    pub shutdown_grace: Duration,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            ledger: None,
            logs: None,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }
}

/// A running node. Shut down gracefully with [`Node::shutdown`]; dropped,
/// it stops accepting and drains in the background.
pub struct Node {
    addr: SocketAddr,
    admin_addr: SocketAddr,
    deployer: Deployer,
    restored: RestoreReport,
    metrics: Metrics,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Node {
    /// Restores every app of the state directory, then listens on the
    /// node's `server.listen` (public) and `admin.listen` (the admin API,
    /// required) and serves until [`Node::shutdown`]. The ledger of
    /// `options`, if any, gets every app the deployer loads.
    pub async fn start(deployer: Deployer, options: NodeOptions) -> anyhow::Result<Node> {
        let runtime = deployer.runtime().clone();
        let admin_listen = runtime.admin.listen.ok_or_else(|| {
            anyhow::anyhow!("a node needs an admin listener ([admin] listen or --admin)")
        })?;
        if let Some(ledger) = &options.ledger {
            let ledger = ledger.clone();
            deployer.on_load(move |app| app.on_invocation(ledger.sink()));
        }
        let metrics = node_metrics(&deployer, options.ledger.clone())?;
        let restored = deployer.restore().await;
        let server = Server::with_apps(deployer.apps(), runtime.server)
            .shutdown_grace(options.shutdown_grace);
        let listener = server.bind().await?;
        let admin_listener = TcpListener::bind(admin_listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {admin_listen} (admin): {e}"))?;
        let addr = listener.local_addr()?;
        let admin_addr = admin_listener.local_addr()?;
        let mut admin = Admin::new(options.ledger.clone())
            .with_deployer(deployer.clone())?
            .with_metrics(metrics.clone());
        if let Some(logs) = options.logs.or_else(|| runtime.capabilities.logs.clone()) {
            admin = admin.with_logs(logs);
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let (stop_admin, admin_stopped) = oneshot::channel::<()>();
        tokio::spawn(admin.serve(admin_listener, async {
            let _ = admin_stopped.await;
        }));
        let task = tokio::spawn(async move {
            let served = server
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await;
            let _ = stop_admin.send(());
            served
        });
        tracing::info!(apps = deployer.apps().len(), "admin on http://{admin_addr}");
        Ok(Node {
            addr,
            admin_addr,
            deployer,
            restored,
            metrics,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The public address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin listener's address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// The node's deployer (its apps: [`Deployer::apps`]).
    pub fn deployer(&self) -> &Deployer {
        &self.deployer
    }

    /// The node's metrics (`GET /metrics` on the admin listener); attach
    /// apps loaded outside the deployer to them.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// What restoring the state directory did at start.
    pub fn restored(&self) -> &RestoreReport {
        &self.restored
    }

    /// Stops accepting, finishes in-flight requests (up to the grace) and
    /// returns when the server is done.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await?,
            None => Ok(()),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The metrics of every app of `deployer`: those in its registry already
/// (loaded outside it) now, those it loads through a load hook; with the
/// engine's pool, the ledger and the deployer's counts.
fn node_metrics(deployer: &Deployer, ledger: Option<Arc<Ledger>>) -> anyhow::Result<Metrics> {
    let events = deployer.clone();
    let metrics = Metrics::new(Sources {
        apps: deployer.apps(),
        engine: Some(deployer.engine().clone()),
        ledger,
        deploys: Some(Arc::new(move || {
            (events.events().into_iter())
                .map(|(app, e)| {
                    let counts = DeployCounts {
                        deploys: e.deploys,
                        failures: e.failures,
                        rollbacks: e.rollbacks,
                    };
                    (app, counts)
                })
                .collect()
        })),
    });
    let apps = deployer.apps();
    for app in apps.ids().iter().filter_map(|id| apps.get(id)) {
        metrics.attach(app)?;
    }
    deployer.on_load(metrics.load_hook());
    Ok(metrics)
}
