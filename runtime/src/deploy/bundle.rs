//! A deployed bundle: a tar or tar.gz archive (told apart by the gzip
//! magic bytes) with `gust.toml` at its top and the components it names,
//! unpacked into a fresh directory with limits.
//!
//! Only regular files and directories are unpacked. Absolute paths, `..`,
//! links of any kind and device files are refused, so nothing lands
//! outside the directory; a path listed twice is refused too. The whole
//! decompressed stream (headers included) is bounded, so a gzip bomb stops
//! at the limit rather than filling memory or disk.

use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// How big a bundle may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleLimits {
    /// Largest bundle as uploaded (the request body, compressed or not).
    /// Default: 256 MiB.
    pub max_bytes: u64,
    /// Largest bundle once decompressed, tar headers included.
    /// Default: 1 GiB.
    pub max_unpacked_bytes: u64,
    /// Most entries (files and directories). Default: 10,000.
    pub max_entries: usize,
}

impl Default for BundleLimits {
    fn default() -> Self {
        BundleLimits {
            max_bytes: 256 << 20,
            max_unpacked_bytes: 1 << 30,
            max_entries: 10_000,
        }
    }
}

/// Why a bundle cannot be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Not a tar or tar.gz archive, or a damaged one.
    #[error("not a tar or tar.gz archive: {0}")]
    Format(String),
    /// Past one of the [`BundleLimits`].
    #[error("{0}")]
    TooLarge(String),
    /// An entry that could land outside the bundle, or is not a plain file.
    #[error("entry `{path}`: {reason}")]
    Entry {
        /// The entry's path as archived.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// Writing the unpacked files failed (the node's fault, not the bundle's).
    #[error("unpacking: {0}")]
    Io(#[from] io::Error),
}

/// What unpacking found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// Regular files written.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Whether the upload was gzip-compressed.
    pub gzip: bool,
}

/// The SHA-256 of a bundle as uploaded, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Unpacks `bytes` (tar, or tar.gz) into `dest`, which must not exist yet
/// or be empty.
pub fn unpack(bytes: &[u8], dest: &Path, limits: &BundleLimits) -> Result<Unpacked, BundleError> {
    if bytes.len() as u64 > limits.max_bytes {
        return Err(BundleError::TooLarge(format!(
            "the bundle is {} bytes, more than the limit of {} bytes",
            bytes.len(),
            limits.max_bytes
        )));
    }
    if bytes.is_empty() {
        return Err(BundleError::Format("the body is empty".into()));
    }
    let gzip = bytes.starts_with(&[0x1f, 0x8b]);
    let stream: Box<dyn Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(bytes))
    } else {
        Box::new(bytes)
    };
    let bounded = Bounded {
        inner: stream,
        left: limits.max_unpacked_bytes,
        limit: limits.max_unpacked_bytes,
    };
    fs::create_dir_all(dest)?;
    let mut archive = tar::Archive::new(bounded);
    let mut found = Unpacked {
        files: 0,
        bytes: 0,
        gzip,
    };
    let mut entries_seen = 0usize;
    let entries = archive.entries().map_err(|e| classify(e, "reading"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| classify(e, "reading an entry"))?;
        entries_seen += 1;
        if entries_seen > limits.max_entries {
            return Err(BundleError::TooLarge(format!(
                "more than {} entries",
                limits.max_entries
            )));
        }
        let raw = entry
            .path()
            .map_err(|e| classify(e, "an entry's path"))?
            .into_owned();
        let shown = raw.display().to_string();
        let relative = safe_relative(&raw).ok_or(BundleError::Entry {
            path: shown.clone(),
            reason: "absolute paths and `..` are not allowed",
        })?;
        if relative.as_os_str().is_empty() {
            continue;
        }
        let kind = entry.header().entry_type();
        let target = dest.join(&relative);
        if kind.is_dir() {
            fs::create_dir_all(&target)?;
            continue;
        }
        if !(kind.is_file() || kind.is_contiguous()) {
            return Err(BundleError::Entry {
                path: shown,
                reason: "only regular files and directories are allowed (no links or devices)",
            });
        }
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut file = match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
        {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(BundleError::Entry {
                    path: shown,
                    reason: "listed twice",
                });
            }
            Err(e) => return Err(e.into()),
        };
        let written = io::copy(&mut entry, &mut file).map_err(|e| classify(e, "an entry"))?;
        found.files += 1;
        found.bytes += written;
    }
    Ok(found)
}

/// `path` as a relative path of normal components only (`.` dropped);
/// `None` for absolute paths and any `..`.
fn safe_relative(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// A read error of the archive: past the size limit, or a damaged archive.
fn classify(e: io::Error, what: &str) -> BundleError {
    if e.kind() == io::ErrorKind::FileTooLarge {
        BundleError::TooLarge(e.to_string())
    } else {
        BundleError::Format(format!("{what}: {e}"))
    }
}

/// Fails reads past `limit` bytes (rather than ending the stream, which
/// would look like a truncated archive).
struct Bounded<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // One byte more tells a stream that ends exactly at the limit
            // from one that goes on.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::new(
                    io::ErrorKind::FileTooLarge,
                    format!(
                        "the bundle unpacks to more than the limit of {} bytes",
                        self.limit
                    ),
                )),
            };
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, path, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    /// A tar entry whose name is written raw (the builder refuses `..`).
    fn raw_entry(name: &str, kind: tar::EntryType, data: &[u8]) -> Vec<u8> {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        let mut builder = tar::Builder::new(Vec::new());
        builder.append(&header, data).unwrap();
        builder.into_inner().unwrap()
    }

    #[test]
    fn unpacks_tar_and_tar_gz() {
        let tar = tar_of(&[("gust.toml", b"x"), ("c/hello.wasm", b"abc")]);
        let dir = tempfile::tempdir().unwrap();
        let found = unpack(&tar, &dir.path().join("a"), &BundleLimits::default()).unwrap();
        assert_eq!((found.files, found.bytes, found.gzip), (2, 4, false));
        assert_eq!(fs::read(dir.path().join("a/c/hello.wasm")).unwrap(), b"abc");

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &tar).unwrap();
        let gz = gz.finish().unwrap();
        let found = unpack(&gz, &dir.path().join("b"), &BundleLimits::default()).unwrap();
        assert!(found.gzip);
        assert_eq!(fs::read(dir.path().join("b/gust.toml")).unwrap(), b"x");
    }

    #[test]
    fn refuses_escapes_links_and_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let limits = BundleLimits::default();
        for (i, (bundle, expect)) in [
            (
                raw_entry("../evil", tar::EntryType::file(), b"x"),
                "`..` are not allowed",
            ),
            (
                raw_entry("/etc/evil", tar::EntryType::file(), b"x"),
                "absolute",
            ),
            (
                raw_entry("link", tar::EntryType::symlink(), b""),
                "no links",
            ),
            (
                raw_entry("hard", tar::EntryType::hard_link(), b""),
                "no links",
            ),
            (tar_of(&[("a", b"1"), ("./a", b"2")]), "listed twice"),
            (b"not a tar at all".to_vec(), "not a tar"),
        ]
        .into_iter()
        .enumerate()
        {
            let e = unpack(&bundle, &dir.path().join(i.to_string()), &limits).unwrap_err();
            assert!(e.to_string().contains(expect), "{i}: {e}");
        }
        assert!(!dir.path().join("evil").exists());
    }

    #[test]
    fn limits_size_and_entries() {
        let dir = tempfile::tempdir().unwrap();
        let tar = tar_of(&[("a", &[0u8; 4096]), ("b", b"1"), ("c", b"2")]);
        let small = BundleLimits {
            max_unpacked_bytes: 2048,
            ..BundleLimits::default()
        };
        let e = unpack(&tar, &dir.path().join("1"), &small).unwrap_err();
        assert!(matches!(e, BundleError::TooLarge(_)), "{e}");
        let few = BundleLimits {
            max_entries: 2,
            ..BundleLimits::default()
        };
        let e = unpack(&tar, &dir.path().join("2"), &few).unwrap_err();
        assert!(e.to_string().contains("more than 2 entries"), "{e}");
        let tiny = BundleLimits {
            max_bytes: 10,
            ..BundleLimits::default()
        };
        let e = unpack(&tar, &dir.path().join("3"), &tiny).unwrap_err();
        assert!(matches!(e, BundleError::TooLarge(_)), "{e}");
    }
}
