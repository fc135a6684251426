//! A loaded application: every function compiled and pre-instantiated, and
//! the route table that leads to them.

use std::sync::Arc;
use std::time::Instant;

use crate::engine::GustEngine;
use crate::function::Function;
use crate::manifest::{AppSpec, ServerSettings};
use crate::metering::{InvocationRecord, RecordSink};
use crate::router::Router;

/// Functions ready to serve, plus their routes. Cheap to clone.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    functions: Vec<Function>,
    router: Router<usize>,
    settings: ServerSettings,
    sinks: Arc<[RecordSink]>,
}

impl App {
    /// Compiles and pre-instantiates every function of `spec`. All the
    /// work that can happen before a request arrives happens here.
    pub fn load(engine: &GustEngine, spec: AppSpec) -> anyhow::Result<App> {
        let started = Instant::now();
        let linker = crate::host::linker(engine.engine())?;
        tracing::info!(functions = spec.functions.len(), "loading functions");
        let functions = spec
            .functions
            .iter()
            .map(|f| Function::load(engine, &linker, &spec.name, f))
            .collect::<anyhow::Result<Vec<_>>>()?;
        tracing::info!(
            functions = functions.len(),
            routes = spec.router.routes().len(),
            pooling = engine.is_pooling(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "app loaded"
        );
        Ok(App {
            inner: Arc::new(Inner {
                functions,
                router: spec.router,
                settings: spec.server,
                sinks: Arc::new([]),
            }),
        })
    }

    /// Sends every invocation's usage record to `sink` (billing, metrics,
    /// tests), in addition to the log line; may be called several times.
    /// Call before serving.
    pub fn on_invocation(
        self,
        sink: impl Fn(&InvocationRecord) + Send + Sync + 'static,
    ) -> anyhow::Result<App> {
        let mut inner = Arc::try_unwrap(self.inner).map_err(|_| {
            anyhow::anyhow!("on_invocation must be called before the app is shared")
        })?;
        let mut sinks = inner.sinks.to_vec();
        sinks.push(Arc::new(sink));
        inner.sinks = sinks.into();
        Ok(App {
            inner: Arc::new(inner),
        })
    }

    /// Replaces the server settings (listen address, body limit, timeouts).
    pub fn with_settings(self, settings: ServerSettings) -> anyhow::Result<App> {
        let mut inner = Arc::try_unwrap(self.inner).map_err(|_| {
            anyhow::anyhow!("with_settings must be called before the app is shared")
        })?;
        inner.settings = settings;
        Ok(App {
            inner: Arc::new(inner),
        })
    }

    /// The functions, in the spec's order (route targets index into it).
    pub fn functions(&self) -> &[Function] {
        &self.inner.functions
    }

    /// The route table.
    pub fn router(&self) -> &Router<usize> {
        &self.inner.router
    }

    /// The server settings.
    pub fn settings(&self) -> &ServerSettings {
        &self.inner.settings
    }

    pub(crate) fn sinks(&self) -> Arc<[RecordSink]> {
        self.inner.sinks.clone()
    }
}
