//! Work the host does for a guest: what it costs in fuel, and the host
//! memory it holds.
//!
//! Fuel counts Wasm instructions, but a guest can also make the host work:
//! every call into a WASI interface, every byte of randomness, every request
//! body frame hyper decodes. That work is charged from the same budget at
//! the fixed rates below (so the same request costs the same everywhere),
//! and the memory the host holds for the guest (`wasi:http` fields, body
//! buffers, resource entries) is measured and capped by the function's
//! `host_memory` limit, outside the guest's linear `memory`.
//!
//! Both are tracked from the store's call hook, which wasmtime runs on every
//! call from Wasm into the host: it counts the call and, every so often,
//! walks the resource table to measure what it holds. How often is chosen
//! so that no guest can pass its limit by more than one call's growth
//! between two walks, and each walk is charged per entry, so a guest that
//! makes walks expensive pays for them.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::component::ResourceTable;
use wasmtime_wasi_http::FieldMap;
use wasmtime_wasi_http::p2::body::HostOutgoingBody;
use wasmtime_wasi_http::p2::types::{HostOutgoingRequest, HostOutgoingResponse};

use crate::metering::{HOST_CALL_FUEL, RANDOM_FUEL_PER_BYTE, SCAN_ENTRY_FUEL};

/// What one resource-table entry costs the host besides its contents
/// (the table slot, the boxed value, its bookkeeping), bytes.
const ENTRY_BYTES: usize = 128;

/// What one header name or value costs beside its bytes (the `HeaderMap`
/// entry), bytes; HTTP/2's header-list accounting uses the same 32.
const FIELD_OVERHEAD_BYTES: usize = 32;

/// The size of each chunk a p2 outgoing body buffers. wasmtime's default is
/// 1 MiB; two such chunks per body (wasmtime keeps one spare slot) in every
/// response a guest leaves unsent would make bodies the largest host buffer.
pub(crate) const OUTGOING_BODY_CHUNK: usize = 64 * 1024;

/// Host memory a p2 outgoing body can hold until its reader takes it: the
/// chunk in flight and the spare slot.
const OUTGOING_BODY_BYTES: usize = 2 * OUTGOING_BODY_CHUNK;

/// The most one host call can add to the host memory a guest holds: a
/// `fields` mutation that copies a shared map up to the field size limit
/// and adds up to that much again, or one outgoing body chunk.
const MAX_GROWTH_PER_CALL: usize = 2 * FIELD_SIZE_LIMIT + OUTGOING_BODY_CHUNK;

/// The largest one `fields` may grow (wasmtime-wasi-http's default, set
/// explicitly so [`MAX_GROWTH_PER_CALL`] stays true).
pub(crate) const FIELD_SIZE_LIMIT: usize = 128 * 1024;

/// The host work and host memory of one invocation (one store).
#[derive(Debug)]
pub(crate) struct HostWork {
    /// Calls from the guest into the host.
    calls: u64,
    /// Resource-table entries walked to measure memory.
    scanned: u64,
    /// The call count at which the table is walked next.
    next_scan: u64,
    /// Host memory held at the last walk, and its peak.
    held: usize,
    peak: usize,
    limit: usize,
    /// Bytes of randomness handed out, counted by [`CountingRng`].
    random_bytes: Arc<AtomicU64>,
    /// Fuel charged by capabilities (key-value, blob, outbound HTTP) for
    /// the backend work they did (see [`HostWork::charge`]).
    charged: u64,
}

/// The guest held more host memory than its `host_memory` limit allows.
#[derive(Debug)]
pub(crate) struct HostMemoryExceeded {
    pub(crate) held: usize,
    pub(crate) limit: usize,
}

impl std::fmt::Display for HostMemoryExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the guest held {} bytes of host memory (fields, bodies, resources), past its host_memory limit of {}",
            self.held, self.limit
        )
    }
}

impl std::error::Error for HostMemoryExceeded {}

impl HostWork {
    pub(crate) fn new(limit: usize) -> HostWork {
        HostWork {
            calls: 0,
            scanned: 0,
            next_scan: 0,
            held: 0,
            peak: 0,
            limit,
            random_bytes: Arc::default(),
            charged: 0,
        }
    }

    /// The counter a [`CountingRng`] of this store adds to.
    pub(crate) fn random_counter(&self) -> Arc<AtomicU64> {
        self.random_bytes.clone()
    }

    /// Starts a new request on a reused store: its charges start at zero;
    /// the memory the instance still holds is its starting peak.
    pub(crate) fn begin(&mut self) {
        self.calls = 0;
        self.scanned = 0;
        self.next_scan = 0;
        self.peak = self.held;
        self.random_bytes.store(0, Ordering::Relaxed);
        self.charged = 0;
    }

    /// Charges `fuel` for host work a capability did for the guest (a
    /// key-value operation, blob bytes, an outbound request; the rates are
    /// in `metering`). Paid from the invocation's budget like every host
    /// charge: checked at the next epoch tick.
    pub(crate) fn charge(&mut self, fuel: u64) {
        self.charged = self.charged.saturating_add(fuel);
    }

    /// Counts one call into the host; walks `table` when it is due and
    /// fails once the guest holds more than its limit.
    pub(crate) fn on_host_call(
        &mut self,
        table: &mut ResourceTable,
        buffered: usize,
    ) -> Result<(), HostMemoryExceeded> {
        self.calls += 1;
        if self.calls < self.next_scan {
            return Ok(());
        }
        let entries = self.measure(table, buffered);
        // Charged: the guest's calls decide when walks happen and how
        // long they are.
        self.scanned += entries as u64;
        self.check()
    }

    /// Takes back the count of the call that reached the epoch callback:
    /// wasmtime runs the call hook for its own libcalls too, and the epoch
    /// check is one whose count depends on timing (the others, memory
    /// growth and fuel portions, follow the guest's work). The same request
    /// must cost the same fuel.
    pub(crate) fn uncount_epoch_call(&mut self) {
        self.calls = self.calls.saturating_sub(1);
    }

    /// Walks `table` now: the memory held (plus `buffered`, what
    /// capabilities' streams buffer outside the table's entries, e.g. blob
    /// storage) and its peak. Returns the number of entries walked.
    pub(crate) fn measure(&mut self, table: &mut ResourceTable, buffered: usize) -> usize {
        let (held, entries) = held_bytes(table);
        let held = held.saturating_add(buffered);
        self.held = held;
        self.peak = self.peak.max(held);
        entries
    }

    /// Fails past the limit; otherwise schedules the next walk.
    fn check(&mut self) -> Result<(), HostMemoryExceeded> {
        let held = self.held;
        if held > self.limit {
            return Err(HostMemoryExceeded {
                held,
                limit: self.limit,
            });
        }
        // No call can grow the held memory by more than
        // `MAX_GROWTH_PER_CALL`, so the limit cannot be passed by more than
        // one call before the next walk. At least every 1,024 calls, so the
        // peak stays close for the record.
        let room = (self.limit - held) / MAX_GROWTH_PER_CALL;
        self.next_scan = self.calls + room.clamp(1, 1024) as u64;
        Ok(())
    }

    /// The most host memory held at any walk of this request, bytes.
    pub(crate) fn peak(&self) -> usize {
        self.peak
    }

    /// Host fuel owed for calls, randomness and walks so far (body bytes
    /// and frames are counted by `IoMeter`).
    pub(crate) fn fuel(&self) -> u64 {
        let random = self
            .random_bytes
            .load(Ordering::Relaxed)
            .saturating_mul(RANDOM_FUEL_PER_BYTE);
        self.calls
            .saturating_mul(HOST_CALL_FUEL)
            .saturating_add(random)
            .saturating_add(self.scanned.saturating_mul(SCAN_ENTRY_FUEL))
            .saturating_add(self.charged)
    }
}

/// The host memory `table` holds for the guest, and how many entries it has.
///
/// Counted: every entry's own cost, the names and values of every `fields`
/// (standalone or inside an outgoing request or response; maps shared
/// between entries, as a request's headers and their clones are, once),
/// and the buffer of every p2 outgoing body not yet handed to its reader.
fn held_bytes(table: &mut ResourceTable) -> (usize, usize) {
    let mut held = 0usize;
    let mut entries = 0usize;
    let mut seen: HashSet<*const http::HeaderMap> = HashSet::new();
    let mut map_bytes = |map: &FieldMap| -> usize {
        let header_map: &http::HeaderMap = map;
        if !seen.insert(header_map as *const _) {
            return 0;
        }
        header_map
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + FIELD_OVERHEAD_BYTES)
            .sum()
    };
    for (_, entry) in table.iter_mut() {
        let entry: &(dyn std::any::Any + Send) = entry;
        entries += 1;
        held += ENTRY_BYTES;
        if let Some(map) = entry.downcast_ref::<FieldMap>() {
            held += map_bytes(map);
        } else if let Some(response) = entry.downcast_ref::<HostOutgoingResponse>() {
            held += map_bytes(&response.headers);
            if response.body.is_some() {
                held += OUTGOING_BODY_BYTES;
            }
        } else if let Some(request) = entry.downcast_ref::<HostOutgoingRequest>() {
            held += map_bytes(&request.headers);
            if request.body.is_some() {
                held += OUTGOING_BODY_BYTES;
            }
        } else if let Some(request) = entry.downcast_ref::<wasmtime_wasi_http::p3::Request>() {
            held += map_bytes(&request.headers);
        } else if let Some(response) = entry.downcast_ref::<wasmtime_wasi_http::p3::Response>() {
            held += map_bytes(&response.headers);
        } else if entry.is::<HostOutgoingBody>() {
            held += OUTGOING_BODY_BYTES;
        }
    }
    (held, entries)
}

/// A `wasi:random` generator that counts the bytes it generates, so they
/// can be charged ([`RANDOM_FUEL_PER_BYTE`]). wasmtime-wasi draws one
/// 32-bit word per byte of `get-random-bytes`, so a call of `n` bytes
/// generates `4 n`: the count follows the generator's work, not the length.
pub(crate) struct CountingRng {
    inner: rand::rngs::StdRng,
    bytes: Arc<AtomicU64>,
}

impl CountingRng {
    /// A cryptographically secure generator (what wasmtime-wasi uses by
    /// default: ChaCha seeded from the thread's generator) counting into
    /// `bytes`.
    pub(crate) fn secure(bytes: Arc<AtomicU64>) -> CountingRng {
        CountingRng {
            inner: rand::SeedableRng::from_rng(&mut rand::rng()),
            bytes,
        }
    }

    fn count(&self, n: usize) {
        // Only the store's own thread generates, one call at a time: a
        // load and a store, not a locked read-modify-write per byte.
        let total = self.bytes.load(Ordering::Relaxed);
        self.bytes
            .store(total.wrapping_add(n as u64), Ordering::Relaxed);
    }
}

impl rand::TryRng for CountingRng {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        self.count(4);
        self.inner.try_next_u32()
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.count(8);
        self.inner.try_next_u64()
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.count(dst.len());
        self.inner.try_fill_bytes(dst)
    }
}

/// Host memory peaks at or above this many bytes are handed back to the
/// system when their invocation ends.
const TRIM_AFTER_PEAK: usize = 1 << 20;

/// Called when an invocation's store is gone, with the host memory it held
/// at its peak: after a large one, glibc's allocator is asked to return its
/// free pages to the system, once for all that end within 100 ms, and off
/// the async threads. Without it, memory freed by many small allocations (a guest's
/// fields) stays in the allocator's arenas and the process stays at its
/// peak resident size.
pub(crate) fn after_release(host_peak: usize) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::sync::atomic::AtomicBool;
        use std::time::{Duration, Instant};
        static PENDING: AtomicBool = AtomicBool::new(false);
        if host_peak < TRIM_AFTER_PEAK || PENDING.swap(true, Ordering::AcqRel) {
            return;
        }
        let trim = || {
            // Trims after the invocations that end within the next 100 ms
            // too, rather than once per invocation.
            std::thread::sleep(Duration::from_millis(100));
            let started = Instant::now();
            PENDING.store(false, Ordering::Release);
            trim_allocator();
            tracing::debug!(took = ?started.elapsed(), "returned freed host memory to the system");
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::task::spawn_blocking(trim);
        } else {
            trim();
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = host_peak;
}

/// Asks glibc to give free memory at the top of its heaps, and free pages
/// inside them, back to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_allocator() {
    // SAFETY: `malloc_trim` takes no pointers, only inspects the allocator's
    // own state under its locks, and is safe to call from any thread at any
    // time.
    unsafe {
        libc::malloc_trim(0);
    }
}
