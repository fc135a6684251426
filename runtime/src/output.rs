//! Guest stdout and stderr: kept per invocation, bounded, and logged with
//! the invocation's function and request id when it ends.
//!
//! Inheriting the process's stdout (as `wasmtime serve` does) would let an
//! untrusted guest write without bound and interleave its lines with other
//! guests'. Here each stream keeps its first [`GuestOutput::CAPACITY`]
//! bytes; the rest is counted and dropped, never refused (a guest must not
//! fail because it logs too much).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// One guest output stream (stdout or stderr) of one invocation.
#[derive(Clone, Default)]
pub(crate) struct GuestOutput(Arc<Mutex<Kept>>);

#[derive(Default)]
struct Kept {
    bytes: Vec<u8>,
    dropped: u64,
}

impl GuestOutput {
    /// Bytes kept per stream per invocation: 64 KiB.
    pub(crate) const CAPACITY: usize = 64 << 10;

    fn push(&self, data: &[u8]) {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let room = Self::CAPACITY.saturating_sub(kept.bytes.len());
        let take = room.min(data.len());
        kept.bytes.extend_from_slice(&data[..take]);
        kept.dropped += (data.len() - take) as u64;
    }

    /// Moves what was kept so far into a new `GuestOutput`, leaving this
    /// one empty for the next invocation of a reused instance.
    pub(crate) fn split_off(&self) -> GuestOutput {
        let kept = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        GuestOutput(Arc::new(Mutex::new(kept)))
    }

    /// Logs what the guest wrote, if anything.
    pub(crate) fn log(&self, stream: &'static str, function: &str, request_id: &str) {
        let kept = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        if kept.bytes.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&kept.bytes);
        tracing::info!(
            target: "gust::guest",
            function,
            request_id,
            stream,
            dropped_bytes = kept.dropped,
            "{}",
            text.trim_end()
        );
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    // Writes complete at once, so no adapter task is needed.
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(Self::CAPACITY)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_capacity_bytes_and_counts_the_rest() {
        let out = GuestOutput::default();
        out.push(&vec![b'a'; GuestOutput::CAPACITY - 1]);
        out.push(b"bcd");
        let kept = out.0.lock().unwrap();
        assert_eq!(kept.bytes.len(), GuestOutput::CAPACITY);
        assert_eq!(kept.bytes.last(), Some(&b'b'));
        assert_eq!(kept.dropped, 2);
    }
}
