//! Filesystem containers: a directory opened with cap-std, so every
//! object name is resolved beneath it and none reaches outside (`..`, an
//! absolute path, a symlink pointing out: all fail). Names are checked
//! first (`names`); on top of that the last part of a name is never
//! followed if it is a symlink, and listings skip symlinks.
//!
//! Every function here blocks: callers run them with `stream::blocking`.

use std::io::{Seek as _, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use cap_fs_ext::{FollowSymlinks, OpenOptionsFollowExt as _};
use cap_std::fs::{Dir, Metadata, ReadDir};

use super::names::TEMP_PREFIX;
use super::stream::Spool;

/// One filesystem container.
#[derive(Clone)]
pub(crate) struct FsContainer {
    pub(crate) dir: Arc<Dir>,
}

fn not_found() -> std::io::Error {
    std::io::Error::from(std::io::ErrorKind::NotFound)
}

/// Seconds since the Unix epoch of a file's creation (its modification
/// time where the filesystem does not keep one).
pub(crate) fn created_at(meta: &Metadata) -> u64 {
    meta.created()
        .or_else(|_| meta.modified())
        .map(|t| t.into_std())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

impl FsContainer {
    /// Opens (creating it if missing) the directory at `path`.
    pub(crate) fn open(path: &Path) -> std::io::Result<FsContainer> {
        let authority = cap_std::ambient_authority();
        Dir::create_ambient_dir_all(path, authority)?;
        let dir = Dir::open_ambient_dir(path, authority)?;
        Ok(FsContainer { dir: Arc::new(dir) })
    }

    /// Deletes temporary files older than `age` left at the top of the
    /// directory by a gust that stopped mid-write (younger ones may be
    /// writes in progress of another version of the app). Best effort.
    pub(crate) fn remove_stale_temps(&self, age: std::time::Duration) {
        let Ok(entries) = self.dir.entries() else {
            return;
        };
        let now = std::time::SystemTime::now();
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !name.to_string_lossy().starts_with(TEMP_PREFIX) {
                continue;
            }
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t.into_std()).ok())
                .is_some_and(|elapsed| elapsed > age);
            if old {
                let _ = self.dir.remove_file(&name);
            }
        }
    }

    /// The metadata of object `name`: a regular file, never a symlink.
    pub(crate) fn stat(&self, name: &str) -> std::io::Result<Metadata> {
        let meta = self.dir.symlink_metadata(name)?;
        if !meta.is_file() {
            return Err(not_found());
        }
        Ok(meta)
    }

    /// Opens object `name` for reading at `start`; returns it and its size.
    pub(crate) fn open_read(
        &self,
        name: &str,
        start: u64,
    ) -> std::io::Result<(std::fs::File, u64)> {
        let mut options = cap_std::fs::OpenOptions::new();
        options.read(true).follow(FollowSymlinks::No);
        let file = self.dir.open_with(name, &options)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(not_found());
        }
        let mut file = file.into_std();
        if start > 0 {
            file.seek(SeekFrom::Start(start))?;
        }
        Ok((file, meta.len()))
    }

    /// Deletes object `name` (an absent one is not an error), then the
    /// directory levels it leaves empty.
    pub(crate) fn delete(&self, name: &str) -> std::io::Result<()> {
        match self.stat(name) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        self.dir.remove_file(name)?;
        self.prune(name);
        Ok(())
    }

    /// Removes the now empty directory levels above `name`.
    fn prune(&self, name: &str) {
        let mut parent = name;
        while let Some((up, _)) = parent.rsplit_once('/') {
            if self.dir.remove_dir(up).is_err() {
                break;
            }
            parent = up;
        }
    }

    /// Puts `spool` into place as object `name` (atomically replacing an
    /// older one). A spool outside this container (bytes written before
    /// `write-data`) is copied into a spool here first.
    pub(crate) fn commit(&self, spool: Option<Spool>, name: &str) -> std::io::Result<u64> {
        let mut spool = match spool {
            Some(s) if Arc::ptr_eq(&s.dir, &self.dir) => s,
            Some(mut outside) => {
                let mut here = Spool::create(self.dir.clone())?;
                outside.file.seek(SeekFrom::Start(0))?;
                here.size = std::io::copy(&mut outside.file, &mut here.file)?;
                here
            }
            None => Spool::create(self.dir.clone())?,
        };
        spool.file.sync_data()?;
        if let Some((parent, _)) = name.rsplit_once('/') {
            self.dir.create_dir_all(parent)?;
        }
        if let Ok(meta) = self.dir.symlink_metadata(name)
            && meta.is_dir()
        {
            return Err(std::io::Error::from(std::io::ErrorKind::IsADirectory));
        }
        if let Err(e) = self.dir.rename(&spool.temp, &self.dir, name) {
            // A delete of the last object in the same directory level may
            // have pruned it between the two steps: once more.
            let parent = name.rsplit_once('/').map(|(parent, _)| parent);
            match (e.kind(), parent) {
                (std::io::ErrorKind::NotFound, Some(parent)) => {
                    self.dir.create_dir_all(parent)?;
                    self.dir.rename(&spool.temp, &self.dir, name)?;
                }
                _ => return Err(e),
            }
        }
        spool.committed = true;
        Ok(spool.size)
    }

    /// Copies object `from` to spool (for copy-object between containers).
    pub(crate) fn copy_to_spool(&self, from: &str, into: Arc<Dir>) -> std::io::Result<Spool> {
        let (mut file, _) = self.open_read(from, 0)?;
        let mut spool = Spool::create(into)?;
        spool.size = std::io::copy(&mut file, &mut spool.file)?;
        Ok(spool)
    }

    /// Deletes every object (and directory level); leaves temporary files
    /// of writes in progress.
    pub(crate) fn clear(&self) -> std::io::Result<()> {
        for entry in self.dir.entries()? {
            let entry = entry?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with(TEMP_PREFIX) {
                continue;
            }
            if entry.file_type()?.is_dir() {
                self.dir.remove_dir_all(&name)?;
            } else {
                self.dir.remove_file(&name)?;
            }
        }
        Ok(())
    }

    /// A walk over the object names.
    pub(crate) fn names(&self) -> std::io::Result<NameWalk> {
        Ok(NameWalk {
            stack: vec![(String::new(), self.dir.entries()?)],
        })
    }
}

/// A depth-first walk over a container's object names, read in batches.
pub(crate) struct NameWalk {
    /// Open directory levels: the name prefix and the entries left.
    stack: Vec<(String, ReadDir)>,
}

impl NameWalk {
    /// A walk with nothing left.
    pub(crate) fn empty() -> NameWalk {
        NameWalk { stack: Vec::new() }
    }

    /// Up to `max` more names (`skip`: counted, not collected); `true`
    /// once the walk is over.
    pub(crate) fn next_batch(
        &mut self,
        max: usize,
        skip: bool,
    ) -> std::io::Result<(Vec<String>, usize, bool)> {
        let mut names = Vec::new();
        let mut count = 0;
        while count < max {
            let Some((prefix, entries)) = self.stack.last_mut() else {
                return Ok((names, count, true));
            };
            let Some(entry) = entries.next() else {
                self.stack.pop();
                continue;
            };
            let entry = entry?;
            // Names the guest cannot have written (not UTF-8, the host's
            // temporary files) are not objects.
            let Ok(file_name) = entry.file_name().into_string() else {
                continue;
            };
            if file_name.starts_with(TEMP_PREFIX) {
                continue;
            }
            let kind = entry.file_type()?;
            let name = format!("{prefix}{file_name}");
            if kind.is_dir() {
                let sub = entry.open_dir()?.entries()?;
                self.stack.push((format!("{name}/"), sub));
            } else if kind.is_file() {
                count += 1;
                if !skip {
                    names.push(name);
                }
            }
        }
        let done = self.stack.is_empty();
        Ok((names, count, done))
    }
}
