//! WASIp3 components (`wasi:http/handler@0.3`) are served like p2 ones:
//! routing and route headers, streaming bodies both ways, trailers, fuel,
//! deadlines, usage records, and the hostile-guest guarantees.

use std::time::Duration;

use bytes::Bytes;
use gust_runtime::Outcome;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::support::client::{connect, http1, raw_request, read_to_close, with_host};
use crate::support::manifest::ManifestText;
use crate::support::{self, REQUEST_TIMEOUT, TestServer};

/// The p3 guests next to `hello` (p2).
fn manifest() -> ManifestText {
    support::manifest()
        .server("max_body_size = 8388608")
        .hello()
        .function("p3-hello", "{P3_HELLO}")
        .route("/p3/hello")
        .function("p3-echo", "{P3_ECHO}")
        .route("/p3/echo/{*rest}")
        .route("/p3/users/{id}")
        .function("p3-trap", "{P3_TRAP}")
        .route("/p3/trap")
        .function("p3-spin", "{P3_SPIN}")
        .set("timeout = \"1s\"\nfuel = 1_000_000_000_000")
        .route("/p3/spin")
        .function("p3-burn", "{P3_SPIN}")
        .set("fuel = 5_000_000")
        .route("/p3/burn")
        .function("p3-sleep", "{P3_SLEEP}")
        .set("timeout = \"1s\"")
        .route("/p3/sleep")
        .function("p3-post-return", "{P3_POST_RETURN}")
        .route("/p3/post-return")
        .function("spin-hello", "{SPIN_HELLO}")
        .route("/spin/{*rest}")
        .function("p3-reused", "{P3_HELLO}")
        .set("reuse = 8")
        .route("/p3/reused")
}

async fn assert_hello(server: &TestServer) {
    let reply = server.get("/hello").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

#[tokio::test]
async fn a_p3_component_is_detected_at_load_and_served_with_a_record() {
    let server = TestServer::start(manifest()).await;
    let reply = server.get("/p3/hello").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "Hello from a WASIp3 gust function!\n");
    assert_eq!(reply.headers["content-type"], "text/plain");
    let record = server.record(&reply.request_id()).await;
    assert_eq!(record.function.as_str(), "p3-hello");
    assert_eq!(record.route, "/p3/hello");
    assert_eq!(record.outcome, Outcome::Ok);
    assert_eq!(record.status, 200);
    assert!(record.fuel_consumed > 0);
    assert!(record.peak_memory_bytes > 0);
    assert_eq!(record.response_bytes, reply.body.len() as u64);
    // A p2 function in the same app is unaffected.
    assert_hello(&server).await;
}

#[tokio::test]
async fn route_headers_reach_a_p3_guest() {
    let server = TestServer::start(manifest()).await;
    let request = Request::get("/p3/users/42?params")
        .header("x-gust-param-id", "forged")
        .body(Bytes::new())
        .unwrap();
    let reply = server.send(request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.text(),
        "x-gust-param-id=42\nx-gust-route=/p3/users/{id}\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_p3_echo_streams_five_mib_both_ways_and_bills_the_bytes() {
    let server = TestServer::start(manifest()).await;
    let body: Vec<u8> = (0..5 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let request = Request::post("/p3/echo/big")
        .header("content-type", "application/octet-stream")
        .body(Bytes::from(body.clone()))
        .unwrap();
    let reply = server.send(request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["content-type"], "application/octet-stream");
    assert_eq!(reply.headers["x-echo-route"], "/p3/echo/{*rest}");
    assert!(reply.body == body, "the echo differs from the body sent");
    let record = server.record(&reply.request_id()).await;
    assert_eq!(record.outcome, Outcome::Ok);
    assert_eq!(record.request_bytes, body.len() as u64);
    assert_eq!(record.response_bytes, body.len() as u64);
    // The bytes both ways at 8 a fuel, plus host calls and body frames.
    assert!(record.host_fuel >= 2 * body.len() as u64 / 8, "{record:?}");
    assert!(record.fuel_consumed > record.host_fuel);
}

#[tokio::test]
async fn a_p3_guest_sends_trailers() {
    let server = TestServer::start(manifest()).await;
    let (mut sender, _connection) = http1(server.addr).await;
    // hyper sends trailers only to a client that says it takes them.
    let request = with_host(
        Request::post("/p3/echo/t?trailers")
            .header("te", "trailers")
            .body(Full::new(Bytes::from_static(b"with trailers")))
            .unwrap(),
    );
    let response = tokio::time::timeout(REQUEST_TIMEOUT, sender.send_request(request))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let collected = tokio::time::timeout(REQUEST_TIMEOUT, response.into_body().collect())
        .await
        .unwrap()
        .unwrap();
    let trailers = collected.trailers().cloned().expect("trailers");
    assert_eq!(collected.to_bytes(), "with trailers");
    assert_eq!(trailers["x-trailer"], "done");
    // Trailers end the body: the response was sent whole.
    let record = server.record(&request_id).await;
    assert_eq!(record.outcome, Outcome::Ok);
}

#[tokio::test]
async fn a_trapping_p3_guest_is_500_recorded_and_disturbs_nobody() {
    let server = TestServer::start(manifest()).await;
    for _ in 0..3 {
        let reply = server.get("/p3/trap").await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        let record = server.record(&reply.request_id()).await;
        assert_eq!(record.outcome, Outcome::Trap);
        assert_eq!(record.status, 500);
        assert!(record.fuel_consumed > 0);
        assert_hello(&server).await;
        let reply = server.get("/p3/hello").await;
        assert_eq!(reply.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn a_p3_error_code_is_500_and_billed_as_a_normal_return() {
    let server = TestServer::start(manifest()).await;
    let reply = server.get("/p3/trap?error-code").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.text(), "function failed\n");
    let record = server.record(&reply.request_id()).await;
    assert_eq!(record.outcome, Outcome::Ok);
    assert_eq!(record.status, 500);
    assert!(record.fuel_consumed > 0);
}

#[tokio::test]
async fn a_p3_guest_that_traps_mid_body_cuts_the_response() {
    let server = TestServer::start(manifest()).await;
    let mut stream = raw_request(
        server.addr,
        b"GET /p3/trap?after-head HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    // The server closes the connection when the body is cut.
    let seen = read_to_close(&mut stream, REQUEST_TIMEOUT)
        .await
        .expect("the connection is closed");
    let text = String::from_utf8_lossy(&seen);
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    assert!(text.contains("partial"), "{text}");
    // A chunked body that was cut has no last chunk.
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "the body looks complete: {text}"
    );
    let record = server.record_of("p3-trap").await;
    assert_eq!(record.outcome, Outcome::Trap);
    assert_hello(&server).await;
}

#[tokio::test]
async fn a_spinning_p3_guest_times_out_with_504() {
    let server = TestServer::start(manifest()).await;
    let reply = server.get("/p3/spin").await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    let record = server.record(&reply.request_id()).await;
    assert_eq!(record.outcome, Outcome::Timeout);
    assert_eq!(record.status, 504);
    assert_hello(&server).await;
}

#[tokio::test]
async fn a_p3_guest_runs_out_of_fuel() {
    let server = TestServer::start(manifest()).await;
    let reply = server.get("/p3/burn").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    let record = server.record(&reply.request_id()).await;
    assert_eq!(record.outcome, Outcome::OutOfFuel);
    assert_eq!(record.fuel_consumed, record.fuel_budget);
    assert_hello(&server).await;
}

#[tokio::test]
async fn an_idle_p3_guest_finishes_and_one_idle_past_its_deadline_is_504() {
    let server = TestServer::start(manifest()).await;
    let reply = server.get("/p3/sleep?ms=50").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "slept 50\n");
    let record = server.record(&reply.request_id()).await;
    assert_eq!(record.outcome, Outcome::Ok);
    assert!(record.duration >= Duration::from_millis(50));

    // Parked on a timer, not spinning: no epoch tick stops it, the deadline does.
    let reply = server.get("/p3/sleep?ms=5000").await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    let record = server.record(&reply.request_id()).await;
    assert_eq!(record.outcome, Outcome::Timeout);
}

#[tokio::test]
async fn work_after_the_response_is_part_of_the_invocation() {
    let server = TestServer::start(manifest()).await;
    let reply = server.get("/p3/post-return").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "done\n");
    let record = server.record(&reply.request_id()).await;
    assert_eq!(record.outcome, Outcome::Ok);
    // The record ends when the guest's task does: after its 50 ms of
    // post-return work, not when the response was complete.
    assert!(
        record.duration >= Duration::from_millis(50),
        "{:?}",
        record.duration
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_mid_response_from_a_p3_guest_is_client_gone() {
    let server = TestServer::start(manifest()).await;
    const LEN: usize = 8 * 1024 * 1024;
    let (mut reader, mut writer) = connect(server.addr).await.into_split();
    let writing = tokio::spawn(async move {
        writer
            .write_all(
                format!(
                    "POST /p3/echo/big HTTP/1.1\r\nHost: localhost\r\nContent-Length: {LEN}\r\n\r\n"
                )
                .as_bytes(),
            )
            .await?;
        writer.write_all(&vec![b'z'; LEN]).await?;
        Ok::<_, std::io::Error>(writer)
    });
    let mut some = vec![0u8; 64 * 1024];
    tokio::time::timeout(REQUEST_TIMEOUT, reader.read_exact(&mut some))
        .await
        .expect("the echo streams")
        .unwrap();
    assert!(some.starts_with(b"HTTP/1.1 200 "));
    // Leave with megabytes of the echo unread (and, as the echo streams,
    // of the request unsent: it only reads as fast as it can write).
    writing.abort();
    let _ = writing.await;
    drop(reader);
    let record = server.record_of("p3-echo").await;
    assert_eq!(record.outcome, Outcome::ClientGone);
    assert!(record.response_bytes < LEN as u64);
    assert_hello(&server).await;
}

#[tokio::test]
async fn a_p3_function_may_reuse_its_instances() {
    let server = TestServer::start(manifest()).await;
    for _ in 0..20 {
        let reply = server.get("/p3/reused").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.text(), "Hello from a WASIp3 gust function!\n");
    }
    let records = server.records_for("p3-reused");
    assert_eq!(records.len(), 20);
    assert!(records.iter().all(|r| r.outcome == Outcome::Ok));
}

#[tokio::test]
async fn a_spin_sdk_7_component_runs_unmodified() {
    let server = TestServer::start(manifest()).await;
    let reply = server.get("/spin/a/b").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.text(),
        "Hello from a Spin SDK 7 component at /spin/a/b!\n"
    );
    let record = server.record(&reply.request_id()).await;
    assert_eq!(record.function.as_str(), "spin-hello");
    assert_eq!(record.outcome, Outcome::Ok);
    assert!(record.fuel_consumed > 0);
}
