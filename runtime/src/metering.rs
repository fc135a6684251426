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
    /// The client went away before the response was complete; the guest's
    /// work was cancelled.
    ClientGone,
    /// The response body passed the function's `max_response_size`: the
    /// stream was cut and the guest stopped.
    ResponseTooLarge,
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
            Outcome::ClientGone => "client_gone",
            Outcome::ResponseTooLarge => "response_too_large",
        }
    }

    /// Parses [`Outcome::as_str`]'s names.
    pub fn parse(name: &str) -> Option<Outcome> {
        [
            Outcome::Ok,
            Outcome::Trap,
            Outcome::OutOfFuel,
            Outcome::Timeout,
            Outcome::Overloaded,
            Outcome::NoResponse,
            Outcome::ClientGone,
            Outcome::ResponseTooLarge,
        ]
        .into_iter()
        .find(|o| o.as_str() == name)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Host work is charged in fuel from the same budget as Wasm execution, so
/// that moving data is not free: one unit of fuel per this many body bytes
/// (request and response bodies alike), rounded up per invocation.
///
/// A Wasm instruction costs roughly a nanosecond; copying a body byte
/// through hyper and the `wasi:io` streams costs a fraction of that, so 8
/// bytes per fuel keeps host and guest work on the same scale.
pub const BODY_BYTES_PER_FUEL: u64 = 8;

// The rates below follow what the work costs on the machine where they
// were measured (release build, `gust calibrate`: 0.118 ns per fuel, about
// 8.5 fuel per ns of the reference Wasm loop); see the README's billing
// section for the measurements.

/// Fuel charged for every call from the guest into the host. Measured: a
/// `get-random-u64` round trip ~75 ns, a `fields` call ~125 ns, a call
/// returning 8 random bytes ~140 ns.
pub const HOST_CALL_FUEL: u64 = 1_000;

/// Fuel charged per byte the `wasi:random` generator produces (wasmtime-wasi
/// draws 4 per byte requested: ~2.5 ns per requested byte measured).
pub const RANDOM_FUEL_PER_BYTE: u64 = 6;

/// Fuel charged per request body frame the guest receives: hyper decodes
/// it and the host hands it over through `wasi:io`, ~1.8 µs of CPU a frame
/// beside the guest's read call (1,000,000 one-byte chunks took 2.0 s of
/// CPU). A body sent as millions of tiny chunks costs what it makes the
/// host do.
pub const BODY_FRAME_FUEL: u64 = 15_000;

/// Fuel charged per resource-table entry each time the host walks the
/// table to measure the memory it holds (~5 ns an entry).
pub const SCAN_ENTRY_FUEL: u64 = 50;

/// Fuel charged per key-value operation (`get`, `set`, `increment`, one
/// key of a batch, ...), beside [`body_fuel`] of the key and value bytes
/// (opening a bucket is a plain host call). Measured (`cargo bench -p
/// gust-benches --bench key_value`: a guest doing 200 operations a
/// request, less the same request doing none, best of 5): gust's CPU per
/// operation, on SQLite and on Redis, 16-20 us for `get`, 19-30 us for
/// `set`, 23-44 us for `increment` (SQLite's is a write transaction) with
/// the machine otherwise quiet (threads parked and woken for every
/// operation), about half that under load; ~24 us is 200,000 fuel.
pub const KV_OP_FUEL: u64 = 200_000;

/// Fuel charged per blob storage operation (open, write, read, list,
/// delete, one name of `delete-objects`), beside [`body_fuel`] of the bytes
/// moved. Measured (`cargo bench -p gust-benches --bench blob`, group
/// `blob_op`): 1,000 `has-object` calls on a filesystem container cost
/// 18-60 µs each more than one (a stat off the async threads, measured on
/// a two-core machine at load 4-6, so inflated), ~150,000-500,000 fuel at
/// the rate above; an operation without I/O (opening a container) costs
/// far less, so the charge is set at ~12 µs.
pub const BLOB_OP_FUEL: u64 = 100_000;

/// Fuel charged per outbound HTTP request (or in-process call to another
/// function), beside [`body_fuel`] of the bytes sent and received.
/// (Provisional; the composition benchmark measures it.)
pub const OUTBOUND_REQUEST_FUEL: u64 = 100_000;

/// The fuel charged for moving `bytes` of body.
pub fn body_fuel(bytes: u64) -> u64 {
    bytes.div_ceil(BODY_BYTES_PER_FUEL)
}

/// The usage record of one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationRecord {
    /// The app the function belongs to.
    pub app: FunctionId,
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
    /// Fuel billed: Wasm fuel plus host fuel, at most the budget.
    pub fuel_consumed: u64,
    /// The part of `fuel_consumed` charged for host work
    /// ([`body_fuel`] of the body bytes).
    pub host_fuel: u64,
    /// The fuel budget the invocation had.
    pub fuel_budget: u64,
    /// Peak memory, bytes: the instance's linear memory (all its memories)
    /// plus the host memory held for the guest (`Limits::host_memory`).
    pub peak_memory_bytes: u64,
    /// Request body bytes the guest read.
    pub request_bytes: u64,
    /// Response body bytes sent towards the client.
    pub response_bytes: u64,
    /// The cost at the function's prices, in nano-units of `currency`.
    pub cost_nanos: u64,
    /// The currency of `cost_nanos`.
    pub currency: String,
    /// The HTTP status the client got.
    pub status: u16,
    /// How the invocation ended.
    pub outcome: Outcome,
    /// For an in-process call from another function of the app
    /// (`http://NAME.gust.internal`), the caller's request id; this
    /// record's id is the caller's followed by `.N`. `None` for a
    /// client's request.
    pub parent_request_id: Option<String>,
    /// Outbound HTTP requests the guest sent (in-process calls included;
    /// denied ones are not sent, so not counted).
    pub outbound_requests: u64,
    /// Body bytes of those requests, sent and received.
    pub outbound_bytes: u64,
}

/// Receives every invocation's record once the invocation has ended.
pub type RecordSink = Arc<dyn Fn(&InvocationRecord) + Send + Sync>;

/// Logs the record through `tracing` (target `gust::invocation`).
pub(crate) fn log(record: &InvocationRecord) {
    tracing::info!(
        target: "gust::invocation",
        request_id = %record.request_id,
        app = %record.app,
        function = %record.function,
        route = %record.route,
        status = record.status,
        outcome = %record.outcome,
        fuel = record.fuel_consumed,
        host_fuel = record.host_fuel,
        peak_memory = record.peak_memory_bytes,
        request_bytes = record.request_bytes,
        response_bytes = record.response_bytes,
        cost_nanos = record.cost_nanos,
        parent = record.parent_request_id.as_deref().unwrap_or(""),
        outbound_requests = record.outbound_requests,
        outbound_bytes = record.outbound_bytes,
        duration_us = u64::try_from(record.duration.as_micros()).unwrap_or(u64::MAX),
        "invocation"
    );
}
