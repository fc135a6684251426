//! Per-invocation usage: what each request cost, for logs and billing.
//!
//! Fuel is wasmtime's count of executed Wasm instructions. Each invocation's
//! store starts with the function's budget, and the fuel consumed is exactly
//! `budget - remaining` when the invocation ends, whatever way it ends: the
//! same request to the same function costs the same on any machine.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::manifest::FunctionId;

/// How an invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The guest returned normally.
    Ok,
    /// The guest trapped (panic, `unreachable`, bad memory access, ...).
    Trap,
    /// The guest used its whole fuel budget.
    OutOfFuel,
    /// The invocation passed its wall-clock deadline.
    Timeout,
    /// No instance slot was free (the pool is at its limit).
    Overloaded,
    /// The guest returned without ever sending a response.
    NoResponse,
}

impl Outcome {
    /// The name used in logs and records.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Trap => "trap",
            Outcome::OutOfFuel => "out_of_fuel",
            Outcome::Timeout => "timeout",
            Outcome::Overloaded => "overloaded",
            Outcome::NoResponse => "no_response",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The usage record of one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationRecord {
    /// The server's id for the request (also sent as `x-request-id`).
    pub request_id: String,
    /// The function invoked.
    pub function: FunctionId,
    /// The route pattern that matched.
    pub route: String,
    /// When the invocation started.
    pub start: SystemTime,
    /// Wall time from invocation start until the guest finished (including
    /// streaming its response body).
    pub duration: Duration,
    /// Fuel consumed: budget minus remaining.
    pub fuel_consumed: u64,
    /// The fuel budget the invocation had.
    pub fuel_budget: u64,
    /// The HTTP status the client got.
    pub status: u16,
    /// How the invocation ended.
    pub outcome: Outcome,
}

/// Receives every invocation's record once the invocation has ended.
pub type RecordSink = Arc<dyn Fn(&InvocationRecord) + Send + Sync>;

/// Logs the record through `tracing` (target `gust::invocation`).
pub(crate) fn log(record: &InvocationRecord) {
    tracing::info!(
        target: "gust::invocation",
        request_id = %record.request_id,
        function = %record.function,
        route = %record.route,
        status = record.status,
        outcome = %record.outcome,
        fuel = record.fuel_consumed,
        duration_us = u64::try_from(record.duration.as_micros()).unwrap_or(u64::MAX),
        "invocation"
    );
}
