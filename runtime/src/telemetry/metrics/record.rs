//! The metrics counted as invocations end: one usage-record sink per app
//! version, on the request path, so it allocates nothing for a function
//! it has seen (its series are looked up once, when the app is attached)
//! and takes one read lock (the status/outcome family's).

use std::collections::HashMap;
use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

use crate::app::App;
use crate::metering::{InvocationRecord, Outcome};

/// Upper bounds of `gust_request_duration_seconds`' buckets, seconds: from
/// a hello world's half millisecond to the default 30 s timeout.
pub(super) const DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0,
];

/// An app and one of its functions. `Arc<str>` so that a record's labels
/// are made without allocating.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct FunctionLabels {
    pub(super) app: Arc<str>,
    pub(super) function: Arc<str>,
}

/// A function's invocations that ended with one status and outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RequestLabels {
    pub(super) app: Arc<str>,
    pub(super) function: Arc<str>,
    pub(super) status: u16,
    pub(super) outcome: Outcome,
}

/// An app.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct AppLabels {
    pub(super) app: Arc<str>,
}

impl EncodeLabelValue for Outcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// The families counted per invocation and per load. Cheap to clone
/// (every clone counts into the same families).
#[derive(Clone)]
pub(super) struct Recorder {
    pub(super) requests: Family<RequestLabels, Counter>,
    pub(super) duration: Family<FunctionLabels, Histogram, fn() -> Histogram>,
    pub(super) fuel: Family<FunctionLabels, Counter>,
    pub(super) cache_hits: Family<AppLabels, Counter>,
    pub(super) compiled: Family<AppLabels, Counter>,
}

impl Default for Recorder {
    fn default() -> Recorder {
        Recorder {
            requests: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            fuel: Family::default(),
            cache_hits: Family::default(),
            compiled: Family::default(),
        }
    }
}

/// One function's series, shared by its invocations.
struct Series {
    labels: FunctionLabels,
    duration: Histogram,
    fuel: Counter,
}

impl Recorder {
    fn series(&self, app: &Arc<str>, function: &str) -> Series {
        let labels = FunctionLabels {
            app: app.clone(),
            function: function.into(),
        };
        Series {
            duration: self.duration.get_or_create_owned(&labels),
            fuel: self.fuel.get_or_create_owned(&labels),
            labels,
        }
    }

    /// Counts `app`'s load and, through a sink, its invocations. Every
    /// function gets its series now, so that one never invoked is scraped
    /// as zero rather than missing.
    pub(super) fn attach(&self, app: App) -> anyhow::Result<App> {
        let app_id: Arc<str> = app.id().as_str().into();
        let report = app.load_report();
        let by_app = AppLabels {
            app: app_id.clone(),
        };
        self.cache_hits
            .get_or_create(&by_app)
            .inc_by(report.cache_hits);
        self.compiled.get_or_create(&by_app).inc_by(report.compiled);
        let series: HashMap<String, Series> = app
            .functions()
            .iter()
            .map(|f| {
                (
                    f.id().as_str().to_owned(),
                    self.series(&app_id, f.id().as_str()),
                )
            })
            .collect();
        let recorder = self.clone();
        app.on_invocation(move |record| match series.get(record.function.as_str()) {
            Some(series) => recorder.record(series, record),
            // Records come only from the app's own functions; were one not
            // among them, it is still counted (allocating its labels).
            None => recorder.record(&recorder.series(&app_id, record.function.as_str()), record),
        })
    }

    fn record(&self, series: &Series, record: &InvocationRecord) {
        let labels = RequestLabels {
            app: series.labels.app.clone(),
            function: series.labels.function.clone(),
            status: record.status,
            outcome: record.outcome,
        };
        self.requests.get_or_create(&labels).inc();
        series.duration.observe(record.duration.as_secs_f64());
        series.fuel.inc_by(record.fuel_consumed);
    }
}
