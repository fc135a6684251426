//! Fuel metering: exact, repeatable, proportional to work.

use http::StatusCode;

use crate::support::TestServer;

const MANIFEST: &str = r#"
[functions.work]
component = "{WORK}"
[functions.hello]
component = "{HELLO}"

[[routes]]
path = "/work"
function = "work"
[[routes]]
path = "/hello"
function = "hello"
"#;

async fn fuel(server: &TestServer, path: &str) -> u64 {
    let reply = server.get(path).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let record = server.record(&reply.request_id()).await;
    assert_eq!(record.outcome, gust_runtime::Outcome::Ok);
    record.fuel_consumed
}

#[tokio::test]
async fn same_request_same_fuel() {
    let server = TestServer::start(MANIFEST).await;
    for path in ["/hello", "/work?n=5000"] {
        let first = fuel(&server, path).await;
        assert!(first > 0);
        for _ in 0..5 {
            assert_eq!(fuel(&server, path).await, first, "{path}");
        }
    }
}

#[tokio::test]
async fn fuel_grows_linearly_with_work() {
    let server = TestServer::start(MANIFEST).await;
    // Same digit count, so only the loop differs between requests.
    let f1 = fuel(&server, "/work?n=1000").await;
    let f2 = fuel(&server, "/work?n=2000").await;
    let f4 = fuel(&server, "/work?n=4000").await;
    assert!(f1 < f2 && f2 < f4, "{f1} {f2} {f4}");
    let step = f2 - f1;
    // Every 1000 rounds cost the same fuel.
    assert_eq!(f4 - f2, 2 * step, "{f1} {f2} {f4}");
}
