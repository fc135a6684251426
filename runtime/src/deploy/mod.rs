//! Deploying apps into a running node: a bundle in, validated against the
//! node's operator settings, compiled (or taken from the compile cache),
//! pre-instantiated, then swapped in atomically ([`Apps::insert`]); kept
//! in the state directory for rollback and for the node's next start.
//!
//! One job per module: `bundle` (unpacking with limits), `state` (the kept
//! versions), `audit` (the audit log), `tokens` (who may do it). The HTTP
//! API over the [`Deployer`] is `crate::admin`.
//!
//! Changes to one app happen one at a time; changes to different apps run
//! side by side. A change that fails changes nothing: the app keeps
//! serving the version it had, and the state directory keeps pointing at
//! it.

pub mod audit;
pub mod bundle;
pub mod state;
pub mod tokens;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime};

use bytes::Bytes;

use crate::app::{App, Apps, HostConflict, LoadReport};
use crate::engine::GustEngine;
use crate::manifest::{FunctionId, Manifest, ManifestError, Problem, RuntimeSpec};
use bundle::{BundleError, BundleLimits};
use state::{AppRecord, RouteInfo, StateDir, VersionMeta};

/// What is run on every app the deployer loads (deployed, rolled back or
/// restored), before it takes traffic: attaches usage sinks, metrics, logs.
pub type LoadHook = Arc<dyn Fn(App) -> anyhow::Result<App> + Send + Sync>;

/// Deploys, rolls back, removes and restores the apps of one node. Cheap
/// to clone (every clone is the same deployer).
#[derive(Clone)]
pub struct Deployer {
    inner: Arc<Inner>,
}

struct Inner {
    engine: GustEngine,
    runtime: RuntimeSpec,
    apps: Apps,
    state: StateDir,
    limits: BundleLimits,
    hooks: RwLock<Vec<LoadHook>>,
    /// One lock per app: its changes run one at a time.
    locks: Mutex<HashMap<FunctionId, Arc<tokio::sync::Mutex<()>>>>,
    events: Mutex<BTreeMap<FunctionId, DeployEvents>>,
}

/// How many changes an app went through since the node started (for
/// metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeployEvents {
    /// Versions deployed.
    pub deploys: u64,
    /// Rollbacks done.
    pub rollbacks: u64,
    /// Deletions.
    pub deletes: u64,
    /// Deploys and rollbacks refused or failed (the app kept its version).
    pub failures: u64,
}

/// Why a change was not made. Nothing changed.
#[derive(Debug)]
pub enum DeployError {
    /// The bundle cannot be unpacked (400).
    Bundle(BundleError),
    /// The bundle's manifest is invalid: every problem (422).
    Manifest(ManifestError),
    /// The bundle is valid but its app does not load: a component that
    /// does not compile, a capability that cannot open (422).
    Load(String),
    /// Another app claims one of its hosts (409).
    Conflict(HostConflict),
    /// No such app (404).
    NotFound,
    /// A rollback with no previous version kept (409).
    NoPrevious,
    /// The node failed (500).
    Internal(String),
}

impl std::fmt::Display for DeployError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeployError::Bundle(e) => write!(f, "invalid bundle: {e}"),
            DeployError::Manifest(e) => e.fmt(f),
            DeployError::Load(e) => write!(f, "the app does not load: {e}"),
            DeployError::Conflict(e) => e.fmt(f),
            DeployError::NotFound => f.write_str("no such app"),
            DeployError::NoPrevious => f.write_str("no previous version is kept"),
            DeployError::Internal(e) => write!(f, "internal error: {e}"),
        }
    }
}

impl std::error::Error for DeployError {}

impl DeployError {
    fn internal(e: impl std::fmt::Display) -> DeployError {
        DeployError::Internal(e.to_string())
    }

    /// The HTTP status it is answered with.
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            DeployError::Bundle(BundleError::Io(_)) | DeployError::Internal(_) => {
                S::INTERNAL_SERVER_ERROR
            }
            DeployError::Bundle(BundleError::TooLarge(_)) => S::PAYLOAD_TOO_LARGE,
            DeployError::Bundle(_) => S::BAD_REQUEST,
            DeployError::Manifest(_) | DeployError::Load(_) => S::UNPROCESSABLE_ENTITY,
            DeployError::Conflict(_) | DeployError::NoPrevious => S::CONFLICT,
            DeployError::NotFound => S::NOT_FOUND,
        }
    }

    /// The JSON answer: `error` (a sentence) and, for an invalid manifest,
    /// `problems` (every one, `field` and `message`), for a conflict
    /// `host` and `claimed_by`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut json = serde_json::json!({ "error": self.to_string() });
        match self {
            DeployError::Manifest(e) => {
                json["error"] = "invalid manifest".into();
                json["problems"] = problems_json(&e.problems);
            }
            DeployError::Bundle(e) => {
                json["error"] = "invalid bundle".into();
                json["problems"] = serde_json::json!([{ "field": "", "message": e.to_string() }]);
            }
            DeployError::Conflict(c) => {
                json["host"] = c.host.as_str().into();
                json["claimed_by"] = c.claimed_by.as_str().into();
            }
            _ => {}
        }
        json
    }
}

fn problems_json(problems: &[Problem]) -> serde_json::Value {
    problems
        .iter()
        .map(|p| serde_json::json!({ "field": p.field, "message": p.message }))
        .collect()
}

/// A version that now serves.
#[derive(Debug, Clone)]
pub struct Deployed {
    /// The version's metadata.
    pub meta: VersionMeta,
    /// The version it replaced, if any (kept for rollback).
    pub previous: Option<u64>,
    /// What loading it did.
    pub load: LoadReport,
}

impl Deployed {
    /// The JSON answer of a deploy or rollback.
    pub fn to_json(&self, app: &FunctionId) -> serde_json::Value {
        serde_json::json!({
            "app": app.as_str(),
            "version": self.meta.version,
            "previous": self.previous,
            "functions": self.meta.functions,
            "routes": self.meta.routes,
            "hosts": self.meta.hosts,
            "deployed_at": self.meta.deployed_at,
            "deployed_by": self.meta.deployed_by,
            "sha256": self.meta.sha256,
            "load": load_json(&self.load),
        })
    }
}

/// A [`LoadReport`] as JSON.
pub fn load_json(report: &LoadReport) -> serde_json::Value {
    serde_json::json!({
        "functions": report.functions,
        "components": report.components,
        "cache_hits": report.cache_hits,
        "compiled": report.compiled,
        "rebuilt": report.rebuilt,
        "ms": report.elapsed.as_millis() as u64,
    })
}

/// An app's current version loaded from the state directory.
type Restored = Result<(u64, App), DeployError>;

/// What [`Deployer::restore`] did.
#[derive(Debug, Default)]
pub struct RestoreReport {
    /// Apps restored, with what loading each did.
    pub restored: Vec<(FunctionId, LoadReport)>,
    /// Apps that could not be restored, and why (they were skipped).
    pub failed: Vec<(FunctionId, String)>,
}

impl RestoreReport {
    /// Components compiled over every restored app (0 with a warm cache).
    pub fn compiled(&self) -> u64 {
        self.restored.iter().map(|(_, r)| r.compiled).sum()
    }

    /// Components taken from the cache over every restored app.
    pub fn cache_hits(&self) -> u64 {
        self.restored.iter().map(|(_, r)| r.cache_hits).sum()
    }
}

impl Deployer {
    /// A deployer of the apps of `apps` on `engine`, with the node's
    /// operator settings `runtime` (bundles are validated against them;
    /// `runtime.admin.state_dir` keeps the deployed versions).
    pub fn new(engine: GustEngine, runtime: RuntimeSpec, apps: Apps) -> anyhow::Result<Deployer> {
        let state = StateDir::open(&runtime.admin.state_dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot open the state directory {}: {e}",
                runtime.admin.state_dir.display()
            )
        })?;
        Ok(Deployer {
            inner: Arc::new(Inner {
                engine,
                runtime,
                apps,
                state,
                limits: BundleLimits::default(),
                hooks: RwLock::default(),
                locks: Mutex::default(),
                events: Mutex::default(),
            }),
        })
    }

    /// Runs `hook` on every app loaded from now on (deployed, rolled back,
    /// restored), in the order hooks were added, before it takes traffic;
    /// an error refuses the app (as a load failure).
    pub fn on_load(&self, hook: impl Fn(App) -> anyhow::Result<App> + Send + Sync + 'static) {
        self.inner
            .hooks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(hook));
    }

    /// The apps the node serves (deployed or not).
    pub fn apps(&self) -> Apps {
        self.inner.apps.clone()
    }

    /// The node's operator settings.
    pub fn runtime(&self) -> &RuntimeSpec {
        &self.inner.runtime
    }

    /// The bundle limits.
    pub fn limits(&self) -> &BundleLimits {
        &self.inner.limits
    }

    /// The engine apps are loaded on.
    pub fn engine(&self) -> &GustEngine {
        &self.inner.engine
    }

    /// Deploys, rollbacks, deletes and failures per app since start.
    pub fn events(&self) -> BTreeMap<FunctionId, DeployEvents> {
        self.inner
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn count(&self, app: &FunctionId, bump: impl FnOnce(&mut DeployEvents)) {
        let mut events = self.inner.events.lock().unwrap_or_else(|e| e.into_inner());
        bump(events.entry(app.clone()).or_default());
    }

    async fn lock(&self, app: &FunctionId) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .inner
            .locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(app.clone())
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    /// Deploys `bundle` (tar or tar.gz) as the new version of `app`,
    /// recorded as deployed by `by`. It serves once this returns `Ok`;
    /// requests in flight on the version it replaced finish there.
    pub async fn deploy(
        &self,
        app: &FunctionId,
        bundle: Bytes,
        by: &str,
    ) -> Result<Deployed, DeployError> {
        let _guard = self.lock(app).await;
        let this = self.clone();
        let (id, by) = (app.clone(), by.to_owned());
        let result = tokio::task::spawn_blocking(move || this.deploy_now(&id, &bundle, &by))
            .await
            .unwrap_or_else(|e| Err(DeployError::internal(e)));
        match &result {
            Ok(_) => self.count(app, |e| e.deploys += 1),
            Err(_) => self.count(app, |e| e.failures += 1),
        }
        result
    }

    fn deploy_now(
        &self,
        app: &FunctionId,
        bundle: &[u8],
        by: &str,
    ) -> Result<Deployed, DeployError> {
        let started = Instant::now();
        let state = &self.inner.state;
        let staging = state.staging(app).map_err(DeployError::internal)?;
        let unpacked = bundle::unpack(bundle, &staging.bundle_dir(), &self.inner.limits)
            .map_err(DeployError::Bundle)?;
        let loaded = self.load_dir(app, &staging.bundle_dir())?;
        self.inner
            .apps
            .check_hosts(&loaded)
            .map_err(DeployError::Conflict)?;
        let record = state.record(app).map_err(DeployError::internal)?;
        let version = record.map_or(1, |r| r.next);
        let meta = VersionMeta {
            version,
            deployed_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            deployed_by: by.to_owned(),
            sha256: bundle::sha256_hex(bundle),
            bundle_bytes: bundle.len() as u64,
            ..describe(&loaded)
        };
        staging.commit(app, &meta).map_err(DeployError::internal)?;
        let previous = record.map(|r| r.current);
        let next = AppRecord {
            current: version,
            previous,
            next: version + 1,
        };
        let load = loaded.load_report().clone();
        self.swap_in(app, loaded, &next, record)?;
        state.prune(
            app,
            &[Some(version), previous]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>(),
        );
        tracing::info!(
            app = %app,
            version,
            ?previous,
            by,
            files = unpacked.files,
            bytes = unpacked.bytes,
            compiled = load.compiled,
            cache_hits = load.cache_hits,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "app deployed"
        );
        Ok(Deployed {
            meta,
            previous,
            load,
        })
    }

    /// Inserts `loaded` and points the state at `next`; on failure, the
    /// registry and the state are as before (`before` is the old pointer).
    fn swap_in(
        &self,
        app: &FunctionId,
        loaded: App,
        next: &AppRecord,
        before: Option<AppRecord>,
    ) -> Result<(), DeployError> {
        let state = &self.inner.state;
        let old = self
            .inner
            .apps
            .insert(loaded)
            .map_err(DeployError::Conflict)?;
        if let Err(e) = state.write_record(app, next) {
            // Serve what the state says serves.
            match old {
                Some(old) => {
                    let _ = self.inner.apps.insert(old);
                }
                None => {
                    self.inner.apps.remove(app);
                }
            }
            if before.is_none() {
                let _ = state.remove(app);
            }
            return Err(DeployError::internal(format!("recording the version: {e}")));
        }
        Ok(())
    }

    /// Validates and loads the bundle unpacked in `dir` as `app`, and runs
    /// the hooks: ready to take traffic.
    fn load_dir(&self, app: &FunctionId, dir: &Path) -> Result<App, DeployError> {
        let origin = format!("gust.toml of the bundle for `{app}`");
        let text = match std::fs::read_to_string(dir.join("gust.toml")) {
            Ok(text) => text,
            Err(e) => {
                return Err(DeployError::Manifest(ManifestError {
                    origin,
                    problems: vec![Problem {
                        field: String::new(),
                        message: format!("the bundle has no readable gust.toml at its top: {e}"),
                    }],
                }));
            }
        };
        let mut problems = Vec::new();
        if let Ok(table) = text.parse::<toml::Table>() {
            problems.extend(escaping_components(&table));
            // The manifest's name must be the app it is deployed as, or
            // absent.
            if let Some(name) = table.get("name")
                && name.as_str() != Some(app.as_str())
            {
                problems.push(Problem {
                    field: "name".into(),
                    message: format!(
                        "{name} is not the app it is deployed as (`{app}`): remove it or make it match"
                    ),
                });
            }
        }
        let mut spec = match Manifest::validate_bundle(&text, dir, &origin, &self.inner.runtime) {
            Ok(spec) => Some(spec),
            Err(e) => {
                problems.extend(e.problems);
                None
            }
        };
        if let Some(spec) = &spec {
            for problem in outside_bundle(spec, dir) {
                if !problems.iter().any(|p| p.field == problem.field) {
                    problems.push(problem);
                }
            }
        }
        let spec = match spec.take() {
            Some(mut spec) if problems.is_empty() => {
                spec.name = app.clone();
                spec
            }
            _ => return Err(DeployError::Manifest(ManifestError { origin, problems })),
        };
        let mut loaded = App::load_with(&self.inner.engine, spec, &self.inner.runtime)
            .map_err(|e| DeployError::Load(format!("{e:#}")))?;
        let hooks = self
            .inner
            .hooks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for hook in hooks {
            loaded = hook(loaded).map_err(|e| DeployError::Load(format!("{e:#}")))?;
        }
        Ok(loaded)
    }

    /// Puts the previous kept version of `app` back in service; the version
    /// it replaces becomes the previous one (so a second rollback undoes
    /// the first).
    pub async fn rollback(&self, app: &FunctionId) -> Result<Deployed, DeployError> {
        let _guard = self.lock(app).await;
        let this = self.clone();
        let id = app.clone();
        let result = tokio::task::spawn_blocking(move || this.rollback_now(&id))
            .await
            .unwrap_or_else(|e| Err(DeployError::internal(e)));
        match &result {
            Ok(_) => self.count(app, |e| e.rollbacks += 1),
            Err(DeployError::NotFound) => {}
            Err(_) => self.count(app, |e| e.failures += 1),
        }
        result
    }

    fn rollback_now(&self, app: &FunctionId) -> Result<Deployed, DeployError> {
        let started = Instant::now();
        let state = &self.inner.state;
        let record = state
            .record(app)
            .map_err(DeployError::internal)?
            .ok_or(DeployError::NotFound)?;
        let target = record.previous.ok_or(DeployError::NoPrevious)?;
        let meta = state.meta(app, target).map_err(DeployError::internal)?;
        let loaded = self.load_dir(app, &state.bundle_dir(app, target))?;
        let load = loaded.load_report().clone();
        let next = AppRecord {
            current: target,
            previous: Some(record.current),
            next: record.next,
        };
        self.swap_in(app, loaded, &next, Some(record))?;
        tracing::info!(
            app = %app,
            version = target,
            from = record.current,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "app rolled back"
        );
        Ok(Deployed {
            meta,
            previous: Some(record.current),
            load,
        })
    }

    /// Stops serving `app` and forgets every version of it. Requests in
    /// flight on it finish.
    pub async fn delete(&self, app: &FunctionId) -> Result<(), DeployError> {
        let _guard = self.lock(app).await;
        let state = self.inner.state.clone();
        let record = state.record(app).map_err(DeployError::internal)?;
        let removed = self.inner.apps.remove(app);
        if removed.is_none() && record.is_none() {
            return Err(DeployError::NotFound);
        }
        let id = app.clone();
        tokio::task::spawn_blocking(move || state.remove(&id))
            .await
            .map_err(DeployError::internal)?
            .map_err(DeployError::internal)?;
        // Dropped off the runtime's threads: the last request on it may
        // still hold it, else its instances are released here.
        drop(removed);
        self.count(app, |e| e.deletes += 1);
        tracing::info!(app = %app, "app deleted");
        Ok(())
    }

    /// Loads every app of the state directory (its current version) into
    /// the registry. An app that fails to load, or whose hosts another app
    /// already claims, is logged and skipped.
    pub async fn restore(&self) -> RestoreReport {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.restore_now())
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "restoring panicked");
                RestoreReport::default()
            })
    }

    fn restore_now(&self) -> RestoreReport {
        let started = Instant::now();
        let state = &self.inner.state;
        let mut report = RestoreReport::default();
        let ids = match state.apps() {
            Ok(ids) => ids,
            Err(e) => {
                tracing::error!(error = %e, "cannot list the state directory: no app restored");
                return report;
            }
        };
        // Apps load side by side (each also compiles its own components
        // in parallel); they are inserted afterwards in id order, so which
        // of two apps claiming one host wins does not depend on timing.
        let loaded = self.load_all(&ids);
        for (app, loaded) in ids.into_iter().zip(loaded) {
            let restored = loaded.and_then(|(version, loaded)| {
                let load = loaded.load_report().clone();
                self.inner
                    .apps
                    .insert(loaded)
                    .map_err(DeployError::Conflict)?;
                Ok((version, load))
            });
            match restored {
                Ok((version, load)) => {
                    tracing::info!(
                        app = %app,
                        version,
                        cache_hits = load.cache_hits,
                        compiled = load.compiled,
                        elapsed_ms = load.elapsed.as_millis() as u64,
                        "app restored"
                    );
                    report.restored.push((app, load));
                }
                Err(e) => {
                    tracing::error!(app = %app, error = %e, "app not restored: skipped");
                    report.failed.push((app, e.to_string()));
                }
            }
        }
        tracing::info!(
            restored = report.restored.len(),
            failed = report.failed.len(),
            cache_hits = report.cache_hits(),
            compiled = report.compiled(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "apps restored from the state directory"
        );
        report
    }

    /// The current version of each of `ids`, loaded on every core; in the
    /// order of `ids`.
    fn load_all(&self, ids: &[FunctionId]) -> Vec<Restored> {
        let state = &self.inner.state;
        let load = |app: &FunctionId| {
            let record = state
                .record(app)
                .map_err(DeployError::internal)?
                .ok_or(DeployError::NotFound)?;
            let loaded = self.load_dir(app, &state.bundle_dir(app, record.current))?;
            Ok((record.current, loaded))
        };
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(ids.len());
        if workers <= 1 {
            return ids.iter().map(load).collect();
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let slots: Vec<Mutex<Option<Restored>>> = ids.iter().map(|_| Mutex::new(None)).collect();
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(app) = ids.get(i) else { break };
                        let result = load(app);
                        *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                    }
                });
            }
        });
        slots
            .into_iter()
            .map(|slot| {
                slot.into_inner()
                    .unwrap_or_else(|e| e.into_inner())
                    .unwrap_or_else(|| Err(DeployError::internal("a restore worker panicked")))
            })
            .collect()
    }

    /// The apps kept in the state directory (serving or not).
    pub fn deployed(&self) -> Vec<FunctionId> {
        self.inner.state.apps().unwrap_or_default()
    }

    /// The kept state of `app`: its pointer and each kept version's
    /// metadata, newest first; `None` if it was never deployed.
    pub fn kept(&self, app: &FunctionId) -> Option<(AppRecord, Vec<VersionMeta>)> {
        let state = &self.inner.state;
        let record = state.record(app).ok().flatten()?;
        let versions = [Some(record.current), record.previous]
            .into_iter()
            .flatten()
            .filter_map(|v| state.meta(app, v).ok())
            .collect::<Vec<_>>();
        let mut versions = versions;
        versions.sort_by_key(|v| std::cmp::Reverse(v.version));
        Some((record, versions))
    }
}

/// What a loaded app serves, as recorded in a version's metadata (the
/// deploy's own fields left empty).
pub fn describe(app: &App) -> VersionMeta {
    let functions = app.functions();
    VersionMeta {
        version: 0,
        deployed_at: String::new(),
        deployed_by: String::new(),
        sha256: String::new(),
        bundle_bytes: 0,
        functions: functions.iter().map(|f| f.id().to_string()).collect(),
        routes: app
            .router()
            .routes()
            .iter()
            .map(|r| RouteInfo {
                path: r.pattern().to_string(),
                methods: r
                    .methods()
                    .map(|ms| ms.iter().map(|m| m.to_string()).collect())
                    .unwrap_or_default(),
                function: functions
                    .get(r.target().function)
                    .map(|f| f.id().to_string())
                    .unwrap_or_default(),
            })
            .collect(),
        hosts: app.hosts().iter().map(|h| h.as_str().to_owned()).collect(),
    }
}

/// Component paths written absolute or with `..`: refused (whether or
/// not the file exists, which is not the tenant's to learn), so a tenant
/// serves only what it uploaded.
fn escaping_components(table: &toml::Table) -> Vec<Problem> {
    let Some(functions) = table.get("functions").and_then(|f| f.as_table()) else {
        return Vec::new();
    };
    functions
        .iter()
        .filter_map(|(id, function)| {
            let path = Path::new(function.get("component")?.as_str()?);
            let escapes = path.components().any(|c| {
                matches!(
                    c,
                    std::path::Component::ParentDir
                        | std::path::Component::RootDir
                        | std::path::Component::Prefix(_)
                )
            });
            escapes.then(|| Problem {
                field: format!("functions.{id}.component"),
                message: "must be a path inside the bundle (not absolute, no `..`)".into(),
            })
        })
        .collect()
}

/// Components that resolve outside the bundle after validation: refused.
fn outside_bundle(spec: &crate::manifest::AppSpec, dir: &Path) -> Vec<Problem> {
    let Ok(root) = dir.canonicalize() else {
        return Vec::new();
    };
    spec.functions
        .iter()
        .filter_map(|f| match &f.source {
            crate::manifest::ComponentSource::File(path) => {
                let inside = path.canonicalize().is_ok_and(|p| p.starts_with(&root));
                (!inside).then(|| Problem {
                    field: format!("functions.{}.component", f.id),
                    message: "must be a file inside the bundle".into(),
                })
            }
            crate::manifest::ComponentSource::Embedded(_) => None,
        })
        .collect()
}
