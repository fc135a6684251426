//! Graceful shutdown finishes in-flight requests.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};

use crate::support::client::{http1, with_host};
use crate::support::{TestServer, manifest};

#[tokio::test]
async fn in_flight_request_finishes_after_shutdown_starts() {
    let server = TestServer::start(manifest().function("work", "{WORK}").route("/work")).await;
    let (mut sender, _connection) = http1(server.addr).await;
    let get = |path: &str| with_host(Request::get(path).body(Full::new(Bytes::new())).unwrap());
    // A first request proves the connection was accepted.
    let first = sender.send_request(get("/work?n=1")).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    first.into_body().collect().await.unwrap();

    // A slow request, then shutdown while it runs.
    let slow = tokio::spawn(sender.send_request(get("/work?n=30000000")));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopped = tokio::spawn(server.stop());

    let response = tokio::time::timeout(crate::support::REQUEST_TIMEOUT, slow)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(body.starts_with(b"30000000 rounds: "), "{body:?}");
    stopped.await.unwrap().unwrap();
}

#[tokio::test]
async fn work_after_the_response_is_waited_for_and_recorded_before_stop_returns() {
    use gust_runtime::manifest::{LedgerLocation, LedgerSettings};

    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with_ledger(
        manifest()
            .function("post-return", "{P3_POST_RETURN}")
            .route("/post-return"),
        Some(LedgerSettings {
            location: LedgerLocation::File(dir.path().join("ledger.sqlite")),
            ..LedgerSettings::default()
        }),
    )
    .await;
    let ledger = server.ledger.clone().unwrap();
    // Each guest answers in full, then works 50 ms more.
    let (a, b, c) = tokio::join!(
        server.get("/post-return"),
        server.get("/post-return"),
        server.get("/post-return"),
    );
    for reply in [a, b, c] {
        assert_eq!(
            (reply.status, reply.text().as_str()),
            (StatusCode::OK, "done\n")
        );
    }
    // Stopped while the guests still work: it waits for them.
    server.stop().await.unwrap();
    ledger.close();
    let stats = ledger.stats();
    assert_eq!(
        (stats.written(), stats.dropped()),
        (3, 0),
        "every invocation's record is in before the server returns"
    );
}
