//! Outbound HTTP (`wasi:http/outgoing-handler` and the p3 client): a
//! capability a manifest will grant per function. No manifest can grant it
//! yet, so every request is refused with `HTTP-request-denied` before
//! anything touches the network (an untrusted guest must not reach the
//! operator's network).

use wasmtime_wasi_http::{WasiBody, WasiHttpHooks};

use super::Capability;
use crate::manifest::{AppSpec, CapabilitySettings, FunctionId};

/// The outbound HTTP capability.
pub(crate) struct OutboundHttp;

/// What the app's functions may send.
pub(crate) struct AppPolicy {
    /// The app itself, for in-process composition (set once it is built).
    app: std::sync::OnceLock<crate::app::WeakApp>,
}

impl AppPolicy {
    /// Remembers the app whose functions composition calls.
    pub(crate) fn bind(&self, app: crate::app::WeakApp) {
        let _ = self.app.set(app);
    }
}

impl Capability for OutboundHttp {
    type App = AppPolicy;
    type Instance = Policy;

    fn open(_app: &AppSpec, _settings: &CapabilitySettings) -> anyhow::Result<AppPolicy> {
        Ok(AppPolicy {
            app: std::sync::OnceLock::new(),
        })
    }

    fn instance(_app: &AppPolicy, _function: &FunctionId) -> Policy {
        Policy::DenyAll
    }
}

/// What an instance may send: the `wasi:http` hooks of its store.
#[derive(Debug)]
pub(crate) enum Policy {
    /// Every request is refused.
    DenyAll,
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn std::future::Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
)>;

impl WasiHttpHooks for Policy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn std::future::Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn std::future::Future<Output = SendResult> + Send> {
        match self {
            Policy::DenyAll => {
                tracing::debug!(uri = %request.uri(), "outbound HTTP denied: not granted");
                Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
            }
        }
    }

    // Not outbound HTTP, but these hooks are the store's one `wasi:http`
    // hook object: the buffer of a p2 outgoing body (responses included)
    // is host memory a guest controls (see `host_work`).
    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        crate::host::work::OUTGOING_BODY_CHUNK
    }
}
