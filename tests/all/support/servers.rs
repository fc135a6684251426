//! Real backend servers (redis-server, an S3-protocol server) started by
//! the tests on free loopback ports, each test with its own, and killed
//! when dropped.
//!
//! A server binary missing from this machine skips the test loudly
//! outside CI; in CI (`CI=true`, which `.ci/run` installs them for) it
//! fails the test.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether this run is CI, where every backend must be present.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The path of `binary` on `PATH`. `None` (after a loud message) when it
/// is missing outside CI; panics in CI.
pub fn require(binary: &str, install_hint: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(binary))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        assert!(
            !in_ci(),
            "`{binary}` is required in CI ({install_hint}); .ci/run installs it"
        );
        eprintln!(
            "\n*** SKIPPED: `{binary}` is not installed ({install_hint}); this test needs it and runs in CI ***\n"
        );
    }
    found
}

/// A free loopback port (bound and released; the server binds it next).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Waits until `addr` accepts connections (at most 10 s).
pub fn wait_for_port(addr: SocketAddr, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the server for {addr} exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listened on {addr} within 10 s");
}

/// A child process killed (and reaped) on drop.
pub struct Spawned {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Spawned {
    /// Starts `command` and waits for it to listen on `addr`.
    pub fn start(mut command: Command, addr: SocketAddr) -> Spawned {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = command.spawn().expect("starting the server");
        wait_for_port(addr, &mut child);
        Spawned { child, addr }
    }

    /// Kills the server now (a backend that goes away mid-test).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A redis-server on `port` (loopback, nothing persisted), or `None`
/// (skipped loudly) when it is not installed outside CI.
pub fn redis_on(port: u16) -> Option<Spawned> {
    let binary = require("redis-server", "apt-get install redis-server")?;
    let mut command = Command::new(binary);
    command.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]);
    Some(Spawned::start(
        command,
        SocketAddr::from(([127, 0, 0, 1], port)),
    ))
}

/// [`redis_on`] a free port.
pub fn redis() -> Option<Spawned> {
    redis_on(free_port())
}
