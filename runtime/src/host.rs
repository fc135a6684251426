//! Per-invocation host state: what lives in each request's `Store`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::ResourceLimiter;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

/// The data of one invocation's `Store`. Created fresh for every request, so
/// nothing a guest does can leak into another request.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    pub(crate) memory: MemoryMeter,
    pub(crate) io: Arc<IoMeter>,
    /// Host fuel already taken from the store's fuel (see `function`).
    pub(crate) host_fuel_deducted: u64,
    hooks: DenyOutbound,
}

/// Outbound HTTP is a capability a manifest will grant per function; no
/// manifest can grant it yet, so every `wasi:http/outgoing-handler` request
/// is refused with `HTTP-request-denied` before anything touches the
/// network (an untrusted guest must not reach the operator's network).
struct DenyOutbound;

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn std::future::Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
)>;

impl WasiHttpHooks for DenyOutbound {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn std::future::Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn std::future::Future<Output = SendResult> + Send> {
        tracing::debug!(uri = %request.uri(), "outbound HTTP denied: not granted");
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

/// Body bytes moved by the host for one invocation, counted where they
/// pass (the request body as the guest reads it, the response body as it
/// goes to the client).
#[derive(Debug, Default)]
pub struct IoMeter {
    request_bytes: AtomicU64,
    response_bytes: AtomicU64,
}

impl IoMeter {
    pub(crate) fn add_request(&self, n: u64) {
        self.request_bytes.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn add_response(&self, n: u64) {
        self.response_bytes.fetch_add(n, Ordering::Relaxed);
    }
    /// Request body bytes so far.
    pub fn request_bytes(&self) -> u64 {
        self.request_bytes.load(Ordering::Relaxed)
    }
    /// Response body bytes so far.
    pub fn response_bytes(&self) -> u64 {
        self.response_bytes.load(Ordering::Relaxed)
    }
    /// Host fuel owed for the bytes so far.
    pub fn host_fuel(&self) -> u64 {
        crate::metering::body_fuel(self.request_bytes().saturating_add(self.response_bytes()))
    }
}

/// Tracks the instance's total linear memory: wasmtime asks before every
/// memory is created or grown, and memories never shrink, so the running
/// sum of growth is the current total and its maximum the peak.
#[derive(Debug, Default)]
pub(crate) struct MemoryMeter {
    total: usize,
    pub(crate) peak: usize,
}

impl ResourceLimiter for MemoryMeter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.total = self.total.saturating_add(desired.saturating_sub(current));
        self.peak = self.peak.max(self.total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

impl HostState {
    pub(crate) fn new(io: Arc<IoMeter>) -> Self {
        // Guest stdout/stderr go to gust's own, as with `wasmtime serve`:
        // panic messages of a trapping guest are the first thing a developer
        // needs to see.
        let wasi = WasiCtx::builder().inherit_stdout().inherit_stderr().build();
        HostState {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            memory: MemoryMeter::default(),
            io,
            host_fuel_deducted: 0,
            hooks: DenyOutbound,
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
            hooks: &mut self.hooks,
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
