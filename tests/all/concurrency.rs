//! Many requests at once.

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt as _, Full};

use crate::support::{TestServer, client, manifest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_requests_all_succeed() {
    let server = std::sync::Arc::new(
        TestServer::start(
            manifest()
                .hello()
                .function("echo", "{ECHO}")
                .route("/users/{id}"),
        )
        .await,
    );
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let server = server.clone();
            tokio::spawn(async move {
                if i % 2 == 0 {
                    let reply = server.get("/hello").await;
                    assert_eq!(reply.status, StatusCode::OK);
                    assert_eq!(reply.text(), "Hello from gust!\n");
                } else {
                    let reply = server.get(&format!("/users/{i}")).await;
                    assert_eq!(reply.status, StatusCode::OK);
                    // Each instance saw its own request: nothing is shared.
                    assert_eq!(reply.json()["params"]["id"], i.to_string());
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn http2_requests_are_served() {
    let server =
        TestServer::start(manifest().function("echo", "{ECHO}").route("/echo/{*rest}")).await;
    // HTTP/2 with prior knowledge (h2c), several streams on one connection.
    let (sender, _connection) = client::http2(server.addr).await;
    let streams: Vec<_> = (0..10)
        .map(|i| {
            let mut sender = sender.clone();
            tokio::spawn(async move {
                let request = http::Request::post(format!("http://localhost/echo/h2/{i}"))
                    .body(Full::new(Bytes::from(format!("body {i}"))))
                    .unwrap();
                let response = sender.send_request(request).await.unwrap();
                assert_eq!(response.version(), http::Version::HTTP_2);
                assert_eq!(response.status(), StatusCode::OK);
                let body = response.into_body().collect().await.unwrap().to_bytes();
                let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(json["params"]["rest"], format!("h2/{i}"));
                assert_eq!(json["body"], format!("body {i}"));
            })
        })
        .collect();
    for stream in streams {
        stream.await.unwrap();
    }
}
