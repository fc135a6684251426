//! gust-sdk paths the example applications do not take, through the
//! `sdk-tour` guest: chunked and streamed response bodies, key-value
//! `update` and batches, `config::all`, `log`, and `http::send_streaming`
//! with a streamed body to a function of the same app (in-process).

use bytes::Bytes;
use http::{Request, StatusCode};

use crate::support::{TestServer, manifest};

async fn tour() -> TestServer {
    TestServer::start(
        manifest()
            .function("tour", "{SDK_TOUR}")
            .set(
                r#"key_value_stores = ["default"]
config = { a = "1", b = "2" }
allowed_outbound_hosts = ["http://tour.gust.internal"]"#,
            )
            .route("/tour/{*rest}")
            .hello(),
    )
    .await
}

#[tokio::test]
async fn bodies_from_chunks_and_readers_stream() {
    let server = tour().await;
    let reply = server.get("/tour/chunks?3").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "chunk-0\nchunk-1\nchunk-2\n");

    // 3 MiB echoed through a reader, byte for byte.
    let body: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 251) as u8).collect();
    let request = Request::post(format!("http://{}/tour/echo", server.addr))
        .body(Bytes::from(body.clone()))
        .unwrap();
    let reply = server.send(request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.body == body,
        "echo differs ({} bytes back)",
        reply.body.len()
    );
    assert_eq!(server.get("/hello").await.status, StatusCode::OK);
}

#[tokio::test]
async fn key_value_update_and_batches() {
    let server = tour().await;
    let first = server.get("/tour/kv").await;
    assert_eq!(
        (first.status, first.text().as_str()),
        (StatusCode::OK, "trail=x got=a=1,b=2,c=- keys=b,trail")
    );
    let second = server.get("/tour/kv").await;
    assert_eq!(second.text(), "trail=xx got=a=1,b=2,c=- keys=b,trail");
}

#[tokio::test]
async fn config_all_and_log() {
    let server = tour().await;
    let reply = server.get("/tour/config").await;
    assert_eq!(reply.text(), "a=1\nb=2\n");
    let reply = server.get("/tour/log").await;
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (StatusCode::OK, "logged")
    );
}

#[tokio::test]
async fn send_streaming_a_streamed_body_in_process() {
    let server = tour().await;
    let reply = server.get("/tour/send?16").await;
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (StatusCode::OK, "1048576"),
        "the callee counted 16 chunks of 64 KiB"
    );
    let caller = reply.request_id();
    let callee = server.record(&format!("{caller}.1")).await;
    assert_eq!(callee.request_bytes, 1 << 20);
    assert_eq!(callee.parent_request_id.as_deref(), Some(caller.as_str()));
    let record = server.record(&caller).await;
    assert_eq!(record.outbound_requests, 1);
}
