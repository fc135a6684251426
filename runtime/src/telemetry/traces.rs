//! Traces: OpenTelemetry spans sent over OTLP/HTTP (protobuf) to the
//! collector the operator names (`[telemetry] otlp_endpoint`), and
//! nothing at all when none is named.
//!
//! - One span per invocation, [`Invocation`] (`invoke FUNCTION`, kind
//!   server): `gust.app`, `gust.function`, `http.route`,
//!   `http.request.method`, `gust.request_id` when it starts, and
//!   `gust.outcome`, `gust.fuel`, `gust.peak_memory_bytes`,
//!   `http.response.status_code` (and `gust.parent_request_id` for an
//!   in-process call) when its usage record is complete, which is when the
//!   span ends: after the response body has been sent. Its parent is the
//!   request's W3C `traceparent`, when it has one; the guest is handed the
//!   invocation's own `traceparent` in its place.
//! - The guest runs with the invocation's span as the current context
//!   (`in_context`): each capability call is a child span (`capability`:
//!   `kv.get`, `blob.read`, `config.get`, ...).
//! - Each outbound request the guest sends is a child span of kind client
//!   (`outbound`) whose `traceparent` the request carries; an in-process
//!   call (`http://NAME.gust.internal`) carries it too, so the callee's
//!   invocation span is a child of the caller's outbound span.
//!
//! Spans are batched and exported from the SDK's own thread; the HTTP
//! requests run on the server's tokio runtime (`client`). The SDK's
//! standard variables apply: `OTEL_BSP_SCHEDULE_DELAY` (5000 ms by
//! default) and the batch sizes, `OTEL_TRACES_SAMPLER` (the parent's
//! decision, else always), `OTEL_EXPORTER_OTLP_HEADERS`. Off, every hook
//! costs one check of a `OnceLock` that was never set.

#[cfg(feature = "otlp")]
mod client;

use std::borrow::Cow;
use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};

use crate::manifest::TelemetrySettings;
use crate::metering::{InvocationRecord, Outcome};

/// The tracer, once [`install`] has set it up: `None` means traces are
/// off.
static TRACER: OnceLock<Tracer> = OnceLock::new();

/// How long shutdown waits for the last spans to be exported.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The installed trace pipeline; [`Traces::shutdown`] exports what is
/// still queued.
pub struct Traces {
    provider: SdkTracerProvider,
}

/// Sets up traces as `settings` say: nothing without an `otlp_endpoint`.
/// Spans go to `ENDPOINT/v1/traces`, batched (the SDK's batch settings,
/// `OTEL_BSP_SCHEDULE_DELAY` and the like, apply). Call it within the tokio
/// runtime that serves: the exporter's requests run on it. Once per
/// process; a second pipeline is refused.
pub fn install(settings: &TelemetrySettings) -> anyhow::Result<Option<Traces>> {
    let Some(endpoint) = &settings.otlp_endpoint else {
        return Ok(None);
    };
    let provider = pipeline(endpoint, &settings.service_name)?;
    let tracer = provider.tracer_with_scope(
        InstrumentationScope::builder("gust")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build(),
    );
    if TRACER.set(tracer).is_err() {
        anyhow::bail!("traces are already set up in this process");
    }
    tracing::info!(%endpoint, service = %settings.service_name, "sending traces over OTLP/HTTP");
    Ok(Some(Traces { provider }))
}

#[cfg(feature = "otlp")]
fn pipeline(endpoint: &str, service_name: &str) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client::Client::new(tokio::runtime::Handle::try_current()?))
        .with_protocol(Protocol::HttpBinary)
        // Used as it is: the signal's path is ours to add.
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .with_timeout(client::TIMEOUT)
        .build()?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service_name.to_owned())
                .build(),
        )
        .build())
}

#[cfg(not(feature = "otlp"))]
fn pipeline(_endpoint: &str, _service_name: &str) -> anyhow::Result<SdkTracerProvider> {
    anyhow::bail!("telemetry.otlp_endpoint: this gust was built without the `otlp` feature")
}

impl Traces {
    /// Exports the spans still queued (waiting at most a few seconds for
    /// the collector) and stops the exporter.
    pub async fn shutdown(self) {
        let started = std::time::Instant::now();
        // Blocks until the exporter's thread is done, while its requests
        // run on this runtime's workers.
        let result = tokio::task::spawn_blocking(move || {
            self.provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT)
        })
        .await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match result {
            Ok(Ok(())) => tracing::info!(elapsed_ms, "traces flushed"),
            Ok(Err(e)) => tracing::warn!(elapsed_ms, error = %e, "flushing traces"),
            Err(e) => tracing::warn!(elapsed_ms, error = %e, "flushing traces"),
        }
    }
}

/// The tracer, when traces are on.
fn tracer() -> Option<&'static Tracer> {
    TRACER.get()
}

/// W3C trace context (`traceparent`, `tracestate`).
static PROPAGATOR: OnceLock<TraceContextPropagator> = OnceLock::new();

fn propagator() -> &'static TraceContextPropagator {
    PROPAGATOR.get_or_init(TraceContextPropagator::new)
}

/// Request headers read as a propagation carrier.
struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Request headers written as a propagation carrier.
struct HeadersMut<'a>(&'a mut http::HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// The span of one invocation (`None`: traces are off), shared by the
/// trigger and the guest task; it ends with the usage record.
pub(crate) struct Invocation(Option<Context>);

/// What an invocation span starts with.
pub(crate) struct Started<'a> {
    pub(crate) app: &'a str,
    pub(crate) function: &'a str,
    pub(crate) route: &'a str,
    pub(crate) method: &'a str,
    pub(crate) request_id: &'a str,
}

impl Invocation {
    /// Starts the span of an invocation, the child of the request's
    /// `traceparent` (if any), and makes the `traceparent` the guest sees
    /// its own: what the guest passes on continues the invocation.
    pub(crate) fn start(started: Started<'_>, headers: &mut http::HeaderMap) -> Invocation {
        let Some(tracer) = tracer() else {
            return Invocation(None);
        };
        let parent = propagator().extract(&Headers(headers));
        let span = tracer
            .span_builder(format!("invoke {}", started.function))
            .with_kind(SpanKind::Server)
            .with_attributes([
                KeyValue::new("gust.app", started.app.to_owned()),
                KeyValue::new("gust.function", started.function.to_owned()),
                KeyValue::new("http.route", started.route.to_owned()),
                KeyValue::new("http.request.method", started.method.to_owned()),
                KeyValue::new("gust.request_id", started.request_id.to_owned()),
            ])
            .start_with_context(tracer, &parent);
        let cx = parent.with_span(span);
        propagator().inject_context(&cx, &mut HeadersMut(headers));
        Invocation(Some(cx))
    }

    /// The context the guest runs in (the invocation span current).
    pub(crate) fn context(&self) -> Option<Context> {
        self.0.clone()
    }

    /// Ends the span of an invocation that never ran: `why` it did not
    /// (`busy`, `quota_exceeded`, or an outcome).
    pub(crate) fn not_started(&self, why: &str, status: u16) {
        if let Some(cx) = &self.0 {
            let span = cx.span();
            span.set_attribute(KeyValue::new("gust.outcome", why.to_owned()));
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
            span.set_status(Status::error(why.to_owned()));
            span.end();
        }
    }

    /// Ends the span with what the finished usage record says.
    pub(crate) fn finish(&self, record: &InvocationRecord) {
        let Some(cx) = &self.0 else {
            return;
        };
        let span = cx.span();
        let mut attributes = vec![
            KeyValue::new("gust.outcome", record.outcome.to_string()),
            KeyValue::new("gust.fuel", saturating_i64(record.fuel_consumed)),
            KeyValue::new(
                "gust.peak_memory_bytes",
                saturating_i64(record.peak_memory_bytes),
            ),
            KeyValue::new("http.response.status_code", i64::from(record.status)),
        ];
        if let Some(parent) = &record.parent_request_id {
            attributes.push(KeyValue::new("gust.parent_request_id", parent.clone()));
        }
        span.set_attributes(attributes);
        if record.outcome != Outcome::Ok {
            span.set_status(Status::error(record.outcome.to_string()));
        } else if record.status >= 500 {
            span.set_status(Status::error(format!("status {}", record.status)));
        }
        span.end();
    }
}

/// OTLP integers are signed.
fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Runs `inner` with `cx` (if any) as the current context at every poll
/// (the guest task, so that capability calls find their invocation's
/// span).
pub(crate) async fn in_context<F: Future>(cx: Option<Context>, inner: F) -> F::Output {
    let mut inner = std::pin::pin!(inner);
    std::future::poll_fn(|task| {
        let _attached = cx.as_ref().map(|cx| cx.clone().attach());
        inner.as_mut().poll(task)
    })
    .await
}

/// The span of one capability call (`None`: traces are off, or no
/// invocation is running here); it ends when dropped. `attribute` names
/// what was called (`gust.kv.store`, ...) and its value.
pub(crate) fn capability(
    name: &'static str,
    attribute: &'static str,
    value: &str,
) -> Option<opentelemetry_sdk::trace::Span> {
    let tracer = tracer()?;
    let parent = Context::current();
    if !parent.has_active_span() {
        return None;
    }
    Some(
        tracer
            .span_builder(name)
            .with_kind(SpanKind::Internal)
            .with_attributes([KeyValue::new(attribute, value.to_owned())])
            .start_with_context(tracer, &parent),
    )
}

/// The span of one outbound request, from the guest's request until its
/// response head (or failure).
pub(crate) struct Outbound(Option<opentelemetry_sdk::trace::Span>);

/// Starts the span of an outbound request of the running invocation and
/// sets the request's `traceparent` to it (replacing any the guest set).
/// `in_process`: the request goes to a function of the app.
pub(crate) fn outbound<B>(request: &mut http::Request<B>, in_process: bool) -> Outbound {
    let Some(tracer) = tracer() else {
        return Outbound(None);
    };
    let parent = Context::current();
    if !parent.has_active_span() {
        return Outbound(None);
    }
    let uri = request.uri();
    let mut attributes = vec![
        KeyValue::new("http.request.method", request.method().as_str().to_owned()),
        // Without the query, which may hold secrets.
        KeyValue::new(
            "url.full",
            format!(
                "{}://{}{}",
                uri.scheme_str().unwrap_or("http"),
                uri.authority().map_or("", |a| a.as_str()),
                uri.path()
            ),
        ),
        KeyValue::new("gust.in_process", in_process),
    ];
    if let Some(host) = uri.host() {
        attributes.push(KeyValue::new("server.address", host.to_owned()));
    }
    if let Some(port) = uri.port_u16() {
        attributes.push(KeyValue::new("server.port", i64::from(port)));
    }
    let span = tracer
        .span_builder(Cow::Owned(request.method().as_str().to_owned()))
        .with_kind(SpanKind::Client)
        .with_attributes(attributes)
        .start_with_context(tracer, &parent);
    let cx = Context::new().with_remote_span_context(span.span_context().clone());
    propagator().inject_context(&cx, &mut HeadersMut(request.headers_mut()));
    Outbound(Some(span))
}

impl Outbound {
    /// Ends the span: the response's status, or why there is none.
    pub(crate) fn finish<B, T, E: std::fmt::Debug>(
        mut self,
        sent: &Result<(http::Response<B>, T), E>,
    ) {
        let Some(span) = &mut self.0 else {
            return;
        };
        match sent {
            Ok((response, _)) => {
                let status = response.status().as_u16();
                span.set_attribute(KeyValue::new(
                    "http.response.status_code",
                    i64::from(status),
                ));
                if status >= 500 {
                    span.set_status(Status::error(format!("status {status}")));
                }
            }
            Err(e) => {
                let error = format!("{e:?}");
                span.set_attribute(KeyValue::new("error.type", error.clone()));
                span.set_status(Status::error(error));
            }
        }
        span.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_unless_installed() {
        // Nothing in the library's tests installs a pipeline.
        let mut headers = http::HeaderMap::new();
        let invocation = Invocation::start(
            Started {
                app: "a",
                function: "f",
                route: "/",
                method: "GET",
                request_id: "1",
            },
            &mut headers,
        );
        assert!(invocation.context().is_none());
        assert!(headers.is_empty());
        assert!(capability("kv.get", "gust.kv.store", "default").is_none());
        let mut request = http::Request::new(());
        assert!(outbound(&mut request, false).0.is_none());
        assert!(request.headers().is_empty());
    }

    #[test]
    fn traceparent_round_trips_through_headers() {
        let mut headers = http::HeaderMap::new();
        let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        headers.insert("traceparent", traceparent.parse().unwrap());
        let cx = propagator().extract(&Headers(&headers));
        let span = cx.span();
        let context = span.span_context();
        assert_eq!(
            context.trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(context.span_id().to_string(), "b7ad6b7169203331");
        let mut out = http::HeaderMap::new();
        propagator().inject_context(&cx, &mut HeadersMut(&mut out));
        assert_eq!(out["traceparent"], traceparent);
    }
}
