//! One client connection: served by hyper, watched for idleness, closed
//! gracefully on shutdown.
//!
//! Activity is counted in requests, not bytes: a connection is idle when no
//! request is in flight and none has started or ended for `idle_timeout`,
//! and it must start its first request within `header_read_timeout` of being
//! accepted. Either way it is then shut down gracefully (HTTP/2 with
//! GOAWAY). Bytes do not count, so a client trickling an HTTP/2 preface or
//! pinging an otherwise unused connection cannot hold it open; hyper's own
//! header timeout only starts once the protocol is known.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};
use tokio::time::Instant;

/// What the connection task and the request path share.
#[derive(Debug)]
pub(crate) struct Activity {
    accepted: Instant,
    /// Milliseconds since `accepted` of the last request start or end.
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
    any_request: AtomicBool,
}

impl Activity {
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            accepted: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            any_request: AtomicBool::new(false),
        })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.accepted.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// When the connection is to be closed if nothing happens until then;
    /// `None` while a request is in flight.
    pub(crate) fn close_at(
        &self,
        idle_timeout: Duration,
        first_request: Duration,
    ) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        if !self.any_request.load(Ordering::Acquire) {
            return Some(self.accepted + first_request.min(idle_timeout));
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        Some(self.accepted + last + idle_timeout)
    }

    /// Marks a request in flight until the returned guard (moved into its
    /// response body) is dropped.
    pub(crate) fn start_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.any_request.store(true, Ordering::Release);
        self.touch();
        InFlight(self.clone())
    }
}

/// A request in flight on its connection.
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request in flight until it is done.
pub(crate) struct TrackedBody<B> {
    inner: B,
    _in_flight: InFlight,
}

impl<B> TrackedBody<B> {
    pub(crate) fn new(inner: B, in_flight: InFlight) -> Self {
        TrackedBody {
            inner,
            _in_flight: in_flight,
        }
    }
}

impl<B: Body + Unpin> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
