//! The wasmtime engines of a gust process and their epoch ticker.
//!
//! The engines are configured for serving many short invocations: async
//! support, fuel metering, epoch interruption, the pooling instance allocator
//! (with a logged fallback to on-demand allocation when the address space is
//! too small to reserve the pool) and copy-on-write memory images.
//!
//! There are two flavours: WASIp2 components run on an engine without the
//! component model's async support, which costs every p2 call about a
//! quarter of its in-process time; WASIp3 components need it and run on a
//! second engine with it, built when the first one is loaded. Both share
//! the epoch ticker, the CPU gate and every setting.

mod config;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::Engine;
use wasmtime::component::Linker;

pub use config::EngineConfig;

use crate::call::Kind;
use crate::gate::Gate;
use crate::host::HostState;

/// The process's engines plus the thread that drives their epochs.
#[derive(Clone)]
pub struct GustEngine {
    inner: Arc<Inner>,
}

/// One wasmtime engine and the linker its functions are pre-instantiated
/// against.
struct Flavour {
    kind: Kind,
    engine: Engine,
    pooling: bool,
    /// Built on first use and shared by every app loaded on this engine:
    /// building it takes about 0.2 ms, a fifth of a warm deploy.
    linker: OnceLock<Linker<HostState>>,
}

impl Flavour {
    fn new(config: &EngineConfig, kind: Kind) -> anyhow::Result<Flavour> {
        let cm_async = kind == Kind::P3;
        let (engine, pooling) = if config.pooling {
            match Engine::new(&config.wasmtime_config(true, cm_async)) {
                Ok(engine) => (engine, true),
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        "cannot reserve the pooling allocator; allocating instances on demand"
                    );
                    (
                        Engine::new(&config.wasmtime_config(false, cm_async))?,
                        false,
                    )
                }
            }
        } else {
            (
                Engine::new(&config.wasmtime_config(false, cm_async))?,
                false,
            )
        };
        Ok(Flavour {
            kind,
            engine,
            pooling,
            linker: OnceLock::new(),
        })
    }

    fn linker(&self) -> anyhow::Result<&Linker<HostState>> {
        if let Some(linker) = self.linker.get() {
            return Ok(linker);
        }
        let linker = linker(&self.engine, self.kind)?;
        Ok(self.linker.get_or_init(|| linker))
    }
}

struct Inner {
    config: EngineConfig,
    p2: Flavour,
    /// Built on first use; shared with the ticker, which advances its epoch.
    p3: Arc<OnceLock<Flavour>>,
    /// Held while the p3 flavour is built, so it is built once.
    p3_building: Mutex<()>,
    slice_ticks: u32,
    gate: Arc<Gate>,
    /// The lazily loaded functions resident, shared by every app.
    residency: Arc<crate::app::lazy::Residency>,
    stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

impl GustEngine {
    /// Builds the WASIp2 engine and starts the epoch ticker.
    pub fn new(config: &EngineConfig) -> anyhow::Result<GustEngine> {
        if !config.wasm_backtraces {
            // With `RUST_BACKTRACE=1` in the environment, every wasmtime
            // error (so every trap) would also capture a native backtrace,
            // symbolized from gust's own debug info when the trap's detail
            // is formatted: ~170 MB resident after the first trap and
            // hundreds of microseconds of CPU per trap. Process-wide and
            // for good: wasmtime has no switch per engine (this one is
            // hidden; the alternative is leaving out wasmtime's `backtrace`
            // feature).
            wasmtime::error::disable_backtrace();
        }
        let p2 = Flavour::new(config, Kind::P2)?;
        let p3: Arc<OnceLock<Flavour>> = Arc::new(OnceLock::new());
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let engine = p2.engine.clone();
            let p3 = p3.clone();
            let stop = stop.clone();
            let tick = config.epoch_tick;
            std::thread::Builder::new()
                .name("gust-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(tick);
                        engine.increment_epoch();
                        if let Some(p3) = p3.get() {
                            p3.engine.increment_epoch();
                        }
                    }
                })
                .context("starting the epoch ticker thread")?
        };
        // Unset, the gate never makes anyone wait: every instance slot is
        // a turn.
        let running = config.max_running.unwrap_or(config.max_instances as usize);
        tracing::debug!(pooling = p2.pooling, tick = ?config.epoch_tick, running, "engine ready");
        Ok(GustEngine {
            inner: Arc::new(Inner {
                config: config.clone(),
                p2,
                p3,
                p3_building: Mutex::new(()),
                slice_ticks: config.slice_ticks(),
                gate: Arc::new(Gate::new(running)),
                residency: Arc::new(crate::app::lazy::Residency::new(
                    config.max_resident_functions,
                )),
                stop,
                ticker: Some(ticker),
            }),
        })
    }

    /// The engine WASIp2 components run on.
    pub fn engine(&self) -> &Engine {
        &self.inner.p2.engine
    }

    /// The engine components of `kind` run on; the WASIp3 one is built on
    /// first use.
    pub fn engine_for(&self, kind: Kind) -> anyhow::Result<&Engine> {
        Ok(&self.flavour(kind)?.engine)
    }

    fn flavour(&self, kind: Kind) -> anyhow::Result<&Flavour> {
        let inner = &*self.inner;
        if kind == Kind::P2 {
            return Ok(&inner.p2);
        }
        if let Some(p3) = inner.p3.get() {
            return Ok(p3);
        }
        anyhow::ensure!(
            inner.config.wasip3,
            "WASIp3 components are turned off on this engine (EngineConfig::wasip3)"
        );
        let _building = inner.p3_building.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p3) = inner.p3.get() {
            return Ok(p3);
        }
        let started = std::time::Instant::now();
        let flavour = Flavour::new(&inner.config, Kind::P3)?;
        tracing::info!(
            pooling = flavour.pooling,
            ms = started.elapsed().as_millis() as u64,
            "WASIp3 engine ready (component model async support)"
        );
        Ok(inner.p3.get_or_init(|| flavour))
    }

    /// Whether fuel is metered.
    pub fn is_metering_fuel(&self) -> bool {
        self.inner.config.fuel
    }

    /// See [`EngineConfig::fuel_flush_interval`].
    pub(crate) fn fuel_flush_interval(&self) -> u64 {
        self.inner.config.fuel_flush
    }

    /// Whether the pooling allocator is in use (by the WASIp2 engine).
    pub fn is_pooling(&self) -> bool {
        self.inner.p2.pooling
    }

    /// The turns of guests executing at once.
    pub(crate) fn gate(&self) -> &Arc<Gate> {
        &self.inner.gate
    }

    /// The linker functions of `kind` are pre-instantiated against.
    pub(crate) fn linker(&self, kind: Kind) -> anyhow::Result<&Linker<HostState>> {
        self.flavour(kind)?.linker()
    }

    /// When apps loaded on this engine make their functions resident.
    pub fn load_mode(&self) -> crate::app::LoadMode {
        self.inner.config.load_mode
    }

    /// The lazily loaded functions resident (see
    /// [`EngineConfig::max_resident_functions`]).
    pub(crate) fn residency(&self) -> &Arc<crate::app::lazy::Residency> {
        &self.inner.residency
    }

    /// The epoch tick.
    pub fn epoch_tick(&self) -> Duration {
        self.inner.config.epoch_tick
    }

    /// Epoch ticks a guest runs before it yields (see
    /// [`EngineConfig::time_slice`]).
    pub(crate) fn slice_ticks(&self) -> u32 {
        self.inner.slice_ticks
    }

    /// The pooling allocator's slots in use, per engine built so far (the
    /// WASIp3 one only once built); none for an engine allocating on demand.
    pub(crate) fn pool_metrics(&self) -> Vec<(Kind, wasmtime::PoolingAllocatorMetrics)> {
        std::iter::once(&self.inner.p2)
            .chain(self.inner.p3.get())
            .filter_map(|f| Some((f.kind, f.engine.pooling_allocator_metrics()?)))
            .collect()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
    }
}

/// The linker functions of `kind` are pre-instantiated against: the
/// interfaces of `wasi:http/proxy` (plus the rest of `wasi:cli` so components
/// built for a command-style world still link) and, for WASIp3 components,
/// their 0.3 versions: `wasi:http` types and client, clocks, random and cli,
/// as `wasmtime serve` links them (p3 components import p2 interfaces too,
/// through Rust's standard library). The 0.3 interfaces need the engine's
/// component model async support, which only the p3 engine has.
fn linker(engine: &wasmtime::Engine, kind: Kind) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    if kind == Kind::P3 {
        wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
        wasmtime_wasi::p3::clocks::add_to_linker(&mut linker)?;
        wasmtime_wasi::p3::random::add_to_linker(&mut linker)?;
        wasmtime_wasi::p3::cli::add_to_linker(&mut linker)?;
    }
    crate::host::capability::link(&mut linker, kind == Kind::P3)?;
    Ok(linker)
}
