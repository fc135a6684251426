//! Requests and responses round-trip through a guest intact.

use bytes::Bytes;
use http::{Request, StatusCode};

use crate::support::client::{http1, with_host};
use crate::support::manifest::ManifestText;
use crate::support::{self, TestServer};

/// `echo` at `/echo/{*rest}`, taking request bodies up to `max_body_size`.
fn manifest(max_body_size: usize) -> ManifestText {
    support::manifest()
        .server(&format!("max_body_size = {max_body_size}"))
        .function("echo", "{ECHO}")
        .route("/echo/{*rest}")
}

/// Room for the 5 MiB body of `five_mib_body_streams_both_ways`.
const MAX_BODY_SIZE: usize = 8 << 20;

#[tokio::test]
async fn headers_query_and_body_round_trip() {
    let server = TestServer::start(manifest(MAX_BODY_SIZE)).await;
    let request = Request::post("/echo/a/b?x=1&y=two")
        .header("x-custom", "hello")
        .header("x-multi", "one")
        .header("x-multi", "two")
        .header("content-type", "text/plain")
        .body(Bytes::from_static(b"the body"))
        .unwrap();
    let reply = server.send(request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["content-type"], "application/json");
    let json = reply.json();
    assert_eq!(json["method"], "POST");
    assert_eq!(json["path"], "/echo/a/b");
    assert_eq!(json["query"], "x=1&y=two");
    assert_eq!(json["headers"]["x-custom"], serde_json::json!(["hello"]));
    assert_eq!(
        json["headers"]["x-multi"],
        serde_json::json!(["one", "two"])
    );
    assert_eq!(json["body"], "the body");
    assert_eq!(json["body_len"], 8);
    assert_eq!(json["params"]["rest"], "a/b");
}

#[tokio::test]
async fn five_mib_body_streams_both_ways() {
    let server = TestServer::start(manifest(MAX_BODY_SIZE)).await;
    // Not a repeating pattern of the write size, so misordered chunks show.
    let body: Vec<u8> = (0..5 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let request = Request::put("/echo/raw?raw")
        .header("content-type", "application/x-test")
        .body(Bytes::from(body.clone()))
        .unwrap();
    let reply = server.send(request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["content-type"], "application/x-test");
    assert_eq!(reply.body.len(), body.len());
    assert!(reply.body == body, "echoed body differs");
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let server = TestServer::start(manifest(1024)).await;
    // Declared too large up front.
    let request = Request::post("/echo/x")
        .body(Bytes::from(vec![b'a'; 2048]))
        .unwrap();
    let reply = server.send(request).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.text(), "request body too large\n");
    // At the limit is fine.
    let request = Request::post("/echo/x")
        .body(Bytes::from(vec![b'a'; 1024]))
        .unwrap();
    let reply = server.send(request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["body_len"], 1024);
}

#[tokio::test]
async fn chunked_body_over_the_limit_is_413() {
    let server = TestServer::start(manifest(1024)).await;
    let (mut sender, _connection) = http1(server.addr).await;
    // No content-length: the limit must be enforced while streaming.
    let body = Chunks((0..4).map(|_| Bytes::from(vec![b'z'; 600])).collect());
    let request = with_host(Request::post("/echo/x").body(body).unwrap());
    let response = tokio::time::timeout(
        crate::support::REQUEST_TIMEOUT,
        sender.send_request(request),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

/// A body sent as separate chunks with no declared length.
struct Chunks(std::collections::VecDeque<Bytes>);

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(hyper::body::Frame::data(b))))
    }
}
