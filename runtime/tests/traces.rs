//! Traces, received: `gust serve` with `[telemetry] otlp_endpoint` sends
//! its spans over OTLP/HTTP to a receiver in this test (a hyper server
//! decoding `ExportTraceServiceRequest` with `opentelemetry-proto`), and
//! continues the `traceparent` of the requests it serves into its
//! outbound requests, to an upstream here and in-process.

mod support;

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span};
use prost::Message as _;
use support::Serving;

/// What a test server saw: each request's path and headers, and the
/// bodies posted to it.
#[derive(Default)]
struct Seen {
    requests: Vec<(String, http::HeaderMap)>,
    exports: Vec<Bytes>,
}

/// A plain HTTP server on 127.0.0.1 that records what it is sent and
/// answers 200 (an empty OTLP response is a valid one).
fn listen(runtime: &tokio::runtime::Runtime) -> (SocketAddr, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let recorded = seen.clone();
    runtime.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let recorded = recorded.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let recorded = recorded.clone();
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body.collect().await?.to_bytes();
                        let mut seen = recorded.lock().unwrap();
                        seen.requests
                            .push((parts.uri.path().to_owned(), parts.headers.clone()));
                        if parts.method == http::Method::POST {
                            seen.exports.push(body);
                        }
                        Ok::<_, hyper::Error>(hyper::Response::new(Full::new(Bytes::from_static(
                            b"upstream\n",
                        ))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

/// A GET or POST with a `traceparent`; the status and body.
fn send(addr: SocketAddr, method: &str, path: &str, traceparent: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\ntraceparent: {traceparent}\r\ncontent-length: 0\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"));
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, body.to_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A span's attributes as text (integers and booleans written out).
fn attributes(span: &Span) -> HashMap<String, String> {
    span.attributes
        .iter()
        .filter_map(|kv| {
            let value = match kv.value.as_ref()?.value.as_ref()? {
                Value::StringValue(s) => s.clone(),
                Value::IntValue(i) => i.to_string(),
                Value::BoolValue(b) => b.to_string(),
                other => format!("{other:?}"),
            };
            Some((kv.key.clone(), value))
        })
        .collect()
}

/// The one span named `name` in trace `trace` whose parent is `parent`.
fn child<'a>(spans: &'a [Span], trace: &str, parent: &str, name: &str) -> &'a Span {
    let found: Vec<&Span> = spans
        .iter()
        .filter(|s| hex(&s.trace_id) == trace && hex(&s.parent_span_id) == parent && s.name == name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one `{name}` under {parent} in trace {trace}, among {:#?}",
        spans
            .iter()
            .map(|s| (
                hex(&s.trace_id),
                hex(&s.parent_span_id),
                hex(&s.span_id),
                &s.name
            ))
            .collect::<Vec<_>>()
    );
    found[0]
}

#[test]
fn invocations_capability_calls_and_outbound_requests_are_spans_of_the_callers_trace() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (collector, received) = listen(&runtime);
    let (upstream, upstream_seen) = listen(&runtime);

    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("gust.toml");
    std::fs::write(
        &manifest,
        format!(
            r#"name = "traced"

[telemetry]
otlp_endpoint = "http://{collector}"
service_name = "gust-under-test"

[functions.proxy]
component = "{proxy}"
allowed_outbound_hosts = ["http://{upstream}", "http://counter.gust.internal"]

[functions.counter]
component = "{counter}"
key_value_stores = ["default"]

[functions.echo]
component = "{echo}"

[[routes]]
path = "/proxy"
function = "proxy"

[[routes]]
path = "/counter/{{name}}"
function = "counter"

[[routes]]
path = "/echo"
function = "echo"
"#,
            proxy = gust_tests::guests::OUTBOUND_PROXY_PATH,
            counter = gust_runtime::examples::COUNTER_PATH,
            echo = gust_runtime::examples::ECHO_PATH,
        ),
    )
    .unwrap();
    let gust = Serving::start(&[manifest.to_str().unwrap()]);

    // A request continuing a trace, answered through an upstream.
    let (trace1, parent1) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let (status, _) = send(
        gust.addr,
        "GET",
        &format!("/proxy?url=http://{upstream}/up"),
        &format!("00-{trace1}-{parent1}-01"),
    );
    assert_eq!(status, 200);
    // One through another function of the app, which counts in its store.
    let (trace2, parent2) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    let (status, _) = send(
        gust.addr,
        "POST",
        "/proxy?url=http://counter.gust.internal/counter/visits",
        &format!("00-{trace2}-{parent2}-01"),
    );
    assert_eq!(status, 200);
    // One whose guest reads the `traceparent` it was given.
    let (trace3, parent3) = ("d4cda95b652f4a1592b449d5929fda1b", "6e0c63257de34c92");
    let (status, echoed) = send(
        gust.addr,
        "GET",
        "/echo",
        &format!("00-{trace3}-{parent3}-01"),
    );
    assert_eq!(status, 200);
    let echoed: serde_json::Value = serde_json::from_str(&echoed).unwrap();

    // Shutdown exports what is queued.
    let (clean, log) = gust.terminate();
    assert!(clean, "{log:#?}");
    assert!(
        log.iter().any(|line| line.contains("traces flushed")),
        "{log:#?}"
    );

    let seen = received.lock().unwrap();
    assert!(!seen.exports.is_empty(), "no export received");
    for (path, headers) in &seen.requests {
        assert_eq!(path, "/v1/traces");
        assert_eq!(headers["content-type"], "application/x-protobuf");
    }
    let resources: Vec<ResourceSpans> = seen
        .exports
        .iter()
        .flat_map(|body| {
            ExportTraceServiceRequest::decode(body.clone())
                .unwrap()
                .resource_spans
        })
        .collect();
    for resource in &resources {
        let service = resource
            .resource
            .as_ref()
            .unwrap()
            .attributes
            .iter()
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref()?.value.clone());
        assert_eq!(
            service,
            Some(Value::StringValue("gust-under-test".to_owned()))
        );
    }
    let spans: Vec<Span> = resources
        .into_iter()
        .flat_map(|r| r.scope_spans)
        .flat_map(|s| s.spans)
        .collect();

    // The first request: its invocation continues the caller's trace...
    let invocation = child(&spans, trace1, parent1, "invoke proxy");
    assert_eq!(invocation.kind, SpanKind::Server as i32);
    let attrs = attributes(invocation);
    assert_eq!(attrs["gust.app"], "traced");
    assert_eq!(attrs["gust.function"], "proxy");
    assert_eq!(attrs["http.route"], "/proxy");
    assert_eq!(attrs["http.request.method"], "GET");
    assert_eq!(attrs["gust.outcome"], "ok");
    assert_eq!(attrs["http.response.status_code"], "200");
    assert_eq!(attrs["gust.request_id"].len(), 32, "{attrs:?}");
    assert!(attrs["gust.fuel"].parse::<u64>().unwrap() > 0, "{attrs:?}");
    assert!(invocation.end_time_unix_nano >= invocation.start_time_unix_nano);
    // ... its outbound request is a client span under it ...
    let outbound = child(&spans, trace1, &hex(&invocation.span_id), "GET");
    assert_eq!(outbound.kind, SpanKind::Client as i32);
    let attrs = attributes(outbound);
    assert_eq!(attrs["url.full"], format!("http://{upstream}/up"));
    assert_eq!(attrs["http.response.status_code"], "200");
    assert_eq!(attrs["gust.in_process"], "false");
    // ... whose context the upstream received.
    let upstream_seen = upstream_seen.lock().unwrap();
    assert_eq!(upstream_seen.requests.len(), 1);
    let (path, headers) = &upstream_seen.requests[0];
    assert_eq!(path, "/up");
    assert_eq!(
        headers["traceparent"],
        format!("00-{trace1}-{}-01", hex(&outbound.span_id)).as_str()
    );

    // The second: the called function's invocation is a child of the
    // caller's outbound span, and its store call a child of that.
    let caller = child(&spans, trace2, parent2, "invoke proxy");
    assert_eq!(attributes(caller)["http.request.method"], "POST");
    let call = child(&spans, trace2, &hex(&caller.span_id), "POST");
    assert_eq!(attributes(call)["gust.in_process"], "true");
    let callee = child(&spans, trace2, &hex(&call.span_id), "invoke counter");
    let attrs = attributes(callee);
    assert_eq!(attrs["gust.function"], "counter");
    assert_eq!(attrs["http.route"], "/counter/{name}");
    assert_eq!(attrs["gust.outcome"], "ok");
    assert_eq!(
        attrs["gust.parent_request_id"],
        attributes(caller)["gust.request_id"]
    );
    let increment = child(&spans, trace2, &hex(&callee.span_id), "kv.increment");
    // (The counter's store call in trace 2 is its only capability call.)
    assert_eq!(attributes(increment)["gust.kv.store"], "default");
    // The capability span lies within its invocation.
    assert!(increment.start_time_unix_nano >= callee.start_time_unix_nano);
    assert!(increment.end_time_unix_nano <= callee.end_time_unix_nano);

    // The guest sees its own invocation as the parent, not the client's
    // span: what it passes on continues the invocation.
    let echo = child(&spans, trace3, parent3, "invoke echo");
    assert_eq!(
        echoed["headers"]["traceparent"][0],
        format!("00-{trace3}-{}-01", hex(&echo.span_id)).as_str(),
        "{echoed}"
    );
}

#[test]
fn a_collector_that_is_down_costs_clients_nothing_and_the_log_one_line() {
    // A port nothing listens on.
    let collector = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("gust.toml");
    std::fs::write(
        &manifest,
        format!(
            "name = \"untraced\"\n[telemetry]\notlp_endpoint = \"http://{collector}\"\n\
             [functions.hello]\ncomponent = \"{}\"\n[[routes]]\npath = \"/hello\"\nfunction = \"hello\"\n",
            gust_runtime::examples::HELLO_PATH
        ),
    )
    .unwrap();
    let gust = Serving::start(&[manifest.to_str().unwrap()]);
    for _ in 0..3 {
        let (status, _) = send(
            gust.addr,
            "GET",
            "/hello",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        );
        assert_eq!(status, 200);
    }
    let (clean, log) = gust.terminate();
    assert!(clean, "{log:#?}");
    let failures = log
        .iter()
        .filter(|line| line.contains("exporting traces failed"))
        .count();
    assert_eq!(failures, 1, "{log:#?}");
}
