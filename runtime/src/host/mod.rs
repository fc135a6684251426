//! Per-invocation host state: what lives in each request's `Store`, the
//! host work it is charged for (`work`) and the capabilities it holds
//! (`capability`).

pub(crate) mod bindings;
pub(crate) mod capability;
pub(crate) mod work;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http_body_util::{BodyExt as _, Empty};
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::body::HostIncomingBody;
use wasmtime_wasi_http::p2::types::HostIncomingRequest;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::manifest::Limits;
use capability::Caps;
use work::{CountingRng, HostMemoryExceeded, HostWork};

/// The data of one invocation's `Store`. Created fresh for every request, so
/// nothing a guest does can leak into another request, unless its function
/// opted into instance reuse (see `reuse`), where `HostState::begin`
/// resets what belongs to one request.
pub(crate) struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    /// Host resources the guest holds (capabilities keep theirs here too).
    pub(crate) table: ResourceTable,
    /// The invocation's request id, for capabilities' log lines (set when
    /// the trigger knows it).
    pub(crate) request_id: String,
    pub(crate) limiter: StoreLimiter,
    pub(crate) io: Arc<IoMeter>,
    /// Host calls, randomness and host memory (see `host_work`).
    pub(crate) work: HostWork,
    /// Epoch ticks the guest has run since it last yielded.
    pub(crate) ticks_run: u32,
    /// Host fuel owed at the guest's last yield (host work yields as
    /// often as Wasm fuel does).
    pub(crate) host_fuel_at_yield: u64,
    /// One field per host capability (see `capability`).
    pub(crate) caps: Caps,
}

/// Body bytes moved by the host for one invocation, counted where they
/// pass (the request body as the guest reads it, the response body as it
/// goes to the client).
#[derive(Debug, Default)]
pub struct IoMeter {
    request_bytes: AtomicU64,
    response_bytes: AtomicU64,
    /// Request body data frames handed to the guest.
    request_frames: AtomicU64,
}

impl IoMeter {
    pub(crate) fn add_request(&self, n: u64) {
        self.request_bytes.fetch_add(n, Ordering::Relaxed);
        self.request_frames.fetch_add(1, Ordering::Relaxed);
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
    /// Host fuel owed for the body bytes and request frames so far.
    pub fn host_fuel(&self) -> u64 {
        let frames = self.request_frames.load(Ordering::Relaxed);
        crate::metering::body_fuel(self.request_bytes().saturating_add(self.response_bytes()))
            .saturating_add(frames.saturating_mul(crate::metering::BODY_FRAME_FUEL))
    }
}

/// The store's `ResourceLimiter`: enforces the function's memory, table
/// and instance limits, and tracks the instance's total linear memory.
/// wasmtime asks before every memory is created or grown, and memories never
/// shrink, so the running sum of growth is the current total and its
/// maximum the peak.
#[derive(Debug)]
pub(crate) struct StoreLimiter {
    total: usize,
    pub(crate) peak: usize,
    memory_limit: usize,
    table_limit: usize,
    instance_limit: usize,
    /// A growth was refused: the guest hit its memory or table limit.
    pub(crate) refused: Option<&'static str>,
}

impl StoreLimiter {
    pub(crate) fn new(limits: &Limits) -> StoreLimiter {
        StoreLimiter {
            total: 0,
            peak: 0,
            memory_limit: limits.memory,
            table_limit: limits.table_elements,
            instance_limit: limits.instances,
            refused: None,
        }
    }
}

impl ResourceLimiter for StoreLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.total.saturating_add(desired.saturating_sub(current));
        if total > self.memory_limit {
            // `memory.grow` returns -1, as the Wasm spec lets a host do.
            self.refused = Some("memory limit");
            return Ok(false);
        }
        self.total = total;
        self.peak = self.peak.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.table_limit {
            self.refused = Some("table limit");
            return Ok(false);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.instance_limit
    }

    fn tables(&self) -> usize {
        self.instance_limit
    }

    fn memories(&self) -> usize {
        self.instance_limit
    }
}

impl HostState {
    pub(crate) fn new(io: Arc<IoMeter>, limits: &Limits, caps: Caps) -> Self {
        let work = HostWork::new(limits.host_memory);
        let mut wasi = WasiCtx::builder();
        caps.configure_wasi(&mut wasi);
        let wasi = wasi
            .secure_random(CountingRng::secure(work.random_counter()))
            .insecure_random(CountingRng::secure(work.random_counter()))
            .max_random_size(limits.max_random_size)
            .build();
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(crate::host::work::FIELD_SIZE_LIMIT);
        let mut table = ResourceTable::new();
        // Host resources live in host memory, outside the guest's linear
        // memory limit: cap how many one invocation may hold.
        table.set_max_capacity(limits.resources);
        HostState {
            wasi,
            http,
            table,
            limiter: StoreLimiter::new(limits),
            request_id: String::new(),
            io,
            work,
            ticks_run: 0,
            host_fuel_at_yield: 0,
            caps,
        }
    }
}

impl HostState {
    /// Readies a reused store for its next request: that request's byte
    /// counts, no refusal; the peak starts at the memory the instance
    /// already holds.
    pub(crate) fn begin(&mut self, io: Arc<IoMeter>) {
        self.io = io;
        self.work.begin();
        self.caps.reset();
        self.ticks_run = 0;
        self.host_fuel_at_yield = 0;
        self.limiter.peak = self.limiter.total;
        self.limiter.refused = None;
    }

    /// Counts the host resources (streams, fields, pollables, ...) the
    /// guest still holds between requests, and ends the body of any incoming
    /// request among them, whether the guest kept the request or the
    /// `incoming-body` it consumed: a guest that never drops its request
    /// (the StarlingMonkey runtime of componentize-js leaks one per request)
    /// must not pin the client's request body, and with it the connection.
    /// A guest that touches them again finds the body consumed or empty.
    /// (A body stream the guest took and kept stays, as gust cannot tell it
    /// from other input streams; `WarmPool::give_back` retires such an
    /// instance.)
    pub(crate) fn release_between_requests(&mut self) -> usize {
        let mut held = 0;
        for (_, entry) in self.table.iter_mut() {
            held += 1;
            if let Some(request) = entry.downcast_mut::<HostIncomingRequest>() {
                request.body = None;
            } else if let Some(body) = entry.downcast_mut::<HostIncomingBody>() {
                // Replaced rather than its stream taken: a dropped body
                // stream hands the body back to its `incoming-body`.
                *body = HostIncomingBody::new(
                    Empty::new().map_err(|never| match never {}).boxed_unsync(),
                );
            }
        }
        held
    }
}

impl HostState {
    /// The store's call hook: counts each call into the host and measures
    /// the host memory the guest holds (see `host_work`).
    pub(crate) fn on_host_call(&mut self) -> Result<(), HostMemoryExceeded> {
        let buffered = self.caps.blob.held_bytes();
        self.work.on_host_call(&mut self.table, buffered)
    }

    /// Measures the host memory the guest holds now, at the end of a
    /// request, for its record. Not charged: what is left in the table when
    /// the guest is done depends on timing, and the same request must cost
    /// the same.
    pub(crate) fn measure_host_memory(&mut self) {
        let buffered = self.caps.blob.held_bytes();
        self.work.measure(&mut self.table, buffered);
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
            hooks: &mut self.caps.outbound_http,
        }
    }
}
