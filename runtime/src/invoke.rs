//! One invocation: a fresh store and instance per request (or an idle one,
//! when the function opted into reuse), metered.
//!
//! The store gets the function's fuel budget and an epoch deadline, the
//! instance comes from the `ProxyPre` (a pooled slot and copy-on-write
//! memory), and the handler runs in a task of its own so the guest can keep
//! streaming the response body after the head has gone to the client.
//!
//! The usage record is finished when both the guest task and the response
//! body are done (a shared [`Completion`] emits it on drop), so it can count
//! the response bytes actually sent and tell a client that went away.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use tokio::sync::Notify;
use wasmtime::{AsContext as _, CallHook, PoolConcurrencyLimitError, Store, Trap, UpdateDeadline};
use wasmtime_wasi_http::WasiBody;
use wasmtime_wasi_http::handler::Proxy;

use crate::admission::Refused;
use crate::billing::{Prices, Usage};
use crate::call::{Call, Kind};
use crate::function::Function;
use crate::gate;
use crate::host::{HostState, IoMeter};
use crate::metering::{InvocationRecord, Outcome, RecordSink};
use crate::output::GuestOutput;
use crate::quota::Reservation;
use crate::reuse::{Warm, WarmPool};
use crate::server::BodyStatus;

/// Raised by the epoch callback once an invocation's deadline has passed.
#[derive(Debug, thiserror::Error)]
#[error("the invocation passed its wall-clock deadline")]
struct DeadlineExceeded;

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

impl Function {
    /// Runs one request through a fresh instance.
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
        // Reserves the whole fuel budget against the quota, so concurrent
        // invocations cannot overshoot it; released if this returns before
        // the invocation runs, settled with the fuel used when it ends.
        let reservation = match &self.quota {
            Some(quota) => {
                match quota.reserve(SystemTime::now(), self.limits.fuel, self.limits.timeout) {
                    Ok(reservation) => Some(reservation),
                    Err(retry_after) => return Invoked::QuotaExceeded(retry_after),
                }
            }
            None => None,
        };

        let slot = match self.admission.admit().await {
            Ok(slot) => slot,
            Err(refused) => return Invoked::Busy(refused),
        };

        let start = SystemTime::now();
        let started = Instant::now();
        let deadline = started + self.limits.timeout;
        let budget = self.limits.fuel;

        // A fresh store, or an idle instance when the function opted into
        // reuse and one is free.
        let (mut store, proxy, uses) = match self.warm.as_deref().and_then(WarmPool::take) {
            Some(Warm {
                mut store,
                proxy,
                uses,
            }) => {
                store.data_mut().begin(io.clone());
                (store, Some(proxy), uses)
            }
            None => {
                let mut store = Store::new(
                    crate::call::engine_of(&self.pre),
                    HostState::new(io.clone(), &self.limits),
                );
                store.limiter(|state| &mut state.limiter);
                // Fuel in portions, so that a guest stopped in a loop is
                // billed what it burned (see `fuel_flush_interval`).
                if self.fuel
                    && let Err(e) = store.fuel_async_yield_interval(Some(self.fuel_flush))
                {
                    return Invoked::Failed {
                        outcome: Outcome::Trap,
                        detail: format!("setting the fuel interval: {e}"),
                    };
                }
                // The guest's own handle tables, next to the host's resource
                // table (capped in `HostState::new`).
                store.set_max_component_handles(self.limits.resources);
                // Every call into the host is charged and may grow the host
                // memory the guest holds (see `host_work`).
                store.call_hook(|mut cx, hook| {
                    if let CallHook::CallingHost = hook {
                        cx.data_mut().on_host_call().map_err(wasmtime::Error::new)?;
                    }
                    Ok(())
                });
                (store, None, 0)
            }
        };
        let metering = self.fuel;
        if metering && let Err(e) = store.set_fuel(budget) {
            return Invoked::Failed {
                outcome: Outcome::Trap,
                detail: format!("setting fuel: {e}"),
            };
        }
        store.set_epoch_deadline(1);
        let slice_ticks = self.slice_ticks;
        let fuel_flush = self.fuel_flush;
        store.epoch_deadline_callback(move |mut cx| {
            cx.data_mut().work.uncount_epoch_call();
            if Instant::now() >= deadline {
                return Err(wasmtime::Error::new(DeadlineExceeded));
            }
            // Host work (body bytes moved) is paid from the same budget: the
            // store's fuel counts Wasm alone, so the invocation is out of
            // fuel once Wasm fuel used plus host fuel owed passes the budget.
            let state = cx.data();
            let owed = state.io.host_fuel().saturating_add(state.work.fuel());
            if metering && owed > 0 && owed > cx.as_context().get_fuel()? {
                return Err(wasmtime::Error::new(Trap::OutOfFuel));
            }
            // Yield once per slice so a busy guest cannot starve others on
            // its worker thread, but let a request that needs a few ms of
            // CPU finish in one go: yielding every tick made concurrent
            // 4 ms requests share the cores round-robin and finish late.
            // tokio's `yield_now` defers the wake-up until the I/O driver
            // has run; a plain self-wake would let a spinning guest delay
            // socket events for dozens of ticks.
            let state = cx.data_mut();
            state.ticks_run += 1;
            if state.ticks_run < slice_ticks {
                // Wasm yields every `fuel_flush` fuel (the store's fuel
                // yield interval, ~0.1-1 ms); epoch checks come at most
                // once a tick, so a tick with a quarter of that in host
                // work yields too. A guest that mostly makes host calls
                // then lets the requests next to it run about as often as
                // one spinning in Wasm does (without it, `/hello` next to
                // four loops of `get-random-u64` had a p50 of 10 ms against
                // 3.6 ms; see `host_work`).
                if owed.saturating_sub(state.host_fuel_at_yield) >= fuel_flush / 4 {
                    state.host_fuel_at_yield = owed;
                    return Ok(UpdateDeadline::Yield(1));
                }
                return Ok(UpdateDeadline::Continue(1));
            }
            state.ticks_run = 0;
            state.host_fuel_at_yield = owed;
            crate::gate::note_slice_yield();
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        });

        let cancel = Arc::new(Notify::new());
        let completion = Arc::new(Completion {
            record: Mutex::new(InvocationRecord {
                app: self.app.clone(),
                request_id: info.request_id,
                function: self.id.clone(),
                route: info.route,
                start,
                duration: Default::default(),
                fuel_consumed: 0,
                host_fuel: 0,
                fuel_budget: budget,
                peak_memory_bytes: 0,
                request_bytes: 0,
                response_bytes: 0,
                cost_nanos: 0,
                currency: self.prices.currency.clone(),
                status: 0,
                outcome: Outcome::Ok,
            }),
            status: AtomicU16::new(0),
            body_streaming: AtomicBool::new(false),
            body_finished: AtomicBool::new(info.head),
            too_large: AtomicBool::new(false),
            guest_failed: AtomicBool::new(false),
            request_body: info.body,
            cancel: cancel.clone(),
            io,
            prices: self.prices.clone(),
            quota: reservation,
            sinks,
            shutdown: crate::server::Tracked::new(),
        });

        // Whatever body type an embedder passes: an empty one never holds
        // a connection, so it cannot keep an instance from being reused.
        if http_body::Body::is_end_stream(request.body()) {
            completion.request_body.ended.store(true, Ordering::Relaxed);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let seen = completion.clone();
        let respond = Box::new(move |answer: crate::call::Answer| {
            let code = match &answer {
                Ok(response) => response.status().as_u16(),
                Err(_) => 500,
            };
            seen.status.store(code, Ordering::Relaxed);
            let _ = tx.send(answer);
        });
        let call = match Call::new(Kind::of_pre(&self.pre), &mut store, request, respond) {
            Ok(call) => call,
            Err(e) => return Invoked::BadRequest(e),
        };

        let pre = self.pre.clone();
        let gate = self.gate.clone();
        let pool = self.warm.clone();
        let task = {
            let completion = completion.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move {
                let run = async {
                    let proxy = match proxy {
                        Some(proxy) => proxy,
                        None => pre.instantiate_async(&mut store).await?,
                    };
                    call.run(&mut store, &proxy).await?;
                    wasmtime::Result::Ok(proxy)
                };
                let result = tokio::select! {
                    result = tokio::time::timeout_at(deadline.into(), gate::gated(&gate, run)) => Some(result),
                    () = cancel.notified() => None,
                    () = completion.shutdown.cancelled() => None,
                };
                store.data_mut().measure_host_memory();
                let state = store.data();
                let wasm_fuel = if metering {
                    budget.saturating_sub(store.get_fuel().unwrap_or(0))
                } else {
                    0
                };
                let work_fuel = if metering { state.work.fuel() } else { 0 };
                let host_peak = state.work.peak();
                // Linear memory and the host memory held for the guest.
                let peak = (state.limiter.peak as u64).saturating_add(host_peak as u64);
                let refused = state.limiter.refused;
                // The instance is only kept (for reuse) when the call ended cleanly.
                let (outcome, mut detail, proxy) = match result {
                    Some(Ok(Ok(proxy))) => (Outcome::Ok, String::new(), Some(proxy)),
                    Some(Ok(Err(error))) => (classify(&error), format!("{error:?}"), None),
                    Some(Err(_)) => (Outcome::Timeout, DeadlineExceeded.to_string(), None),
                    None => (Outcome::ClientGone, "the client went away".to_owned(), None),
                };
                // Known before the store goes: dropping it ends a response
                // body the guest never finished, which wasmtime-wasi-http
                // reports as a clean end.
                if outcome != Outcome::Ok {
                    completion.guest_failed.store(true, Ordering::Release);
                }
                let answered = completion.status.load(Ordering::Relaxed) != 0;
                let output = match (pool, proxy) {
                    (Some(pool), Some(proxy)) if outcome == Outcome::Ok && answered => {
                        keep_warm(&pool, store, proxy, uses, &completion.request_body)
                    }
                    _ => {
                        let output = (state.stdout.clone(), state.stderr.clone());
                        // Dropping the store drops an unanswered response
                        // outparam, which wakes the request path.
                        drop(store);
                        output
                    }
                };
                drop(slot);
                crate::host_work::after_release(host_peak);
                if let Some(limit) = refused
                    && outcome != Outcome::Ok
                {
                    detail = format!("the guest reached its {limit}: {detail}");
                }
                completion.guest_done(
                    outcome,
                    (wasm_fuel, work_fuel),
                    peak,
                    started.elapsed(),
                    output,
                );
                (outcome, detail)
            })
        };

        // Until the response head is returned, dropping this future means
        // the client went away: cancel the guest.
        let guard = CancelOnDrop(Some(cancel));
        let invoked = match rx.await {
            Ok(Ok(response)) => {
                completion.body_streaming.store(true, Ordering::Relaxed);
                let completion = completion.clone();
                let max = self.limits.max_response_size;
                let expected: Option<u64> = response
                    .headers()
                    .get(http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok()?.parse().ok());
                if expected == Some(0) {
                    // Nothing to send: hyper never polls the body.
                    completion.body_finished.store(true, Ordering::Relaxed);
                }
                Invoked::Response(response.map(|body| {
                    MeteredBody {
                        inner: body,
                        completion,
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

/// Offers an instance that served a request cleanly to its function's idle
/// list, and returns the request's guest output, split off the streams the
/// instance keeps.
fn keep_warm(
    pool: &WarmPool,
    mut store: Store<HostState>,
    proxy: Proxy,
    uses: u32,
    request_body: &BodyStatus,
) -> (GuestOutput, GuestOutput) {
    let state = store.data_mut();
    let output = (state.stdout.split_off(), state.stderr.split_off());
    pool.give_back(
        Warm {
            store,
            proxy,
            uses: uses + 1,
        },
        || request_body.ended.load(Ordering::Relaxed),
    );
    output
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

/// Shared by the guest task and the response body; the last one to let go
/// finishes the record and hands it out.
struct Completion {
    record: Mutex<InvocationRecord>,
    status: AtomicU16,
    /// A response body was handed to the client.
    body_streaming: AtomicBool,
    /// The response body reached its end (or there is none to send).
    body_finished: AtomicBool,
    /// The response body passed `max_response_size` and was cut.
    too_large: AtomicBool,
    /// The guest ended abnormally: an unfinished body must not look whole.
    guest_failed: AtomicBool,
    /// The request body as the server saw it: when it was cut, the client
    /// got 408, 413 or nothing instead of the guest's response.
    request_body: Arc<BodyStatus>,
    /// Stops the guest task (its client is gone or its body was cut).
    cancel: Arc<Notify>,
    io: Arc<IoMeter>,
    prices: Arc<Prices>,
    quota: Option<Reservation>,
    sinks: Arc<[RecordSink]>,
    /// Server shutdown waits for the record and cancels at the grace's end.
    shutdown: crate::server::Tracked,
}

impl Completion {
    fn guest_done(
        &self,
        outcome: Outcome,
        (wasm_fuel, work_fuel): (u64, u64),
        peak: u64,
        duration: std::time::Duration,
        (stdout, stderr): (GuestOutput, GuestOutput),
    ) {
        let mut record = self.record.lock().unwrap_or_else(|e| e.into_inner());
        stdout.log("stdout", &record.app, &record.function, &record.request_id);
        stderr.log("stderr", &record.app, &record.function, &record.request_id);
        // Wasm fuel and the host calls' fuel; the bodies' host fuel is
        // added once the response body is done too.
        record.fuel_consumed = wasm_fuel.saturating_add(work_fuel);
        record.host_fuel = work_fuel;
        record.outcome = outcome;
        record.peak_memory_bytes = peak;
        record.duration = duration;
        if outcome != Outcome::Ok {
            tracing::warn!(
                request_id = %record.request_id,
                function = %record.function,
                %outcome,
                "invocation did not end normally"
            );
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        let mut record = self
            .record
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
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
        record.request_bytes = self.io.request_bytes();
        record.response_bytes = self.io.response_bytes();
        let body_fuel = self.io.host_fuel();
        record.host_fuel = record.host_fuel.saturating_add(body_fuel);
        record.fuel_consumed = record
            .fuel_consumed
            .saturating_add(body_fuel)
            .min(record.fuel_budget);
        record.cost_nanos = self.prices.cost(&Usage {
            fuel: record.fuel_consumed,
            peak_memory_bytes: record.peak_memory_bytes,
            wall_nanos: u64::try_from(record.duration.as_nanos()).unwrap_or(u64::MAX),
            request_bytes: record.request_bytes,
            response_bytes: record.response_bytes,
        });
        if let Some(reservation) = self.quota.take() {
            reservation.settle(SystemTime::now(), record.fuel_consumed);
        }
        crate::metering::log(&record);
        for sink in self.sinks.iter() {
            sink(&record);
        }
    }
}

/// The guest's response body on its way to the client: counts bytes and
/// notices whether it was sent to the end.
struct MeteredBody {
    inner: WasiBody,
    completion: Arc<Completion>,
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
        if !self.completion.body_finished.load(Ordering::Relaxed) {
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
                        self.completion.too_large.store(true, Ordering::Relaxed);
                        self.completion.cancel.notify_one();
                        return Poll::Ready(Some(Err(
                            wasmtime_wasi_http::Error::HttpResponseBodySize(Some(self.max)),
                        )));
                    }
                    self.completion.io.add_response(len);
                    self.sent += len;
                    if self.expected.is_some_and(|expected| self.sent >= expected) {
                        self.completion.body_finished.store(true, Ordering::Relaxed);
                    }
                } else if frame.is_trailers() {
                    // Trailers are the last frame: hyper polls no further.
                    self.completion.body_finished.store(true, Ordering::Relaxed);
                }
            }
            Poll::Ready(None) => {
                // wasmtime-wasi-http ends a body that was dropped unfinished
                // (the guest trapped mid-stream) as if it were complete;
                // wasi:http says it is incomplete: cut the stream instead.
                if self.completion.guest_failed.load(Ordering::Acquire) {
                    return Poll::Ready(Some(Err(wasmtime_wasi_http::Error::HttpProtocolError)));
                }
                self.completion.body_finished.store(true, Ordering::Relaxed);
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
            self.completion.body_finished.store(true, Ordering::Relaxed);
        }
        end
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The outcome of an invocation that ended with `error`.
fn classify(error: &wasmtime::Error) -> Outcome {
    if error.downcast_ref::<DeadlineExceeded>().is_some() {
        Outcome::Timeout
    } else if error.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel) {
        Outcome::OutOfFuel
    } else if error.downcast_ref::<PoolConcurrencyLimitError>().is_some() {
        Outcome::Overloaded
    } else {
        Outcome::Trap
    }
}
