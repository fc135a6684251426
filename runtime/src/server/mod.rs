//! The HTTP server: hyper 1.x over TCP, HTTP/1.1 and HTTP/2.
//!
//! Connections get `TCP_NODELAY` and a header read timeout; request bodies
//! stream to the guest with a size limit (413 past it); responses stream
//! from the guest. Shutdown is graceful: stop accepting, let in-flight
//! requests finish (up to a grace period), then return.

mod body;
mod handler;
mod reject;

pub use handler::headers;
pub use reject::Rejection;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::app::App;

/// How long shutdown waits for in-flight requests. Default: 30 s.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Serves `app` over HTTP.
pub struct Server {
    app: App,
    shutdown_grace: Duration,
}

impl Server {
    /// A server for `app`.
    pub fn new(app: App) -> Server {
        Server {
            app,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }

    /// How long shutdown waits for in-flight requests before dropping them.
    /// Default: [`DEFAULT_SHUTDOWN_GRACE`].
    pub fn shutdown_grace(mut self, grace: Duration) -> Server {
        self.shutdown_grace = grace;
        self
    }

    /// Binds the app's listen address.
    pub async fn bind(&self) -> anyhow::Result<TcpListener> {
        let addr = self.app.settings().listen;
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
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.app.settings().header_read_timeout)
            // The read buffer bounds the request head: past it, 431.
            .max_buf_size(self.app.settings().max_header_size)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(
                u32::try_from(self.app.settings().max_header_size).unwrap_or(u32::MAX),
            );

        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(accepted) => accepted,
                        Err(e) => {
                            // Usually out of file descriptors: back off
                            // instead of spinning.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let app = self.app.clone();
                    let service = hyper::service::service_fn(move |request| {
                        let app = app.clone();
                        async move {
                            Ok::<_, std::convert::Infallible>(handler::handle(app, request).await)
                        }
                    });
                    let connection = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .into_owned();
                    let connection = graceful.watch(connection);
                    tokio::spawn(async move {
                        if let Err(e) = connection.await {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                    });
                }
                () = &mut shutdown => break,
            }
        }
        drop(listener);
        tracing::info!(addr = ?local, "shutting down: finishing in-flight requests");
        tokio::select! {
            () = graceful.shutdown() => tracing::info!("all connections closed"),
            () = tokio::time::sleep(self.shutdown_grace) => {
                tracing::warn!(grace = ?self.shutdown_grace, "grace period over; dropping remaining connections");
            }
        }
        Ok(())
    }
}
