//! Graceful shutdown finishes in-flight requests.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::support::TestServer;

#[tokio::test]
async fn in_flight_request_finishes_after_shutdown_starts() {
    let server = TestServer::start(
        r#"
[functions.work]
component = "{WORK}"
[[routes]]
path = "/work"
function = "work"
"#,
    )
    .await;
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let get = |path: &str| {
        Request::get(path)
            .header("host", "localhost")
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
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
