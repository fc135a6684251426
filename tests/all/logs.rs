//! Kept logs: what guests print to stdout and stderr and log through
//! `wasi:logging` lands in the node's `LogBook`, one line at a time, with
//! its app, function, stream, level and request id; `since` and `limit`
//! select; each function keeps its last N lines; an app sees only its own.
//! Over a node's admin API too (`GET /v1/apps/{app}/logs`), with tokens.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use gust_runtime::cache::CacheLocation;
use gust_runtime::deploy::Deployer;
use gust_runtime::deploy::tokens::{self, Scope};
use gust_runtime::logs::{LogBook, LogLine, LogStream};
use gust_runtime::manifest::{AdminSettings, FunctionId};
use gust_runtime::node::{Node, NodeOptions};
use gust_runtime::{App, Apps, InvocationRecord, RuntimeSpec, Server};
use http::{Method, Request, StatusCode};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::support::{REQUEST_TIMEOUT, cache_dir, engine, guests, manifest, send, spec_in};

/// An app `name` keeping its lines in `book`, serving the `log-lines`
/// guest as functions `a` (`/a`) and `b` (`/b`).
struct Logged {
    addr: SocketAddr,
    records: Arc<Mutex<Vec<InvocationRecord>>>,
    _stop: oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

impl Logged {
    async fn start(name: &str, book: &LogBook) -> Logged {
        let dir = tempfile::tempdir().unwrap();
        let text: String = manifest()
            .head(&format!("name = \"{name}\"\n"))
            .function("a", "{LOG_LINES}")
            .route("/a")
            .function("b", "{LOG_LINES}")
            .route("/b")
            .into();
        let mut spec = spec_in(dir.path(), text);
        spec.runtime.capabilities.logs = Some(book.clone());
        let records = Arc::new(Mutex::new(Vec::new()));
        let sink = records.clone();
        let app = App::load_with(engine(), spec.app, &spec.runtime)
            .unwrap()
            .on_invocation(move |r| sink.lock().unwrap().push(r.clone()))
            .unwrap();
        let server = Server::new(app, spec.runtime.server);
        let listener = server.bind().await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(server.serve(listener, async {
            let _ = stopped.await;
        }));
        Logged {
            addr,
            records,
            _stop: stop,
            _dir: dir,
        }
    }

    /// GETs `path` (which must answer `ok`) and waits for its invocation
    /// to end (its lines are kept by then): its request id.
    async fn get(&self, path: &str) -> String {
        let request = Request::get(path).body(Bytes::new()).unwrap();
        let reply = tokio::time::timeout(REQUEST_TIMEOUT, send(self.addr, request))
            .await
            .expect("request timed out")
            .expect("request failed");
        assert_eq!(reply.text(), "ok\n", "{path}");
        let id = reply.request_id();
        for _ in 0..1000 {
            if self
                .records
                .lock()
                .unwrap()
                .iter()
                .any(|r| r.request_id == id)
            {
                return id;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no usage record for {path}");
    }
}

fn id(name: &str) -> FunctionId {
    FunctionId::try_from(name).unwrap()
}

/// `(function, stream, level, message)` of each line.
fn seen(lines: &[LogLine]) -> Vec<(&str, LogStream, Option<&str>, &str)> {
    lines
        .iter()
        .map(|l| {
            (
                l.function.as_str(),
                l.stream,
                l.level.as_deref(),
                l.message.as_str(),
            )
        })
        .collect()
}

#[tokio::test]
async fn lines_are_kept_per_function_with_stream_level_and_request_id() {
    let book = LogBook::new(5);
    let shop = Logged::start("shop", &book).await;
    let blog = Logged::start("blog", &book).await;
    let first = shop
        .get("/a?out=hello&err=oops&warn=careful&info=fine&out=again")
        .await;

    let lines = book.query(&id("shop"), Some(&id("a")), None, 100);
    // Stdout's lines, then stderr's with the `wasi:logging` ones in place.
    assert_eq!(
        seen(&lines),
        [
            ("a", LogStream::Stdout, None, "hello"),
            ("a", LogStream::Stdout, None, "again"),
            ("a", LogStream::Stderr, None, "oops"),
            ("a", LogStream::Log, Some("WARN"), "careful"),
            ("a", LogStream::Log, Some("INFO"), "ctx: fine"),
        ]
    );
    assert!(lines.iter().all(|l| l.app == "shop"
        && l.request_id.as_deref() == Some(first.as_str())
        && !l.truncated));
    assert!(lines.windows(2).all(|w| w[0].seq < w[1].seq));

    // `since`: only what was kept after then, from every function.
    let since = lines[4].time + Duration::from_nanos(1);
    while SystemTime::now() <= since {
        tokio::task::yield_now().await;
    }
    let second = shop.get("/b?err=later").await;
    let after = book.query(&id("shop"), None, Some(since), 100);
    assert_eq!(seen(&after), [("b", LogStream::Stderr, None, "later")]);
    assert_eq!(after[0].request_id.as_deref(), Some(second.as_str()));
    // `limit` keeps the newest.
    assert_eq!(
        seen(&book.query(&id("shop"), None, None, 2)),
        [
            ("a", LogStream::Log, Some("INFO"), "ctx: fine"),
            ("b", LogStream::Stderr, None, "later"),
        ]
    );

    // Each function keeps its last 5 lines; `b`'s are not pushed out by
    // `a`'s.
    for i in 0..8 {
        shop.get(&format!("/a?out=line-{i}")).await;
    }
    let a: Vec<String> = book
        .query(&id("shop"), Some(&id("a")), None, 100)
        .into_iter()
        .map(|l| l.message)
        .collect();
    assert_eq!(a, ["line-3", "line-4", "line-5", "line-6", "line-7"]);
    assert_eq!(book.query(&id("shop"), Some(&id("b")), None, 100).len(), 1);

    // Another app's lines, in the same book, are its own.
    blog.get("/a?out=blog-only").await;
    let blog_lines = book.query(&id("blog"), None, None, 100);
    assert_eq!(
        seen(&blog_lines),
        [("a", LogStream::Stdout, None, "blog-only")]
    );
    assert!(
        book.query(&id("shop"), None, None, 100)
            .iter()
            .all(|l| l.app == "shop" && l.message != "blog-only")
    );

    // A deleted app's lines go; the others stay.
    book.forget_app(&id("shop"));
    assert!(book.query(&id("shop"), None, None, 100).is_empty());
    assert_eq!(book.query(&id("blog"), None, None, 100).len(), 1);
}

#[tokio::test]
async fn a_long_line_is_cut_and_marked() {
    let book = LogBook::new(10);
    let app = Logged::start("long", &book).await;
    let long = "y".repeat(LogBook::MAX_LINE_BYTES + 10);
    app.get(&format!("/a?err={long}")).await;
    let lines = book.query(&id("long"), None, None, 10);
    assert_eq!(lines.len(), 1);
    assert!(lines[0].truncated);
    assert_eq!(
        lines[0].message,
        format!("{}{}", &long[..LogBook::MAX_LINE_BYTES], LogBook::TRUNCATED)
    );
}

/// A node on ephemeral loopback ports keeping `book`, with its state in
/// `dir`: the node, an operator token and a token for the app `blog`.
async fn node(dir: &std::path::Path, book: &LogBook) -> (Node, String, String) {
    let mut runtime = RuntimeSpec::default();
    runtime.server.listen = "127.0.0.1:0".parse().unwrap();
    runtime.cache = CacheLocation::Dir(cache_dir().to_path_buf());
    runtime.capabilities.data_dir = Some(dir.join("data"));
    runtime.capabilities.logs = Some(book.clone());
    runtime.admin = AdminSettings::in_dir(dir.join("state"));
    runtime.admin.listen = Some("127.0.0.1:0".parse().unwrap());
    let (operator, _) = tokens::create(&runtime.admin.tokens, Scope::Operator).unwrap();
    let (blog, _) = tokens::create(&runtime.admin.tokens, Scope::App(id("blog"))).unwrap();
    let deployer = Deployer::new(engine().clone(), runtime, Apps::new()).unwrap();
    let options = NodeOptions {
        logs: Some(book.clone()),
        ..NodeOptions::default()
    };
    (
        Node::start(deployer, options).await.unwrap(),
        operator,
        blog,
    )
}

/// A tar bundle: the `log-lines` guest as function `x` on `/x`, for `host`.
fn bundle(host: &str) -> Bytes {
    let manifest = format!(
        "hosts = [\"{host}\"]\n[functions.x]\ncomponent = \"x.wasm\"\n[[routes]]\npath = \"/x\"\nfunction = \"x\"\n"
    );
    Bytes::from(crate::deploy::bundle(
        &manifest,
        &[("x.wasm", guests::LOG_LINES_PATH)],
    ))
}

/// An admin request with `token` (if any): status and JSON body.
async fn admin(
    node: &Node,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Bytes,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let reply = tokio::time::timeout(
        REQUEST_TIMEOUT,
        send(node.admin_addr(), request.body(body).unwrap()),
    )
    .await
    .expect("admin request timed out")
    .expect("admin request failed");
    let json = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    (reply.status, json)
}

/// The app's lines over the admin API (operator token), waiting (bounded)
/// until there are `at_least`.
async fn logs_of(node: &Node, token: &str, path: &str, at_least: usize) -> Vec<Value> {
    for _ in 0..1000 {
        let (status, json) = admin(node, Some(token), Method::GET, path, Bytes::new()).await;
        assert_eq!(status, StatusCode::OK, "{path}: {json}");
        let lines = json.as_array().cloned().unwrap_or_default();
        if lines.len() >= at_least {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("fewer than {at_least} lines at {path}");
}

/// `GET path` on the node's public port for `host`: its request id.
async fn get_as(node: &Node, host: &str, path: &str) -> String {
    let request = Request::get(path)
        .header(http::header::HOST, host)
        .body(Bytes::new())
        .unwrap();
    let reply = tokio::time::timeout(REQUEST_TIMEOUT, send(node.addr(), request))
        .await
        .expect("request timed out")
        .expect("request failed");
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (StatusCode::OK, "ok\n")
    );
    reply.request_id()
}

fn messages(lines: &[Value]) -> Vec<&str> {
    lines
        .iter()
        .map(|l| l["message"].as_str().unwrap_or(""))
        .collect()
}

#[tokio::test]
async fn logs_over_the_admin_api_with_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let book = LogBook::new(3);
    let (node, operator, blog_token) = node(dir.path(), &book).await;
    for (app, host) in [("shop", "shop.example.com"), ("blog", "blog.example.com")] {
        let path = format!("/v1/apps/{app}");
        let (status, json) = admin(&node, Some(&operator), Method::PUT, &path, bundle(host)).await;
        assert!(status.is_success(), "{status} {json}");
    }

    let first = get_as(&node, "shop.example.com", "/x?out=hello&warn=careful").await;
    let lines = logs_of(&node, &operator, "/v1/apps/shop/logs?function=x", 2).await;
    assert_eq!(messages(&lines), ["hello", "careful"]);
    for (line, (stream, level)) in lines
        .iter()
        .zip([("stdout", Value::Null), ("log", "WARN".into())])
    {
        assert_eq!(line["app"], "shop", "{line}");
        assert_eq!(line["function"], "x", "{line}");
        assert_eq!(line["stream"], stream, "{line}");
        assert_eq!(line["level"], level, "{line}");
        assert_eq!(line["request_id"], first.as_str(), "{line}");
        let time = line["time"].as_str().unwrap_or("");
        let parsed = gust_runtime::ledger::parse_since(time);
        assert!(time.ends_with('Z') && parsed.is_ok(), "{line}");
    }

    // `since` a line's time: that line and what follows.
    get_as(&node, "shop.example.com", "/x?err=second").await;
    let all = logs_of(&node, &operator, "/v1/apps/shop/logs", 3).await;
    let since = all[2]["time"].as_str().unwrap().to_owned();
    let after = logs_of(
        &node,
        &operator,
        &format!("/v1/apps/shop/logs?since={since}"),
        1,
    )
    .await;
    assert_eq!(messages(&after), ["second"]);
    let newest = logs_of(&node, &operator, "/v1/apps/shop/logs?limit=1", 1).await;
    assert_eq!(messages(&newest), ["second"]);

    // The ring keeps the function's last 3.
    for i in 0..4 {
        get_as(&node, "shop.example.com", &format!("/x?out=n{i}")).await;
    }
    let mut kept = Vec::new();
    for _ in 0..1000 {
        kept = logs_of(&node, &operator, "/v1/apps/shop/logs", 3).await;
        if messages(&kept).last() == Some(&"n3") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(messages(&kept), ["n1", "n2", "n3"]);

    // Another app's token sees its own app's lines, not the shop's.
    get_as(&node, "blog.example.com", "/x?out=blog-only").await;
    let blog = logs_of(&node, &blog_token, "/v1/apps/blog/logs", 1).await;
    assert_eq!(messages(&blog), ["blog-only"]);
    let (status, _) = admin(
        &node,
        Some(&blog_token),
        Method::GET,
        "/v1/apps/shop/logs",
        Bytes::new(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = admin(&node, None, Method::GET, "/v1/apps/shop/logs", Bytes::new()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, json) = admin(
        &node,
        Some(&operator),
        Method::GET,
        "/v1/apps/shop/logs?since=never",
        Bytes::new(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");

    // Deleted, an app's lines go.
    let (status, _) = admin(
        &node,
        Some(&operator),
        Method::DELETE,
        "/v1/apps/shop",
        Bytes::new(),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, json) = admin(
        &node,
        Some(&operator),
        Method::GET,
        "/v1/apps/shop/logs",
        Bytes::new(),
    )
    .await;
    assert!(
        status == StatusCode::NOT_FOUND || json == serde_json::json!([]),
        "{status} {json}"
    );
    assert_eq!(book.query(&id("blog"), None, None, 10).len(), 1);
    node.shutdown().await.unwrap();
}
