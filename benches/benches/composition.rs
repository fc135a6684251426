//! Criterion benchmark of in-process composition: one function calling
//! another of the same app through `http://NAME.gust.internal` (no
//! socket: `Function::invoke` of the callee from the caller's outbound
//! hook) against the same call over loopback HTTP through gust's own
//! listener. The caller is the `outbound-proxy` test guest, the callee the
//! `hello` example; both run as `gust serve` runs them (`Server::handle`
//! for the outer request, with routing, limits, fuel and records).
//!
//! Four timings: `direct` (`GET /hello`, the callee alone), `caller_only`
//! (the proxy with a request its allow-list denies: the caller's own
//! invocation, no call), `in_process` (`GET
//! /proxy?url=http://hello.gust.internal/hello`) and `loopback` (`GET
//! /proxy?url=http://127.0.0.1:PORT/hello`). What a call adds to its
//! caller is `in_process - caller_only` or `loopback - caller_only` (the
//! callee's own invocation, `direct`, included in both). Run with
//! `cargo bench -p gust-benches --bench composition`.

use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use gust_runtime::manifest::{ComponentSource, FunctionId, FunctionSpec, ServerSettings};
use gust_runtime::{App, AppSpec, EngineConfig, GustEngine, Server};
use http_body_util::{BodyExt as _, Empty};

fn runtime() -> tokio::runtime::Runtime {
    // Multi-threaded: the loopback call needs gust's listener to accept
    // while the caller waits.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("building a tokio runtime")
}

/// `hello` at `/hello` and the proxy at `/proxy`, allowed to call `hello`
/// in process and gust's own listener at `port`.
fn app(engine: &GustEngine, port: u16) -> App {
    let id = |s: &str| FunctionId::try_from(s.to_owned()).expect("a valid id");
    let hello = FunctionSpec::new(
        id("hello"),
        ComponentSource::Embedded(gust_runtime::examples::HELLO),
    );
    let mut proxy = FunctionSpec::new(
        id("proxy"),
        ComponentSource::Embedded(gust_tests::guests::OUTBOUND_PROXY),
    );
    proxy.grants.allowed_outbound_hosts = vec![
        "http://hello.gust.internal".to_owned(),
        format!("http://127.0.0.1:{port}"),
    ];
    let routes = vec![
        ("/hello".parse().expect("a route"), None, 0),
        ("/proxy".parse().expect("a route"), None, 1),
    ];
    let spec = AppSpec::new(vec![hello, proxy], routes).expect("a valid app");
    App::load(engine, spec, &gust_runtime::cache::CacheLocation::Disabled).expect("loading")
}

async fn get(server: &Server, (path, status): &(String, u16)) -> Bytes {
    let request = http::Request::get(format!("http://localhost{path}"))
        .body(Empty::<Bytes>::new())
        .expect("a valid request");
    let response = server.handle(request).await;
    assert_eq!(response.status(), *status, "{path}");
    response
        .into_body()
        .collect()
        .await
        .map(|body| body.to_bytes())
        .unwrap_or_default()
}

fn benches(c: &mut Criterion) {
    let rt = runtime();
    let engine = GustEngine::new(&EngineConfig::default()).expect("gust's engine");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("a loopback port");
    let port = listener.local_addr().expect("bound").port();
    let app = app(&engine, port);
    let settings = ServerSettings::default();
    // One server listens (the loopback call's target), one handles the
    // outer requests in process; both serve the same app.
    let listening = Server::new(app.clone(), settings);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = rt.spawn(listening.serve(listener, async {
        let _ = stopped.await;
    }));
    let server = Server::new(app, settings);

    let cases = [
        ("direct", ("/hello".to_owned(), 200)),
        (
            "caller_only",
            ("/proxy?url=http://denied.example/hello".to_owned(), 502),
        ),
        (
            "in_process",
            (
                "/proxy?url=http://hello.gust.internal/hello".to_owned(),
                200,
            ),
        ),
        (
            "loopback",
            (format!("/proxy?url=http://127.0.0.1:{port}/hello"), 200),
        ),
    ];
    let expected = rt.block_on(get(&server, &cases[0].1));
    for (name, case) in &cases {
        let body = rt.block_on(get(&server, case));
        if case.1 == 200 {
            assert_eq!(body, expected, "{name} answered what hello answers");
        }
    }

    let mut group = c.benchmark_group("composition");
    group
        .sample_size(50)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    for (name, case) in &cases {
        group.bench_function(*name, |b| {
            b.to_async(&rt).iter(|| get(&server, case));
        });
    }
    group.finish();
    let _ = stop.send(());
    let _ = rt.block_on(serving);
}

criterion_group!(composition, benches);
criterion_main!(composition);
