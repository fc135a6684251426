//! The request body as the guest reads it: streamed, with a size limit and
//! a deadline.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};
use wasmtime_wasi_http::Error;

use super::Rejection;
use crate::host::IoMeter;

/// Why the body stream was cut. The request path answers 400, 413 and 408
/// in place of the guest's response, and the usage record shows what the
/// client got.
#[derive(Debug, Default)]
pub(crate) struct BodyStatus {
    pub(crate) too_large: AtomicBool,
    pub(crate) timed_out: AtomicBool,
    /// The body's framing is invalid (a bad chunk size, bare-LF chunk
    /// lines): the client is still there and gets 400.
    pub(crate) malformed: AtomicBool,
    /// The connection ended before the body did.
    pub(crate) client_gone: AtomicBool,
    /// The body no longer holds the connection: it was empty from the
    /// start (set by `invoke`, for any body type), was read to its end, or
    /// was let go (and is being drained).
    pub(crate) ended: AtomicBool,
}

impl BodyStatus {
    /// What the client gets instead of the guest's response, if the body
    /// was cut.
    pub(crate) fn rejection(&self) -> Option<Rejection> {
        if self.malformed.load(Ordering::Relaxed) {
            Some(Rejection::MalformedBody)
        } else if self.client_gone.load(Ordering::Relaxed) {
            Some(Rejection::Failed(crate::Outcome::ClientGone))
        } else if self.too_large.load(Ordering::Relaxed) {
            Some(Rejection::BodyTooLarge)
        } else if self.timed_out.load(Ordering::Relaxed) {
            Some(Rejection::BodyTimeout)
        } else {
            None
        }
    }

    /// The status of [`BodyStatus::rejection`].
    pub(crate) fn replaced_status(&self) -> Option<http::StatusCode> {
        self.rejection().as_ref().map(Rejection::status)
    }
}

/// A request body gust can stream to a guest: hyper's, for requests from
/// the network, or an in-process one ([`Server::handle`](super::Server::handle)).
pub trait RequestBody: Body<Data = Bytes> + Send + Unpin + 'static {
    /// This body's error as `wasi:http` reports it, and whether it means the
    /// body's framing was invalid (the client gets 400) rather than that the
    /// client went away.
    fn wasi_error(error: Self::Error) -> (bool, Error);
}

impl RequestBody for Incoming {
    fn wasi_error(error: hyper::Error) -> (bool, Error) {
        (is_malformed(&error), Error::Hyper(error))
    }
}

impl RequestBody for http_body_util::Full<Bytes> {
    fn wasi_error(error: std::convert::Infallible) -> (bool, Error) {
        match error {}
    }
}

/// A request one function sends another in process (outbound HTTP's
/// composition): its errors are the caller's, as if its client went away.
impl RequestBody for wasmtime_wasi_http::WasiBody {
    fn wasi_error(error: Error) -> (bool, Error) {
        (false, error)
    }
}

impl RequestBody for http_body_util::Empty<Bytes> {
    fn wasi_error(error: std::convert::Infallible) -> (bool, Error) {
        match error {}
    }
}

/// Streams the client's body to the guest. Fails the stream once more than
/// `limit` bytes arrived or once the body is not complete by `deadline`.
/// Nothing is buffered here.
///
/// Dropped before its end (the guest answered without reading it all), it
/// drains the rest in the background, within the same limits: hyper would
/// otherwise close the socket with unread bytes, the kernel would reset the
/// connection, and a client still sending its body would never read the
/// response.
pub(crate) struct LimitedBody<B: RequestBody = Incoming> {
    inner: Option<B>,
    io: Arc<IoMeter>,
    remaining: u64,
    limit: u64,
    deadline: Instant,
    /// Armed the first time the client makes the guest wait.
    timer: Option<Pin<Box<Sleep>>>,
    status: Arc<BodyStatus>,
}

impl<B: RequestBody> LimitedBody<B> {
    pub(crate) fn new(
        inner: B,
        limit: u64,
        deadline: Instant,
        io: Arc<IoMeter>,
    ) -> (Self, Arc<BodyStatus>) {
        let status = Arc::new(BodyStatus::default());
        let body = LimitedBody {
            inner: Some(inner),
            io,
            remaining: limit,
            limit,
            deadline,
            timer: None,
            status: status.clone(),
        };
        (body, status)
    }
}

impl<B: RequestBody> Body for LimitedBody<B> {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > this.remaining {
                        this.status.too_large.store(true, Ordering::Relaxed);
                        return Poll::Ready(Some(Err(Error::HttpRequestBodySize(Some(
                            this.limit,
                        )))));
                    }
                    this.remaining -= len;
                    this.io.add_request(len);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                let (malformed, error) = B::wasi_error(e);
                let cut = if malformed {
                    &this.status.malformed
                } else {
                    // The connection ended under the body.
                    &this.status.client_gone
                };
                cut.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(None) => {
                this.status.ended.store(true, Ordering::Relaxed);
                Poll::Ready(None)
            }
            Poll::Pending => {
                let deadline = this.deadline;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.as_mut().poll(cx).is_ready() {
                    this.status.timed_out.store(true, Ordering::Relaxed);
                    return Poll::Ready(Some(Err(Error::ConnectionReadTimeout)));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl<B: RequestBody> Drop for LimitedBody<B> {
    fn drop(&mut self) {
        self.status.ended.store(true, Ordering::Relaxed);
        let Some(inner) = self.inner.take() else {
            return;
        };
        if inner.is_end_stream() || self.status.too_large.load(Ordering::Relaxed) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (remaining, deadline) = (self.remaining, self.deadline);
        runtime.spawn(drain(inner, remaining, deadline));
    }
}

/// Whether hyper failed the body because its framing is invalid (HTTP/1.1
/// chunked decoding reports `InvalidInput` or `InvalidData`) rather than
/// because the connection ended (`UnexpectedEof`, a reset, a stream reset
/// by the HTTP/2 peer).
fn is_malformed(e: &hyper::Error) -> bool {
    if e.is_parse() {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData
            );
        }
        source = cause.source();
    }
    false
}

/// Reads and discards the rest of a body: at most `remaining` bytes, until
/// `deadline`.
async fn drain<B: RequestBody>(mut body: B, mut remaining: u64, deadline: Instant) {
    let discard = async {
        while let Some(Ok(frame)) = body.frame().await {
            let len = frame.data_ref().map_or(0, |d| d.len() as u64);
            match remaining.checked_sub(len) {
                Some(left) => remaining = left,
                None => return,
            }
        }
    };
    let _ = tokio::time::timeout_at(deadline, discard).await;
}
