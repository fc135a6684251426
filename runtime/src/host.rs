//! Per-invocation host state: what lives in each request's `Store`.

use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// The data of one invocation's `Store`. Created fresh for every request, so
/// nothing a guest does can leak into another request.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
}

impl HostState {
    pub(crate) fn new() -> Self {
        // Guest stdout/stderr go to gust's own, as with `wasmtime serve`:
        // panic messages of a trapping guest are the first thing a developer
        // needs to see.
        let wasi = WasiCtx::builder().inherit_stdout().inherit_stderr().build();
        HostState {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: Default::default(),
        }
    }
}

/// The linker every function is pre-instantiated against: the interfaces of
/// `wasi:http/proxy` (plus the rest of `wasi:cli` so components built for a
/// command-style world still link).
pub(crate) fn linker(engine: &wasmtime::Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    Ok(linker)
}
