//! `coldstart`: how long a newly deployed function takes to answer its
//! first request, and how much longer that is than a steady-state request.
//!
//! ```text
//! coldstart [--functions N] [--requests K] [--process-functions P]
//!           [--breakdown B] [--components hello,p3-hello,python,js,go,c]
//!           [--p3-hello PATH] [--component-dir DIR]
//!           [--gust PATH] [--out-dir DIR] [--stamp STAMP]
//! ```
//!
//! Every function is a distinct copy of one example component (one extra
//! custom section each, as `startup/make-1000.py` makes them), so nothing
//! compiled or cached is shared between functions. Each component its own
//! rows (column `component`): `hello`, the WASIp2 Rust hello
//! (`gust_runtime::examples::HELLO`), `p3-hello`, the WASIp3 one
//! (`gust_runtime::examples::P3_HELLO`, from `guest-examples/p3-hello`), and
//! any other name NAME read from `--component-dir`/NAME.wasm: the hellos
//! `benches/e2e/run.sh` builds into `benches/.tools/components/` (`python`,
//! `js`: componentize-py / componentize-js over the raw bindings; `go`, `c`:
//! guest-examples/go/hello with a no-op wasi:logging composed in, and
//! guest-examples/c/hello; `BUILD_ONLY=1 benches/e2e/run.sh` builds them),
//! which answer a body starting with `Hello`.
//! Three parts:
//!
//! * **in_process** (N functions, cold then warm): one gust engine, as in a
//!   running `gust serve`; per function, `App::load` of an app holding just
//!   that function through the on-disk compile cache, a `gust_runtime::Server`
//!   on 127.0.0.1:0, the first `GET /f` over real HTTP on loopback, then K
//!   more (a new connection each, like the first). The **cold** pass starts
//!   on an empty cache directory, the **warm** pass deploys the same
//!   functions again (new `App`s, the cache now filled).
//! * **process** (P functions, cold then warm): the real `gust serve
//!   MANIFEST --listen 127.0.0.1:PORT --no-ledger --cache-dir DIR` spawned,
//!   polled every millisecond until the first 200, then K requests.
//! * **breakdown** (B functions, warm cache, same engine; every WASIp2
//!   component, the steps are those of a WASIp2 `ProxyPre`, over WASI and
//!   `wasi:http` alone): the steps of a
//!   deployment and its first request timed one by one: reading the
//!   component, the cache key, the cache file's read / SHA-256 check /
//!   deserialize, gust's whole cache load, the linker, `instantiate_pre`, then
//!   the first and later instantiations and handler calls with their page
//!   faults and the fuel each used (instantiation runs the guest's start
//!   functions: a language runtime's initialisation).
//!
//! Rows go to `DIR/coldstart-STAMP.{csv,json}` (and `coldstart-latest.*`),
//! one per (mode, cache, component, function); the breakdown to
//! `DIR/coldstart-breakdown-STAMP.csv` and the JSON's `breakdown`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use gust_benches::support::{
    CsvRow, http_get, load_average, median, minor_faults, ms, opt, quantile, results_dir,
    utc_stamp, write_csv, write_json,
};
use gust_benches::{HELLO_BODY, handle, linker, store};
use gust_runtime::cache::{CacheLocation, CompileCache};
use gust_runtime::{App, EngineConfig, GustEngine, Manifest, Server};
use serde::Serialize;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

#[derive(Parser, Debug)]
#[command(
    about = "Cold start of newly deployed functions: deploy -> first response, vs steady state"
)]
struct Args {
    /// Functions deployed in-process (each cold, then warm).
    #[arg(long, default_value_t = 12)]
    functions: usize,
    /// Steady-state requests per deployed function.
    #[arg(long, default_value_t = 30)]
    requests: usize,
    /// Functions served by a spawned `gust serve` process (each cold, then
    /// warm); 0 skips the process variant.
    #[arg(long, default_value_t = 4)]
    process_functions: usize,
    /// Functions whose warm deployment is broken down step by step.
    #[arg(long, default_value_t = 12)]
    breakdown: usize,
    /// The `gust` binary [default: $CARGO_TARGET_DIR/release/gust, else
    /// target/release/gust].
    #[arg(long)]
    gust: Option<PathBuf>,
    /// The example components deployed, each as its own rows: `hello`
    /// (WASIp2) and `p3-hello` (WASIp3), or NAME for
    /// `--component-dir`/NAME.wasm (e.g. python, js, go, c).
    #[arg(long, value_delimiter = ',', default_value = "hello,p3-hello")]
    components: Vec<String>,
    /// Where the other components are [default:
    /// benches/.tools/components, where benches/e2e/run.sh builds them].
    #[arg(long)]
    component_dir: Option<PathBuf>,
    /// The WASIp3 hello's component file [default: the build script's,
    /// `gust_runtime::examples::P3_HELLO`].
    #[arg(long)]
    p3_hello: Option<PathBuf>,
    /// Where the rows go [default: benches/results].
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Names the output files [default: now, UTC, YYYYMMDDTHHMMSSZ].
    #[arg(long)]
    stamp: Option<String>,
}

/// One deployed function, measured.
#[derive(Debug, Clone, Serialize)]
struct Row {
    /// `in_process` or `process`.
    mode: &'static str,
    /// `cold` (empty compile cache) or `warm` (filled).
    cache: &'static str,
    function: usize,
    /// From the start of the deployment (`App::load`, or spawning the
    /// process) to the first response's body read.
    deploy_to_first_ms: f64,
    /// `App::load` (in-process only).
    load_ms: Option<f64>,
    /// From the start of the deployment to the server listening
    /// (in-process: load + bind; process: the first connection accepted
    /// but not answered, if any: gust binds after loading, so usually none).
    ready_ms: Option<f64>,
    /// The first request alone: connect, send, response body read.
    first_ms: f64,
    /// The K requests after it, measured the same way.
    steady_median_ms: f64,
    steady_p10_ms: f64,
    steady_p90_ms: f64,
    /// `first_ms - steady_median_ms`: what the first request pays extra.
    first_minus_steady_ms: f64,
    /// `deploy_to_first_ms - steady_median_ms`: what a new deployment's
    /// first response pays extra, load included.
    deploy_minus_steady_ms: f64,
    /// Minor page faults of this process during the load (in-process).
    load_faults: Option<u64>,
    /// ... during the first request (client side included).
    first_faults: Option<u64>,
    /// ... per steady-state request (client side included).
    steady_faults_per_request: Option<f64>,
    /// Connection attempts until the first 200 (process only).
    polls: Option<u32>,
    /// Components compiled / taken from the cache (in-process).
    compiled: Option<u64>,
    cache_hits: Option<u64>,
    requests: usize,
    /// The deployed example: `hello`, `p3-hello` or another component's
    /// name (last, so the CSV's earlier columns stay where they were).
    component: &'static str,
}

impl CsvRow for Row {
    fn header() -> &'static [&'static str] {
        &[
            "mode",
            "cache",
            "function",
            "deploy_to_first_ms",
            "load_ms",
            "ready_ms",
            "first_ms",
            "steady_median_ms",
            "steady_p10_ms",
            "steady_p90_ms",
            "first_minus_steady_ms",
            "deploy_minus_steady_ms",
            "load_faults",
            "first_faults",
            "steady_faults_per_request",
            "polls",
            "compiled",
            "cache_hits",
            "requests",
            "component",
        ]
    }

    fn values(&self) -> Vec<String> {
        let int = |v: Option<u64>| v.map_or_else(String::new, |v| v.to_string());
        vec![
            self.mode.to_owned(),
            self.cache.to_owned(),
            self.function.to_string(),
            format!("{:.4}", self.deploy_to_first_ms),
            opt(self.load_ms),
            opt(self.ready_ms),
            format!("{:.4}", self.first_ms),
            format!("{:.4}", self.steady_median_ms),
            format!("{:.4}", self.steady_p10_ms),
            format!("{:.4}", self.steady_p90_ms),
            format!("{:.4}", self.first_minus_steady_ms),
            format!("{:.4}", self.deploy_minus_steady_ms),
            int(self.load_faults),
            int(self.first_faults),
            opt(self.steady_faults_per_request),
            int(self.polls.map(u64::from)),
            int(self.compiled),
            int(self.cache_hits),
            self.requests.to_string(),
            self.component.to_owned(),
        ]
    }
}

/// One warm deployment taken apart (milliseconds, page faults).
#[derive(Debug, Clone, Serialize)]
struct Breakdown {
    function: usize,
    component_bytes: usize,
    artifact_bytes: usize,
    /// Reading the component file.
    read_ms: f64,
    /// `CompileCache::new` (engine hash) and the key (SHA-256 of the bytes).
    key_ms: f64,
    /// The cache file: read, length + SHA-256 check, deserialize, each
    /// alone (then dropped).
    artifact_read_ms: f64,
    artifact_verify_ms: f64,
    deserialize_ms: f64,
    /// gust's `CompileCache::load`: the three steps above together.
    cache_load_ms: f64,
    /// A linker with WASI p2 and `wasi:http` (App::load builds one per load).
    linker_ms: f64,
    /// `instantiate_pre` + `ProxyPre::new` (type-checking the component).
    pre_ms: f64,
    /// The first instance of the new component (pool slot, memory image).
    first_instantiate_ms: f64,
    first_instantiate_faults: u64,
    /// The first call of its handler.
    first_handle_ms: f64,
    first_handle_faults: u64,
    /// The second instantiation and call.
    second_instantiate_ms: f64,
    second_handle_ms: f64,
    /// Medians of 10 more: a new store (`WasiCtx`, fuel), instantiating,
    /// the handler call, dropping the store (the pool slot's reset).
    steady_store_ms: f64,
    steady_instantiate_ms: f64,
    steady_handle_ms: f64,
    steady_drop_ms: f64,
    steady_faults: f64,
    /// Fuel of the first instantiation (the guest's start functions) and
    /// of its handler call, then the medians of the 10 steady ones, and
    /// their page faults apart (the columns after `component` are new).
    first_instantiate_fuel: u64,
    first_handle_fuel: u64,
    steady_instantiate_fuel: f64,
    steady_handle_fuel: f64,
    steady_instantiate_faults: f64,
    steady_handle_faults: f64,
    /// The component: `hello` or another WASIp2 one.
    component: &'static str,
}

/// One instantiation and handler call, timed.
struct Call {
    store_ms: f64,
    instantiate_ms: f64,
    instantiate_faults: u64,
    instantiate_fuel: u64,
    handle_ms: f64,
    handle_faults: u64,
    handle_fuel: u64,
    drop_ms: f64,
}

impl CsvRow for Breakdown {
    fn header() -> &'static [&'static str] {
        &[
            "function",
            "component_bytes",
            "artifact_bytes",
            "read_ms",
            "key_ms",
            "artifact_read_ms",
            "artifact_verify_ms",
            "deserialize_ms",
            "cache_load_ms",
            "linker_ms",
            "pre_ms",
            "first_instantiate_ms",
            "first_instantiate_faults",
            "first_handle_ms",
            "first_handle_faults",
            "second_instantiate_ms",
            "second_handle_ms",
            "steady_store_ms",
            "steady_instantiate_ms",
            "steady_handle_ms",
            "steady_drop_ms",
            "steady_faults",
            "component",
            "first_instantiate_fuel",
            "first_handle_fuel",
            "steady_instantiate_fuel",
            "steady_handle_fuel",
            "steady_instantiate_faults",
            "steady_handle_faults",
        ]
    }

    fn values(&self) -> Vec<String> {
        let f = |v: f64| format!("{v:.4}");
        vec![
            self.function.to_string(),
            self.component_bytes.to_string(),
            self.artifact_bytes.to_string(),
            f(self.read_ms),
            f(self.key_ms),
            f(self.artifact_read_ms),
            f(self.artifact_verify_ms),
            f(self.deserialize_ms),
            f(self.cache_load_ms),
            f(self.linker_ms),
            f(self.pre_ms),
            f(self.first_instantiate_ms),
            self.first_instantiate_faults.to_string(),
            f(self.first_handle_ms),
            self.first_handle_faults.to_string(),
            f(self.second_instantiate_ms),
            f(self.second_handle_ms),
            f(self.steady_store_ms),
            f(self.steady_instantiate_ms),
            f(self.steady_handle_ms),
            f(self.steady_drop_ms),
            f(self.steady_faults),
            self.component.to_owned(),
            self.first_instantiate_fuel.to_string(),
            self.first_handle_fuel.to_string(),
            f(self.steady_instantiate_fuel),
            f(self.steady_handle_fuel),
            f(self.steady_instantiate_faults),
            f(self.steady_handle_faults),
        ]
    }
}

/// Everything a run wrote to its JSON file.
#[derive(Debug, Serialize)]
struct Report {
    stamp: String,
    functions: usize,
    requests: usize,
    process_functions: usize,
    /// The components deployed (`hello`, `p3-hello`, ...).
    components: Vec<&'static str>,
    cpus: usize,
    load_average_before: Option<f64>,
    load_average_after: Option<f64>,
    gust: Option<String>,
    rows: Vec<Row>,
    breakdown: Vec<Breakdown>,
}

/// The request every function gets.
const PATH: &str = "/f";

/// A manifest routing `PATH` to the one component `wasm`.
fn manifest(wasm: &Path) -> String {
    format!(
        "[ledger]\nenabled = false\n\n[functions.f]\ncomponent = {:?}\n\n[[routes]]\npath = \"{PATH}\"\nfunction = \"f\"\n",
        wasm.display().to_string()
    )
}

/// An example component whose deployments are measured.
struct Subject {
    /// `hello`, `p3-hello` or a file's name: the rows' `component`.
    name: &'static str,
    bytes: Vec<u8>,
    /// What every answer's body must be.
    expect: Expect,
}

/// The body a subject answers with.
#[derive(Clone, Copy)]
enum Expect {
    Exact(&'static [u8]),
    /// The p3 hello's text belongs to guest-examples; its greeting prefix is
    /// enough to tell it from an error page.
    Prefix(&'static [u8]),
}

impl Subject {
    /// The subjects `names` asks for, in that order.
    fn load(names: &[String], p3_hello: Option<&Path>, dir: &Path) -> anyhow::Result<Vec<Subject>> {
        let mut out = Vec::new();
        for name in names {
            match name.as_str() {
                "hello" => out.push(Subject {
                    name: "hello",
                    bytes: gust_runtime::examples::HELLO.to_vec(),
                    expect: Expect::Exact(HELLO_BODY),
                }),
                "p3-hello" => {
                    let bytes = match p3_hello {
                        Some(path) => std::fs::read(path)
                            .with_context(|| format!("reading {}", path.display()))?,
                        None => gust_runtime::examples::P3_HELLO.to_vec(),
                    };
                    out.push(Subject {
                        name: "p3-hello",
                        bytes,
                        expect: Expect::Prefix(b"Hello from"),
                    });
                }
                other => {
                    let path = dir.join(format!("{other}.wasm"));
                    let bytes = std::fs::read(&path).with_context(|| {
                        format!(
                            "reading {} (component {other:?}: hello, p3-hello, or NAME.wasm \
                             in --component-dir; BUILD_ONLY=1 benches/e2e/run.sh builds python, js, go, c)",
                            path.display()
                        )
                    })?;
                    out.push(Subject {
                        // Once per run: leaked so rows can hold it.
                        name: Box::leak(other.to_owned().into_boxed_str()),
                        bytes,
                        expect: Expect::Prefix(b"Hello"),
                    });
                }
            }
        }
        Ok(out)
    }
}

/// The steady-state part of a row: `k` requests, each on a new connection.
async fn steady(addr: SocketAddr, k: usize, expect: Expect) -> anyhow::Result<(Vec<f64>, f64)> {
    let faults = minor_faults();
    let mut times = Vec::with_capacity(k);
    for _ in 0..k {
        let started = Instant::now();
        let (status, body) = http_get(addr, PATH).await?;
        times.push(ms(started.elapsed()));
        check(status, &body, expect)?;
    }
    let per_request = (minor_faults() - faults) as f64 / k.max(1) as f64;
    Ok((times, per_request))
}

fn check(status: http::StatusCode, body: &[u8], expect: Expect) -> anyhow::Result<()> {
    let expected = match expect {
        Expect::Exact(want) => body == want,
        Expect::Prefix(want) => body.starts_with(want),
    };
    if status != http::StatusCode::OK || !expected {
        bail!(
            "unexpected answer {status}: {:?}",
            String::from_utf8_lossy(body)
        );
    }
    Ok(())
}

/// Deploys `manifest_path`'s one function in this process and measures it.
#[allow(clippy::too_many_arguments)]
fn in_process(
    rt: &tokio::runtime::Runtime,
    engine: &GustEngine,
    subject: &Subject,
    manifest_path: &Path,
    cache_dir: &Path,
    cache: &'static str,
    function: usize,
    k: usize,
) -> anyhow::Result<Row> {
    let expect = subject.expect;
    let mut spec = Manifest::load(manifest_path)?;
    spec.runtime.server.listen = "127.0.0.1:0".parse()?;
    spec.runtime.cache = CacheLocation::Dir(cache_dir.to_path_buf());

    let faults = minor_faults();
    let deployed = Instant::now();
    let app = App::load_with(engine, spec.app, &spec.runtime)?;
    let load = deployed.elapsed();
    let load_faults = minor_faults() - faults;
    let report = app.load_report().clone();
    rt.block_on(async {
        let server = Server::new(app, spec.runtime.server).shutdown_grace(Duration::from_secs(5));
        let listener = server.bind().await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(listener, async {
            let _ = stopped.await;
        }));
        let ready = deployed.elapsed();

        let faults = minor_faults();
        let started = Instant::now();
        let (status, body) = http_get(addr, PATH).await?;
        let first = started.elapsed();
        let deploy_to_first = deployed.elapsed();
        let first_faults = minor_faults() - faults;
        check(status, &body, expect)?;

        let (times, per_request) = steady(addr, k, expect).await?;
        let _ = stop.send(());
        task.await??;
        Ok(row(
            "in_process",
            cache,
            function,
            ms(deploy_to_first),
            ms(first),
            &times,
            Row {
                load_ms: Some(ms(load)),
                ready_ms: Some(ms(ready)),
                load_faults: Some(load_faults),
                first_faults: Some(first_faults),
                steady_faults_per_request: Some(per_request),
                compiled: Some(report.compiled),
                cache_hits: Some(report.cache_hits),
                component: subject.name,
                ..Row::empty()
            },
        ))
    })
}

impl Row {
    fn empty() -> Row {
        Row {
            mode: "",
            cache: "",
            function: 0,
            deploy_to_first_ms: f64::NAN,
            load_ms: None,
            ready_ms: None,
            first_ms: f64::NAN,
            steady_median_ms: f64::NAN,
            steady_p10_ms: f64::NAN,
            steady_p90_ms: f64::NAN,
            first_minus_steady_ms: f64::NAN,
            deploy_minus_steady_ms: f64::NAN,
            load_faults: None,
            first_faults: None,
            steady_faults_per_request: None,
            polls: None,
            compiled: None,
            cache_hits: None,
            requests: 0,
            component: "",
        }
    }
}

fn row(
    mode: &'static str,
    cache: &'static str,
    function: usize,
    deploy_to_first_ms: f64,
    first_ms: f64,
    steady: &[f64],
    rest: Row,
) -> Row {
    let steady_median_ms = median(steady);
    Row {
        mode,
        cache,
        function,
        deploy_to_first_ms,
        first_ms,
        steady_median_ms,
        steady_p10_ms: quantile(steady, 0.1),
        steady_p90_ms: quantile(steady, 0.9),
        first_minus_steady_ms: first_ms - steady_median_ms,
        deploy_minus_steady_ms: deploy_to_first_ms - steady_median_ms,
        requests: steady.len(),
        ..rest
    }
}

/// A child process killed (by its own id) when dropped.
struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port free a moment ago.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Spawns `gust serve` for `manifest_path` and measures it.
#[allow(clippy::too_many_arguments)]
fn process(
    rt: &tokio::runtime::Runtime,
    gust: &Path,
    subject: &Subject,
    manifest_path: &Path,
    cache_dir: &Path,
    log: &Path,
    cache: &'static str,
    function: usize,
    k: usize,
) -> anyhow::Result<Row> {
    let port = free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let stderr = std::fs::File::create(log)?;
    let deployed = Instant::now();
    let child = Command::new(gust)
        .arg("serve")
        .arg(manifest_path)
        .args(["--listen", &addr.to_string(), "--no-ledger", "--cache-dir"])
        .arg(cache_dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("spawning {}", gust.display()))?;
    let mut child = Spawned(child);
    rt.block_on(async {
        let mut polls = 0u32;
        let mut ready = None;
        let (first, deploy_to_first) = loop {
            polls += 1;
            let started = Instant::now();
            match http_get(addr, PATH).await {
                Ok((status, body)) => {
                    check(status, &body, subject.expect)?;
                    break (started.elapsed(), deployed.elapsed());
                }
                Err(e) => {
                    if ready.is_none() && !is_refused(&e) {
                        // Accepted, then failed: listening, but not
                        // answering yet.
                        ready = Some(deployed.elapsed());
                    }
                    if let Some(status) = child.0.try_wait()? {
                        bail!(
                            "gust exited ({status}) before answering; see {}",
                            log.display()
                        );
                    }
                    if deployed.elapsed() > Duration::from_secs(300) {
                        bail!("no answer from gust after 300 s; see {}", log.display());
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        };
        let (times, _) = steady(addr, k, subject.expect).await?;
        Ok(row(
            "process",
            cache,
            function,
            ms(deploy_to_first),
            ms(first),
            &times,
            Row {
                ready_ms: ready.map(ms),
                polls: Some(polls),
                component: subject.name,
                ..Row::empty()
            },
        ))
    })
}

fn is_refused(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
}

/// Takes one warm deployment of `wasm` apart, step by step.
fn breakdown(
    rt: &tokio::runtime::Runtime,
    engine: &GustEngine,
    subject: &Subject,
    wasm: &Path,
    cache_dir: &Path,
    function: usize,
) -> anyhow::Result<Breakdown> {
    let expect = subject.expect;
    let engine = engine.engine();
    let started = Instant::now();
    let bytes = std::fs::read(wasm)?;
    let read_ms = ms(started.elapsed());

    let started = Instant::now();
    let cache = CompileCache::new(engine, &CacheLocation::Dir(cache_dir.to_path_buf()));
    let key = cache.key(&bytes);
    let key_ms = ms(started.elapsed());

    let path = cache.path(&key).context("the cache is on")?;
    let steps = gust_benches::cache_hit_steps(engine, &path)?;

    let started = Instant::now();
    let (component, outcome) = cache.load(engine, &bytes)?;
    let cache_load_ms = ms(started.elapsed());
    if outcome != gust_runtime::cache::CacheOutcome::Hit {
        bail!("function {function} was not in the cache ({outcome:?})");
    }

    let started = Instant::now();
    let linker = linker(engine)?;
    let linker_ms = ms(started.elapsed());

    let started = Instant::now();
    let pre = ProxyPre::new(linker.instantiate_pre(&component)?)?;
    let pre_ms = ms(started.elapsed());

    rt.block_on(async {
        let once = || async {
            let started = Instant::now();
            let mut store = store(engine);
            let store_ms = ms(started.elapsed());
            let fuel = store.get_fuel()?;
            let faults = minor_faults();
            let started = Instant::now();
            let proxy = pre.instantiate_async(&mut store).await?;
            let instantiate_ms = ms(started.elapsed());
            let instantiate_faults = minor_faults() - faults;
            let instantiate_fuel = fuel - store.get_fuel()?;
            let fuel = store.get_fuel()?;
            let faults = minor_faults();
            let started = Instant::now();
            let body = handle(&mut store, &proxy).await?;
            let handle_ms = ms(started.elapsed());
            let handle_faults = minor_faults() - faults;
            let handle_fuel = fuel - store.get_fuel()?;
            check(http::StatusCode::OK, &body, expect)?;
            let started = Instant::now();
            drop((proxy, store));
            let drop_ms = ms(started.elapsed());
            anyhow::Ok(Call {
                store_ms,
                instantiate_ms,
                instantiate_faults,
                instantiate_fuel,
                handle_ms,
                handle_faults,
                handle_fuel,
                drop_ms,
            })
        };
        let first = once().await?;
        let second = once().await?;
        let mut steady = Vec::new();
        for _ in 0..10 {
            steady.push(once().await?);
        }
        let med = |f: fn(&Call) -> f64| median(&steady.iter().map(f).collect::<Vec<_>>());
        Ok(Breakdown {
            function,
            component_bytes: bytes.len(),
            artifact_bytes: steps.artifact_bytes,
            read_ms,
            key_ms,
            artifact_read_ms: ms(steps.read),
            artifact_verify_ms: ms(steps.verify),
            deserialize_ms: ms(steps.deserialize),
            cache_load_ms,
            linker_ms,
            pre_ms,
            first_instantiate_ms: first.instantiate_ms,
            first_instantiate_faults: first.instantiate_faults,
            first_handle_ms: first.handle_ms,
            first_handle_faults: first.handle_faults,
            second_instantiate_ms: second.instantiate_ms,
            second_handle_ms: second.handle_ms,
            steady_store_ms: med(|c| c.store_ms),
            steady_instantiate_ms: med(|c| c.instantiate_ms),
            steady_handle_ms: med(|c| c.handle_ms),
            steady_drop_ms: med(|c| c.drop_ms),
            steady_faults: med(|c| (c.instantiate_faults + c.handle_faults) as f64),
            first_instantiate_fuel: first.instantiate_fuel,
            first_handle_fuel: first.handle_fuel,
            steady_instantiate_fuel: med(|c| c.instantiate_fuel as f64),
            steady_handle_fuel: med(|c| c.handle_fuel as f64),
            steady_instantiate_faults: med(|c| c.instantiate_faults as f64),
            steady_handle_faults: med(|c| c.handle_faults as f64),
            component: subject.name,
        })
    })
}

fn default_gust() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    target.join("release/gust")
}

fn print_table(rows: &[Row]) {
    println!(
        "\n| mode | cache | component | n | deploy→first ms (median) | load ms | first request ms | steady median ms | first − steady ms | deploy→first − steady ms (median / p90 / max) |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut components: Vec<&'static str> = Vec::new();
    for r in rows {
        if !components.contains(&r.component) {
            components.push(r.component);
        }
    }
    for mode in ["in_process", "process"] {
        for (cache, component) in ["cold", "warm"]
            .into_iter()
            .flat_map(|cache| components.iter().map(move |c| (cache, *c)))
        {
            let group: Vec<&Row> = rows
                .iter()
                .filter(|r| r.mode == mode && r.cache == cache && r.component == component)
                .collect();
            if group.is_empty() {
                continue;
            }
            let col = |f: &dyn Fn(&Row) -> f64| group.iter().map(|r| f(r)).collect::<Vec<f64>>();
            let deploy_minus = col(&|r| r.deploy_minus_steady_ms);
            let load = col(&|r| r.load_ms.unwrap_or(f64::NAN));
            let load = median(&load);
            println!(
                "| {mode} | {cache} | {component} | {} | {:.3} | {} | {:.3} | {:.3} | {:.3} | {:.3} / {:.3} / {:.3} |",
                group.len(),
                median(&col(&|r| r.deploy_to_first_ms)),
                if load.is_nan() {
                    "–".to_owned()
                } else {
                    format!("{load:.3}")
                },
                median(&col(&|r| r.first_ms)),
                median(&col(&|r| r.steady_median_ms)),
                median(&col(&|r| r.first_minus_steady_ms)),
                median(&deploy_minus),
                quantile(&deploy_minus, 0.9),
                quantile(&deploy_minus, 1.0),
            );
        }
    }
}

/// A row of the breakdown table: its name and how to read it from a sample.
type Step = (&'static str, fn(&Breakdown) -> f64);

fn print_breakdown(rows: &[Breakdown]) {
    if rows.is_empty() {
        return;
    }
    let mut components: Vec<&'static str> = Vec::new();
    for r in rows {
        if !components.contains(&r.component) {
            components.push(r.component);
        }
    }
    let groups: Vec<Vec<&Breakdown>> = components
        .iter()
        .map(|c| rows.iter().filter(|r| r.component == *c).collect())
        .collect();
    println!(
        "\nWarm deployment, step by step (median of {} functions per component, ms unless named):\n",
        groups.iter().map(Vec::len).min().unwrap_or(0)
    );
    println!("| step | {} |", components.join(" | "));
    println!("|---|{}", "---:|".repeat(components.len()));
    let steps: [Step; 25] = [
        ("read the component file", |b| b.read_ms),
        ("cache key (engine hash + SHA-256 of the component)", |b| {
            b.key_ms
        }),
        ("  cache file: read", |b| b.artifact_read_ms),
        ("  cache file: length + SHA-256 check", |b| {
            b.artifact_verify_ms
        }),
        ("  cache file: Component::deserialize", |b| b.deserialize_ms),
        ("gust CompileCache::load (the three above)", |b| {
            b.cache_load_ms
        }),
        ("linker (WASI p2 + wasi:http)", |b| b.linker_ms),
        ("instantiate_pre + ProxyPre::new", |b| b.pre_ms),
        ("first instantiate", |b| b.first_instantiate_ms),
        ("first instantiate: minor faults", |b| {
            b.first_instantiate_faults as f64
        }),
        ("first instantiate: fuel", |b| {
            b.first_instantiate_fuel as f64
        }),
        ("first handle", |b| b.first_handle_ms),
        ("first handle: minor faults", |b| {
            b.first_handle_faults as f64
        }),
        ("first handle: fuel", |b| b.first_handle_fuel as f64),
        ("second instantiate", |b| b.second_instantiate_ms),
        ("second handle", |b| b.second_handle_ms),
        ("steady new store (median of 10)", |b| b.steady_store_ms),
        ("steady instantiate (median of 10)", |b| {
            b.steady_instantiate_ms
        }),
        ("steady instantiate: minor faults", |b| {
            b.steady_instantiate_faults
        }),
        ("steady instantiate: fuel", |b| b.steady_instantiate_fuel),
        ("steady handle (median of 10)", |b| b.steady_handle_ms),
        ("steady handle: minor faults", |b| b.steady_handle_faults),
        ("steady handle: fuel", |b| b.steady_handle_fuel),
        ("steady drop of the store (median of 10)", |b| {
            b.steady_drop_ms
        }),
        ("steady instantiate + handle: minor faults", |b| {
            b.steady_faults
        }),
    ];
    for (name, f) in steps {
        let cells: Vec<String> = groups
            .iter()
            .map(|g| {
                let v = median(&g.iter().map(|b| f(b)).collect::<Vec<_>>());
                if name.ends_with("fuel") || name.ends_with("faults") {
                    format!("{v:.0}")
                } else {
                    format!("{v:.3}")
                }
            })
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let stamp = args.stamp.clone().unwrap_or_else(utc_stamp);
    let out_dir = args.out_dir.clone().unwrap_or_else(results_dir);
    std::fs::create_dir_all(&out_dir)?;
    let load_before = load_average();

    let work = tempfile::Builder::new()
        .prefix("gust-coldstart")
        .tempdir()?;
    let n = args
        .functions
        .max(args.process_functions)
        .max(args.breakdown);
    let component_dir = args
        .component_dir
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/components"));
    let subjects = Subject::load(&args.components, args.p3_hello.as_deref(), &component_dir)?;
    if subjects.is_empty() {
        bail!("no component to deploy (--components)");
    }
    // Distinct from every earlier run too, so no cache anywhere has them.
    let nonce = format!("{stamp}-{}", std::process::id());
    // Per subject, in `subjects`' order: the function's manifest and wasm.
    let mut deployments: Vec<(Vec<PathBuf>, Vec<PathBuf>)> = Vec::new();
    for subject in &subjects {
        let mut manifests = Vec::with_capacity(n);
        let mut wasms = Vec::with_capacity(n);
        // `hello` keeps the file names of the runs before p3-hello.
        let prefix = match subject.name {
            "hello" => "f".to_owned(),
            other => format!("{other}-f"),
        };
        for i in 0..n {
            let wasm = work.path().join(format!("{prefix}{i}.wasm"));
            let bytes = gust_benches::support::distinct_component(
                &subject.bytes,
                &format!("{nonce}-{}-{i}", subject.name),
            );
            std::fs::write(&wasm, bytes)?;
            let manifest_path = work.path().join(format!("{prefix}{i}.toml"));
            std::fs::write(&manifest_path, manifest(&wasm))?;
            wasms.push(wasm);
            manifests.push(manifest_path);
        }
        deployments.push((manifests, wasms));
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut rows = Vec::new();

    // In-process: one engine, as in a running server.
    let engine = GustEngine::new(&EngineConfig::default())?;
    if !engine.is_pooling() {
        eprintln!("warning: the pooling allocator could not be reserved; on-demand instances");
    }
    let cache_dir = work.path().join("cache-in-process");
    for cache in ["cold", "warm"] {
        for (subject, (manifests, _)) in subjects.iter().zip(&deployments) {
            let name = subject.name;
            for (i, manifest_path) in manifests.iter().enumerate().take(args.functions) {
                let row = in_process(
                    &rt,
                    &engine,
                    subject,
                    manifest_path,
                    &cache_dir,
                    cache,
                    i,
                    args.requests,
                )
                .with_context(|| format!("in-process, {cache}, {name} function {i}"))?;
                eprintln!(
                    "in_process {cache} {name} f{i}: deploy→first {:.3} ms (load {:.3}), first {:.3} ms, steady {:.3} ms",
                    row.deploy_to_first_ms,
                    row.load_ms.unwrap_or(f64::NAN),
                    row.first_ms,
                    row.steady_median_ms
                );
                rows.push(row);
            }
        }
    }

    // Step by step, warm, every WASIp2 component (the steps are a p2
    // `ProxyPre`'s, with WASI and wasi:http only: a component importing
    // more is skipped): the cache holds functions 0..functions; compile any
    // further ones first.
    let mut steps = Vec::new();
    for (subject, (_, wasms)) in subjects.iter().zip(&deployments) {
        if subject.name == "p3-hello" || args.breakdown == 0 {
            continue;
        }
        let cache = CompileCache::new(engine.engine(), &CacheLocation::Dir(cache_dir.clone()));
        for wasm in wasms.iter().take(args.breakdown).skip(args.functions) {
            cache.load(engine.engine(), &std::fs::read(wasm)?)?;
        }
        for (i, wasm) in wasms.iter().enumerate().take(args.breakdown) {
            match breakdown(&rt, &engine, subject, wasm, &cache_dir, i) {
                Ok(step) => steps.push(step),
                Err(e) if i == 0 => {
                    eprintln!("breakdown: skipping {}: {e:#}", subject.name);
                    break;
                }
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("breakdown of {} function {i}", subject.name));
                }
            }
        }
    }
    drop(engine);

    // Whole process.
    let gust = args.gust.clone().unwrap_or_else(default_gust);
    let mut gust_used = None;
    if args.process_functions > 0 {
        if gust.is_file() {
            gust_used = Some(gust.display().to_string());
            let cache_dir = work.path().join("cache-process");
            for cache in ["cold", "warm"] {
                for (subject, (manifests, _)) in subjects.iter().zip(&deployments) {
                    let name = subject.name;
                    for (i, manifest_path) in
                        manifests.iter().enumerate().take(args.process_functions)
                    {
                        let log = work.path().join(format!("gust-{cache}-{name}-{i}.log"));
                        let row = process(
                            &rt,
                            &gust,
                            subject,
                            manifest_path,
                            &cache_dir,
                            &log,
                            cache,
                            i,
                            args.requests,
                        )
                        .with_context(|| format!("process, {cache}, {name} function {i}"))?;
                        eprintln!(
                            "process {cache} {name} f{i}: start→first {:.3} ms ({} polls), steady {:.3} ms",
                            row.deploy_to_first_ms,
                            row.polls.unwrap_or(0),
                            row.steady_median_ms
                        );
                        rows.push(row);
                    }
                }
            }
        } else {
            eprintln!(
                "skipping the process variant: no gust binary at {} (cargo build --release -p gust-runtime, or --gust PATH)",
                gust.display()
            );
        }
    }

    print_table(&rows);
    print_breakdown(&steps);

    let report = Report {
        stamp: stamp.clone(),
        functions: args.functions,
        requests: args.requests,
        process_functions: args.process_functions,
        components: subjects.iter().map(|s| s.name).collect(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average_before: load_before,
        load_average_after: load_average(),
        gust: gust_used,
        rows,
        breakdown: steps,
    };
    let csv = out_dir.join(format!("coldstart-{stamp}.csv"));
    let json = out_dir.join(format!("coldstart-{stamp}.json"));
    let breakdown_csv = out_dir.join(format!("coldstart-breakdown-{stamp}.csv"));
    write_csv(&csv, &report.rows)?;
    write_json(&json, &report)?;
    write_csv(&breakdown_csv, &report.breakdown)?;
    std::fs::copy(&csv, out_dir.join("coldstart-latest.csv"))?;
    std::fs::copy(&json, out_dir.join("coldstart-latest.json"))?;
    println!(
        "\nrows: {}, {}, {}",
        csv.display(),
        json.display(),
        breakdown_csv.display()
    );
    Ok(())
}
