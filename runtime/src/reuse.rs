//! Instance reuse, a per-function opt-in (`reuse` > 1).
//!
//! By default every request gets a fresh instance. A guest that carries a
//! whole language runtime (CPython, SpiderMonkey) spends most of each request
//! re-initialising it, so a function may instead let one instance serve up to
//! `reuse` requests, one after another. The trade-off is isolation: the
//! guest's memory, globals and caches survive from one request to the next
//! (within one function, never across functions).
//!
//! An instance goes back to the idle list only after a request that ended
//! cleanly: the guest returned and sent a response. A trap, timeout or
//! cancellation discards it, and so does holding more than
//! [`MAX_IDLE_RESOURCES`] host resources between requests: handles a guest
//! leaks (componentize-js's runtime leaks its incoming request every time)
//! would otherwise pile up for as long as the instance lives. So does still
//! holding the request's body once leaked requests are released (a body
//! stream the guest kept), which would pin the client's connection. The idle list
//! holds at most the function's `concurrency` instances, each keeping its
//! pooling-allocator slot.

use std::sync::Mutex;

use wasmtime::Store;

use crate::host::HostState;
use crate::manifest::Limits;

/// Host resources an idle instance may hold (a runtime's cached stdout
/// stream, say, or leaked handles); past it the instance is retired.
pub(crate) const MAX_IDLE_RESOURCES: usize = 64;

/// An instance that has served requests and may serve another.
pub(crate) struct Warm {
    pub(crate) store: Store<HostState>,
    pub(crate) instance: wasmtime::component::Instance,
    /// Requests served so far.
    pub(crate) uses: u32,
}

/// The idle instances of one function.
pub(crate) struct WarmPool {
    idle: Mutex<Vec<Warm>>,
    max_idle: usize,
    max_uses: u32,
}

impl WarmPool {
    /// `None` unless the function opted in (`reuse` > 1).
    pub(crate) fn new(limits: &Limits) -> Option<WarmPool> {
        (limits.reuse > 1).then(|| WarmPool {
            idle: Mutex::new(Vec::new()),
            max_idle: limits.concurrency as usize,
            max_uses: limits.reuse,
        })
    }

    /// The most recently used idle instance, if any (its memory is the
    /// likeliest to be in cache).
    pub(crate) fn take(&self) -> Option<Warm> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    /// Keeps `warm` for a later request unless it has served its share,
    /// holds too many host resources, still holds the request's body once
    /// leaked requests are released (`body_ended` false: a body stream the
    /// guest kept, which would pin the client's connection), or enough are
    /// idle already; otherwise it is dropped (its slot freed, the body
    /// drained).
    pub(crate) fn give_back(&self, mut warm: Warm, body_ended: impl FnOnce() -> bool) {
        if warm.uses >= self.max_uses {
            return;
        }
        let held = warm.store.data_mut().release_between_requests();
        if held > MAX_IDLE_RESOURCES {
            tracing::debug!(
                held,
                uses = warm.uses,
                "instance retired: it holds too many host resources"
            );
            return;
        }
        if !body_ended() {
            tracing::debug!(
                uses = warm.uses,
                "instance retired: it still holds the request body"
            );
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle {
            idle.push(warm);
        }
    }

    /// Instances idle now, each holding its pooling-allocator slot.
    pub(crate) fn idle(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}
