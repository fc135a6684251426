//! gust as a `Service` inside someone else's server: [`GustService`], a
//! cheap-to-clone handle on a [`Server`] that implements both
//! `tower_service::Service` (axum, tonic, tower middleware,
//! `hyper_util::service::TowerToHyperService`) and hyper 1's
//! `hyper::service::Service` (`hyper::server::conn`, hyper-util's
//! `auto::Builder`).
//!
//! Every request goes through [`Server::handle`]: routing, limits, the
//! invocation, statuses and `x-request-id` as for requests from gust's own
//! listener. What belongs to a listener (connection limits, header read
//! and idle timeouts, graceful shutdown) is the embedding server's job.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use wasmtime_wasi_http::Error;

use super::{RequestBody, ResponseBody, Server};
use crate::app::Apps;

/// The error type a request body may fail with.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The future a [`GustService`] returns. It never fails: every failure is a
/// response with a status (404, 413, 500, 503, 504, ...).
pub type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<hyper::Response<ResponseBody>, Infallible>> + Send>>;

/// A [`Server`] as a `Service`: clones share the server (an `Arc`), so
/// handing one to every connection costs a reference count.
///
/// It accepts requests with any body of [`Bytes`] (hyper's `Incoming`,
/// axum's `Body`, `Full`, ...); the request needs an authority (an absolute
/// URI or a `Host` header), else 400. It is always ready: overload is
/// answered per request (503 from admission), not by back-pressure in
/// `poll_ready`. One app or several: wrap [`Server::new`] or
/// [`Server::with_apps`] (apps routed by host).
///
/// Served by hyper on a listener of the embedder's:
///
/// ```no_run
/// # async fn run() -> anyhow::Result<()> {
/// use gust_runtime::server::GustService;
/// use gust_runtime::{App, EngineConfig, GustEngine, Manifest, Server};
/// use hyper_util::rt::{TokioExecutor, TokioIo};
/// use hyper_util::server::conn::auto;
///
/// let engine = GustEngine::new(&EngineConfig::default())?;
/// let config = Manifest::load("gust.toml".as_ref())?;
/// let app = App::load(&engine, config.app, &config.runtime.cache)?;
/// let service = GustService::new(Server::new(app, config.runtime.server));
///
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// loop {
///     let (stream, _) = listener.accept().await?;
///     let service = service.clone();
///     tokio::spawn(async move {
///         let _ = auto::Builder::new(TokioExecutor::new())
///             .serve_connection(TokioIo::new(stream), service)
///             .await;
///     });
/// }
/// # }
/// ```
///
/// Or called as a tower service (here without `tower`'s `ServiceExt`):
///
/// ```no_run
/// # async fn run(service: gust_runtime::server::GustService) {
/// use bytes::Bytes;
/// use http_body_util::{BodyExt as _, Empty};
/// use tower_service::Service;
///
/// type Request = http::Request<Empty<Bytes>>;
/// let mut service = service;
/// // Always ready; the request's type says which `Service` is meant.
/// std::future::poll_fn(|cx| Service::<Request>::poll_ready(&mut service, cx))
///     .await
///     .unwrap();
/// let request = http::Request::get("http://localhost/hello")
///     .body(Empty::<Bytes>::new())
///     .unwrap();
/// let response = service.call(request).await.unwrap();
/// let body = response.into_body().collect().await.unwrap().to_bytes();
/// # }
/// ```
#[derive(Clone)]
pub struct GustService {
    server: Arc<Server>,
}

impl GustService {
    /// A service answering with `server`'s apps and settings.
    pub fn new(server: Server) -> GustService {
        GustService {
            server: Arc::new(server),
        }
    }

    /// The server the service answers with (to call [`Server::handle`]
    /// directly, for one).
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The server's apps: insert a new version of an app to swap it in
    /// while serving (see [`Apps::insert`]).
    pub fn apps(&self) -> Apps {
        self.server.apps()
    }

    /// The response to `request`, as [`Server::handle`] gives it.
    fn respond<B>(&self, request: hyper::Request<B>) -> ResponseFuture
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let server = self.server.clone();
        let request = request.map(|body| EmbeddedBody {
            inner: Box::pin(body),
        });
        Box::pin(async move { Ok(server.handle(request).await) })
    }
}

impl From<Server> for GustService {
    fn from(server: Server) -> GustService {
        GustService::new(server)
    }
}

impl Server {
    /// This server as a `Service` for another server to call (see
    /// [`GustService`]).
    pub fn into_service(self) -> GustService {
        GustService::new(self)
    }
}

impl std::fmt::Debug for GustService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GustService").finish_non_exhaustive()
    }
}

impl<B> tower_service::Service<hyper::Request<B>> for GustService
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = hyper::Response<ResponseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: hyper::Request<B>) -> ResponseFuture {
        self.respond(request)
    }
}

impl<B> hyper::service::Service<hyper::Request<B>> for GustService
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = hyper::Response<ResponseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, request: hyper::Request<B>) -> ResponseFuture {
        self.respond(request)
    }
}

/// Any request body, as gust streams it to a guest. Boxed so that a body
/// that is not `Unpin` is accepted too.
struct EmbeddedBody<B> {
    inner: Pin<Box<B>>,
}

impl<B> Body for EmbeddedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.inner.as_mut().poll_frame(cx).map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> RequestBody for EmbeddedBody<B>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    /// hyper's errors as for gust's own listener (invalid framing is 400);
    /// any other error means the body's source went away.
    fn wasi_error(error: BoxError) -> (bool, Error) {
        match error.downcast::<hyper::Error>() {
            Ok(error) => Incoming::wasi_error(*error),
            Err(error) => {
                tracing::debug!(%error, "request body failed");
                (false, Error::ConnectionTerminated)
            }
        }
    }
}
