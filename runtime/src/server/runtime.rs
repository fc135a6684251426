//! The tokio runtime guests are served on.

/// Task polls a worker makes between two polls for I/O and timers
/// (tokio's `event_interval`; tokio's default is 61).
///
/// A guest's poll can run for up to a time slice, and a guest making host
/// calls yields at most once per epoch tick, so with tokio's default a
/// worker busy with guests looked at its sockets only every ~61 ms: `/hello`
/// next to four guests looping on cheap host calls had a p50 of 13.4 ms,
/// next to four spinning ones 1.7 ms. At 2 they were 1.6 and 1.0 ms, with
/// `/hello` throughput unchanged (wrk, c=16 and 64, within noise).
pub const EVENT_INTERVAL: u32 = 2;

/// A multi-threaded runtime with I/O and timers, polling for I/O every
/// [`EVENT_INTERVAL`] task polls: what `gust serve` runs on. Embedders
/// serving guests should build theirs the same way.
pub fn runtime_builder() -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all().event_interval(EVENT_INTERVAL);
    builder
}
