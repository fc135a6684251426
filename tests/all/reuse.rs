//! Instance reuse (`reuse` > 1): one instance serves several requests in
//! turn; a trap or a leaked host resource retires it; the default stays a
//! fresh instance per request.

use http::StatusCode;

use crate::support::{Reply, TestServer};

const MANIFEST: &str = r#"
[functions.fresh]
component = "{REUSE_COUNTER}"
[functions.reused]
component = "{REUSE_COUNTER}"
reuse = 3
[functions.leak]
component = "{LEAK_REQUEST}"
reuse = 8

[[routes]]
path = "/fresh/{*rest}"
function = "fresh"
[[routes]]
path = "/reused/{*rest}"
function = "reused"
[[routes]]
path = "/leak"
function = "leak"
"#;

/// Sends one request and waits for its usage record: an instance goes back
/// to the idle list before its record is emitted, so the next request finds
/// it.
async fn served(server: &TestServer, path: &str) -> (Reply, gust_runtime::InvocationRecord) {
    let reply = server.get(path).await;
    let record = server.record(&reply.request_id()).await;
    (reply, record)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_gets_a_fresh_instance_by_default() {
    let server = TestServer::start(MANIFEST).await;
    for _ in 0..4 {
        let (reply, _) = served(&server, "/fresh/x").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.text(), "served 1\n");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_serves_up_to_reuse_requests_and_each_is_metered() {
    let server = TestServer::start(MANIFEST).await;
    let mut seen = Vec::new();
    for _ in 0..7 {
        let (reply, record) = served(&server, "/reused/x").await;
        assert_eq!(reply.status, StatusCode::OK);
        seen.push(reply.text());
        // Every request is billed for its own work, not the instance's.
        assert_eq!(record.outcome.as_str(), "ok");
        assert!(record.fuel_consumed > 0);
        assert!(record.fuel_consumed < record.fuel_budget / 1000);
        assert!(record.peak_memory_bytes > 0);
    }
    assert_eq!(
        seen,
        [
            "served 1\n",
            "served 2\n",
            "served 3\n",
            "served 1\n",
            "served 2\n",
            "served 3\n",
            "served 1\n"
        ]
    );
    // The same request costs the same fuel on a fresh and a reused instance
    // but for the first call's one-time set-up in the guest.
    let fuel: Vec<u64> = server
        .records_for("reused")
        .iter()
        .map(|r| r.fuel_consumed)
        .collect();
    assert_eq!(fuel[1], fuel[2], "{fuel:?}");
    assert_eq!(fuel[0], fuel[3], "{fuel:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_retires_the_instance() {
    let server = TestServer::start(MANIFEST).await;
    assert_eq!(served(&server, "/reused/x").await.0.text(), "served 1\n");
    let (trapped, record) = served(&server, "/reused/trap").await;
    assert_eq!(trapped.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(record.outcome.as_str(), "trap");
    // The instance that trapped (it had served 2) is gone.
    assert_eq!(served(&server, "/reused/x").await.0.text(), "served 1\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaked_host_resource_retires_the_instance() {
    let server = TestServer::start(MANIFEST).await;
    assert_eq!(served(&server, "/reused/x").await.0.text(), "served 1\n");
    let (leaky, record) = served(&server, "/reused/leak").await;
    assert_eq!(leaky.status, StatusCode::OK);
    assert_eq!(leaky.text(), "served 2\n");
    assert_eq!(record.outcome.as_str(), "ok");
    assert_eq!(served(&server, "/reused/x").await.0.text(), "served 1\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_the_idle_instances_safely() {
    let server = TestServer::start(MANIFEST).await;
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let addr = server.addr;
        tasks.push(tokio::spawn(async move {
            crate::support::send(
                addr,
                http::Request::get("/reused/x")
                    .body(bytes::Bytes::new())
                    .unwrap(),
            )
            .await
            .expect("request")
        }));
    }
    for task in tasks {
        let reply = task.await.expect("task");
        assert_eq!(reply.status, StatusCode::OK);
        let n: u32 = reply
            .text()
            .trim()
            .strip_prefix("served ")
            .and_then(|n| n.parse().ok())
            .expect("a count");
        assert!((1..=3).contains(&n), "served {n} on an instance allowed 3");
    }
}

/// A guest that leaks its request, the body it consumed, or that body's
/// stream, keeps the request's body alive in its instance. gust ends the
/// first two when the instance goes idle and retires an instance that
/// still holds the third; otherwise a body larger than hyper buffers,
/// never read nor dropped, would hold the client's keep-alive connection:
/// hyper reads no next request before the body is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_instance_does_not_hold_a_leaked_request_body() {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::time::timeout;

    use crate::support::client::{connect, read_head};

    let server = TestServer::start(MANIFEST).await;
    let mut stream = connect(server.addr).await;
    let body = vec![b'x'; 256 * 1024];
    let paths = [
        "/leak",
        "/leak?consume",
        "/leak?stream",
        "/leak",
        "/leak?consume",
        "/leak?stream",
    ];
    for (i, path) in paths.into_iter().enumerate() {
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(&body);
        timeout(Duration::from_secs(10), stream.write_all(&request))
            .await
            .unwrap_or_else(|_| {
                panic!("request {i} ({path}): the server stopped reading the connection")
            })
            .unwrap();
        let head = read_head(&mut stream, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("connection closed before response {i} ({path})"));
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let mut text = [0u8; 7];
        stream.read_exact(&mut text).await.unwrap();
        assert_eq!(&text, b"leaked\n");
    }
}
