//! Deploy API tokens: the operator's file of token hashes, checking a
//! presented token in constant time, and the limit on failed attempts.
//!
//! A token is `gust_` and 64 hex digits (256 random bits), shown once when
//! created; the file keeps only its SHA-256, one JSON object per line:
//!
//! ```json
//! {"id":"k1a2b3c4","scope":"operator","sha256":"9f86...","created":"2026-12-02T01:00:00Z"}
//! {"id":"k5d6e7f8","scope":"app:shop","sha256":"2c26...","created":"2026-12-02T01:05:00Z"}
//! ```
//!
//! An `operator` token may touch every app; an `app:NAME` token only the
//! app `NAME`. Removing a line revokes the token: the file is read again
//! whenever it changes, without a restart.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write as _};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::bundle::hex;
use crate::manifest::FunctionId;

/// What a token may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every app.
    Operator,
    /// One app.
    App(FunctionId),
}

impl Scope {
    /// Whether a token of this scope may touch `app`.
    pub fn allows(&self, app: &FunctionId) -> bool {
        match self {
            Scope::Operator => true,
            Scope::App(own) => own == app,
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Operator => f.write_str("operator"),
            Scope::App(app) => write!(f, "app:{app}"),
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = String;
    fn from_str(text: &str) -> Result<Scope, String> {
        match text.strip_prefix("app:") {
            Some(app) => FunctionId::try_from(app).map(Scope::App),
            None if text == "operator" => Ok(Scope::Operator),
            None => Err(format!(
                "invalid scope `{text}`: use `operator` or `app:NAME`"
            )),
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Scope, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// One line of the token file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenEntry {
    /// A name for the token in logs and the audit log (not secret).
    pub id: String,
    /// What it may touch.
    pub scope: Scope,
    /// SHA-256 of the token, hex.
    pub sha256: String,
    /// When it was created, RFC 3339.
    pub created: String,
}

/// Creates a token of `scope`, appends its hash to the file `path`
/// (created with mode 0600 if missing) and returns the token, which
/// exists nowhere else.
pub fn create(path: &Path, scope: Scope) -> io::Result<(String, TokenEntry)> {
    let secret: [u8; 32] = rand::random();
    let token = format!("gust_{}", hex(&secret));
    let id: [u8; 4] = rand::random();
    let entry = TokenEntry {
        id: format!("k{}", hex(&id)),
        scope,
        sha256: hex(&Sha256::digest(token.as_bytes())),
        created: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let mut options = fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut line = serde_json::to_vec(&entry).map_err(io::Error::other)?;
    line.push(b'\n');
    options.open(path)?.write_all(&line)?;
    Ok((token, entry))
}

/// Reads a token file: every valid line; the invalid ones are logged and
/// skipped (one bad line must not lock the operator out).
pub fn read(path: &Path) -> io::Result<Vec<TokenEntry>> {
    let text = fs::read_to_string(path)?;
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<TokenEntry>(line) {
            Ok(entry) if entry.sha256.len() == 64 => entries.push(entry),
            Ok(_) => {
                tracing::warn!(path = %path.display(), line = i + 1, "token line without a SHA-256: skipped")
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), line = i + 1, error = %e, "invalid token line: skipped")
            }
        }
    }
    Ok(entries)
}

/// The token file, read again when it changes. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Tokens {
    path: PathBuf,
    loaded: Arc<Mutex<Loaded>>,
}

#[derive(Debug, Default)]
struct Loaded {
    /// (modified, length) of the file when read; `None`: not read yet or
    /// missing.
    stamp: Option<(SystemTime, u64)>,
    entries: Vec<TokenEntry>,
}

impl Tokens {
    /// The token file at `path` (it may not exist yet: then no token is
    /// valid until one is created).
    pub fn new(path: &Path) -> Tokens {
        let tokens = Tokens {
            path: path.to_owned(),
            loaded: Arc::default(),
        };
        if !path.exists() {
            tracing::warn!(
                path = %path.display(),
                "no token file: the deploy API refuses every request until `gust token create` makes one"
            );
        }
        tokens
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The entry of `token`, if it is valid. Every entry's hash is compared
    /// in constant time, and all of them are compared whatever matches.
    pub fn verify(&self, token: &str) -> Option<TokenEntry> {
        let presented = Sha256::digest(token.as_bytes());
        let presented = hex(&presented);
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        self.refresh(&mut loaded);
        let mut found = None;
        for entry in &loaded.entries {
            if bool::from(entry.sha256.as_bytes().ct_eq(presented.as_bytes())) {
                found = Some(entry.clone());
            }
        }
        found
    }

    fn refresh(&self, loaded: &mut Loaded) {
        let stamp = fs::metadata(&self.path)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())));
        if stamp == loaded.stamp && stamp.is_some() {
            return;
        }
        loaded.entries = match read(&self.path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "cannot read the token file");
                Vec::new()
            }
        };
        loaded.stamp = stamp;
    }
}

/// Failed attempts allowed per client address within
/// [`FailureLimiter::DEFAULT_WINDOW`]. Default: 10.
pub const DEFAULT_MAX_FAILURES: u32 = 10;

/// Counts failed authentications per client address: after `max` failures
/// within `window` (counted from the first), every request from that
/// address is refused until the window ends. Cheap to clone.
#[derive(Debug, Clone)]
pub struct FailureLimiter {
    max: u32,
    window: Duration,
    peers: Arc<Mutex<HashMap<IpAddr, (Instant, u32)>>>,
}

impl Default for FailureLimiter {
    fn default() -> Self {
        FailureLimiter::new(DEFAULT_MAX_FAILURES, FailureLimiter::DEFAULT_WINDOW)
    }
}

/// Addresses tracked at most; past it, expired windows are dropped.
const TRACKED_PEERS: usize = 10_000;

impl FailureLimiter {
    /// The window failures are counted in. Default: 60 s.
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);

    /// A limiter allowing `max` failures per `window`.
    pub fn new(max: u32, window: Duration) -> FailureLimiter {
        FailureLimiter {
            max,
            window,
            peers: Arc::default(),
        }
    }

    /// `Err(retry_after)` while `peer` is locked out.
    pub fn check(&self, peer: IpAddr) -> Result<(), Duration> {
        let peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        match peers.get(&peer) {
            Some((start, count)) if *count >= self.max => {
                let left = self.window.saturating_sub(start.elapsed());
                if left.is_zero() { Ok(()) } else { Err(left) }
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed attempt from `peer`.
    pub fn fail(&self, peer: IpAddr) {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        if peers.len() >= TRACKED_PEERS {
            let window = self.window;
            peers.retain(|_, (start, _)| start.elapsed() < window);
        }
        let entry = peers.entry(peer).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= self.window {
            *entry = (Instant::now(), 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_tokens_verify_and_only_their_hash_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        let tokens = Tokens::new(&path);
        assert_eq!(tokens.verify("gust_nothing"), None);
        let (operator, op_entry) = create(&path, Scope::Operator).unwrap();
        let shop = Scope::App(FunctionId::try_from("shop").unwrap());
        let (app, app_entry) = create(&path, shop.clone()).unwrap();
        assert!(operator.starts_with("gust_") && operator.len() == 5 + 64);
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&operator[5..]) && !text.contains(&app[5..]));
        assert_eq!(tokens.verify(&operator), Some(op_entry));
        assert_eq!(tokens.verify(&app).map(|e| e.scope), Some(shop));
        assert_eq!(tokens.verify(&format!("{app}x")), None);
        // Revoked by removing its line.
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| !l.contains(&app_entry.id))
            .collect();
        fs::write(&path, kept.join("\n") + "\n").unwrap();
        assert_eq!(tokens.verify(&app), None);
        assert!(tokens.verify(&operator).is_some());
    }

    #[test]
    fn scopes_parse_and_allow() {
        let shop = FunctionId::try_from("shop").unwrap();
        let other = FunctionId::try_from("other").unwrap();
        assert!(Scope::Operator.allows(&other));
        let scope: Scope = "app:shop".parse().unwrap();
        assert!(scope.allows(&shop) && !scope.allows(&other));
        assert!("app:Bad Name".parse::<Scope>().is_err());
        assert!("root".parse::<Scope>().is_err());
    }

    #[test]
    fn failures_lock_a_peer_out_for_the_window() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60));
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.check(peer).is_ok());
            limiter.fail(peer);
        }
        let retry = limiter.check(peer).unwrap_err();
        assert!(retry > Duration::from_secs(50), "{retry:?}");
        assert!(limiter.check(other).is_ok());
        let expired = FailureLimiter::new(1, Duration::ZERO);
        expired.fail(peer);
        assert!(expired.check(peer).is_ok());
    }
}
