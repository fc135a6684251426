//! Prometheus metrics per app and function, rendered by the admin
//! listener's `GET /metrics` in the OpenMetrics text format (or the
//! Prometheus text format 0.0.4 for a scraper that does not accept
//! OpenMetrics), encoded by the Prometheus project's `prometheus-client`.
//!
//! Two kinds of metrics, one module each:
//!
//! - `record`: counted as invocations end, from their usage records (an
//!   [`App::on_invocation`] sink attached by [`Metrics::attach`]), plus
//!   what each app load did with the compile cache;
//! - `scrape`: read when scraped, from the apps being served, the engine's
//!   pooling allocator, the ledger and the deployer.
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `gust_requests_total` | counter | app, function, status, outcome | invocations ended (in-process calls included), by HTTP status and [`crate::Outcome`] |
//! | `gust_request_duration_seconds` | histogram | app, function | invocation wall time, until the guest finished streaming its response |
//! | `gust_fuel_consumed_total` | counter | app, function | fuel billed (Wasm plus host work) |
//! | `gust_instances` | gauge | app, function, state | instances of the function: `active` (admitted invocations) and `idle` (kept for reuse) |
//! | `gust_admission_queued` | gauge | app, function | requests waiting for a concurrency slot |
//! | `gust_admission_refused_total` | counter | app, function, reason | requests refused with 503 before reaching the function: `queue_full`, `queue_timeout` (since the app's version was loaded) |
//! | `gust_function_resident` | gauge | app, function | 1 when the function's component is loaded (a lazily loaded one: after its first request) |
//! | `gust_pool_slots_in_use` | gauge | engine, slot | the pooling allocator's slots in use per engine (`p2`, `p3`): `component_instances`, `core_instances`, `memories`, `tables`, `stacks` |
//! | `gust_compile_cache_hits_total` | counter | app | components taken from the compile cache by the app's loads |
//! | `gust_compile_cache_compiled_total` | counter | app | components compiled by the app's loads |
//! | `gust_ledger_records_written_total` | counter | | usage records committed to the ledger |
//! | `gust_ledger_records_dropped_total` | counter | | usage records lost (queue full or failed commit) |
//! | `gust_ledger_records_queued` | gauge | | usage records waiting to be committed (the ledger's lag) |
//! | `gust_ledger_write_errors_total` | counter | | failed commits, ledger files found removed or replaced |
//! | `gust_ledger_records_lost_total` | counter | | records committed to a ledger file then removed or replaced |
//! | `gust_deploys_total` | counter | app, result | deploys through the admin API: `ok`, `failed` |
//! | `gust_rollbacks_total` | counter | app | rollbacks through the admin API |
//! | `gust_guest_log_bytes_dropped_total` | counter | | guest stdout/stderr bytes not logged (capture limit or log rate) |
//!
//! Series of the first kind appear when an app is attached (every
//! function at zero) and live as long as the [`Metrics`]: they go on
//! across new versions of an app. The admission counters belong to the
//! loaded version and start again from zero when it is replaced.

mod record;
mod scrape;

use std::sync::Arc;

use prometheus_client::registry::{Registry, Unit};

use crate::app::{App, Apps};
use crate::engine::GustEngine;
use crate::ledger::Ledger;
use record::Recorder;
pub use scrape::{DeployCounts, DeploySource};

/// The `Content-Type` of [`Metrics::render`] in OpenMetrics.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `Content-Type` of [`Metrics::render`] in the Prometheus text format.
pub const PROMETHEUS_CONTENT_TYPE: &str =
    prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// What the scrape-time metrics are read from.
#[derive(Clone, Default)]
pub struct Sources {
    /// The apps being served: their functions' instances and admission.
    pub apps: Apps,
    /// The engine: its pooling allocator's slots.
    pub engine: Option<GustEngine>,
    /// The usage ledger: records written, dropped and queued.
    pub ledger: Option<Arc<Ledger>>,
    /// Deploys and rollbacks per app (the deploy API's counters).
    pub deploys: Option<DeploySource>,
}

/// The metrics of one gust process. Cheap to clone (every clone is the
/// same registry).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    recorder: Recorder,
}

impl Metrics {
    /// Metrics over `sources`; invocations are counted once apps are
    /// [attached](Metrics::attach).
    pub fn new(sources: Sources) -> Metrics {
        let mut registry = Registry::default();
        let recorder = Recorder::default();
        registry.register(
            "gust_requests",
            "Invocations ended (in-process calls included), by HTTP status and outcome",
            recorder.requests.clone(),
        );
        registry.register_with_unit(
            "gust_request_duration",
            "Invocation wall time, until the guest finished streaming its response",
            Unit::Seconds,
            recorder.duration.clone(),
        );
        registry.register(
            "gust_fuel_consumed",
            "Fuel billed: Wasm instructions plus host work",
            recorder.fuel.clone(),
        );
        registry.register(
            "gust_compile_cache_hits",
            "Components taken from the compile cache by the app's loads",
            recorder.cache_hits.clone(),
        );
        registry.register(
            "gust_compile_cache_compiled",
            "Components compiled by the app's loads",
            recorder.compiled.clone(),
        );
        registry.register_collector(Box::new(scrape::Scrape::new(sources)));
        Metrics {
            inner: Arc::new(Inner { registry, recorder }),
        }
    }

    /// Counts `app`'s invocations from now on, and what its load did with
    /// the compile cache. To be called once on every version of an app
    /// loaded (as a deployer's load hook, say).
    pub fn attach(&self, app: App) -> anyhow::Result<App> {
        self.inner.recorder.attach(app)
    }

    /// [`Metrics::attach`] as a function that does not hold the
    /// [`Metrics`] (its scrape sources may hold what it is given to).
    pub fn load_hook(&self) -> impl Fn(App) -> anyhow::Result<App> + Send + Sync + 'static {
        let recorder = self.inner.recorder.clone();
        move |app| recorder.attach(app)
    }

    /// Every metric, in OpenMetrics (ending in `# EOF`) when `openmetrics`,
    /// else in the Prometheus text format 0.0.4; with its content type.
    pub fn render(&self, openmetrics: bool) -> (&'static str, String) {
        let mut text = String::new();
        // Writing into a String fails only if a metric's encoding does;
        // the metrics here are all encodable, so the text is whole.
        let encoded = if openmetrics {
            prometheus_client::encoding::text::encode(&mut text, &self.inner.registry)
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.inner.registry)
        };
        if let Err(e) = encoded {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        let content_type = if openmetrics {
            OPENMETRICS_CONTENT_TYPE
        } else {
            PROMETHEUS_CONTENT_TYPE
        };
        (content_type, text)
    }

    /// Whether a scraper's `Accept` header takes OpenMetrics (Prometheus
    /// asks for it first); without one, or without it, the Prometheus
    /// text format is what every scraper reads.
    pub fn accepts_openmetrics(accept: Option<&str>) -> bool {
        accept.is_some_and(|accept| accept.contains("application/openmetrics-text"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_only_when_accepted() {
        let accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
        assert!(Metrics::accepts_openmetrics(Some(accept)));
        assert!(!Metrics::accepts_openmetrics(Some("text/plain")));
        assert!(!Metrics::accepts_openmetrics(None));
    }

    #[test]
    fn without_apps_the_scraped_families_are_described() {
        let metrics = Metrics::new(Sources::default());
        let (content_type, text) = metrics.render(true);
        assert_eq!(content_type, OPENMETRICS_CONTENT_TYPE);
        assert!(text.ends_with("# EOF\n"), "{text}");
        // Families of the usage records appear with their first series
        // (an app attached); those read when scraped, always.
        assert!(!text.contains("gust_requests"), "{text}");
        for family in [
            "gust_instances",
            "gust_admission_refused",
            "gust_guest_log_bytes_dropped",
        ] {
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{family}: {text}"
            );
        }
        let (content_type, text) = metrics.render(false);
        assert_eq!(content_type, PROMETHEUS_CONTENT_TYPE);
        assert!(
            text.contains("\ngust_guest_log_bytes_dropped_total "),
            "{text}"
        );
        assert!(!text.contains("# EOF"));
    }
}
