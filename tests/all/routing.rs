//! Routes: exact, parameter, wildcard, method filter, 404, 405.

use bytes::Bytes;
use http::{Method, Request, StatusCode};

use crate::support::TestServer;

const MANIFEST: &str = r#"
[functions.hello]
component = "{HELLO}"
[functions.echo]
component = "{ECHO}"

[[routes]]
path = "/hello"
function = "hello"
methods = ["GET"]

[[routes]]
path = "/users/me"
function = "hello"

[[routes]]
path = "/users/{id}"
function = "echo"
methods = ["GET", "PUT"]

[[routes]]
path = "/static/{*rest}"
function = "echo"
"#;

#[tokio::test]
async fn exact_route() {
    let server = TestServer::start(MANIFEST).await;
    let reply = server.get("/hello").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "Hello from gust!\n");
    assert_eq!(reply.headers["content-type"], "text/plain; charset=utf-8");
}

#[tokio::test]
async fn parameter_route_passes_params_to_the_guest() {
    let server = TestServer::start(MANIFEST).await;
    let reply = server.get("/users/42?x=1").await;
    assert_eq!(reply.status, StatusCode::OK);
    let json = reply.json();
    assert_eq!(json["route"], "/users/{id}");
    assert_eq!(json["params"]["id"], "42");
    assert_eq!(json["path"], "/users/42");
    assert_eq!(json["query"], "x=1");
}

#[tokio::test]
async fn exact_beats_parameter() {
    let server = TestServer::start(MANIFEST).await;
    let reply = server.get("/users/me").await;
    assert_eq!(reply.text(), "Hello from gust!\n");
}

#[tokio::test]
async fn wildcard_route_captures_the_rest() {
    let server = TestServer::start(MANIFEST).await;
    let json = server.get("/static/css/site.css").await.json();
    assert_eq!(json["route"], "/static/{*rest}");
    assert_eq!(json["params"]["rest"], "css/site.css");
    let json = server.get("/static").await.json();
    assert_eq!(json["params"]["rest"], "");
}

#[tokio::test]
async fn unknown_path_is_404() {
    let server = TestServer::start(MANIFEST).await;
    for path in ["/nope", "/hello/", "/users", "/users/1/2"] {
        let reply = server.get(path).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(reply.text(), "not found\n");
    }
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let server = TestServer::start(MANIFEST).await;
    let post = |path: &str| Request::post(path).body(Bytes::from_static(b"x")).unwrap();
    let reply = server.send(post("/hello")).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers["allow"], "GET, HEAD");
    let reply = server.send(post("/users/7")).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers["allow"], "GET, PUT, HEAD");
    // An accepted method on the same route goes through.
    let put = Request::builder()
        .method(Method::PUT)
        .uri("/users/7")
        .body(Bytes::new())
        .unwrap();
    assert_eq!(server.send(put).await.json()["method"], "PUT");
}

/// Guests read the route headers through gust-sdk (`RequestExt`): its
/// names must be the ones the runtime sets.
#[test]
fn the_sdk_reads_the_route_headers_the_runtime_sets() {
    use gust_runtime::server::headers as runtime;
    use gust_sdk::headers as sdk;
    assert_eq!(sdk::ROUTE, runtime::ROUTE);
    assert_eq!(sdk::PARAM_PREFIX, runtime::PARAM_PREFIX);
}

#[tokio::test]
async fn clients_cannot_forge_route_headers() {
    let server = TestServer::start(MANIFEST).await;
    let request = Request::get("/users/5")
        .header("x-gust-param-id", "forged")
        .header("x-gust-param-admin", "true")
        .header("x-gust-route", "/admin")
        .body(Bytes::new())
        .unwrap();
    let json = server.send(request).await.json();
    assert_eq!(json["params"], serde_json::json!({ "id": "5" }));
    assert_eq!(json["route"], "/users/{id}");
}
