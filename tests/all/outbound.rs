//! Outbound HTTP: the per-function allow-list, the operator's network
//! kept out of reach (private and special addresses, names resolving to
//! them), redirects not followed, the per-invocation limits, and
//! in-process composition (`http://NAME.gust.internal`) with its records
//! and depth limit. Backends are hyper servers on 127.0.0.1 ephemeral
//! ports, counting the connections they accept.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use gust_runtime::metering::OUTBOUND_REQUEST_FUEL;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::support::{TestServer, manifest};

/// A loopback HTTP backend that counts the connections it accepts.
///
/// - `/hello`: `200 backend says hi`;
/// - `/redirect?to=URL`: `302` to `URL`;
/// - `/bytes?n=N`: `N` bytes of `x`;
/// - `/echo`: the request body back.
struct Backend {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Backend {
    async fn start() -> Backend {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(answer);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Backend {
            addr,
            connections,
            task,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let query = request.uri().query().unwrap_or("").to_owned();
    let reply = |status: u16, body: Vec<u8>| {
        Response::builder()
            .status(status)
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    Ok(match request.uri().path() {
        "/hello" => reply(200, b"backend says hi".to_vec()),
        "/redirect" => {
            let to = query.strip_prefix("to=").unwrap_or("/");
            let mut response = reply(302, Vec::new());
            response
                .headers_mut()
                .insert("location", to.parse().unwrap());
            response
        }
        "/bytes" => {
            let n: usize = query
                .strip_prefix("n=")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            reply(200, vec![b'x'; n])
        }
        "/echo" => {
            let body = request.into_body().collect().await.unwrap().to_bytes();
            reply(200, body.to_vec())
        }
        _ => reply(404, Vec::new()),
    })
}

/// `proxy` (the outbound-proxy guest, `/proxy`) allowed `hosts`, with
/// `extra` lines in its table, next to `hello`.
fn proxy(hosts: &[&str], extra: &str) -> crate::support::manifest::ManifestText {
    let hosts: Vec<String> = hosts.iter().map(|h| format!("{h:?}")).collect();
    manifest()
        .hello()
        .function("proxy", "{OUTBOUND_PROXY}")
        .set(&format!(
            "allowed_outbound_hosts = [{}]\n{extra}",
            hosts.join(", ")
        ))
        .route("/proxy")
}

async fn hello_still_answers(server: &TestServer) {
    let reply = server.get("/hello").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

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

#[tokio::test]
async fn an_allowed_host_is_reached_and_charged() {
    let backend = Backend::start().await;
    let allowed = format!("http://{}", backend.addr);
    let server = TestServer::start(proxy(&[&allowed], "")).await;

    let reply = server
        .get(&format!("/proxy?url={}", backend.url("/hello")))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "backend says hi");
    assert_eq!(backend.connections(), 1);

    // A request body goes out, the answer comes back.
    let post = Request::post(format!("/proxy?url={}", backend.url("/echo")))
        .body(Bytes::from_static(b"ping"))
        .unwrap();
    let reply = server.send(post).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "ping");

    // Charged per request and per byte, in the caller's host fuel.
    let record = server.record(&reply.request_id()).await;
    assert!(
        record.host_fuel >= OUTBOUND_REQUEST_FUEL,
        "host fuel {} must include the outbound request",
        record.host_fuel
    );
    hello_still_answers(&server).await;
}

#[tokio::test]
async fn hosts_the_allow_list_does_not_name_are_denied_before_connecting() {
    let allowed = Backend::start().await;
    let other = Backend::start().await;
    let entry = format!("http://{}", allowed.addr);
    let server = TestServer::start(proxy(&[&entry], "")).await;

    for url in [
        other.url("/hello"),
        // Same host and port, another scheme.
        format!("https://{}/hello", allowed.addr),
        // A name for the same address is not the address.
        format!("http://localhost:{}/hello", allowed.addr.port()),
    ] {
        let reply = server.get(&format!("/proxy?url={url}")).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_GATEWAY,
            "{url}: {}",
            reply.text()
        );
        assert!(
            reply.text().contains("HttpRequestDenied"),
            "{url}: {}",
            reply.text()
        );
    }
    assert_eq!(other.connections(), 0, "nothing may have connected");
    assert_eq!(allowed.connections(), 0, "nothing may have connected");
    hello_still_answers(&server).await;
}

#[tokio::test]
async fn private_addresses_are_refused_even_through_a_wildcard_unless_named() {
    let backend = Backend::start().await;
    let port = backend.addr.port();
    let named = format!("http://127.0.0.1:{port}");
    let server = TestServer::start(
        proxy(&["http://*:*"], "")
            .function("named", "{OUTBOUND_PROXY}")
            .set(&format!(
                "allowed_outbound_hosts = [\"http://*:*\", \"{named}\"]"
            ))
            .route("/named"),
    )
    .await;

    for url in [
        format!("http://127.0.0.1:{port}/hello"),
        format!("http://[::1]:{port}/hello"),
        format!("http://[::ffff:127.0.0.1]:{port}/hello"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.1/".to_owned(),
        // A name that resolves to loopback: refused after resolving, before
        // connecting.
        format!("http://localhost:{port}/hello"),
    ] {
        let reply = server.get(&format!("/proxy?url={url}")).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_GATEWAY,
            "{url}: {}",
            reply.text()
        );
        assert!(
            reply.text().contains("DestinationIpProhibited"),
            "{url}: {}",
            reply.text()
        );
    }
    assert_eq!(backend.connections(), 0, "nothing may have connected");

    // An entry that names the address lets it through.
    let reply = server
        .get(&format!("/named?url=http://127.0.0.1:{port}/hello"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "backend says hi");
    assert_eq!(backend.connections(), 1);
    // Only that address: another loopback port is still refused.
    let reply = server
        .get(&format!("/named?url=http://127.0.0.1:{}/hello", port ^ 1))
        .await;
    assert!(
        reply.text().contains("DestinationIpProhibited"),
        "{}",
        reply.text()
    );
    hello_still_answers(&server).await;
}

#[tokio::test]
async fn redirects_are_returned_not_followed() {
    let backend = Backend::start().await;
    let elsewhere = Backend::start().await;
    let entry = format!("http://{}", backend.addr);
    let server = TestServer::start(proxy(&[&entry], "")).await;

    let to = elsewhere.url("/hello");
    let reply = server
        .get(&format!(
            "/proxy?url={}",
            backend.url(&format!("/redirect?to={to}"))
        ))
        .await;
    assert_eq!(reply.status, StatusCode::FOUND, "{}", reply.text());
    assert_eq!(reply.headers["location"], to.as_str());
    assert_eq!(
        elsewhere.connections(),
        0,
        "the redirect must not be followed"
    );
}

#[tokio::test]
async fn the_outbound_requests_limit_denies_the_requests_past_it() {
    let backend = Backend::start().await;
    let entry = format!("http://{}", backend.addr);
    let server = TestServer::start(proxy(&[&entry], "outbound_requests = 2")).await;

    let url = backend.url("/hello");
    let reply = server.get(&format!("/proxy?times=2&url={url}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let reply = server.get(&format!("/proxy?times=3&url={url}")).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
    assert!(
        reply.text().starts_with("request #3 failed") && reply.text().contains("HttpRequestDenied"),
        "{}",
        reply.text()
    );
    assert_eq!(backend.connections(), 4, "two per invocation");
    // The record counts what was sent.
    let record = server.record(&reply.request_id()).await;
    assert!(
        record.host_fuel >= 2 * OUTBOUND_REQUEST_FUEL,
        "{}",
        record.host_fuel
    );
    assert_eq!(record.outbound_requests, 2, "the denied third is not sent");
}

#[tokio::test]
async fn a_response_body_past_the_size_limit_fails_its_stream() {
    let backend = Backend::start().await;
    let entry = format!("http://{}", backend.addr);
    let server = TestServer::start(proxy(&[&entry], "outbound_response_size = 1000")).await;

    let reply = server
        .get(&format!("/proxy?url={}", backend.url("/bytes?n=1000")))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.body.len(), 1000);
    let reply = server
        .get(&format!("/proxy?url={}", backend.url("/bytes?n=5000")))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
    assert!(
        reply.text().contains("body failed")
            && reply.text().contains("body size exceeds limit: 1000"),
        "{}",
        reply.text()
    );
    hello_still_answers(&server).await;
}

#[tokio::test]
async fn bad_allow_list_entries_fail_the_load_with_their_field() {
    let dir = tempfile::tempdir().unwrap();
    let spec = crate::support::spec_in(
        dir.path(),
        proxy(&["https://api.example.com", "ftp://files.example.com"], "").to_string(),
    );
    let error = gust_runtime::App::load_with(crate::support::engine(), spec.app, &spec.runtime)
        .err()
        .expect("an invalid entry fails the load")
        .to_string();
    assert!(
        error.contains("functions.proxy.allowed_outbound_hosts[1]") && error.contains("ftp"),
        "{error}"
    );
}

#[tokio::test]
async fn a_function_calls_another_in_process_with_linked_records() {
    let server = TestServer::start(
        proxy(&["http://*.gust.internal"], "")
            .function("echo", "{ECHO}")
            .route("/echo/{*rest}"),
    )
    .await;

    let post = Request::post("/proxy?url=http://echo.gust.internal/echo/x?raw")
        .body(Bytes::from_static(b"through gust"))
        .unwrap();
    let reply = server.send(post).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "through gust");

    let caller = reply.request_id();
    let callee = format!("{caller}.1");
    assert_eq!(reply.headers["x-upstream-request-id"], callee.as_str());
    let outer = server.record(&caller).await;
    let inner = server.record(&callee).await;
    assert_eq!(outer.function.as_str(), "proxy");
    assert_eq!(inner.function.as_str(), "echo");
    assert_eq!(
        inner.route, "/echo/{*rest}",
        "routed by the function's own route"
    );
    assert_eq!(inner.status, 200);
    assert_eq!(inner.request_bytes, "through gust".len() as u64);
    assert!(inner.fuel_consumed > 0);
    assert_eq!(inner.parent_request_id.as_deref(), Some(caller.as_str()));
    assert_eq!(outer.parent_request_id, None);
    assert_eq!(outer.outbound_requests, 1);
    assert_eq!(
        outer.outbound_bytes,
        2 * "through gust".len() as u64,
        "sent and received"
    );
    assert_eq!(inner.outbound_requests, 0);
    assert!(
        outer.host_fuel >= OUTBOUND_REQUEST_FUEL,
        "{}",
        outer.host_fuel
    );

    // A function the app does not have.
    let reply = server.get("/proxy?url=http://nobody.gust.internal/").await;
    assert!(
        reply.text().contains("DestinationNotFound"),
        "{}",
        reply.text()
    );
    // `*` alone does not grant composition.
    let server = TestServer::start(proxy(&["http://*:*"], "").function("echo", "{ECHO}")).await;
    let reply = server.get("/proxy?url=http://echo.gust.internal/").await;
    assert!(
        reply.text().contains("HttpRequestDenied"),
        "{}",
        reply.text()
    );
    hello_still_answers(&server).await;
}

#[tokio::test]
async fn a_function_calling_itself_is_cut_at_the_depth_limit() {
    let server = TestServer::start(proxy(&["http://proxy.gust.internal"], "")).await;

    let reply = server.get("/proxy?self=proxy").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
    assert!(reply.text().contains("LoopDetected"), "{}", reply.text());

    // The client's request and 8 nested calls, each with its own record.
    let root = reply.request_id();
    let mut id = root.clone();
    for depth in 0..=8 {
        let record = server.record(&id).await;
        assert_eq!(record.function.as_str(), "proxy", "depth {depth}");
        id.push_str(".1");
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(server.records_for("proxy").len(), 9, "no call past depth 8");
    hello_still_answers(&server).await;
}

#[tokio::test]
async fn the_p3_client_goes_through_the_same_policy() {
    let backend = Backend::start().await;
    let other = Backend::start().await;
    let entry = format!("http://{}", backend.addr);
    let server = TestServer::start(
        manifest()
            .hello()
            .function("p3fetch", "{OUTBOUND_P3}")
            .set(&format!(
                "allowed_outbound_hosts = [\"{entry}\", \"http://hello.gust.internal\"]"
            ))
            .route("/p3fetch"),
    )
    .await;

    let reply = server
        .get(&format!("/p3fetch?url={}", backend.url("/hello")))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "backend says hi");

    let reply = server
        .get(&format!("/p3fetch?url={}", other.url("/hello")))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
    assert!(
        reply.text().contains("HttpRequestDenied"),
        "{}",
        reply.text()
    );
    assert_eq!(other.connections(), 0);

    // In process, from a p3 caller to a p2 callee.
    let direct = server.get("/hello").await;
    let reply = server
        .get("/p3fetch?url=http://hello.gust.internal/hello")
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.body, direct.body);
    server.record(&format!("{}.1", reply.request_id())).await;
}

#[tokio::test]
async fn https_runs_tls_over_the_checked_connection() {
    // A plain-HTTP backend behind an `https` entry: gust connects to the
    // named address and starts TLS, which the backend cannot speak.
    let backend = Backend::start().await;
    let entry = format!("https://{}", backend.addr);
    let server = TestServer::start(proxy(&[&entry], "")).await;
    let reply = server
        .get(&format!("/proxy?url=https://{}/hello", backend.addr))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
    assert!(reply.text().contains("Tls"), "{}", reply.text());
    assert_eq!(
        backend.connections(),
        1,
        "one connection, to the checked address"
    );
}

#[tokio::test]
async fn a_connection_that_does_not_open_in_time_fails() {
    // A listener that never accepts, its backlog filled by the test: the
    // kernel drops further SYNs, so the guest's connection cannot open.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        let connect = tokio::net::TcpStream::connect(addr);
        match tokio::time::timeout(std::time::Duration::from_millis(300), connect).await {
            Ok(Ok(stream)) => fillers.push(stream),
            // The backlog is full.
            _ => break,
        }
    }
    let entry = format!("http://{addr}");
    let server = TestServer::start(proxy(&[&entry], "outbound_connect_timeout = \"300ms\"")).await;
    let reply = server.get(&format!("/proxy?url=http://{addr}/")).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
    assert!(
        reply.text().contains("ConnectionTimeout"),
        "{}",
        reply.text()
    );
    hello_still_answers(&server).await;
    drop(listener);
}
