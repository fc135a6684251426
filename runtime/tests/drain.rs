//! A node (`gust serve --admin`) with an app deployed by `gust deploy`,
//! terminated by SIGTERM while clients keep it busy: every request that
//! reached a guest is answered in full, and every one of them has its
//! usage record in the ledger.

mod support;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use support::{GUST, Serving};

const CLIENTS: usize = 4;

#[derive(Default)]
struct Tally {
    /// Answered 200 in full.
    answered: AtomicU64,
    /// Sent on a connection the server closed as it went idle: never
    /// reached a guest (HTTP/1.1's keep-alive race; clients retry these).
    not_sent: AtomicU64,
    /// Anything else: a request lost in flight.
    failed: AtomicU64,
}

/// A keep-alive HTTP/1.1 client sending `/work?n=...` back to back until
/// the server closes its connection.
async fn client(addr: std::net::SocketAddr, started: Arc<AtomicBool>, tally: Arc<Tally>) {
    let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
        tally.failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let Ok((mut sender, connection)) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    else {
        tally.failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    tokio::spawn(connection);
    loop {
        let request = http::Request::get("/work?n=2000000")
            .header(http::header::HOST, "drain.example.com")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let sent =
            tokio::time::timeout(Duration::from_secs(60), sender.send_request(request)).await;
        match sent {
            Ok(Ok(response)) => {
                let status = response.status();
                let closing = response
                    .headers()
                    .get(http::header::CONNECTION)
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
                let body = response.into_body().collect().await.map(|b| b.to_bytes());
                match body {
                    Ok(body) if status == 200 && body.ends_with(b"\n") => {
                        tally.answered.fetch_add(1, Ordering::Relaxed);
                        started.store(true, Ordering::Relaxed);
                    }
                    _ => {
                        tally.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if closing {
                    return;
                }
            }
            Ok(Err(e)) if e.is_incomplete_message() || e.is_canceled() || e.is_closed() => {
                tally.not_sent.fetch_add(1, Ordering::Relaxed);
                return;
            }
            _ => {
                tally.failed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        if sender.ready().await.is_err() {
            return;
        }
    }
}

#[test]
fn sigterm_under_load_drains_and_records_every_request() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let ledger = dir.path().join("ledger.sqlite");
    let created = Command::new(GUST)
        .args(["token", "create", "--operator", "--tokens"])
        .arg(state.join("tokens"))
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let token = String::from_utf8(created.stdout).unwrap().trim().to_owned();

    let node = Serving::start(&[
        "--admin",
        "127.0.0.1:0",
        "--state-dir",
        state.to_str().unwrap(),
        "--ledger",
        ledger.to_str().unwrap(),
    ]);
    let is_admin = |l: &str| l.contains("admin on http://");
    let admin_line = match node.startup.lines().find(|l| is_admin(l)) {
        Some(line) => line.to_owned(),
        None => node
            .read_until(Duration::from_secs(30), is_admin)
            .pop()
            .filter(|l| is_admin(l))
            .expect("the node logs its admin address"),
    };
    let admin = admin_line[admin_line.find("http://").unwrap()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();

    // The app, deployed as a user deploys it.
    let app = dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::copy(gust_runtime::examples::WORK_PATH, app.join("work.wasm")).unwrap();
    std::fs::write(
        app.join("gust.toml"),
        "name = \"drain\"\nhosts = [\"drain.example.com\"]\n\
         [functions.work]\ncomponent = \"work.wasm\"\n\
         [[routes]]\npath = \"/work\"\nfunction = \"work\"\n",
    )
    .unwrap();
    let deployed = Command::new(GUST)
        .arg("deploy")
        .arg(&app)
        .args(["--admin", &admin])
        .env("GUST_TOKEN", &token)
        .output()
        .unwrap();
    assert!(
        deployed.status.success(),
        "{}",
        String::from_utf8_lossy(&deployed.stderr)
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tally = Arc::new(Tally::default());
    let started = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| runtime.spawn(client(node.addr, started.clone(), tally.clone())))
        .collect();
    // Busy: every client has been answered at least once, and more
    // requests are in flight when the signal comes.
    while tally.answered.load(Ordering::Relaxed) < 2 * CLIENTS as u64 {
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(tally.failed.load(Ordering::Relaxed), 0);
    }
    let (exited_cleanly, log) = node.terminate();
    runtime.block_on(async {
        for client in clients {
            client.await.unwrap();
        }
    });
    let log = log.join("\n");
    assert!(exited_cleanly, "{log}");
    assert!(log.contains("dropped=0"), "records were dropped:\n{log}");

    let (answered, not_sent, failed) = (
        tally.answered.load(Ordering::Relaxed),
        tally.not_sent.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
    );
    assert_eq!(failed, 0, "requests lost in flight:\n{log}");
    assert!(not_sent <= CLIENTS as u64);

    // Every answered request, and nothing else, is in the ledger.
    let usage = support::usage_rows(&ledger);
    let recorded = support::requests_of(&usage, "work");
    assert_eq!(recorded, answered, "{usage:?}\n{log}");
}
