//! Functions loaded on their first request, for apps with many functions.
//!
//! A resident function holds its deserialized component (the compiled code,
//! copied into memory of its own) and its pre-instantiation: about half a
//! megabyte for a Rust hello, so 10,000 functions would hold 5 GB though
//! most of them are idle. A lazy load checks everything an eager one does
//! before the app takes traffic (each component is compiled into the cache,
//! or found there, and linked and type-checked as a `wasi:http` handler)
//! but keeps nothing of it: the function's first request deserializes the
//! artifact from the cache and pre-instantiates it again (about a
//! millisecond for a hello), once however many requests arrive together,
//! and the function stays resident afterwards. Components already checked
//! are known from the load index (`index`), so a warm start reads no
//! component at all.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use tokio::sync::OnceCell;

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
        let ready = Ready::link(self.engine.linker(self.kind)?, &component, &self.function)?;
        let log = if outcome == CacheOutcome::Hit {
            tracing::Level::DEBUG
        } else {
            tracing::Level::INFO
        };
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        if log == tracing::Level::DEBUG {
            tracing::debug!(function = %self.function, ?outcome, elapsed_ms = ms, "loaded on first request");
        } else {
            tracing::info!(function = %self.function, ?outcome, elapsed_ms = ms, "loaded on first request (not from the cache)");
        }
        Ok(ready)
    }
}

/// A function's linked component: resident from the start, or loaded by
/// the first request that needs it. Functions with identical components
/// share one.
pub(crate) struct Lazy {
    ready: OnceCell<Arc<Ready>>,
    loader: Option<Arc<Loader>>,
}

impl Lazy {
    /// Already resident.
    pub(crate) fn resident(ready: Ready) -> Lazy {
        Lazy {
            ready: OnceCell::new_with(Some(Arc::new(ready))),
            loader: None,
        }
    }

    /// Loaded on first use from the cache artifact `key` (compiled from
    /// `source` if the artifact is gone).
    pub(crate) fn on_first_use(
        engine: &GustEngine,
        cache: Arc<CompileCache>,
        key: String,
        kind: Kind,
        source: ComponentSource,
        function: FunctionId,
    ) -> Lazy {
        Lazy {
            ready: OnceCell::new(),
            loader: Some(Arc::new(Loader {
                engine: engine.clone(),
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
        self.ready.initialized()
    }

    /// The linked component, loading it first if needed (once, however
    /// many callers wait; a failed load is tried again by the next one).
    /// The load runs on a blocking thread: it reads a file and
    /// deserializes.
    pub(crate) async fn get(&self) -> anyhow::Result<Arc<Ready>> {
        self.ready
            .get_or_try_init(|| async {
                let loader = self
                    .loader
                    .clone()
                    .context("a resident function without its component")?;
                let ready = match tokio::runtime::Handle::try_current() {
                    Ok(handle) => handle
                        .spawn_blocking(move || loader.load())
                        .await
                        .context("the loading task failed")??,
                    Err(_) => loader.load()?,
                };
                anyhow::Ok(Arc::new(ready))
            })
            .await
            .cloned()
    }
}
