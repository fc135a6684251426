//! The HTTP server: hyper 1.x over TCP, HTTP/1.1 and HTTP/2.
//!
//! Connections get `TCP_NODELAY` and a header read timeout; request bodies
//! stream to the guest with a size limit (413 past it); responses stream
//! from the guest. Shutdown is graceful: stop accepting, let in-flight
//! requests and invocations finish (up to a grace period, including guest
//! work after the response), then cancel what still runs, wait for its
//! usage records, and return.

mod body;
mod conn;
mod handler;
mod invoke;
mod reject;
mod runtime;
mod service;

pub use body::RequestBody;
pub use handler::headers;
pub use reject::Rejection;
pub use service::{GustService, ResponseFuture};

/// The body of a response gust hands out: the guest's, streamed, or one
/// gust wrote itself.
pub type ResponseBody = wasmtime_wasi_http::p2::body::HyperOutgoingBody;
pub use runtime::{EVENT_INTERVAL, runtime_builder};

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use conn::{Activity, TrackedBody};

use crate::app::{App, Apps};
use crate::exec::tracked::{INVOCATIONS, Invocations};
use crate::manifest::ServerSettings;

/// How long shutdown waits for in-flight requests. Default: 30 s.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// How long shutdown waits, once the grace is over and what still ran was
/// cancelled, for the cancelled invocations to hand in their records.
const CANCEL_WAIT: Duration = Duration::from_secs(5);

/// Serves apps over HTTP.
pub struct Server {
    apps: Apps,
    /// The operator's server settings: listen address, request limits,
    /// timeouts (`RuntimeSpec::server`).
    settings: ServerSettings,
    shutdown_grace: Duration,
}

impl Server {
    /// A server for `app`, with the operator's server `settings`.
    pub fn new(app: App, settings: ServerSettings) -> Server {
        let apps = Apps::new();
        // An empty registry has no host to conflict with.
        let _ = apps.insert(app);
        Server::with_apps(apps, settings)
    }

    /// A server for every app of `apps` (routed by host, see [`Apps`]),
    /// including those inserted into it later.
    pub fn with_apps(apps: Apps, settings: ServerSettings) -> Server {
        Server {
            apps,
            settings,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }

    /// The server's apps: insert a new version of an app into it to swap
    /// it in while serving (see [`Apps::insert`]).
    pub fn apps(&self) -> Apps {
        self.apps.clone()
    }

    /// How long shutdown waits for in-flight requests before dropping them.
    /// Default: [`DEFAULT_SHUTDOWN_GRACE`].
    pub fn shutdown_grace(mut self, grace: Duration) -> Server {
        self.shutdown_grace = grace;
        self
    }

    /// Handles one request in-process, exactly as a request from the network
    /// (routing, limits, the invocation, every failure mapped to a status,
    /// `x-request-id`), without a socket: for embedders that receive
    /// requests their own way, calibration and benchmarks. As from the
    /// network, the request needs an authority (an absolute URI or a `Host`
    /// header), else 400. The response
    /// body streams as the guest writes it; the usage record is finished
    /// once the guest and the body are done.
    pub async fn handle<B: RequestBody>(
        &self,
        request: hyper::Request<B>,
    ) -> hyper::Response<ResponseBody> {
        match self.apps.for_request(&request) {
            Some(app) => handler::handle(app, self.settings, request).await,
            None => Rejection::NotFound.into_response(),
        }
    }

    /// Binds the listen address of the server's settings.
    pub async fn bind(&self) -> anyhow::Result<TcpListener> {
        let addr = self.settings.listen;
        TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))
    }

    /// Accepts connections on `listener` until `shutdown` completes, then
    /// finishes in-flight requests and returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let local: Option<SocketAddr> = listener.local_addr().ok();
        let settings = self.settings;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(settings.header_read_timeout)
            // The read buffer bounds the request head: past it, 431.
            .max_buf_size(settings.max_header_size)
            .max_headers(settings.max_headers)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(settings.http2_max_concurrent_streams)
            .max_header_list_size(u32::try_from(settings.max_header_size).unwrap_or(u32::MAX));

        // A permit per open connection: at the limit, accepting waits and
        // new connections queue in the kernel's backlog.
        let max_connections = u32::try_from(settings.max_connections).unwrap_or(u32::MAX);
        let connections = Arc::new(Semaphore::new(max_connections as usize));
        let (stop, stopping) = watch::channel(false);
        let invocations = Invocations::new();
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            // Forget the connections that ended.
            while tasks.try_join_next().is_some() {}
            let permit = tokio::select! {
                permit = connections.clone().acquire_owned() => permit,
                () = &mut shutdown => break,
            };
            let Ok(permit) = permit else { break };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Usually out of file descriptors: back off
                        // instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let activity = Activity::new();
            let apps = self.apps.clone();
            let service = {
                let activity = activity.clone();
                let invocations = invocations.clone();
                hyper::service::service_fn(move |request| {
                    // The app as it is now: a swap mid-request does not
                    // change the version this request runs on.
                    let app = apps.for_request(&request);
                    let in_flight = activity.start_request();
                    INVOCATIONS.scope(invocations.clone(), async move {
                        let response = match app {
                            Some(app) => handler::handle(app, settings, request).await,
                            None => Rejection::NotFound.into_response(),
                        };
                        Ok::<_, std::convert::Infallible>(
                            response.map(|body| TrackedBody::new(body, in_flight)),
                        )
                    })
                })
            };
            let io = TokioIo::new(stream);
            let connection = builder.serve_connection(io, service).into_owned();
            let mut stopping = stopping.clone();
            let (idle_timeout, first_request) =
                (settings.idle_timeout, settings.header_read_timeout);
            tasks.spawn(async move {
                let _permit = permit;
                tokio::pin!(connection);
                // Runs the connection to its end, shutting it down
                // gracefully when it goes idle or the server stops.
                let mut closing = false;
                loop {
                    let close_at = activity
                        .close_at(idle_timeout, first_request)
                        .unwrap_or_else(|| Instant::now() + idle_timeout);
                    tokio::select! {
                        result = connection.as_mut() => {
                            if let Err(e) = result {
                                tracing::debug!(%peer, error = %e, "connection ended with an error");
                            }
                            break;
                        }
                        _ = stopping.wait_for(|stop| *stop), if !closing => {
                            closing = true;
                            connection.as_mut().graceful_shutdown();
                        }
                        () = tokio::time::sleep_until(close_at), if !closing => {
                            let due = activity.close_at(idle_timeout, first_request);
                            if due.is_some_and(|at| at <= Instant::now()) {
                                tracing::debug!(%peer, "closing an idle connection");
                                closing = true;
                                connection.as_mut().graceful_shutdown();
                            }
                        }
                    }
                }
            });
        }
        drop(listener);
        tracing::info!(addr = ?local, "shutting down: finishing in-flight requests");
        let _ = stop.send(true);
        // In flight: open connections (a response still streaming) and
        // invocations whose guest still works after its response was sent.
        let finished = async {
            let _ = connections.acquire_many(max_connections).await;
            invocations.idle().await;
        };
        tokio::select! {
            () = finished => tracing::info!("all requests finished"),
            () = tokio::time::sleep(self.shutdown_grace) => {
                tracing::warn!(
                    grace = ?self.shutdown_grace,
                    connections = max_connections as usize - connections.available_permits(),
                    invocations = invocations.running(),
                    "grace period over; cancelling what still runs"
                );
                // Each cancelled invocation ends as `client_gone` and hands
                // in its record once its response body is dropped too.
                invocations.cancel.send_replace(true);
                tasks.abort_all();
                let recorded = async {
                    while tasks.join_next().await.is_some() {}
                    invocations.idle().await;
                };
                match tokio::time::timeout(CANCEL_WAIT, recorded).await {
                    Ok(()) => tracing::info!("cancelled invocations recorded"),
                    Err(_) => tracing::error!(
                        invocations = invocations.running(),
                        "invocations still running after being cancelled: their records are lost"
                    ),
                }
            }
        }
        Ok(())
    }
}
