//! `wasi:blobstore@0.2.0-draft`: containers a function is granted, on a
//! directory (the embedded default, opened with cap-std) or an S3-protocol
//! server.
//!
//! A function opens only the containers its manifest grants
//! (`blob_containers = [..]`); any other name is an error value to the
//! guest and a warning in the log (app, function, request id). A granted
//! name the operator did not map is the directory `blob/NAME/` under the
//! app's data directory; `[blob_container.NAME]` maps it to another
//! directory (`type = "fs"`) or to a bucket (`type = "s3"`, keys prefixed
//! by app and container). A granted container always exists:
//! `create-container` and `get-container` both open it, and
//! `delete-container` empties it.
//!
//! Object names may contain `/` (see `names` for the rules, the same on
//! both backends). Bodies are streamed (`stream`): a write goes to a
//! temporary file and is renamed into place (or uploaded) by `finish`; a
//! read is fed from the file or the S3 response a chunk at a time. No
//! object is ever held whole in host memory, except by `consume-sync`,
//! which refuses objects over 16 MiB or the function's memory limit.
//!
//! Each operation charges [`BLOB_OP_FUEL`] plus the body fuel of the
//! bytes it moves: bytes written are charged at the next blob call (at
//! the latest `finish`), a read's range when it is opened.
//!
//! This module holds the capability and its state; `host` implements the
//! interfaces the guest calls over it.

mod fs;
mod host;
pub(crate) mod names;
#[cfg(feature = "s3")]
mod s3;
pub(crate) mod stream;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cap_std::fs::Dir;
use tokio::sync::mpsc;
use wasmtime::component::{HasSelf, Linker, Resource};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream};

use super::Capability;
use crate::host::HostState;
use crate::host::bindings::blobstore::wasi::blobstore::{blobstore, container, types};
use crate::manifest::{AppSpec, CapabilitySettings, ContainerBackend, FunctionId};
use crate::metering::{BLOB_OP_FUEL, body_fuel};
use stream::{AbortOnDrop, BodyReader, BodyWriter, Chunks, Msg, SpoolDir, Status, blocking};

/// The largest object `incoming-value-consume-sync` reads whole (also
/// bounded by the function's memory limit): the default `host_memory`,
/// as the whole object is host memory held for the guest until it is
/// copied into the guest's.
const MAX_SYNC_READ: u64 = 16 << 20;

/// Names one `read-stream-object-names` call returns at most.
const MAX_NAMES_PER_READ: u64 = 10_000;

/// Temporary files older than this, left by a gust that stopped
/// mid-write, are deleted when the app opens its containers.
const STALE_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Denials logged per instance; the rest are counted in one line.
const LOGGED_DENIALS: u32 = 10;

/// The blob storage capability.
pub(crate) struct Blob;

/// One container of one app, on its backend.
pub(crate) struct ContainerState {
    name: String,
    backend: Backend,
    /// When the container was first opened (seconds since the epoch).
    created_at: u64,
}

/// Where a container's objects live.
enum Backend {
    Fs(fs::FsContainer),
    #[cfg(feature = "s3")]
    S3(s3::S3Container),
}

/// What one function's instances may open.
pub(crate) struct Granted {
    app: String,
    function: String,
    containers: BTreeMap<String, Arc<ContainerState>>,
    /// Where values written before `write-data`, and uploads to S3, are
    /// spooled (`None`: nothing granted).
    staging: Option<Arc<Dir>>,
    max_object_size: u64,
}

/// The app's opened containers and which function may open which.
pub(crate) struct AppContainers {
    functions: HashMap<FunctionId, Arc<Granted>>,
}

/// A function's blob state in its store.
pub(crate) struct Access {
    granted: Option<Arc<Granted>>,
    /// Body bytes written through streams and not charged yet.
    uncharged: Arc<AtomicU64>,
    /// Host memory the instance's blob streams may buffer (see
    /// `host::work`).
    held: Arc<std::sync::atomic::AtomicUsize>,
    denials: u32,
}

impl Access {
    /// Bytes the instance's live blob streams may buffer.
    pub(crate) fn held_bytes(&self) -> usize {
        self.held.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// An opened container.
pub struct Container {
    state: Arc<ContainerState>,
}

/// A listing of object names being read.
pub struct ObjectNames {
    source: Option<NameSource>,
    done: bool,
}

enum NameSource {
    Fs(fs::NameWalk),
    #[cfg(feature = "s3")]
    S3(s3::S3Names),
}

/// An object being written.
pub struct OutgoingValue {
    tx: mpsc::Sender<Msg>,
    task: tokio::task::JoinHandle<Result<Option<stream::Spool>, String>>,
    status: Status,
    bound_dir: SpoolDir,
    target: Option<(Arc<ContainerState>, String)>,
    stream_taken: bool,
    max_object_size: u64,
}

/// An object being read.
pub struct IncomingValue {
    size: u64,
    body: Body,
}

enum Body {
    Empty,
    File(std::fs::File),
    #[cfg_attr(not(feature = "s3"), allow(dead_code))]
    Stream(Chunks, AbortOnDrop),
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Capability for Blob {
    type App = AppContainers;
    type Instance = Access;

    fn link(linker: &mut Linker<HostState>, _wasip3: bool) -> anyhow::Result<()> {
        types::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
        container::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
        blobstore::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
        Ok(())
    }

    fn open(app: &AppSpec, settings: &CapabilitySettings) -> anyhow::Result<AppContainers> {
        let app_name = app.name.as_str();
        let mut opened: BTreeMap<String, Arc<ContainerState>> = BTreeMap::new();
        let mut staging: Option<Arc<Dir>> = None;
        let mut functions = HashMap::new();
        for function in &app.functions {
            let mut containers = BTreeMap::new();
            for name in &function.grants.blob_containers {
                if staging.is_none() {
                    let dir =
                        fs::FsContainer::open(&settings.app_dir(app_name).join("blob-staging"))
                            .map_err(|e| anyhow::anyhow!("blob staging directory: {e}"))?;
                    dir.remove_stale_temps(STALE_TEMP_AGE);
                    staging = Some(dir.dir);
                }
                let state = match opened.get(name) {
                    Some(state) => state.clone(),
                    None => {
                        let state = Arc::new(open_container(app_name, name, settings)?);
                        opened.insert(name.clone(), state.clone());
                        state
                    }
                };
                containers.insert(name.clone(), state);
            }
            functions.insert(
                function.id.clone(),
                Arc::new(Granted {
                    app: app_name.to_owned(),
                    function: function.id.as_str().to_owned(),
                    staging: if containers.is_empty() {
                        None
                    } else {
                        staging.clone()
                    },
                    containers,
                    max_object_size: settings.blob.max_object_size,
                }),
            );
        }
        Ok(AppContainers { functions })
    }

    fn instance(app: &AppContainers, function: &FunctionId) -> Access {
        Access {
            granted: app.functions.get(function).cloned(),
            uncharged: Arc::default(),
            held: Arc::default(),
            denials: 0,
        }
    }

    fn reset(instance: &mut Access) {
        instance.denials = 0;
    }
}

/// Opens container `name` of `app` on its backend.
fn open_container(
    app: &str,
    name: &str,
    settings: &CapabilitySettings,
) -> anyhow::Result<ContainerState> {
    let backend = match settings.containers.get(name) {
        None | Some(ContainerBackend::Fs(None)) => {
            let path = settings.app_dir(app).join("blob").join(name);
            Backend::Fs(fs::FsContainer::open(&path).map_err(|e| {
                anyhow::anyhow!("blob container `{name}` ({}): {e}", path.display())
            })?)
        }
        Some(ContainerBackend::Fs(Some(path))) => {
            Backend::Fs(fs::FsContainer::open(path).map_err(|e| {
                anyhow::anyhow!("blob container `{name}` ({}): {e}", path.display())
            })?)
        }
        #[cfg(feature = "s3")]
        Some(ContainerBackend::S3(s3_settings)) => {
            let key = settings
                .expand(&s3_settings.access_key_id)
                .map_err(|e| anyhow::anyhow!("blob container `{name}`: access_key_id: {e}"))?;
            let secret = settings
                .expand(&s3_settings.secret_access_key)
                .map_err(|e| anyhow::anyhow!("blob container `{name}`: secret_access_key: {e}"))?;
            Backend::S3(s3::S3Container::open(s3_settings, key, secret, app, name)?)
        }
        #[cfg(not(feature = "s3"))]
        Some(ContainerBackend::S3(_)) => {
            anyhow::bail!("blob container `{name}`: this gust was built without the `s3` feature")
        }
    };
    let created_at = match &backend {
        Backend::Fs(fs) => {
            fs.remove_stale_temps(STALE_TEMP_AGE);
            fs.dir
                .dir_metadata()
                .map_or_else(|_| now_secs(), |m| fs::created_at(&m))
        }
        #[cfg(feature = "s3")]
        Backend::S3(_) => now_secs(),
    };
    Ok(ContainerState {
        name: name.to_owned(),
        backend,
        created_at,
    })
}

impl ContainerState {
    /// The size and creation time of object `name`, if it exists.
    async fn stat(&self, name: &str) -> Result<Option<(u64, u64)>, String> {
        let _span =
            crate::telemetry::traces::capability("blob.stat", "gust.blob.container", &self.name);
        match &self.backend {
            Backend::Fs(fs) => {
                let fs = fs.clone();
                let name = name.to_owned();
                blocking(move || match fs.stat(&name) {
                    Ok(meta) => Ok(Some((meta.len(), fs::created_at(&meta)))),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                        ) =>
                    {
                        Ok(None)
                    }
                    Err(e) => Err(e),
                })
                .await
            }
            #[cfg(feature = "s3")]
            Backend::S3(s3) => s3.stat(name).await,
        }
    }

    /// Puts a finished spool into place as `name`.
    async fn commit(&self, spool: Option<stream::Spool>, name: &str) -> Result<u64, String> {
        let _span =
            crate::telemetry::traces::capability("blob.write", "gust.blob.container", &self.name);
        match &self.backend {
            Backend::Fs(fs) => {
                let fs = fs.clone();
                let name = name.to_owned();
                blocking(move || fs.commit(spool, &name)).await
            }
            #[cfg(feature = "s3")]
            Backend::S3(s3) => s3.commit(spool, name).await,
        }
    }

    async fn delete(&self, name: &str) -> Result<(), String> {
        let _span =
            crate::telemetry::traces::capability("blob.delete", "gust.blob.container", &self.name);
        match &self.backend {
            Backend::Fs(fs) => {
                let fs = fs.clone();
                let name = name.to_owned();
                blocking(move || fs.delete(&name)).await
            }
            #[cfg(feature = "s3")]
            Backend::S3(s3) => s3.delete(name).await,
        }
    }

    async fn clear(&self) -> Result<(), String> {
        let _span =
            crate::telemetry::traces::capability("blob.clear", "gust.blob.container", &self.name);
        match &self.backend {
            Backend::Fs(fs) => {
                let fs = fs.clone();
                blocking(move || fs.clear()).await
            }
            #[cfg(feature = "s3")]
            Backend::S3(s3) => s3.clear().await,
        }
    }

    /// Opens bytes `start..=end` of `name` (clamped to the object).
    async fn read(&self, name: &str, start: u64, end: u64) -> Result<IncomingValue, String> {
        let _span =
            crate::telemetry::traces::capability("blob.read", "gust.blob.container", &self.name);
        if end < start {
            return Err("the range ends before it starts".into());
        }
        match &self.backend {
            Backend::Fs(fs) => {
                let fs = fs.clone();
                let name = name.to_owned();
                let (file, size) = blocking(move || fs.open_read(&name, start)).await?;
                let len = range_len(size, start, end);
                Ok(IncomingValue {
                    size: len,
                    body: if len == 0 {
                        Body::Empty
                    } else {
                        Body::File(file)
                    },
                })
            }
            #[cfg(feature = "s3")]
            Backend::S3(s3) => {
                let (size, _) = s3.stat(name).await?.ok_or("no such object")?;
                let len = range_len(size, start, end);
                if len == 0 {
                    return Ok(IncomingValue {
                        size: 0,
                        body: Body::Empty,
                    });
                }
                let (chunks, task) = s3.read(name, start, len).await?;
                Ok(IncomingValue {
                    size: len,
                    body: Body::Stream(chunks, task),
                })
            }
        }
    }

    /// Copies object `name` into a spool in `into` (the destination's
    /// directory or the staging one).
    async fn spool_copy(&self, name: &str, into: Arc<Dir>) -> Result<stream::Spool, String> {
        let _span =
            crate::telemetry::traces::capability("blob.copy", "gust.blob.container", &self.name);
        match &self.backend {
            Backend::Fs(fs) => {
                let fs = fs.clone();
                let name = name.to_owned();
                blocking(move || fs.copy_to_spool(&name, into)).await
            }
            #[cfg(feature = "s3")]
            Backend::S3(s3) => {
                let (size, _) = s3.stat(name).await?.ok_or("no such object")?;
                let (mut chunks, _task) = s3.read(name, 0, size).await?;
                let mut spool = Some(blocking(move || stream::Spool::create(into)).await?);
                while let Some(chunk) = chunks.next().await {
                    let chunk = chunk?;
                    let Some(mut s) = spool.take() else { break };
                    spool = Some(
                        blocking(move || {
                            use std::io::Write as _;
                            s.file.write_all(&chunk)?;
                            s.size += chunk.len() as u64;
                            Ok(s)
                        })
                        .await?,
                    );
                }
                spool.ok_or_else(|| "copy failed".into())
            }
        }
    }

    /// The directory a write bound to this container spools into, if it
    /// is a filesystem container.
    fn spool_dir(&self) -> Option<Arc<Dir>> {
        match &self.backend {
            Backend::Fs(fs) => Some(fs.dir.clone()),
            #[cfg(feature = "s3")]
            Backend::S3(_) => None,
        }
    }

    fn names(&self) -> Result<NameSource, String> {
        match &self.backend {
            Backend::Fs(fs) => fs
                .names()
                .map(NameSource::Fs)
                .map_err(|e| stream::io_message(&e)),
            #[cfg(feature = "s3")]
            Backend::S3(s3) => s3.names().map(NameSource::S3),
        }
    }
}

/// The length of `start..=end` within an object of `size` bytes.
fn range_len(size: u64, start: u64, end: u64) -> u64 {
    if start >= size {
        return 0;
    }
    end.min(size - 1) - start + 1
}

impl NameSource {
    async fn next_batch(
        self,
        max: usize,
        skip: bool,
    ) -> (NameSource, Result<(Vec<String>, usize, bool), String>) {
        match self {
            NameSource::Fs(mut walk) => {
                let result = tokio::task::spawn_blocking(move || {
                    let r = walk.next_batch(max, skip);
                    (walk, r)
                })
                .await;
                match result {
                    Ok((walk, r)) => (NameSource::Fs(walk), r.map_err(|e| stream::io_message(&e))),
                    Err(_) => (
                        NameSource::Fs(fs::NameWalk::empty()),
                        Err("the listing failed".into()),
                    ),
                }
            }
            #[cfg(feature = "s3")]
            NameSource::S3(mut names) => {
                let r = names.next_batch(max, skip).await;
                (NameSource::S3(names), r)
            }
        }
    }
}
