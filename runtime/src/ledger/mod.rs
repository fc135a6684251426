//! The usage ledger: every invocation record, durably, off the request path.
//! (Long because the writer thread, its recovery from a removed file and
//! its tests belong together; schema, queue and queries are split out.)
//!
//! Records go to SQLite (bundled, WAL mode). The request path only copies a
//! record into a bounded buffer ([`Ledger::sink`], see `queue`); a
//! background thread owns the database and commits what has queued up once
//! per flush interval (default 200 ms), or as soon as [`BATCH_MAX`] records
//! wait, in one transaction that also updates per-function per-minute
//! rollups.
//!
//! - **Crash loss window:** records of the last flush interval (plus
//!   whatever is still queued) may be lost on a crash or power cut; a
//!   graceful shutdown ([`Ledger::close`]) commits everything.
//! - **Backpressure:** when the queue ([`QUEUE_CAPACITY`] records) is full
//!   the record is dropped and counted, never waited for.
//! - **Disk trouble:** a failed commit (disk full, file made read-only) is
//!   logged as an error, its records are counted as dropped, and serving
//!   goes on.
//! - **File removed or replaced:** SQLite would go on committing to the
//!   open, unlinked file, and everything would vanish at exit. So before
//!   each commit the writer compares the path's (device, inode) with the
//!   file it opened; when the file is gone or another one is there, it logs
//!   an error, counts the records committed to the lost file since it was
//!   opened as lost (`records_lost`, plus one write error), and recreates
//!   the ledger at the same path for the records to come.
//! - **Retention:** raw records are deleted once a minute when they were
//!   committed more than the retention (default 7 days) ago (so they also
//!   started before that); rollups are kept.

mod query;
mod queue;
mod schema;

pub use query::{Format, UsageFilter, UsageRow, format_nanos, parse_since, render, usage};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use rusqlite::{Connection, OpenFlags};

use crate::manifest::{LedgerLocation, LedgerSettings};
use crate::metering::InvocationRecord;
use queue::{Control, Queue, Refused};

/// Records queued for the writer at most; more are dropped and counted.
pub const QUEUE_CAPACITY: usize = 65_536;
/// Records waiting that wake the writer before its flush interval.
pub const BATCH_MAX: usize = 4_096;
/// How often expired raw records are deleted.
const EXPIRE_EVERY: Duration = Duration::from_secs(60);

/// Counters of the ledger, for metrics.
#[derive(Debug, Default)]
pub struct LedgerStats {
    written: AtomicU64,
    dropped: AtomicU64,
    write_errors: AtomicU64,
    records_lost: AtomicU64,
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
    /// Failed commits, and ledger files found removed or replaced.
    pub fn write_errors(&self) -> u64 {
        self.write_errors.load(Ordering::Relaxed)
    }
    /// Records committed to a ledger file that was then removed or replaced
    /// while open (counted when the writer notices, before its next commit).
    pub fn records_lost(&self) -> u64 {
        self.records_lost.load(Ordering::Relaxed)
    }
}

/// A running ledger. Dropping it flushes and stops the writer, like
/// [`Ledger::close`].
pub struct Ledger {
    queue: Arc<Queue>,
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
    // One thread (the writer) owns the connection: SQLite's own mutexes
    // would only add a lock per call.
    let flags =
        OpenFlags::default() & !OpenFlags::SQLITE_OPEN_FULL_MUTEX | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
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
        let path = match &settings.location {
            LedgerLocation::Disabled => return Ok(None),
            LedgerLocation::Memory => None,
            LedgerLocation::Default => Some(default_path()),
            LedgerLocation::File(path) => Some(path.clone()),
        };
        let (conn, location) = match &path {
            None => (Connection::open_in_memory()?, ":memory:".to_owned()),
            Some(path) => open_at(path)?,
        };
        prepare(&conn, settings).with_context(|| format!("cannot use ledger {location}"))?;
        let file = match path {
            Some(path) => {
                Some(OpenFile::new(path).with_context(|| format!("cannot use ledger {location}"))?)
            }
            None => None,
        };

        let stats = Arc::new(LedgerStats::default());
        let queue = Arc::new(Queue::new(QUEUE_CAPACITY, BATCH_MAX));
        let writer = {
            let stats = stats.clone();
            let settings = settings.clone();
            let location = location.clone();
            let queue = queue.clone();
            std::thread::Builder::new()
                .name("gust-ledger".into())
                .spawn(move || write_loop(conn, file, &queue, &settings, &stats, &location))
                .context("starting the ledger writer thread")?
        };
        tracing::info!(ledger = %location, flush_interval = ?settings.flush_interval, "ledger open");
        Ok(Some(Ledger {
            queue,
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

    /// Records queued and not yet taken by the writer: the ledger's lag
    /// (at most [`QUEUE_CAPACITY`]).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// A record sink for [`crate::App::on_invocation`]. Never blocks.
    pub fn sink(&self) -> impl Fn(&InvocationRecord) + Send + Sync + 'static {
        let queue = self.queue.clone();
        let stats = self.stats.clone();
        move |record| match queue.push(record) {
            Ok(()) => {}
            Err(Refused::Full) => {
                let dropped = stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if dropped.is_power_of_two() {
                    tracing::error!(dropped, "ledger queue full: usage records dropped");
                }
            }
            Err(Refused::Closed) => {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Waits until every record queued before this call is committed.
    pub fn flush(&self) {
        let (done, wait) = mpsc::channel();
        if self.queue.control(Control::Flush(done)) {
            let _ = wait.recv();
        }
    }

    /// Usage totals, read by the writer thread (so in-memory ledgers work
    /// too) after committing what is queued.
    pub fn usage(&self, filter: UsageFilter) -> anyhow::Result<Vec<UsageRow>> {
        let (reply, wait) = mpsc::channel();
        anyhow::ensure!(
            self.queue.control(Control::Query(filter, reply)),
            "ledger closed"
        );
        Ok(wait.recv().context("ledger writer stopped")??)
    }

    /// Commits everything queued and stops the writer; records that
    /// arrive later are counted as dropped. Idempotent.
    pub fn close(&self) {
        // Record sinks share the queue (and may outlive the server), so
        // the writer is told to stop rather than waiting for them all.
        self.queue.control(Control::Stop);
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

/// Size cap, schema, and a proof that the file is writable now rather than
/// at the first batch.
fn prepare(conn: &Connection, settings: &LedgerSettings) -> anyhow::Result<()> {
    if let Some(max) = settings.max_size {
        let page: u64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        conn.pragma_update(None, "max_page_count", max.div_ceil(page.max(1)))?;
    }
    schema::create(conn)?;
    conn.execute_batch("BEGIN IMMEDIATE; COMMIT;")?;
    Ok(())
}

/// `(device, inode)` of a file, `None` when there is none at `path`.
fn identity(path: &Path) -> std::io::Result<Option<(u64, u64)>> {
    use std::os::unix::fs::MetadataExt as _;
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some((m.dev(), m.ino()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// `path` with `suffix` appended (`-wal`, `-shm`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The ledger file the writer has open, to notice it being removed or
/// replaced under the open connection.
struct OpenFile {
    path: PathBuf,
    /// The database's `(dev, inode)`.
    db: (u64, u64),
    /// Its WAL's and shared memory's, when they existed at opening.
    side: [Option<(u64, u64)>; 2],
    /// Records committed to this file since it was opened (or since its
    /// loss was counted).
    committed: u64,
    /// The file was found removed or replaced, and no new one is open yet.
    lost: bool,
}

const SIDE_FILES: [&str; 2] = ["-wal", "-shm"];

impl OpenFile {
    /// Called once the connection has written to the file (so the WAL
    /// exists).
    fn new(path: PathBuf) -> anyhow::Result<OpenFile> {
        let db = identity(&path)?.context("the ledger file is missing right after opening")?;
        let side = SIDE_FILES.map(|s| identity(&with_suffix(&path, s)).ok().flatten());
        Ok(OpenFile {
            path,
            db,
            side,
            committed: 0,
            lost: false,
        })
    }

    /// When the file at the path is no longer the one open in `conn`,
    /// counts what was committed to it as lost and opens a new ledger at
    /// the path. A stat that fails for another reason decides nothing.
    fn check(
        &mut self,
        conn: &mut Connection,
        settings: &LedgerSettings,
        stats: &LedgerStats,
        location: &str,
    ) {
        let now = match identity(&self.path) {
            Ok(now) if now == Some(self.db) => return,
            Ok(now) => now,
            Err(_) => return,
        };
        if !self.lost {
            self.lost = true;
            let lost = std::mem::take(&mut self.committed);
            stats.write_errors.fetch_add(1, Ordering::Relaxed);
            stats.records_lost.fetch_add(lost, Ordering::Relaxed);
            tracing::error!(
                ledger = %location,
                lost,
                replaced = now.is_some(),
                "LEDGER FILE REMOVED OR REPLACED while open: the usage records committed \
                 to it are lost; recreating the ledger"
            );
        }
        // The lost file's WAL and shared memory must not be applied to the
        // new database. The old connection keeps its own open copies, and
        // as its database has moved, SQLite neither checkpoints nor deletes
        // anything by name when it closes.
        for (suffix, id) in SIDE_FILES.iter().zip(self.side) {
            let side = with_suffix(&self.path, suffix);
            if let Ok(Some(found)) = identity(&side)
                && (now.is_none() || Some(found) == id)
            {
                let _ = std::fs::remove_file(&side);
            }
        }
        let reopened = open_file(&self.path).and_then(|new| {
            prepare(&new, settings)?;
            Ok((new, OpenFile::new(self.path.clone())?))
        });
        match reopened {
            Ok((new, file)) => {
                // Committed to the lost file while recreating failed.
                stats
                    .records_lost
                    .fetch_add(self.committed, Ordering::Relaxed);
                *conn = new;
                *self = file;
                tracing::warn!(ledger = %location, "ledger recreated");
            }
            // The old connection stays, and this is tried again before the
            // next commit.
            Err(e) => tracing::error!(
                ledger = %location,
                error = format!("{e:#}"),
                "cannot recreate the ledger; retrying"
            ),
        }
    }
}

fn write_loop(
    mut conn: Connection,
    mut file: Option<OpenFile>,
    queue: &Queue,
    settings: &LedgerSettings,
    stats: &LedgerStats,
    location: &str,
) {
    // However the loop ends (even by a panic), nobody may wait on it.
    struct Shut<'a>(&'a Queue);
    impl Drop for Shut<'_> {
        fn drop(&mut self) {
            self.0.shut();
        }
    }
    let _shut = Shut(queue);

    let mut batch: Vec<InvocationRecord> = Vec::with_capacity(BATCH_MAX);
    let mut next_flush = Instant::now() + settings.flush_interval;
    let mut next_expire = Instant::now();
    loop {
        let controls = queue.take(next_flush, &mut batch);
        if let Some(file) = &mut file {
            file.check(&mut conn, settings, stats, location);
        }
        // Everything queued before a control message is in `batch`, so one
        // commit serves them all.
        let committed = commit(&mut conn, &mut batch, stats, location);
        if let Some(file) = &mut file {
            file.committed += committed;
        }
        let now = Instant::now();
        if now >= next_flush {
            next_flush = now + settings.flush_interval;
        }
        for control in controls {
            match control {
                Control::Flush(done) => {
                    let _ = done.send(());
                }
                Control::Query(filter, reply) => {
                    let _ = reply.send(usage(&conn, &filter));
                }
                Control::Stop => return,
            }
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

/// Commits `batch` (emptying it); returns how many records were committed.
fn commit(
    conn: &mut Connection,
    batch: &mut Vec<InvocationRecord>,
    stats: &LedgerStats,
    location: &str,
) -> u64 {
    if batch.is_empty() {
        return 0;
    }
    // Keys borrow from the batch: no allocation per record.
    let mut rollups: std::collections::HashMap<schema::RollupKey<'_>, schema::Rollup> =
        std::collections::HashMap::new();
    for record in batch.iter() {
        rollups
            .entry(schema::rollup_key(record))
            .or_default()
            .add(record);
    }
    let result = conn.transaction().and_then(|tx| {
        schema::insert_all(&tx, batch.iter())?;
        schema::mark(&tx, SystemTime::now())?;
        for (key, totals) in &rollups {
            schema::add_rollup(&tx, key, totals)?;
        }
        tx.commit()
    });
    let n = batch.len() as u64;
    batch.clear();
    match result {
        Ok(()) => {
            stats.written.fetch_add(n, Ordering::Relaxed);
            n
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
            0
        }
    }
}

/// A usage record for tests: function `f`, `n` units of fuel.
#[cfg(test)]
pub(crate) fn test_record(n: u64) -> InvocationRecord {
    let id = crate::manifest::FunctionId::try_from("f").expect("valid id");
    InvocationRecord {
        app: id.clone(),
        request_id: format!("r{n}"),
        function: id,
        route: "/".into(),
        start: SystemTime::now(),
        duration: Duration::from_millis(1),
        fuel_consumed: n,
        host_fuel: 0,
        fuel_budget: 1000,
        peak_memory_bytes: 0,
        request_bytes: 0,
        response_bytes: 0,
        cost_nanos: 0,
        currency: "USD".into(),
        status: 200,
        outcome: crate::metering::Outcome::Ok,
        parent_request_id: None,
        outbound_requests: 0,
        outbound_bytes: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_after_close_are_counted_as_dropped_and_queries_refused() {
        let ledger = Ledger::open(&LedgerSettings {
            location: LedgerLocation::Memory,
            ..LedgerSettings::default()
        })
        .expect("open")
        .expect("enabled");
        let stats = ledger.stats();
        let sink = ledger.sink();
        sink(&test_record(1));
        ledger.close();
        sink(&test_record(2));
        assert_eq!(stats.written(), 1, "close commits what was queued");
        assert_eq!(stats.dropped(), 1, "a record after close is counted");
        assert!(ledger.usage(UsageFilter::default()).is_err());
        // Flushing a closed ledger returns at once instead of waiting.
        ledger.flush();
    }

    /// While another writer holds the database (a stalled disk, as far as
    /// the ledger can tell), requests keep sinking records: the queue fills,
    /// the overflow is refused and counted without waiting, and the rest is
    /// committed once the database is free. No record is lost uncounted.
    #[test]
    fn a_stalled_database_fills_the_queue_and_the_overflow_is_counted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("ledger.sqlite");
        let ledger = Ledger::open(&LedgerSettings {
            location: LedgerLocation::File(path.clone()),
            flush_interval: Duration::from_millis(10),
            ..LedgerSettings::default()
        })
        .expect("open")
        .expect("enabled");
        let stats = ledger.stats();
        let sink = ledger.sink();

        let other = Connection::open(&path).expect("second connection");
        other
            .execute_batch("BEGIN IMMEDIATE")
            .expect("take the write lock");
        // The writer takes this record at its next flush and then waits on
        // the lock (busy timeout 5 s), so the queue is empty and nobody
        // drains it.
        sink(&test_record(0));
        std::thread::sleep(Duration::from_millis(300));
        let extra = 20_000;
        for n in 0..QUEUE_CAPACITY + extra {
            sink(&test_record(n as u64));
        }
        let dropped = stats.dropped();
        assert!(
            dropped >= extra as u64 / 2,
            "only {dropped} of the {extra} records over capacity were refused"
        );
        // All of it happened while the writer was stuck: sinking never
        // waits for the writer.
        assert_eq!(stats.written(), 0, "nothing commits while the lock is held");
        other.execute_batch("ROLLBACK").expect("release the lock");

        ledger.flush();
        let sunk = 1 + (QUEUE_CAPACITY + extra) as u64;
        assert_eq!(stats.write_errors(), 0);
        assert_eq!(
            stats.written() + stats.dropped(),
            sunk,
            "every record is written or counted"
        );
        let rows = ledger.usage(UsageFilter::default()).expect("usage");
        let requests: u64 = rows.iter().map(|r| r.requests).sum();
        assert_eq!(requests, stats.written());
    }
}
