//! Many apps in one server, routed by host: exact hosts, `*.` subdomains,
//! the default app (`*`), HTTP/1.1 `Host` and HTTP/2 `:authority`; two apps
//! never claim one host; and nothing one app does is visible to another
//! (key-value stores, usage records).

use bytes::Bytes;
use gust_runtime::App;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};

use crate::support::{TestServer, client, engine, manifest, spec_in};

/// An app `name` answering `hosts` (a TOML array, or empty for none):
/// `/who` is the echo example (its JSON names the path), `/kv` a
/// key-value guest granted the app's `default` store.
fn app_text(name: &str, hosts: &str) -> String {
    app_text_with(name, hosts, "")
}

/// [`app_text`] with more top-level lines (operator sections).
fn app_text_with(name: &str, hosts: &str, head: &str) -> String {
    let hosts = if hosts.is_empty() {
        String::new()
    } else {
        format!("hosts = {hosts}\n")
    };
    manifest()
        .head(&format!("name = \"{name}\"\n{hosts}{head}"))
        .function("who", "{ECHO}")
        .route("/who/{*rest}")
        .function("kv", "{KV_DRAFT2}")
        .set("key_value_stores = [\"default\"]")
        .route("/kv")
        .into()
}

fn load(name: &str, hosts: &str) -> (App, tempfile::TempDir) {
    load_with(name, hosts, "")
}

fn load_with(name: &str, hosts: &str, head: &str) -> (App, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec_in(dir.path(), app_text_with(name, hosts, head));
    let app = App::load_with(engine(), spec.app, &spec.runtime).unwrap();
    (app, dir)
}

/// GET `path` with `Host: host` over HTTP/1.1: status and body.
async fn get_as(server: &TestServer, host: &str, path: &str) -> (StatusCode, String) {
    let request = Request::get(path)
        .header(http::header::HOST, host)
        .body(Bytes::new())
        .unwrap();
    let reply = server.send(request).await;
    (reply.status, reply.text())
}

/// Which app answered: the echo guest's `/who/NAME` path names it.
async fn who(server: &TestServer, host: &str) -> Option<String> {
    let (status, body) = get_as(server, host, "/who/x").await;
    (status == StatusCode::OK).then_some(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_routed_by_host() {
    let server = TestServer::start(app_text(
        "shop",
        r#"["shop.example.com", "*.shop.example.com"]"#,
    ))
    .await;
    let (blog, _blog_dir) = load("blog", r#"["blog.example.com"]"#);
    assert!(server.apps.insert(blog).unwrap().is_none());

    // Exact, any case, with a port, with a trailing dot.
    for host in [
        "shop.example.com",
        "SHOP.Example.COM",
        "shop.example.com:8080",
        "shop.example.com.",
    ] {
        assert!(who(&server, host).await.is_some(), "{host}");
    }
    // Subdomains, one label or more; not a look-alike.
    let (status, _) = get_as(&server, "eu.shop.example.com", "/who/x").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = get_as(&server, "a.b.shop.example.com", "/who/x").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = get_as(&server, "myshop.example.com", "/who/x").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // No app claims it and there is no default app: 404.
    let (status, body) = get_as(&server, "nobody.example.org", "/who/x").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::NOT_FOUND, "not found\n")
    );

    // The blog host reaches the blog app, not the shop: a key set
    // through it is in the blog's store only.
    let (status, _) = get_as(&server, "blog.example.com", "/kv?op=set&key=k&value=blog").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = get_as(&server, "shop.example.com", "/kv?op=get&key=k").await;
    assert_eq!((status, body.as_str()), (StatusCode::NOT_FOUND, "missing"));
    let (_, body) = get_as(&server, "blog.example.com", "/kv?op=get&key=k").await;
    assert_eq!(body, "blog");

    // A default app (no `hosts`: `*`) takes every unclaimed host.
    let (fallback, _fallback_dir) = load("fallback", "");
    assert!(server.apps.insert(fallback).unwrap().is_none());
    let (status, _) = get_as(&server, "nobody.example.org", "/who/x").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = get_as(&server, "127.0.0.1", "/who/x").await;
    assert_eq!(status, StatusCode::OK);
    // ... but not the claimed ones: they still reach their apps (the
    // test's record sink is on the shop app only).
    for host in ["shop.example.com", "x.shop.example.com"] {
        let reply = server
            .send(
                Request::get("/who/x")
                    .header(http::header::HOST, host)
                    .body(Bytes::new())
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        let record = server.record(&reply.request_id()).await;
        assert_eq!(record.app.as_str(), "shop");
    }

    // Removing an app frees its hosts: the default app takes them.
    server
        .apps
        .remove(&gust_runtime::manifest::FunctionId::try_from("blog").unwrap())
        .unwrap();
    let (status, _) = get_as(&server, "blog.example.com", "/who/x").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_routes_by_authority() {
    let server = TestServer::start(app_text("shop", r#"["shop.example.com"]"#)).await;
    let (blog, _dir) = load("blog", r#"["blog.example.com"]"#);
    server.apps.insert(blog).unwrap();
    let (mut sender, _connection) = client::http2(server.addr).await;
    for (authority, expected) in [
        ("shop.example.com", StatusCode::OK),
        ("blog.example.com:443", StatusCode::OK),
        ("other.example.com", StatusCode::NOT_FOUND),
    ] {
        let request = Request::get(format!("http://{authority}/who/x"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status();
        let _ = response.into_body().collect().await;
        assert_eq!(status, expected, "{authority}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_apps_never_claim_one_host() {
    let server = TestServer::start(app_text(
        "shop",
        r#"["shop.example.com", "*.shop.example.com"]"#,
    ))
    .await;
    for hosts in [
        r#"["other.example.com", "shop.example.com"]"#,
        r#"["*.shop.example.com"]"#,
    ] {
        let (thief, _dir) = load("thief", hosts);
        let conflict = server.apps.insert(thief).err().expect("refused");
        assert_eq!(conflict.claimed_by.as_str(), "shop");
        assert!(
            conflict
                .to_string()
                .contains("is already served by app `shop`"),
            "{conflict}"
        );
        // Nothing changed: the thief's other host is not routed either.
        assert_eq!(server.apps.ids().len(), 1);
        let (status, _) = get_as(&server, "other.example.com", "/who/x").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    // A subdomain of a `*.` pattern may be claimed exactly by another app:
    // the exact host wins for it.
    let (eu, _dir) = load("eu", r#"["eu.shop.example.com"]"#);
    server.apps.insert(eu).unwrap();
    set_and_read(&server, "eu.shop.example.com", "eu").await;
    set_and_read(&server, "us.shop.example.com", "shop").await;
    // A new version of the same app keeps its hosts: no conflict with itself.
    let (shop2, _dir2) = load("shop", r#"["shop.example.com", "*.shop.example.com"]"#);
    assert!(server.apps.insert(shop2).unwrap().is_some());
}

/// Sets `owner` under key `k` in the default store of the app at `host`
/// and reads it back.
async fn set_and_read(server: &TestServer, host: &str, owner: &str) {
    let (status, body) = get_as(server, host, &format!("/kv?op=set&key=k&value={owner}")).await;
    assert_eq!(status, StatusCode::OK, "{host}: {body}");
    let (status, body) = get_as(server, host, "/kv?op=get&key=k").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, owner), "{host}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_in_one_server_do_not_see_each_others_stores() {
    // One data directory for the node, as `gust serve` has.
    let data = tempfile::tempdir().unwrap();
    let head = format!("[data]\ndir = \"{}\"\n", data.path().display());
    let server = TestServer::start(app_text_with("a", r#"["a.example.com"]"#, &head)).await;
    let (b, _dir) = load_with("b", r#"["b.example.com"]"#, &head);
    server.apps.insert(b).unwrap();
    set_and_read(&server, "a.example.com", "a").await;
    set_and_read(&server, "b.example.com", "b").await;
    // Each still reads its own value: the `default` store is per app.
    let (_, a) = get_as(&server, "a.example.com", "/kv?op=get&key=k").await;
    let (_, b) = get_as(&server, "b.example.com", "/kv?op=get&key=k").await;
    assert_eq!((a.as_str(), b.as_str()), ("a", "b"));
    let records = server.records();
    assert!(!records.is_empty());
    assert!(records.iter().all(|r| r.app.as_str() == "a"));
}
