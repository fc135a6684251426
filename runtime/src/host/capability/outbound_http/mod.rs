//! Outbound HTTP (`wasi:http/outgoing-handler` and the p3 client), granted
//! per function by an allow-list (`allowed_outbound_hosts`, see [`allow`]),
//! and in-process composition: `http://NAME.gust.internal/...` calls the
//! app's function `NAME` without a socket (see [`compose`]).
//!
//! Every request of a guest, p2 or p3, reaches [`Policy::send_request`]
//! (the store's `wasi:http` hook). A request that no entry allows, past
//! the function's `outbound_requests` limit, or (composition) deeper than
//! [`MAX_DEPTH`] is refused before anything touches the network, with a
//! warning naming the app, function, request id and the URI without its
//! query (the first few of an invocation; the rest at debug level). An
//! allowed request goes out through [`connect`], which refuses
//! private and special addresses unless an entry names them.
//!
//! Each request is charged [`OUTBOUND_REQUEST_FUEL`] and [`body_fuel`] of
//! the bytes sent and received, counted in a [`Meter`] shared with the
//! bodies (they stream after the hook returns); the HTTP trigger adds the
//! meter to the invocation's record when it ends.
//!
//! [`OUTBOUND_REQUEST_FUEL`]: crate::metering::OUTBOUND_REQUEST_FUEL
//! [`body_fuel`]: crate::metering::body_fuel

pub(crate) mod allow;
pub(crate) mod compose;
pub(crate) mod connect;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use wasmtime_wasi_http::{Error, WasiBody, WasiHttpHooks};

use super::Capability;
use crate::app::WeakApp;
use crate::manifest::{AppSpec, CapabilitySettings, FunctionId, Limits};
use crate::telemetry::traces;
use allow::{AllowEntry, Host};

/// How deep in-process calls may nest: a request from a client runs at
/// depth 0, a function it calls at 1, ... A call that would run at depth
/// `MAX_DEPTH + 1` fails with `loop-detected` (HTTP 508's meaning), so a
/// function calling itself stops after `MAX_DEPTH` nested invocations.
pub(crate) const MAX_DEPTH: u32 = 8;

/// The outbound HTTP capability.
pub(crate) struct OutboundHttp;

/// What the app's functions may send.
pub(crate) struct AppPolicy {
    shared: Arc<Shared>,
    /// The functions granted outbound HTTP, with their allow-lists.
    functions: HashMap<FunctionId, Arc<Rules>>,
}

/// What every instance of the app's functions shares.
struct Shared {
    app: FunctionId,
    /// The app itself, for in-process composition (set once it is built).
    weak: OnceLock<WeakApp>,
}

/// One function's grant.
struct Rules {
    allow: Vec<AllowEntry>,
    limits: Limits,
}

impl AppPolicy {
    /// Remembers the app whose functions composition calls.
    pub(crate) fn bind(&self, app: WeakApp) {
        let _ = self.shared.weak.set(app);
    }
}

impl Capability for OutboundHttp {
    type App = AppPolicy;
    type Instance = Policy;

    fn validate(
        app: &AppSpec,
        _settings: &CapabilitySettings,
        problems: &mut Vec<(String, String)>,
    ) {
        for function in &app.functions {
            for (i, entry) in function.grants.allowed_outbound_hosts.iter().enumerate() {
                if let Err(problem) = AllowEntry::parse(entry) {
                    problems.push((
                        format!("functions.{}.allowed_outbound_hosts[{i}]", function.id),
                        problem,
                    ));
                }
            }
        }
    }

    fn open(app: &AppSpec, _settings: &CapabilitySettings) -> anyhow::Result<AppPolicy> {
        let mut functions = HashMap::new();
        for function in &app.functions {
            let hosts = &function.grants.allowed_outbound_hosts;
            if hosts.is_empty() {
                continue;
            }
            let allow = hosts
                .iter()
                .map(|entry| AllowEntry::parse(entry).map_err(anyhow::Error::msg))
                .collect::<anyhow::Result<Vec<_>>>()?;
            functions.insert(
                function.id.clone(),
                Arc::new(Rules {
                    allow,
                    limits: function.limits,
                }),
            );
        }
        Ok(AppPolicy {
            shared: Arc::new(Shared {
                app: app.name.clone(),
                weak: OnceLock::new(),
            }),
            functions,
        })
    }

    fn instance(app: &AppPolicy, function: &FunctionId) -> Policy {
        Policy {
            rules: app.functions.get(function).cloned(),
            shared: app.shared.clone(),
            function: function.clone(),
            caller: Caller::default(),
            meter: Arc::default(),
        }
    }

    fn reset(instance: &mut Policy) {
        instance.caller = Caller::default();
        instance.meter = Arc::default();
    }
}

/// Who is calling: the invocation's request id and how deep it runs in a
/// chain of in-process calls. Travels inside gust only (never in a
/// header a client could forge).
#[derive(Debug, Clone, Default)]
pub(crate) struct Caller {
    pub(crate) request_id: String,
    pub(crate) depth: u32,
}

/// An in-process call's place in its chain, for the callee's invocation.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    /// The caller's request id (the callee's is derived from it).
    pub(crate) parent: String,
    /// The callee's depth.
    pub(crate) depth: u32,
}

/// Outbound requests and body bytes of one invocation, shared with the
/// bodies that stream after the hook has returned.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    requests: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
    /// Requests refused (for [`log_denial`]).
    denied: AtomicU64,
}

impl Meter {
    fn add_request(&self) -> u64 {
        self.requests.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(crate) fn add_bytes(&self, sent: bool, n: u64) {
        let counter = if sent { &self.sent } else { &self.received };
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Requests made (allowed ones: a denied request is not sent).
    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Body bytes sent and received so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.sent
            .load(Ordering::Relaxed)
            .saturating_add(self.received.load(Ordering::Relaxed))
    }

    /// Host fuel owed for the requests and their bytes so far.
    pub(crate) fn fuel(&self) -> u64 {
        self.requests()
            .saturating_mul(crate::metering::OUTBOUND_REQUEST_FUEL)
            .saturating_add(crate::metering::body_fuel(self.bytes()))
    }
}

/// What an instance may send: the `wasi:http` hooks of its store.
pub(crate) struct Policy {
    /// `None`: the function was not granted outbound HTTP.
    rules: Option<Arc<Rules>>,
    shared: Arc<Shared>,
    function: FunctionId,
    caller: Caller,
    meter: Arc<Meter>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("function", &self.function)
            .field("granted", &self.rules.is_some())
            .field("caller", &self.caller)
            .finish_non_exhaustive()
    }
}

impl Policy {
    /// Starts an invocation: its request id and depth (0 for a client's
    /// request). Returns the meter its outbound requests count into.
    pub(crate) fn start(&mut self, request_id: &str, depth: u32) -> Arc<Meter> {
        self.caller = Caller {
            request_id: request_id.to_owned(),
            depth,
        };
        self.meter = Arc::default();
        self.meter.clone()
    }

    /// Host fuel owed for outbound requests so far: counted against the
    /// budget at every epoch check, with the other host work.
    pub(crate) fn fuel(&self) -> u64 {
        self.meter.fuel()
    }

    /// Refuses a request: logged, and `error` for the guest.
    fn deny(
        &self,
        uri: &http::Uri,
        why: &str,
        error: Error,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        log_denial(
            &self.meter,
            &self.shared.app,
            &self.function,
            &self.caller.request_id,
            uri,
            why,
        );
        Box::new(async move { Err(error) })
    }
}

/// Denials of one invocation logged as warnings; the rest are logged at
/// debug level, so a guest looping on denied requests (each one costs it
/// a host call) cannot flood the operator's log.
const WARNED_DENIALS: u64 = 3;

/// Logs a denied request of the invocation that `meter` counts for.
fn log_denial(
    meter: &Meter,
    app: &FunctionId,
    function: &FunctionId,
    request_id: &str,
    uri: &http::Uri,
    why: &str,
) {
    let uri = without_query(uri);
    if meter.denied.fetch_add(1, Ordering::Relaxed) < WARNED_DENIALS {
        tracing::warn!(%app, %function, %request_id, %uri, "outbound HTTP request denied: {why}");
    } else {
        tracing::debug!(%app, %function, %request_id, %uri, "outbound HTTP request denied: {why}");
    }
}

/// `uri` without its query (which may hold secrets), for logs.
fn without_query(uri: &http::Uri) -> String {
    format!(
        "{}://{}{}",
        uri.scheme_str().unwrap_or("?"),
        uri.authority().map_or("", |a| a.as_str()),
        uri.path()
    )
}

pub(crate) type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
)>;

impl WasiHttpHooks for Policy {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let uri = request.uri().clone();
        let Some(rules) = self.rules.clone() else {
            return self.deny(&uri, "not granted", Error::HttpRequestDenied);
        };
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return self.deny(&uri, "unsupported scheme", Error::HttpRequestDenied),
        };
        let Some(host) = uri.host().and_then(Host::parse) else {
            return self.deny(&uri, "no valid host", Error::HttpRequestUriInvalid);
        };
        let port = uri.port_u16().unwrap_or(allow::default_port(https));
        if !rules.allow.iter().any(|e| e.allows(https, &host, port)) {
            return self.deny(
                &uri,
                "not in allowed_outbound_hosts",
                Error::HttpRequestDenied,
            );
        }
        let limit = rules.limits.outbound_requests;
        if self.meter.requests() >= u64::from(limit) {
            return self.deny(
                &uri,
                &format!("past the outbound_requests limit of {limit}"),
                Error::HttpRequestDenied,
            );
        }
        if let Some(function) = host.internal_function() {
            let depth = self.caller.depth.saturating_add(1);
            if depth > MAX_DEPTH {
                return self.deny(
                    &uri,
                    &format!("in-process calls nested deeper than {MAX_DEPTH}"),
                    Error::LoopDetected,
                );
            }
            let Some(app) = self.shared.weak.get().cloned() else {
                return self.deny(&uri, "the app is not loaded", Error::DestinationUnavailable);
            };
            let n = self.meter.add_request();
            let call = compose::Call {
                app,
                function: function.to_owned(),
                request_id: format!("{}.{n}", self.caller.request_id),
                origin: Origin {
                    parent: self.caller.request_id.clone(),
                    depth,
                },
                meter: self.meter.clone(),
                response_limit: rules.limits.outbound_response_size,
            };
            let span = traces::outbound(&mut request, true);
            return Box::new(async move {
                let sent = call.send(request).await;
                span.finish(&sent);
                sent
            });
        }
        if host.is_internal() {
            return self.deny(&uri, "no function named", Error::DestinationNotFound);
        }
        self.meter.add_request();
        // Any entry that allows the request and names its address lets it
        // reach a private one (not only the first that allowed it).
        let named_ip = matches!(host, Host::Ip(ip)
            if rules.allow.iter().any(|e| e.names_ip(ip) && e.allows(https, &host, port)));
        let target = connect::Target {
            https,
            host,
            port,
            named_ip,
            connect_timeout: rules.limits.outbound_connect_timeout,
            response_limit: rules.limits.outbound_response_size,
        };
        let span = traces::outbound(&mut request, false);
        let sending = connect::send(target, request, options, self.meter.clone());
        let (app, function) = (self.shared.app.clone(), self.function.clone());
        let request_id = self.caller.request_id.clone();
        let meter = self.meter.clone();
        Box::new(async move {
            let sent = sending.await;
            span.finish(&sent);
            if let Err(Error::DestinationIpProhibited) = &sent {
                log_denial(
                    &meter,
                    &app,
                    &function,
                    &request_id,
                    &uri,
                    "the host is or resolves to a private or special address that no allow-list entry names",
                );
            }
            sent
        })
    }

    // Not outbound HTTP, but these hooks are the store's one `wasi:http`
    // hook object: the buffer of a p2 outgoing body (responses included)
    // is host memory a guest controls (see `host_work`).
    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        crate::host::work::OUTGOING_BODY_CHUNK
    }
}
