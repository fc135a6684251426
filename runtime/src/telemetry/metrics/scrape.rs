//! The metrics read when scraped: each function's instances and admission,
//! the engine's pooling allocator, the ledger, the deployer's counters.
//! Nothing here is on the request path; a scrape walks every function of
//! every app once.

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::Sources;
use crate::app::App;
use crate::call::Kind;
use crate::function::Function;
use crate::manifest::FunctionId;

/// An app's changes through the deploy API since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeployCounts {
    /// Versions deployed.
    pub deploys: u64,
    /// Deploys and rollbacks refused or failed.
    pub failures: u64,
    /// Rollbacks done.
    pub rollbacks: u64,
}

/// Reads every app's [`DeployCounts`] (the deployer's own counters).
pub type DeploySource = Arc<dyn Fn() -> Vec<(FunctionId, DeployCounts)> + Send + Sync>;

/// The collector over [`Sources`].
pub(super) struct Scrape {
    sources: Sources,
}

impl fmt::Debug for Scrape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scrape").finish_non_exhaustive()
    }
}

impl Scrape {
    pub(super) fn new(sources: Sources) -> Scrape {
        Scrape { sources }
    }
}

/// One family: its descriptor, then a sample per label set.
fn family<'a>(
    encoder: &'a mut DescriptorEncoder<'_>,
    name: &'a str,
    help: &str,
    kind: MetricType,
) -> Result<MetricEncoder<'a>, fmt::Error> {
    // As `Registry::register` writes the help of the other families.
    encoder.encode_descriptor(name, &format!("{help}."), None, kind)
}

fn gauge(family: &mut MetricEncoder<'_>, labels: &impl EncodeLabelSet, value: u64) -> fmt::Result {
    ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(family.encode_family(labels)?)
}

fn counter(
    family: &mut MetricEncoder<'_>,
    labels: &impl EncodeLabelSet,
    value: u64,
) -> fmt::Result {
    ConstCounter::new(value).encode(family.encode_family(labels)?)
}

/// A family without labels, of one sample.
fn single(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> fmt::Result {
    let help = format!("{help}.");
    metric.encode(encoder.encode_descriptor(name, &help, None, metric.metric_type())?)
}

fn each_function(apps: &[App], mut f: impl FnMut(&str, &Function) -> fmt::Result) -> fmt::Result {
    for app in apps {
        for function in app.functions() {
            f(app.id().as_str(), function)?;
        }
    }
    Ok(())
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let apps: Vec<App> = (self.sources.apps.ids().iter())
            .filter_map(|id| self.sources.apps.get(id))
            .collect();
        encode_functions(&mut encoder, &apps)?;
        if let Some(engine) = &self.sources.engine {
            let mut pool = family(
                &mut encoder,
                "gust_pool_slots_in_use",
                "The pooling allocator's slots in use, per engine",
                MetricType::Gauge,
            )?;
            for (kind, m) in engine.pool_metrics() {
                let engine = match kind {
                    Kind::P2 => "p2",
                    Kind::P3 => "p3",
                };
                let slots = [
                    ("component_instances", m.component_instances()),
                    ("core_instances", m.core_instances()),
                    ("memories", m.memories() as u64),
                    ("tables", m.tables() as u64),
                    ("stacks", m.stacks() as u64),
                ];
                for (slot, value) in slots {
                    gauge(&mut pool, &[("engine", engine), ("slot", slot)], value)?;
                }
            }
        }
        if let Some(ledger) = &self.sources.ledger {
            let stats = ledger.stats();
            let counters = [
                (
                    "gust_ledger_records_written",
                    "Usage records committed to the ledger",
                    stats.written(),
                ),
                (
                    "gust_ledger_records_dropped",
                    "Usage records lost (queue full or failed commit)",
                    stats.dropped(),
                ),
                (
                    "gust_ledger_write_errors",
                    "Failed ledger commits, and ledger files found removed or replaced",
                    stats.write_errors(),
                ),
                (
                    "gust_ledger_records_lost",
                    "Usage records committed to a ledger file that was then removed or replaced while open",
                    stats.records_lost(),
                ),
            ];
            for (name, help, value) in counters {
                single(&mut encoder, name, help, &ConstCounter::new(value))?;
            }
            single(
                &mut encoder,
                "gust_ledger_records_queued",
                "Usage records waiting to be committed (the ledger's lag)",
                &ConstGauge::new(i64::try_from(ledger.queued()).unwrap_or(i64::MAX)),
            )?;
        }
        if let Some(deploys) = &self.sources.deploys {
            encode_deploys(&mut encoder, &deploys())?;
        }
        single(
            &mut encoder,
            "gust_guest_log_bytes_dropped",
            "Guest stdout/stderr bytes not logged (past the capture limit or over the per-function log rate)",
            &ConstCounter::new(crate::host::capability::output::log_bytes_dropped_total()),
        )
    }
}

/// Instances, admission and residency of every function.
fn encode_functions(encoder: &mut DescriptorEncoder<'_>, apps: &[App]) -> fmt::Result {
    {
        let mut instances = family(
            encoder,
            "gust_instances",
            "Instances of the function: active (admitted invocations) and idle (kept for reuse)",
            MetricType::Gauge,
        )?;
        each_function(apps, |app, f| {
            let function = f.id().as_str();
            let idle = f.warm.as_deref().map_or(0, |w| w.idle());
            let active = u64::from(f.admission.in_flight());
            for (state, value) in [("active", active), ("idle", idle as u64)] {
                let labels = [("app", app), ("function", function), ("state", state)];
                gauge(&mut instances, &labels, value)?;
            }
            Ok(())
        })?;
    }
    {
        let mut queued = family(
            encoder,
            "gust_admission_queued",
            "Requests waiting for one of the function's concurrency slots",
            MetricType::Gauge,
        )?;
        each_function(apps, |app, f| {
            let labels = [("app", app), ("function", f.id().as_str())];
            gauge(&mut queued, &labels, u64::from(f.admission.queued()))
        })?;
    }
    {
        let mut refused = family(
            encoder,
            "gust_admission_refused",
            "Requests answered 503 before reaching the function (concurrency and queue full, or queue timeout), since the app's version was loaded",
            MetricType::Counter,
        )?;
        each_function(apps, |app, f| {
            let (full, timeout) = f.admission.refused();
            for (reason, value) in [("queue_full", full), ("queue_timeout", timeout)] {
                let labels = [
                    ("app", app),
                    ("function", f.id().as_str()),
                    ("reason", reason),
                ];
                counter(&mut refused, &labels, value)?;
            }
            Ok(())
        })?;
    }
    let mut resident = family(
        encoder,
        "gust_function_resident",
        "1 when the function's component is loaded and linked (a lazily loaded function: after its first request)",
        MetricType::Gauge,
    )?;
    each_function(apps, |app, f| {
        let labels = [("app", app), ("function", f.id().as_str())];
        gauge(&mut resident, &labels, u64::from(f.is_resident()))
    })
}

fn encode_deploys(
    encoder: &mut DescriptorEncoder<'_>,
    counts: &[(FunctionId, DeployCounts)],
) -> fmt::Result {
    {
        let mut deploys = family(
            encoder,
            "gust_deploys",
            "Deploys through the admin API, by result (failed: refused or failed deploys and rollbacks)",
            MetricType::Counter,
        )?;
        for (app, c) in counts {
            for (result, value) in [("ok", c.deploys), ("failed", c.failures)] {
                counter(
                    &mut deploys,
                    &[("app", app.as_str()), ("result", result)],
                    value,
                )?;
            }
        }
    }
    let mut rollbacks = family(
        encoder,
        "gust_rollbacks",
        "Rollbacks through the admin API",
        MetricType::Counter,
    )?;
    for (app, c) in counts {
        counter(&mut rollbacks, &[("app", app.as_str())], c.rollbacks)?;
    }
    Ok(())
}
