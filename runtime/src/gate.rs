//! The CPU gate: at most `[engine].max_running` guests execute at once
//! (opt-in; unset, every pool slot is a turn and nobody waits), and short
//! invocations go before long ones.
//!
//! Without it every request instantiates at once and all guests share the
//! cores in time slices (`[engine].time_slice`): with 16 requests in flight each takes 16
//! times as long, 16 instances keep their memory hot, and a request that
//! needs 100 µs of CPU waits behind every busy guest.
//!
//! With it a new guest waits for a turn in the *fresh* queue and holds it
//! until it finishes, blocks on I/O, or has run for [`SLICE`] when a
//! time-slice yield comes. Blocking on I/O gives the turn up (waiting never holds a
//! core) and the guest resumes without queueing. A guest that used up a
//! slice queues again in the *long* queue, served only when no fresh
//! invocation waits: a busy guest gets the cores that short requests leave,
//! so it cannot make them wait more than one slice. Under sustained overload
//! long guests may wait until their deadline (504).

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// How long a guest keeps its turn across epoch yields.
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

/// Which queue a waiting guest is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Fresh = 0,
    Long = 1,
}

/// The turns of executing guests, shared by every function of an engine.
#[derive(Debug)]
pub struct Gate {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    free: usize,
    next_ticket: u64,
    /// Waiters by class, each in arrival order.
    queues: [VecDeque<(u64, Waker)>; 2],
}

impl State {
    /// Wakes whoever is next in line, if a turn is free.
    fn wake_next(&self) {
        if self.free == 0 {
            return;
        }
        let next = self.queues[0].front().or_else(|| self.queues[1].front());
        if let Some((_, waker)) = next {
            waker.wake_by_ref();
        }
    }

    fn is_next(&self, class: Class, ticket: Option<u64>) -> bool {
        let fresh_empty = self.queues[0].is_empty();
        match (class, ticket) {
            (Class::Fresh, None) => fresh_empty,
            (Class::Long, None) => fresh_empty && self.queues[1].is_empty(),
            (Class::Fresh, Some(t)) => self.queues[0].front().is_some_and(|(f, _)| *f == t),
            (Class::Long, Some(t)) => {
                fresh_empty && self.queues[1].front().is_some_and(|(f, _)| *f == t)
            }
        }
    }
}

impl Gate {
    /// A gate with `turns` turns.
    pub fn new(turns: usize) -> Gate {
        Gate {
            state: Mutex::new(State {
                free: turns.max(1),
                next_ticket: 0,
                queues: [VecDeque::new(), VecDeque::new()],
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A turn, given back on drop.
struct Turn<'a>(&'a Gate);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.free += 1;
        state.wake_next();
    }
}

/// A guest waiting for a turn; leaves its queue on drop.
struct Waiting<'a> {
    gate: &'a Gate,
    class: Class,
    ticket: Option<u64>,
}

impl<'a> Waiting<'a> {
    fn new(gate: &'a Gate, class: Class) -> Self {
        Waiting {
            gate,
            class,
            ticket: None,
        }
    }

    fn poll_turn(&mut self, cx: &mut Context<'_>) -> Poll<Turn<'a>> {
        let mut state = self.gate.lock();
        let queue = self.class as usize;
        if state.free > 0 && state.is_next(self.class, self.ticket) {
            state.free -= 1;
            if self.ticket.take().is_some() {
                state.queues[queue].pop_front();
            }
            state.wake_next();
            return Poll::Ready(Turn(self.gate));
        }
        match self.ticket {
            Some(ticket) => {
                if let Some(entry) = state.queues[queue].iter_mut().find(|(t, _)| *t == ticket) {
                    entry.1.clone_from(cx.waker());
                }
            }
            None => {
                let ticket = state.next_ticket;
                state.next_ticket += 1;
                state.queues[queue].push_back((ticket, cx.waker().clone()));
                self.ticket = Some(ticket);
            }
        }
        Poll::Pending
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket {
            let mut state = self.gate.lock();
            state.queues[self.class as usize].retain(|(t, _)| *t != ticket);
            state.wake_next();
        }
    }
}

/// The waker the guest is polled with: wakes the guest's task and notes
/// that it was woken, so that a `Pending` from a guest that woke itself in
/// the same poll (wasmtime's fuel yield, every fuel flush interval) counts
/// as a yield of a busy guest, not as a wait for I/O.
struct NotingWaker {
    woken: AtomicBool,
    task: Mutex<Waker>,
}

impl Wake for NotingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Relaxed);
        self.task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .wake_by_ref();
    }
}

/// Runs `guest`, holding a turn of `gate` while it executes (see the
/// module docs).
pub(crate) async fn gated<F: Future>(gate: &Gate, guest: F) -> F::Output {
    let mut guest = std::pin::pin!(guest);
    let mut turn: Option<(Turn<'_>, Instant)> = None;
    let mut waiting: Option<Waiting<'_>> = None;
    let mut needs_turn = Some(Class::Fresh);
    let noting = Arc::new(NotingWaker {
        woken: AtomicBool::new(false),
        task: Mutex::new(Waker::noop().clone()),
    });
    let waker = Waker::from(noting.clone());
    std::future::poll_fn(move |cx| {
        if let Some(class) = needs_turn {
            let wait = waiting.get_or_insert(Waiting::new(gate, class));
            match wait.poll_turn(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(granted) => {
                    waiting = None;
                    needs_turn = None;
                    turn = Some((granted, Instant::now()));
                }
            }
        }
        noting
            .task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone_from(cx.waker());
        noting.woken.store(false, Ordering::Relaxed);
        SLICE_YIELD.with(|y| y.set(false));
        let polled = guest.as_mut().poll(&mut Context::from_waker(&waker));
        let yielded =
            SLICE_YIELD.with(|y| y.replace(false)) || noting.woken.load(Ordering::Relaxed);
        if polled.is_ready() {
            turn = None;
        } else if !yielded {
            // Blocked on I/O: give the turn up, resume without one.
            turn = None;
        } else if turn
            .as_ref()
            .is_none_or(|(_, since)| since.elapsed() >= SLICE)
        {
            // Busy for a slice (or busy again after I/O): back of the line.
            turn = None;
            needs_turn = Some(Class::Long);
        }
        polled
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn free(gate: &Gate) -> usize {
        gate.lock().free
    }

    #[tokio::test]
    async fn waiting_for_io_gives_up_the_turn() {
        let gate = Arc::new(Gate::new(1));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let blocked = tokio::spawn({
            let gate = gate.clone();
            async move { gated(&gate, async { rx.await.ok() }).await }
        });
        tokio::task::yield_now().await;
        // The first guest is parked on I/O, so the second gets the turn.
        assert_eq!(gated(&gate, async { 42 }).await, 42);
        tx.send(()).unwrap();
        assert_eq!(blocked.await.unwrap(), Some(()));
        assert_eq!(free(&gate), 1);
    }

    #[tokio::test]
    async fn a_slice_yield_keeps_the_turn_until_the_slice_is_over() {
        let gate = Gate::new(1);
        let polls = AtomicUsize::new(0);
        let guest = std::future::poll_fn(|cx| {
            if polls.fetch_add(1, Ordering::Relaxed) == 3 {
                return Poll::Ready(());
            }
            note_slice_yield();
            cx.waker().wake_by_ref();
            Poll::Pending
        });
        let mut run = std::pin::pin!(gated(&gate, guest));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(run.as_mut().poll(&mut cx).is_pending());
        // Between polls of a short slice the turn is still held.
        assert_eq!(free(&gate), 0);
        run.await;
        assert_eq!(free(&gate), 1);
    }

    #[tokio::test]
    async fn a_guest_that_wakes_itself_is_busy_not_waiting() {
        let gate = Gate::new(1);
        let polls = AtomicUsize::new(0);
        // As wasmtime's fuel yield: wake, then `Pending`, no slice yield.
        let guest = std::future::poll_fn(|cx| {
            if polls.fetch_add(1, Ordering::Relaxed) == 3 {
                return Poll::Ready(());
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        });
        let mut run = std::pin::pin!(gated(&gate, guest));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(run.as_mut().poll(&mut cx).is_pending());
        assert_eq!(free(&gate), 0, "a busy guest keeps its turn");
        run.await;
        assert_eq!(free(&gate), 1);
    }

    /// The one turn of a free one-turn gate.
    fn only_turn<'a>(gate: &'a Gate, cx: &mut Context<'_>) -> Turn<'a> {
        match Waiting::new(gate, Class::Fresh).poll_turn(cx) {
            Poll::Ready(turn) => turn,
            Poll::Pending => panic!("the gate is free"),
        }
    }

    #[test]
    fn fresh_guests_go_before_long_ones() {
        let gate = Gate::new(1);
        let mut cx = Context::from_waker(Waker::noop());
        let first = only_turn(&gate, &mut cx);
        let mut long = Waiting::new(&gate, Class::Long);
        let mut fresh = Waiting::new(&gate, Class::Fresh);
        assert!(long.poll_turn(&mut cx).is_pending());
        assert!(fresh.poll_turn(&mut cx).is_pending());
        drop(first);
        // The long guest queued first, but a fresh one is waiting.
        assert!(long.poll_turn(&mut cx).is_pending());
        let Poll::Ready(second) = fresh.poll_turn(&mut cx) else {
            panic!("the fresh guest is next");
        };
        assert!(long.poll_turn(&mut cx).is_pending());
        drop(second);
        assert!(long.poll_turn(&mut cx).is_ready());
        assert_eq!(free(&gate), 1);
    }

    #[test]
    fn a_waiter_that_leaves_lets_the_next_one_in() {
        let gate = Gate::new(1);
        let mut cx = Context::from_waker(Waker::noop());
        let first = only_turn(&gate, &mut cx);
        let mut leaving = Waiting::new(&gate, Class::Fresh);
        let mut staying = Waiting::new(&gate, Class::Long);
        assert!(leaving.poll_turn(&mut cx).is_pending());
        assert!(staying.poll_turn(&mut cx).is_pending());
        drop(leaving);
        drop(first);
        assert!(staying.poll_turn(&mut cx).is_ready());
    }
}
