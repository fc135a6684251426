//! Sending an allowed request over the network, without letting a guest
//! reach the operator's own network.
//!
//! gust resolves the name itself, checks every address it resolves to,
//! and connects to a checked address (never by name, so a name that
//! resolves differently the second time cannot slip through: no DNS
//! rebinding). Loopback, private, shared (CGNAT), link-local (with the
//! cloud metadata addresses), unspecified, multicast, broadcast and
//! reserved addresses are refused, also in their IPv4-mapped,
//! IPv4-compatible, NAT64 and 6to4 IPv6 forms, unless the allow-list entry
//! that allowed the request names that address itself
//! (`http://127.0.0.1:8080`). HTTPS runs rustls over the connected stream
//! and verifies the certificate for the request's host name (webpki's
//! roots, as wasmtime-wasi-http's own client). Redirects are never
//! followed: a guest gets the 3xx as it is.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

use super::Meter;
use super::allow::Host;

/// Whether a guest may not connect to `ip` unless an allow-list entry
/// names it: every address that is not a public unicast one.
pub(crate) fn is_blocked(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => blocked_v4(v4),
        IpAddr::V6(v6) => blocked_v6(v6),
    }
}

fn blocked_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_unspecified()
        || a == 0 // "this network", 0.0.0.0/8
        || ip.is_loopback() // 127.0.0.0/8
        || ip.is_private() // 10/8, 172.16/12, 192.168/16
        || (a == 100 && (b & 0xc0) == 64) // shared address space (CGNAT), 100.64/10
        || ip.is_link_local() // 169.254/16, with the metadata 169.254.169.254
        || ip.is_multicast() // 224/4
        || a >= 240 // reserved 240/4 and the broadcast 255.255.255.255
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments, 192.0.0/24
        || (a == 198 && (b & 0xfe) == 18) // benchmarking, 198.18/15
}

fn blocked_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    // IPv4 addresses written as IPv6: mapped (::ffff:a.b.c.d), compatible
    // (::a.b.c.d, deprecated), NAT64 (64:ff9b::a.b.c.d) and 6to4
    // (2002:AABB:CCDD::): the IPv4 address decides.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return blocked_v4(v4);
    }
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if segments[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_unspecified() && !ip.is_loopback() {
        return blocked_v4(embedded(segments[6], segments[7]));
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return blocked_v4(embedded(segments[6], segments[7]));
    }
    if segments[0] == 0x2002 {
        return blocked_v4(embedded(segments[1], segments[2]));
    }
    ip.is_unspecified() // ::
        || ip.is_loopback() // ::1
        || (segments[0] & 0xfe00) == 0xfc00 // unique local fc00::/7, with fd00:ec2::254
        || (segments[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (segments[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
        || ip.is_multicast() // ff00::/8
}

/// Where one request goes and what it may do.
pub(crate) struct Target {
    pub(crate) https: bool,
    pub(crate) host: Host,
    pub(crate) port: u16,
    /// The allow-list entry that allowed the request names `host`'s
    /// address itself: it may be a private one.
    pub(crate) named_ip: bool,
    pub(crate) connect_timeout: Duration,
    pub(crate) response_limit: u64,
}

/// What [`send`] hands back, as `WasiHttpHooks::send_request` wants it.
pub(crate) type Sent = (
    http::Response<WasiBody>,
    Box<dyn std::future::Future<Output = Result<(), Error>> + Send>,
);

/// The addresses `target` may be connected to: its IP, or every address
/// its name resolves to, each checked. Refused (`destination-IP-prohibited`)
/// when any is blocked.
async fn resolve(target: &Target) -> Result<Vec<SocketAddr>, Error> {
    let addrs: Vec<SocketAddr> = match &target.host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, target.port)],
        Host::Name(name) => {
            let lookup = tokio::net::lookup_host((name.as_str(), target.port));
            match tokio::time::timeout(target.connect_timeout, lookup).await {
                Err(_) => return Err(Error::DnsTimeout),
                Ok(Err(e)) => {
                    return Err(Error::DnsError {
                        rcode: Some(e.to_string()),
                        info_code: None,
                    });
                }
                Ok(Ok(addrs)) => addrs.collect(),
            }
        }
    };
    if addrs.is_empty() {
        return Err(Error::DestinationNotFound);
    }
    // A name that resolves to a private address anywhere among its
    // answers is refused whole: which answer is used must not decide.
    let named = target.named_ip && matches!(target.host, Host::Ip(_));
    if let Some(blocked) = addrs.iter().find(|a| is_blocked(a.ip()))
        && !named
    {
        return Err(Error::DestinationIpProhibited).inspect_err(|_| {
            tracing::debug!(address = %blocked.ip(), host = %target.host, "outbound connection refused: not a public address");
        });
    }
    Ok(addrs)
}

/// Connects to the first of `addrs` that answers, within the timeout.
async fn connect(addrs: &[SocketAddr], timeout: Duration) -> Result<TcpStream, Error> {
    let attempt = async {
        let mut last = Error::DestinationUnavailable;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    last = Error::ConnectionRefused;
                }
                Err(e) => last = Error::Connect(e),
            }
        }
        Err(last)
    };
    let stream = tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| Error::ConnectionTimeout)??;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// The TLS client configuration: webpki's roots, HTTP/1.1.
pub(crate) static TLS: LazyLock<Arc<rustls::ClientConfig>> = LazyLock::new(|| {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map(|builder| builder.with_root_certificates(roots).with_no_client_auth());
    match &mut config {
        Ok(config) => config.alpn_protocols = vec![b"http/1.1".to_vec()],
        Err(e) => tracing::error!(error = %e, "TLS client configuration"),
    }
    Arc::new(config.unwrap_or_else(|_| {
        // The ring provider supports the default versions; this is never
        // reached, and a client with no roots verifies nothing as valid.
        rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
    }))
});

/// A connected stream, plain or TLS.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Sends `request` to `target` over a new connection; the response body
/// is counted into `meter` and cut past the response limit.
pub(crate) async fn send(
    target: Target,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    meter: Arc<Meter>,
) -> Result<Sent, Error> {
    let connect_timeout = options
        .and_then(|o| o.connect_timeout)
        .map_or(target.connect_timeout, |t| t.min(target.connect_timeout));
    let addrs = resolve(&target).await?;
    let tcp = connect(&addrs, connect_timeout).await?;
    let stream: Box<dyn Stream> = if target.https {
        let name = match &target.host {
            Host::Name(name) => rustls::pki_types::ServerName::try_from(name.clone())
                .map_err(|_| Error::HttpRequestUriInvalid)?,
            Host::Ip(ip) => rustls::pki_types::ServerName::from(*ip),
        };
        let tls = tokio_rustls::TlsConnector::from(TLS.clone());
        let stream = tokio::time::timeout(connect_timeout, tls.connect(name, tcp))
            .await
            .map_err(|_| Error::ConnectionTimeout)?
            .map_err(Error::Tls)?;
        Box::new(stream)
    } else {
        Box::new(tcp)
    };
    let (mut sender, conn) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;

    // The request line carries the path only (no proxy): the authority is
    // in the `host` header wasmtime-wasi-http set.
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    *request.uri_mut() = path;
    let request = request.map(|body| Counted::sent(body, meter.clone()));

    let first_byte = options.and_then(|o| o.first_byte_timeout);
    let between_bytes = options.and_then(|o| o.between_bytes_timeout);
    // The connection is driven while the response head is awaited; what
    // is left of it (the body) is the I/O future handed back.
    let mut conn = Box::pin(conn);
    let exchange = sender.send_request(request);
    let exchange = async {
        match first_byte {
            Some(t) => tokio::time::timeout(t, exchange)
                .await
                .map_err(|_| Error::ConnectionReadTimeout)?
                .map_err(Error::from),
            None => exchange.await.map_err(Error::from),
        }
    };
    tokio::pin!(exchange);
    let mut conn_done = false;
    let response = std::future::poll_fn(|cx| {
        if let Poll::Ready(response) = exchange.as_mut().poll(cx) {
            return Poll::Ready(response);
        }
        if !conn_done && let Poll::Ready(result) = conn.as_mut().poll(cx) {
            conn_done = true;
            if let Err(e) = result {
                return Poll::Ready(Err(Error::from(e)));
            }
            return exchange.as_mut().poll(cx);
        }
        Poll::Pending
    })
    .await?;
    let limit = target.response_limit;
    let response = response.map(|incoming| {
        let body = incoming.map_err(Error::from);
        let body: WasiBody = match between_bytes {
            Some(t) => Idle::new(body.boxed_unsync(), t).boxed_unsync(),
            None => body.boxed_unsync(),
        };
        Counted::received(body, meter, limit)
    });
    let io: Box<dyn std::future::Future<Output = Result<(), Error>> + Send> = if conn_done {
        Box::new(async { Ok(()) })
    } else {
        Box::new(async move { conn.await.map_err(Error::from) })
    };
    Ok((response, io))
}

/// A body whose data bytes are counted into the invocation's outbound
/// meter: what the guest sent, or what it received (cut past `limit`
/// with `HTTP-response-body-size`).
pub(crate) struct Counted {
    inner: WasiBody,
    meter: Arc<Meter>,
    /// Counts bytes sent (a request body) rather than received.
    sent: bool,
    limit: u64,
    seen: u64,
}

impl Counted {
    /// A request body the guest sends, counted as sent.
    pub(crate) fn sent(inner: WasiBody, meter: Arc<Meter>) -> WasiBody {
        Counted {
            inner,
            meter,
            sent: true,
            limit: u64::MAX,
            seen: 0,
        }
        .boxed_unsync()
    }

    /// A response body the guest receives, counted as received and cut
    /// past `limit` bytes.
    pub(crate) fn received(inner: WasiBody, meter: Arc<Meter>, limit: u64) -> WasiBody {
        Counted {
            inner,
            meter,
            sent: false,
            limit,
            seen: 0,
        }
        .boxed_unsync()
    }
}

impl Body for Counted {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            let len = data.len() as u64;
            if self.seen.saturating_add(len) > self.limit {
                return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(self.limit)))));
            }
            self.seen += len;
            self.meter.add_bytes(self.sent, len);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that fails once no frame came for `timeout` (the
/// guest's `between-bytes-timeout`).
struct Idle {
    inner: WasiBody,
    timeout: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl Idle {
    fn new(inner: WasiBody, timeout: Duration) -> Idle {
        Idle {
            inner,
            timeout,
            timer: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl Body for Idle {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Pending => {
                if self.timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Some(Err(Error::ConnectionReadTimeout)));
                }
                Poll::Pending
            }
            ready => {
                let deadline = tokio::time::Instant::now() + self.timeout;
                self.timer.as_mut().reset(deadline);
                ready
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(ip: &str) -> bool {
        is_blocked(ip.parse().expect("an IP"))
    }

    #[test]
    fn private_and_special_addresses_are_blocked() {
        for ip in [
            "127.0.0.1",
            "127.255.0.9",
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.169.254",
            "169.254.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::",
            "::1",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
        ] {
            assert!(blocked(ip), "{ip} must be blocked");
        }
    }

    #[test]
    fn public_addresses_are_not() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "93.184.216.34",
            "2606:4700:4700::1111",
            "::ffff:1.1.1.1",
            "2002:0808:0808::",
        ] {
            assert!(!blocked(ip), "{ip} is public");
        }
    }
}
