//! A loaded function: compiled once, pre-instantiated, invoked per request.
//!
//! Loading compiles the component, links it against the host interfaces and
//! type-checks its `wasi:http/incoming-handler` export into a `ProxyPre`.
//! Invoking does none of that: it creates a fresh `Store` with the
//! function's fuel budget and deadline, instantiates from the `ProxyPre`
//! (a pooled slot and copy-on-write memory: microseconds) and calls the
//! handler in a task of its own, so the guest can keep streaming the
//! response body after the head has gone to the client.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use wasmtime::component::{Component, Linker};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::billing::Prices;
use crate::engine::GustEngine;
use crate::host::HostState;
use crate::manifest::{FunctionId, FunctionSpec, Limits};
use crate::quota::Quota;

/// A function ready to serve requests.
pub struct Function {
    pub(crate) id: FunctionId,
    pub(crate) app: FunctionId,
    pub(crate) limits: Limits,
    pub(crate) prices: Arc<Prices>,
    pub(crate) quota: Option<Arc<Quota>>,
    pub(crate) pre: ProxyPre<HostState>,
    /// Whether the engine meters fuel.
    pub(crate) fuel: bool,
}

impl Function {
    /// Compiles and pre-instantiates a function.
    pub fn load(
        engine: &GustEngine,
        linker: &Linker<HostState>,
        app: &FunctionId,
        spec: &FunctionSpec,
    ) -> anyhow::Result<Function> {
        let bytes = match spec.source.read() {
            Ok(bytes) => bytes,
            Err(e) => anyhow::bail!("reading the component of `{}`: {e}", spec.id),
        };
        let started = Instant::now();
        let component = Component::new(engine.engine(), &bytes)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("compiling the component of `{}`", spec.id))?;
        let compiled = started.elapsed();
        let pre = linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("linking `{}` against the host", spec.id))?;
        let pre = ProxyPre::new(pre).map_err(anyhow::Error::from).with_context(|| {
            format!(
                "`{}` is not a wasi:http/proxy component (it must export wasi:http/incoming-handler@0.2.x)",
                spec.id
            )
        })?;
        tracing::info!(
            function = %spec.id,
            bytes = bytes.len(),
            compile_ms = compiled.as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            "function loaded"
        );
        Ok(Function {
            id: spec.id.clone(),
            app: app.clone(),
            limits: spec.limits,
            prices: Arc::new(spec.prices.clone()),
            quota: spec.quota.map(|q| Arc::new(Quota::new(q))),
            pre,
            fuel: engine.is_metering_fuel(),
        })
    }

    /// The function's id.
    pub fn id(&self) -> &FunctionId {
        &self.id
    }

    /// The function's limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }
}
