//! Components not built with gust-sdk run unmodified.

use bytes::Bytes;
use http::{Request, StatusCode};

use crate::support::{TestServer, manifest};

#[tokio::test]
async fn plain_wasi_http_component_is_served() {
    let server = TestServer::start(manifest().function("raw", "{RAW}").route("/raw/{*rest}")).await;
    let reply = server.get("/raw/some/where?q=1").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.text(),
        "raw wasi:http component saw GET /raw/some/where?q=1\n"
    );
    let request = Request::post("/raw/x")
        .body(Bytes::from_static(b"ignored"))
        .unwrap();
    assert_eq!(
        server.send(request).await.text(),
        "raw wasi:http component saw POST /raw/x\n"
    );
}
