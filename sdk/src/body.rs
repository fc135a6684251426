//! Streaming bodies: request bodies read as they arrive, response bodies
//! written as they are produced.
//!
//! A handler that takes a [`StreamingRequest`](crate::StreamingRequest)
//! gets the request body as an [`IncomingBody`], an [`std::io::Read`] over
//! the `wasi:http` input stream, instead of a `Vec<u8>` read whole before
//! the handler runs. A response body is a [`Body`]: bytes, a reader
//! ([`Body::from_reader`]) or chunks ([`Body::from_chunks`]), written to
//! the client a chunk at a time. Together they move any amount of data
//! through a function in a fixed amount of guest memory:
//!
//! ```no_run
//! use std::io::Read;
//! use gust_sdk::{Body, StreamingRequest, http};
//!
//! /// Answers with the request body, upper-cased, 64 KiB at a time.
//! fn shout(req: StreamingRequest) -> http::Response<Body> {
//!     let mut body = req.into_body();
//!     let mut buf = vec![0; 64 * 1024];
//!     let chunks = std::iter::from_fn(move || match body.read(&mut buf) {
//!         Ok(0) | Err(_) => None,
//!         Ok(n) => Some(buf[..n].to_ascii_uppercase()),
//!     });
//!     http::Response::new(Body::from_chunks(chunks))
//! }
//!
//! gust_sdk::export!(shout);
//! ```
//!
//! The same reader and writer types carry blob objects ([`crate::blob`])
//! and outbound request and response bodies ([`crate::http`]).

use std::fmt;
use std::io::{self, Read, Write};

use crate::bindings::wasi::http::types as wasi;
use crate::bindings::wasi::io::poll::Pollable;
use crate::bindings::wasi::io::streams::{InputStream, OutputStream, StreamError};

/// The most bytes asked of the host in one read or handed to it in one
/// write: large enough that per-call costs vanish, small enough that a
/// stream never needs much guest memory.
pub(crate) const CHUNK: usize = 64 * 1024;

/// The most `blocking-write-and-flush` takes in one call (`wasi:io`).
const BLOCKING_WRITE_MAX: usize = 4096;

/// A `wasi:io` input stream as an [`io::Read`].
pub(crate) struct StreamReader {
    stream: InputStream,
}

impl StreamReader {
    pub(crate) fn new(stream: InputStream) -> Self {
        StreamReader { stream }
    }
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(CHUNK) as u64;
        loop {
            match self.stream.blocking_read(want) {
                // Blocking reads return at least a byte unless the stream
                // ended; an empty answer is a spurious wake-up.
                Ok(chunk) if chunk.is_empty() => continue,
                Ok(chunk) => {
                    let n = chunk.len().min(buf.len());
                    buf[..n].copy_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(StreamError::Closed) => return Ok(0),
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(io::Error::other(e.to_debug_string()));
                }
            }
        }
    }
}

/// A `wasi:io` output stream as an [`io::Write`] that respects the
/// host's back-pressure: it writes no more than `check-write` permits
/// and waits on the stream's pollable when nothing is permitted.
pub(crate) struct StreamWriter {
    // Declared before `stream`: the pollable is the stream's child and
    // must be dropped first.
    ready: Option<Pollable>,
    stream: OutputStream,
}

impl StreamWriter {
    pub(crate) fn new(stream: OutputStream) -> Self {
        StreamWriter {
            ready: None,
            stream,
        }
    }

    fn wait(&mut self) {
        self.ready
            .get_or_insert_with(|| self.stream.subscribe())
            .block();
    }

    /// Copies `reader` to the stream in chunks of [`CHUNK`] bytes;
    /// returns the number of bytes copied.
    pub(crate) fn copy_from(&mut self, reader: &mut dyn Read) -> Result<u64, CopyError> {
        let mut buf = vec![0; CHUNK];
        let mut total = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CopyError::Read(e)),
            };
            self.write_all(&buf[..n]).map_err(CopyError::Write)?;
            total += n as u64;
        }
        self.flush().map_err(CopyError::Write)?;
        Ok(total)
    }
}

/// Which side of a copy failed.
#[derive(Debug)]
pub(crate) enum CopyError {
    /// The source.
    Read(io::Error),
    /// The destination stream.
    Write(io::Error),
}

impl Write for StreamWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let permitted = self.stream.check_write().map_err(write_error)?;
            if permitted == 0 {
                self.wait();
                continue;
            }
            let n = buf.len().min(permitted as usize).min(CHUNK);
            self.stream.write(&buf[..n]).map_err(write_error)?;
            return Ok(n);
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush().map_err(write_error)?;
        // Flushed once check-write permits writing again.
        loop {
            if self.stream.check_write().map_err(write_error)? > 0 {
                return Ok(());
            }
            self.wait();
        }
    }
}

fn write_error(e: StreamError) -> io::Error {
    match e {
        StreamError::Closed => io::Error::new(io::ErrorKind::BrokenPipe, "stream closed"),
        StreamError::LastOperationFailed(e) => io::Error::other(e.to_debug_string()),
    }
}

/// A request (or outbound response) body, read as it arrives.
///
/// It implements [`io::Read`]; [`IncomingBody::bytes`] reads what is left
/// into memory. Dropping it unread tells the host the rest is not wanted.
pub struct IncomingBody {
    // Declared before `body`: the stream is the body's child.
    reader: Option<StreamReader>,
    _body: Option<wasi::IncomingBody>,
}

impl IncomingBody {
    /// The body of a `wasi:http` message, or an error when its stream
    /// was already taken.
    pub(crate) fn new(body: wasi::IncomingBody) -> Result<Self, String> {
        let stream = body
            .stream()
            .map_err(|()| "body stream already taken".to_owned())?;
        Ok(IncomingBody {
            reader: Some(StreamReader::new(stream)),
            _body: Some(body),
        })
    }

    /// A body with no bytes.
    pub fn empty() -> Self {
        IncomingBody {
            reader: None,
            _body: None,
        }
    }

    /// Reads the rest of the body into memory.
    pub fn bytes(mut self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.read_to_end(&mut out)?;
        Ok(out)
    }
}

impl Read for IncomingBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.reader {
            Some(reader) => reader.read(buf),
            None => Ok(0),
        }
    }
}

impl fmt::Debug for IncomingBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncomingBody").finish_non_exhaustive()
    }
}

/// A response (or outbound request) body: bytes known up front, or a
/// stream of bytes produced while it is sent.
///
/// Anything that converts into `Vec<u8>` (`String`, `&'static str`,
/// `Vec<u8>`, ...) converts into a `Body`; a reader or an iterator of
/// chunks becomes one with [`Body::from_reader`] or [`Body::from_chunks`].
/// A body of known bytes is sent with a `content-length`; a streamed one
/// is sent chunked unless the response sets `content-length` itself (it
/// must then be exact).
pub struct Body(Inner);

enum Inner {
    Bytes(Vec<u8>),
    Reader(Box<dyn Read>),
    Chunks(Box<dyn Iterator<Item = Vec<u8>>>),
}

impl Body {
    /// A body with no bytes.
    pub fn empty() -> Self {
        Body(Inner::Bytes(Vec::new()))
    }

    /// A body read from `reader` while it is sent. A read error ends the
    /// body abnormally: the client sees a truncated response.
    pub fn from_reader(reader: impl Read + 'static) -> Self {
        Body(Inner::Reader(Box::new(reader)))
    }

    /// A body made of the chunks `chunks` yields, each sent as it comes.
    pub fn from_chunks<I>(chunks: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Vec<u8>> + 'static,
        I::IntoIter: 'static,
    {
        Body(Inner::Chunks(Box::new(chunks.into_iter().map(Into::into))))
    }

    /// The body's bytes if they are known up front.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.0 {
            Inner::Bytes(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// Collects the body into memory (reading a streamed one to its end).
    pub fn into_bytes(self) -> io::Result<Vec<u8>> {
        match self.0 {
            Inner::Bytes(bytes) => Ok(bytes),
            Inner::Reader(mut reader) => {
                let mut out = Vec::new();
                reader.read_to_end(&mut out)?;
                Ok(out)
            }
            Inner::Chunks(chunks) => Ok(chunks.flatten().collect()),
        }
    }

    /// Writes the body to `stream`; the caller finishes the body.
    pub(crate) fn write_to(self, stream: OutputStream) -> Result<(), CopyError> {
        if let Inner::Bytes(bytes) = &self.0
            && bytes.len() <= BLOCKING_WRITE_MAX
        {
            // The common small body: one host call instead of a
            // check-write, write, flush and check-write round.
            if !bytes.is_empty() {
                stream
                    .blocking_write_and_flush(bytes)
                    .map_err(|e| CopyError::Write(write_error(e)))?;
            }
            return Ok(());
        }
        let mut writer = StreamWriter::new(stream);
        match self.0 {
            Inner::Bytes(bytes) => {
                writer.write_all(&bytes).map_err(CopyError::Write)?;
                writer.flush().map_err(CopyError::Write)?;
            }
            Inner::Reader(mut reader) => {
                writer.copy_from(&mut reader)?;
            }
            Inner::Chunks(chunks) => {
                for chunk in chunks {
                    writer.write_all(&chunk).map_err(CopyError::Write)?;
                }
                writer.flush().map_err(CopyError::Write)?;
            }
        }
        Ok(())
    }
}

impl Default for Body {
    fn default() -> Self {
        Body::empty()
    }
}

impl<T: Into<Vec<u8>>> From<T> for Body {
    fn from(bytes: T) -> Self {
        Body(Inner::Bytes(bytes.into()))
    }
}

impl From<IncomingBody> for Body {
    fn from(body: IncomingBody) -> Self {
        Body::from_reader(body)
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Bytes(bytes) => write!(f, "Body({} bytes)", bytes.len()),
            Inner::Reader(_) => f.write_str("Body(reader)"),
            Inner::Chunks(_) => f.write_str("Body(chunks)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_known_up_front() {
        let body = Body::from("hello");
        assert_eq!(body.as_bytes(), Some(&b"hello"[..]));
        assert_eq!(body.into_bytes().unwrap(), b"hello");
        assert_eq!(Body::default().as_bytes(), Some(&[][..]));
        assert_eq!(Body::from(vec![1, 2]).into_bytes().unwrap(), [1, 2]);
    }

    #[test]
    fn streamed_bodies_are_collected_in_order() {
        let reader = Body::from_reader(std::io::Cursor::new(vec![7; 100_000]));
        assert!(reader.as_bytes().is_none());
        assert_eq!(reader.into_bytes().unwrap(), vec![7; 100_000]);
        let chunks = Body::from_chunks(["a", "bc", "", "def"]);
        assert!(chunks.as_bytes().is_none());
        assert_eq!(chunks.into_bytes().unwrap(), b"abcdef");
        assert_eq!(format!("{:?}", Body::from("xy")), "Body(2 bytes)");
    }

    #[test]
    fn an_empty_incoming_body_reads_nothing() {
        assert!(IncomingBody::empty().bytes().unwrap().is_empty());
    }
}
