//! Per-function admission control: at most `concurrency` invocations of a
//! function run at once, up to `queue` more wait (first come, first served)
//! for at most `queue_timeout`, and the rest are refused at once. A refused
//! request gets 503 with `Retry-After`; it never reached the function, so it
//! has no usage record.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::manifest::Limits;

/// The slots and waiting room of one function.
#[derive(Debug)]
pub(crate) struct Admission {
    slots: Arc<Semaphore>,
    waiting: AtomicU32,
    queue: u32,
    queue_timeout: Duration,
    concurrency: u32,
    /// Requests refused, by reason (`QueueFull`, `QueueTimeout`), for
    /// metrics: a refused request has no usage record.
    refused: [AtomicU64; 2],
}

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Every slot is busy and the queue is full.
    QueueFull,
    /// The request waited `queue_timeout` without a slot freeing up.
    QueueTimeout,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refused::QueueFull => "the function's concurrency limit and queue are full",
            Refused::QueueTimeout => "no slot freed up within the function's queue timeout",
        })
    }
}

/// Leaves the waiting room when dropped (admitted, timed out or cancelled).
struct Waiting<'a>(&'a AtomicU32);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Admission {
    pub(crate) fn new(limits: &Limits) -> Admission {
        Admission {
            slots: Arc::new(Semaphore::new(limits.concurrency as usize)),
            waiting: AtomicU32::new(0),
            queue: limits.queue,
            queue_timeout: limits.queue_timeout,
            concurrency: limits.concurrency,
            refused: Default::default(),
        }
    }

    /// A slot, held by the invocation until it ends.
    pub(crate) async fn admit(&self) -> Result<OwnedSemaphorePermit, Refused> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            self.refused[0].fetch_add(1, Ordering::Relaxed);
            return Err(Refused::QueueFull);
        }
        let _waiting = Waiting(&self.waiting);
        match tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; treat it like a timeout anyway.
            Ok(Err(_)) | Err(_) => {
                self.refused[1].fetch_add(1, Ordering::Relaxed);
                Err(Refused::QueueTimeout)
            }
        }
    }

    /// Invocations admitted and not yet ended.
    pub(crate) fn in_flight(&self) -> u32 {
        let free = u32::try_from(self.slots.available_permits()).unwrap_or(u32::MAX);
        self.concurrency.saturating_sub(free)
    }

    /// Requests waiting for a slot.
    pub(crate) fn queued(&self) -> u32 {
        self.waiting.load(Ordering::Relaxed).min(self.queue)
    }

    /// Requests refused so far: (queue full, queue timeout).
    pub(crate) fn refused(&self) -> (u64, u64) {
        (
            self.refused[0].load(Ordering::Relaxed),
            self.refused[1].load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(concurrency: u32, queue: u32, timeout_ms: u64) -> Limits {
        Limits {
            concurrency,
            queue,
            queue_timeout: Duration::from_millis(timeout_ms),
            ..Limits::default()
        }
    }

    #[tokio::test]
    async fn slots_then_queue_then_refusal() {
        let l = limits(2, 1, 10_000);
        let admission = Arc::new(Admission::new(&l));
        let a = admission.admit().await.unwrap();
        let _b = admission.admit().await.unwrap();
        assert_eq!(admission.slots.available_permits(), 0);
        let waiter = tokio::spawn({
            let admission = admission.clone();
            async move { admission.admit().await.map(drop) }
        });
        // Let the waiter take the one queue place.
        while admission.waiting.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(admission.admit().await.err(), Some(Refused::QueueFull));
        drop(a);
        assert_eq!(waiter.await.unwrap(), Ok(()));
        assert_eq!(admission.waiting.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn waiting_too_long_is_refused() {
        let l = limits(1, 5, 20);
        let admission = Admission::new(&l);
        let _held = admission.admit().await.unwrap();
        assert_eq!(admission.admit().await.err(), Some(Refused::QueueTimeout));
        assert_eq!(admission.waiting.load(Ordering::Acquire), 0);
    }
}
