//! `GET /metrics` on the admin listener: requests of every status and
//! outcome, admission refusals, fuel, the ledger, scraped over HTTP and
//! read by the Prometheus project's own parsers (Python's
//! `prometheus_client`: its strict OpenMetrics parser, and its parser of
//! the text format 0.0.4), then checked against the usage records; and a
//! node's deploys and rollbacks.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use gust_runtime::admin::Admin;
use gust_runtime::manifest::{FunctionId, LedgerLocation, LedgerSettings};
use gust_runtime::telemetry::metrics::{Metrics, Sources};
use http::{Method, Request, StatusCode};

use crate::deploy::{TestNode, echo_bundle, hello_bundle};
use crate::support::manifest::ManifestText;
use crate::support::servers::in_ci;
use crate::support::{self, Reply, TestServer, send};

/// App `shop`: `hello`, `trap`, `work` (a 200,000 fuel budget) and `wait`
/// (never answers: held until its 4 s deadline) with one slot and one
/// queue place for 2 s.
fn manifest() -> ManifestText {
    support::manifest()
        .head("name = \"shop\"")
        .hello()
        .function("trap", "{TRAP}")
        .route("/trap")
        .function("work", "{WORK}")
        .set("fuel = 200000")
        .route("/work")
        .function("wait", "{HOST_WAIT}")
        .set("timeout = \"4s\"\nconcurrency = 1\nqueue = 1\nqueue_timeout = \"2s\"")
        .route("/wait")
}

/// Parses an exposition with `prometheus_client` into its samples: the
/// OpenMetrics parser when `openmetrics`, else the text format 0.0.4 one.
/// Every family's type is checked against its name here too.
const PARSE: &str = r#"
import json, sys
if sys.argv[1] == "openmetrics":
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
else:
    from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append({"family": family.name, "type": family.type, "name": s.name,
                    "labels": s.labels, "value": s.value})
print(json.dumps(out))
"#;

/// One sample as the parser read it.
#[derive(Debug, Clone)]
struct Sample {
    family: String,
    kind: String,
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The samples of `text`, or `None` (after a loud message, outside CI)
/// when Python's `prometheus_client` is not installed.
fn parse(text: &str, openmetrics: bool) -> Option<Vec<Sample>> {
    let hint = "pip install prometheus-client";
    let probe = Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        assert!(
            !in_ci(),
            "Python's prometheus_client is required in CI ({hint})"
        );
        eprintln!("\n*** SKIPPED: Python's prometheus_client is not installed ({hint}) ***\n");
        return None;
    }
    let format = if openmetrics { "openmetrics" } else { "text" };
    let mut child = Command::new("python3")
        .args(["-c", PARSE, format])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write the exposition");
    let out = child.wait_with_output().expect("parser");
    assert!(
        out.status.success(),
        "the {format} parser rejected the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let samples = parsed
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| Sample {
            family: s["family"].as_str().expect("family").to_owned(),
            kind: s["type"].as_str().expect("type").to_owned(),
            name: s["name"].as_str().expect("name").to_owned(),
            labels: serde_json::from_value(s["labels"].clone()).expect("labels"),
            value: s["value"].as_f64().expect("value"),
        })
        .collect();
    Some(samples)
}

/// The samples named `name` whose labels include `labels`.
fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

/// The one sample named `name` with exactly these labels' values.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found = find(samples, name, labels);
    assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
    found[0].value
}

/// `GET /metrics`, with an `Accept` header asking for OpenMetrics first
/// (as Prometheus sends it), or none.
async fn scrape(admin: SocketAddr, openmetrics: bool) -> Reply {
    let mut request = Request::get("/metrics");
    if openmetrics {
        request = request.header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        );
    }
    let reply = send(admin, request.body(Bytes::new()).unwrap())
        .await
        .expect("scrape");
    assert_eq!(reply.status, StatusCode::OK);
    reply
}

/// The requests of a function by (status, outcome), as scraped.
fn requests(samples: &[Sample], function: &str) -> BTreeMap<(String, String), f64> {
    find(
        samples,
        "gust_requests_total",
        &[("app", "shop"), ("function", function)],
    )
    .into_iter()
    .map(|s| {
        (
            (s.labels["status"].clone(), s.labels["outcome"].clone()),
            s.value,
        )
    })
    .collect()
}

/// Scrapes (in OpenMetrics) until the exposition has every line of `lines`,
/// bounded (records reach the sinks just after their responses); then
/// parses it. The polling reads text only: a parser's process per poll
/// would make it too slow to catch a request while it is held.
async fn scrape_until(admin: SocketAddr, lines: &[String]) -> Option<Vec<Sample>> {
    for _ in 0..1000 {
        let text = scrape(admin, true).await.text();
        if lines.iter().all(|line| text.lines().any(|l| l == line)) {
            return parse(&text, true);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the metrics never had the lines {lines:?}");
}

fn sum(samples: &[Sample], name: &str) -> f64 {
    find(samples, name, &[]).iter().map(|s| s.value).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_fuel_admission_and_the_ledger() {
    let server = TestServer::start_with_ledger(
        manifest(),
        Some(LedgerSettings {
            location: LedgerLocation::Memory,
            ..LedgerSettings::default()
        }),
    )
    .await;
    let engine = support::engine().clone();
    let metrics = Metrics::new(Sources {
        apps: server.apps.clone(),
        engine: Some(engine.clone()),
        ledger: server.ledger.clone(),
        deploys: None,
    });
    let shop = FunctionId::try_from("shop").unwrap();
    let app = metrics
        .attach(server.apps.get(&shop).expect("the app"))
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let admin_task = tokio::spawn(
        Admin::new(server.ledger.clone())
            .with_metrics(metrics.clone())
            .serve(listener, async {
                let _ = stopped.await;
            }),
    );

    // Every function is there before its first request, at zero.
    let Some(before) = parse(&scrape(admin, true).await.text(), true) else {
        return;
    };
    for function in ["hello", "trap", "work", "wait"] {
        let labels = [("app", "shop"), ("function", function)];
        assert_eq!(
            value(&before, "gust_request_duration_seconds_count", &labels),
            0.0
        );
        assert_eq!(value(&before, "gust_fuel_consumed_total", &labels), 0.0);
    }

    let mut replies = Vec::new();
    for _ in 0..3 {
        replies.push(server.get("/hello").await);
    }
    for _ in 0..2 {
        replies.push(server.get("/trap").await);
    }
    replies.push(server.get("/work?n=10000000").await);
    replies.push(server.get("/work?n=10").await);
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses, [200, 200, 200, 500, 500, 500, 200]);
    // No route: no function, so counted nowhere.
    assert_eq!(server.get("/nowhere").await.status, StatusCode::NOT_FOUND);

    // `wait`: one request takes the slot, one the queue place; a third is
    // refused at once (queue full), the queued one after 2 s (timeout).
    let addr = server.addr;
    let get_wait = move || {
        tokio::spawn(async move {
            send(addr, Request::get("/wait").body(Bytes::new()).unwrap())
                .await
                .expect("/wait")
        })
    };
    let wait = [("app", "shop"), ("function", "wait")];
    let held = get_wait();
    let line = |name: &str, labels: &str, value: f64| format!("{name}{{{labels}}} {value}");
    let wait_labels = r#"app="shop",function="wait""#;
    let active = format!(r#"{wait_labels},state="active""#);
    scrape_until(admin, &[line("gust_instances", &active, 1.0)]).await;
    let queued = get_wait();
    scrape_until(admin, &[line("gust_admission_queued", wait_labels, 1.0)]).await;
    let refused = server.get("/wait").await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        queued.await.unwrap().status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(held.await.unwrap().status, StatusCode::GATEWAY_TIMEOUT);

    // Every invocation's record (the refused ones have none).
    let mut records = Vec::new();
    for reply in &replies {
        records.push(server.record(&reply.request_id()).await);
    }
    records.push(server.record_of("wait").await);
    let ledger = server.ledger.clone().expect("ledger");
    tokio::task::spawn_blocking({
        let ledger = ledger.clone();
        move || ledger.flush()
    })
    .await
    .unwrap();

    let total = records.len() as f64;
    // Every record counted: by the ledger, and by the metrics' own sink.
    let mut lines = vec![format!("gust_ledger_records_written_total {total}")];
    for function in ["hello", "trap", "work", "wait"] {
        let n = records
            .iter()
            .filter(|r| r.function.as_str() == function)
            .count();
        let labels = format!(r#"app="shop",function="{function}""#);
        lines.push(line(
            "gust_request_duration_seconds_count",
            &labels,
            n as f64,
        ));
    }
    let samples = scrape_until(admin, &lines).await.expect("parsed before");

    // Requests by status and outcome: one per record.
    assert_eq!(sum(&samples, "gust_requests_total"), total);
    let pair = |status: &str, outcome: &str| (status.to_owned(), outcome.to_owned());
    assert_eq!(
        requests(&samples, "hello"),
        BTreeMap::from([(pair("200", "ok"), 3.0)])
    );
    assert_eq!(
        requests(&samples, "trap"),
        BTreeMap::from([(pair("500", "trap"), 2.0)])
    );
    assert_eq!(
        requests(&samples, "work"),
        BTreeMap::from([(pair("200", "ok"), 1.0), (pair("500", "out_of_fuel"), 1.0)])
    );
    assert_eq!(
        requests(&samples, "wait"),
        BTreeMap::from([(pair("504", "timeout"), 1.0)])
    );
    let requests_family = find(&samples, "gust_requests_total", &[]);
    assert!(
        requests_family
            .iter()
            .all(|s| s.kind == "counter" && s.family == "gust_requests")
    );

    // Per function: the histogram counts every invocation, its sum is their
    // durations, and the fuel is the records' to the unit.
    for function in ["hello", "trap", "work", "wait"] {
        let labels = [("app", "shop"), ("function", function)];
        let mine: Vec<_> = records
            .iter()
            .filter(|r| r.function.as_str() == function)
            .collect();
        let count = value(&samples, "gust_request_duration_seconds_count", &labels);
        assert_eq!(count, mine.len() as f64, "{function}");
        assert_eq!(
            value(
                &samples,
                "gust_request_duration_seconds_bucket",
                &[labels[0], labels[1], ("le", "+Inf")]
            ),
            count
        );
        let seconds: f64 = mine.iter().map(|r| r.duration.as_secs_f64()).sum();
        let sum = value(&samples, "gust_request_duration_seconds_sum", &labels);
        assert!(
            (sum - seconds).abs() < 1e-6,
            "{function}: {sum} vs {seconds}"
        );
        let fuel: u64 = mine.iter().map(|r| r.fuel_consumed).sum();
        assert!(fuel > 0, "{function}");
        assert_eq!(
            value(&samples, "gust_fuel_consumed_total", &labels),
            fuel as f64
        );
        assert_eq!(value(&samples, "gust_function_resident", &labels), 1.0);
    }
    // The timeout took at least its 4 s deadline.
    assert!(value(&samples, "gust_request_duration_seconds_sum", &wait) >= 4.0);
    assert!(
        value(
            &samples,
            "gust_fuel_consumed_total",
            &[("function", "work")]
        ) >= 200_000.0
    );

    // Admission: both refusals, nothing waiting or running any more.
    let refused = |reason| {
        value(
            &samples,
            "gust_admission_refused_total",
            &[wait[0], wait[1], ("reason", reason)],
        )
    };
    assert_eq!(
        (refused("queue_full"), refused("queue_timeout")),
        (1.0, 1.0)
    );
    assert_eq!(value(&samples, "gust_admission_queued", &wait), 0.0);
    assert_eq!(
        value(
            &samples,
            "gust_instances",
            &[wait[0], wait[1], ("state", "active")]
        ),
        0.0
    );
    assert_eq!(
        value(
            &samples,
            "gust_instances",
            &[wait[0], wait[1], ("state", "idle")]
        ),
        0.0
    );

    // The ledger wrote every record, dropped none, has none waiting.
    assert_eq!(
        value(&samples, "gust_ledger_records_dropped_total", &[]),
        0.0
    );
    assert_eq!(value(&samples, "gust_ledger_records_queued", &[]), 0.0);
    assert_eq!(ledger.stats().written() as f64, total);

    // The app's load, as its report tells it.
    let report = app.load_report();
    let shop_only = [("app", "shop")];
    assert_eq!(
        value(&samples, "gust_compile_cache_hits_total", &shop_only),
        report.cache_hits as f64
    );
    assert_eq!(
        value(&samples, "gust_compile_cache_compiled_total", &shop_only),
        report.compiled as f64
    );
    if engine.is_pooling() {
        let slots = find(&samples, "gust_pool_slots_in_use", &[("engine", "p2")]);
        assert_eq!(slots.len(), 5, "{slots:?}");
    }
    assert_eq!(
        find(&samples, "gust_guest_log_bytes_dropped_total", &[]).len(),
        1
    );

    // Without OpenMetrics in `Accept`: the text format 0.0.4, the same counts.
    let text = scrape(admin, false).await;
    assert_eq!(
        text.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let plain = parse(&text.text(), false).expect("parsed before");
    assert_eq!(requests(&plain, "work"), requests(&samples, "work"));
    let open = scrape(admin, true).await;
    assert_eq!(
        open.headers["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(open.text().ends_with("# EOF\n"));

    let _ = stop.send(());
    admin_task.await.unwrap();
}

/// A node's `/metrics`: its deploys, failures and rollbacks per app, and
/// the invocations of every version it loaded (deployed or rolled back
/// to), counted through its load hook.
#[tokio::test]
async fn a_node_counts_deploys_rollbacks_and_every_loaded_version() {
    let node = TestNode::start().await;
    let host = "[\"shop.example.com\"]";
    for bundle in [hello_bundle(host), echo_bundle(host)] {
        assert!(node.deploy("shop", bundle).await.status.is_success());
    }
    let refused = node.deploy("shop", b"not a bundle".to_vec()).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let operator = node.operator.clone();
    let back = node
        .admin(Method::POST, "/v1/apps/shop/rollback", Some(&operator), "")
        .await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.text());
    for _ in 0..2 {
        let reply = node.get("shop.example.com", "/hello").await;
        assert_eq!(reply.status, StatusCode::OK);
    }

    let admin = node.node.admin_addr();
    let hello = [("app", "shop"), ("function", "hello")];
    let count = r#"gust_request_duration_seconds_count{app="shop",function="hello"} 2"#;
    let Some(samples) = scrape_until(admin, &[count.to_owned()]).await else {
        return;
    };
    let shop = [("app", "shop")];
    let deploys = |result| {
        value(
            &samples,
            "gust_deploys_total",
            &[shop[0], ("result", result)],
        )
    };
    assert_eq!((deploys("ok"), deploys("failed")), (2.0, 1.0));
    assert_eq!(value(&samples, "gust_rollbacks_total", &shop), 1.0);
    assert_eq!(
        requests(&samples, "hello"),
        BTreeMap::from([(("200".into(), "ok".into()), 2.0)])
    );
    // The echo version was never invoked; its series stays, at zero.
    let echo = [("app", "shop"), ("function", "echo")];
    assert_eq!(
        value(&samples, "gust_request_duration_seconds_count", &echo),
        0.0
    );
    // Two components compiled on a cold cache, the rolled-back one taken
    // from it.
    assert_eq!(
        value(&samples, "gust_compile_cache_compiled_total", &shop),
        2.0
    );
    assert_eq!(value(&samples, "gust_compile_cache_hits_total", &shop), 1.0);
    // Only the version serving is scraped live.
    assert_eq!(find(&samples, "gust_instances", &echo).len(), 0);
    assert_eq!(find(&samples, "gust_instances", &hello).len(), 2);
    node.stop().await;
}
