//! gust embedded in someone else's server: `GustService` called as a tower
//! service, and the `proxy` example (its proxy module, compiled here as
//! it is there) between a client and a real upstream, all on loopback.

#[path = "../examples/proxy/proxy.rs"]
mod proxy;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use gust_runtime::cache::CacheLocation;
use gust_runtime::server::GustService;
use gust_runtime::{App, EngineConfig, GustEngine, Manifest, Server};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;

use proxy::{Proxy, Rules};

/// Every step a test waits for is bounded by this.
const BOUND: Duration = Duration::from_secs(30);

/// One engine and one compile cache for the test binary.
fn engine() -> &'static GustEngine {
    static ENGINE: OnceLock<GustEngine> = OnceLock::new();
    ENGINE.get_or_init(|| GustEngine::new(&EngineConfig::default()).expect("engine"))
}

fn cache() -> CacheLocation {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"));
    CacheLocation::Dir(dir.path().to_path_buf())
}

/// A gust server for the `hello` and `echo` examples, loaded from a
/// `gust.toml` as the example loads one.
fn gust() -> GustService {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("gust.toml");
    let text = format!(
        "[functions.hello]\ncomponent = \"{}\"\n\
         [functions.echo]\ncomponent = \"{}\"\n\
         [[routes]]\npath = \"/hello\"\nfunction = \"hello\"\n\
         [[routes]]\npath = \"/echo/{{*rest}}\"\nfunction = \"echo\"\n",
        gust_runtime::examples::HELLO_PATH,
        gust_runtime::examples::ECHO_PATH,
    );
    std::fs::write(&manifest, text).unwrap();
    let config = Manifest::load(&manifest).unwrap_or_else(|e| panic!("{e}"));
    let app = App::load(engine(), config.app, &cache()).unwrap();
    Server::new(app, config.runtime.server).into_service()
}

/// A request body sent a chunk at a time: each `send` of the returned
/// sender is one frame; dropping the sender ends the body.
struct Chunks(mpsc::Receiver<Bytes>);

fn chunks() -> (mpsc::Sender<Bytes>, Chunks) {
    let (sender, receiver) = mpsc::channel(1);
    (sender, Chunks(receiver))
}

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|data| Ok(hyper::body::Frame::data(data))))
    }
}

/// An upstream on an ephemeral port that answers 201 with what it saw in
/// `x-seen` (method, URI, headers as JSON) and streams the request body
/// back as the response body, frame by frame as it arrives. Counts its
/// requests.
async fn upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let hits = counted.clone();
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                hits.fetch_add(1, Ordering::SeqCst);
                let mut headers = serde_json::Map::new();
                for (name, value) in request.headers() {
                    let values = headers
                        .entry(name.as_str())
                        .or_insert_with(|| serde_json::Value::Array(Vec::new()));
                    if let serde_json::Value::Array(values) = values {
                        values.push(String::from_utf8_lossy(value.as_bytes()).into());
                    }
                }
                let seen = serde_json::json!({
                    "method": request.method().as_str(),
                    "uri": request.uri().to_string(),
                    "headers": headers,
                });
                let response = Response::builder()
                    .status(StatusCode::CREATED)
                    .header("x-seen", seen.to_string())
                    .header("x-upstream", "yes")
                    .body(request.into_body())
                    .unwrap();
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    (addr, hits)
}

/// The proxy of the example, serving on an ephemeral port until dropped.
struct Running {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn start_proxy(gust: GustService, upstream: &str) -> Running {
    let rules = Rules {
        hosts: vec!["functions.test".into()],
        path_prefixes: vec!["/hello".into()],
    };
    let proxy = Arc::new(Proxy::new(gust, rules, upstream).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(proxy.serve(listener, async {
        let _ = stopped.await;
    }));
    Running { addr, _stop: stop }
}

/// `request` sent on a new HTTP/1.1 connection to `addr`; the response
/// head, its body still to read.
async fn send<B>(addr: SocketAddr, request: Request<B>) -> Response<Incoming>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = timeout(BOUND, TcpStream::connect(addr))
        .await
        .expect("connect timed out")
        .expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    timeout(BOUND, sender.send_request(request))
        .await
        .expect("no response head in time")
        .expect("a response")
}

/// `request` sent on a new HTTP/2 connection (prior knowledge) to `addr`.
async fn send_h2(addr: SocketAddr, request: Request<Empty<Bytes>>) -> Response<Incoming> {
    let stream = timeout(BOUND, TcpStream::connect(addr))
        .await
        .expect("connect timed out")
        .expect("connect");
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .expect("handshake");
    tokio::spawn(connection);
    timeout(BOUND, sender.send_request(request))
        .await
        .expect("no response head in time")
        .expect("a response")
}

async fn text(response: Response<Incoming>) -> String {
    let body = timeout(BOUND, response.into_body().collect())
        .await
        .expect("body timed out")
        .expect("body")
        .to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

fn seen_by_upstream(response: &Response<Incoming>) -> serde_json::Value {
    let header = response.headers().get("x-seen").expect("reached upstream");
    serde_json::from_slice(header.as_bytes()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_hosts_and_paths_are_answered_by_gust_and_the_rest_reaches_the_upstream() {
    let (upstream_addr, hits) = upstream().await;
    let proxy = start_proxy(gust(), &format!("http://{upstream_addr}")).await;

    // A path prefix of gust's, whatever the host.
    let request = Request::get("/hello")
        .header("host", "www.test")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = send(proxy.addr, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("x-request-id"));
    assert!(!response.headers().contains_key("x-upstream"));
    assert_eq!(text(response).await, "Hello from gust!\n");

    // A host of gust's (with a port, in another case), whatever the path;
    // the request reaches the function as the client sent it.
    let request = Request::post("/echo/a/b?raw")
        .header("host", "Functions.Test:8080")
        .body(Full::new(Bytes::from_static(b"to gust")))
        .unwrap();
    let response = send(proxy.addr, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text(response).await, "to gust");
    let request = Request::get("/echo/a?q=1")
        .header("host", "functions.test")
        .header("x-custom", "kept")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let echoed: serde_json::Value =
        serde_json::from_str(&text(send(proxy.addr, request).await).await).unwrap();
    assert_eq!(echoed["path"], "/echo/a");
    assert_eq!(echoed["query"], "q=1");
    assert_eq!(echoed["headers"]["x-custom"][0], "kept");
    // gust's own answers for what no function serves.
    let request = Request::get("/nowhere")
        .header("host", "functions.test")
        .body(Empty::<Bytes>::new())
        .unwrap();
    assert_eq!(
        send(proxy.addr, request).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "gust's requests reached the upstream"
    );

    // Everything else: to the upstream with method, path, query, headers
    // and body intact, hop-by-hop headers dropped; its response back as
    // it sent it.
    let body: Vec<u8> = (0..256 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let request = Request::put("/hellothere/items?x=1&y=%20")
        .header("host", "www.test")
        .header("x-custom", "a")
        .header("x-custom", "b")
        .header("content-type", "application/x-test")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "for the proxy only")
        .body(Full::new(Bytes::from(body.clone())))
        .unwrap();
    let response = send(proxy.addr, request).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["x-upstream"], "yes");
    let seen = seen_by_upstream(&response);
    assert_eq!(seen["method"], "PUT");
    assert_eq!(seen["uri"], "/hellothere/items?x=1&y=%20");
    let headers = &seen["headers"];
    assert_eq!(headers["host"][0], "www.test");
    assert_eq!(headers["x-custom"], serde_json::json!(["a", "b"]));
    assert_eq!(headers["content-type"][0], "application/x-test");
    assert_eq!(headers["content-length"][0], body.len().to_string());
    assert_eq!(headers["x-forwarded-for"][0], "127.0.0.1");
    assert_eq!(headers["x-forwarded-host"][0], "www.test");
    assert!(headers.get("x-hop").is_none(), "{headers}");
    let returned = timeout(BOUND, response.into_body().collect())
        .await
        .expect("body timed out")
        .expect("body")
        .to_bytes();
    assert!(returned == body, "the body came back changed");
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // HTTP/2 clients send the host in the URI, not a `Host` header: gust
    // is chosen by it, and the upstream (HTTP/1.1) gets it as `Host`.
    let request = Request::get("http://functions.test/echo/h2")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = send_h2(proxy.addr, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let echoed: serde_json::Value = serde_json::from_str(&text(response).await).unwrap();
    assert_eq!(echoed["path"], "/echo/h2");
    let request = Request::get("http://www.test/over/h2")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = send_h2(proxy.addr, request).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let seen = seen_by_upstream(&response);
    assert_eq!(seen["uri"], "/over/h2");
    assert_eq!(seen["headers"]["host"][0], "www.test");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_stream_through_the_proxy_both_ways() {
    let (upstream_addr, _) = upstream().await;
    let proxy = start_proxy(gust(), &format!("http://{upstream_addr}")).await;

    // The upstream echoes each frame as it arrives: each chunk comes back
    // before the next is sent, which only happens if neither direction
    // waits for a whole body.
    let (chunks, body) = chunks();
    let request = Request::post("/stream")
        .header("host", "www.test")
        .body(body)
        .unwrap();
    let sending = tokio::spawn(async move {
        let response = send(proxy.addr, request).await;
        (response, proxy)
    });
    chunks.send(Bytes::from_static(b"first")).await.unwrap();
    let (response, _proxy) = timeout(BOUND, sending)
        .await
        .expect("head timed out")
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let mut returned = response.into_body();
    for chunk in [&b"first"[..], b"second", b"third"] {
        if chunk != b"first" {
            chunks.send(Bytes::copy_from_slice(chunk)).await.unwrap();
        }
        let mut got = Vec::new();
        while got.len() < chunk.len() {
            let frame = timeout(BOUND, returned.frame())
                .await
                .expect("the chunk did not come back")
                .expect("the body ended early")
                .expect("a frame");
            if let Some(data) = frame.data_ref() {
                got.extend_from_slice(data);
            }
        }
        assert_eq!(got, chunk);
    }
    drop(chunks);
    let rest = timeout(BOUND, returned.collect())
        .await
        .expect("end timed out")
        .unwrap();
    assert!(rest.to_bytes().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_cannot_be_reached_is_answered_with_502_and_gust_still_answers() {
    // A port nothing listens on any more.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone = closed.local_addr().unwrap();
    drop(closed);
    let proxy = start_proxy(gust(), &format!("http://{gone}")).await;

    let request = Request::get("/elsewhere")
        .header("host", "www.test")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = send(proxy.addr, request).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(text(response).await, "Bad Gateway\n");

    let request = Request::get("/hello")
        .header("host", "www.test")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = send(proxy.addr, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text(response).await, "Hello from gust!\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_answers_as_a_tower_service_with_any_body() {
    use tower_service::Service as _;

    let mut service = gust();
    std::future::poll_fn(|cx| {
        tower_service::Service::<Request<Chunks>>::poll_ready(&mut service, cx)
    })
    .await
    .unwrap();
    // A body of the embedder's own, streamed.
    let (chunks, body) = chunks();
    let request = Request::post("http://localhost/echo/x?raw")
        .body(body)
        .unwrap();
    // Spawned: the guest reads the body while it is being sent.
    let call = tokio::spawn(service.clone().call(request));
    chunks.send(Bytes::from_static(b"in ")).await.unwrap();
    chunks.send(Bytes::from_static(b"pieces")).await.unwrap();
    drop(chunks);
    let Ok(response) = timeout(BOUND, call)
        .await
        .expect("response timed out")
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = timeout(BOUND, response.into_body().collect())
        .await
        .expect("body timed out")
        .unwrap()
        .to_bytes();
    assert_eq!(&body[..], b"in pieces");

    // No authority: 400, as from the network.
    let request = Request::get("/hello").body(Empty::<Bytes>::new()).unwrap();
    let Ok(response) = service.call(request).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_1_0_upstream_does_not_end_the_clients_keep_alive() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    // An upstream that answers every request in HTTP/1.0 and closes.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream
                    .write_all(b"HTTP/1.0 200 OK\r\ncontent-length: 3\r\n\r\nold")
                    .await;
            });
        }
    });
    let proxy = start_proxy(gust(), &format!("http://{upstream_addr}")).await;

    // Two requests on one HTTP/1.1 connection to the proxy.
    let stream = timeout(BOUND, TcpStream::connect(proxy.addr))
        .await
        .expect("connect timed out")
        .expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    for _ in 0..2 {
        let request = Request::get("/old")
            .header("host", "www.test")
            .body(Empty::<Bytes>::new())
            .unwrap();
        timeout(BOUND, sender.ready())
            .await
            .expect("connection not ready in time")
            .expect("the proxy kept the connection open");
        let response = timeout(BOUND, sender.send_request(request))
            .await
            .expect("no response head in time")
            .expect("a response");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.version(), http::Version::HTTP_11);
        assert_eq!(text(response).await, "old");
    }
}
