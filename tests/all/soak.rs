//! Soak: sustained mixed load (normal, trapping, slow and looping guests at
//! once, and a hostile tenant making the host work and hold memory for it),
//! then a check that normal requests were unaffected and nothing leaked. Ignored by default; run with
//!
//! ```text
//! cargo test --release -p gust-tests --test all soak -- --ignored --nocapture
//! ```
//!
//! `GUST_SOAK_SECS` sets the load phase (default 60 s).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gust_runtime::manifest::{LedgerLocation, LedgerSettings};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};

use crate::support::client::{http1, with_host};
use crate::support::{TestServer, send};

const MANIFEST: &str = r#"
[functions.hello]
component = "{HELLO}"
[functions.echo]
component = "{ECHO}"
[functions.trap]
component = "{TRAP}"
[functions.slow]
component = "{HOST_WAIT}"
timeout = "300ms"
[functions.spin]
component = "{SPIN}"
timeout = "300ms"
fuel = 1_000_000_000_000
[functions.churn]
component = "{HOST_CHURN}"
timeout = "300ms"
fuel = 1_000_000_000_000
[functions.hoard]
component = "{HOST_CHURN}"
timeout = "5s"
[functions.leak]
component = "{HANDLE_LEAK}"

[[routes]]
path = "/hello"
function = "hello"
[[routes]]
path = "/echo/{*rest}"
function = "echo"
[[routes]]
path = "/trap"
function = "trap"
[[routes]]
path = "/slow"
function = "slow"
[[routes]]
path = "/spin"
function = "spin"
[[routes]]
path = "/churn"
function = "churn"
[[routes]]
path = "/hoard"
function = "hoard"
[[routes]]
path = "/leak"
function = "leak"
"#;

/// Resident set size of this process (server and load generator).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

#[derive(Default)]
struct Counts {
    normal_ok: AtomicU64,
    normal_bad: AtomicU64,
    hostile: AtomicU64,
    hostile_unexpected: AtomicU64,
}

/// Keep-alive clients sending `hello` and `echo` requests: every one must
/// be answered 200 with the right body.
async fn normal_client(addr: std::net::SocketAddr, stop: Arc<AtomicBool>, counts: Arc<Counts>) {
    let (mut sender, _connection) = http1(addr).await;
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let hello = i.is_multiple_of(2);
        let (request, expected): (_, Bytes) = if hello {
            (
                Request::get("/hello"),
                Bytes::from_static(b"Hello from gust!\n"),
            )
        } else {
            let body = Bytes::from(format!("payload {i}"));
            (Request::post("/echo/soak?raw"), body)
        };
        let body = if hello {
            Bytes::new()
        } else {
            expected.clone()
        };
        let request = with_host(request.body(Full::new(body)).unwrap());
        let reply = async {
            let response = sender.send_request(request).await.ok()?;
            let status = response.status();
            let body = response.into_body().collect().await.ok()?.to_bytes();
            Some((status, body))
        };
        match tokio::time::timeout(Duration::from_secs(10), reply).await {
            Ok(Some((StatusCode::OK, body))) if body == expected => {
                counts.normal_ok.fetch_add(1, Ordering::Relaxed);
            }
            other => {
                counts.normal_bad.fetch_add(1, Ordering::Relaxed);
                eprintln!("unexpected normal reply: {other:?}");
                return;
            }
        }
    }
}

/// A client of a misbehaving function, expecting its documented status.
async fn hostile_client(
    addr: std::net::SocketAddr,
    path: &'static str,
    expected: StatusCode,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
) {
    while !stop.load(Ordering::Relaxed) {
        let reply = send(addr, Request::get(path).body(Bytes::new()).unwrap()).await;
        counts.hostile.fetch_add(1, Ordering::Relaxed);
        if !matches!(&reply, Ok(r) if r.status == expected) {
            counts.hostile_unexpected.fetch_add(1, Ordering::Relaxed);
            eprintln!("unexpected {path} reply: {reply:?}");
        }
    }
}

async fn run_load(server: &TestServer, duration: Duration) -> Arc<Counts> {
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let mut tasks = Vec::new();
    for _ in 0..8 {
        tasks.push(tokio::spawn(normal_client(
            server.addr,
            stop.clone(),
            counts.clone(),
        )));
    }
    for (path, status) in [
        ("/trap", StatusCode::INTERNAL_SERVER_ERROR),
        ("/slow", StatusCode::GATEWAY_TIMEOUT),
        ("/spin", StatusCode::GATEWAY_TIMEOUT),
        // The hostile tenant: host memory past `host_memory`, randomness
        // past `max_random_size`, loops of host calls until the deadline,
        // resource handles past `resources`.
        (
            "/hoard?hold=1000&size=65536",
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        ("/churn?random=67108864", StatusCode::INTERNAL_SERVER_ERROR),
        ("/churn?fields=0", StatusCode::GATEWAY_TIMEOUT),
        ("/churn?u64=0", StatusCode::GATEWAY_TIMEOUT),
        ("/leak", StatusCode::INTERNAL_SERVER_ERROR),
    ] {
        for _ in 0..2 {
            tasks.push(tokio::spawn(hostile_client(
                server.addr,
                path,
                status,
                stop.clone(),
                counts.clone(),
            )));
        }
    }
    let started = Instant::now();
    while started.elapsed() < duration {
        tokio::time::sleep(Duration::from_secs(1)).await;
        // The test's own record list would grow without bound.
        server.clear_records();
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    counts
}

/// On the runtime `gust serve` runs on: with tokio's default event interval
/// the guests burning CPU here starve the sockets (see
/// `gust_runtime::server::EVENT_INTERVAL`).
#[test]
#[ignore = "a minute of load: run explicitly (see the module docs)"]
fn soak_mixed_load_without_errors_or_leaks() {
    gust_runtime::server::runtime_builder()
        .build()
        .expect("a runtime")
        .block_on(soak());
}

async fn soak() {
    let secs: u64 = std::env::var("GUST_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let ledger = LedgerSettings {
        location: LedgerLocation::Memory,
        ..LedgerSettings::default()
    };
    let server = TestServer::start_with_ledger(MANIFEST, Some(ledger)).await;

    // Warm up at the same concurrency, so pooled slots and allocator
    // arenas reach their working size before the baseline.
    run_load(&server, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let baseline = rss_bytes();

    let counts = run_load(&server, Duration::from_secs(secs)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.clear_records();
    let after = rss_bytes();

    let ok = counts.normal_ok.load(Ordering::Relaxed);
    let bad = counts.normal_bad.load(Ordering::Relaxed);
    let hostile = counts.hostile.load(Ordering::Relaxed);
    let unexpected = counts.hostile_unexpected.load(Ordering::Relaxed);
    let stats = server.ledger.as_ref().map(|l| l.stats());
    eprintln!(
        "soak {secs}s: {ok} normal ok, {bad} normal failed, {hostile} hostile ({unexpected} unexpected); \
         rss {:.1} MiB -> {:.1} MiB; ledger written {:?}, dropped {:?}",
        baseline as f64 / 1048576.0,
        after as f64 / 1048576.0,
        stats.as_ref().map(|s| s.written()),
        stats.as_ref().map(|s| s.dropped()),
    );
    assert_eq!(bad, 0, "normal requests failed");
    assert_eq!(unexpected, 0, "hostile requests got unexpected answers");
    assert!(ok > 1000, "too little load to mean anything: {ok}");
    // Back to the baseline: allow allocator noise, not growth with load.
    assert!(
        after <= baseline + baseline / 10 + (32 << 20),
        "resident memory grew from {baseline} to {after} bytes"
    );
    assert_eq!(stats.map(|s| s.dropped()), Some(0));
}
