//! The `gust` binary, run as a user runs it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const GUST: &str = env!("CARGO_BIN_EXE_gust");

/// A `gust serve` process on an ephemeral loopback port, killed on drop.
struct Serving {
    child: Child,
    addr: SocketAddr,
    log: mpsc::Receiver<String>,
}

impl Serving {
    fn start(args: &[&str]) -> Serving {
        let mut child = Command::new(GUST)
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
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let addr = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(120))
                .expect("gust did not report its address");
            if let Some(at) = line.find("serving on http://") {
                let addr = &line[at + "serving on http://".len()..];
                break addr.trim().parse().expect("address in log line");
            }
        };
        Serving {
            child,
            addr,
            log: rx,
        }
    }

    /// Sends SIGTERM and returns the rest of the log once gust exited.
    fn terminate(mut self) -> (bool, String) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let mut log = String::new();
        while let Ok(line) = self.log.recv_timeout(Duration::from_secs(30)) {
            log.push_str(&line);
            log.push('\n');
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
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
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

#[test]
fn serve_with_no_arguments_serves_the_examples_and_shuts_down_gracefully() {
    let server = Serving::start(&[]);
    let (status, body) = get(server.addr, "/hello");
    assert_eq!(status, 200);
    assert_eq!(body, "Hello from gust!\n");
    let (status, _) = get(server.addr, "/trap");
    assert_eq!(status, 500);
    let (status, _) = get(server.addr, "/hello");
    assert_eq!(status, 200);
    let (exited_cleanly, log) = server.terminate();
    assert!(exited_cleanly, "{log}");
    assert!(log.contains("shutting down"), "{log}");
}

#[test]
fn serve_a_single_component_on_every_path() {
    let server = Serving::start(&[gust_runtime::examples::RAW_PATH]);
    let (status, body) = get(server.addr, "/any/path?x=1");
    assert_eq!(status, 200);
    assert_eq!(body, "raw wasi:http component saw GET /any/path?x=1\n");
}

#[test]
fn check_accepts_a_valid_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gust.toml");
    std::fs::write(
        &path,
        format!(
            "[functions.hello]\ncomponent = {:?}\n[[routes]]\npath = \"/hello\"\nfunction = \"hello\"\nmethods = [\"GET\"]\n",
            gust_runtime::examples::HELLO_PATH
        ),
    )
    .unwrap();
    let out = Command::new(GUST).arg("check").arg(&path).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("ok, 1 functions, 1 routes"), "{stdout}");
    assert!(stdout.contains("/hello"), "{stdout}");
}

#[test]
fn check_rejects_an_invalid_manifest_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gust.toml");
    std::fs::write(&path, "[functions.hello]\ncomponent = \"missing.wasm\"\n[[routes]]\npath = \"/hello\"\nfunction = \"hello\"\n").unwrap();
    let out = Command::new(GUST).arg("check").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("functions.hello.component: component file not found"),
        "{stderr}"
    );
    assert!(stderr.contains("missing.wasm"), "{stderr}");
}
