//! A loaded function: compiled once, pre-instantiated, invoked per request.
//!
//! Loading compiles the component, links it against the host interfaces and
//! type-checks its `wasi:http/incoming-handler` export into a `ProxyPre`.
//! Invoking does none of that: it creates a fresh `Store` with the
//! function's fuel budget and deadline, instantiates from the `ProxyPre`
//! (a pooled slot and copy-on-write memory: microseconds) and calls the
//! handler in a task of its own, so the guest can keep streaming the
//! response body after the head has gone to the client.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Instant, SystemTime};

use anyhow::Context as _;
use bytes::Bytes;
use http_body::Body;
use tokio::time::error::Elapsed;
use wasmtime::component::{Component, Linker};
use wasmtime::{PoolConcurrencyLimitError, Store, Trap, UpdateDeadline};
use wasmtime_wasi_http::WasiHttpView as _;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::engine::GustEngine;
use crate::host::HostState;
use crate::manifest::{FunctionId, FunctionSpec, Limits};
use crate::metering::{InvocationRecord, Outcome, RecordSink};

/// The error an epoch callback raises once an invocation's deadline passed.
#[derive(Debug, thiserror::Error)]
#[error("the invocation passed its wall-clock deadline")]
struct DeadlineExceeded;

/// A function ready to serve requests.
pub struct Function {
    id: FunctionId,
    limits: Limits,
    pre: ProxyPre<HostState>,
}

/// What a request needs to know of the route that led to the function.
#[derive(Debug, Clone)]
pub(crate) struct RequestInfo {
    pub request_id: String,
    pub route: String,
}

/// The result of an invocation, as the request path sees it.
pub(crate) enum Invoked {
    /// The guest sent a response head; its body may still be streaming.
    Response(hyper::Response<HyperOutgoingBody>),
    /// The guest answered the request with an error code instead.
    GuestError(ErrorCode),
    /// The request cannot be expressed as a `wasi:http` request (e.g. it
    /// has no authority).
    BadRequest(String),
    /// The invocation ended without a response.
    Failed { outcome: Outcome, detail: String },
}

impl Function {
    /// Compiles and pre-instantiates a function.
    pub fn load(
        engine: &GustEngine,
        linker: &Linker<HostState>,
        spec: &FunctionSpec,
    ) -> anyhow::Result<Function> {
        let bytes = match spec.source.read() {
            Ok(bytes) => bytes,
            Err(e) => anyhow::bail!("reading the component of `{}`: {e}", spec.id),
        };
        let started = Instant::now();
        let component = Component::new(engine.engine(), &bytes)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("compiling the component of `{}`", spec.id))?;
        let compiled = started.elapsed();
        let pre = linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("linking `{}` against the host", spec.id))?;
        let pre = ProxyPre::new(pre).map_err(anyhow::Error::from).with_context(|| {
            format!(
                "`{}` is not a wasi:http/proxy component (it must export wasi:http/incoming-handler@0.2.x)",
                spec.id
            )
        })?;
        tracing::info!(
            function = %spec.id,
            bytes = bytes.len(),
            compile_ms = compiled.as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            "function loaded"
        );
        Ok(Function {
            id: spec.id.clone(),
            limits: spec.limits,
            pre,
        })
    }

    /// The function's id.
    pub fn id(&self) -> &FunctionId {
        &self.id
    }

    /// The function's limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Runs one request through a fresh instance.
    pub(crate) async fn invoke<B>(
        &self,
        info: RequestInfo,
        request: hyper::Request<B>,
        sink: Option<RecordSink>,
    ) -> Invoked
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let start = SystemTime::now();
        let started = Instant::now();
        let deadline = started + self.limits.timeout;
        let budget = self.limits.fuel;

        let mut store = Store::new(self.pre.engine(), HostState::new());
        if let Err(e) = store.set_fuel(budget) {
            return failed(Outcome::Trap, format!("setting fuel: {e}"));
        }
        // Every epoch tick the guest yields to the scheduler (so a busy guest
        // cannot starve others on its worker thread) until the deadline.
        // tokio's `yield_now` defers the wake-up until the I/O driver has
        // been polled; a plain self-wake would let a spinning guest delay
        // socket events for dozens of ticks.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(wasmtime::Error::new(DeadlineExceeded))
            } else {
                Ok(UpdateDeadline::YieldCustom(
                    1,
                    Box::pin(tokio::task::yield_now()),
                ))
            }
        });

        let status = Arc::new(AtomicU16::new(0));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let seen = status.clone();
        let request = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request);
        let request = match request {
            Ok(request) => request,
            Err(e) => return Invoked::BadRequest(e.to_string()),
        };
        let out = store
            .data_mut()
            .http()
            .new_response_outparam_from_callback(move |response| {
                let code = match &response {
                    Ok(response) => response.status().as_u16(),
                    Err(_) => 500,
                };
                seen.store(code, Ordering::Relaxed);
                let _ = tx.send(response);
            });
        let out = match out {
            Ok(out) => out,
            Err(e) => return failed(Outcome::Trap, format!("creating the response: {e}")),
        };

        let pre = self.pre.clone();
        let id = self.id.clone();
        let task = tokio::spawn(async move {
            let result = tokio::time::timeout_at(deadline.into(), async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, request, out)
                    .await
            })
            .await;
            let fuel_left = store.get_fuel().unwrap_or(0);
            // Dropping the store drops an unanswered response outparam,
            // which wakes the request path.
            drop(store);
            let (mut outcome, detail) = classify(result);
            let mut code = status.load(Ordering::Relaxed);
            if code == 0 {
                if outcome == Outcome::Ok {
                    outcome = Outcome::NoResponse;
                }
                code = failure_status(outcome).as_u16();
            }
            let record = InvocationRecord {
                request_id: info.request_id,
                function: id,
                route: info.route,
                start,
                duration: started.elapsed(),
                fuel_consumed: budget.saturating_sub(fuel_left),
                fuel_budget: budget,
                status: code,
                outcome,
            };
            if outcome != Outcome::Ok {
                tracing::warn!(
                    request_id = %record.request_id,
                    function = %record.function,
                    %outcome,
                    "{detail}"
                );
            }
            crate::metering::log(&record);
            if let Some(sink) = sink {
                sink(&record);
            }
            (outcome, detail)
        });

        match rx.await {
            Ok(Ok(response)) => Invoked::Response(response),
            Ok(Err(code)) => Invoked::GuestError(code),
            Err(_) => match task.await {
                Ok((outcome, detail)) => Invoked::Failed { outcome, detail },
                Err(e) => failed(Outcome::Trap, format!("invocation task failed: {e}")),
            },
        }
    }
}

fn failed(outcome: Outcome, detail: String) -> Invoked {
    Invoked::Failed { outcome, detail }
}

/// The status a client gets when an invocation ends without a response.
pub(crate) fn failure_status(outcome: Outcome) -> http::StatusCode {
    use http::StatusCode;
    match outcome {
        Outcome::Ok | Outcome::Trap | Outcome::OutOfFuel | Outcome::NoResponse => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        Outcome::Timeout => StatusCode::GATEWAY_TIMEOUT,
        Outcome::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn classify(result: Result<wasmtime::Result<()>, Elapsed>) -> (Outcome, String) {
    let error = match result {
        Err(_) => return (Outcome::Timeout, DeadlineExceeded.to_string()),
        Ok(Ok(())) => return (Outcome::Ok, String::new()),
        Ok(Err(error)) => error,
    };
    let outcome = if error.downcast_ref::<DeadlineExceeded>().is_some() {
        Outcome::Timeout
    } else if error.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel) {
        Outcome::OutOfFuel
    } else if error.downcast_ref::<PoolConcurrencyLimitError>().is_some() {
        Outcome::Overloaded
    } else {
        Outcome::Trap
    };
    (outcome, format!("{error:?}"))
}
