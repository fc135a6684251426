//! The deploy API of a node (`gust_runtime::node::Node`) over real sockets:
//! real tar bundles of real components deployed, updated, routed by host,
//! refused (host conflicts, invalid bundles with every problem listed,
//! missing, wrong and foreign tokens, too many failures), audited, rolled
//! back, deleted, and restored when the node starts again from its state
//! directory with a warm cache.
//!
//! [`TestNode`] and [`bundle`] are for other tests driving a node too.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gust_runtime::Apps;
use gust_runtime::RuntimeSpec;
use gust_runtime::cache::CacheLocation;
use gust_runtime::deploy::Deployer;
use gust_runtime::deploy::tokens::{self, Scope};
use gust_runtime::ledger::Ledger;
use gust_runtime::manifest::{AdminSettings, FunctionId, LedgerLocation, LedgerSettings};
use gust_runtime::node::{Node, NodeOptions};
use http::{Method, Request, StatusCode};

use crate::support::{REQUEST_TIMEOUT, Reply, engine, examples};

/// A node on ephemeral loopback ports, its state directory, compile cache
/// and data in a temporary directory of its own, and an operator token.
pub struct TestNode {
    pub node: Node,
    pub dir: tempfile::TempDir,
    /// An operator token.
    pub operator: String,
}

impl TestNode {
    /// A node with an empty state directory and a cold cache.
    pub async fn start() -> TestNode {
        Self::start_in(tempfile::tempdir().unwrap(), None).await
    }

    /// A node on the state directory and cache of `dir` (a node stopped
    /// with [`TestNode::stop`]), with `ledger` if any.
    pub async fn start_in(dir: tempfile::TempDir, ledger: Option<Arc<Ledger>>) -> TestNode {
        let mut runtime = RuntimeSpec::default();
        runtime.server.listen = "127.0.0.1:0".parse().unwrap();
        runtime.admin = AdminSettings::in_dir(dir.path().join("state"));
        runtime.admin.listen = Some("127.0.0.1:0".parse().unwrap());
        runtime.cache = CacheLocation::Dir(dir.path().join("cache"));
        runtime.capabilities.data_dir = Some(dir.path().join("data"));
        let operator = match std::fs::read_to_string(dir.path().join("operator-token")) {
            Ok(token) => token,
            Err(_) => {
                let (token, _) = tokens::create(&runtime.admin.tokens, Scope::Operator).unwrap();
                std::fs::write(dir.path().join("operator-token"), &token).unwrap();
                token
            }
        };
        let deployer = Deployer::new(engine().clone(), runtime, Apps::new()).unwrap();
        let options = NodeOptions {
            ledger,
            shutdown_grace: Duration::from_secs(10),
            ..NodeOptions::default()
        };
        let node = Node::start(deployer, options).await.unwrap();
        TestNode {
            node,
            dir,
            operator,
        }
    }

    /// Shuts the node down gracefully; its directory, to start again.
    pub async fn stop(self) -> tempfile::TempDir {
        self.node.shutdown().await.unwrap();
        self.dir
    }

    /// A new token for `app`.
    pub fn app_token(&self, app: &str) -> String {
        let scope = Scope::App(FunctionId::try_from(app).unwrap());
        tokens::create(&self.dir.path().join("state/tokens"), scope)
            .unwrap()
            .0
    }

    /// The audit log's lines.
    pub fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("state/audit.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// A request to the admin API with `token`.
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: impl Into<Bytes>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        send(self.node.admin_addr(), request.body(body.into()).unwrap()).await
    }

    /// `PUT /v1/apps/{app}` with the operator token.
    pub async fn deploy(&self, app: &str, bundle: Vec<u8>) -> Reply {
        let path = format!("/v1/apps/{app}");
        self.admin(Method::PUT, &path, Some(&self.operator.clone()), bundle)
            .await
    }

    /// A GET of `path` on the public port for `host`.
    pub async fn get(&self, host: &str, path: &str) -> Reply {
        let request = Request::get(path)
            .header("host", host)
            .body(Bytes::new())
            .unwrap();
        send(self.node.addr(), request).await
    }
}

async fn send(addr: std::net::SocketAddr, request: Request<Bytes>) -> Reply {
    tokio::time::timeout(REQUEST_TIMEOUT, crate::support::send(addr, request))
        .await
        .expect("request timed out")
        .unwrap()
}

/// A tar bundle: `gust.toml` with `manifest`, and each `(name, source)`
/// component file read from `source`.
pub fn bundle(manifest: &str, components: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |path: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, path, bytes).unwrap();
    };
    add("gust.toml", manifest.as_bytes());
    for (name, source) in components {
        add(name, &std::fs::read(source).unwrap());
    }
    builder.into_inner().unwrap()
}

/// The same bundle gzip-compressed.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, bytes).unwrap();
    gz.finish().unwrap()
}

/// An app answering `hosts` (a TOML array) with the hello example on
/// `/hello`.
pub fn hello_bundle(hosts: &str) -> Vec<u8> {
    bundle(
        &format!(
            "hosts = {hosts}\n[functions.hello]\ncomponent = \"c/hello.wasm\"\n[[routes]]\npath = \"/hello\"\nfunction = \"hello\"\n"
        ),
        &[("c/hello.wasm", examples::HELLO_PATH)],
    )
}

/// An app answering `hosts` with the echo example on `/hello` (so its
/// answer differs from [`hello_bundle`]'s on the same path).
pub fn echo_bundle(hosts: &str) -> Vec<u8> {
    bundle(
        &format!(
            "hosts = {hosts}\n[functions.echo]\ncomponent = \"echo.wasm\"\n[[routes]]\npath = \"/hello\"\nfunction = \"echo\"\n"
        ),
        &[("echo.wasm", examples::ECHO_PATH)],
    )
}

const HELLO: &str = "Hello from gust!\n";

fn is_echo(reply: &Reply) -> bool {
    reply.status == StatusCode::OK && reply.json()["path"] == "/hello"
}

fn versions_on_disk(dir: &Path, app: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("state/apps").join(app))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn deploy_serves_the_app_and_an_update_replaces_it() {
    let node = TestNode::start().await;
    let first = node
        .deploy("shop", hello_bundle("[\"shop.example.com\"]"))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    let json = first.json();
    assert_eq!(json["version"], 1);
    assert_eq!(json["functions"], serde_json::json!(["hello"]));
    assert_eq!(json["hosts"], serde_json::json!(["shop.example.com"]));
    assert_eq!(json["routes"][0]["path"], "/hello");
    assert_eq!(json["load"]["compiled"], 1, "{json}");
    assert_eq!(json["sha256"].as_str().map(str::len), Some(64));
    let served = node.get("shop.example.com", "/hello").await;
    assert_eq!(served.text(), HELLO);
    assert_eq!(
        node.get("other.example.com", "/hello").await.status,
        StatusCode::NOT_FOUND
    );

    // The update, gzip-compressed, answers differently on the same path.
    let second = node
        .deploy("shop", gzip(&echo_bundle("[\"shop.example.com\"]")))
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text());
    assert_eq!(second.json()["version"], 2);
    assert_eq!(second.json()["previous"], 1);
    assert!(is_echo(&node.get("shop.example.com", "/hello").await));

    // The same bundle again: the cache has it.
    let third = node
        .deploy("shop", echo_bundle("[\"shop.example.com\"]"))
        .await;
    assert_eq!(third.json()["load"]["compiled"], 0, "{}", third.text());
    assert_eq!(third.json()["load"]["cache_hits"], 1);

    let operator = node.operator.clone();
    let detail = node
        .admin(Method::GET, "/v1/apps/shop", Some(&operator), "")
        .await;
    assert_eq!(detail.status, StatusCode::OK);
    let detail = detail.json();
    assert_eq!(detail["version"], 3);
    assert_eq!(detail["previous"], 2);
    assert_eq!(detail["serving"], true);
    assert_eq!(detail["functions"], serde_json::json!(["echo"]));
    let kept: Vec<u64> = detail["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(kept, [3, 2]);
    let by = node.audit()[0]["who"].clone();
    assert_eq!(detail["deployed_by"], by);
    assert!(detail["deployed_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        versions_on_disk(node.dir.path(), "shop"),
        ["app.json", "v2", "v3"]
    );

    let list = node
        .admin(Method::GET, "/v1/apps", Some(&operator), "")
        .await;
    assert_eq!(list.json()["apps"][0]["app"], "shop");
    assert_eq!(list.json()["apps"][0]["version"], 3);
}

#[tokio::test]
async fn two_deployed_apps_are_routed_by_host_and_a_host_conflict_is_refused() {
    let node = TestNode::start().await;
    let a = node
        .deploy(
            "a",
            hello_bundle("[\"a.example.com\", \"*.a.example.com\"]"),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
    let b = node.deploy("b", echo_bundle("[\"b.example.com\"]")).await;
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.text());
    assert_eq!(node.get("a.example.com", "/hello").await.text(), HELLO);
    assert_eq!(node.get("x.a.example.com", "/hello").await.text(), HELLO);
    assert!(is_echo(&node.get("b.example.com", "/hello").await));

    let conflict = node
        .deploy("c", echo_bundle("[\"c.example.com\", \"a.example.com\"]"))
        .await;
    assert_eq!(conflict.status, StatusCode::CONFLICT, "{}", conflict.text());
    assert_eq!(conflict.json()["host"], "a.example.com");
    assert_eq!(conflict.json()["claimed_by"], "a");
    // Nothing changed: c neither serves nor is kept, a still answers.
    assert_eq!(
        node.get("c.example.com", "/hello").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(node.get("a.example.com", "/hello").await.text(), HELLO);
    assert_eq!(versions_on_disk(node.dir.path(), "c"), Vec::<String>::new());
    let operator = node.operator.clone();
    let list = node
        .admin(Method::GET, "/v1/apps", Some(&operator), "")
        .await;
    let names: Vec<String> = list.json()["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["app"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["a", "b"]);
    // An app moving to a host it already has is no conflict with itself.
    let again = node.deploy("a", echo_bundle("[\"a.example.com\"]")).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text());
}

#[tokio::test]
async fn an_invalid_bundle_lists_every_problem_and_changes_nothing() {
    let node = TestNode::start().await;
    assert_eq!(
        node.deploy("shop", hello_bundle("[\"shop.example.com\"]"))
            .await
            .status,
        StatusCode::CREATED
    );
    let invalid = bundle(
        "name = \"elsewhere\"\n\
         [server]\nlisten = \"0.0.0.0:80\"\n\
         [functions.hello]\ncomponent = \"missing.wasm\"\n\
         [functions.outside]\ncomponent = \"/etc/hostname\"\n[functions.hidden]\ncomponent = \"c/../../x.wasm\"\n\
         [[routes]]\npath = \"/hello\"\nfunction = \"nobody\"\n",
        &[],
    );
    let refused = node.deploy("shop", invalid).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text()
    );
    let json = refused.json();
    assert_eq!(json["error"], "invalid manifest");
    let fields: Vec<String> = json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap().to_owned())
        .collect();
    for field in [
        "name",
        "server",
        "functions.hello.component",
        "functions.outside.component",
        "functions.hidden.component",
        "routes[0].function",
    ] {
        assert!(fields.iter().any(|f| f == field), "{field} not in {json}");
    }

    // Not a component: the bundle is valid, the app does not load.
    let not_wasm = bundle(
        "[functions.hello]\ncomponent = \"hello.wasm\"\n[[routes]]\npath = \"/hello\"\nfunction = \"hello\"\n",
        &[("hello.wasm", "/etc/hostname")],
    );
    let refused = node.deploy("shop", not_wasm).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text()
    );

    // Not a tar, and a tar with an entry escaping the bundle.
    let refused = node.deploy("shop", b"not a bundle".to_vec()).await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{}",
        refused.text()
    );
    let mut header = tar::Header::new_old();
    header.as_old_mut().name[..11].copy_from_slice(b"../escaping");
    header.set_size(1);
    header.set_cksum();
    let mut escaping = tar::Builder::new(Vec::new());
    escaping.append(&header, &b"x"[..]).unwrap();
    let refused = node.deploy("shop", escaping.into_inner().unwrap()).await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{}",
        refused.text()
    );
    assert!(refused.text().contains("`..`"), "{}", refused.text());
    assert!(!node.dir.path().join("state/apps/escaping").exists());

    // Still version 1, serving, and only it on disk.
    assert_eq!(node.get("shop.example.com", "/hello").await.text(), HELLO);
    assert_eq!(
        versions_on_disk(node.dir.path(), "shop"),
        ["app.json", "v1"]
    );
    let operator = node.operator.clone();
    let detail = node
        .admin(Method::GET, "/v1/apps/shop", Some(&operator), "")
        .await;
    assert_eq!(detail.json()["version"], 1);
    assert_eq!(detail.json()["events"]["failures"], 4);
    // A first deploy that fails leaves no trace of the app.
    let refused = node.deploy("fresh", b"nope".to_vec()).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(!node.dir.path().join("state/apps/fresh").exists());
    let results: Vec<(String, u64)> = node
        .audit()
        .iter()
        .map(|l| {
            (
                l["result"].as_str().unwrap().to_owned(),
                l["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        results,
        [
            ("ok".to_owned(), 201),
            ("refused".to_owned(), 422),
            ("refused".to_owned(), 422),
            ("refused".to_owned(), 400),
            ("refused".to_owned(), 400),
            ("refused".to_owned(), 400),
        ]
    );
}

#[tokio::test]
async fn tokens_are_required_scoped_and_failures_rate_limited() {
    let node = TestNode::start().await;
    assert_eq!(
        node.deploy("shop", hello_bundle("[\"shop.example.com\"]"))
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        node.deploy("other", echo_bundle("[\"other.example.com\"]"))
            .await
            .status,
        StatusCode::CREATED
    );
    let shop = node.app_token("shop");

    // The app's token: its app only, and only it listed.
    let own = node
        .admin(Method::GET, "/v1/apps/shop", Some(&shop), "")
        .await;
    assert_eq!(own.status, StatusCode::OK);
    let list = node.admin(Method::GET, "/v1/apps", Some(&shop), "").await;
    assert_eq!(list.json()["apps"].as_array().unwrap().len(), 1);
    assert_eq!(list.json()["apps"][0]["app"], "shop");
    let foreign = node
        .admin(Method::GET, "/v1/apps/other", Some(&shop), "")
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    let foreign = node
        .admin(
            Method::PUT,
            "/v1/apps/other",
            Some(&shop),
            hello_bundle("[\"other.example.com\"]"),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    assert!(is_echo(&node.get("other.example.com", "/hello").await));
    let updated = node
        .admin(
            Method::PUT,
            "/v1/apps/shop",
            Some(&shop),
            echo_bundle("[\"shop.example.com\"]"),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text());

    // No token, a wrong one, another scheme: 401 with a challenge.
    let bad = format!("{shop}0");
    for token in [None, Some(bad.as_str())] {
        let refused = node.admin(Method::GET, "/v1/apps", token, "").await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert!(
            refused.headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
    }
    let basic = send(
        node.node.admin_addr(),
        Request::delete("/v1/apps/shop")
            .header("authorization", format!("Basic {shop}"))
            .body(Bytes::new())
            .unwrap(),
    )
    .await;
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
    // Still served: nothing was deleted.
    assert!(is_echo(&node.get("shop.example.com", "/hello").await));

    // 3 failures so far; 7 more reach the limit of 10, then even a valid
    // token is turned away for the rest of the window.
    for _ in 0..7 {
        let refused = node
            .admin(Method::GET, "/v1/apps", Some("gust_x"), "")
            .await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    }
    let limited = node.admin(Method::GET, "/v1/apps", Some(&shop), "").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // The rest of the admin listener is not behind tokens.
    let health = send(
        node.node.admin_addr(),
        Request::get("/healthz").body(Bytes::new()).unwrap(),
    )
    .await;
    assert_eq!(health.status, StatusCode::OK);

    // The refused changes are audited, with who asked when known.
    let audit = node.audit();
    let refused: Vec<(Option<&str>, &str, u64)> = audit
        .iter()
        .filter(|l| l["result"] == "refused")
        .map(|l| {
            (
                l["who"].as_str(),
                l["action"].as_str().unwrap(),
                l["status"].as_u64().unwrap(),
            )
        })
        .collect();
    let shop_id = audit
        .iter()
        .find(|l| l["app"] == "shop" && l["status"] == 200)
        .unwrap()["who"]
        .as_str()
        .unwrap();
    assert_eq!(
        refused,
        [(Some(shop_id), "deploy", 403), (None, "delete", 401),]
    );
}

#[tokio::test]
async fn rollback_returns_to_the_previous_version_and_delete_removes_the_app() {
    let node = TestNode::start().await;
    let operator = node.operator.clone();
    let op = Some(operator.as_str());
    let none_kept = node
        .admin(Method::POST, "/v1/apps/shop/rollback", op, "")
        .await;
    assert_eq!(none_kept.status, StatusCode::NOT_FOUND);
    node.deploy("shop", hello_bundle("[\"shop.example.com\"]"))
        .await;
    let no_previous = node
        .admin(Method::POST, "/v1/apps/shop/rollback", op, "")
        .await;
    assert_eq!(no_previous.status, StatusCode::CONFLICT);
    node.deploy("shop", echo_bundle("[\"shop.example.com\"]"))
        .await;
    assert!(is_echo(&node.get("shop.example.com", "/hello").await));

    let back = node
        .admin(Method::POST, "/v1/apps/shop/rollback", op, "")
        .await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.text());
    assert_eq!(back.json()["version"], 1);
    assert_eq!(back.json()["previous"], 2);
    assert_eq!(node.get("shop.example.com", "/hello").await.text(), HELLO);
    // Rolling back again undoes the rollback.
    let forth = node
        .admin(Method::POST, "/v1/apps/shop/rollback", op, "")
        .await;
    assert_eq!(forth.json()["version"], 2);
    assert!(is_echo(&node.get("shop.example.com", "/hello").await));
    // A deploy after a rollback keeps the version it replaces.
    node.deploy("shop", hello_bundle("[\"shop.example.com\"]"))
        .await;
    assert_eq!(
        versions_on_disk(node.dir.path(), "shop"),
        ["app.json", "v2", "v3"]
    );

    let wrong_method = node
        .admin(Method::GET, "/v1/apps/shop/rollback", op, "")
        .await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.headers["allow"], "POST");

    let deleted = node.admin(Method::DELETE, "/v1/apps/shop", op, "").await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        node.get("shop.example.com", "/hello").await.status,
        StatusCode::NOT_FOUND
    );
    let gone = node.admin(Method::GET, "/v1/apps/shop", op, "").await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert!(!node.dir.path().join("state/apps/shop").exists());
    let again = node.admin(Method::DELETE, "/v1/apps/shop", op, "").await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    // Its host is free for another app.
    let other = node
        .deploy("other", echo_bundle("[\"shop.example.com\"]"))
        .await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.text());

    let actions: Vec<(String, String, u64)> = node
        .audit()
        .iter()
        .map(|l| {
            (
                l["action"].as_str().unwrap().to_owned(),
                l["app"].as_str().unwrap().to_owned(),
                l["status"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("rollback", "shop", 404),
        ("deploy", "shop", 201),
        ("rollback", "shop", 409),
        ("deploy", "shop", 200),
        ("rollback", "shop", 200),
        ("rollback", "shop", 200),
        ("deploy", "shop", 200),
        ("delete", "shop", 204),
        ("delete", "shop", 404),
        ("deploy", "other", 201),
    ]
    .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c));
    assert_eq!(actions, expected);
    let events = node.node.deployer().events();
    let shop = &events[&FunctionId::try_from("shop").unwrap()];
    assert_eq!((shop.deploys, shop.rollbacks, shop.deletes), (3, 2, 1));
}

#[tokio::test]
async fn a_restarted_node_restores_every_app_from_its_state_compiling_nothing() {
    let node = TestNode::start().await;
    node.deploy("a", hello_bundle("[\"a.example.com\"]")).await;
    node.deploy("b", echo_bundle("[\"b.example.com\"]")).await;
    // b's previous version stays previous across the restart.
    node.deploy("b", echo_bundle("[\"b.example.com\", \"b2.example.com\"]"))
        .await;
    let dir = node.stop().await;

    let node = TestNode::start_in(dir, None).await;
    let restored = node.node.restored();
    assert_eq!(restored.restored.len(), 2, "{restored:?}");
    assert!(restored.failed.is_empty(), "{restored:?}");
    assert_eq!(restored.compiled(), 0, "{restored:?}");
    assert_eq!(restored.cache_hits(), 2, "{restored:?}");
    assert_eq!(node.get("a.example.com", "/hello").await.text(), HELLO);
    assert!(is_echo(&node.get("b2.example.com", "/hello").await));
    let operator = node.operator.clone();
    let back = node
        .admin(Method::POST, "/v1/apps/b/rollback", Some(&operator), "")
        .await;
    assert_eq!(back.json()["version"], 1, "{}", back.text());
    assert_eq!(
        node.get("b2.example.com", "/hello").await.status,
        StatusCode::NOT_FOUND
    );

    // An app that no longer loads is skipped, the others still restored.
    let dir = node.stop().await;
    std::fs::write(
        dir.path().join("state/apps/a/v1/bundle/c/hello.wasm"),
        b"damaged",
    )
    .unwrap();
    let node = TestNode::start_in(dir, None).await;
    let restored = node.node.restored();
    assert_eq!(restored.restored.len(), 1, "{restored:?}");
    assert_eq!(restored.failed.len(), 1, "{restored:?}");
    assert_eq!(restored.failed[0].0.as_str(), "a");
    assert!(is_echo(&node.get("b.example.com", "/hello").await));
    assert_eq!(
        node.get("a.example.com", "/hello").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn usage_is_per_app_and_logs_need_a_log_book() {
    let ledger = Arc::new(
        Ledger::open(&LedgerSettings {
            location: LedgerLocation::Memory,
            ..LedgerSettings::default()
        })
        .unwrap()
        .expect("enabled"),
    );
    let node = TestNode::start_in(tempfile::tempdir().unwrap(), Some(ledger)).await;
    node.deploy("a", hello_bundle("[\"a.example.com\"]")).await;
    node.deploy("b", echo_bundle("[\"b.example.com\"]")).await;
    for _ in 0..2 {
        node.get("a.example.com", "/hello").await;
    }
    node.get("b.example.com", "/hello").await;
    let a = node.app_token("a");
    // Records reach the ledger once both the guest and the body are done,
    // and the writer commits in batches: poll, bounded.
    let mut rows = serde_json::Value::Null;
    for _ in 0..100 {
        let usage = node
            .admin(Method::GET, "/v1/apps/a/usage", Some(&a), "")
            .await;
        assert_eq!(usage.status, StatusCode::OK, "{}", usage.text());
        rows = usage.json();
        if rows[0]["requests"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    assert_eq!(rows[0]["app"], "a");
    assert_eq!(rows[0]["requests"], 2);
    let foreign = node
        .admin(Method::GET, "/v1/apps/b/usage", Some(&a), "")
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);

    // This node keeps no log book (tests/all/logs.rs has one).
    let logs = node
        .admin(Method::GET, "/v1/apps/a/logs?limit=10", Some(&a), "")
        .await;
    assert_eq!(logs.status, StatusCode::NOT_IMPLEMENTED, "{}", logs.text());
    let foreign = node
        .admin(Method::GET, "/v1/apps/b/logs", Some(&a), "")
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
}
