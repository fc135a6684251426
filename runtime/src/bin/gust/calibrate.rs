//! `gust calibrate`: how much wall time a unit of fuel is on this machine.
//!
//! Fuel is exact and machine-independent; prices are easier to reason about
//! in CPU time. This runs the reference workload (the built-in `work`
//! example: rounds of an FNV-1a hash, pure computation) at several sizes,
//! one invocation at a time, takes the median wall time of each size, and
//! fits `time = fixed + ns_per_fuel × fuel` by least squares. The slope is
//! the machine's nanoseconds per fuel; its inverse, fuel per CPU-millisecond,
//! turns a per-CPU-ms price into a `per_million_fuel` price:
//! `per_million_fuel = price_per_cpu_ms × 10^6 / fuel_per_cpu_ms`.

#[cfg(feature = "builtin-examples")]
pub(crate) fn run(runs: usize) -> anyhow::Result<()> {
    imp::run(runs.max(1))
}

#[cfg(not(feature = "builtin-examples"))]
pub(crate) fn run(_runs: usize) -> anyhow::Result<()> {
    anyhow::bail!("gust calibrate needs the built-in examples (feature `builtin-examples`)")
}

#[cfg(feature = "builtin-examples")]
mod imp {
    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::{BodyExt as _, Empty};

    use gust_runtime::app::App;
    use gust_runtime::engine::{EngineConfig, GustEngine};
    use gust_runtime::manifest::{AppSpec, ComponentSource, FunctionId, FunctionSpec, Limits};
    use gust_runtime::metering::{InvocationRecord, Outcome};
    use gust_runtime::server::Server;

    /// Rounds of the hash loop per workload size.
    const SIZES: [u64; 5] = [1_000, 100_000, 400_000, 1_600_000, 6_400_000];

    pub(super) fn run(runs: usize) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        runtime.block_on(measure(runs))
    }

    async fn measure(runs: usize) -> anyhow::Result<()> {
        let engine = GustEngine::new(&EngineConfig::default())?;
        let function = FunctionSpec {
            limits: Limits {
                fuel: u64::MAX / 2,
                timeout: Duration::from_secs(60),
                ..Limits::default()
            },
            ..FunctionSpec::new(
                FunctionId::try_from("work").map_err(anyhow::Error::msg)?,
                ComponentSource::Embedded(gust_runtime::examples::WORK),
            )
        };
        let route = "/work".parse().map_err(|e| anyhow::anyhow!("{e}"))?;
        let spec = AppSpec::new(vec![function], vec![(route, None, 0)])?;
        let (tx, rx) = std::sync::mpsc::channel::<InvocationRecord>();
        let tx = std::sync::Mutex::new(tx);
        let cache = gust_runtime::cache::CacheLocation::Default;
        let app = App::load(&engine, spec, &cache)?.on_invocation(move |r| {
            if let Ok(tx) = tx.lock() {
                let _ = tx.send(r.clone());
            }
        })?;
        let server = Server::new(app, gust_runtime::manifest::ServerSettings::default());

        println!("gust calibrate: `work` example, {runs} runs per size, median wall time");
        println!(
            "{:>10} {:>14} {:>12} {:>10}",
            "rounds", "fuel", "median", "ns/fuel"
        );
        let mut points = Vec::new();
        for n in SIZES {
            let mut samples = Vec::with_capacity(runs);
            let mut fuel = 0;
            // One warm-up run, then the timed ones.
            for i in 0..=runs {
                let record = invoke(&server, n, &rx).await?;
                anyhow::ensure!(
                    record.outcome == Outcome::Ok,
                    "workload failed: {:?}",
                    record.outcome
                );
                fuel = record.fuel_consumed;
                if i > 0 {
                    samples.push(record.duration);
                }
            }
            samples.sort();
            let median = samples[samples.len() / 2];
            let ns = median.as_nanos() as f64;
            println!(
                "{:>10} {:>14} {:>12} {:>10.3}",
                n,
                fuel,
                format!("{median:.2?}"),
                ns / fuel as f64
            );
            points.push((fuel as f64, ns));
        }
        let (slope, intercept) = least_squares(&points);
        println!();
        println!("ns per fuel (slope):         {slope:.4}");
        println!("fuel per CPU-millisecond:    {:.0}", 1e6 / slope);
        println!("fixed cost per invocation:   {:.1} µs", intercept / 1e3);
        println!(
            "price in fuel terms:         per_million_fuel = price_per_cpu_ms × 10^6 / {:.0}",
            1e6 / slope
        );
        Ok(())
    }

    async fn invoke(
        server: &Server,
        n: u64,
        records: &std::sync::mpsc::Receiver<InvocationRecord>,
    ) -> anyhow::Result<InvocationRecord> {
        let request = http::Request::get(format!("/work?n={n}"))
            .header(http::header::HOST, "calibrate")
            .body(Empty::<Bytes>::new())?;
        // The path every request takes (routing, limits, the invocation),
        // in-process.
        let response = server.handle(request).await;
        if response.status() != http::StatusCode::OK {
            anyhow::bail!("the workload answered {}", response.status());
        }
        response.into_body().collect().await?;
        // The record is complete once the guest and its body are done.
        tokio::task::block_in_place(|| records.recv_timeout(Duration::from_secs(60)))
            .map_err(|_| anyhow::anyhow!("no usage record"))
    }

    /// Fits `y = slope × x + intercept`.
    fn least_squares(points: &[(f64, f64)]) -> (f64, f64) {
        let n = points.len() as f64;
        let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
        let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
        let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
        let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
        let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        (slope, mean_y - slope * mean_x)
    }
}
