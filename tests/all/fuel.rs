//! Fuel metering: exact, repeatable, proportional to work.

use std::time::Duration;

use http::StatusCode;

use crate::support::client::{raw_request, read_to_close};
use crate::support::manifest::ManifestText;
use crate::support::{self, REQUEST_TIMEOUT, TestServer};

/// `work` at `/work`, `hello` at `/hello`.
fn manifest() -> ManifestText {
    support::manifest()
        .function("work", "{WORK}")
        .route("/work")
        .hello()
}

async fn fuel(server: &TestServer, path: &str) -> u64 {
    let reply = server.get(path).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let record = server.record(&reply.request_id()).await;
    assert_eq!(record.outcome, gust_runtime::Outcome::Ok);
    record.fuel_consumed
}

#[tokio::test]
async fn same_request_same_fuel() {
    let server = TestServer::start(manifest()).await;
    for path in ["/hello", "/work?n=5000"] {
        let first = fuel(&server, path).await;
        assert!(first > 0);
        for _ in 0..5 {
            assert_eq!(fuel(&server, path).await, first, "{path}");
        }
    }
}

#[tokio::test]
async fn fuel_grows_linearly_with_work() {
    let server = TestServer::start(manifest()).await;
    // Same digit count, so only the loop differs between requests.
    let f1 = fuel(&server, "/work?n=1000").await;
    let f2 = fuel(&server, "/work?n=2000").await;
    let f4 = fuel(&server, "/work?n=4000").await;
    assert!(f1 < f2 && f2 < f4, "{f1} {f2} {f4}");
    let step = f2 - f1;
    // Every 1000 rounds cost the same fuel.
    assert_eq!(f4 - f2, 2 * step, "{f1} {f2} {f4}");
}

/// Guests stopped in a loop: by their `timeout` deadline, or because
/// their client left.
fn stopped(timeout: &str) -> ManifestText {
    let settings = format!("timeout = \"{timeout}\"\nfuel = 1_000_000_000_000");
    support::manifest()
        .function("spin", "{SPIN}")
        .set(&settings)
        .route("/spin")
        .function("p3-spin", "{P3_SPIN}")
        .set(&settings)
        .route("/p3/spin")
        .hello()
}

/// Ten fuel flush intervals: a guest that spun for a second of wall time
/// burned far more than this on any machine, and the fuel it was billed
/// before gust kept portions (a few thousand) is far less.
const SPUN: u64 = 10 * 1_000_000;

#[tokio::test]
async fn a_loop_stopped_at_its_deadline_is_billed_the_fuel_it_burned() {
    let server = TestServer::start(stopped("1s")).await;
    for path in ["/spin", "/p3/spin"] {
        let reply = server.get(path).await;
        let record = server.record(&reply.request_id()).await;
        assert_eq!(record.outcome, gust_runtime::Outcome::Timeout, "{path}");
        assert!(
            record.fuel_consumed > SPUN,
            "{path}: billed {} fuel for a second of spinning",
            record.fuel_consumed
        );
    }
    // Answered first, then spun until the deadline cut the body: the
    // client got 200, and the spin is billed.
    server.clear_records();
    let mut stream = raw_request(
        server.addr,
        b"GET /p3/spin?after-head HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    let seen = read_to_close(&mut stream, REQUEST_TIMEOUT)
        .await
        .unwrap_or_else(|partial| partial);
    assert!(seen.starts_with(b"HTTP/1.1 200 "));
    let record = server.record_of("p3-spin").await;
    assert_eq!(record.status, 200);
    assert_eq!(record.outcome, gust_runtime::Outcome::Timeout);
    assert!(
        record.fuel_consumed > SPUN,
        "billed {} fuel for a second of spinning after the head",
        record.fuel_consumed
    );
}

#[tokio::test]
async fn a_loop_whose_client_left_is_billed_the_fuel_it_burned() {
    let server = TestServer::start(stopped("20s")).await;
    let stream = raw_request(
        server.addr,
        b"GET /spin HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(stream);
    let record = server.record_of("spin").await;
    assert_eq!(record.outcome, gust_runtime::Outcome::ClientGone);
    assert!(
        record.fuel_consumed > SPUN,
        "billed {} fuel for half a second of spinning",
        record.fuel_consumed
    );
    assert_eq!(server.get("/hello").await.status, StatusCode::OK);
}
