//! Calling a function's HTTP handler in a store, whichever `wasi:http` it
//! exports: `wasi:http/incoming-handler@0.2.x` (WASIp2) or
//! `wasi:http/handler@0.3.x` (WASIp3, which wasmtime documents as
//! experimental). The kind is read from each component's exports before it
//! is compiled ([`Kind::detect`]: the two kinds run on different engines,
//! see `engine`) and checked when it is linked ([`typecheck`]); everything around the call (fuel, deadline, gate,
//! limits, the usage record) is the same for both and lives in `invoke`.
//!
//! A p2 guest answers through a `response-outparam`; a p3 guest returns
//! its response from an async export and may keep running afterwards
//! (streaming the body, post-return work) inside the store's event loop,
//! which [`Call::run`] keeps driving until the guest has no task left.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use http_body::Body;
use http_body_util::BodyExt as _;
use wasmtime::Store;
use wasmtime::component::{InstancePre, Resource};
use wasmtime_wasi_http::handler::Proxy;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::types::{HostIncomingRequest, HostResponseOutparam};
use wasmtime_wasi_http::{WasiBody, WasiHttpView};

use crate::host::HostState;

/// What a guest answered: a response head (its body may still be
/// streaming), or an error code instead of a response.
pub(crate) type Answer = Result<hyper::Response<WasiBody>, String>;

/// Receives the guest's answer, at most once.
pub(crate) type Respond = Box<dyn FnOnce(Answer) + Send + Sync>;

/// Which `wasi:http` a component exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `wasi:http/incoming-handler@0.2.x`.
    P2,
    /// `wasi:http/handler@0.3.x` (experimental in wasmtime).
    P3,
}

impl Kind {
    /// Which `wasi:http` the component `bytes` exports, read from its
    /// top-level exports before it is compiled: p3 for an export named
    /// `wasi:http/handler@0.3.x`, else p2 (also for bytes that are not a
    /// binary component: compiling them tells what is wrong).
    pub(crate) fn detect(bytes: &[u8]) -> Kind {
        use wasmparser::{Parser, Payload};
        // Nested modules and components have exports of their own.
        let mut depth = 0usize;
        for payload in Parser::new(0).parse_all(bytes) {
            match payload {
                Ok(Payload::ModuleSection { .. } | Payload::ComponentSection { .. }) => depth += 1,
                Ok(Payload::End(_)) => depth = depth.saturating_sub(1),
                Ok(Payload::ComponentExportSection(exports)) if depth == 0 => {
                    for export in exports.into_iter().flatten() {
                        let name = export.name.full_name();
                        if name.starts_with("wasi:http/handler@0.3") {
                            return Kind::P3;
                        }
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        Kind::P2
    }

    /// How logs and docs name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::P2 => "wasi:http@0.2",
            Kind::P3 => "wasi:http@0.3",
        }
    }
}

/// The `wasi:http` exports of a linked component, found once when it is
/// type-checked: a p3 service, else a p2 proxy. The invocation core
/// instantiates the component without knowing what it exports; the HTTP
/// trigger turns the instance into the handler it calls with [`load`].
///
/// [`load`]: HttpExports::load
pub(crate) enum HttpExports {
    P2(wasmtime_wasi_http::p2::bindings::ProxyIndices),
    P3(wasmtime_wasi_http::p3::bindings::ServiceIndices),
}

impl HttpExports {
    /// Type-checks a linked component as a p3 service, else as a p2 proxy.
    pub(crate) fn new(pre: &InstancePre<HostState>) -> anyhow::Result<HttpExports> {
        if let Ok(p3) = wasmtime_wasi_http::p3::bindings::ServiceIndices::new(pre) {
            return Ok(HttpExports::P3(p3));
        }
        wasmtime_wasi_http::p2::bindings::ProxyIndices::new(pre)
            .map(HttpExports::P2)
            .map_err(|e| {
                anyhow::anyhow!(
                    "it exports neither wasi:http/incoming-handler@0.2.x nor wasi:http/handler@0.3.x: {e}"
                )
            })
    }

    /// Which `wasi:http` the component exports.
    pub(crate) fn kind(&self) -> Kind {
        match self {
            HttpExports::P2(_) => Kind::P2,
            HttpExports::P3(_) => Kind::P3,
        }
    }

    /// The handler of `instance`, an instance of the type-checked component.
    pub(crate) fn load(
        &self,
        store: &mut Store<HostState>,
        instance: &wasmtime::component::Instance,
    ) -> wasmtime::Result<Proxy> {
        Ok(match self {
            HttpExports::P2(indices) => Proxy::P2(indices.load(store, instance)?),
            HttpExports::P3(indices) => Proxy::P3(indices.load(store, instance)?),
        })
    }
}

/// The p3 request's body I/O: finishes when the body has been handed to
/// the guest, or fails with why it could not be.
type RequestIo = Pin<Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>>;

/// One request, put into a store for the guest and ready to run.
pub(crate) enum Call {
    P2 {
        request: Resource<HostIncomingRequest>,
        out: Resource<HostResponseOutparam>,
    },
    P3 {
        request: wasmtime_wasi_http::p3::Request,
        io: RequestIo,
        respond: Respond,
    },
}

impl Call {
    /// Puts `request` into `store` for a guest of `kind`; `respond` gets
    /// the guest's answer once it has one. An `Err` is a request that
    /// cannot be given to a guest (a p2 request without an authority).
    pub(crate) fn new<B>(
        kind: Kind,
        store: &mut Store<HostState>,
        request: hyper::Request<B>,
        respond: Respond,
    ) -> Result<Call, String>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let mut http = store.data_mut().http();
        match kind {
            Kind::P2 => {
                let request = http
                    .new_incoming_request(Scheme::Http, request)
                    .map_err(|e| e.to_string())?;
                let out = http
                    .new_response_outparam_from_callback(move |response| {
                        respond(response.map_err(|code| format!("{code:?}")));
                    })
                    .map_err(|e| format!("creating the response: {e}"))?;
                Ok(Call::P2 { request, out })
            }
            Kind::P3 => {
                let request = request.map(|body| body.map_err(Into::into).boxed_unsync());
                let (request, io) = wasmtime_wasi_http::p3::Request::from_http(http.hooks, request);
                Ok(Call::P3 {
                    request,
                    io: Box::pin(io),
                    respond,
                })
            }
        }
    }

    /// Runs the guest's handler until the guest is done: for p2 until the
    /// export returns, for p3 until the guest has no task left (its
    /// response body written, its post-return work finished).
    pub(crate) async fn run(
        self,
        store: &mut Store<HostState>,
        proxy: &Proxy,
    ) -> wasmtime::Result<()> {
        match (self, proxy) {
            (Call::P2 { request, out }, Proxy::P2(proxy)) => {
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(store, request, out)
                    .await
            }
            (
                Call::P3 {
                    request,
                    io,
                    respond,
                },
                Proxy::P3(service),
            ) => {
                store
                    .run_concurrent(async |accessor| {
                        match service.handle(accessor, request).await? {
                            Ok(response) => {
                                let response = accessor.with(|mut store| {
                                    response.into_http_with_getter(
                                        &mut store,
                                        io,
                                        <HostState as WasiHttpView>::http,
                                    )
                                })?;
                                respond(Ok(response));
                            }
                            Err(code) => respond(Err(format!("{code:?}"))),
                        }
                        std::future::poll_fn(|cx| accessor.poll_no_interesting_tasks(cx)).await;
                        wasmtime::Result::Ok(())
                    })
                    .await?
            }
            _ => Err(wasmtime::format_err!(
                "a request prepared for one wasi:http version was given to the other"
            )),
        }
    }
}

#[cfg(all(test, feature = "builtin-examples"))]
mod tests {
    use super::Kind;
    use crate::examples;

    #[test]
    fn the_kind_is_read_from_the_top_level_exports() {
        assert_eq!(Kind::detect(examples::P3_HELLO), Kind::P3);
        assert_eq!(Kind::detect(examples::SPIN_HELLO), Kind::P3);
        assert_eq!(Kind::detect(examples::HELLO), Kind::P2);
        // Not a binary component (WAT text, junk): p2, and compiling says why.
        assert_eq!(Kind::detect(gust_tests::guests::TABLE_BOMB), Kind::P2);
        assert_eq!(Kind::detect(b"not wasm"), Kind::P2);
        // A p3 handler exported by a nested component only is not the
        // component's own export.
        let nested = wat::parse_str(
            r#"(component
                 (component $inner
                   (instance $i)
                   (export "wasi:http/handler@0.3.0" (instance $i)))
               )"#,
        )
        .expect("valid WAT");
        assert_eq!(Kind::detect(&nested), Kind::P2);
    }
}
