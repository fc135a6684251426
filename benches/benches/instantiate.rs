//! Criterion benchmarks of one invocation of the `hello` example component,
//! in-process, for each way of instantiating it (see [`gust_benches::Mode`]):
//! (a) compile every time, (b) deserialize a serialized artifact, (c)
//! `Linker::instantiate_async` without pre-instantiation, (d) `ProxyPre` with
//! the on-demand allocator, (e) `ProxyPre` with the pooling allocator and
//! copy-on-write memory (gust's default).
//!
//! Two groups: `instantiate` (a fresh store and instance, then dropped) and
//! `instantiate_and_handle` (the same plus a `GET /hello` through
//! `wasi:http/incoming-handler` with the response body read). Run with
//! `cargo bench -p gust-benches --bench instantiate`, or through `bench.sh`,
//! which also exports the samples and plots them.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use gust_benches::{Bench, HELLO_BODY, Mode};

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
