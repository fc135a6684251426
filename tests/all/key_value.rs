//! `wasi:keyvalue` (both drafts) on the embedded SQLite and on a real
//! redis-server: every operation through the `kv-draft` and `kv-draft2`
//! test guests, grants, isolation between apps, limits, 10,000 opens,
//! concurrent increments and compare-and-swaps, a Redis server killed and
//! restarted under load, and one that never answers. Every test checks a
//! neighbour (`/hello`) is still served.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gust_runtime::Outcome;
use http::{Request, StatusCode};

use crate::support::servers::{self, Spawned, redis, redis_on};
use crate::support::{TestServer, manifest};

/// `[key_value_store.default]` on `redis`.
fn redis_head(redis: &Spawned) -> String {
    format!(
        "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://{}\"",
        redis.addr
    )
}

/// `kv-draft` at `/d1` and `kv-draft2` at `/d2`, both granted `default`,
/// admitting many concurrent requests, and `hello`.
fn both_drafts(head: &str) -> crate::support::manifest::ManifestText {
    let admit = "key_value_stores = [\"default\"]\nqueue = 1000\nqueue_timeout = \"60s\"";
    manifest()
        .head(head)
        .function("kv1", "{KV_DRAFT}")
        .set(admit)
        .route("/d1")
        .function("kv2", "{KV_DRAFT2}")
        .set(admit)
        .route("/d2")
        .hello()
}

async fn hello_served(server: &TestServer) {
    assert_eq!(server.get("/hello").await.status, StatusCode::OK);
}

/// `GET path`, expecting `status`; the body.
async fn expect(server: &TestServer, path: &str, status: StatusCode) -> String {
    let reply = server.get(path).await;
    assert_eq!(reply.status, status, "{path}: {}", reply.text());
    reply.text()
}

/// Every operation of both drafts on one store, and the two drafts seeing
/// the same data.
async fn exercise(server: &TestServer) {
    for d in ["/d1", "/d2"] {
        let ok = StatusCode::OK;
        let q = |rest: &str| format!("{d}?{rest}");
        assert_eq!(
            expect(server, &q("op=get&key=a"), StatusCode::NOT_FOUND).await,
            "missing"
        );
        assert_eq!(expect(server, &q("op=exists&key=a"), ok).await, "false");
        expect(server, &q("op=set&key=a&value=hello"), ok).await;
        assert_eq!(expect(server, &q("op=get&key=a"), ok).await, "hello");
        assert_eq!(expect(server, &q("op=exists&key=a"), ok).await, "true");
        expect(server, &q("op=delete&key=a"), ok).await;
        expect(server, &q("op=delete&key=a"), ok).await;
        assert_eq!(
            expect(server, &q("op=get&key=a"), StatusCode::NOT_FOUND).await,
            "missing"
        );
        // Counters are decimal ASCII, on both drafts and both backends.
        assert_eq!(expect(server, &q("op=incr&key=n&by=41"), ok).await, "41");
        assert_eq!(expect(server, &q("op=incr&key=n"), ok).await, "42");
        assert_eq!(expect(server, &q("op=get&key=n"), ok).await, "42");
        expect(server, &q("op=set&key=n&value=99"), ok).await;
        assert_eq!(expect(server, &q("op=incr&key=n"), ok).await, "100");
        expect(server, &q("op=set&key=n&value=abc"), ok).await;
        let text = expect(
            server,
            &q("op=incr&key=n"),
            StatusCode::INTERNAL_SERVER_ERROR,
        )
        .await;
        assert!(text.contains("not an integer"), "{text}");
        expect(server, &q("op=delete&key=n"), ok).await;
        assert_eq!(
            expect(server, &q("op=batch&key=b&n=20"), ok).await,
            "set 20, read back true, 10 left"
        );
        let list = expect(server, &q("op=list"), ok).await;
        assert!(list.starts_with("10 keys\n"), "{list}");
        let keys: Vec<String> = (0..20)
            .skip(1)
            .step_by(2)
            .map(|i| format!("b.{i}"))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(list, format!("10 keys\n{}", sorted.join("\n")));
        for key in &keys {
            expect(server, &q(&format!("op=delete&key={key}")), ok).await;
        }
        assert_eq!(expect(server, &q("op=list"), ok).await, "0 keys\n");
    }
    // One store, two drafts: what one writes the other reads.
    expect(
        server,
        "/d1?op=set&key=shared&value=from-draft",
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        expect(server, "/d2?op=get&key=shared", StatusCode::OK).await,
        "from-draft"
    );
    // More keys than a page: the cursors of both drafts walk them all.
    expect(server, "/d2?op=batch&key=page&n=2500", StatusCode::OK).await;
    for d in ["/d1", "/d2"] {
        let list = expect(server, &format!("{d}?op=list"), StatusCode::OK).await;
        assert!(list.starts_with("1251 keys\n"), "{}", &list[..40]);
    }
    // Charged: 100 gets cost at least 100 operations of host fuel.
    server.clear_records();
    let reply = server.get("/d2?op=bench&what=get&key=shared&n=100").await;
    assert_eq!(reply.status, StatusCode::OK);
    let record = server.record(&reply.request_id()).await;
    assert_eq!(record.outcome, Outcome::Ok);
    assert!(
        record.host_fuel >= 100 * gust_runtime::metering::KV_OP_FUEL,
        "host fuel {}",
        record.host_fuel
    );
    hello_served(server).await;
}

#[tokio::test]
async fn both_drafts_on_sqlite() {
    let server = TestServer::start(both_drafts("")).await;
    exercise(&server).await;
}

#[tokio::test]
async fn both_drafts_on_redis() {
    let Some(redis) = redis() else { return };
    let server = TestServer::start(both_drafts(&redis_head(&redis))).await;
    exercise(&server).await;
}

#[tokio::test]
async fn ungranted_stores_are_denied() {
    let server = TestServer::start(
        manifest()
            .function("granted", "{KV_DRAFT2}")
            .set("key_value_stores = [\"default\"]")
            .route("/granted")
            .function("bare", "{KV_DRAFT}")
            .route("/bare")
            .hello(),
    )
    .await;
    expect(&server, "/granted?op=set&key=k&value=v", StatusCode::OK).await;
    let denied = server.get("/granted?op=get&store=other&key=k").await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(denied.text(), "access-denied");
    let record = server.record(&denied.request_id()).await;
    assert_eq!((record.outcome, record.status), (Outcome::Ok, 403));
    // Nothing is granted by default.
    assert_eq!(
        expect(&server, "/bare?op=get&key=k", StatusCode::FORBIDDEN).await,
        "access-denied"
    );
    assert_eq!(
        expect(&server, "/bare?op=open-many&n=3", StatusCode::OK).await,
        "opened 0 of 3; error: Error::AccessDenied"
    );
    hello_served(&server).await;
}

/// An app named `name`, its `kv2` function granted `default`, with `head`.
async fn app_named(name: &str, head: &str) -> TestServer {
    TestServer::start(
        manifest()
            .head(&format!("name = \"{name}\"\n{head}"))
            .function("kv2", "{KV_DRAFT2}")
            .set("key_value_stores = [\"default\"]")
            .route("/d2")
            .hello(),
    )
    .await
}

/// Apps `a` and `b` on the backend of `head` do not see each other's keys;
/// a second server of app `a` on it does (sharing is what a shared
/// backend is for).
async fn apps_isolated_on(head: &str) {
    let a = app_named("a", head).await;
    let b = app_named("b", head).await;
    expect(&a, "/d2?op=set&key=k&value=of-a", StatusCode::OK).await;
    expect(&a, "/d2?op=incr&key=n", StatusCode::OK).await;
    assert_eq!(
        expect(&b, "/d2?op=get&key=k", StatusCode::NOT_FOUND).await,
        "missing"
    );
    assert_eq!(expect(&b, "/d2?op=incr&key=n", StatusCode::OK).await, "1");
    assert_eq!(expect(&b, "/d2?op=list", StatusCode::OK).await, "1 keys\nn");
    expect(&b, "/d2?op=set&key=k&value=of-b", StatusCode::OK).await;
    assert_eq!(expect(&a, "/d2?op=get&key=k", StatusCode::OK).await, "of-a");
    let a_again = app_named("a", head).await;
    assert_eq!(
        expect(&a_again, "/d2?op=get&key=k", StatusCode::OK).await,
        "of-a"
    );
    assert_eq!(
        expect(&a_again, "/d2?op=incr&key=n", StatusCode::OK).await,
        "2"
    );
    hello_served(&b).await;
}

#[tokio::test]
async fn apps_do_not_share_stores() {
    let dir = tempfile::tempdir().unwrap();
    // The embedded default: a file per app under one data directory.
    apps_isolated_on(&format!(
        "[data]\ndir = \"{}\"",
        dir.path().join("data").display()
    ))
    .await;
    // One SQLite file the operator maps for every app.
    apps_isolated_on(&format!(
        "[key_value_store.default]\ntype = \"sqlite\"\npath = \"{}\"",
        dir.path().join("shared.sqlite").display()
    ))
    .await;
    // One Redis server.
    if let Some(redis) = redis() {
        apps_isolated_on(&redis_head(&redis)).await;
    }
}

/// Keys, values and key counts past the limits are refused with an error
/// naming the limit.
async fn limits_on(head: &str) {
    let server = TestServer::start(both_drafts(&format!(
        "{head}\n[key_value]\nmax_key_size = 64\nmax_value_size = 100000\nmax_keys = 3"
    )))
    .await;
    let bad = StatusCode::INTERNAL_SERVER_ERROR;
    for d in ["/d1", "/d2"] {
        expect(
            &server,
            &format!("{d}?op=set&keylen=64&value=v"),
            StatusCode::OK,
        )
        .await;
        let text = expect(&server, &format!("{d}?op=set&keylen=65&value=v"), bad).await;
        assert!(text.contains("max_key_size"), "{text}");
        let text = expect(&server, &format!("{d}?op=get&keylen=100000"), bad).await;
        assert!(text.contains("max_key_size"), "{text}");
        expect(
            &server,
            &format!("{d}?op=set&key=v&len=100000"),
            StatusCode::OK,
        )
        .await;
        let text = expect(&server, &format!("{d}?op=set&key=v&len=100001"), bad).await;
        assert!(text.contains("max_value_size"), "{text}");
        // A huge value in the body is refused too.
        let body = Bytes::from(vec![b'x'; 2 << 20]);
        let reply = server
            .send(
                Request::put(format!("{d}?op=set&key=v"))
                    .body(body)
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, bad);
        assert!(reply.text().contains("max_value_size"), "{}", reply.text());
        expect(&server, &format!("{d}?op=delete&keylen=64"), StatusCode::OK).await;
        expect(&server, &format!("{d}?op=delete&key=v"), StatusCode::OK).await;
    }
    // Three keys fit, a fourth does not, whichever way it would be added;
    // changing a key that exists still works.
    for key in ["a", "b", "c"] {
        expect(
            &server,
            &format!("/d2?op=set&key={key}&value=1"),
            StatusCode::OK,
        )
        .await;
    }
    for path in [
        "/d2?op=set&key=d&value=1",
        "/d1?op=incr&key=d",
        "/d2?op=incr&key=d",
        "/d2?op=batch&key=e&n=1",
    ] {
        let text = expect(&server, path, bad).await;
        assert!(text.contains("max_keys (3)"), "{path}: {text}");
    }
    expect(&server, "/d2?op=set&key=a&value=2", StatusCode::OK).await;
    expect(&server, "/d2?op=incr&key=b", StatusCode::OK).await;
    assert_eq!(
        expect(&server, "/d1?op=list", StatusCode::OK).await,
        "3 keys\na\nb\nc"
    );
    expect(&server, "/d2?op=delete&key=c", StatusCode::OK).await;
    expect(&server, "/d2?op=set&key=d&value=1", StatusCode::OK).await;
    hello_served(&server).await;
}

#[tokio::test]
async fn limits_are_refused_on_sqlite() {
    limits_on("").await;
}

#[tokio::test]
async fn limits_are_refused_on_redis() {
    let Some(redis) = redis() else { return };
    limits_on(&redis_head(&redis)).await;
}

#[tokio::test]
async fn ten_thousand_opens_are_bounded() {
    let server = TestServer::start(both_drafts("")).await;
    for d in ["/d1", "/d2"] {
        // Opened and dropped: all fine.
        let reply = server.get(&format!("{d}?op=open-many&n=10000")).await;
        assert_eq!(reply.text(), "opened 10000 of 10000; error: none");
        let record = server.record(&reply.request_id()).await;
        // Each a host call, no backend work.
        assert!(record.host_fuel >= 10_000 * gust_runtime::metering::HOST_CALL_FUEL);
        assert!(record.host_fuel < 10_000 * gust_runtime::metering::KV_OP_FUEL);
        // Kept open: the resource table's cap stops them, as an error value.
        let text = expect(
            &server,
            &format!("{d}?op=open-many&n=10000&keep=1"),
            StatusCode::OK,
        )
        .await;
        let opened: u32 = text
            .strip_prefix("opened ")
            .and_then(|t| t.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{text}"));
        assert!((9_000..10_000).contains(&opened), "{text}");
        assert!(text.contains("cannot open another bucket"), "{text}");
    }
    hello_served(&server).await;
}

/// `n` concurrent requests to `path`, each on its own connection: their
/// statuses and bodies.
async fn concurrently(server: &TestServer, path: &str, n: usize) -> Vec<(StatusCode, String)> {
    let addr = server.addr;
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let path = path.to_owned();
            tokio::spawn(async move {
                let request = Request::get(path).body(Bytes::new()).unwrap();
                let reply = tokio::time::timeout(
                    crate::support::REQUEST_TIMEOUT,
                    crate::support::send(addr, request),
                )
                .await
                .expect("request timed out")
                .expect("request failed");
                (
                    reply.status,
                    String::from_utf8_lossy(&reply.body).into_owned(),
                )
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

/// 500 concurrent increments give every value from 1 to 500 once, and
/// 500 at the end; 50 concurrent compare-and-swap increments give 50.
async fn concurrent_increments_on(head: &str) {
    let server = TestServer::start(both_drafts(head)).await;
    for (d, key) in [("/d1", "c1"), ("/d2", "c2")] {
        let replies = concurrently(&server, &format!("{d}?op=incr&key={key}"), 500).await;
        let mut values: Vec<u32> = replies
            .iter()
            .map(|(status, text)| {
                assert_eq!(*status, StatusCode::OK, "{text}");
                text.parse().unwrap()
            })
            .collect();
        values.sort_unstable();
        assert_eq!(values, (1..=500).collect::<Vec<_>>());
        assert_eq!(
            expect(&server, &format!("{d}?op=get&key={key}"), StatusCode::OK).await,
            "500"
        );
    }
    let replies = concurrently(&server, "/d2?op=cas-incr&key=cas", 50).await;
    assert!(
        replies.iter().all(|(s, _)| *s == StatusCode::OK),
        "{replies:?}"
    );
    assert_eq!(
        expect(&server, "/d2?op=get&key=cas", StatusCode::OK).await,
        "50"
    );
    hello_served(&server).await;
}

#[tokio::test]
async fn concurrent_increments_are_exact_on_sqlite() {
    concurrent_increments_on("").await;
}

#[tokio::test]
async fn concurrent_increments_are_exact_on_redis() {
    let Some(redis) = redis() else { return };
    concurrent_increments_on(&redis_head(&redis)).await;
}

/// A compare-and-swap that lost to a write gets `cas-failed` with a fresh
/// handle, whose swap then wins.
async fn cas_conflict_on(head: &str) {
    let server = TestServer::start(both_drafts(head)).await;
    assert_eq!(
        expect(&server, "/d2?op=cas&key=k", StatusCode::OK).await,
        "first saw one, conflict saw two, now four"
    );
    hello_served(&server).await;
}

#[tokio::test]
async fn cas_conflict_on_sqlite() {
    cas_conflict_on("").await;
}

#[tokio::test]
async fn cas_conflict_on_redis() {
    let Some(redis) = redis() else { return };
    cas_conflict_on(&redis_head(&redis)).await;
}

/// Redis killed under load: requests get an error from the guest (503)
/// within a bounded time, not a hang; restarted on the same port, requests
/// succeed again.
#[tokio::test]
async fn redis_killed_and_restarted_under_load() {
    let port = servers::free_port();
    let Some(mut redis) = redis_on(port) else {
        return;
    };
    let server = Arc::new(TestServer::start(both_drafts(&redis_head(&redis))).await);
    expect(&server, "/d2?op=incr&key=n", StatusCode::OK).await;

    // Load: 8 clients incrementing until told to stop, each request timed.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..8)
        .map(|_| {
            let (server, stop) = (server.clone(), stop.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let started = Instant::now();
                    let reply = server.get("/d2?op=incr&key=n").await;
                    seen.push((reply.status, reply.text(), started.elapsed()));
                }
                seen
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.kill();
    // While it is gone: errors, each well before the 10 s deadline.
    let mut unavailable = 0;
    for _ in 0..5 {
        let started = Instant::now();
        let reply = server.get("/d2?op=get&key=n").await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            reply.text()
        );
        assert!(reply.text().contains("unavailable"), "{}", reply.text());
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{:?}",
            started.elapsed()
        );
        let record = server.record(&reply.request_id()).await;
        assert_eq!(record.outcome, Outcome::Ok);
        unavailable += 1;
    }
    hello_served(&server).await;
    // Back on the same port: gust reconnects.
    let _redis = redis_on(port).expect("redis-server was there a moment ago");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = server.get("/d2?op=incr&key=n").await;
        if reply.status == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never reconnected: {}",
            reply.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut statuses = Vec::new();
    for task in load {
        for (status, text, took) in task.await.unwrap() {
            assert!(
                status == StatusCode::OK || status == StatusCode::SERVICE_UNAVAILABLE,
                "{status}: {text}"
            );
            assert!(took < Duration::from_secs(8), "a request took {took:?}");
            statuses.push(status);
        }
    }
    assert!(unavailable > 0);
    assert!(statuses.contains(&StatusCode::SERVICE_UNAVAILABLE));
    // The restarted server is empty: counting starts again.
    assert!(
        expect(&server, "/d2?op=get&key=n", StatusCode::OK)
            .await
            .parse::<u64>()
            .is_ok()
    );
    hello_served(&server).await;
}

/// A Redis URL where nothing answers (a closed port, or a listener that
/// accepts and never replies): the guest gets an error (503) within a few
/// seconds, every time, and the neighbour is served.
#[tokio::test]
async fn unreachable_redis_is_an_error_not_a_hang() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    // Accepts and holds every connection, never reading or writing.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let closed = format!("127.0.0.1:{}", servers::free_port());
    for addr in [closed, silent_addr.to_string()] {
        let server = TestServer::start(both_drafts(&format!(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://{addr}\""
        )))
        .await;
        for path in ["/d1?op=set&key=k&value=v", "/d2?op=incr&key=n"] {
            let started = Instant::now();
            let reply = server.get(path).await;
            assert_eq!(
                reply.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{addr} {path}: {}",
                reply.text()
            );
            assert!(
                started.elapsed() < Duration::from_secs(8),
                "{addr} {path}: {:?}",
                started.elapsed()
            );
            let record = server.record(&reply.request_id()).await;
            assert_eq!((record.outcome, record.status), (Outcome::Ok, 503));
        }
        hello_served(&server).await;
    }
    holder.abort();
}

/// A component built for wasmtime (`wasi:keyvalue@0.2.0-draft` through
/// wit-bindgen, no gust-sdk) runs unmodified, and the empty store name
/// (what wasmtime's own test programs open) is the store `default`.
#[tokio::test]
async fn a_foreign_component_and_the_empty_store_name() {
    let server = TestServer::start(
        manifest()
            .function("foreign", "{FOREIGN_KV_CONFIG}")
            .set("key_value_stores = [\"default\"]\nconfig = { hello = \"world\" }")
            .route("/foreign/{*rest}")
            .hello(),
    )
    .await;
    let put = Request::put(format!(
        "http://{}/foreign/kv/greeting?store=default",
        server.addr
    ))
    .body(Bytes::from_static(b"hi there"))
    .unwrap();
    assert_eq!(server.send(put).await.status, StatusCode::OK);
    let reply = server.get("/foreign/kv/greeting?store=").await;
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (StatusCode::OK, "hi there")
    );
    let reply = server.get("/foreign/kv/greeting").await;
    assert_eq!(reply.text(), "hi there", "no store parameter: `default`");
    for expected in ["1", "2"] {
        let incr = Request::post(format!(
            "http://{}/foreign/kv/hits/incr?store=",
            server.addr
        ))
        .body(Bytes::new())
        .unwrap();
        assert_eq!(server.send(incr).await.text(), expected);
    }
    let reply = server.get("/foreign/config/hello").await;
    assert_eq!(reply.text(), "world");
    let denied = server.get("/foreign/kv/greeting?store=other").await;
    assert_eq!(
        (denied.status.as_u16(), denied.text().as_str()),
        (500, "access-denied")
    );
    assert_eq!(server.get("/hello").await.status, StatusCode::OK);
}
