//! A `gust serve` process for the tests that run the binary as a user runs
//! it, and a plain HTTP client for it.

// Each test binary uses the part it needs.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const GUST: &str = env!("CARGO_BIN_EXE_gust");

/// A `gust serve` process on an ephemeral loopback port, killed on drop.
pub struct Serving {
    child: Child,
    _data: tempfile::TempDir,
    pub addr: SocketAddr,
    /// The log up to "serving on".
    pub startup: String,
    log: mpsc::Receiver<String>,
}

impl Serving {
    /// `gust serve ARGS --listen 127.0.0.1:0` with its data and cache
    /// directories in a temporary directory, logging at `info`.
    pub fn start(args: &[&str]) -> Serving {
        // The default ledger lives in the data directory: keep it here.
        let data = tempfile::tempdir().unwrap();
        let mut child = Command::new(GUST)
            .env("XDG_DATA_HOME", data.path())
            .env("XDG_CACHE_HOME", data.path())
            .arg("serve")
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning gust");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Lines as bytes: a test of what reaches the log must not stop
            // at invalid UTF-8.
            let mut reader = BufReader::new(stderr);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                let text = String::from_utf8_lossy(&line)
                    .trim_end_matches('\n')
                    .to_owned();
                line.clear();
                if tx.send(text).is_err() {
                    break;
                }
            }
        });
        let mut startup = String::new();
        let addr = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(120))
                .expect("gust did not report its address");
            startup.push_str(&line);
            startup.push('\n');
            if let Some(at) = line.find("serving on http://") {
                let addr = &line[at + "serving on http://".len()..];
                break addr.trim().parse().expect("address in log line");
            }
        };
        Serving {
            child,
            _data: data,
            addr,
            startup,
            log: rx,
        }
    }

    /// The log lines since start-up (or the last read), and more until one
    /// passes `done` or `wait` has passed.
    pub fn read_until(&self, wait: Duration, done: impl Fn(&str) -> bool) -> Vec<String> {
        let until = Instant::now() + wait;
        let mut log = Vec::new();
        while let Ok(line) = self
            .log
            .recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            let finished = done(&line);
            log.push(line);
            if finished {
                break;
            }
        }
        log
    }

    /// Sends SIGTERM and returns whether gust exited cleanly, and the log
    /// lines since start-up (or the last read).
    pub fn terminate(mut self) -> (bool, Vec<String>) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let mut log = Vec::new();
        while let Ok(line) = self.log.recv_timeout(Duration::from_secs(30)) {
            log.push(line);
        }
        let exit = self.child.wait().unwrap();
        (exit.success(), log)
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.0 GET (so the body is never chunked); returns the status
/// code and body.
pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, body.to_owned())
}

/// `gust usage --ledger LEDGER ARGS`: its output (it must succeed).
pub fn usage(ledger: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(GUST)
        .arg("usage")
        .arg("--ledger")
        .arg(ledger)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `gust usage --format json` of the ledger file `ledger`: the rows.
pub fn usage_rows(ledger: &std::path::Path) -> Vec<serde_json::Value> {
    match serde_json::from_str(&usage(ledger, &["--format", "json"])).unwrap() {
        serde_json::Value::Array(rows) => rows,
        other => panic!("usage is not a list: {other}"),
    }
}

/// The requests of `function` in usage `rows` (0 without a row).
pub fn requests_of(rows: &[serde_json::Value], function: &str) -> u64 {
    rows.iter()
        .filter(|row| row["function"] == function)
        .map(|row| row["requests"].as_u64().unwrap())
        .sum()
}
