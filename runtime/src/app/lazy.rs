//! Functions loaded on their first request, for apps with many functions.
//!
//! A resident function holds its deserialized component (the compiled code,
//! copied into memory of its own) and its pre-instantiation: about 0.65 MB
//! for a Rust hello, so 10,000 functions held 6.4 GiB though most of them
//! were idle. A lazy load checks everything an eager one does
//! before the app takes traffic (each component is compiled into the cache,
//! or found there, and linked and type-checked as a `wasi:http` handler)
//! but keeps nothing of it: the function's first request deserializes the
//! artifact from the cache and pre-instantiates it again (about 1.5 ms for
//! a hello), once however many requests arrive together, and the function
//! stays resident until it is among the least recently used past the
//! engine's `max_resident_functions` ([`Residency`]). Components already checked
//! are known from the load index (`index`), so a warm start reads no
//! component at all.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use anyhow::Context as _;

use crate::cache::{CacheOutcome, CompileCache};
use crate::call::Kind;
use crate::engine::GustEngine;
use crate::function::Ready;
use crate::manifest::{ComponentSource, FunctionId};

/// When an app's functions are compiled, linked and made resident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMode {
    /// Every function resident before the app serves: no request waits
    /// for a load, and memory grows with the number of functions.
    Eager,
    /// Every function compiled (into the cache) and checked before the app
    /// serves, each made resident by its first request.
    Lazy,
    /// Eager for apps of at most `eager_up_to` functions, lazy above.
    Auto {
        /// The largest app loaded eagerly.
        eager_up_to: usize,
    },
}

impl LoadMode {
    /// Whether an app of `functions` functions loads lazily.
    pub fn is_lazy(self, functions: usize) -> bool {
        match self {
            LoadMode::Eager => false,
            LoadMode::Lazy => true,
            LoadMode::Auto { eager_up_to } => functions > eager_up_to,
        }
    }
}

/// Where a lazy function's component comes from on its first request.
struct Loader {
    engine: GustEngine,
    residency: Arc<Residency>,
    cache: Arc<CompileCache>,
    key: String,
    kind: Kind,
    source: ComponentSource,
    /// The first function using it, for logs and errors.
    function: FunctionId,
}

impl Loader {
    fn load(&self) -> anyhow::Result<Ready> {
        let started = Instant::now();
        let engine = self.engine.engine_for(self.kind)?;
        let (component, outcome) = self
            .cache
            .load_keyed(engine, &self.key, || {
                self.source.read().context("reading the component")
            })
            .with_context(|| format!("loading the component of `{}`", self.function))?;
        let cached = started.elapsed();
        let ready = Ready::link(self.engine.linker(self.kind)?, &component, &self.function)?;
        let log = if outcome == CacheOutcome::Hit {
            tracing::Level::DEBUG
        } else {
            tracing::Level::INFO
        };
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        if log == tracing::Level::DEBUG {
            tracing::debug!(function = %self.function, ?outcome, elapsed_ms = ms, cache_ms = cached.as_secs_f64() * 1000.0, "loaded on first request");
        } else {
            tracing::info!(function = %self.function, ?outcome, elapsed_ms = ms, "loaded on first request (not from the cache)");
        }
        Ok(ready)
    }
}

/// The lazily loaded components resident on an engine, at most `max`:
/// loading one more drops the least recently used (the CLOCK
/// approximation: a component used since the hand last passed it gets a
/// second chance). A request already running on a dropped component
/// finishes on it; the next one loads it again. Eagerly loaded components
/// are not counted: they stay resident.
pub(crate) struct Residency {
    max: usize,
    queue: std::sync::Mutex<std::collections::VecDeque<std::sync::Weak<Lazy>>>,
}

impl Residency {
    /// At most `max` (at least one) lazily loaded components resident.
    pub(crate) fn new(max: usize) -> Residency {
        Residency {
            max: max.max(1),
            queue: std::sync::Mutex::new(std::collections::VecDeque::new()),
        }
    }

    /// Counts `lazy`, just loaded, and drops others past the limit.
    fn admit(&self, lazy: &Arc<Lazy>) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        queue.push_back(Arc::downgrade(lazy));
        if queue.len() <= self.max {
            return;
        }
        // Components of apps since dropped or replaced.
        queue.retain(|weak| weak.strong_count() > 0);
        while queue.len() > self.max {
            let Some(weak) = queue.pop_front() else { break };
            let Some(victim) = weak.upgrade() else {
                continue;
            };
            if victim.used.swap(false, Ordering::Relaxed) {
                queue.push_back(weak);
                continue;
            }
            let dropped = victim
                .ready
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let (Some(_), Some(loader)) = (dropped, &victim.loader) {
                tracing::debug!(function = %loader.function, "unloaded: least recently used");
            }
        }
    }
}

/// A function's linked component: resident from the start, or loaded by
/// the first request that needs it (and again after it was unloaded, see
/// [`Residency`]). Functions with identical components share one.
pub(crate) struct Lazy {
    ready: RwLock<Option<Arc<Ready>>>,
    /// Held while loading, so concurrent requests load once.
    loading: tokio::sync::Mutex<()>,
    /// Used since the eviction hand last passed.
    used: AtomicBool,
    loader: Option<Arc<Loader>>,
}

impl Lazy {
    /// Already resident, for good.
    pub(crate) fn resident(ready: Ready) -> Lazy {
        Lazy {
            ready: RwLock::new(Some(Arc::new(ready))),
            loading: tokio::sync::Mutex::new(()),
            used: AtomicBool::new(true),
            loader: None,
        }
    }

    /// Loaded on first use from the cache artifact `key` (compiled from
    /// `source` if the artifact is gone), counted in `residency`.
    pub(crate) fn on_first_use(
        engine: &GustEngine,
        cache: Arc<CompileCache>,
        key: String,
        kind: Kind,
        source: ComponentSource,
        function: FunctionId,
    ) -> Lazy {
        Lazy {
            ready: RwLock::new(None),
            loading: tokio::sync::Mutex::new(()),
            used: AtomicBool::new(false),
            loader: Some(Arc::new(Loader {
                engine: engine.clone(),
                residency: engine.residency().clone(),
                cache,
                key,
                kind,
                source,
                function,
            })),
        }
    }

    /// Whether the component is resident.
    pub(crate) fn is_resident(&self) -> bool {
        self.current().is_some()
    }

    fn current(&self) -> Option<Arc<Ready>> {
        self.ready.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The linked component, loading it first if needed (once, however
    /// many callers wait; a failed load is tried again by the next one).
    /// The load runs on a blocking thread: it reads a file and
    /// deserializes.
    pub(crate) async fn get(self: &Arc<Self>) -> anyhow::Result<Arc<Ready>> {
        if let Some(ready) = self.current() {
            self.used.store(true, Ordering::Relaxed);
            return Ok(ready);
        }
        let loader = self
            .loader
            .clone()
            .context("a resident function without its component")?;
        let _loading = self.loading.lock().await;
        if let Some(ready) = self.current() {
            return Ok(ready);
        }
        let residency = loader.residency.clone();
        let ready = match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle
                .spawn_blocking(move || loader.load())
                .await
                .context("the loading task failed")??,
            Err(_) => loader.load()?,
        };
        let ready = Arc::new(ready);
        *self.ready.write().unwrap_or_else(|e| e.into_inner()) = Some(ready.clone());
        self.used.store(true, Ordering::Relaxed);
        residency.admit(self);
        Ok(ready)
    }
}
