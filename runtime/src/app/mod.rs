//! A loaded application: every function compiled and pre-instantiated, and
//! the route table that leads to them.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use wasmtime::component::Component;

use crate::cache::{CacheLocation, CompileCache};
use crate::call::Kind;
use crate::engine::GustEngine;
use crate::function::Function;
use crate::headers;
use crate::host::capability::AppCaps;
use crate::manifest::{AppSpec, FunctionId, HostPattern, RuntimeSpec};

mod registry;
use crate::metering::{InvocationRecord, RecordSink};
use crate::router::{Router, Segment};
use http::{HeaderName, HeaderValue};
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
    /// Components taken from the compile cache.
    pub cache_hits: u64,
    /// Components compiled.
    pub compiled: u64,
    /// Damaged cache files discarded and rebuilt.
    pub rebuilt: u64,
    /// Wall time of the whole load.
    pub elapsed: Duration,
}

/// One distinct component to compile: its bytes, which `wasi:http` it
/// exports (so which engine it is for) and the functions that use it.
struct Job {
    bytes: Cow<'static, [u8]>,
    kind: Kind,
    users: Vec<usize>,
}

/// The compile cache of each engine flavour, the p3 one made on first use.
struct Caches<'a> {
    engine: &'a GustEngine,
    location: &'a CacheLocation,
    p2: CompileCache,
    p3: Option<CompileCache>,
}

impl<'a> Caches<'a> {
    fn new(engine: &'a GustEngine, location: &'a CacheLocation) -> Self {
        Caches {
            engine,
            location,
            p2: CompileCache::new(engine.engine(), location),
            p3: None,
        }
    }

    fn get_or_make(&mut self, kind: Kind) -> anyhow::Result<&CompileCache> {
        Ok(match kind {
            Kind::P2 => &self.p2,
            Kind::P3 => match &mut self.p3 {
                Some(cache) => cache,
                slot => slot.insert(CompileCache::new(
                    self.engine.engine_for(Kind::P3)?,
                    self.location,
                )),
            },
        })
    }

    fn get(&self, kind: Kind) -> &CompileCache {
        match (kind, &self.p3) {
            (Kind::P3, Some(cache)) => cache,
            _ => &self.p2,
        }
    }

    /// Hits, compiles and rebuilds of both caches.
    fn totals(&self) -> (u64, u64, u64) {
        [Some(&self.p2), self.p3.as_ref()]
            .into_iter()
            .flatten()
            .map(|c| {
                let s = c.stats();
                (
                    s.hits.load(Ordering::Relaxed),
                    s.compiled.load(Ordering::Relaxed),
                    s.rebuilt.load(Ordering::Relaxed),
                )
            })
            .fold((0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2))
    }
}

/// Compiles (or loads from the cache) each job's component, spreading the
/// jobs over the available cores. Results are in job order.
fn compile_all(
    engine: &GustEngine,
    caches: &Caches<'_>,
    spec: &AppSpec,
    jobs: &[Job],
) -> anyhow::Result<Vec<Component>> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<anyhow::Result<Component>>>> =
        jobs.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(Job { bytes, kind, users }) = jobs.get(i) else {
                        break;
                    };
                    let id = &spec.functions[users[0]].id;
                    let started = Instant::now();
                    let result = engine
                        .engine_for(*kind)
                        .and_then(|wasmtime| caches.get(*kind).load(wasmtime, bytes))
                        .map(|(component, outcome)| {
                            tracing::info!(
                                function = %id,
                                wasi_http = kind.as_str(),
                                bytes = bytes.len(),
                                ?outcome,
                                ms = started.elapsed().as_millis() as u64,
                                "component ready"
                            );
                            component
                        })
                        .with_context(|| format!("compiling the component of `{id}`"));
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(result);
                    }
                }
            });
        }
    });
    results
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Err(anyhow::anyhow!("a compile worker panicked")))
        })
        .collect()
}

impl App {
    /// Compiles (or takes from the operator's compile cache `cache`) and
    /// pre-instantiates every function of `spec`. All the work that can
    /// happen before a request arrives happens here: components with
    /// identical bytes are compiled once, distinct ones in parallel on
    /// every core.
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
        let cache = &runtime.cache;
        let settings = &runtime.capabilities;
        App::check_capabilities(&spec, runtime)?;
        let mut caches = Caches::new(engine, cache);
        tracing::info!(
            functions = spec.functions.len(),
            cache = ?cache.dir(),
            "loading functions"
        );

        // Read every component, find which engine it is for, and group
        // functions by cache key.
        let mut unique: HashMap<String, Job> = HashMap::new();
        for (i, f) in spec.functions.iter().enumerate() {
            let bytes = f
                .source
                .read()
                .with_context(|| format!("reading the component of `{}`", f.id))?;
            let kind = Kind::detect(&bytes);
            let key = caches
                .get_or_make(kind)
                .with_context(|| format!("loading `{}`", f.id))?
                .key(&bytes);
            unique
                .entry(key)
                .or_insert_with(|| Job {
                    bytes,
                    kind,
                    users: Vec::new(),
                })
                .users
                .push(i);
        }
        let jobs: Vec<Job> = unique.into_values().collect();
        let compiled = compile_all(engine, &caches, &spec, &jobs)?;

        let mut components: Vec<Option<(Component, Kind)>> = vec![None; spec.functions.len()];
        for (job, component) in jobs.iter().zip(compiled) {
            for &i in &job.users {
                components[i] = Some((component.clone(), job.kind));
            }
        }
        let caps =
            Arc::new(AppCaps::open(&spec, settings).context("opening the app's capabilities")?);
        let functions = spec
            .functions
            .iter()
            .zip(components)
            .map(|(f, component)| {
                let (component, kind) = component.context("every function has a component")?;
                Function::new(
                    engine,
                    engine.linker(kind)?,
                    &spec.name,
                    caps.clone(),
                    f,
                    &component,
                )
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        for function in &functions {
            tracing::debug!(function = %function.id(), wasi_http = function.kind().as_str(), "function ready");
        }

        let (cache_hits, compiled, rebuilt) = caches.totals();
        let report = LoadReport {
            functions: functions.len(),
            components: jobs.len(),
            cache_hits,
            compiled,
            rebuilt,
            elapsed: started.elapsed(),
        };
        tracing::info!(
            functions = report.functions,
            components = report.components,
            cache_hits = report.cache_hits,
            compiled = report.compiled,
            rebuilt = report.rebuilt,
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
