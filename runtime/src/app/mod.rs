//! A loaded application: every function compiled, checked and (eagerly or
//! on its first request, see `lazy`) pre-instantiated, and the route table
//! that leads to them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::cache::CacheLocation;
use crate::call::Kind;
use crate::engine::GustEngine;
use crate::function::Function;
use crate::headers;
use crate::host::capability::AppCaps;
use crate::manifest::{AppSpec, FunctionId, HostPattern, RuntimeSpec};

mod index;
pub(crate) mod lazy;
mod load;
mod registry;
use crate::metering::{InvocationRecord, RecordSink};
use crate::router::{Router, Segment};
use http::{HeaderName, HeaderValue};
pub use lazy::LoadMode;
use load::Caches;
pub use registry::{Apps, HostConflict};

/// An [`App`] that may have been dropped: once every request on a
/// replaced version is done, its instances and memory are released and
/// this no longer upgrades.
#[derive(Clone)]
pub struct WeakApp(std::sync::Weak<Inner>);

impl WeakApp {
    /// The app, unless it was dropped.
    pub fn upgrade(&self) -> Option<App> {
        self.0.upgrade().map(|inner| App { inner })
    }
}

/// Functions ready to serve, plus their routes. Cheap to clone.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    id: FunctionId,
    hosts: Vec<HostPattern>,
    functions: Vec<Function>,
    router: Router<RouteTarget>,
    /// Replaced whole when a sink is added, so a request takes a snapshot
    /// with one read lock and no copy.
    sinks: std::sync::RwLock<Arc<[RecordSink]>>,
    report: LoadReport,
}

/// What a route leads to, with the request headers it sets (the matched
/// pattern, one name per parameter) prepared at load time rather than per
/// request.
#[derive(Debug, Clone)]
pub struct RouteTarget {
    /// Index into [`App::functions`].
    pub function: usize,
    pub(crate) route_value: HeaderValue,
    /// `x-gust-param-NAME` for each parameter, in pattern order (the order
    /// of a match's parameters).
    pub(crate) param_names: Vec<HeaderName>,
}

fn route_targets(router: &Router<usize>) -> anyhow::Result<Router<RouteTarget>> {
    let mut targets = Router::new();
    for route in router.routes() {
        let pattern = route.pattern();
        let route_value = HeaderValue::from_bytes(pattern.as_str().as_bytes())
            .with_context(|| format!("route `{pattern}` cannot be sent as a header"))?;
        let param_names = pattern
            .segments()
            .iter()
            .filter_map(|s| match s {
                Segment::Param(name) | Segment::Wildcard(name) => Some(name),
                Segment::Literal(_) => None,
            })
            .map(|name| HeaderName::try_from(format!("{}{name}", headers::PARAM_PREFIX)))
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| {
                format!("route `{pattern}` has a parameter name unfit for a header")
            })?;
        let target = RouteTarget {
            function: *route.target(),
            route_value,
            param_names,
        };
        targets.add(pattern.clone(), route.methods().map(<[_]>::to_vec), target)?;
    }
    Ok(targets)
}

/// What [`App::load`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Functions loaded.
    pub functions: usize,
    /// Distinct components among them.
    pub components: usize,
    /// Components taken from the compile cache (for a lazy load: found
    /// there, compiled and checked before, and not loaded).
    pub cache_hits: u64,
    /// Components compiled.
    pub compiled: u64,
    /// Damaged cache files discarded and rebuilt.
    pub rebuilt: u64,
    /// Functions resident (pre-instantiated) after the load: all of them
    /// for an eager load, none for a lazy one (see [`LoadMode`]).
    pub resident: usize,
    /// Wall time of the whole load.
    pub elapsed: Duration,
}

impl App {
    /// Compiles (or takes from the operator's compile cache `cache`),
    /// links and type-checks every function of `spec`, and pre-instantiates
    /// them now or on each one's first request, as the engine's
    /// [`LoadMode`] says for an app of this size. Either way every check
    /// happens before the app serves: components with identical bytes are
    /// compiled once, distinct ones in parallel on every core; a lazy load
    /// keeps none of them in memory and skips the files the load index
    /// knows were checked before.
    ///
    /// Capabilities get the operator's default settings (embedded stores
    /// and containers under gust's data directory, no secrets); see
    /// [`App::load_with`].
    pub fn load(engine: &GustEngine, spec: AppSpec, cache: &CacheLocation) -> anyhow::Result<App> {
        let runtime = RuntimeSpec {
            cache: cache.clone(),
            ..RuntimeSpec::default()
        };
        App::load_with(engine, spec, &runtime)
    }

    /// [`App::load`] with the operator's settings: the compile cache and
    /// the capabilities' backends, limits and secrets.
    pub fn load_with(
        engine: &GustEngine,
        spec: AppSpec,
        runtime: &RuntimeSpec,
    ) -> anyhow::Result<App> {
        let started = Instant::now();
        let settings = &runtime.capabilities;
        App::check_capabilities(&spec, runtime)?;
        let caches = Caches::new(engine, &runtime.cache);
        let lazy = engine.load_mode().is_lazy(spec.functions.len());
        tracing::info!(
            functions = spec.functions.len(),
            cache = ?runtime.cache.dir(),
            lazy,
            "loading functions"
        );
        let components = if lazy {
            load::lazy(engine, &caches, &spec)?
        } else {
            load::eager(engine, &caches, &spec)?
        };
        let caps =
            Arc::new(AppCaps::open(&spec, settings).context("opening the app's capabilities")?);
        let functions: Vec<Function> = spec
            .functions
            .iter()
            .zip(components.per_function)
            .map(|(f, (kind, component))| {
                Function::new(engine, &spec.name, caps.clone(), f, kind, component)
            })
            .collect();
        // Only after every function linked: the index vouches for that.
        caches.index.save();

        let (cache_hits, compiled, rebuilt) = caches.totals();
        let report = LoadReport {
            functions: functions.len(),
            components: components.distinct,
            cache_hits: cache_hits + components.indexed,
            compiled,
            rebuilt,
            resident: functions.iter().filter(|f| f.is_resident()).count(),
            elapsed: started.elapsed(),
        };
        tracing::info!(
            functions = report.functions,
            components = report.components,
            cache_hits = report.cache_hits,
            compiled = report.compiled,
            rebuilt = report.rebuilt,
            resident = report.resident,
            routes = spec.router.routes().len(),
            p3 = functions.iter().filter(|f| f.kind() == Kind::P3).count(),
            pooling = engine.is_pooling(),
            elapsed_ms = report.elapsed.as_millis() as u64,
            "app loaded"
        );
        let app = App {
            inner: Arc::new(Inner {
                id: spec.name.clone(),
                hosts: spec.hosts.clone(),
                functions,
                router: route_targets(&spec.router)?,
                sinks: std::sync::RwLock::new(Arc::new([])),
                report,
            }),
        };
        // In-process composition calls the app's own functions.
        caps.outbound_http.bind(app.downgrade());
        Ok(app)
    }

    /// Checks what loading would check of the capabilities, without
    /// compiling anything: each capability's configuration (allow-lists,
    /// backends) and that every secret the app references resolves. Errors
    /// name fields and secrets, never a secret's value.
    pub fn check_capabilities(spec: &AppSpec, runtime: &RuntimeSpec) -> anyhow::Result<()> {
        let problems = crate::host::capability::validate(spec, &runtime.capabilities);
        if !problems.is_empty() {
            let list: Vec<String> = problems
                .iter()
                .map(|(field, problem)| format!("  - {field}: {problem}"))
                .collect();
            anyhow::bail!("invalid capability configuration:\n{}", list.join("\n"));
        }
        crate::host::capability::config::check_secrets(spec, &runtime.capabilities)
    }

    /// A handle that does not keep the app alive (capabilities hold one:
    /// the app holds them).
    pub fn downgrade(&self) -> WeakApp {
        WeakApp(Arc::downgrade(&self.inner))
    }

    /// The app's id (the manifest's `name`), recorded with every
    /// invocation and the key of [`Apps`].
    pub fn id(&self) -> &FunctionId {
        &self.inner.id
    }

    /// The hosts the app answers (never empty; `*` when its manifest
    /// lists none).
    pub fn hosts(&self) -> &[HostPattern] {
        &self.inner.hosts
    }

    /// What loading did: how many components were compiled or came from
    /// the cache, and how long it took.
    pub fn load_report(&self) -> &LoadReport {
        &self.inner.report
    }

    /// Sends every invocation's usage record to `sink` (billing, metrics,
    /// tests), in addition to the log line; may be called several times,
    /// also while the app is serving (invocations that start afterwards
    /// use it). Every clone of the app shares its sinks.
    pub fn on_invocation(
        self,
        sink: impl Fn(&InvocationRecord) + Send + Sync + 'static,
    ) -> anyhow::Result<App> {
        {
            let mut sinks = self.inner.sinks.write().unwrap_or_else(|e| e.into_inner());
            let mut more = sinks.to_vec();
            more.push(Arc::new(sink));
            *sinks = more.into();
        }
        Ok(self)
    }

    /// The functions, in the spec's order (route targets index into it).
    pub fn functions(&self) -> &[Function] {
        &self.inner.functions
    }

    /// The route table.
    pub fn router(&self) -> &Router<RouteTarget> {
        &self.inner.router
    }

    pub(crate) fn sinks(&self) -> Arc<[RecordSink]> {
        self.inner
            .sinks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
