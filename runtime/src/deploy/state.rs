//! The state directory: every deployed app's kept versions, so that a node
//! restores them on start and can roll back.
//!
//! ```text
//! STATE_DIR/apps/APP/app.json          which version is current, which previous
//! STATE_DIR/apps/APP/v7/meta.json      version, deployed at, by whom, sha256, ...
//! STATE_DIR/apps/APP/v7/bundle/...     the bundle, unpacked (gust.toml, components)
//! STATE_DIR/apps/APP/.staging-RANDOM/  a deploy in progress
//! ```
//!
//! Two versions are kept per app: the current one and the previous one
//! (the rollback target). `app.json` is replaced by rename, so a crash
//! leaves either the old or the new pointer; a version directory is
//! complete before it is renamed into place, and left-over staging
//! directories are removed on the app's next deploy.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::manifest::FunctionId;

/// An app's pointer file (`app.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRecord {
    /// The version serving.
    pub current: u64,
    /// The version a rollback returns to.
    pub previous: Option<u64>,
    /// The number the next deploy gets.
    pub next: u64,
}

/// One route of a version, as shown by the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteInfo {
    /// The pattern, e.g. `/users/{id}`.
    pub path: String,
    /// Methods accepted; none listed: all.
    pub methods: Vec<String>,
    /// The function it leads to.
    pub function: String,
}

/// What is known of one deployed version (`meta.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionMeta {
    /// Its number, from 1, per app.
    pub version: u64,
    /// When it was deployed, RFC 3339.
    pub deployed_at: String,
    /// The id of the token that deployed it.
    pub deployed_by: String,
    /// SHA-256 of the bundle as uploaded, hex.
    pub sha256: String,
    /// Size of the bundle as uploaded.
    pub bundle_bytes: u64,
    /// Function ids.
    pub functions: Vec<String>,
    /// Routes.
    pub routes: Vec<RouteInfo>,
    /// Host patterns.
    pub hosts: Vec<String>,
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    apps: PathBuf,
}

const RECORD: &str = "app.json";
const META: &str = "meta.json";
const STAGING: &str = ".staging-";

impl StateDir {
    /// Opens (creating it if needed) the state directory `root`.
    pub fn open(root: &Path) -> io::Result<StateDir> {
        let apps = root.join("apps");
        fs::create_dir_all(&apps)?;
        Ok(StateDir { apps })
    }

    fn app_dir(&self, app: &FunctionId) -> PathBuf {
        self.apps.join(app.as_str())
    }

    /// The directory of version `version` of `app`.
    pub fn version_dir(&self, app: &FunctionId, version: u64) -> PathBuf {
        self.app_dir(app).join(format!("v{version}"))
    }

    /// The unpacked bundle of a version (under [`StateDir::version_dir`]).
    pub fn bundle_dir(&self, app: &FunctionId, version: u64) -> PathBuf {
        self.version_dir(app, version).join("bundle")
    }

    /// A fresh, empty staging directory for a deploy of `app`; removed
    /// when the returned guard is dropped unless committed.
    pub fn staging(&self, app: &FunctionId) -> io::Result<Staging> {
        let dir = self.app_dir(app);
        fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{STAGING}{:016x}", rand::random::<u64>()));
        fs::create_dir(&path)?;
        Ok(Staging {
            path: Some(path),
            state: self.clone(),
        })
    }

    /// The pointer file of `app`, if it was deployed.
    pub fn record(&self, app: &FunctionId) -> io::Result<Option<AppRecord>> {
        match fs::read(self.app_dir(app).join(RECORD)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces the pointer file of `app` (write, sync, rename).
    pub fn write_record(&self, app: &FunctionId, record: &AppRecord) -> io::Result<()> {
        let dir = self.app_dir(app);
        let json = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
        write_atomically(&dir, RECORD, &json)
    }

    /// The metadata of a kept version.
    pub fn meta(&self, app: &FunctionId, version: u64) -> io::Result<VersionMeta> {
        let bytes = fs::read(self.version_dir(app, version).join(META))?;
        serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Removes every version of `app` but `keep`, and staging directories
    /// left by a crash (deploys of one app run one at a time, so none is
    /// in use when its deploy prunes).
    pub fn prune(&self, app: &FunctionId, keep: &[u64]) {
        let Ok(entries) = fs::read_dir(self.app_dir(app)) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let stale = match name.strip_prefix('v').map(str::parse::<u64>) {
                Some(Ok(version)) => !keep.contains(&version),
                _ => name.starts_with(STAGING),
            };
            if stale && let Err(e) = fs::remove_dir_all(entry.path()) {
                tracing::warn!(app = %app, dir = %entry.path().display(), error = %e, "cannot remove an old version");
            }
        }
    }

    /// Removes `app` and all its versions.
    pub fn remove(&self, app: &FunctionId) -> io::Result<()> {
        // Renamed away first so a crash midway never leaves a half-removed
        // app that would be restored.
        let dir = self.app_dir(app);
        let doomed = self
            .apps
            .join(format!(".removed-{app}-{:016x}", rand::random::<u64>()));
        match fs::rename(&dir, &doomed) {
            Ok(()) => fs::remove_dir_all(&doomed),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every app with a pointer file, by id; removal leftovers cleaned up.
    pub fn apps(&self) -> io::Result<Vec<FunctionId>> {
        let mut ids = Vec::new();
        for entry in fs::read_dir(&self.apps)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".removed-") {
                let _ = fs::remove_dir_all(entry.path());
                continue;
            }
            if let Ok(id) = FunctionId::try_from(name)
                && entry.path().join(RECORD).is_file()
            {
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }
}

/// A deploy's staging directory, removed on drop unless committed.
pub struct Staging {
    path: Option<PathBuf>,
    state: StateDir,
}

impl Staging {
    /// The directory.
    pub fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }

    /// Where the bundle is unpacked.
    pub fn bundle_dir(&self) -> PathBuf {
        self.path().join("bundle")
    }

    /// Writes `meta` and renames the directory to version `meta.version`
    /// of `app`.
    pub fn commit(mut self, app: &FunctionId, meta: &VersionMeta) -> io::Result<PathBuf> {
        let json = serde_json::to_vec_pretty(meta).map_err(io::Error::other)?;
        write_atomically(self.path(), META, &json)?;
        let target = self.state.version_dir(app, meta.version);
        // A version directory left by a crash between rename and pointer
        // update is not referenced by any pointer: replace it.
        if target.exists() {
            fs::remove_dir_all(&target)?;
        }
        fs::rename(self.path(), &target)?;
        self.path = None;
        Ok(target)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = fs::remove_dir_all(&path);
            // The app's directory too, if this was its first deploy (fails,
            // as it should, when it holds versions).
            if let Some(app_dir) = path.parent() {
                let _ = fs::remove_dir(app_dir);
            }
        }
    }
}

/// Writes `name` in `dir` through a temporary file and a rename, synced.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let temp = dir.join(format!(".{name}.tmp"));
    let mut file = fs::File::create(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&temp, dir.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(version: u64) -> VersionMeta {
        VersionMeta {
            version,
            deployed_at: "2026-12-02T00:00:00Z".into(),
            deployed_by: "test".into(),
            sha256: "00".into(),
            bundle_bytes: 1,
            functions: vec!["hello".into()],
            routes: vec![],
            hosts: vec!["*".into()],
        }
    }

    #[test]
    fn versions_are_committed_kept_and_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let app = FunctionId::try_from("shop").unwrap();
        assert_eq!(state.record(&app).unwrap(), None);
        for version in 1..=3 {
            let staging = state.staging(&app).unwrap();
            fs::create_dir(staging.bundle_dir()).unwrap();
            staging.commit(&app, &meta(version)).unwrap();
        }
        // An abandoned deploy leaves nothing behind.
        let abandoned = state.staging(&app).unwrap();
        let abandoned_path = abandoned.path().to_owned();
        drop(abandoned);
        assert!(!abandoned_path.exists());

        let record = AppRecord {
            current: 3,
            previous: Some(2),
            next: 4,
        };
        state.write_record(&app, &record).unwrap();
        state.prune(&app, &[3, 2]);
        assert_eq!(state.record(&app).unwrap(), Some(record));
        assert_eq!(state.meta(&app, 2).unwrap(), meta(2));
        assert!(!state.version_dir(&app, 1).exists());
        assert_eq!(state.apps().unwrap(), vec![app.clone()]);
        state.remove(&app).unwrap();
        assert_eq!(state.apps().unwrap(), Vec::<FunctionId>::new());
    }
}
