//! Fuel metering: exact, repeatable, proportional to work.

use http::StatusCode;

use crate::support::TestServer;

const MANIFEST: &str = r#"
[functions.work]
component = "{WORK}"
[functions.hello]
component = "{HELLO}"

[[routes]]
path = "/work"
function = "work"
[[routes]]
path = "/hello"
function = "hello"
"#;

async fn fuel(server: &TestServer, path: &str) -> u64 {
    let reply = server.get(path).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let record = server.record(&reply.request_id()).await;
    assert_eq!(record.outcome, gust_runtime::Outcome::Ok);
    record.fuel_consumed
}

#[tokio::test]
async fn same_request_same_fuel() {
    let server = TestServer::start(MANIFEST).await;
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
    let server = TestServer::start(MANIFEST).await;
    // Same digit count, so only the loop differs between requests.
    let f1 = fuel(&server, "/work?n=1000").await;
    let f2 = fuel(&server, "/work?n=2000").await;
    let f4 = fuel(&server, "/work?n=4000").await;
    assert!(f1 < f2 && f2 < f4, "{f1} {f2} {f4}");
    let step = f2 - f1;
    // Every 1000 rounds cost the same fuel.
    assert_eq!(f4 - f2, 2 * step, "{f1} {f2} {f4}");
}

/// Guests stopped in a loop: by their deadline, or because their client
/// left.
const STOPPED: &str = r#"
[functions.spin]
component = "{SPIN}"
timeout = "1s"
fuel = 1_000_000_000_000
[functions.p3-spin]
component = "{P3_SPIN}"
timeout = "1s"
fuel = 1_000_000_000_000
[functions.hello]
component = "{HELLO}"

[[routes]]
path = "/spin"
function = "spin"
[[routes]]
path = "/p3/spin"
function = "p3-spin"
[[routes]]
path = "/hello"
function = "hello"
"#;

/// Ten fuel flush intervals: a guest that spun for a second of wall time
/// burned far more than this on any machine, and the fuel it was billed
/// before gust kept portions (a few thousand) is far less.
const SPUN: u64 = 10 * 1_000_000;

#[tokio::test]
async fn a_loop_stopped_at_its_deadline_is_billed_the_fuel_it_burned() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let server = TestServer::start(STOPPED).await;
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
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /p3/spin?after-head HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(
        crate::support::REQUEST_TIMEOUT,
        stream.read_to_end(&mut seen),
    )
    .await;
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
    use tokio::io::AsyncWriteExt as _;
    let server = TestServer::start(&STOPPED.replace("timeout = \"1s\"", "timeout = \"20s\"")).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /spin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
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
