//! The load index: which component files have already been compiled into
//! the cache and linked against the host, so that a lazy load can skip
//! reading and hashing them.
//!
//! A warm start of 10,000 functions would otherwise read and SHA-256 every
//! component (1.3 GB for 10,000 hellos) only to find its cache key. The
//! index maps a file, identified as git identifies a worktree file (device,
//! inode, size, modification and change times, nanoseconds; the change time
//! cannot be set by `touch`), to its cache key and `wasi:http` kind. An
//! entry is written only after the component was compiled (or found in the
//! cache) and linked, so an index hit whose artifact is still in the cache
//! needs neither reading, hashing nor compiling: the function is compiled
//! and checked, and loads from the cache on its first request.
//!
//! One file per engine configuration and gust version,
//! `index-<engine hash>.txt` in the cache directory: a header line
//! (`gust-load-index 1 <gust version>`), then one line per file:
//! `key kind dev ino size mtime ctime path`. It is rewritten atomically
//! (temporary file, rename) after a load that added entries, keeping the
//! entries of files that still exist unchanged; a lost update between two
//! processes costs the next start some hashing, never a wrong answer: a
//! stale entry's identity no longer matches, and an entry whose artifact
//! left the cache is ignored.

use std::collections::HashMap;
use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::call::Kind;

const HEADER: &str = concat!("gust-load-index 1 ", env!("CARGO_PKG_VERSION"));

/// What identifies a file's contents without reading them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i128,
    ctime: i128,
}

impl Stamp {
    /// The stamp of the file at `path`.
    pub(crate) fn of(path: &Path) -> std::io::Result<Stamp> {
        let m = std::fs::metadata(path)?;
        Ok(Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
        })
    }
}

/// One indexed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) stamp: Stamp,
    pub(crate) kind: Kind,
    pub(crate) key: String,
}

/// The index of one cache directory and engine configuration.
pub(crate) struct Index {
    file: Option<PathBuf>,
    entries: HashMap<PathBuf, Entry>,
    added: Mutex<Vec<(PathBuf, Entry)>>,
}

impl Index {
    /// The index in `dir` (none when caching is off) for the engine whose
    /// compatibility hash is `engine` (hex). A missing or unreadable index
    /// is empty.
    pub(crate) fn open(dir: Option<&Path>, engine: &str) -> Index {
        let file = dir.map(|dir| dir.join(format!("index-{engine}.txt")));
        let entries = file.as_deref().map(read).unwrap_or_default();
        Index {
            file,
            entries,
            added: Mutex::new(Vec::new()),
        }
    }

    /// The entry of `path`, if its stamp is still `stamp`.
    pub(crate) fn get(&self, path: &Path, stamp: &Stamp) -> Option<&Entry> {
        self.entries.get(path).filter(|e| e.stamp == *stamp)
    }

    /// Records that the file at `path` (as it was at `stamp`) has the cache
    /// key `key`, compiled and linked.
    pub(crate) fn add(&self, path: &Path, stamp: Stamp, kind: Kind, key: &str) {
        if self.file.is_none() || path.to_str().is_none_or(|p| p.contains('\n')) {
            return;
        }
        let entry = Entry {
            stamp,
            kind,
            key: key.to_owned(),
        };
        if self.entries.get(path) != Some(&entry) {
            self.added
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((path.to_owned(), entry));
        }
    }

    /// Writes the added entries, merged with the file's current ones whose
    /// files still have their stamps. Failing to write costs the next start
    /// time, not service: logged.
    pub(crate) fn save(&self) {
        let added = std::mem::take(&mut *self.added.lock().unwrap_or_else(|e| e.into_inner()));
        let Some(file) = &self.file else { return };
        if added.is_empty() {
            return;
        }
        let mut merged: HashMap<PathBuf, Entry> = read(file)
            .into_iter()
            .filter(|(path, entry)| Stamp::of(path).is_ok_and(|s| s == entry.stamp))
            .collect();
        merged.extend(added);
        if let Err(e) = write(file, &merged) {
            tracing::warn!(file = %file.display(), error = %e, "cannot write the load index");
        }
    }
}

fn kind_str(kind: Kind) -> &'static str {
    match kind {
        Kind::P2 => "p2",
        Kind::P3 => "p3",
    }
}

/// The entries of `file`; none if it is missing, of another version, or
/// unreadable. Malformed lines are skipped.
fn read(file: &Path) -> HashMap<PathBuf, Entry> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return HashMap::new();
    };
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return HashMap::new();
    }
    lines.filter_map(parse).collect()
}

fn parse(line: &str) -> Option<(PathBuf, Entry)> {
    let mut fields = line.splitn(8, ' ');
    let key = fields.next()?;
    let kind = match fields.next()? {
        "p2" => Kind::P2,
        "p3" => Kind::P3,
        _ => return None,
    };
    let mut number = || fields.next()?.parse::<i128>().ok();
    let (dev, ino, size) = (number()?, number()?, number()?);
    let (mtime, ctime) = (number()?, number()?);
    let path = fields.next()?;
    if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let stamp = Stamp {
        dev: u64::try_from(dev).ok()?,
        ino: u64::try_from(ino).ok()?,
        size: u64::try_from(size).ok()?,
        mtime,
        ctime,
    };
    Some((
        PathBuf::from(path),
        Entry {
            stamp,
            kind,
            key: key.to_owned(),
        },
    ))
}

fn write(file: &Path, entries: &HashMap<PathBuf, Entry>) -> std::io::Result<()> {
    let mut text = String::with_capacity(entries.len() * 160 + HEADER.len() + 1);
    text.push_str(HEADER);
    text.push('\n');
    for (path, e) in entries {
        let Some(path) = path.to_str() else { continue };
        let s = &e.stamp;
        text.push_str(&format!(
            "{} {} {} {} {} {} {} {path}\n",
            e.key,
            kind_str(e.kind),
            s.dev,
            s.ino,
            s.size,
            s.mtime,
            s.ctime
        ));
    }
    // Unique per write: two loads of one process may save at once.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = file.with_extension(format!("tmp.{}.{seq}", std::process::id()));
    let result = (|| {
        let mut out = std::fs::File::create(&tmp)?;
        out.write_all(text.as_bytes())?;
        out.sync_all()?;
        std::fs::rename(&tmp, file)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_a_save_and_a_changed_file_misses() {
        let dir = tempfile::tempdir().unwrap();
        let component = dir.path().join("f.wasm");
        std::fs::write(&component, b"one").unwrap();
        let key = "ab".repeat(32);
        let stamp = Stamp::of(&component).unwrap();

        let index = Index::open(Some(dir.path()), "e");
        assert!(index.get(&component, &stamp).is_none());
        index.add(&component, stamp, Kind::P3, &key);
        index.save();

        let index = Index::open(Some(dir.path()), "e");
        let entry = index.get(&component, &stamp).expect("saved");
        assert_eq!((entry.kind, entry.key.as_str()), (Kind::P3, key.as_str()));
        assert!(
            Index::open(Some(dir.path()), "other engine")
                .get(&component, &stamp)
                .is_none()
        );

        std::fs::write(&component, b"two").unwrap();
        let changed = Stamp::of(&component).unwrap();
        assert_ne!(changed, stamp);
        assert!(index.get(&component, &changed).is_none());
    }

    #[test]
    fn a_file_of_another_version_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let line = format!("{} p2 1 2 3 4 5 /x.wasm\n", "ab".repeat(32));
        std::fs::write(dir.path().join("index-e.txt"), format!("{HEADER}\n{line}")).unwrap();
        assert_eq!(read(&dir.path().join("index-e.txt")).len(), 1);
        std::fs::write(
            dir.path().join("index-e.txt"),
            format!("gust-load-index 0 0.0.0\n{line}"),
        )
        .unwrap();
        assert!(read(&dir.path().join("index-e.txt")).is_empty());
    }
}
