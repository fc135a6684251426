//! Per-operation cost of `wasi:keyvalue` in process: `get`, `set` and
//! `increment` on the embedded SQLite and on a redis-server on loopback
//! (started here when `redis-server` is installed), through the
//! `kv-draft2` test guest served as `gust serve` serves it
//! (`Server::handle`: routing, limits, fuel, records).
//!
//! Each request does `N` operations on one bucket (`?op=bench&what=OP&n=N`);
//! the cost of one operation is `(T(N) - T(0)) / N`, the request's own cost
//! cancelled out, best of 5 rounds (other work on the machine only adds). Wall time is what a guest waits; CPU time (user + system
//! of this whole process, SQLite's thread included, redis-server's not) is
//! what the host spends, the basis of `metering::KV_OP_FUEL` (at the
//! calibrated ~8.5 fuel per ns). Prints a table and writes
//! `benches/results/kv-TIMESTAMP.{csv,json}` and `kv-latest.{csv,json}`.
//!
//! Run with `cargo bench -p gust-benches --bench key_value` (options after
//! `--`: `--ops N` per request, default 200; `--requests R` per
//! measurement, default 100).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gust_runtime::{App, EngineConfig, GustEngine, Manifest, Server};
use http_body_util::{BodyExt as _, Empty};

/// Measurements of each operation; the fastest counts.
const ROUNDS: u32 = 5;

/// Fuel per nanosecond of CPU on the calibrated machine (`metering`).
const FUEL_PER_NS: f64 = 8.5;

/// This process' CPU time so far (user + system, every thread).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line (11 and 12 here),
    // in clock ticks (100 per second on Linux).
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// A redis-server on a free loopback port, killed on drop.
struct Redis(Child, SocketAddr);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis() -> Option<Redis> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .ok()?
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let redis = Redis(child, addr);
    for _ in 0..500 {
        if TcpStream::connect(addr).is_ok() {
            return Some(redis);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// The `kv-draft2` guest at `/kv`, granted `default` on the backend of
/// `head`, with its data in `dir`.
fn server(engine: &GustEngine, dir: &std::path::Path, head: &str) -> Server {
    let text = format!(
        "{head}\n[data]\ndir = \"{data}\"\n\n[functions.kv]\ncomponent = \"{component}\"\n\
         key_value_stores = [\"default\"]\n\n[[routes]]\npath = \"/kv\"\nfunction = \"kv\"\n",
        data = dir.join("data").display(),
        component = gust_tests::guests::KV_DRAFT2_PATH,
    );
    let path = dir.join("gust.toml");
    std::fs::write(&path, text).expect("writing the manifest");
    let config = Manifest::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let app = App::load_with(engine, config.app, &config.runtime).expect("loading the app");
    Server::new(app, config.runtime.server)
}

async fn get(server: &Server, path: &str) {
    let request = http::Request::get(format!("http://localhost{path}"))
        .body(Empty::<Bytes>::new())
        .expect("a valid request");
    let response = server.handle(request).await;
    let status = response.status();
    let body = response.into_body().collect().await.map(|b| b.to_bytes());
    assert_eq!(status, 200, "{path}: {body:?}");
}

/// Wall and CPU time of `requests` sequential requests to `path`.
async fn measure(server: &Server, path: &str, requests: u32) -> (Duration, Duration) {
    let (wall, cpu) = (Instant::now(), cpu_time());
    for _ in 0..requests {
        get(server, path).await;
    }
    (wall.elapsed(), cpu_time().saturating_sub(cpu))
}

/// `YYYYMMDDTHHMMSSZ` of a Unix time, as the other results are named
/// (days to a civil date: Howard Hinnant's algorithm).
fn timestamp(secs: u64) -> String {
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

struct Row {
    backend: &'static str,
    op: &'static str,
    wall_ns: f64,
    cpu_ns: f64,
}

fn main() {
    let mut ops: u32 = 200;
    let mut requests: u32 = 100;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--ops" => ops = args.next().and_then(|v| v.parse().ok()).unwrap_or(ops),
            "--requests" => requests = args.next().and_then(|v| v.parse().ok()).unwrap_or(requests),
            _ => {} // cargo bench passes `--bench`.
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let engine = GustEngine::new(&EngineConfig::default()).expect("gust's engine");
    let dir = tempfile::tempdir().expect("a temp dir");
    let redis = redis();
    if redis.is_none() {
        eprintln!("redis-server is not installed: Redis skipped");
    }
    let mut backends: Vec<(&'static str, String)> = vec![("sqlite", String::new())];
    if let Some(redis) = &redis {
        backends.push((
            "redis",
            format!(
                "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://{}\"",
                redis.1
            ),
        ));
    }
    let mut rows = Vec::new();
    for (backend, head) in &backends {
        let dir = dir.path().join(backend);
        std::fs::create_dir_all(&dir).expect("a directory");
        let _guard = rt.enter();
        let server = server(&engine, &dir, head);
        rt.block_on(async {
            get(&server, "/kv?op=set&key=bench&value=0123456789abcdef").await;
            for op in ["get", "set", "incr"] {
                // `set` writes `bench.0` to `bench.63`; counters have a key of their own.
                let key = if op == "incr" { "counter" } else { "bench" };
                let with = format!("/kv?op=bench&what={op}&key={key}&n={ops}");
                let without = format!("/kv?op=bench&what={op}&key={key}&n=0");
                // Warm up: instances, connections, SQLite's cache.
                measure(&server, &with, requests / 10 + 1).await;
                // The best of a few rounds: other processes on the
                // machine only ever add time.
                let per = |t: Duration, t0: Duration| {
                    (t.as_nanos() as f64 - t0.as_nanos() as f64) / f64::from(requests * ops)
                };
                let (mut wall_ns, mut cpu_ns) = (f64::MAX, f64::MAX);
                for _ in 0..ROUNDS {
                    let (wall0, cpu0) = measure(&server, &without, requests).await;
                    let (wall, cpu) = measure(&server, &with, requests).await;
                    wall_ns = wall_ns.min(per(wall, wall0));
                    cpu_ns = cpu_ns.min(per(cpu, cpu0));
                }
                rows.push(Row {
                    backend,
                    op,
                    wall_ns,
                    cpu_ns,
                });
            }
        });
    }
    println!("ops per request: {ops}, requests per measurement: {requests}");
    println!(
        "{:<8} {:<6} {:>12} {:>12} {:>10}",
        "backend", "op", "wall us/op", "cpu us/op", "fuel/op"
    );
    let mut csv = String::from("backend,op,wall_ns_per_op,cpu_ns_per_op,fuel_per_op\n");
    let mut json = Vec::new();
    for row in &rows {
        let fuel = (row.cpu_ns * FUEL_PER_NS).max(0.0).round();
        println!(
            "{:<8} {:<6} {:>12.2} {:>12.2} {:>10.0}",
            row.backend,
            row.op,
            row.wall_ns / 1000.0,
            row.cpu_ns / 1000.0,
            fuel
        );
        csv += &format!(
            "{},{},{:.0},{:.0},{fuel:.0}\n",
            row.backend, row.op, row.wall_ns, row.cpu_ns
        );
        json.push(serde_json::json!({
            "backend": row.backend,
            "op": row.op,
            "wall_ns_per_op": row.wall_ns.round(),
            "cpu_ns_per_op": row.cpu_ns.round(),
            "fuel_per_op": fuel,
        }));
    }
    let results = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results");
    let stamp = timestamp(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    );
    let json = serde_json::json!({ "ops_per_request": ops, "requests": requests, "rows": json });
    for name in [format!("kv-{stamp}"), "kv-latest".to_owned()] {
        let write = std::fs::write(results.join(format!("{name}.csv")), &csv).and_then(|_| {
            std::fs::write(
                results.join(format!("{name}.json")),
                serde_json::to_string_pretty(&json).unwrap_or_default(),
            )
        });
        if let Err(e) = write {
            eprintln!("writing {name}: {e}");
        }
    }
}
