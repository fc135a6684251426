//! Clients of a test server: HTTP/1.1 and HTTP/2 connections (hyper's
//! client), and raw sockets for what hyper's client would never send or
//! to see the bytes on the wire.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::REQUEST_TIMEOUT;

/// A client connection's driver task; it ends with the connection.
pub type Connection = tokio::task::JoinHandle<Result<(), hyper::Error>>;

/// A TCP connection to `addr` (bounded: 10 s).
pub async fn connect(addr: SocketAddr) -> TcpStream {
    timeout(Duration::from_secs(10), TcpStream::connect(addr))
        .await
        .expect("connect timed out")
        .expect("connect failed")
}

/// An HTTP/1.1 keep-alive client connection for request bodies of type
/// `B`, and its driver task.
pub async fn http1<B>(addr: SocketAddr) -> (hyper::client::conn::http1::SendRequest<B>, Connection)
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    timeout(Duration::from_secs(10), try_http1(addr))
        .await
        .expect("connect timed out")
        .expect("an HTTP/1.1 connection")
}

/// [`http1`], failing rather than panicking (and unbounded): for clients
/// that count failures.
pub async fn try_http1<B>(
    addr: SocketAddr,
) -> anyhow::Result<(hyper::client::conn::http1::SendRequest<B>, Connection)>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr).await?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    Ok((sender, tokio::spawn(connection)))
}

/// An HTTP/2 (h2c, prior knowledge) client connection, and its driver
/// task. Its requests need an absolute URI: `http://localhost/hello`.
pub async fn http2(
    addr: SocketAddr,
) -> (
    hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    Connection,
) {
    let stream = connect(addr).await;
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("HTTP/2 handshake");
    (sender, tokio::spawn(connection))
}

/// The request with `Host: localhost` unless it has a `Host` (an HTTP/1.1
/// request needs one).
pub fn with_host<B>(mut request: Request<B>) -> Request<B> {
    request
        .headers_mut()
        .entry(http::header::HOST)
        .or_insert(http::HeaderValue::from_static("localhost"));
    request
}

/// GETs `uri` on an existing connection, HTTP/1.1 or HTTP/2, and reads the
/// body: the status.
pub async fn get_on<S: SendOn>(sender: &mut S, uri: &str) -> StatusCode {
    let request = with_host(Request::get(uri).body(Full::new(Bytes::new())).unwrap());
    let response = timeout(REQUEST_TIMEOUT, sender.send_on(request))
        .await
        .expect("request timed out")
        .expect("request failed");
    let status = response.status();
    timeout(REQUEST_TIMEOUT, response.into_body().collect())
        .await
        .expect("body timed out")
        .expect("body failed");
    status
}

/// HTTP/1.1 and HTTP/2 senders alike.
pub trait SendOn {
    fn send_on(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> impl Future<Output = hyper::Result<http::Response<hyper::body::Incoming>>>;
}

impl SendOn for hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    fn send_on(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> impl Future<Output = hyper::Result<http::Response<hyper::body::Incoming>>> {
        self.send_request(request)
    }
}

impl SendOn for hyper::client::conn::http2::SendRequest<Full<Bytes>> {
    fn send_on(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> impl Future<Output = hyper::Result<http::Response<hyper::body::Incoming>>> {
        self.send_request(request)
    }
}

/// A new connection with `bytes` written on it (a raw request, or its
/// start), to read the answer from or to leave.
pub async fn raw_request(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut stream = connect(addr).await;
    stream.write_all(bytes).await.expect("writing the request");
    stream
}

/// Sends raw bytes on a fresh connection and reads until the server closes
/// it (bounded by `limit`), as [`read_to_close`].
pub async fn raw_exchange(
    addr: SocketAddr,
    bytes: &[u8],
    limit: Duration,
) -> Result<Vec<u8>, Vec<u8>> {
    let mut stream = connect(addr).await;
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(bytes).await;
    read_to_close(&mut stream, limit).await
}

/// Reads until the server closes the connection (EOF or reset): `Ok` with
/// everything read, or `Err` with what was read when `limit` ran out.
pub async fn read_to_close<R: AsyncRead + Unpin>(
    stream: &mut R,
    limit: Duration,
) -> Result<Vec<u8>, Vec<u8>> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut reply = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(reply),
            Ok(Ok(n)) => reply.extend_from_slice(&chunk[..n]),
            Err(_) => return Err(reply),
        }
    }
}

/// The reply of a connection the server closed, or a panic naming `what`
/// with what arrived before the limit.
pub fn closed(reply: Result<Vec<u8>, Vec<u8>>, what: &str) -> Vec<u8> {
    reply.unwrap_or_else(|partial| {
        panic!(
            "{what}: connection not closed within the limit; got {:?}",
            String::from_utf8_lossy(&partial)
        )
    })
}

/// Reads a response head (up to the blank line). `None` if the connection
/// closed first; panics if nothing complete came within `limit`.
pub async fn read_head<R: AsyncRead + Unpin>(stream: &mut R, limit: Duration) -> Option<String> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout_at(deadline, stream.read(&mut byte)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return None,
            Ok(Ok(_)) => head.push(byte[0]),
            Err(_) => panic!(
                "no response head within {limit:?}; got {:?}",
                String::from_utf8_lossy(&head)
            ),
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// The first line of a raw answer.
pub fn status_line(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

/// The `x-request-id` of a raw HTTP/1.1 response head.
pub fn request_id_in(head: &str) -> String {
    head.lines()
        .find_map(|line| line.strip_prefix("x-request-id: "))
        .expect("x-request-id")
        .trim()
        .to_owned()
}
