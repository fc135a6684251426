//! The audit log: one JSON object per line, appended, for every change
//! asked of the deploy API (deploy, delete, rollback), done or refused:
//! who (the token's id), from where, what, when, and the result.
//!
//! ```json
//! {"time":"2026-12-02T01:02:03.456Z","who":"k1a2b3c4","peer":"127.0.0.1","action":"deploy","app":"shop","result":"ok","status":200,"version":3}
//! ```
//!
//! Each line is written with one `write` on a file opened for appending,
//! so lines from concurrent changes never interleave.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;

/// One audited change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// When, RFC 3339 with milliseconds (filled in by [`AuditLog::record`]).
    pub time: String,
    /// The token's id; `null` when no valid token was given.
    pub who: Option<String>,
    /// The client's address.
    pub peer: String,
    /// `deploy`, `delete` or `rollback`.
    pub action: String,
    /// The app concerned.
    pub app: String,
    /// `ok`, `refused` (the request was not allowed or not valid) or
    /// `failed` (the node could not do it).
    pub result: String,
    /// The HTTP status answered.
    pub status: u16,
    /// The version serving afterwards, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// Why it was refused or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The audit log file; cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
    file: Arc<Mutex<fs::File>>,
}

impl AuditLog {
    /// Opens `path` for appending, creating it (and its directory).
    pub fn open(path: &Path) -> io::Result<AuditLog> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let mut options = fs::OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        Ok(AuditLog {
            path: path.to_owned(),
            file: Arc::new(Mutex::new(options.open(path)?)),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `entry`, stamped with the time now. A failed write is logged,
    /// never fatal to the request.
    pub fn record(&self, mut entry: AuditEntry) {
        entry.time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let mut line = match serde_json::to_vec(&entry) {
            Ok(line) => line,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode an audit entry");
                return;
            }
        };
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = file.write_all(&line) {
            tracing::error!(path = %self.path.display(), error = %e, ?entry, "cannot write the audit log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_one_json_line_per_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/audit.log");
        let log = AuditLog::open(&path).unwrap();
        for action in ["deploy", "rollback"] {
            log.record(AuditEntry {
                time: String::new(),
                who: Some("k1".into()),
                peer: "127.0.0.1".into(),
                action: action.into(),
                app: "shop".into(),
                result: "ok".into(),
                status: 200,
                version: Some(1),
                detail: None,
            });
        }
        // Reopened: appended, not truncated.
        AuditLog::open(&path).unwrap().record(AuditEntry {
            time: String::new(),
            who: None,
            peer: "127.0.0.1".into(),
            action: "delete".into(),
            app: "shop".into(),
            result: "refused".into(),
            status: 401,
            version: None,
            detail: Some("no token".into()),
        });
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1]["action"], "rollback");
        assert_eq!(lines[2]["who"], serde_json::Value::Null);
        assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
    }
}
