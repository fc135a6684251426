//! The usage ledger: every invocation record, durably, off the request path.
//!
//! Records go to SQLite (bundled, WAL mode). The request path only puts a
//! record on a bounded queue ([`Ledger::sink`]); a background thread owns
//! the database and commits what has queued up once per flush interval
//! (default 200 ms) or every [`BATCH_MAX`] records, whichever comes first,
//! in one transaction that also updates per-function per-minute rollups.
//!
//! - **Crash loss window:** records of the last flush interval (plus
//!   whatever is still queued) may be lost on a crash or power cut; a
//!   graceful shutdown ([`Ledger::close`]) commits everything.
//! - **Backpressure:** when the queue ([`QUEUE_CAPACITY`] records) is full
//!   the record is dropped and counted, never waited for.
//! - **Disk trouble:** a failed commit (disk full, file removed or made
//!   read-only) is logged as an error, its records are counted as dropped,
//!   and serving goes on.
//! - **Retention:** raw records older than the retention (default 7 days)
//!   are deleted once a minute; rollups are kept.

mod query;
mod schema;

pub use query::{Format, UsageFilter, UsageRow, format_nanos, render, usage};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use rusqlite::{Connection, OpenFlags};

use crate::manifest::{LedgerLocation, LedgerSettings};
use crate::metering::InvocationRecord;

/// Records queued for the writer at most; more are dropped and counted.
pub const QUEUE_CAPACITY: usize = 65_536;
/// Records committed in one transaction at most.
pub const BATCH_MAX: usize = 4_096;
/// How often expired raw records are deleted.
const EXPIRE_EVERY: Duration = Duration::from_secs(60);

/// Counters of the ledger, for metrics.
#[derive(Debug, Default)]
pub struct LedgerStats {
    written: AtomicU64,
    dropped: AtomicU64,
    write_errors: AtomicU64,
}

impl LedgerStats {
    /// Records committed.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
    /// Records lost: queue full or a failed commit.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
    /// Failed commits.
    pub fn write_errors(&self) -> u64 {
        self.write_errors.load(Ordering::Relaxed)
    }
}

enum Msg {
    Record(Box<InvocationRecord>),
    Flush(mpsc::Sender<()>),
    Query(UsageFilter, mpsc::Sender<rusqlite::Result<Vec<UsageRow>>>),
    Stop,
}

/// A running ledger. Dropping it flushes and stops the writer, like
/// [`Ledger::close`].
pub struct Ledger {
    tx: Mutex<Option<SyncSender<Msg>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    stats: Arc<LedgerStats>,
    location: String,
}

/// gust's data directory: `$XDG_DATA_HOME/gust`, else
/// `$HOME/.local/share/gust`, else the working directory.
pub fn default_path() -> PathBuf {
    crate::dirs::gust_dir("XDG_DATA_HOME", ".local/share").map_or_else(
        || PathBuf::from("gust-ledger.sqlite"),
        |dir| dir.join("ledger.sqlite"),
    )
}

fn open_file(path: &Path) -> anyhow::Result<Connection> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the ledger directory {}", dir.display()))?;
    }
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// Opens a ledger file read-only, for reports.
pub fn open_read_only(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open ledger {}", path.display()))?;
    // Fails at once on a file that is not a ledger.
    conn.query_row("SELECT COUNT(*) FROM rollups", [], |_| Ok(()))
        .with_context(|| format!("{} is not a gust ledger", path.display()))?;
    Ok(conn)
}

impl Ledger {
    /// Opens (creating if needed) the ledger and starts its writer.
    /// Returns `None` when the ledger is disabled. A path that cannot be
    /// opened or written, or a file that is not a ledger, is an error here,
    /// at start-up, not later.
    pub fn open(settings: &LedgerSettings) -> anyhow::Result<Option<Ledger>> {
        let (conn, location) = match &settings.location {
            LedgerLocation::Disabled => return Ok(None),
            LedgerLocation::Memory => (Connection::open_in_memory()?, ":memory:".to_owned()),
            LedgerLocation::Default => open_at(&default_path())?,
            LedgerLocation::File(path) => open_at(path)?,
        };
        if let Some(max) = settings.max_size {
            let page: u64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            conn.pragma_update(None, "max_page_count", max.div_ceil(page.max(1)))?;
        }
        schema::create(&conn)
            .and_then(|()| {
                // Proves the file is writable now rather than at the first batch.
                conn.execute_batch("BEGIN IMMEDIATE; COMMIT;")
            })
            .with_context(|| format!("cannot use ledger {location}"))?;

        let stats = Arc::new(LedgerStats::default());
        let (tx, rx) = mpsc::sync_channel(QUEUE_CAPACITY);
        let writer = {
            let stats = stats.clone();
            let settings = settings.clone();
            let location = location.clone();
            std::thread::Builder::new()
                .name("gust-ledger".into())
                .spawn(move || write_loop(conn, rx, &settings, &stats, &location))
                .context("starting the ledger writer thread")?
        };
        tracing::info!(ledger = %location, flush_interval = ?settings.flush_interval, "ledger open");
        Ok(Some(Ledger {
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            stats,
            location,
        }))
    }

    /// Where the ledger is (a path, or `:memory:`).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The ledger's counters.
    pub fn stats(&self) -> Arc<LedgerStats> {
        self.stats.clone()
    }

    fn sender(&self) -> Option<SyncSender<Msg>> {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A record sink for [`crate::App::on_invocation`]. Never blocks.
    pub fn sink(&self) -> impl Fn(&InvocationRecord) + Send + Sync + 'static {
        let tx = self.sender();
        let stats = self.stats.clone();
        move |record| {
            let Some(tx) = &tx else { return };
            match tx.try_send(Msg::Record(Box::new(record.clone()))) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    let dropped = stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    if dropped.is_power_of_two() {
                        tracing::error!(dropped, "ledger queue full: usage records dropped");
                    }
                }
                Err(TrySendError::Disconnected(_)) => {
                    stats.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Waits until every record queued before this call is committed.
    pub fn flush(&self) {
        let Some(tx) = self.sender() else { return };
        let (done, wait) = mpsc::channel();
        if tx.send(Msg::Flush(done)).is_ok() {
            let _ = wait.recv();
        }
    }

    /// Usage totals, read by the writer thread (so in-memory ledgers work
    /// too) after committing what is queued.
    pub fn usage(&self, filter: UsageFilter) -> anyhow::Result<Vec<UsageRow>> {
        let tx = self.sender().context("ledger closed")?;
        let (reply, wait) = mpsc::channel();
        tx.send(Msg::Query(filter, reply))
            .map_err(|_| anyhow::anyhow!("ledger writer stopped"))?;
        Ok(wait.recv().context("ledger writer stopped")??)
    }

    /// Commits everything queued and stops the writer; records that
    /// arrive later are counted as dropped. Idempotent.
    pub fn close(&self) {
        // Record sinks hold senders too (and may outlive the server), so
        // the writer is told to stop rather than waiting for them all.
        if let Some(tx) = self.tx.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.send(Msg::Stop);
        }
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(writer) = writer {
            let _ = writer.join();
            tracing::info!(
                ledger = %self.location,
                written = self.stats.written(),
                dropped = self.stats.dropped(),
                "ledger closed"
            );
        }
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        self.close();
    }
}

fn open_at(path: &Path) -> anyhow::Result<(Connection, String)> {
    let location = path.display().to_string();
    let conn = open_file(path).with_context(|| format!("cannot open ledger {location}"))?;
    Ok((conn, location))
}

fn write_loop(
    mut conn: Connection,
    rx: mpsc::Receiver<Msg>,
    settings: &LedgerSettings,
    stats: &LedgerStats,
    location: &str,
) {
    let mut batch: Vec<InvocationRecord> = Vec::with_capacity(BATCH_MAX);
    let mut next_flush = Instant::now() + settings.flush_interval;
    let mut next_expire = Instant::now();
    loop {
        let wait = next_flush.saturating_duration_since(Instant::now());
        let msg = match rx.recv_timeout(wait) {
            Ok(msg) => Some(msg),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Msg::Stop),
        };
        match msg {
            Some(Msg::Record(record)) => {
                batch.push(*record);
                if batch.len() >= BATCH_MAX {
                    commit(&mut conn, &mut batch, stats, location);
                }
            }
            Some(Msg::Flush(done)) => {
                commit(&mut conn, &mut batch, stats, location);
                let _ = done.send(());
            }
            Some(Msg::Query(filter, reply)) => {
                commit(&mut conn, &mut batch, stats, location);
                let _ = reply.send(usage(&conn, &filter));
            }
            Some(Msg::Stop) => {
                // Records already queued behind the stop are committed too.
                while let Ok(Msg::Record(record)) = rx.try_recv() {
                    batch.push(*record);
                }
                commit(&mut conn, &mut batch, stats, location);
                return;
            }
            None => {}
        }
        let now = Instant::now();
        if now >= next_flush {
            commit(&mut conn, &mut batch, stats, location);
            next_flush = now + settings.flush_interval;
        }
        if now >= next_expire {
            let cutoff = SystemTime::now()
                .checked_sub(settings.retention)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            match schema::expire(&conn, cutoff) {
                Ok(0) => {}
                Ok(n) => tracing::debug!(expired = n, "ledger retention"),
                Err(e) => {
                    tracing::error!(ledger = %location, error = %e, "ledger retention failed")
                }
            }
            next_expire = now + EXPIRE_EVERY;
        }
    }
}

fn commit(
    conn: &mut Connection,
    batch: &mut Vec<InvocationRecord>,
    stats: &LedgerStats,
    location: &str,
) {
    if batch.is_empty() {
        return;
    }
    let mut rollups: std::collections::HashMap<schema::RollupKey, schema::Rollup> =
        std::collections::HashMap::new();
    for record in batch.iter() {
        rollups
            .entry(schema::rollup_key(record))
            .or_default()
            .add(record);
    }
    let result = conn.transaction().and_then(|tx| {
        for record in batch.iter() {
            schema::insert(&tx, record)?;
        }
        for (key, totals) in &rollups {
            schema::add_rollup(&tx, key, totals)?;
        }
        tx.commit()
    });
    let n = batch.len() as u64;
    match result {
        Ok(()) => {
            stats.written.fetch_add(n, Ordering::Relaxed);
        }
        Err(e) => {
            stats.write_errors.fetch_add(1, Ordering::Relaxed);
            let dropped = stats.dropped.fetch_add(n, Ordering::Relaxed) + n;
            tracing::error!(
                ledger = %location,
                error = %e,
                lost = n,
                dropped_total = dropped,
                "LEDGER WRITE FAILED: usage records lost; still serving"
            );
        }
    }
    batch.clear();
}
