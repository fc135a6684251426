//! Request heads that are too large (431) or cannot reach a guest (400)
//! are refused, and the server keeps serving.

use std::time::Duration;

use crate::support::TestServer;
use crate::support::client::{raw_exchange, status_line};

const MANIFEST: &str = r#"
[server]
max_header_size = 16384
[functions.hello]
component = "{HELLO}"
[[routes]]
path = "/{*any}"
function = "hello"
"#;

/// Sends raw bytes and returns the status line of the answer (what came
/// within 10 s).
async fn raw(server: &TestServer, head: &[u8]) -> String {
    let reply = raw_exchange(server.addr, head, Duration::from_secs(10)).await;
    status_line(&reply.unwrap_or_else(|partial| partial))
}

#[tokio::test]
async fn oversized_and_too_many_headers_get_431() {
    let server = TestServer::start(MANIFEST).await;
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(32 * 1024)
    );
    assert_eq!(
        raw(&server, big.as_bytes()).await,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );

    let mut many = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..150 {
        many += &format!("X-H{i}: v\r\n");
    }
    many += "\r\n";
    assert_eq!(
        raw(&server, many.as_bytes()).await,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );

    let long_url = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "u".repeat(1 << 20));
    assert_eq!(
        raw(&server, long_url.as_bytes()).await,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );

    // Heads within the limits are served.
    let fine = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Ok: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(4096)
    );
    assert_eq!(raw(&server, fine.as_bytes()).await, "HTTP/1.1 200 OK");
}

#[tokio::test]
async fn a_request_without_host_is_400() {
    let server = TestServer::start(MANIFEST).await;
    // HTTP/1.0 allows leaving out Host; wasi:http needs an authority.
    assert_eq!(
        raw(&server, b"GET /x HTTP/1.0\r\n\r\n").await,
        "HTTP/1.0 400 Bad Request"
    );
    assert_eq!(
        raw(&server, b"GET /x HTTP/1.0\r\nHost: x\r\n\r\n").await,
        "HTTP/1.0 200 OK"
    );
}
