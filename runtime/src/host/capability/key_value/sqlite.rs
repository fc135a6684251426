//! Key-value stores in a SQLite file: the embedded default, or a file the
//! operator names (which several stores, apps and gust processes may
//! share).
//!
//! Each file has one connection, owned by a thread of its own that runs
//! the operations one after the other: SQLite calls block, and must not
//! on tokio's workers. Every process opening the same file (by its
//! canonical path) shares that thread, whichever apps use it.
//!
//! Rows carry their app and store name (`kv`); `kv_count` keeps the number
//! of keys of each store, maintained by triggers, so the `max_keys` check
//! is one lookup. Writes run in `BEGIN IMMEDIATE` transactions: the write
//! lock is taken before anything is read, so a read-modify-write
//! (`increment`, compare-and-swap, the key count check) is atomic against
//! other connections too, other gust processes included. The file is in
//! WAL mode with a busy timeout, so readers do not block the writer and a
//! writer waits for another rather than failing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak, mpsc};
use std::time::Duration;

use anyhow::Context as _;
use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};

use super::{KvError, LIST_PAGE, full, overflow, parse_counter};

/// How long a writer waits for another process' write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kv (
    id INTEGER PRIMARY KEY,
    app TEXT NOT NULL,
    store TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    UNIQUE (app, store, key)
);
CREATE INDEX IF NOT EXISTS kv_list ON kv (app, store, id);
CREATE TABLE IF NOT EXISTS kv_count (
    app TEXT NOT NULL,
    store TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (app, store)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS kv_inserted AFTER INSERT ON kv BEGIN
    INSERT INTO kv_count (app, store, n) VALUES (new.app, new.store, 1)
    ON CONFLICT (app, store) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS kv_deleted AFTER DELETE ON kv BEGIN
    UPDATE kv_count SET n = n - 1 WHERE app = old.app AND store = old.store;
END;
";

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// One SQLite file and the thread that owns its connection.
pub(crate) struct Db {
    jobs: mpsc::Sender<Job>,
}

/// Files open in this process, by canonical path.
static OPEN: Mutex<Option<HashMap<PathBuf, Weak<Db>>>> = Mutex::new(None);

impl Db {
    /// Opens (creating it and its directory if missing) the file at
    /// `path`, or returns the handle this process already has.
    pub(crate) fn open(path: &Path) -> anyhow::Result<Arc<Db>> {
        let parent = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating key-value directory {}", parent.display()))?;
        let file = path
            .file_name()
            .with_context(|| format!("{} is not a file path", path.display()))?;
        let canonical = parent
            .canonicalize()
            .with_context(|| format!("resolving {}", parent.display()))?
            .join(file);
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        let open = open.get_or_insert_with(HashMap::new);
        open.retain(|_, db| db.strong_count() > 0);
        if let Some(db) = open.get(&canonical).and_then(Weak::upgrade) {
            return Ok(db);
        }
        let db = Arc::new(Db::connect(&canonical)?);
        open.insert(canonical, Arc::downgrade(&db));
        Ok(db)
    }

    /// A connection of its own to the file at `path` and its thread.
    fn connect(path: &Path) -> anyhow::Result<Db> {
        let conn = Connection::open(path)
            .with_context(|| format!("opening key-value store {}", path.display()))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .and_then(|_| conn.pragma_update(None, "synchronous", "NORMAL"))
            .and_then(|_| conn.execute_batch(SCHEMA))
            .with_context(|| format!("preparing key-value store {}", path.display()))?;
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("gust-kv-sqlite".into())
            .spawn(move || {
                let mut conn = conn;
                // Ends when the last handle is dropped.
                while let Ok(job) = rx.recv() {
                    job(&mut conn);
                }
            })
            .context("starting the key-value store thread")?;
        Ok(Db { jobs: tx })
    }

    /// Runs `f` on the connection's thread.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, KvError> + Send + 'static,
    ) -> Result<T, KvError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = tx.send(f(conn));
        });
        self.jobs
            .send(job)
            .map_err(|_| KvError::other("the key-value store is closed"))?;
        rx.await
            .map_err(|_| KvError::other("the key-value store failed"))?
    }

    pub(crate) async fn get(
        &self,
        app: &str,
        store: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, KvError> {
        let (app, store, key) = (app.to_owned(), store.to_owned(), key.to_owned());
        self.run(move |conn| get(conn, &app, &store, &key)).await
    }

    pub(crate) async fn exists(&self, app: &str, store: &str, key: &str) -> Result<bool, KvError> {
        let (app, store, key) = (app.to_owned(), store.to_owned(), key.to_owned());
        self.run(move |conn| {
            conn.prepare_cached("SELECT 1 FROM kv WHERE app = ?1 AND store = ?2 AND key = ?3")
                .and_then(|mut s| s.exists(params![app, store, key]))
                .map_err(failed)
        })
        .await
    }

    pub(crate) async fn list(
        &self,
        app: &str,
        store: &str,
        cursor: Option<u64>,
    ) -> Result<(Vec<String>, Option<u64>), KvError> {
        let (app, store) = (app.to_owned(), store.to_owned());
        let after = match cursor {
            None => 0,
            Some(c) => i64::try_from(c).map_err(|_| KvError::other("invalid cursor"))?,
        };
        self.run(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, key FROM kv WHERE app = ?1 AND store = ?2 AND id > ?3 \
                     ORDER BY id LIMIT ?4",
                )
                .map_err(failed)?;
            let rows = stmt
                .query_map(params![app, store, after, LIST_PAGE as i64 + 1], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
                })
                .map_err(failed)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(failed)?;
            let more = rows.len() > LIST_PAGE;
            let page: Vec<(i64, String)> = rows.into_iter().take(LIST_PAGE).collect();
            let next = if more {
                page.last().map(|(id, _)| *id as u64)
            } else {
                None
            };
            Ok((page.into_iter().map(|(_, key)| key).collect(), next))
        })
        .await
    }

    pub(crate) async fn get_many(
        &self,
        app: &str,
        store: &str,
        keys: Vec<String>,
    ) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        let (app, store) = (app.to_owned(), store.to_owned());
        self.run(move |conn| {
            // One read transaction: a consistent snapshot of every key.
            let tx = conn.transaction().map_err(failed)?;
            let values = keys
                .iter()
                .map(|key| get(&tx, &app, &store, key))
                .collect::<Result<Vec<_>, _>>()?;
            tx.commit().map_err(failed)?;
            Ok(values)
        })
        .await
    }

    pub(crate) async fn set_many(
        &self,
        app: &str,
        store: &str,
        pairs: Vec<(String, Vec<u8>)>,
        max_keys: u64,
    ) -> Result<(), KvError> {
        let (app, store) = (app.to_owned(), store.to_owned());
        self.run(move |conn| {
            write(conn, &app, &store, max_keys, |tx| {
                for (key, value) in &pairs {
                    put(tx, &app, &store, key, value)?;
                }
                Ok(())
            })
        })
        .await
    }

    pub(crate) async fn delete_many(
        &self,
        app: &str,
        store: &str,
        keys: Vec<String>,
    ) -> Result<(), KvError> {
        let (app, store) = (app.to_owned(), store.to_owned());
        self.run(move |conn| {
            write(conn, &app, &store, u64::MAX, |tx| {
                let mut stmt = tx
                    .prepare_cached("DELETE FROM kv WHERE app = ?1 AND store = ?2 AND key = ?3")
                    .map_err(failed)?;
                for key in &keys {
                    stmt.execute(params![app, store, key]).map_err(failed)?;
                }
                Ok(())
            })
        })
        .await
    }

    pub(crate) async fn increment(
        &self,
        app: &str,
        store: &str,
        key: &str,
        delta: i64,
        max_keys: u64,
    ) -> Result<i64, KvError> {
        let (app, store, key) = (app.to_owned(), store.to_owned(), key.to_owned());
        self.run(move |conn| {
            write(conn, &app, &store, max_keys, |tx| {
                let current = match get(tx, &app, &store, &key)? {
                    Some(value) => parse_counter(&value)?,
                    None => 0,
                };
                let new = current.checked_add(delta).ok_or_else(overflow)?;
                put(tx, &app, &store, &key, new.to_string().as_bytes())?;
                Ok(new)
            })
        })
        .await
    }

    pub(crate) async fn swap(
        &self,
        app: &str,
        store: &str,
        key: &str,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
        max_keys: u64,
    ) -> Result<bool, KvError> {
        let (app, store, key) = (app.to_owned(), store.to_owned(), key.to_owned());
        self.run(move |conn| {
            write(conn, &app, &store, max_keys, |tx| {
                if get(tx, &app, &store, &key)? != expected {
                    return Ok(false);
                }
                put(tx, &app, &store, &key, &value)?;
                Ok(true)
            })
        })
        .await
    }
}

/// Runs `f` in a write transaction that holds the lock from the start,
/// and commits it unless `f` fails or the store grew past `max_keys`.
fn write<T>(
    conn: &mut Connection,
    app: &str,
    store: &str,
    max_keys: u64,
    f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, KvError>,
) -> Result<T, KvError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(failed)?;
    let before = count(&tx, app, store)?;
    let out = f(&tx)?;
    let after = count(&tx, app, store)?;
    // A store already past a lowered limit may still change its keys.
    if after > before && after > max_keys {
        return Err(full(max_keys));
    }
    tx.commit().map_err(failed)?;
    Ok(out)
}

fn count(conn: &Connection, app: &str, store: &str) -> Result<u64, KvError> {
    conn.prepare_cached("SELECT n FROM kv_count WHERE app = ?1 AND store = ?2")
        .and_then(|mut s| {
            s.query_row(params![app, store], |row| row.get::<_, i64>(0))
                .optional()
        })
        .map(|n| n.unwrap_or(0).max(0) as u64)
        .map_err(failed)
}

fn get(conn: &Connection, app: &str, store: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
    conn.prepare_cached("SELECT value FROM kv WHERE app = ?1 AND store = ?2 AND key = ?3")
        .and_then(|mut s| {
            s.query_row(params![app, store, key], |row| row.get::<_, Vec<u8>>(0))
                .optional()
        })
        .map_err(failed)
}

fn put(conn: &Connection, app: &str, store: &str, key: &str, value: &[u8]) -> Result<(), KvError> {
    conn.prepare_cached(
        "INSERT INTO kv (app, store, key, value) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (app, store, key) DO UPDATE SET value = excluded.value",
    )
    .and_then(|mut s| s.execute(params![app, store, key, value]))
    .map(drop)
    .map_err(failed)
}

/// A SQLite failure, for the guest (the file's path stays in the log).
fn failed(e: rusqlite::Error) -> KvError {
    tracing::warn!(error = %e, "key-value store (SQLite) failed");
    KvError::other(format!("store failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_follow_inserts_updates_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("kv.sqlite")).unwrap();
        let pairs = |keys: &[&str]| -> Vec<(String, Vec<u8>)> {
            keys.iter()
                .map(|k| (k.to_string(), b"v".to_vec()))
                .collect()
        };
        db.set_many("a", "s", pairs(&["x", "y"]), 3).await.unwrap();
        // Updates do not count as new keys.
        db.set_many("a", "s", pairs(&["x", "y"]), 2).await.unwrap();
        assert!(db.set_many("a", "s", pairs(&["z"]), 2).await.is_err());
        assert_eq!(db.get("a", "s", "z").await.unwrap(), None);
        db.delete_many("a", "s", vec!["x".into()]).await.unwrap();
        db.set_many("a", "s", pairs(&["z"]), 2).await.unwrap();
        // Another app's store has its own count.
        db.set_many("b", "s", pairs(&["x", "y"]), 2).await.unwrap();
        assert_eq!(
            db.increment("a", "s", "z", 1, 2).await,
            Err(KvError::other("the value is not an integer"))
        );
        assert_eq!(db.increment("a", "n", "c", 41, 2).await.unwrap(), 41);
        assert_eq!(db.increment("a", "n", "c", 1, 2).await.unwrap(), 42);
        assert_eq!(db.get("a", "n", "c").await.unwrap(), Some(b"42".to_vec()));
        assert_eq!(
            db.increment("a", "n", "c", i64::MAX, 2).await,
            Err(overflow())
        );
    }

    #[tokio::test]
    async fn the_same_file_is_one_handle() {
        let dir = tempfile::tempdir().unwrap();
        let a = Db::open(&dir.path().join("kv.sqlite")).unwrap();
        let b = Db::open(&dir.path().join(".").join("kv.sqlite")).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
    }

    /// Two connections to one file, as two gust processes have: increments
    /// and swaps interleaved on both are exact (the write lock is taken
    /// before the read).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn atomic_across_connections() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.sqlite");
        let dbs = [
            Arc::new(Db::connect(&path).unwrap()),
            Arc::new(Db::connect(&path).unwrap()),
        ];
        let mut tasks = Vec::new();
        for i in 0..500 {
            let db = dbs[i % 2].clone();
            tasks.push(tokio::spawn(async move {
                db.increment("a", "s", "n", 1, u64::MAX).await.unwrap()
            }));
        }
        let mut values = Vec::new();
        for task in tasks {
            values.push(task.await.unwrap());
        }
        values.sort_unstable();
        assert_eq!(values, (1..=500).collect::<Vec<i64>>());
        // Compare-and-swap: of two swaps from the same value, one wins.
        let seen = dbs[0].get("a", "s", "n").await.unwrap();
        let first = dbs[0].swap("a", "s", "n", seen.clone(), b"x".to_vec(), u64::MAX);
        let second = dbs[1].swap("a", "s", "n", seen, b"y".to_vec(), u64::MAX);
        let (first, second) = tokio::join!(first, second);
        assert!(first.unwrap() ^ second.unwrap());
    }

    #[tokio::test]
    async fn lists_in_pages() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("kv.sqlite")).unwrap();
        let pairs: Vec<(String, Vec<u8>)> = (0..LIST_PAGE + 5)
            .map(|i| (format!("k{i}"), vec![]))
            .collect();
        db.set_many("a", "s", pairs, u64::MAX).await.unwrap();
        let (first, cursor) = db.list("a", "s", None).await.unwrap();
        assert_eq!(first.len(), LIST_PAGE);
        let (rest, end) = db.list("a", "s", cursor).await.unwrap();
        assert_eq!(rest.len(), 5);
        assert_eq!(end, None);
        assert_eq!(db.list("b", "s", None).await.unwrap(), (vec![], None));
    }
}
