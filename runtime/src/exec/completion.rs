//! The usage record of one invocation, finished when everyone involved has
//! let go of it.
//!
//! The guest task holds the [`Completion`], and so may the trigger (the HTTP
//! trigger's response body does, to count the bytes actually sent and tell
//! a client that went away). The last one to drop it finishes the record:
//! the trigger adjusts what it knows ([`TriggerEnd`]), then the body bytes,
//! host fuel and cost are added, the quota settled, and the record logged
//! and handed to every sink.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::Notify;

use super::tracked::Tracked;
use crate::billing::{Prices, Usage};
use crate::host::IoMeter;
use crate::host::capability::output::GuestOutput;
use crate::metering::{InvocationRecord, Outcome, RecordSink};
use crate::quota::Reservation;
use crate::telemetry::traces::Invocation;

/// What a trigger adds to the record when the invocation is over.
pub(crate) trait TriggerEnd: Send + Sync + 'static {
    /// Adjusts the record: the status the client got, an outcome only the
    /// trigger can see (the client went away mid-response, ...).
    fn finish(&self, record: &mut InvocationRecord);

    /// Whether the guest gave the trigger what it asked for (the HTTP
    /// trigger: a response). An instance is only reused after a clean call
    /// that did.
    fn answered(&self) -> bool {
        true
    }

    /// Whether what the trigger handed the guest (a request body) no longer
    /// holds anything outside the instance, so the instance may be reused.
    fn released(&self) -> bool {
        true
    }
}

/// Shared by the guest task and the trigger; the last one to let go
/// finishes the record and hands it out.
pub(crate) struct Completion {
    pub(crate) record: Mutex<InvocationRecord>,
    /// The guest ended abnormally: an unfinished response must not look
    /// whole.
    pub(crate) guest_failed: AtomicBool,
    /// Stops the guest task (its client is gone, its output was cut).
    pub(crate) cancel: Arc<Notify>,
    pub(crate) io: Arc<IoMeter>,
    pub(crate) prices: Arc<Prices>,
    pub(crate) quota: Option<Reservation>,
    pub(crate) sinks: Arc<[RecordSink]>,
    /// Server shutdown waits for the record and cancels at the grace's end.
    pub(crate) shutdown: Tracked,
    pub(crate) trigger: Arc<dyn TriggerEnd>,
    /// The invocation's span, ended with the record.
    pub(crate) trace: Invocation,
}

impl Completion {
    /// The guest task is done: its outcome, fuel, peak memory and output.
    pub(crate) fn guest_done(
        &self,
        outcome: Outcome,
        (wasm_fuel, work_fuel): (u64, u64),
        peak: u64,
        duration: std::time::Duration,
        (stdout, stderr): (GuestOutput, GuestOutput),
    ) {
        let mut record = self.record.lock().unwrap_or_else(|e| e.into_inner());
        stdout.log("stdout", &record.app, &record.function, &record.request_id);
        stderr.log("stderr", &record.app, &record.function, &record.request_id);
        // Wasm fuel and the host calls' fuel; the bodies' host fuel is
        // added once the trigger is done too.
        record.fuel_consumed = wasm_fuel.saturating_add(work_fuel);
        record.host_fuel = work_fuel;
        record.outcome = outcome;
        record.peak_memory_bytes = peak;
        record.duration = duration;
        if outcome != Outcome::Ok {
            tracing::warn!(
                request_id = %record.request_id,
                function = %record.function,
                %outcome,
                "invocation did not end normally"
            );
        }
    }

    /// Notes that the guest ended abnormally (before its store goes).
    pub(crate) fn guest_failed(&self) {
        self.guest_failed.store(true, Ordering::Release);
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        let mut record = self
            .record
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        self.trigger.finish(&mut record);
        record.request_bytes = self.io.request_bytes();
        record.response_bytes = self.io.response_bytes();
        let body_fuel = self.io.host_fuel();
        record.host_fuel = record.host_fuel.saturating_add(body_fuel);
        record.fuel_consumed = record
            .fuel_consumed
            .saturating_add(body_fuel)
            .min(record.fuel_budget);
        record.cost_nanos = self.prices.cost(&Usage {
            fuel: record.fuel_consumed,
            peak_memory_bytes: record.peak_memory_bytes,
            wall_nanos: u64::try_from(record.duration.as_nanos()).unwrap_or(u64::MAX),
            request_bytes: record.request_bytes,
            response_bytes: record.response_bytes,
        });
        if let Some(reservation) = self.quota.take() {
            reservation.settle(SystemTime::now(), record.fuel_consumed);
        }
        crate::metering::log(&record);
        for sink in self.sinks.iter() {
            sink(&record);
        }
        self.trace.finish(&record);
    }
}
