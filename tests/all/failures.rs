//! Misbehaving guests get the right status and disturb nobody else.

use std::time::{Duration, Instant};

use gust_runtime::Outcome;
use http::StatusCode;

use crate::support::client::raw_request;
use crate::support::manifest::ManifestText;
use crate::support::{self, TestServer};

/// `hello` and the failing guests, each at `/<id>`; `spin` runs until its
/// `spin_timeout` deadline.
fn manifest(spin_timeout: &str) -> ManifestText {
    support::manifest()
        .hello()
        .function("trap", "{TRAP}")
        .route("/trap")
        .function("spin", "{SPIN}")
        .set(&format!(
            "timeout = \"{spin_timeout}\"\nfuel = 1_000_000_000_000"
        ))
        .route("/spin")
        .function("work", "{WORK}")
        .set("fuel = 200000")
        .route("/work")
        .function("error-code", "{ERROR_CODE}")
        .route("/error-code")
}

/// `path` answers 500 with `text`, `rounds` times, recorded with `outcome`
/// and the fuel the guest used, and `/hello` is served after each.
async fn fails_with_500_then_hello_is_served(
    path: &str,
    text: &str,
    outcome: Outcome,
    rounds: usize,
) {
    let server = TestServer::start(manifest("1s")).await;
    for _ in 0..rounds {
        let reply = server.get(path).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(reply.text(), text);
        let record = server.record(&reply.request_id()).await;
        assert_eq!(record.outcome, outcome);
        assert_eq!(record.status, 500);
        assert!(record.fuel_consumed > 0);

        let reply = server.get("/hello").await;
        assert_eq!(reply.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn trap_is_500_and_the_next_request_succeeds() {
    fails_with_500_then_hello_is_served("/trap", "function trapped\n", Outcome::Trap, 3).await;
}

/// The guest returned normally, having chosen an error: it is billed for
/// its work like any other answer.
#[tokio::test]
async fn guest_error_code_is_500_and_billed_as_a_normal_return() {
    fails_with_500_then_hello_is_served("/error-code", "function failed\n", Outcome::Ok, 2).await;
}

#[tokio::test]
async fn infinite_loop_is_504_at_the_deadline_while_others_are_served() {
    let server = std::sync::Arc::new(TestServer::start(manifest("1s")).await);
    let started = Instant::now();
    let spinning = {
        let server = server.clone();
        tokio::spawn(async move { (server.get("/spin").await, Instant::now()) })
    };
    // While the guest spins, other requests are answered.
    let mut last_hello = Instant::now();
    for _ in 0..10 {
        let reply = server.get("/hello").await;
        assert_eq!(reply.status, StatusCode::OK);
        last_hello = Instant::now();
    }
    let (reply, spin_done) = spinning.await.unwrap();
    assert!(
        last_hello < spin_done,
        "hello requests should finish while /spin is still running"
    );
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(reply.text(), "function timed out\n");
    // The deadline is 1 s; allow a generous margin for a loaded machine.
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    let record = server.record(&reply.request_id()).await;
    assert_eq!(record.outcome, Outcome::Timeout);
    assert_eq!(record.status, 504);
}

#[tokio::test]
async fn out_of_fuel_is_500_and_consumes_the_whole_budget() {
    let server = TestServer::start(manifest("1s")).await;
    let reply = server.get("/work?n=10000000").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.text(), "function ran out of fuel\n");
    let record = server.record(&reply.request_id()).await;
    assert_eq!(record.outcome, Outcome::OutOfFuel);
    assert_eq!(record.fuel_budget, 200_000);
    assert_eq!(record.fuel_consumed, 200_000);
    // A small amount of work still fits the budget.
    let reply = server.get("/work?n=10").await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn a_client_that_leaves_cancels_the_guest() {
    let server = TestServer::start(manifest("20s")).await;
    let started = Instant::now();
    let stream = raw_request(
        server.addr,
        b"GET /spin HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(stream);
    let record = server.record_of("spin").await;
    assert_eq!(record.outcome, Outcome::ClientGone);
    assert!(record.fuel_consumed > 0);
    // Cancelled, not run to its 20 s deadline.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.get("/hello").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_full_instance_pool_is_503_with_retry_after() {
    use gust_runtime::{EngineConfig, GustEngine};

    // Room for one live instance only.
    let engine = GustEngine::new(&EngineConfig::default().max_instances(1)).unwrap();
    assert!(
        engine.is_pooling(),
        "the pooling allocator must be available for this test"
    );
    let server = std::sync::Arc::new(TestServer::start_on(&engine, manifest("1s"), None).await);
    let spinning = {
        let server = server.clone();
        tokio::spawn(async move { server.get("/spin").await })
    };
    // Wait until the spinning guest holds the only slot.
    let mut overloaded = None;
    for _ in 0..100 {
        let reply = server.get("/hello").await;
        if reply.status == StatusCode::SERVICE_UNAVAILABLE {
            overloaded = Some(reply);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reply = overloaded.expect("a second instance must not fit the pool");
    assert_eq!(reply.headers["retry-after"], "1");
    assert_eq!(reply.text(), "server overloaded, retry later\n");
    assert_eq!(
        server.record(&reply.request_id()).await.outcome,
        Outcome::Overloaded
    );
    assert_eq!(spinning.await.unwrap().status, StatusCode::GATEWAY_TIMEOUT);
    // The slot is free again.
    assert_eq!(server.get("/hello").await.status, StatusCode::OK);
}
