//! What every trigger needs to invoke a function, and nothing of HTTP.
//!
//! [`Function::prepare`] admits the invocation (quota reservation,
//! concurrency slot), takes an idle instance or makes a fresh store, and
//! arms it: the fuel budget in portions, the epoch deadline and time-slice
//! yields, the call hook that charges host work. The trigger then sets up
//! its call on the store (the HTTP trigger: the `wasi:http` request and
//! response outparam) and [`Prepared::spawn`]s it: the guest runs in a task
//! of its own, under the engine's gate, its deadline, cancellation and the
//! server's shutdown; when it ends, its fuel, peak memory and output go
//! into the usage record ([`Completion`]), and a cleanly finished instance
//! may be kept for reuse.
//!
//! The core instantiates the function's pre-instantiated component without
//! knowing what it exports: the trigger's call gets the `Instance` and
//! finds its own export in it (the HTTP trigger: `wasi:http`'s handler, via
//! `call::HttpExports`; a timer or a queue consumer would look up theirs).

pub(crate) mod completion;
pub(crate) mod tracked;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::{Instant, SystemTime};

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use wasmtime::component::Instance;
use wasmtime::{AsContext as _, CallHook, PoolConcurrencyLimitError, Store, Trap, UpdateDeadline};

use tokio::sync::OwnedSemaphorePermit;

use crate::admission::Refused;
use crate::function::{Function, Ready};
use crate::gate;
use crate::host::{HostState, IoMeter};
use crate::metering::{InvocationRecord, Outcome, RecordSink};
use crate::quota::Reservation;
use crate::reuse::Warm;
pub(crate) use completion::{Completion, TriggerEnd};

/// Raised by the epoch callback once an invocation's deadline has passed.
#[derive(Debug, thiserror::Error)]
#[error("the invocation passed its wall-clock deadline")]
pub(crate) struct DeadlineExceeded;

/// Why an invocation did not start.
pub(crate) enum NotStarted {
    /// The function's quota is used up for this window.
    QuotaExceeded(std::time::Duration),
    /// The function's concurrency limit and queue are full.
    Busy(Refused),
    /// The store could not be set up.
    Failed { outcome: Outcome, detail: String },
}

/// An admitted invocation with its store armed, before the guest runs.
pub(crate) struct Prepared {
    pub(crate) store: Store<HostState>,
    /// The function's linked component.
    pub(crate) ready: Arc<Ready>,
    /// The idle instance taken for reuse, if any.
    instance: Option<Instance>,
    /// Requests the reused instance served before.
    uses: u32,
    slot: OwnedSemaphorePermit,
    reservation: Option<Reservation>,
    start: SystemTime,
    started: Instant,
    deadline: Instant,
    budget: u64,
    metering: bool,
}

/// What the guest task hands back: how it ended and why.
pub(crate) type Ended = (Outcome, String);

/// The call a trigger runs on the instance.
pub(crate) type GuestCall = Box<
    dyn for<'a> FnOnce(
            &'a mut Store<HostState>,
            &'a Instance,
        ) -> Pin<Box<dyn Future<Output = wasmtime::Result<()>> + Send + 'a>>
        + Send,
>;

/// A trigger's call as a [`GuestCall`] (naming the closure's
/// higher-ranked signature once, here).
pub(crate) fn guest_call<F>(call: F) -> GuestCall
where
    F: for<'a> FnOnce(
            &'a mut Store<HostState>,
            &'a Instance,
        ) -> Pin<Box<dyn Future<Output = wasmtime::Result<()>> + Send + 'a>>
        + Send
        + 'static,
{
    Box::new(call)
}

impl Function {
    /// Admits an invocation and arms its store. Host body bytes are counted
    /// into `io` (the trigger moves them).
    pub(crate) async fn prepare(&self, io: Arc<IoMeter>) -> Result<Prepared, NotStarted> {
        // A lazily loaded function's first request loads its component.
        let ready = self.ready().await.map_err(|e| NotStarted::Failed {
            outcome: Outcome::Trap,
            detail: format!("loading the function: {e:#}"),
        })?;
        // Reserves the whole fuel budget against the quota, so concurrent
        // invocations cannot overshoot it; released if this returns before
        // the invocation runs, settled with the fuel used when it ends.
        let reservation = match &self.quota {
            Some(quota) => {
                match quota.reserve(SystemTime::now(), self.limits.fuel, self.limits.timeout) {
                    Ok(reservation) => Some(reservation),
                    Err(retry_after) => return Err(NotStarted::QuotaExceeded(retry_after)),
                }
            }
            None => None,
        };

        let slot = match self.admission.admit().await {
            Ok(slot) => slot,
            Err(refused) => return Err(NotStarted::Busy(refused)),
        };

        let start = SystemTime::now();
        let started = Instant::now();
        let deadline = started + self.limits.timeout;
        let budget = self.limits.fuel;

        // A fresh store, or an idle instance when the function opted into
        // reuse and one is free.
        let (mut store, instance, uses) = match self.warm.as_deref().and_then(|w| w.take()) {
            Some(Warm {
                mut store,
                instance,
                uses,
            }) => {
                store.data_mut().begin(io);
                (store, Some(instance), uses)
            }
            None => {
                let mut store = Store::new(
                    ready.pre.component().engine(),
                    HostState::new(io, &self.limits, self.caps.instance(&self.id)),
                );
                store.limiter(|state| &mut state.limiter);
                // Fuel in portions, so that a guest stopped in a loop is
                // billed what it burned (see `fuel_flush_interval`).
                if self.fuel
                    && let Err(e) = store.fuel_async_yield_interval(Some(self.fuel_flush))
                {
                    return Err(NotStarted::Failed {
                        outcome: Outcome::Trap,
                        detail: format!("setting the fuel interval: {e}"),
                    });
                }
                // The guest's own handle tables, next to the host's resource
                // table (capped in `HostState::new`).
                store.set_max_component_handles(self.limits.resources);
                // Every call into the host is charged and may grow the host
                // memory the guest holds (see `host::work`).
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
            return Err(NotStarted::Failed {
                outcome: Outcome::Trap,
                detail: format!("setting fuel: {e}"),
            });
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
            let owed = state
                .io
                .host_fuel()
                .saturating_add(state.work.fuel())
                .saturating_add(state.caps.outbound_http.fuel());
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
                // 3.6 ms; see `host::work`).
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

        Ok(Prepared {
            store,
            ready,
            instance,
            uses,
            slot,
            reservation,
            start,
            started,
            deadline,
            budget,
            metering,
        })
    }
}

impl Prepared {
    /// The shared record of this invocation, finished when the guest task
    /// and everything else holding it (see [`TriggerEnd`]) are done.
    pub(crate) fn completion(
        &mut self,
        function: &Function,
        request_id: String,
        route: String,
        sinks: Arc<[RecordSink]>,
        trigger: Arc<dyn TriggerEnd>,
        trace: crate::telemetry::traces::Invocation,
    ) -> Arc<Completion> {
        let io = self.store.data().io.clone();
        self.store.data_mut().request_id.clone_from(&request_id);
        Arc::new(Completion {
            record: Mutex::new(InvocationRecord {
                app: function.app.clone(),
                request_id,
                function: function.id.clone(),
                route,
                start: self.start,
                duration: Default::default(),
                fuel_consumed: 0,
                host_fuel: 0,
                fuel_budget: self.budget,
                peak_memory_bytes: 0,
                request_bytes: 0,
                response_bytes: 0,
                cost_nanos: 0,
                currency: function.prices.currency.clone(),
                status: 0,
                outcome: Outcome::Ok,
                parent_request_id: None,
                outbound_requests: 0,
                outbound_bytes: 0,
            }),
            guest_failed: AtomicBool::new(false),
            cancel: Arc::new(Notify::new()),
            io,
            prices: function.prices.clone(),
            quota: self.reservation.take(),
            sinks,
            shutdown: tracked::Tracked::new(),
            trigger,
            trace,
        })
    }

    /// Runs `call` on the instance (instantiated now, unless an idle one was
    /// taken) in a task of its own, until it returns, traps, passes its
    /// deadline, or is cancelled (through `completion.cancel` or the
    /// server's shutdown). Its usage goes into `completion`.
    pub(crate) fn spawn(
        self,
        function: &Function,
        completion: Arc<Completion>,
        call: GuestCall,
    ) -> JoinHandle<Ended> {
        let Prepared {
            mut store,
            ready,
            instance,
            uses,
            slot,
            started,
            deadline,
            budget,
            metering,
            ..
        } = self;
        let pre = ready.pre.clone();
        let gate = function.gate.clone();
        let pool = function.warm.clone();
        tokio::spawn(async move {
            let run = async {
                let instance = match instance {
                    Some(instance) => instance,
                    None => pre.instantiate_async(&mut store).await?,
                };
                call(&mut store, &instance).await?;
                wasmtime::Result::Ok(instance)
            };
            // Capability calls and outbound requests are its children.
            let run = crate::telemetry::traces::in_context(completion.trace.context(), run);
            let result = tokio::select! {
                result = tokio::time::timeout_at(deadline.into(), gate::gated(&gate, run)) => Some(result),
                () = completion.cancel.notified() => None,
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
            let (outcome, mut detail, instance) = match result {
                Some(Ok(Ok(instance))) => (Outcome::Ok, String::new(), Some(instance)),
                Some(Ok(Err(error))) => (classify(&error), format!("{error:?}"), None),
                Some(Err(_)) => (Outcome::Timeout, DeadlineExceeded.to_string(), None),
                None => (Outcome::ClientGone, "the client went away".to_owned(), None),
            };
            // Known before the store goes: dropping it ends a response
            // body the guest never finished, which wasmtime-wasi-http
            // reports as a clean end.
            if outcome != Outcome::Ok {
                completion.guest_failed();
            }
            let output = match (pool, instance) {
                (Some(pool), Some(instance))
                    if outcome == Outcome::Ok && completion.trigger.answered() =>
                {
                    let output = store.data_mut().caps.output.split_off();
                    let trigger = completion.trigger.clone();
                    pool.give_back(
                        Warm {
                            store,
                            instance,
                            uses: uses + 1,
                        },
                        move || trigger.released(),
                    );
                    output
                }
                _ => {
                    let output = state.caps.output.taken();
                    // Dropping the store drops an unanswered response
                    // outparam, which wakes the trigger.
                    drop(store);
                    output
                }
            };
            drop(slot);
            crate::host::work::after_release(host_peak);
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
    }
}

/// The outcome of an invocation that ended with `error`.
pub(crate) fn classify(error: &wasmtime::Error) -> Outcome {
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
