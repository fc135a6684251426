//! Outbound HTTP is not granted to guests: refused before the network.

use http::StatusCode;

use crate::support::{TestServer, manifest};

#[tokio::test]
async fn outbound_requests_are_denied_without_touching_the_network() {
    // A listener the guest will try to reach.
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    target.set_nonblocking(true).unwrap();
    let addr = target.local_addr().unwrap();
    let server = TestServer::start(manifest().function("fetch", "{FETCH}").route("/fetch")).await;
    let reply = server
        .get(&format!("/fetch?url=http://{addr}/secret"))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
    assert!(
        reply.text().contains("HttpRequestDenied"),
        "{}",
        reply.text()
    );
    assert_eq!(
        target.accept().map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::WouldBlock),
        "nothing may have connected"
    );
}
