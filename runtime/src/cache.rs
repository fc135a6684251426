//! The compiled-code cache: each component is compiled once per (component
//! bytes, engine configuration), ever.
//!
//! Artifacts live in one directory (default `$XDG_CACHE_HOME/gust/compiled`,
//! else `~/.cache/gust/compiled`), one file per key, where the key is the
//! SHA-256 of the engine's compatibility hash (wasmtime version, target,
//! every setting that affects code generation, fuel included) followed by
//! the component's bytes. A file is
//!
//! ```text
//! "GUSTCC01" | SHA-256 of the artifact (32 bytes) | artifact length (u64 LE) | artifact
//! ```
//!
//! written to a temporary file and renamed into place, so readers never see
//! a partial file. Before an artifact is handed to wasmtime its length and
//! checksum are verified; a truncated or corrupted file is logged, discarded
//! and rebuilt. The checksum catches corruption, not a malicious writer: the
//! cache directory must be writable only by the user gust runs as, like any
//! directory of executable code.

use std::hash::Hasher;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8; 8] = b"GUSTCC01";
const HEADER: usize = MAGIC.len() + 32 + 8;

/// Where compiled artifacts are kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CacheLocation {
    /// `$XDG_CACHE_HOME/gust/compiled`, else `~/.cache/gust/compiled`.
    #[default]
    Default,
    /// A directory.
    Dir(PathBuf),
    /// No cache: compile on every start.
    Disabled,
}

impl CacheLocation {
    /// The directory, if caching is on.
    pub fn dir(&self) -> Option<PathBuf> {
        match self {
            CacheLocation::Default => Some(default_dir()),
            CacheLocation::Dir(dir) => Some(dir.clone()),
            CacheLocation::Disabled => None,
        }
    }
}

/// The default cache directory.
pub fn default_dir() -> PathBuf {
    crate::dirs::gust_dir("XDG_CACHE_HOME", ".cache")
        .unwrap_or_else(|| std::env::temp_dir().join("gust"))
        .join("compiled")
}

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Deserialized from a verified cache file: nothing compiled.
    Hit,
    /// Not cached: compiled and stored.
    Miss,
    /// The cache file was damaged: discarded, compiled and stored again.
    Rebuilt,
    /// Caching is off: compiled.
    Uncached,
}

/// Counters of one cache, for logs and tests.
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Components deserialized from the cache.
    pub hits: AtomicU64,
    /// Components compiled (misses, rebuilds and uncached).
    pub compiled: AtomicU64,
    /// Damaged files discarded.
    pub rebuilt: AtomicU64,
}

/// The compiled-code cache of one engine.
pub struct CompileCache {
    dir: Option<PathBuf>,
    engine_hash: [u8; 32],
    stats: CacheStats,
}

/// Feeds `Hash` output into SHA-256.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl CompileCache {
    /// A cache for `engine` at `location`; creates the directory. A
    /// directory that cannot be created (a path through a file, no
    /// permission) leaves the cache off with a warning: like a full or
    /// read-only cache, it costs compile time, not service.
    pub fn new(engine: &Engine, location: &CacheLocation) -> CompileCache {
        let dir = location
            .dir()
            .filter(|dir| match std::fs::create_dir_all(dir) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(
                        dir = %dir.display(),
                        error = %e,
                        "cannot create the compile cache; compiling without it"
                    );
                    false
                }
            });
        let mut hasher = ShaHasher(Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
        CompileCache {
            dir,
            engine_hash: hasher.0.finalize().into(),
            stats: CacheStats::default(),
        }
    }

    /// The cache's counters.
    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    /// The key of `bytes` under this engine.
    pub fn key(&self, bytes: &[u8]) -> String {
        let mut sha = Sha256::new();
        sha.update(self.engine_hash);
        sha.update(bytes);
        hex(&sha.finalize())
    }

    /// The file that holds (or would hold) the artifact for `key`.
    pub fn path(&self, key: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|dir| dir.join(format!("{key}.cwasm")))
    }

    /// The engine's compatibility hash, in hex: part of every key.
    pub fn engine_hash(&self) -> String {
        hex(&self.engine_hash)
    }

    /// Whether the artifact of `key` is in the cache (not yet verified).
    pub fn contains(&self, key: &str) -> bool {
        self.path(key).is_some_and(|path| path.is_file())
    }

    /// The compiled component for `bytes`: from the cache when a verified
    /// artifact is there, else compiled (and stored).
    pub fn load(&self, engine: &Engine, bytes: &[u8]) -> anyhow::Result<(Component, CacheOutcome)> {
        let key = self.key(bytes);
        self.load_keyed(engine, &key, || Ok(bytes.into()))
    }

    /// [`CompileCache::load`] of the component whose key is `key`, known
    /// beforehand (a lazy load): `bytes` is read only when the artifact
    /// is not in the cache (or is damaged) and must be compiled.
    pub fn load_keyed<'b>(
        &self,
        engine: &Engine,
        key: &str,
        bytes: impl FnOnce() -> anyhow::Result<std::borrow::Cow<'b, [u8]>>,
    ) -> anyhow::Result<(Component, CacheOutcome)> {
        let Some(path) = self.path(key) else {
            self.stats.compiled.fetch_add(1, Ordering::Relaxed);
            return Ok((Component::new(engine, bytes()?)?, CacheOutcome::Uncached));
        };
        let mut outcome = CacheOutcome::Miss;
        match std::fs::read(&path) {
            Ok(file) => match verify(&file) {
                Ok(artifact) => {
                    // SAFETY: see `deserialize`.
                    match unsafe { deserialize(engine, artifact) } {
                        Ok(component) => {
                            self.stats.hits.fetch_add(1, Ordering::Relaxed);
                            return Ok((component, CacheOutcome::Hit));
                        }
                        Err(e) => {
                            tracing::warn!(path = %path.display(), error = %e, "cached artifact rejected by wasmtime; rebuilding");
                            outcome = CacheOutcome::Rebuilt;
                        }
                    }
                }
                Err(problem) => {
                    tracing::warn!(path = %path.display(), problem, "damaged compile cache file; rebuilding");
                    outcome = CacheOutcome::Rebuilt;
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read compile cache file; rebuilding");
                outcome = CacheOutcome::Rebuilt;
            }
        }
        if outcome == CacheOutcome::Rebuilt {
            self.stats.rebuilt.fetch_add(1, Ordering::Relaxed);
            let _ = std::fs::remove_file(&path);
        }
        let bytes = bytes()?;
        self.stats.compiled.fetch_add(1, Ordering::Relaxed);
        let component = Component::new(engine, &bytes)?;
        match component.serialize() {
            Ok(artifact) => {
                if let Err(e) = store(&path, &artifact) {
                    // A read-only or full cache costs compile time, not service.
                    tracing::warn!(path = %path.display(), error = %e, "cannot write compile cache file");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot serialize compiled component"),
        }
        Ok((component, outcome))
    }
}

/// Deserializes a compiled artifact.
///
/// # Safety
///
/// `Component::deserialize` trusts its input to be an artifact wasmtime
/// produced: arbitrary bytes could be loaded as machine code. This is the
/// only place gust calls it, and only with bytes that (1) come from a file
/// in the cache directory, which only gust writes (documented above), and
/// (2) passed `verify`: the exact length and SHA-256 recorded when gust
/// wrote them. wasmtime itself then checks that the artifact was built by
/// this wasmtime version with a compatible configuration.
unsafe fn deserialize(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: the caller passes only verified artifacts written by gust.
    unsafe { Component::deserialize(engine, artifact) }
}

/// The artifact inside a cache file, if the file is whole and unaltered.
fn verify(file: &[u8]) -> Result<&[u8], &'static str> {
    if file.len() < HEADER || &file[..MAGIC.len()] != MAGIC {
        return Err("not a gust cache file");
    }
    let checksum = &file[MAGIC.len()..MAGIC.len() + 32];
    let mut len = [0u8; 8];
    len.copy_from_slice(&file[MAGIC.len() + 32..HEADER]);
    let artifact = &file[HEADER..];
    if u64::try_from(artifact.len()).ok() != Some(u64::from_le_bytes(len)) {
        return Err("truncated");
    }
    if Sha256::digest(artifact).as_slice() != checksum {
        return Err("checksum mismatch");
    }
    Ok(artifact)
}

/// Writes `artifact` to `path` atomically: a temporary file in the same
/// directory, synced, then renamed over `path`.
fn store(path: &Path, artifact: &[u8]) -> std::io::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let tmp = path.with_extension(format!(
        "tmp.{}.{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(MAGIC)?;
        file.write_all(&Sha256::digest(artifact))?;
        file.write_all(&(artifact.len() as u64).to_le_bytes())?;
        file.write_all(artifact)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_accepts_whole_files_only() {
        let artifact = b"some compiled code";
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&Sha256::digest(artifact));
        file.extend_from_slice(&(artifact.len() as u64).to_le_bytes());
        file.extend_from_slice(artifact);
        assert_eq!(verify(&file), Ok(&artifact[..]));
        assert_eq!(verify(&file[..file.len() - 1]), Err("truncated"));
        let mut flipped = file.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(verify(&flipped), Err("checksum mismatch"));
        assert_eq!(verify(b"GUSTCC01"), Err("not a gust cache file"));
        assert_eq!(verify(&file[1..]), Err("not a gust cache file"));
    }
}
