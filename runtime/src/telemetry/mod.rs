//! What gust tells the operator about itself while it serves: Prometheus
//! metrics ([`metrics`], rendered by the admin listener's `/metrics`) and
//! OpenTelemetry traces over OTLP ([`traces`], when configured).

pub mod metrics;
pub mod traces;

pub use metrics::Metrics;
