//! How to build gust's wasmtime engines: [`EngineConfig`], every setter
//! with its default.

use std::num::NonZeroUsize;
use std::time::Duration;

use wasmtime::{Config, Enabled, InstanceAllocationStrategy, PoolingAllocationConfig};

const DEFAULT_KEEP_RESIDENT: usize = 16 << 20;
const DEFAULT_EAGER_UP_TO: usize = 100;
const DEFAULT_MAX_RESIDENT: usize = 1000;

/// Linux 6.7 and later have the `PAGEMAP_SCAN` ioctl.
fn pagemap_scan_supported() -> bool {
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else {
        return false;
    };
    let mut parts = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= (6, 7),
        _ => false,
    }
}

/// How to build the engine. Every setter documents its default.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub(crate) fuel: bool,
    pub(crate) fuel_flush: u64,
    pub(crate) wasip3: bool,
    pub(crate) pooling: bool,
    keep_resident: Option<usize>,
    pub(crate) max_instances: u32,
    max_memory_size: usize,
    max_table_elements: usize,
    max_wasm_stack: usize,
    pub(crate) max_running: Option<usize>,
    pub(crate) epoch_tick: Duration,
    time_slice: Duration,
    pub(crate) wasm_backtraces: bool,
    pub(crate) load_mode: crate::app::LoadMode,
    pub(crate) max_resident_functions: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        // What a manifest can set has its default in one place, the
        // manifest's `[engine]` section.
        let settings = crate::manifest::EngineSettings::default();
        EngineConfig {
            fuel: true,
            fuel_flush: 1_000_000,
            wasip3: true,
            pooling: true,
            keep_resident: None,
            max_instances: settings.max_instances,
            max_memory_size: settings.max_memory_size,
            max_table_elements: settings.max_table_elements,
            max_wasm_stack: settings.max_wasm_stack,
            max_running: settings.max_running,
            epoch_tick: Duration::from_millis(1),
            time_slice: settings.time_slice,
            wasm_backtraces: std::env::var_os("GUST_WASM_BACKTRACE").is_some_and(|v| v == "1"),
            load_mode: crate::app::LoadMode::Auto {
                eager_up_to: DEFAULT_EAGER_UP_TO,
            },
            max_resident_functions: DEFAULT_MAX_RESIDENT,
        }
    }
}

impl EngineConfig {
    /// Meter fuel (Wasm instructions executed). Default: `true`. Turning it
    /// off is for measuring what metering costs: every invocation then
    /// reports 0 Wasm fuel and budgets are not enforced (deadlines still
    /// are).
    pub fn fuel(mut self, on: bool) -> Self {
        self.fuel = on;
        self
    }

    /// Fuel a guest runs between two points where its fuel count is known
    /// to the host, in instructions. Default: 1,000,000 (about a
    /// millisecond of CPU). Compiled Wasm keeps its fuel count in a
    /// register and stores it only at calls, returns and when its fuel
    /// runs out, not at the epoch checks where a deadline or a departed
    /// client stops it: a loop stopped there would be billed only the fuel
    /// stored before it began. So each store gets its fuel in portions of
    /// this size (wasmtime's fuel yield interval): a guest stopped anywhere
    /// is billed all but at most one portion. Each portion costs one
    /// cooperative yield (a few microseconds).
    pub fn fuel_flush_interval(mut self, fuel: u64) -> Self {
        self.fuel_flush = fuel.max(1);
        self
    }

    /// Serve WASIp3 components (`wasi:http/handler@0.3`). Default: `true`.
    /// They need the component model's async support, which makes every
    /// WASIp2 call about a quarter slower in-process (benches README), so
    /// they get a second wasmtime engine with it, built when the first p3
    /// component is loaded (with an instance pool of its own, of the same
    /// size), and p2 components keep an engine without it. Off, p3
    /// components fail to load.
    pub fn wasip3(mut self, on: bool) -> Self {
        self.wasip3 = on;
        self
    }

    /// Use the pooling instance allocator. Default: `true`. When the pool
    /// cannot be reserved, gust logs a warning and allocates on demand.
    pub fn pooling(mut self, on: bool) -> Self {
        self.pooling = on;
        self
    }

    /// Bytes of each pooled linear memory and table kept resident between
    /// instances and reset in place, instead of being returned to the
    /// kernel and faulted in again by the next instance. Default: 16 MiB
    /// where the kernel has the `PAGEMAP_SCAN` ioctl (Linux 6.7+), which
    /// lets the reset touch only the pages the instance dirtied; 0 (plain
    /// `madvise` reset) elsewhere, where the reset would `memset` the whole
    /// region. Large-runtime guests (Python, JavaScript) fault in hundreds
    /// of pages per request without it.
    pub fn memory_keep_resident(mut self, bytes: usize) -> Self {
        self.keep_resident = Some(bytes);
        self
    }

    /// Component instances that may be live at once (the pool's size, so
    /// the limit on concurrent invocations). Default: 1000.
    pub fn max_instances(mut self, n: u32) -> Self {
        self.max_instances = n.max(1);
        self
    }

    /// Largest linear memory one instance may grow to, in bytes.
    /// Default: 256 MiB.
    pub fn max_memory_size(mut self, bytes: usize) -> Self {
        self.max_memory_size = bytes;
        self
    }

    /// Largest table one instance may have, in elements. Default: 20,000.
    pub fn max_table_elements(mut self, elements: usize) -> Self {
        self.max_table_elements = elements;
        self
    }

    /// Largest Wasm stack of one invocation, in bytes; deeper recursion
    /// traps with a stack overflow. Default: 512 KiB.
    pub fn max_wasm_stack(mut self, bytes: usize) -> Self {
        self.max_wasm_stack = bytes;
        self
    }

    /// Guests executing at once; the others wait their turn, short ones
    /// first (see `gate`). Default: no limit beyond the instance pool. One
    /// per core protects short requests from busy guests (a health check's
    /// p99 next to an HTTP/2 rapid-reset flood of spinning guests: 148 ms
    /// instead of 430-660 ms) but cost CPU-heavy guests most of their
    /// throughput under closed-loop load (see the README).
    pub fn max_running(mut self, n: usize) -> Self {
        self.max_running = Some(n.max(1));
        self
    }

    /// Capture backtraces when a guest traps, so the trap's detail (logged
    /// at debug level) names the Wasm functions it passed through.
    /// Default: `false`, unless the environment variable
    /// `GUST_WASM_BACKTRACE` is `1` when the configuration is created.
    /// Capturing walks the guest's stack on every trap, and when it is off
    /// [`GustEngine::new`](crate::GustEngine::new) also stops wasmtime's
    /// errors from capturing native backtraces, which `RUST_BACKTRACE=1`
    /// would turn on (process-wide): symbolized from gust's debug info they
    /// doubled a trap's CPU and added ~170 MB resident at the first trap,
    /// which would let any guest burn the node's CPU by trapping. Turn it on
    /// to debug a guest (`GUST_WASM_BACKTRACE=1 gust serve`; wasmtime's own
    /// `WASMTIME_BACKTRACE_DETAILS=1` adds file and line numbers), not in
    /// production.
    pub fn wasm_backtraces(mut self, on: bool) -> Self {
        self.wasm_backtraces = on;
        self
    }

    /// When apps loaded on this engine make their functions resident (see
    /// `App::load`). Default: [`LoadMode::Auto`] with `eager_up_to` 100:
    /// an app of up to 100 functions has every one pre-instantiated before
    /// it serves (~0.65 MB each for a Rust hello, none of its requests
    /// waits for a load); a larger one loads each function on its first
    /// request (~2 ms more for that request, from the compile cache), so
    /// that idle functions cost ~4 KB instead (benches README, section 18).
    /// A node holding many tenants' small apps should choose
    /// [`LoadMode::Lazy`]: the choice is per app, not per node.
    ///
    /// [`LoadMode`]: crate::app::LoadMode
    /// [`LoadMode::Auto`]: crate::app::LoadMode::Auto
    /// [`LoadMode::Lazy`]: crate::app::LoadMode::Lazy
    pub fn load_mode(mut self, mode: crate::app::LoadMode) -> Self {
        self.load_mode = mode;
        self
    }

    /// Lazily loaded functions kept resident at once, over every app on
    /// the engine; loading one more unloads the least recently used (its
    /// next request loads it again from the compile cache). Default: 1000,
    /// about 550 MB of Rust hellos (components grow with their code: a
    /// Python or JavaScript one holds tens of MB). Eagerly loaded
    /// functions are always resident and not counted.
    pub fn max_resident_functions(mut self, n: usize) -> Self {
        self.max_resident_functions = n.max(1);
        self
    }

    /// The settings of a manifest's `[engine]` table.
    pub fn with_settings(self, settings: &crate::manifest::EngineSettings) -> Self {
        let config = self
            .max_instances(settings.max_instances)
            .max_memory_size(settings.max_memory_size)
            .max_table_elements(settings.max_table_elements)
            .max_wasm_stack(settings.max_wasm_stack)
            .time_slice(settings.time_slice);
        let config = match settings.max_running {
            Some(n) => config.max_running(n),
            None => config,
        };
        use crate::app::LoadMode;
        use crate::manifest::LoadDecl;
        let config = match (settings.load, settings.eager_up_to) {
            (Some(LoadDecl::Eager), _) => config.load_mode(LoadMode::Eager),
            (Some(LoadDecl::Lazy), _) => config.load_mode(LoadMode::Lazy),
            (_, Some(eager_up_to)) => config.load_mode(LoadMode::Auto { eager_up_to }),
            (_, None) => config,
        };
        match settings.max_resident_functions {
            Some(n) => config.max_resident_functions(n),
            None => config,
        }
    }

    /// How often the epoch advances: the granularity of deadlines and of
    /// yielding a busy guest back to the scheduler. Default: 1 ms (5 ms
    /// before host work was charged: a guest looping on cheap host calls
    /// can only be made to yield at an epoch check, and at 5 ms `/hello`
    /// next to four of them had a p50 of 3.4 ms against 2.0 ms at 1 ms).
    pub fn epoch_tick(mut self, tick: Duration) -> Self {
        self.epoch_tick = tick.max(Duration::from_micros(100));
        self
    }

    /// How long a guest may run before it yields its worker thread to other
    /// tasks, in whole epoch ticks (at least one). Default: 20 ms. Shorter
    /// slices make concurrent CPU-heavy requests share the cores
    /// round-robin, so they all finish late (Python hello p99 at c=16: 159
    /// ms with a 5 ms slice); longer ones let one guest hold a thread
    /// longer before a neighbour's request gets it.
    pub fn time_slice(mut self, slice: Duration) -> Self {
        self.time_slice = slice;
        self
    }

    pub(crate) fn slice_ticks(&self) -> u32 {
        let ticks = self
            .time_slice
            .as_nanos()
            .div_ceil(self.epoch_tick.as_nanos().max(1));
        u32::try_from(ticks).unwrap_or(u32::MAX).max(1)
    }

    /// The wasmtime configuration of one engine: with the component
    /// model's async support (`cm_async`, for p3) or without.
    pub(crate) fn wasmtime_config(&self, pooling: bool, cm_async: bool) -> Config {
        let mut config = Config::new();
        config
            .consume_fuel(self.fuel)
            .epoch_interruption(true)
            .memory_init_cow(true)
            .wasm_component_model(true)
            .concurrency_support(cm_async)
            .wasm_component_model_async(cm_async)
            .max_wasm_stack(self.max_wasm_stack)
            // Host calls run on the same stack, after the guest's frames.
            .async_stack_size(self.max_wasm_stack + (1 << 20))
            // wasmtime's own default: 20 frames.
            .wasm_backtrace_max_frames(if self.wasm_backtraces {
                NonZeroUsize::new(20)
            } else {
                None
            });
        if pooling {
            let n = self.max_instances;
            let mut pool = PoolingAllocationConfig::default();
            // Components hold several core instances, memories and tables
            // (the main module plus shims), hence the multiples.
            pool.total_component_instances(n)
                .total_core_instances(n.saturating_mul(4))
                .total_memories(n.saturating_mul(2))
                .total_tables(n.saturating_mul(4))
                .total_stacks(n)
                .max_memory_size(self.max_memory_size)
                .table_elements(self.max_table_elements);
            let pagemap = pagemap_scan_supported();
            let keep =
                self.keep_resident
                    .unwrap_or(if pagemap { DEFAULT_KEEP_RESIDENT } else { 0 });
            pool.linear_memory_keep_resident(keep)
                .table_keep_resident(keep)
                .pagemap_scan(if pagemap { Enabled::Yes } else { Enabled::No });
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_slice_is_whole_epoch_ticks_and_at_least_one() {
        let ticks = |slice_ms, tick_ms| {
            EngineConfig::default()
                .epoch_tick(Duration::from_millis(tick_ms))
                .time_slice(Duration::from_millis(slice_ms))
                .slice_ticks()
        };
        assert_eq!(
            EngineConfig::default().slice_ticks(),
            20,
            "20 ms of 1 ms ticks"
        );
        assert_eq!(ticks(7, 5), 2, "rounded up");
        assert_eq!(ticks(1, 5), 1);
        assert_eq!(ticks(0, 5), 1);
    }

    /// The error of a trap two Wasm calls deep, on an engine of `config`.
    fn trap(config: &EngineConfig) -> wasmtime::Error {
        trap_on(&wasmtime::Engine::new(&config.wasmtime_config(false, false)).unwrap())
    }

    fn trap_on(engine: &wasmtime::Engine) -> wasmtime::Error {
        let module = wasmtime::Module::new(
            engine,
            r#"(module
                (func $inner unreachable)
                (func (export "run") call $inner))"#,
        )
        .unwrap();
        let mut store = wasmtime::Store::new(engine, ());
        store.set_fuel(1_000_000).unwrap();
        store.set_epoch_deadline(1);
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let run = instance
            .get_typed_func::<(), ()>(&mut store, "run")
            .unwrap();
        run.call(&mut store, ()).unwrap_err()
    }

    #[test]
    fn traps_capture_no_wasm_backtrace_unless_asked() {
        let error = trap(&EngineConfig::default().wasm_backtraces(false));
        assert_eq!(
            error.downcast_ref::<wasmtime::Trap>(),
            Some(&wasmtime::Trap::UnreachableCodeReached)
        );
        assert!(error.downcast_ref::<wasmtime::WasmBacktrace>().is_none());
        // What an invocation's detail is made of.
        let detail = format!("{error:?}");
        assert!(!detail.contains("wasm backtrace"), "{detail}");

        let error = trap(&EngineConfig::default().wasm_backtraces(true));
        let backtrace = error
            .downcast_ref::<wasmtime::WasmBacktrace>()
            .expect("a backtrace when asked for");
        assert_eq!(backtrace.frames().len(), 2, "{backtrace:?}");
        let detail = format!("{error:?}");
        assert!(detail.contains("wasm backtrace"), "{detail}");
    }

    #[test]
    fn wasm_backtraces_are_off_by_default() {
        if std::env::var_os("GUST_WASM_BACKTRACE").is_none() {
            let engine = crate::GustEngine::new(&EngineConfig::default().pooling(false)).unwrap();
            let error = trap_on(engine.engine());
            assert!(error.downcast_ref::<wasmtime::Trap>().is_some());
            assert!(error.downcast_ref::<wasmtime::WasmBacktrace>().is_none());
            // Nor a native one, even where `RUST_BACKTRACE=1` would have
            // had every error capture (and its detail print) one.
            let detail = format!("{error:?}");
            assert!(!detail.contains("backtrace"), "{detail}");
        }
    }

    #[test]
    fn load_settings_reach_the_engine_config() {
        use crate::app::LoadMode;
        use crate::manifest::{EngineSettings, LoadDecl};
        let default = EngineConfig::default();
        let unset = EngineConfig::default().with_settings(&EngineSettings::default());
        assert_eq!(unset.load_mode, default.load_mode);
        assert_eq!(unset.max_resident_functions, default.max_resident_functions);
        let settings = EngineSettings {
            load: Some(LoadDecl::Lazy),
            max_resident_functions: Some(7),
            ..EngineSettings::default()
        };
        let lazy = EngineConfig::default().with_settings(&settings);
        assert_eq!(lazy.load_mode, LoadMode::Lazy);
        assert_eq!(lazy.max_resident_functions, 7);
        let settings = EngineSettings {
            eager_up_to: Some(3),
            ..EngineSettings::default()
        };
        let auto = EngineConfig::default().with_settings(&settings);
        assert_eq!(auto.load_mode, LoadMode::Auto { eager_up_to: 3 });
    }
}
