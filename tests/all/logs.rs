//! Kept logs: what guests print to stdout and stderr and log through
//! `wasi:logging` lands in the node's `LogBook`, one line at a time, with
//! its app, function, stream, level and request id; `since` and `limit`
//! select; each function keeps its last N lines; an app sees only its own.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use gust_runtime::logs::{LogBook, LogLine, LogStream};
use gust_runtime::manifest::FunctionId;
use gust_runtime::{App, InvocationRecord, Server};
use http::Request;
use tokio::sync::oneshot;

use crate::support::{REQUEST_TIMEOUT, engine, manifest, send, spec_in};

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
