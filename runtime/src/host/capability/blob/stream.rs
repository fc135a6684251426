//! Object bodies as `wasi:io` streams, never whole in host memory.
//!
//! Writing: an `outgoing-value`'s body stream hands chunks (at most
//! [`CHUNK`] each, one queued) to a task that appends them to a
//! *spool*, a temporary file: inside the filesystem container the value
//! is bound to (`write-data`), so `finish` renames it into place, or in
//! the app's staging directory (S3 containers, and bytes written before
//! `write-data`). The size limit is enforced as the guest writes; a spool
//! that is never committed is deleted when dropped, so an abandoned or
//! failed write leaves nothing.
//!
//! Reading: an `incoming-value`'s stream is fed by a task reading the file
//! (or the S3 response) one chunk each time the guest asks for more, so a
//! stream holds at most two chunks and one nobody reads holds none. (A
//! guest may hold up to its `resources` limit of such streams.)

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cap_std::fs::Dir;
use tokio::sync::mpsc;
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

use super::names::TEMP_PREFIX;

/// The most one stream call moves, bytes.
pub(crate) const CHUNK: usize = 64 * 1024;

/// Chunks queued between a writing stream and its spooler.
const QUEUE: usize = 1;

/// A temporary file an object is written to before it is committed.
pub(crate) struct Spool {
    /// The directory it lives in.
    pub(crate) dir: Arc<Dir>,
    /// Its name there.
    pub(crate) temp: String,
    pub(crate) file: std::fs::File,
    /// Bytes written.
    pub(crate) size: u64,
    /// Renamed into place: nothing to delete.
    pub(crate) committed: bool,
}

impl Spool {
    /// Creates an empty spool in `dir`.
    pub(crate) fn create(dir: Arc<Dir>) -> std::io::Result<Spool> {
        let temp = format!("{TEMP_PREFIX}tmp-{:016x}", rand::random::<u64>());
        let file = dir
            .open_with(
                &temp,
                cap_std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true),
            )?
            .into_std();
        Ok(Spool {
            dir,
            temp,
            file,
            size: 0,
            committed: false,
        })
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: a leftover is a hidden temporary file that
            // listings skip.
            let _ = self.dir.remove_file(&self.temp);
        }
    }
}

/// Runs blocking file work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(io_message(&e)),
        Err(_) => Err("the storage task failed".into()),
    }
}

/// An I/O error as the guest sees it: its kind, never a host path.
pub(crate) fn io_message(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        NotFound => "no such object".into(),
        AlreadyExists => "already exists".into(),
        StorageFull | QuotaExceeded => "no space left on the storage device".into(),
        IsADirectory => "the name is a directory level of other objects".into(),
        NotADirectory => "a part of the name is an object, not a directory level".into(),
        DirectoryNotEmpty => "directory not empty".into(),
        PermissionDenied => "permission denied (the name leaves the container?)".into(),
        _ => {
            // cap-std reports an escape (`..`, a symlink out) as
            // "a path led outside of the filesystem"; keep only that.
            let text = e.to_string();
            if text.contains("outside") {
                "the name leads outside the container".into()
            } else {
                format!("storage error: {}", e.kind())
            }
        }
    }
}

/// What an outgoing value's stream sends its task.
pub(crate) enum Msg {
    Data(Bytes),
    /// `finish`: hand back the spool.
    End,
}

/// The error a write ran into, shared by the stream, its task and the
/// value (the first one wins).
pub(crate) type Status = Arc<Mutex<Option<String>>>;

fn set_status(status: &Status, message: String) {
    if let Ok(mut s) = status.lock()
        && s.is_none()
    {
        *s = Some(message);
    }
}

fn get_status(status: &Status) -> Option<String> {
    status.lock().ok().and_then(|s| s.clone())
}

/// Where a value's task creates its spool: decided at the first chunk
/// (inside the bound filesystem container if `write-data` came first).
pub(crate) type SpoolDir = Arc<Mutex<Option<Arc<Dir>>>>;

/// Starts the task that spools an outgoing value's chunks; returns its
/// sender and handle.
pub(crate) fn spawn_spooler(
    staging: Option<Arc<Dir>>,
    bound_dir: SpoolDir,
    status: Status,
) -> (
    mpsc::Sender<Msg>,
    tokio::task::JoinHandle<Result<Option<Spool>, String>>,
) {
    let (tx, mut rx) = mpsc::channel::<Msg>(QUEUE);
    let task = tokio::spawn(async move {
        let mut spool: Option<Spool> = None;
        while let Some(msg) = rx.recv().await {
            match msg {
                Msg::End => return Ok(spool),
                Msg::Data(bytes) => {
                    let current = spool.take();
                    let dir = bound_dir
                        .lock()
                        .ok()
                        .and_then(|d| d.clone())
                        .or_else(|| staging.clone());
                    let written = blocking(move || {
                        let mut s = match (current, dir) {
                            (Some(s), _) => s,
                            (None, Some(dir)) => Spool::create(dir)?,
                            (None, None) => {
                                return Err(std::io::Error::other("no container is granted"));
                            }
                        };
                        s.file.write_all(&bytes)?;
                        s.size += bytes.len() as u64;
                        Ok(s)
                    })
                    .await;
                    match written {
                        Ok(s) => spool = Some(s),
                        Err(e) => {
                            // The spool (if any) was dropped with the
                            // failed closure: nothing partial is left.
                            set_status(&status, e.clone());
                            return Err(e);
                        }
                    }
                }
            }
        }
        // The value and its stream are gone without `finish`: the spool
        // is dropped and deleted.
        Err("the value was dropped before finish".into())
    });
    (tx, task)
}

/// Host memory a stream may buffer: a chunk queued and one in flight.
pub(crate) const HELD_PER_STREAM: usize = 2 * CHUNK;

/// Counts one stream's buffers in its instance's host memory (see
/// `host::work`) while the stream lives.
pub(crate) struct Held(Arc<std::sync::atomic::AtomicUsize>);

impl Held {
    pub(crate) fn new(count: &Arc<std::sync::atomic::AtomicUsize>) -> Held {
        count.fetch_add(HELD_PER_STREAM, std::sync::atomic::Ordering::Relaxed);
        Held(count.clone())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0
            .fetch_sub(HELD_PER_STREAM, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The `output-stream` of an outgoing value's body.
pub(crate) struct BodyWriter {
    pub(crate) tx: mpsc::Sender<Msg>,
    pub(crate) status: Status,
    /// Bytes accepted so far.
    pub(crate) written: u64,
    /// The container's `max_object_size`.
    pub(crate) limit: u64,
    /// Bytes accepted and not yet charged (charged at the next blob call).
    pub(crate) uncharged: Arc<AtomicU64>,
    /// Its buffers, in the instance's host memory.
    pub(crate) _held: Held,
}

impl BodyWriter {
    fn failed(&self) -> StreamError {
        let message = get_status(&self.status).unwrap_or_else(|| "the value is finished".into());
        StreamError::LastOperationFailed(wasmtime::format_err!("{message}"))
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for BodyWriter {
    async fn ready(&mut self) {
        // Wakes when the queue has room (or the task is gone).
        let _ = self.tx.reserve().await;
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for BodyWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        if get_status(&self.status).is_some() {
            return Err(self.failed());
        }
        let len = bytes.len() as u64;
        if self.written.saturating_add(len) > self.limit {
            set_status(
                &self.status,
                format!(
                    "the object is larger than max_object_size ({} bytes)",
                    self.limit
                ),
            );
            return Err(self.failed());
        }
        if bytes.is_empty() {
            return Ok(());
        }
        match self.tx.try_send(Msg::Data(bytes)) {
            Ok(()) => {
                self.written += len;
                self.uncharged.fetch_add(len, Ordering::Relaxed);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                Err(StreamError::trap("write past the permit check-write gave"))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(self.failed()),
        }
    }

    fn flush(&mut self) -> StreamResult<()> {
        match get_status(&self.status) {
            Some(_) => Err(self.failed()),
            None => Ok(()),
        }
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        if get_status(&self.status).is_some() || self.tx.is_closed() {
            return Err(self.failed());
        }
        Ok(if self.tx.capacity() > 0 { CHUNK } else { 0 })
    }
}

/// What an incoming value's stream reads from: chunks its producer reads
/// only when asked (one at a time), so a stream nobody reads holds no
/// buffer and one being read at most two chunks.
pub(crate) struct Chunks {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    demand: Arc<tokio::sync::Semaphore>,
    /// A chunk was asked for and has not arrived yet.
    asked: bool,
}

/// The producer's side of [`Chunks`].
pub(crate) struct ChunkSender {
    tx: mpsc::Sender<Result<Bytes, String>>,
    demand: Arc<tokio::sync::Semaphore>,
}

impl ChunkSender {
    /// Waits until the reader asks for the next chunk; `false` once the
    /// reader is gone.
    pub(crate) async fn wanted(&self) -> bool {
        tokio::select! {
            permit = self.demand.acquire() => match permit {
                Ok(permit) => {
                    permit.forget();
                    true
                }
                Err(_) => false,
            },
            () = self.tx.closed() => false,
        }
    }

    /// Hands over a chunk (or an error); `false` once the reader is gone.
    pub(crate) async fn send(&self, chunk: Result<Bytes, String>) -> bool {
        self.tx.send(chunk).await.is_ok()
    }
}

impl Chunks {
    fn ask(&mut self) {
        if !self.asked {
            self.asked = true;
            self.demand.add_permits(1);
        }
    }

    /// The next chunk; `None` at the end.
    pub(crate) async fn next(&mut self) -> Option<Result<Bytes, String>> {
        self.ask();
        let item = self.rx.recv().await;
        self.asked = false;
        item
    }

    /// The next chunk if it is there (asking for it otherwise).
    fn try_next(&mut self) -> Result<Result<Bytes, String>, mpsc::error::TryRecvError> {
        self.ask();
        let item = self.rx.try_recv();
        if item.is_ok() {
            self.asked = false;
        }
        item
    }
}

/// A producer and its reader's queue.
pub(crate) fn chunk_queue() -> (ChunkSender, Chunks) {
    let (tx, rx) = mpsc::channel(1);
    let demand = Arc::new(tokio::sync::Semaphore::new(0));
    (
        ChunkSender {
            tx,
            demand: demand.clone(),
        },
        Chunks {
            rx,
            demand,
            asked: false,
        },
    )
}

/// Reads `len` bytes of `file` from its current position, a chunk each
/// time the reader asks.
pub(crate) fn spawn_file_reader(file: std::fs::File, len: u64) -> (Chunks, AbortOnDrop) {
    let (tx, rx) = chunk_queue();
    let task = tokio::spawn(async move {
        let mut file = Some(file);
        let mut left = len;
        while left > 0 {
            if !tx.wanted().await {
                return;
            }
            let Some(mut f) = file.take() else { break };
            let want = left.min(CHUNK as u64) as usize;
            let read = blocking(move || {
                use std::io::Read as _;
                let mut buf = vec![0u8; want];
                let mut filled = 0;
                while filled < want {
                    let n = f.read(&mut buf[filled..])?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                buf.truncate(filled);
                Ok((f, buf))
            })
            .await;
            match read {
                Ok((f, buf)) => {
                    if buf.is_empty() {
                        // The file shrank under us: end early.
                        break;
                    }
                    left -= buf.len() as u64;
                    file = Some(f);
                    if !tx.send(Ok(Bytes::from(buf))).await {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        }
    });
    (rx, AbortOnDrop(task))
}

/// Aborts a producer task when its stream goes.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The `input-stream` of an incoming value.
pub(crate) struct BodyReader {
    rx: Chunks,
    buffered: Bytes,
    error: Option<String>,
    done: bool,
    _task: AbortOnDrop,
    /// Its buffers, in the instance's host memory (a stream the guest
    /// holds; `consume-sync` reads in the call and holds none after it).
    _held: Option<Held>,
}

impl BodyReader {
    pub(crate) fn new(rx: Chunks, task: AbortOnDrop) -> BodyReader {
        BodyReader {
            rx,
            buffered: Bytes::new(),
            error: None,
            done: false,
            _task: task,
            _held: None,
        }
    }

    /// Counts this stream's buffers in `count` while it lives.
    pub(crate) fn holding(mut self, count: &Arc<std::sync::atomic::AtomicUsize>) -> BodyReader {
        self._held = Some(Held::new(count));
        self
    }

    /// Reads everything (at most `limit` bytes) into one buffer, for
    /// `consume-sync`.
    pub(crate) async fn read_all(mut self, limit: u64) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        while let Some(chunk) = self.rx.next().await {
            let chunk = chunk?;
            if (out.len() + chunk.len()) as u64 > limit {
                return Err(format!("the object is larger than {limit} bytes"));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for BodyReader {
    async fn ready(&mut self) {
        if !self.buffered.is_empty() || self.error.is_some() || self.done {
            return;
        }
        match self.rx.next().await {
            Some(Ok(bytes)) => self.buffered = bytes,
            Some(Err(e)) => self.error = Some(e),
            None => self.done = true,
        }
    }
}

#[wasmtime_wasi::async_trait]
impl InputStream for BodyReader {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if self.buffered.is_empty() {
            if let Some(e) = &self.error {
                return Err(StreamError::LastOperationFailed(wasmtime::format_err!(
                    "{e}"
                )));
            }
            if self.done {
                return Err(StreamError::Closed);
            }
            match self.rx.try_next() {
                Ok(Ok(bytes)) => self.buffered = bytes,
                Ok(Err(e)) => {
                    self.error = Some(e.clone());
                    return Err(StreamError::LastOperationFailed(wasmtime::format_err!(
                        "{e}"
                    )));
                }
                Err(mpsc::error::TryRecvError::Empty) => return Ok(Bytes::new()),
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.done = true;
                    return Err(StreamError::Closed);
                }
            }
        }
        let n = size.min(self.buffered.len());
        Ok(self.buffered.split_to(n))
    }
}
