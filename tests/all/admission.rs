//! Per-function concurrency: excess requests wait in a bounded queue, then
//! get 503 with `Retry-After`; other functions are not affected.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};

use crate::support::manifest::ManifestText;
use crate::support::{self, TestServer, send};

/// `hello`, and two functions of the host-wait guest (a 1 s wait) with one
/// slot and one queue place each: `wait` queues up to 5 s, `short-queue`
/// up to 200 ms.
fn manifest() -> ManifestText {
    let one_slot = |queue_timeout: &str| {
        format!("timeout = \"1s\"\nconcurrency = 1\nqueue = 1\nqueue_timeout = \"{queue_timeout}\"")
    };
    support::manifest()
        .hello()
        .function("wait", "{HOST_WAIT}")
        .set(&one_slot("5s"))
        .route("/wait")
        .function("short-queue", "{HOST_WAIT}")
        .set(&one_slot("200ms"))
        .route("/short-queue")
}

fn get(server: &TestServer, path: &'static str) -> tokio::task::JoinHandle<crate::support::Reply> {
    let addr = server.addr;
    tokio::spawn(async move {
        send(addr, Request::get(path).body(Bytes::new()).unwrap())
            .await
            .expect("request")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_503_and_a_queued_request_runs_when_a_slot_frees() {
    let server = TestServer::start(manifest()).await;
    // Occupies the one slot for its 1 s deadline.
    let first = get(&server, "/wait");
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Takes the one queue place.
    let queued = get(&server, "/wait");
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Finds the slot busy and the queue full.
    let refused = server.get("/wait").await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers["retry-after"], "1");
    // Other functions are served meanwhile.
    assert_eq!(server.get("/hello").await.status, StatusCode::OK);

    assert_eq!(first.await.unwrap().status, StatusCode::GATEWAY_TIMEOUT);
    // Admitted once the first ended, then ran to its own deadline.
    let queued = queued.await.unwrap();
    assert_eq!(queued.status, StatusCode::GATEWAY_TIMEOUT);
    let record = server.record(&queued.request_id()).await;
    assert_eq!(record.outcome, gust_runtime::Outcome::Timeout);
    // A refused request never reached the function: no record.
    let records = server.records();
    assert!(records.iter().all(|r| r.request_id != refused.request_id()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_past_the_queue_timeout_is_503() {
    let server = TestServer::start(manifest()).await;
    let first = get(&server, "/short-queue");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waited = server.get("/short-queue").await;
    assert_eq!(waited.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(waited.headers["retry-after"], "1");
    assert_eq!(first.await.unwrap().status, StatusCode::GATEWAY_TIMEOUT);
    // The slot is free again.
    let again = server.get("/short-queue").await;
    assert_eq!(again.status, StatusCode::GATEWAY_TIMEOUT);
}
