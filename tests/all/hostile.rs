//! Hostile guests, one component each: every one gets the right status and
//! a usage record, while `hello` next to it keeps answering 200.

use std::time::Duration;

use bytes::Bytes;
use gust_runtime::{InvocationRecord, Outcome};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};

use crate::support::client::{http1, with_host};
use crate::support::manifest::ManifestText;
use crate::support::{self, REQUEST_TIMEOUT, TestServer};

/// One function per hostile guest, each at `/<id>`, next to `hello`.
fn manifest() -> ManifestText {
    support::manifest()
        .defaults(r#"timeout = "2s""#)
        .hello()
        .function("spin", "{SPIN}")
        .set("fuel = 1_000_000_000_000")
        .route("/spin")
        .function("host-wait", "{HOST_WAIT}")
        .set(r#"timeout = "1s""#)
        .route("/host-wait")
        .function("memory-bomb", "{MEMORY_BOMB}")
        .set("memory = 16777216")
        .route("/memory-bomb")
        .function("table-bomb-small", "{TABLE_BOMB}")
        .set("table_elements = 1000")
        .route("/table-bomb-small")
        .function("table-bomb-large", "{TABLE_BOMB}")
        .set("table_elements = 10000")
        .route("/table-bomb-large")
        .function("stack-overflow", "{STACK_OVERFLOW}")
        .route("/stack-overflow")
        .function("trap", "{TRAP}")
        .route("/trap")
        .function("stream-trap", "{STREAM_TRAP}")
        .route("/stream-trap")
        .function("ignore-body", "{IGNORE_BODY}")
        .route("/ignore-body")
        .function("endless-body", "{ENDLESS_BODY}")
        .set("max_response_size = 1048576")
        .route("/endless-body")
        .function("handle-leak", "{HANDLE_LEAK}")
        .set("resources = 1000")
        .route("/handle-leak")
        .function("handle-leak-large", "{HANDLE_LEAK}")
        .set("resources = 10000")
        .route("/handle-leak-large")
        .function("bad-headers", "{BAD_HEADERS}")
        .route("/bad-headers")
        .function("one-instance", "{HELLO}")
        .set("instances = 1")
        .route("/one-instance")
}

/// What the client of a hostile function saw.
#[derive(Debug)]
struct Seen {
    status: StatusCode,
    /// The whole body, or the error that cut it.
    body: Result<Bytes, String>,
    record: InvocationRecord,
}

/// Calls `path` while a stream of `hello` requests runs next to it; every
/// `hello` must answer 200.
async fn call(server: &TestServer, request: Request<Bytes>) -> Seen {
    let addr = server.addr;
    let neighbours = tokio::spawn(async move {
        let mut statuses = Vec::new();
        for _ in 0..20 {
            let reply =
                crate::support::send(addr, Request::get("/hello").body(Bytes::new()).unwrap())
                    .await
                    .expect("hello request");
            statuses.push(reply.status);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        statuses
    });
    let (status, request_id, body) = tokio::time::timeout(REQUEST_TIMEOUT, async {
        let (mut sender, _connection) = http1(addr).await;
        let response = sender
            .send_request(with_host(request.map(Full::new)))
            .await
            .expect("a response head");
        let status = response.status();
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .map_err(|e| e.to_string());
        (status, id, body)
    })
    .await
    .expect("the hostile request ended in time");
    let statuses = neighbours.await.unwrap();
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "hello was disturbed: {statuses:?}"
    );
    let record = server.record(&request_id).await;
    Seen {
        status,
        body,
        record,
    }
}

async fn get(server: &TestServer, path: &str) -> Seen {
    call(server, Request::get(path).body(Bytes::new()).unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loops_in_wasm_and_in_host_calls_stop_at_the_deadline() {
    let server = TestServer::start(manifest()).await;
    let spin = get(&server, "/spin").await;
    assert_eq!(spin.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(spin.record.outcome, Outcome::Timeout);

    // Blocked in a host call, no Wasm running: the deadline still holds.
    let wait = get(&server, "/host-wait").await;
    assert_eq!(wait.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(wait.record.outcome, Outcome::Timeout);
    assert!(wait.record.duration >= Duration::from_millis(900));
    assert!(wait.record.fuel_consumed < spin.record.fuel_consumed / 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_and_table_bombs_hit_their_limits() {
    let server = TestServer::start(manifest()).await;
    let memory = get(&server, "/memory-bomb").await;
    assert_eq!(memory.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(memory.record.outcome, Outcome::Trap);
    let peak = memory.record.peak_memory_bytes;
    assert!(
        peak <= 16 << 20 && peak > 8 << 20,
        "peak {peak} should approach the 16 MiB limit"
    );

    // The table grows one element per loop iteration until refused, so the
    // fuel it burns shows where its limit stopped it.
    let small = get(&server, "/table-bomb-small").await;
    let large = get(&server, "/table-bomb-large").await;
    for seen in [&small, &large] {
        assert_eq!(seen.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(seen.record.outcome, Outcome::Trap);
    }
    let (s, l) = (small.record.fuel_consumed, large.record.fuel_consumed);
    assert!(l > 5 * s, "10x the table limit burned {l} fuel vs {s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_overflow_and_traps_are_500() {
    let server = TestServer::start(manifest()).await;
    for path in ["/stack-overflow", "/trap"] {
        let seen = get(&server, path).await;
        assert_eq!(seen.status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert_eq!(seen.record.outcome, Outcome::Trap, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_mid_stream_cuts_the_stream() {
    let server = TestServer::start(manifest()).await;
    let seen = get(&server, "/stream-trap").await;
    assert_eq!(seen.status, StatusCode::OK);
    assert!(seen.body.is_err(), "a complete body: {:?}", seen.body);
    assert_eq!(seen.record.outcome, Outcome::Trap);
    assert!(seen.record.response_bytes >= 3 * 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_that_never_reads_its_body_still_answers() {
    let server = TestServer::start(manifest()).await;
    let body = Bytes::from(vec![b'x'; 4 << 20]);
    let seen = call(&server, Request::post("/ignore-body").body(body).unwrap()).await;
    assert_eq!(seen.status, StatusCode::OK);
    assert_eq!(seen.body.as_deref().ok(), Some(&b"ignored"[..]));
    assert_eq!(seen.record.outcome, Outcome::Ok);
    // Never read, never charged.
    assert_eq!(seen.record.request_bytes, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_body_is_cut_at_the_response_limit() {
    let server = TestServer::start(manifest()).await;
    let seen = get(&server, "/endless-body").await;
    assert_eq!(seen.status, StatusCode::OK);
    assert!(seen.body.is_err(), "a complete body");
    assert_eq!(seen.record.outcome, Outcome::ResponseTooLarge);
    assert!(seen.record.response_bytes <= 1 << 20);
    // Stopped at the limit, not at the 2 s deadline.
    assert!(seen.record.duration < Duration::from_millis(1900));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaking_resource_handles_traps_at_the_limit() {
    let server = TestServer::start(manifest()).await;
    let small = get(&server, "/handle-leak").await;
    let large = get(&server, "/handle-leak-large").await;
    for seen in [&small, &large] {
        assert_eq!(seen.status, StatusCode::INTERNAL_SERVER_ERROR);
        // Stopped by the handle limit, long before the deadline.
        assert_eq!(seen.record.outcome, Outcome::Trap);
    }
    // One handle per loop iteration: the fuel shows where it stopped.
    let (s, l) = (small.record.fuel_consumed, large.record.fuel_consumed);
    assert!(l > 5 * s, "10x the handle limit burned {l} fuel vs {s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_few_instances_per_store_fails_the_instantiation() {
    let server = TestServer::start(manifest()).await;
    let seen = get(&server, "/one-instance").await;
    assert_eq!(seen.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(seen.record.outcome, Outcome::Trap);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_statuses_and_headers_are_refused_by_the_host() {
    let server = TestServer::start(manifest()).await;
    let seen = get(&server, "/bad-headers").await;
    assert_eq!(seen.status, StatusCode::OK);
    assert_eq!(seen.record.outcome, Outcome::Ok);
    let body = seen.body.expect("a complete body");
    let report: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    let refused: Vec<&str> = report["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(report["accepted"], serde_json::json!([]), "{report}");
    for attempt in [
        "status 1000",
        "status 99",
        "bad header",
        "x-bad-value",
        "connection",
        "transfer-encoding",
        "keep-alive",
        "upgrade",
        "host",
    ] {
        assert!(
            refused.iter().any(|r| r.contains(attempt)),
            "`{attempt}` not refused: {report}"
        );
    }
}
