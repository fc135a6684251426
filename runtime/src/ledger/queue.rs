//! The hand-off between request threads and the ledger writer.
//!
//! Records are pushed into a buffer under a mutex and the writer takes the
//! whole buffer at once. A push does not wake the writer (that was a futex
//! wake and a context switch per request, which cost more than the SQLite
//! insert); the writer wakes on its flush timer, when a batch's worth has
//! piled up, or for a control message.

use std::sync::mpsc;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

use super::UsageFilter;
use super::query::UsageRow;
use crate::metering::InvocationRecord;

/// Requests to the writer besides records, answered in order.
pub(crate) enum Control {
    /// Commit what is queued, then reply.
    Flush(mpsc::Sender<()>),
    /// Commit what is queued, then answer the query.
    Query(UsageFilter, mpsc::Sender<rusqlite::Result<Vec<UsageRow>>>),
    /// Commit what is queued and stop; later records are refused.
    Stop,
}

/// Why a record was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The buffer holds its capacity already.
    Full,
    /// The ledger was closed.
    Closed,
}

#[derive(Default)]
struct State {
    records: Vec<InvocationRecord>,
    control: Vec<Control>,
    closed: bool,
}

/// A bounded buffer of records plus the writer's control messages.
pub(crate) struct Queue {
    state: Mutex<State>,
    wake: Condvar,
    capacity: usize,
    batch: usize,
}

impl Queue {
    /// Holds at most `capacity` records; wakes the writer early once
    /// `batch` are waiting.
    pub(crate) fn new(capacity: usize, batch: usize) -> Queue {
        Queue {
            state: Mutex::default(),
            wake: Condvar::new(),
            capacity,
            batch: batch.clamp(1, capacity.max(1)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic (plain pushes and swaps).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a copy of `record`. Never blocks on the writer.
    pub(crate) fn push(&self, record: &InvocationRecord) -> Result<(), Refused> {
        let mut state = self.lock();
        if state.closed {
            return Err(Refused::Closed);
        }
        if state.records.len() >= self.capacity {
            return Err(Refused::Full);
        }
        state.records.push(record.clone());
        if state.records.len() == self.batch {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Sends a control message; `false` (and the message dropped, so any
    /// reply channel closes) when the ledger is closed. `Stop` closes it.
    pub(crate) fn control(&self, msg: Control) -> bool {
        let mut state = self.lock();
        if state.closed {
            return false;
        }
        state.closed = matches!(msg, Control::Stop);
        state.control.push(msg);
        self.wake.notify_one();
        true
    }

    /// Waits until `deadline`, a full batch or a control message, then
    /// moves every queued record into `records` (which must be empty) and
    /// returns the control messages.
    pub(crate) fn take(
        &self,
        deadline: Instant,
        records: &mut Vec<InvocationRecord>,
    ) -> Vec<Control> {
        let mut state = self.lock();
        loop {
            let now = Instant::now();
            if !state.control.is_empty() || state.records.len() >= self.batch || now >= deadline {
                break;
            }
            state = self
                .wake
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        // Swapping keeps both vectors' capacity: no allocation per batch.
        std::mem::swap(&mut state.records, records);
        std::mem::take(&mut state.control)
    }

    /// Records waiting for the writer.
    pub(crate) fn len(&self) -> usize {
        self.lock().records.len()
    }

    /// Marks the queue closed and drops pending control messages (closing
    /// their reply channels). For a writer that is exiting, so that nobody
    /// waits on it forever.
    pub(crate) fn shut(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.control.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ledger::test_record as record;

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    #[test]
    fn full_queue_refuses_and_keeps_what_it_has() {
        let queue = Queue::new(3, 3);
        for n in 0..3 {
            assert_eq!(queue.push(&record(n)), Ok(()));
        }
        assert_eq!(queue.push(&record(3)), Err(Refused::Full));
        let mut taken = Vec::new();
        // A full batch is waiting, so this returns at once.
        assert!(queue.take(far(), &mut taken).is_empty());
        let fuel: Vec<u64> = taken.iter().map(|r| r.fuel_consumed).collect();
        assert_eq!(fuel, [0, 1, 2]);
        assert_eq!(queue.push(&record(4)), Ok(()), "room again once taken");
    }

    #[test]
    fn take_waits_for_the_deadline_below_a_batch() {
        let queue = Queue::new(10, 5);
        queue.push(&record(1)).expect("room");
        let mut taken = Vec::new();
        let deadline = Instant::now() + Duration::from_millis(30);
        queue.take(deadline, &mut taken);
        assert!(Instant::now() >= deadline);
        assert_eq!(taken.len(), 1);
    }

    #[test]
    fn a_control_message_wakes_the_writer_with_earlier_records() {
        let queue = std::sync::Arc::new(Queue::new(10, 5));
        queue.push(&record(1)).expect("room");
        let writer = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                let mut taken = Vec::new();
                let controls = queue.take(far(), &mut taken);
                (taken.len(), controls.len())
            })
        };
        let (done, _wait) = mpsc::channel();
        assert!(queue.control(Control::Flush(done)));
        assert_eq!(writer.join().expect("writer"), (1, 1));
    }

    #[test]
    fn stop_closes_and_shut_drops_pending_replies() {
        let queue = Queue::new(10, 5);
        let (done, wait) = mpsc::channel();
        assert!(queue.control(Control::Flush(done)));
        assert!(queue.control(Control::Stop));
        assert_eq!(queue.push(&record(1)), Err(Refused::Closed));
        assert!(!queue.control(Control::Stop));
        queue.shut();
        // The flush's reply channel closed instead of hanging its caller.
        assert!(wait.recv().is_err());
    }
}
