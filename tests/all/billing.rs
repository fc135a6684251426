//! Billing: usage records, host fuel, costs, the ledger, quotas, the admin
//! endpoint.
//!
//! (Long: records, prices, quotas and the ledger are one flow, tested
//! end to end.)

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gust_runtime::Outcome;
use gust_runtime::ledger::{self, UsageFilter};
use gust_runtime::manifest::{LedgerLocation, LedgerSettings};
use gust_runtime::metering::{BODY_FRAME_FUEL, HOST_CALL_FUEL, body_fuel};
use http::{Request, StatusCode};

use crate::support::client::request_id_in;
use crate::support::manifest::ManifestText;
use crate::support::{Reply, TestServer, manifest};

/// `echo` at `/echo/{*rest}`.
fn echo() -> ManifestText {
    manifest().function("echo", "{ECHO}").route("/echo/{*rest}")
}

fn file_ledger(dir: &std::path::Path) -> LedgerSettings {
    LedgerSettings {
        location: LedgerLocation::File(dir.join("ledger.sqlite")),
        flush_interval: Duration::from_millis(50),
        ..LedgerSettings::default()
    }
}

async fn post(server: &TestServer, path: &str, body: Vec<u8>) -> Reply {
    server
        .send(Request::post(path).body(Bytes::from(body)).unwrap())
        .await
}

#[tokio::test]
async fn body_bytes_are_recorded_and_charged_as_host_fuel() {
    let server = TestServer::start(echo()).await;
    let empty = post(&server, "/echo/x?raw", Vec::new()).await;
    let empty = server.record(&empty.request_id()).await;
    assert_eq!((empty.request_bytes, empty.response_bytes), (0, 0));
    // No body, but host calls (reading the request, writing the answer).
    assert!(empty.host_fuel >= HOST_CALL_FUEL, "{empty:?}");

    let reply = post(&server, "/echo/x?raw", vec![7; 8000]).await;
    assert_eq!(reply.body.len(), 8000);
    let record = server.record(&reply.request_id()).await;
    assert_eq!(record.request_bytes, 8000);
    assert_eq!(record.response_bytes, 8000);
    // 16,000 body bytes at 8 a fuel, at least one request body frame, and
    // host calls that the empty request made too.
    assert_eq!(body_fuel(16_000), 2000);
    assert!(
        record.host_fuel >= empty.host_fuel + body_fuel(16_000) + BODY_FRAME_FUEL,
        "{} against {}",
        record.host_fuel,
        empty.host_fuel
    );
    // Host fuel is part of the fuel billed, on top of the guest's own work.
    assert!(record.fuel_consumed > record.host_fuel);
    assert!(record.fuel_consumed - record.host_fuel > empty.fuel_consumed - empty.host_fuel);
    assert!(
        record.peak_memory_bytes >= 64 * 1024,
        "{}",
        record.peak_memory_bytes
    );
    assert_eq!(record.outcome, Outcome::Ok);
    assert_eq!(record.status, 200);
    assert_eq!(record.route, "/echo/{*rest}");
    assert_eq!(record.app.as_str(), "default");
}

#[tokio::test]
async fn cost_matches_the_price_formula() {
    let server = TestServer::start(
        r#"
name = "shop"
[billing]
per_request = 1000
per_million_fuel = 37
per_gb_second = 16667
per_gb_transfer = 90000000

[functions.echo]
component = "{ECHO}"
billing = { per_request = 2500 }
[[routes]]
path = "/echo/{*rest}"
function = "echo"
"#,
    )
    .await;
    let reply = post(&server, "/echo/a?raw", vec![1; 100_000]).await;
    let r = server.record(&reply.request_id()).await;
    assert_eq!(r.app.as_str(), "shop");
    assert_eq!(r.currency, "USD");
    // Every part rounded up on its own (see billing.rs).
    let ceil = |n: u128, d: u128| n.div_ceil(d);
    let expected = 2500
        + ceil(u128::from(r.fuel_consumed) * 37, 1_000_000)
        + ceil(
            u128::from(r.peak_memory_bytes) * r.duration.as_nanos() * 16_667,
            (1 << 30) * 1_000_000_000,
        )
        + ceil(
            u128::from(r.request_bytes + r.response_bytes) * 90_000_000,
            1 << 30,
        );
    assert_eq!(u128::from(r.cost_nanos), expected);
    assert!(
        r.cost_nanos > 2500 + 16_000,
        "traffic must be charged: {}",
        r.cost_nanos
    );
}

#[tokio::test]
async fn failed_invocations_are_recorded_with_their_outcome_in_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with_ledger(
        manifest()
            .function("trap", "{TRAP}")
            .route("/trap")
            .function("work", "{WORK}")
            .set("fuel = 100000")
            .route("/work")
            .function("spin", "{SPIN}")
            .set("timeout = \"300ms\"\nfuel = 1_000_000_000_000")
            .route("/spin"),
        Some(file_ledger(dir.path())),
    )
    .await;
    assert_eq!(server.get("/trap").await.status, 500);
    assert_eq!(server.get("/work?n=100000000").await.status, 500);
    assert_eq!(server.get("/spin").await.status, 504);
    let ledger = server.ledger.clone().unwrap();
    server.stop().await.unwrap();
    ledger.close();

    let conn = ledger::open_read_only(&dir.path().join("ledger.sqlite")).unwrap();
    let mut outcomes: Vec<(String, String, i64, i64)> = conn
        .prepare("SELECT function, outcome, status, fuel FROM invocations ORDER BY function")
        .unwrap()
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    outcomes.sort();
    assert_eq!(outcomes.len(), 3);
    assert_eq!(&outcomes[0].0[..], "spin");
    assert_eq!((&outcomes[0].1[..], outcomes[0].2), ("timeout", 504));
    assert_eq!((&outcomes[1].1[..], outcomes[1].2), ("trap", 500));
    assert_eq!(
        (&outcomes[2].1[..], outcomes[2].2, outcomes[2].3),
        ("out_of_fuel", 500, 100_000)
    );
    // Every failed invocation still used fuel.
    assert!(outcomes.iter().all(|o| o.3 > 0), "{outcomes:?}");
}

#[tokio::test]
async fn ledger_keeps_every_record_across_a_graceful_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected_fuel = 0;
    for round in 0..2 {
        let server = TestServer::start_with_ledger(echo(), Some(file_ledger(dir.path()))).await;
        for i in 0..20 {
            let reply = post(&server, "/echo/r?raw", vec![b'x'; i * 10]).await;
            assert_eq!(reply.status, StatusCode::OK);
            expected_fuel += server.record(&reply.request_id()).await.fuel_consumed;
        }
        let ledger = server.ledger.clone().unwrap();
        server.stop().await.unwrap();
        // Graceful shutdown: everything is committed.
        ledger.close();
        assert_eq!(ledger.stats().written(), 20, "round {round}");
        assert_eq!(ledger.stats().dropped(), 0);
    }
    let conn = ledger::open_read_only(&dir.path().join("ledger.sqlite")).unwrap();
    let rows = ledger::usage(&conn, &UsageFilter::default()).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].function, "echo");
    assert_eq!(rows[0].requests, 40);
    assert_eq!(rows[0].errors, 0);
    assert_eq!(rows[0].fuel, expected_fuel);
    // 2 rounds of 0 + 10 + ... + 190 bytes, in and out.
    assert_eq!(rows[0].request_bytes, 2 * 1900);
    assert_eq!(rows[0].response_bytes, 2 * 1900);
    let raw: i64 = conn
        .query_row("SELECT COUNT(*) FROM invocations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(raw, 40);
}

#[tokio::test]
async fn a_full_disk_loses_records_but_not_requests() {
    let dir = tempfile::tempdir().unwrap();
    let settings = LedgerSettings {
        // Room for the schema and a few pages of records only.
        max_size: Some(48 * 1024),
        ..file_ledger(dir.path())
    };
    let server = std::sync::Arc::new(TestServer::start_with_ledger(echo(), Some(settings)).await);
    for _ in 0..10 {
        let batch: Vec<_> = (0..40)
            .map(|_| {
                let server = server.clone();
                tokio::spawn(async move { post(&server, "/echo/full", vec![b'y'; 10]).await })
            })
            .collect();
        for reply in batch {
            assert_eq!(reply.await.unwrap().status, StatusCode::OK);
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    let ledger = server.ledger.clone().unwrap();
    // Every record is finished once its invocation is; wait for all 400.
    for _ in 0..500 {
        ledger.flush();
        let stats = ledger.stats();
        if stats.written() + stats.dropped() == 400 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = ledger.stats();
    assert!(stats.write_errors() > 0, "the ledger should have filled up");
    assert!(stats.dropped() > 0);
    assert!(stats.written() > 0);
    assert_eq!(stats.written() + stats.dropped(), 400);
    // Still serving.
    assert_eq!(server.get("/echo/after").await.status, StatusCode::OK);
}

#[test]
fn corrupt_or_unwritable_ledger_is_a_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.sqlite");
    std::fs::write(&garbage, vec![0xAB; 8192]).unwrap();
    let err = ledger::Ledger::open(&LedgerSettings {
        location: LedgerLocation::File(garbage.clone()),
        ..LedgerSettings::default()
    })
    .err()
    .expect("garbage is not a ledger");
    let err = format!("{err:#}");
    assert!(err.contains(&garbage.display().to_string()), "{err}");
    assert!(err.contains("not a database"), "{err}");

    // A path below a regular file cannot be created.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let err = ledger::Ledger::open(&LedgerSettings {
        location: LedgerLocation::File(blocker.join("ledger.sqlite")),
        ..LedgerSettings::default()
    })
    .err()
    .expect("cannot create a ledger below a file");
    assert!(format!("{err:#}").contains("cannot"), "{err:#}");
}

#[tokio::test]
async fn quota_gives_429_until_the_window_rolls() {
    let server = TestServer::start(
        manifest()
            .hello()
            .set(r#"quota = { fuel = 1, window = "2s" }"#),
    )
    .await;
    // Start just after a window boundary so the test does not straddle one.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let into = Duration::from_nanos((now.as_nanos() % 2_000_000_000) as u64);
    tokio::time::sleep(Duration::from_secs(2) - into + Duration::from_millis(20)).await;

    let first = server.get("/hello").await;
    assert_eq!(first.status, StatusCode::OK);
    server.record(&first.request_id()).await;
    let limited = server.get("/hello").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.text(), "function quota exceeded, retry later\n");
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");

    tokio::time::sleep(Duration::from_secs(retry)).await;
    assert_eq!(server.get("/hello").await.status, StatusCode::OK);
}

/// Concurrent requests cannot overshoot a quota: admission reserves each
/// invocation's whole budget, so with a quota of four budgets only four of
/// twenty requests fired at once run (each burns its whole budget).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_do_not_overshoot_the_quota() {
    const BUDGET: u64 = 20_000_000;
    const QUOTA: u64 = 4 * BUDGET;
    let server = std::sync::Arc::new(
        TestServer::start(
            manifest()
                .function("spin", "{SPIN}")
                .set(&format!(
                    r#"fuel = {BUDGET}
quota = {{ fuel = {QUOTA}, window = "1h" }}"#
                ))
                .route("/spin"),
        )
        .await,
    );
    // Not within a minute of the hour, so the test does not straddle it.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let into = now.as_secs() % 3600;
    if into >= 3540 {
        tokio::time::sleep(Duration::from_secs(3600 - into + 1)).await;
    }

    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let server = server.clone();
            tokio::spawn(async move { server.get("/spin").await })
        })
        .collect();
    let mut ran = Vec::new();
    let mut limited = 0;
    for task in tasks {
        let reply = task.await.unwrap();
        match reply.status {
            StatusCode::INTERNAL_SERVER_ERROR => ran.push(reply.request_id()),
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(reply.headers.contains_key("retry-after"));
                limited += 1;
            }
            other => panic!("unexpected {other}: {}", reply.text()),
        }
    }
    let mut used = 0;
    for id in &ran {
        let record = server.record(id).await;
        assert_eq!(record.outcome, Outcome::OutOfFuel);
        assert_eq!(record.fuel_consumed, BUDGET);
        used += record.fuel_consumed;
    }
    assert_eq!((ran.len(), limited), (4, 16), "fuel used {used} of {QUOTA}");
    assert_eq!(used, QUOTA);

    // Used up: retry when the window rolls, not when requests in flight end.
    let after = server.get("/spin").await;
    assert_eq!(after.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = after.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 10, "{retry}");
}

#[tokio::test]
async fn admin_endpoint_serves_usage_and_metrics() {
    let server = TestServer::start_with_ledger(
        echo(),
        Some(LedgerSettings {
            location: LedgerLocation::Memory,
            ..LedgerSettings::default()
        }),
    )
    .await;
    for _ in 0..3 {
        post(&server, "/echo/admin?raw", b"abc".to_vec()).await;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(gust_runtime::admin::serve(
        listener,
        server.ledger.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    // Records are finished once both the guest and the body are done.
    for _ in 0..100 {
        let usage = crate::support::send(
            admin,
            Request::get("/usage?function=echo")
                .body(Bytes::new())
                .unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(usage.status, StatusCode::OK);
        assert_eq!(usage.headers["content-type"], "application/json");
        let json = usage.json();
        if json[0]["requests"] == 3 {
            assert_eq!(json[0]["function"], "echo");
            assert_eq!(json[0]["request_bytes"], 9);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let metrics = crate::support::send(admin, Request::get("/metrics").body(Bytes::new()).unwrap())
        .await
        .unwrap();
    assert!(
        metrics
            .text()
            .contains("gust_ledger_records_written_total 3"),
        "{}",
        metrics.text()
    );
    assert!(
        metrics.text().contains(
            "# TYPE gust_guest_log_bytes_dropped_total counter\ngust_guest_log_bytes_dropped_total "
        ),
        "{}",
        metrics.text()
    );
    let bad = crate::support::send(
        admin,
        Request::get("/usage?since=yesterday-ish")
            .body(Bytes::new())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let post = crate::support::send(admin, Request::post("/usage").body(Bytes::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.headers["allow"], "GET");
    let none = crate::support::send(admin, Request::get("/nope").body(Bytes::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    let _ = stop.send(());
}

/// A ledger file deleted while serving (with its WAL and shared memory) is
/// noticed before the next commit: what it held is counted as lost, and
/// the ledger is recreated at the same path for the records that follow.
#[tokio::test]
async fn a_removed_ledger_file_is_counted_as_lost_and_recreated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    let server = TestServer::start_with_ledger(echo(), Some(file_ledger(dir.path()))).await;
    let ledger = server.ledger.clone().unwrap();
    let stats = ledger.stats();
    // Records are finished once both the guest and the body are done.
    async fn committed(ledger: &ledger::Ledger, n: u64) {
        for _ in 0..500 {
            ledger.flush();
            if ledger.stats().written() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(ledger.stats().written(), n);
    }

    for _ in 0..10 {
        let reply = post(&server, "/echo/before?raw", b"abc".to_vec()).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    committed(&ledger, 10).await;
    for suffix in ["", "-wal", "-shm"] {
        let file = dir.path().join(format!("ledger.sqlite{suffix}"));
        if file.exists() {
            std::fs::remove_file(file).unwrap();
        }
    }

    for _ in 0..7 {
        let reply = post(&server, "/echo/after?raw", b"abc".to_vec()).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    committed(&ledger, 17).await;
    assert!(path.exists(), "the ledger file was not recreated");
    assert_eq!(stats.records_lost(), 10, "the deleted file held 10 records");
    assert_eq!(stats.write_errors(), 1);
    assert_eq!(stats.dropped(), 0);
    let raw = |path: &std::path::Path| -> i64 {
        ledger::open_read_only(path)
            .unwrap()
            .query_row("SELECT COUNT(*) FROM invocations", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(raw(&path), 7, "the new file holds the records made since");

    server.stop().await.unwrap();
    ledger.close();
    assert_eq!(stats.written(), 17);
    assert_eq!(raw(&path), 7, "a graceful stop leaves them on disk");
    let conn = ledger::open_read_only(&path).unwrap();
    let rows = ledger::usage(&conn, &UsageFilter::default()).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].requests, 7);
    assert_eq!(rows[0].request_bytes, 7 * 3);
}

/// Sends `GET path` on a connection of its own that asks to be closed, reads
/// slowly through a small receive buffer (so the server's writes back up)
/// until the server closes it (or 10 s pass), and returns the head and the
/// body bytes the client received (chunked bodies decoded, a cut last chunk
/// counted as far as it came).
async fn received(server: &TestServer, path: &str) -> (String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(server.addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => reply.extend_from_slice(&buf[..n]),
            }
            tokio::time::sleep(Duration::from_micros(100)).await;
        }
    })
    .await;
    let end = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&reply[..end]).to_lowercase();
    let mut rest = &reply[end + 4..];
    if !head.contains("transfer-encoding: chunked") {
        return (head, rest.to_vec());
    }
    let mut body = Vec::new();
    while let Some(line) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&rest[..line]).unwrap();
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        rest = &rest[line + 2..];
        if size == 0 {
            break;
        }
        let got = size.min(rest.len());
        body.extend_from_slice(&rest[..got]);
        rest = &rest[got..];
        if got < size {
            break;
        }
        rest = rest.get(2..).unwrap_or_default();
    }
    (head, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_longer_than_its_content_length_is_billed_as_sent() {
    let server = TestServer::start(
        manifest()
            .function("overlong-body", "{OVERLONG_BODY}")
            .route("/overlong"),
    )
    .await;
    let (head, body) = received(&server, "/overlong").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    // The guest wrote 21 bytes; hyper sends the 5 it declared.
    assert_eq!(body, b"hello", "{head}");
    let record = server.record(&request_id_in(&head)).await;
    // Billed as sent: the response bytes are what body fuel is charged on.
    assert_eq!(record.response_bytes, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_at_the_size_cap_is_billed_as_received() {
    let server = TestServer::start(
        manifest()
            .defaults(r#"timeout = "5s""#)
            .function("endless-body", "{ENDLESS_BODY}")
            .set("max_response_size = 1000000")
            .route("/endless"),
    )
    .await;
    for _ in 0..5 {
        let (head, body) = received(&server, "/endless").await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        let record = server.record(&request_id_in(&head)).await;
        assert_eq!(record.outcome, Outcome::ResponseTooLarge);
        assert!(body.len() <= 1_000_000, "{}", body.len());
        assert!(
            record.response_bytes <= body.len() as u64,
            "billed {} bytes, the client received {}",
            record.response_bytes,
            body.len()
        );
    }
}
