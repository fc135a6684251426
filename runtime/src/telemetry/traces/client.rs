//! The OTLP exporter's HTTP client: one HTTP/1.1 request per export
//! batch over a new connection (TLS with webpki's roots for `https`), on
//! the hyper gust already builds, rather than a second HTTP client stack.
//!
//! The SDK exports from a thread of its own, outside tokio: each request
//! is spawned on the serving runtime and awaited from there.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::TokioIo;
use opentelemetry_http::{HttpClient, HttpError};
use tokio::io::{AsyncRead, AsyncWrite};

/// How long one export may take, connecting included.
pub(super) const TIMEOUT: Duration = Duration::from_secs(10);

/// The most of a collector's answer that is read (it is only logged).
const MAX_RESPONSE: usize = 64 * 1024;

/// Sends the exporter's requests on a tokio runtime.
#[derive(Debug)]
pub(super) struct Client {
    runtime: tokio::runtime::Handle,
    /// The last export failed: the next failure is not logged again,
    /// the next success is (a collector that is down costs one line).
    failing: AtomicBool,
}

impl Client {
    pub(super) fn new(runtime: tokio::runtime::Handle) -> Client {
        Client {
            runtime,
            failing: AtomicBool::new(false),
        }
    }

    /// Logs when exports start or stop failing.
    fn note(&self, uri: &http::Uri, problem: Option<String>) {
        let was_failing = self.failing.swap(problem.is_some(), Ordering::Relaxed);
        match problem {
            Some(problem) if !was_failing => {
                tracing::warn!(%uri, %problem, "exporting traces failed (logged again once it works)");
            }
            None if was_failing => tracing::info!(%uri, "exporting traces works again"),
            _ => {}
        }
    }
}

#[async_trait::async_trait]
impl HttpClient for Client {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        let uri = request.uri().clone();
        // The timer is made on the runtime too: this thread has none.
        let sent = self
            .runtime
            .spawn(async move { tokio::time::timeout(TIMEOUT, send(request)).await });
        let result = match sent.await? {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {TIMEOUT:?}").into()),
        };
        self.note(
            &uri,
            match &result {
                Ok(response) if response.status().is_success() => None,
                Ok(response) => Some(format!("status {}", response.status())),
                Err(e) => Some(e.to_string()),
            },
        );
        result
    }
}

/// A connected stream, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

async fn send(mut request: http::Request<Bytes>) -> Result<http::Response<Bytes>, HttpError> {
    let uri = request.uri().clone();
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(format!("{uri}: not an http:// or https:// URL").into()),
    };
    let host = uri.host().ok_or("the endpoint has no host")?;
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    // `[::1]` in a URI, `::1` to connect.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let tcp = tokio::net::TcpStream::connect((bare, port)).await?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Stream> = if https {
        let name = rustls::pki_types::ServerName::try_from(bare.to_owned())?;
        let tls = tokio_rustls::TlsConnector::from(
            crate::host::capability::outbound_http::connect::TLS.clone(),
        );
        Box::new(tls.connect(name, tcp).await?)
    } else {
        Box::new(tcp)
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    // Origin form on the request line, the authority in `host`.
    if let Some(authority) = uri.authority() {
        request
            .headers_mut()
            .insert(http::header::HOST, authority.as_str().parse()?);
    }
    *request.uri_mut() = uri.path_and_query().map_or("/", |p| p.as_str()).parse()?;
    let response = sender.send_request(request.map(Full::new)).await?;
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, MAX_RESPONSE).collect().await?.to_bytes();
    Ok(http::Response::from_parts(parts, body))
}
