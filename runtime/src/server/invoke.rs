//! The HTTP trigger's invocation: one request through a function.
//!
//! The core (`exec`) admits the invocation and arms its store; here the
//! `wasi:http` request and response outparam are set up on it (p2 or p3,
//! see `call`), the guest is spawned, and the response head is handed to
//! hyper as soon as the guest sets it while the guest keeps streaming the
//! body ([`MeteredBody`] counts the bytes actually sent). What only HTTP
//! knows goes into the usage record through [`HttpEnd`]: the status the
//! client got, a client that went away mid-response, a body cut at
//! `max_response_size`, a request body gust answered for itself, and the
//! guest's own outbound requests.
//!
//! [`Function::call_in_process`] is the same invocation for a request
//! another function of the app sends to `http://NAME.gust.internal`
//! (outbound HTTP's composition): no socket, a request id derived from the
//! caller's, and the caller's depth in the chain.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use tokio::sync::Notify;
use wasmtime_wasi_http::WasiBody;

use super::body::BodyStatus;
use crate::admission::Refused;
use crate::app::App;
use crate::call::Call;
use crate::exec::{Completion, NotStarted, TriggerEnd};
use crate::function::Function;
use crate::host::IoMeter;
use crate::host::capability::outbound_http::{Meter, Origin};
use crate::metering::{InvocationRecord, Outcome, RecordSink};
use crate::telemetry::traces::{Invocation, Started};

/// What a request needs to know of the route that led to the function.
#[derive(Debug, Clone)]
pub(crate) struct RequestInfo {
    pub request_id: String,
    pub route: String,
    /// HEAD responses have no body; their body is never read.
    pub head: bool,
    /// How the request body stream ended, if it was cut.
    pub body: Arc<BodyStatus>,
}

/// The result of an invocation, as the request path sees it.
pub(crate) enum Invoked {
    /// The guest sent a response head; its body may still be streaming.
    Response(hyper::Response<WasiBody>),
    /// The guest answered the request with an error code instead.
    GuestError(String),
    /// The request cannot be expressed as a `wasi:http` request (e.g. it
    /// has no authority).
    BadRequest(String),
    /// The function's quota is used up for this window.
    QuotaExceeded(std::time::Duration),
    /// The function's concurrency limit and queue are full.
    Busy(Refused),
    /// The invocation ended without a response.
    Failed { outcome: Outcome, detail: String },
}

/// The status a client gets when an invocation ends without a response.
pub(crate) fn failure_status(outcome: Outcome) -> http::StatusCode {
    use http::StatusCode;
    match outcome {
        Outcome::Ok
        | Outcome::Trap
        | Outcome::OutOfFuel
        | Outcome::NoResponse
        | Outcome::ResponseTooLarge => StatusCode::INTERNAL_SERVER_ERROR,
        Outcome::Timeout => StatusCode::GATEWAY_TIMEOUT,
        Outcome::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
        // Nobody is left to see it; logged as nginx does.
        Outcome::ClientGone => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
    }
}

/// What the HTTP trigger knows of an invocation, for its record.
pub(crate) struct HttpEnd {
    /// The status of the guest's response (0 until it sends one).
    status: AtomicU16,
    /// A response body was handed to the client.
    body_streaming: AtomicBool,
    /// The response body reached its end (or there is none to send).
    body_finished: AtomicBool,
    /// The response body passed `max_response_size` and was cut.
    too_large: AtomicBool,
    /// The request body as the server saw it: when it was cut, the client
    /// got 408, 413 or nothing instead of the guest's response.
    request_body: Arc<BodyStatus>,
    /// The guest's outbound requests and their bytes (charged in fuel
    /// here, once the bodies have stopped streaming).
    outbound: Arc<Meter>,
    /// The caller's request id, for an in-process call.
    parent: Option<String>,
}

impl TriggerEnd for HttpEnd {
    fn finish(&self, record: &mut InvocationRecord) {
        let mut code = self.status.load(Ordering::Relaxed);
        let streaming = self.body_streaming.load(Ordering::Relaxed);
        let finished = self.body_finished.load(Ordering::Relaxed);
        let replaced = self.request_body.replaced_status();
        if self.request_body.client_gone.load(Ordering::Relaxed) {
            record.outcome = Outcome::ClientGone;
        } else if self.too_large.load(Ordering::Relaxed) {
            record.outcome = Outcome::ResponseTooLarge;
        } else if streaming && !finished && record.outcome == Outcome::Ok && replaced.is_none() {
            record.outcome = Outcome::ClientGone;
        }
        if let Some(status) = replaced {
            code = status.as_u16();
        }
        if code == 0 {
            if record.outcome == Outcome::Ok {
                record.outcome = Outcome::NoResponse;
            }
            code = failure_status(record.outcome).as_u16();
        }
        record.status = code;
        record.parent_request_id.clone_from(&self.parent);
        record.outbound_requests = self.outbound.requests();
        record.outbound_bytes = self.outbound.bytes();
        let outbound = self.outbound.fuel();
        record.host_fuel = record.host_fuel.saturating_add(outbound);
        record.fuel_consumed = record.fuel_consumed.saturating_add(outbound);
    }

    fn answered(&self) -> bool {
        self.status.load(Ordering::Relaxed) != 0
    }

    fn released(&self) -> bool {
        self.request_body.ended.load(Ordering::Relaxed)
    }
}

impl Function {
    /// Runs one request through a fresh instance (or an idle one, when the
    /// function opted into reuse).
    pub(crate) async fn invoke<B>(
        &self,
        info: RequestInfo,
        request: hyper::Request<B>,
        io: Arc<IoMeter>,
        sinks: Arc<[RecordSink]>,
    ) -> Invoked
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        self.invoke_from(info, request, io, sinks, None).await
    }

    /// [`Function::invoke`] for a request from a client (`origin` `None`)
    /// or from another function of the app (in-process composition).
    async fn invoke_from<B>(
        &self,
        info: RequestInfo,
        mut request: hyper::Request<B>,
        io: Arc<IoMeter>,
        sinks: Arc<[RecordSink]>,
        origin: Option<Origin>,
    ) -> Invoked
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        // Started before admission: the span covers its wait too.
        let method = request.method().clone();
        let trace = Invocation::start(
            Started {
                app: self.app.as_str(),
                function: self.id.as_str(),
                route: &info.route,
                method: method.as_str(),
                request_id: &info.request_id,
            },
            request.headers_mut(),
        );
        let mut prepared = match self.prepare(io).await {
            Ok(prepared) => prepared,
            Err(NotStarted::QuotaExceeded(retry_after)) => {
                trace.not_started("quota_exceeded", 429);
                return Invoked::QuotaExceeded(retry_after);
            }
            Err(NotStarted::Busy(refused)) => {
                trace.not_started("busy", 503);
                return Invoked::Busy(refused);
            }
            Err(NotStarted::Failed { outcome, detail }) => {
                trace.not_started(&outcome.to_string(), failure_status(outcome).as_u16());
                return Invoked::Failed { outcome, detail };
            }
        };
        let depth = origin.as_ref().map_or(0, |o| o.depth);
        if let Some(origin) = &origin {
            tracing::debug!(
                request_id = %info.request_id,
                parent = %origin.parent,
                depth,
                function = %self.id,
                "in-process call"
            );
        }
        let outbound = prepared
            .store
            .data_mut()
            .caps
            .outbound_http
            .start(&info.request_id, depth);
        let http = Arc::new(HttpEnd {
            status: AtomicU16::new(0),
            body_streaming: AtomicBool::new(false),
            body_finished: AtomicBool::new(info.head),
            too_large: AtomicBool::new(false),
            request_body: info.body,
            outbound,
            parent: origin.map(|o| o.parent),
        });
        let completion = prepared.completion(
            self,
            info.request_id,
            info.route,
            sinks,
            http.clone(),
            trace,
        );

        // Whatever body type an embedder passes: an empty one never holds
        // a connection, so it cannot keep an instance from being reused.
        if http_body::Body::is_end_stream(request.body()) {
            http.request_body.ended.store(true, Ordering::Relaxed);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let seen = http.clone();
        let respond = Box::new(move |answer: crate::call::Answer| {
            let code = match &answer {
                Ok(response) => response.status().as_u16(),
                Err(_) => 500,
            };
            seen.status.store(code, Ordering::Relaxed);
            let _ = tx.send(answer);
        });
        let exports = prepared.ready.http.clone();
        let call = match Call::new(exports.kind(), &mut prepared.store, request, respond) {
            Ok(call) => call,
            Err(e) => return Invoked::BadRequest(e),
        };
        let cancel = completion.cancel.clone();
        let task = prepared.spawn(
            self,
            completion.clone(),
            crate::exec::guest_call(move |store, instance| {
                Box::pin(async move {
                    let handler = exports.load(store, instance)?;
                    call.run(store, &handler).await
                })
            }),
        );

        // Until the response head is returned, dropping this future means
        // the client went away: cancel the guest.
        let guard = CancelOnDrop(Some(cancel));
        let invoked = match rx.await {
            Ok(Ok(response)) => {
                http.body_streaming.store(true, Ordering::Relaxed);
                let max = self.limits.max_response_size;
                let expected: Option<u64> = response
                    .headers()
                    .get(http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok()?.parse().ok());
                if expected == Some(0) {
                    // Nothing to send: hyper never polls the body.
                    http.body_finished.store(true, Ordering::Relaxed);
                }
                Invoked::Response(response.map(|body| {
                    MeteredBody {
                        inner: body,
                        completion,
                        http,
                        sent: 0,
                        expected,
                        max,
                    }
                    .boxed_unsync()
                }))
            }
            Ok(Err(code)) => Invoked::GuestError(code),
            Err(_) => match task.await {
                Ok((outcome, detail)) => Invoked::Failed { outcome, detail },
                Err(e) => Invoked::Failed {
                    outcome: Outcome::Trap,
                    detail: format!("invocation task failed: {e}"),
                },
            },
        };
        guard.disarm();
        invoked
    }
}

impl Function {
    /// Invokes this function for `request`, sent by a function of `app`
    /// to `http://ID.gust.internal/...`: the invocation a client's request
    /// gets (admission, limits, fuel, a usage record under `request_id`),
    /// without a socket. gust's own answers (busy, trapped, ...) are
    /// responses, as a client would get them.
    pub(crate) async fn call_in_process(
        &self,
        app: &App,
        mut request: http::Request<WasiBody>,
        request_id: String,
        origin: Origin,
    ) -> http::Response<WasiBody> {
        // Routed by name, not by path: the headers gust sets are its own
        // (a caller cannot forge them), with the route's if the path
        // matches one of this function's routes.
        let headers = request.headers_mut();
        let reserved: Vec<http::HeaderName> = headers
            .keys()
            .filter(|name| name.as_str().starts_with("x-gust-"))
            .cloned()
            .collect();
        for name in reserved {
            headers.remove(name);
        }
        let path = request.uri().path().to_owned();
        let mut route = format!(
            "{}.{}",
            self.id,
            crate::host::capability::outbound_http::allow::INTERNAL_DOMAIN
        );
        if let Ok(matched) = app.router().lookup(request.method(), &path) {
            let target = matched.route.target();
            if app.functions().get(target.function).map(|f| &f.id) == Some(&self.id) {
                route = matched.route.pattern().as_str().to_owned();
                let headers = request.headers_mut();
                headers.insert(
                    http::HeaderName::from_static(crate::headers::ROUTE),
                    target.route_value.clone(),
                );
                for (name, (_, value)) in target.param_names.iter().zip(&matched.params) {
                    if let Ok(value) = http::HeaderValue::from_str(value) {
                        headers.insert(name.clone(), value);
                    }
                }
            }
        }
        let (parts, body) = request.into_parts();
        let io = Arc::new(IoMeter::default());
        // The caller's body has the callee's time to arrive; its size is
        // bounded by what the caller can pay for.
        let deadline = tokio::time::Instant::now() + self.limits.timeout;
        let (body, status) = super::body::LimitedBody::new(body, u64::MAX, deadline, io.clone());
        let info = RequestInfo {
            request_id: request_id.clone(),
            route,
            head: parts.method == http::Method::HEAD,
            body: status.clone(),
        };
        let request = hyper::Request::from_parts(parts, body);
        let invoked = self
            .invoke_from(info, request, io, app.sinks(), Some(origin))
            .await;
        use super::reject::Rejection;
        let mut response = match (status.rejection(), invoked) {
            (Some(rejection), _) => rejection.into_response(),
            (None, Invoked::Response(response)) => response,
            (None, Invoked::GuestError(_)) => Rejection::GuestError.into_response(),
            (None, Invoked::QuotaExceeded(rest)) => Rejection::QuotaExceeded(rest).into_response(),
            (None, Invoked::Busy(_)) => Rejection::Busy.into_response(),
            (None, Invoked::BadRequest(_)) => Rejection::BadRequest.into_response(),
            (None, Invoked::Failed { outcome, .. }) => Rejection::Failed(outcome).into_response(),
        };
        if let Ok(value) = http::HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(
                http::HeaderName::from_static(crate::headers::REQUEST_ID),
                value,
            );
        }
        response
    }
}

struct CancelOnDrop(Option<Arc<Notify>>);

impl CancelOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(cancel) = self.0.take() {
            cancel.notify_one();
        }
    }
}

/// The guest's response body on its way to the client: counts bytes and
/// notices whether it was sent to the end.
struct MeteredBody {
    inner: WasiBody,
    completion: Arc<Completion>,
    http: Arc<HttpEnd>,
    sent: u64,
    /// The declared `content-length`: hyper stops polling once it is sent.
    expected: Option<u64>,
    /// The function's `max_response_size`.
    max: u64,
}

impl Drop for MeteredBody {
    fn drop(&mut self) {
        // hyper drops an unfinished body when the client goes away (or the
        // stream was cut): the guest's remaining work is for nobody.
        if !self.http.body_finished.load(Ordering::Relaxed) {
            self.completion.cancel.notify_one();
        }
    }
}

impl Body for MeteredBody {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    // hyper sends at most the declared `content-length`
                    // and drops the rest of a frame that goes past it:
                    // only what is sent is billed.
                    let len = match self.expected {
                        Some(expected) => {
                            (data.len() as u64).min(expected.saturating_sub(self.sent))
                        }
                        None => data.len() as u64,
                    };
                    // The frame that would pass the cap is not sent.
                    if self.sent.saturating_add(len) > self.max {
                        self.http.too_large.store(true, Ordering::Relaxed);
                        self.completion.cancel.notify_one();
                        return Poll::Ready(Some(Err(
                            wasmtime_wasi_http::Error::HttpResponseBodySize(Some(self.max)),
                        )));
                    }
                    self.completion.io.add_response(len);
                    self.sent += len;
                    if self.expected.is_some_and(|expected| self.sent >= expected) {
                        self.http.body_finished.store(true, Ordering::Relaxed);
                    }
                } else if frame.is_trailers() {
                    // Trailers are the last frame: hyper polls no further.
                    self.http.body_finished.store(true, Ordering::Relaxed);
                }
            }
            Poll::Ready(None) => {
                // wasmtime-wasi-http ends a body that was dropped unfinished
                // (the guest trapped mid-stream) as if it were complete;
                // wasi:http says it is incomplete: cut the stream instead.
                if self.completion.guest_failed.load(Ordering::Acquire) {
                    return Poll::Ready(Some(Err(wasmtime_wasi_http::Error::HttpProtocolError)));
                }
                self.http.body_finished.store(true, Ordering::Relaxed);
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        // hyper stops polling once this is true, so the end is noted here
        // as well as on a final `None`.
        let end = self.inner.is_end_stream();
        if end {
            self.http.body_finished.store(true, Ordering::Relaxed);
        }
        end
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
