//! Criterion benchmarks of one invocation of the `hello` example component,
//! in-process, for each way of instantiating it (see [`gust_benches::Mode`]):
//! (a) compile every time, (b) deserialize a serialized artifact, (c)
//! `Linker::instantiate_async` without pre-instantiation, (d) `ProxyPre` with
//! the on-demand allocator, (e) `ProxyPre` with the pooling allocator and
//! copy-on-write memory (gust's default).
//!
//! Two groups: `instantiate` (a fresh store and instance, then dropped) and
//! `instantiate_and_handle` (the same plus a `GET /hello` through
//! `wasi:http/incoming-handler` with the response body read). A third,
//! `by_component`, times instantiate + handle in gust's mode (e) for other
//! components next to hello: `raw` (the `wasi` crate alone, no gust-sdk),
//! `minimal` (the fewest host calls a response needs: the floor), and the
//! file `GUST_BENCH_COMPONENT` names, if set (any `wasi:http/proxy`
//! component that answers `GET /hello` with 200). A fourth, `gust`, times
//! what gust really runs for `GET /hello`: `Server::handle`, in-process
//! (routing, admission, the store with its limiter, fuel portions, epoch
//! callback and host-work call hook, the usage record), next to mode (e)'s
//! bare instantiate + handle on the same engine settings. Run with
//! `cargo bench -p gust-benches --bench instantiate`, or through `bench.sh`,
//! which also exports the samples and plots them.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use gust_benches::{Bench, HELLO_BODY, Mode};
use gust_runtime::Kind;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building a tokio runtime")
}

fn benches(c: &mut Criterion) {
    let rt = runtime();
    let prepared: Vec<Bench> = Mode::ALL
        .iter()
        .map(|&mode| {
            let bench = Bench::new(mode, gust_runtime::examples::HELLO)
                .unwrap_or_else(|e| panic!("preparing {mode}: {e:?}"));
            // Check once, outside the timing, that the mode really works.
            let body = rt
                .block_on(bench.invoke())
                .unwrap_or_else(|e| panic!("invoking in {mode}: {e:?}"));
            assert_eq!(&body[..], HELLO_BODY, "{mode} answered the wrong body");
            bench
        })
        .collect();

    let mut group = c.benchmark_group("instantiate");
    for bench in &prepared {
        configure(&mut group, bench.mode());
        group.bench_function(bench.mode().name(), |b| {
            b.to_async(&rt)
                .iter(|| async { bench.instantiate_only().await.expect("instantiating") })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("instantiate_and_handle");
    for bench in &prepared {
        configure(&mut group, bench.mode());
        group.bench_function(bench.mode().name(), |b| {
            b.to_async(&rt)
                .iter(|| async { bench.invoke().await.expect("invoking") })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("by_component");
    configure(&mut group, Mode::PrePooling);
    for (name, bytes, expected, kind) in components() {
        let bench = Bench::on_engine(Mode::PrePooling, bytes, kind)
            .unwrap_or_else(|e| panic!("preparing {name}: {e:?}"));
        let body = rt
            .block_on(bench.invoke())
            .unwrap_or_else(|e| panic!("invoking {name}: {e:?}"));
        if let Some(expected) = expected {
            assert_eq!(&body[..], expected, "{name} answered the wrong body");
        }
        group.bench_function(name, |b| {
            b.to_async(&rt)
                .iter(|| async { bench.invoke().await.expect("invoking") })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("gust");
    configure(&mut group, Mode::PrePooling);
    let bare = Bench::new(Mode::PrePooling, gust_runtime::examples::HELLO)
        .unwrap_or_else(|e| panic!("preparing the bare mode: {e:?}"));
    group.bench_function("bare_pre_pooling", |b| {
        b.to_async(&rt)
            .iter(|| async { bare.invoke().await.expect("invoking") })
    });
    let server = rt.block_on(gust_benches::hello_server());
    let body = rt.block_on(gust_benches::handle_hello(&server));
    assert_eq!(
        &body[..],
        HELLO_BODY,
        "Server::handle answered the wrong body"
    );
    group.bench_function("server_handle", |b| {
        b.to_async(&rt)
            .iter(|| async { gust_benches::handle_hello(&server).await })
    });
    group.finish();
}

/// A component of the `by_component` group: a name, the bytes, the body
/// expected for `GET /hello` (none for a component given by path) and the
/// engine flavour it runs on.
type Timed = (String, &'static [u8], Option<&'static [u8]>, Kind);

/// The components of the `by_component` group. `hello_cm_async` is hello
/// on gust's WASIp3 engine, which has the component model's async support:
/// what that support would cost a p2 call (gust runs p2 components on an
/// engine without it).
fn components() -> Vec<Timed> {
    use gust_runtime::examples::{HELLO, MINIMAL, RAW};
    let default = || Kind::P2;
    let mut out = vec![
        ("hello".to_owned(), HELLO, Some(HELLO_BODY), default()),
        (
            "hello_cm_async".to_owned(),
            HELLO,
            Some(HELLO_BODY),
            Kind::P3,
        ),
        (
            "raw".to_owned(),
            RAW,
            Some(&b"raw wasi:http component saw GET /hello\n"[..]),
            default(),
        ),
        ("minimal".to_owned(), MINIMAL, Some(HELLO_BODY), default()),
    ];
    if let Some(path) = std::env::var_os("GUST_BENCH_COMPONENT") {
        let path = std::path::PathBuf::from(path);
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("reading GUST_BENCH_COMPONENT {}: {e}", path.display()));
        let name = path.file_stem().map_or_else(
            || "component".to_owned(),
            |s| s.to_string_lossy().into_owned(),
        );
        // Criterion keeps the bytes borrowed for the whole run.
        out.push((name, bytes.leak(), None, default()));
    }
    out
}

/// Compiling takes hundreds of milliseconds an iteration: fewer samples
/// keep the whole run within a few minutes on two cores.
///
/// A group's own settings win over criterion's command line, so these two
/// come from the environment instead (`bench.sh` sets them for quick runs):
/// `GUST_BENCH_SAMPLES` (samples per mode; compiling takes at most 10) and
/// `GUST_BENCH_MEASUREMENT_SECS` (seconds per mode; compiling gets twice as
/// long). `--warm-up-time` works on the command line as usual.
fn configure(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    mode: Mode,
) {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<f64>().ok());
    let samples = env("GUST_BENCH_SAMPLES").map_or(50, |n| (n as usize).max(10));
    let secs = env("GUST_BENCH_MEASUREMENT_SECS")
        .filter(|s| *s > 0.0)
        .unwrap_or(4.0);
    if mode == Mode::Compile {
        group
            .sample_size(samples.min(10))
            .measurement_time(Duration::from_secs_f64(secs * 2.0));
    } else {
        group
            .sample_size(samples)
            .measurement_time(Duration::from_secs_f64(secs));
    }
}

criterion_group! {
    name = instantiate;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(instantiate);
