//! `gust serve --watch` as a developer runs it: a function's watched
//! source changes, its build command runs, and the new component is
//! swapped in while clients keep sending requests. None may fail: requests
//! in flight finish on the version they started on.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod support;

use gust_runtime::examples::{ECHO_PATH, HELLO_PATH};
use support::Serving;

/// Clients sending requests back to back during the swaps.
const CLIENTS: usize = 4;
/// How long a swap may take to show (a build plus a compile).
const SWAP_WAIT: Duration = Duration::from_secs(90);

/// The hello's answer; the echo answers JSON.
const HELLO: &str = "Hello from gust!\n";

/// One GET over a new connection: the body, or what went wrong.
fn try_get(addr: SocketAddr, path: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| format!("read: {e}"))?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no head end in {response:?}"))?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return Err(format!("not 200: {head}"));
    }
    Ok(body.to_owned())
}

#[derive(Default)]
struct Tally {
    hello: AtomicUsize,
    echo: AtomicUsize,
    errors: Mutex<Vec<String>>,
}

#[test]
fn serve_watch_swaps_rebuilt_components_in_under_load_without_failing_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let choice = dir.path().join("choice.txt");
    std::fs::write(&choice, HELLO_PATH).unwrap();
    // The "build" copies the component `choice.txt` names, through a
    // temporary file as a compiler's final write would.
    let manifest = dir.path().join("gust.toml");
    std::fs::write(
        &manifest,
        r#"
[functions.app]
component = "app.wasm"

[functions.app.build]
command = 'cp "$(cat choice.txt)" app.wasm.tmp && mv app.wasm.tmp app.wasm'
watch = ["choice.txt"]

[[routes]]
path = "/{*rest}"
function = "app"
"#,
    )
    .unwrap();
    let server = Serving::start(&["--watch", manifest.to_str().unwrap(), "--no-ledger"]);
    assert!(server.startup.contains("built"), "{}", server.startup);

    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (tally, stop, addr) = (tally.clone(), stop.clone(), server.addr);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match try_get(addr, &format!("/load/{i}")) {
                        Ok(body) if body == HELLO => tally.hello.fetch_add(1, Ordering::Relaxed),
                        Ok(body) if body.starts_with('{') && body.contains("/load/") => {
                            tally.echo.fetch_add(1, Ordering::Relaxed)
                        }
                        Ok(body) => {
                            tally
                                .errors
                                .lock()
                                .unwrap()
                                .push(format!("unexpected body {body:?}"));
                            0
                        }
                        Err(e) => {
                            tally.errors.lock().unwrap().push(e);
                            0
                        }
                    };
                }
            })
        })
        .collect();

    // Hello to echo, and back: each time the build runs and the answers
    // change while the clients keep going.
    let mut swaps = Vec::new();
    for (path, counter) in [(ECHO_PATH, &tally.echo), (HELLO_PATH, &tally.hello)] {
        std::thread::sleep(Duration::from_millis(500));
        let before = counter.load(Ordering::Relaxed);
        let started = Instant::now();
        std::fs::write(&choice, path).unwrap();
        while counter.load(Ordering::Relaxed) == before {
            assert!(
                started.elapsed() < SWAP_WAIT,
                "the new version never answered; log:\n{}",
                server.read_until(Duration::ZERO, |_| false).join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        swaps.push(started.elapsed());
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }

    let errors = tally.errors.lock().unwrap();
    let (hello, echo) = (
        tally.hello.load(Ordering::Relaxed),
        tally.echo.load(Ordering::Relaxed),
    );
    assert!(
        errors.is_empty(),
        "{} of {} requests failed: {:?}",
        errors.len(),
        hello + echo + errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert!(hello > 0 && echo > 0);
    let log = server
        .read_until(Duration::from_secs(1), |_| false)
        .join("\n");
    assert_eq!(log.matches("new version swapped in").count(), 2, "{log}");
    eprintln!("{hello} hello + {echo} echo answers, none failed; swaps seen after {swaps:?}");
}

#[test]
fn serve_watch_keeps_serving_the_old_version_when_a_build_fails() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source.txt");
    std::fs::write(&source, "yes").unwrap();
    std::fs::write(
        dir.path().join("gust.toml"),
        format!(
            r#"
[functions.app]
component = "app.wasm"

[functions.app.build]
command = 'grep -qx yes source.txt && cp {HELLO_PATH:?} app.wasm'
watch = ["*.txt"]

[[routes]]
path = "/"
function = "app"
"#
        ),
    )
    .unwrap();
    let manifest = dir.path().join("gust.toml");
    let server = Serving::start(&["--watch", manifest.to_str().unwrap(), "--no-ledger"]);
    std::fs::write(&source, "no").unwrap();
    let log = server.read_until(SWAP_WAIT, |line| line.contains("still serving"));
    let log = log.join("\n");
    assert!(log.contains("build failed"), "{log}");
    assert!(log.contains("still serving the previous version"), "{log}");
    assert_eq!(try_get(server.addr, "/").as_deref(), Ok(HELLO));
}

#[test]
fn serve_watch_keeps_serving_the_old_version_when_the_manifest_turns_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("gust.toml");
    let valid = format!(
        "[functions.app]\ncomponent = {HELLO_PATH:?}\n\n[[routes]]\npath = \"/\"\nfunction = \"app\"\n"
    );
    std::fs::write(&manifest, &valid).unwrap();
    let server = Serving::start(&["--watch", manifest.to_str().unwrap(), "--no-ledger"]);
    std::fs::write(
        &manifest,
        valid.replace("function = \"app\"", "function = \"ghost\""),
    )
    .unwrap();
    let log = server.read_until(SWAP_WAIT, |line| line.contains("still serving"));
    let log = log.join("\n");
    assert!(log.contains("no function named `ghost`"), "{log}");
    assert_eq!(try_get(server.addr, "/").as_deref(), Ok(HELLO));
}
