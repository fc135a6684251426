//! In-process composition: a guest's request to
//! `http://NAME.gust.internal/...` invokes the app's function `NAME`
//! through its normal invocation path (admission, limits, fuel, its own
//! usage record), without a socket, and the guest gets its response
//! streamed as from the network.
//!
//! The callee's request id is the caller's followed by `.N` (its `N`th
//! outbound request), and its invocation knows its depth in the chain
//! ([`Origin`]), so a function that calls itself stops at
//! [`MAX_DEPTH`](super::MAX_DEPTH).

use std::sync::Arc;

use wasmtime_wasi_http::{Error, WasiBody};

use super::connect::Counted;
use super::{Meter, Origin, SendResult};
use crate::app::WeakApp;

/// One in-process call, ready to send.
pub(crate) struct Call {
    pub(crate) app: WeakApp,
    /// The callee's id.
    pub(crate) function: String,
    /// The callee's request id.
    pub(crate) request_id: String,
    pub(crate) origin: Origin,
    /// The caller's meter: the bytes it sends and receives.
    pub(crate) meter: Arc<Meter>,
    /// The caller's `outbound_response_size`.
    pub(crate) response_limit: u64,
}

impl Call {
    /// Invokes the callee with `request`; its response body streams to the
    /// caller, counted and cut at the caller's response limit.
    pub(crate) async fn send(self, request: http::Request<WasiBody>) -> SendResult {
        let app = self.app.upgrade().ok_or(Error::DestinationUnavailable)?;
        let Some(function) = app
            .functions()
            .iter()
            .find(|f| f.id().as_str() == self.function)
        else {
            tracing::debug!(function = %self.function, "in-process call to a function the app does not have");
            return Err(Error::DestinationNotFound);
        };
        let meter = self.meter;
        let request = request.map(|body| Counted::sent(body, meter.clone()));
        let response = function
            .call_in_process(&app, request, self.request_id, self.origin)
            .await;
        let limit = self.response_limit;
        let response = response.map(|body| Counted::received(body, meter, limit));
        Ok((response, Box::new(async { Ok(()) })))
    }
}
