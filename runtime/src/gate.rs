//! The start gate: at most `max_running` guests are in their first burst
//! of execution at once (by default one per CPU core); new invocations wait
//! their turn, first come first served.
//!
//! Without it every request instantiates at once and all guests share the
//! cores in 5 ms epoch slices: with 16 requests in flight each one takes 16
//! times as long and 16 instances keep their memory hot. With it a new
//! guest holds a turn from its instantiation until it finishes, first
//! blocks on I/O, or has run for [`SLICE`] when an epoch yield comes; after
//! that it runs without a turn. So a guest waiting on I/O never holds a
//! turn, a busy guest holds one for at most one slice, and a guest that
//! already started is never queued behind new ones.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, SemaphorePermit};

/// How long a guest keeps its turn across epoch yields while others wait.
pub(crate) const SLICE: Duration = Duration::from_millis(10);

thread_local! {
    /// Set by the epoch callback, which runs inside the guest's poll on
    /// this thread: the `Pending` that follows is a time-slice yield, not a
    /// wait for I/O.
    static SLICE_YIELD: Cell<bool> = const { Cell::new(false) };
}

/// Called by the epoch callback when it yields the guest.
pub(crate) fn note_slice_yield() {
    SLICE_YIELD.with(|y| y.set(true));
}

/// Runs `guest` holding a turn of `gate` while it executes.
pub(crate) async fn gated<F: Future>(gate: &Semaphore, guest: F) -> F::Output {
    let mut guest = std::pin::pin!(guest);
    let mut turn: Option<(SemaphorePermit<'_>, Instant)> = None;
    let mut waiting: Option<Pin<Box<dyn Future<Output = _> + Send + '_>>> = None;
    let mut started = false;
    std::future::poll_fn(move |cx| {
        if !started {
            if waiting.is_none() {
                match gate.try_acquire() {
                    Ok(permit) => {
                        turn = Some((permit, Instant::now()));
                        started = true;
                    }
                    Err(_) => waiting = Some(Box::pin(gate.acquire())),
                }
            }
            if let Some(wait) = waiting.as_mut() {
                match wait.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(permit) => {
                        waiting = None;
                        started = true;
                        // The gate is never closed; if it were, run ungated.
                        turn = permit.ok().map(|p| (p, Instant::now()));
                    }
                }
            }
        }
        SLICE_YIELD.with(|y| y.set(false));
        let polled = guest.as_mut().poll(cx);
        if polled.is_pending() {
            let slice_yield = SLICE_YIELD.with(|y| y.replace(false));
            let slice_over = turn
                .as_ref()
                .is_none_or(|(_, since)| since.elapsed() >= SLICE);
            if !slice_yield || slice_over {
                turn = None;
            }
        } else {
            turn = None;
        }
        polled
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn waiting_for_io_gives_up_the_turn() {
        let gate = Arc::new(Semaphore::new(1));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let blocked = tokio::spawn({
            let gate = gate.clone();
            async move { gated(&gate, async { rx.await.ok() }).await }
        });
        tokio::task::yield_now().await;
        // The first guest is parked on I/O, so the second gets the turn.
        let ran = gated(&gate, async { 42 }).await;
        assert_eq!(ran, 42);
        tx.send(()).unwrap();
        assert_eq!(blocked.await.unwrap(), Some(()));
        assert_eq!(gate.available_permits(), 1);
    }

    #[tokio::test]
    async fn a_slice_yield_keeps_the_turn_until_the_slice_is_over() {
        let gate = Semaphore::new(1);
        let polls = AtomicUsize::new(0);
        let guest = std::future::poll_fn(|cx| {
            if polls.fetch_add(1, Ordering::Relaxed) == 3 {
                return Poll::Ready(());
            }
            note_slice_yield();
            cx.waker().wake_by_ref();
            Poll::Pending
        });
        let run = gated(&gate, guest);
        let mut run = std::pin::pin!(run);
        // Between polls the turn is still held: nobody else gets in.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        assert!(run.as_mut().poll(&mut cx).is_pending());
        assert_eq!(gate.available_permits(), 0);
        run.await;
        assert_eq!(gate.available_permits(), 1);
    }
}
