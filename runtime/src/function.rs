//! A loaded function: its compiled component linked against the host and
//! type-checked as a `wasi:http` handler, p2 or p3 (see `call`), with its limits,
//! prices and quota. Compiling happens in [`crate::app`] (through the
//! cache); invoking, in `invoke`, which does no compiling, linking or
//! type-checking, except that a lazily loaded function's first request
//! loads its component from the cache (`app::lazy`).

use std::sync::Arc;

use anyhow::Context as _;
use wasmtime::component::{Component, InstancePre, Linker};

use crate::admission::Admission;
use crate::app::lazy::Lazy;
use crate::billing::Prices;
use crate::call::Kind;
use crate::engine::GustEngine;
use crate::gate::Gate;
use crate::host::HostState;
use crate::host::capability::AppCaps;
use crate::manifest::{FunctionId, FunctionSpec, Limits};
use crate::quota::Quota;
use crate::reuse::WarmPool;

/// A function ready to serve requests.
pub struct Function {
    pub(crate) id: FunctionId,
    pub(crate) app: FunctionId,
    pub(crate) limits: Limits,
    pub(crate) prices: Arc<Prices>,
    pub(crate) quota: Option<Arc<Quota>>,
    /// Which `wasi:http` its component exports.
    kind: Kind,
    /// Its linked component, resident or loaded on first use (shared by
    /// the functions of an app with identical components).
    component: Arc<Lazy>,
    pub(crate) admission: Admission,
    /// The engine's turns of executing guests.
    pub(crate) gate: Arc<Gate>,
    /// Whether the engine meters fuel.
    pub(crate) fuel: bool,
    /// See [`crate::EngineConfig::fuel_flush_interval`].
    pub(crate) fuel_flush: u64,
    /// Epoch ticks a guest runs before it yields its worker thread.
    pub(crate) slice_ticks: u32,
    /// Idle instances, when the function opted into reuse.
    pub(crate) warm: Option<Arc<WarmPool>>,
    /// The app's opened capabilities, for each new instance's state.
    pub(crate) caps: Arc<AppCaps>,
}

/// A component linked against the host and type-checked as a `wasi:http`
/// handler: what an invocation instantiates.
pub(crate) struct Ready {
    /// Shared with the invocation tasks.
    pub(crate) pre: Arc<InstancePre<HostState>>,
    /// Its `wasi:http` exports, for the HTTP trigger.
    pub(crate) http: Arc<crate::call::HttpExports>,
}

impl Ready {
    /// Pre-instantiates a compiled component: links it against the host and
    /// type-checks it as a `wasi:http` handler (p3 if it exports
    /// `wasi:http/handler@0.3`, else p2). `function` names it in errors.
    pub(crate) fn link(
        linker: &Linker<HostState>,
        component: &Component,
        function: &FunctionId,
    ) -> anyhow::Result<Ready> {
        let pre = linker
            .instantiate_pre(component)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("linking `{function}` against the host"))?;
        let http = crate::call::HttpExports::new(&pre)
            .map(Arc::new)
            .with_context(|| format!("`{function}` is not a wasi:http component"))?;
        Ok(Ready {
            pre: Arc::new(pre),
            http,
        })
    }
}

impl Function {
    /// A function of `app` whose component (of `kind`) is `component`.
    pub(crate) fn new(
        engine: &GustEngine,
        app: &FunctionId,
        caps: Arc<AppCaps>,
        spec: &FunctionSpec,
        kind: Kind,
        component: Arc<Lazy>,
    ) -> Function {
        Function {
            id: spec.id.clone(),
            app: app.clone(),
            limits: spec.limits,
            prices: Arc::new(spec.prices.clone()),
            quota: spec.quota.map(|q| Arc::new(Quota::new(q))),
            kind,
            component,
            admission: Admission::new(&spec.limits),
            gate: engine.gate().clone(),
            fuel: engine.is_metering_fuel(),
            fuel_flush: engine.fuel_flush_interval(),
            slice_ticks: engine.slice_ticks(),
            warm: WarmPool::new(&spec.limits).map(Arc::new),
            caps,
        }
    }

    /// The linked component, loaded first if the function is lazy and
    /// this is its first request.
    pub(crate) async fn ready(&self) -> anyhow::Result<Arc<Ready>> {
        self.component.get().await
    }

    /// Whether the function's component is resident (pre-instantiated):
    /// always for an eagerly loaded app, after its first request for a
    /// lazy one.
    pub fn is_resident(&self) -> bool {
        self.component.is_resident()
    }

    /// The function's id.
    pub fn id(&self) -> &FunctionId {
        &self.id
    }

    /// Which `wasi:http` the function's component exports.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The function's limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }
}
