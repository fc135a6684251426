//! Prometheus metrics per app and function (work in progress).

/// The process's metrics registry.
#[derive(Clone, Default)]
pub struct Metrics {}
