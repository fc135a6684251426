//! `Server::handle`: a request handled in-process, as a request from the
//! network is (routing, limits, the invocation, statuses, request ids),
//! without a socket.

use bytes::Bytes;
use gust_runtime::{App, Server};
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Empty, Full};

use crate::support::{engine, manifest, spec_in};

#[tokio::test]
async fn a_request_handled_in_process_is_routed_invoked_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let config = spec_in(
        dir.path(),
        manifest()
            .hello()
            .function("echo", "{ECHO}")
            .route("/echo/{*rest}"),
    );
    let records = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = records.clone();
    let app = App::load(engine(), config.app, &config.runtime.cache)
        .unwrap()
        .on_invocation(move |r| sink.lock().unwrap().push(r.clone()))
        .unwrap();
    let server = Server::new(app, config.runtime.server);

    let response = server
        .handle(
            Request::get("http://localhost/hello")
                .body(Empty::<Bytes>::new())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"Hello from gust!\n");

    // A body, streamed to the guest and back.
    let response = server
        .handle(
            Request::post("http://localhost/echo/x?raw")
                .body(Full::new(Bytes::from_static(b"in process")))
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"in process");

    // Statuses gust answers itself.
    let response = server
        .handle(
            Request::get("http://localhost/nowhere")
                .body(Empty::<Bytes>::new())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // Records, as for requests from the network.
    for _ in 0..100 {
        if records.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let records = records.lock().unwrap().clone();
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0].request_id, id);
    assert_eq!(records[0].function.as_str(), "hello");
    assert_eq!(records[1].request_bytes, 10);
    assert_eq!(records[1].response_bytes, 10);
}
