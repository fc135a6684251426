//! The app registry under the server: a new version of an app swapped in
//! while serving takes the requests that arrive after it, and requests
//! already running finish on the version they started on.

use std::time::Duration;

use gust_runtime::App;
use http::StatusCode;

use crate::support::{TestServer, engine, spec_in};

const V1: &str = r#"
[functions.hello]
component = "{HELLO}"
[functions.work]
component = "{WORK}"
[[routes]]
path = "/x"
function = "hello"
[[routes]]
path = "/work"
function = "work"
"#;

const V2: &str = r#"
[functions.echo]
component = "{ECHO}"
[[routes]]
path = "/x"
function = "echo"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swapped_app_serves_new_requests_and_finishes_old_ones() {
    let server = TestServer::start(V1).await;
    assert_eq!(server.get("/x").await.text(), "Hello from gust!\n");

    // A request that takes a while, started on v1.
    let addr = server.addr;
    let slow = tokio::spawn(async move {
        crate::support::send(
            addr,
            http::Request::get("/work?n=100000000")
                .body(bytes::Bytes::new())
                .unwrap(),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;

    let dir = tempfile::tempdir().unwrap();
    let v2 = spec_in(dir.path(), V2);
    let v2 = App::load(engine(), v2.app, &v2.runtime.cache).unwrap();
    let swapped_at = std::time::SystemTime::now();
    let old = server
        .apps
        .insert(v2)
        .expect("no host conflict")
        .expect("v1 was there");
    assert_eq!(old.id().as_str(), "default");
    drop(old);

    // New requests get v2: `/x` is now the echo function, `/work` is gone.
    let echoed = server.get("/x").await;
    assert_eq!(echoed.status, StatusCode::OK);
    assert_eq!(echoed.json()["path"], "/x", "{}", echoed.text());
    assert_eq!(server.get("/work").await.status, StatusCode::NOT_FOUND);

    // The request started on v1 finished there.
    let slow = slow.await.unwrap().expect("the slow request");
    assert_eq!(slow.status, StatusCode::OK);
    assert!(
        slow.text().starts_with("100000000 rounds"),
        "{}",
        slow.text()
    );
    let record = server.record_of("work").await;
    assert!(
        record.start < swapped_at && record.start + record.duration > swapped_at,
        "the slow request was not running across the swap: {record:?}"
    );
    assert_eq!(server.apps.ids().len(), 1);
}

#[tokio::test]
async fn a_server_without_an_app_answers_404() {
    let server = TestServer::start(V1).await;
    let id = server.apps.ids().pop().expect("one app");
    assert!(server.apps.remove(&id).is_some());
    assert_eq!(server.get("/x").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_sink_added_while_serving_gets_the_records_that_follow() {
    let server = TestServer::start(V1).await;
    assert_eq!(server.get("/x").await.status, StatusCode::OK);
    let id = server.apps.ids().pop().expect("one app");
    let app = server.apps.get(&id).expect("the app");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    // The app is shared (the server holds it): adding a sink still works.
    app.on_invocation(move |r| sink.lock().unwrap().push(r.request_id.clone()))
        .expect("adding a sink to a shared app");
    let reply = server.get("/x").await;
    let id = reply.request_id();
    // Records are handed out once the guest and its body are done.
    for _ in 0..500 {
        if !seen.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(*seen.lock().unwrap(), vec![id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_does_not_reset_a_quota() {
    // A hello uses ~17k fuel: the first request runs alone (its budget is
    // over the quota), the window is then used up.
    let text = "[functions.hello]\ncomponent = \"{HELLO}\"\nquota = { fuel = 10_000, window = \"1h\" }\n\
                [[routes]]\npath = \"/x\"\nfunction = \"hello\"\n";
    let server = TestServer::start(text).await;
    assert_eq!(server.get("/x").await.status, StatusCode::OK);
    assert_eq!(server.get("/x").await.status, StatusCode::TOO_MANY_REQUESTS);

    let dir = tempfile::tempdir().unwrap();
    let load = || {
        let spec = spec_in(dir.path(), text);
        App::load(engine(), spec.app, &spec.runtime.cache).unwrap()
    };
    server.apps.insert(load()).unwrap();
    assert_eq!(server.get("/x").await.status, StatusCode::TOO_MANY_REQUESTS);
    // A changed quota starts afresh.
    let spec = spec_in(dir.path(), text.replace("10_000", "20_000"));
    let changed = App::load(engine(), spec.app, &spec.runtime.cache).unwrap();
    server.apps.insert(changed).unwrap();
    assert_eq!(server.get("/x").await.status, StatusCode::OK);
}
