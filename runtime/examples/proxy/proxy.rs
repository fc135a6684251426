//! The reverse proxy of the `proxy` example, apart from its command line so
//! that its test (`runtime/tests/embedding.rs`) runs the same code: requests
//! for some hosts or path prefixes are answered by gust
//! ([`GustService`]), every other one is forwarded to one upstream over
//! HTTP/1.1. Bodies stream both ways; nothing is buffered.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gust_runtime::server::GustService;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, Scheme, Uri};
use http::{Request, Response, StatusCode, Version};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::Service as _;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

/// Errors of a body the proxy streams.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body from gust, from the upstream, or the proxy's own.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// How long the upstream has to send its response head before the client
/// gets 504. Default: 30 s. The body then streams for as long as it takes.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// How long shutdown waits for open connections. Default: 10 s.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Which requests gust answers: a request whose host is one of `hosts`, or
/// whose path is one of `path_prefixes` or below it. The path is passed on
/// unchanged, so gust's routes include the prefix.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    /// Host names, without a port, compared ignoring ASCII case.
    pub hosts: Vec<String>,
    /// Path prefixes ending at a segment boundary: `/api` matches `/api`
    /// and `/api/users`, not `/apis`.
    pub path_prefixes: Vec<String>,
}

impl Rules {
    /// Whether gust answers `request`.
    pub fn for_gust<B>(&self, request: &Request<B>) -> bool {
        let host_matches = host(request).is_some_and(|host| {
            self.hosts
                .iter()
                .any(|name| name.eq_ignore_ascii_case(host.host()))
        });
        let path = request.uri().path();
        host_matches
            || self.path_prefixes.iter().any(|prefix| {
                path.strip_prefix(prefix.as_str()).is_some_and(|rest| {
                    rest.is_empty() || rest.starts_with('/') || prefix.ends_with('/')
                })
            })
    }
}

/// The authority the client asked for: the URI's (HTTP/2, absolute form)
/// or the `Host` header's.
fn host<B>(request: &Request<B>) -> Option<Authority> {
    if let Some(authority) = request.uri().authority() {
        return Some(authority.clone());
    }
    let value = request.headers().get(header::HOST)?;
    Authority::try_from(value.as_bytes()).ok()
}

/// The proxy: gust for the requests its [`Rules`] select, the upstream for
/// the rest. Shared by every connection.
pub struct Proxy {
    gust: GustService,
    rules: Rules,
    upstream: (Scheme, Authority),
    client: Client<HttpConnector, Incoming>,
}

impl Proxy {
    /// A proxy answering `rules`' requests with `gust` and forwarding the
    /// others to `upstream` (`http://host:port`, no path).
    pub fn new(gust: GustService, rules: Rules, upstream: &str) -> anyhow::Result<Proxy> {
        let uri: Uri = upstream
            .parse()
            .map_err(|e| anyhow::anyhow!("upstream {upstream:?}: {e}"))?;
        let parts = uri.into_parts();
        let (Some(scheme), Some(authority)) = (parts.scheme, parts.authority) else {
            anyhow::bail!("upstream {upstream:?}: not http://host:port");
        };
        if scheme != Scheme::HTTP {
            anyhow::bail!("upstream {upstream:?}: only http:// upstreams are supported");
        }
        if parts.path_and_query.is_some_and(|p| p.as_str() != "/") {
            anyhow::bail!("upstream {upstream:?}: has a path; the client's path is sent as is");
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .build(connector);
        Ok(Proxy {
            gust,
            rules,
            upstream: (scheme, authority),
            client,
        })
    }

    /// The response to `request`, from a client at `peer`.
    pub async fn handle(
        &self,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<ProxyBody> {
        if self.rules.for_gust(&request) {
            let Ok(response) = self.gust.call(request).await;
            return response.map(|body| body.map_err(BoxError::from).boxed_unsync());
        }
        match self.forward(request, peer).await {
            Ok(response) => response,
            Err((status, error)) => {
                tracing::warn!(%peer, %status, %error, "upstream failed");
                let reason = status.canonical_reason().unwrap_or("upstream failed");
                let mut response = Response::new(
                    Full::new(Bytes::from(format!("{reason}\n")))
                        .map_err(|never| match never {})
                        .boxed_unsync(),
                );
                *response.status_mut() = status;
                response
            }
        }
    }

    /// `request` sent to the upstream, and its response streamed back.
    async fn forward(
        &self,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response<ProxyBody>, (StatusCode, String)> {
        let original_host = host(&request);
        let client_version = request.version();
        let (mut parts, body) = request.into_parts();
        let (scheme, authority) = &self.upstream;
        parts.uri = Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query(
                parts
                    .uri
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_owned(),
            )
            .build()
            .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
        // The upstream is spoken to in HTTP/1.1 whatever the client spoke.
        parts.version = Version::HTTP_11;
        remove_hop_by_hop(&mut parts.headers);
        // The upstream sees the host the client asked for (an HTTP/2
        // client sends none of its own).
        if let Some(host) = &original_host
            && let Ok(value) = HeaderValue::from_str(host.as_str())
        {
            parts.headers.entry(header::HOST).or_insert(value.clone());
            parts.headers.insert("x-forwarded-host", value);
        }
        forwarded_for(&mut parts.headers, peer);
        parts
            .headers
            .insert("x-forwarded-proto", HeaderValue::from_static("http"));

        let sent = self.client.request(Request::from_parts(parts, body));
        let response = match tokio::time::timeout(UPSTREAM_TIMEOUT, sent).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => return Err((StatusCode::BAD_GATEWAY, error_chain(&e))),
            Err(_) => {
                return Err((
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("no response head within {UPSTREAM_TIMEOUT:?}"),
                ));
            }
        };
        let (mut parts, body) = response.into_parts();
        remove_hop_by_hop(&mut parts.headers);
        // The client's version, not the upstream's: an HTTP/1.0 upstream
        // must not turn keep-alive off for an HTTP/1.1 client.
        parts.version = client_version;
        Ok(Response::from_parts(
            parts,
            body.map_err(BoxError::from).boxed_unsync(),
        ))
    }

    /// Serves HTTP/1.1 and HTTP/2 on `listener` until `shutdown` completes,
    /// then lets open connections finish (up to [`SHUTDOWN_GRACE`]).
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let builder = auto::Builder::new(TokioExecutor::new());
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Usually out of file descriptors: back off.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let proxy = self.clone();
            let service = hyper::service::service_fn(move |request| {
                let proxy = proxy.clone();
                async move { Ok::<_, Infallible>(proxy.handle(request, peer).await) }
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
        drop(listener);
        let started = Instant::now();
        tracing::info!("shutting down: finishing open connections");
        match tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await {
            Ok(()) => tracing::info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "connections finished"
            ),
            Err(_) => {
                tracing::warn!(grace = ?SHUTDOWN_GRACE, "connections still open; leaving them")
            }
        }
        Ok(())
    }
}

/// Removes the headers that describe one connection rather than the
/// message (RFC 9110 section 7.6.1): those `Connection` names, and the
/// standard ones.
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|list| list.split(','))
        .filter_map(|name| HeaderName::try_from(name.trim()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

/// Appends the client's address to `x-forwarded-for`.
fn forwarded_for(headers: &mut HeaderMap, peer: SocketAddr) {
    let ip = peer.ip().to_string();
    let value = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(earlier) => format!("{earlier}, {ip}"),
        None => ip,
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert("x-forwarded-for", value);
    }
}

/// An error and its causes, for the log (hyper-util's client error says
/// little without its source).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
