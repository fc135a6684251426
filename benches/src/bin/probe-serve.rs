//! `probe-serve`: a minimal `wasi:http` server, one fresh instance per
//! request from a `ProxyPre`, whose engine and scheduling settings are all
//! flags. It exists to find out which wasmtime settings matter for large
//! guests (componentize-py, componentize-js) before gust's engine changes:
//! it is a prototype for experiments, not a second runtime.
//!
//! ```text
//! probe-serve FILE --listen 127.0.0.1:18083 [--on-demand] [--keep-resident MIB]
//!     [--pagemap-scan] [--max-memory MIB] [--limit N] [--no-fuel]
//!     [--epoch-yield] [--workers N]
//! ```
//!
//! Defaults mirror gust's engine (pooling, copy-on-write, fuel, 1000
//! instances, 256 MiB memories), except that a guest only yields on epoch
//! ticks with `--epoch-yield` (gust yields every 5 ms tick).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use clap::Parser;
use gust_benches::BenchState;
use http_body_util::BodyExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use wasmtime::component::{Component, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
    UpdateDeadline,
};
use wasmtime_wasi_http::WasiHttpView as _;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

#[derive(Parser, Debug)]
struct Args {
    /// The component to serve on every path.
    file: std::path::PathBuf,
    #[arg(long, default_value = "127.0.0.1:18083")]
    listen: SocketAddr,
    /// Allocate instances on demand instead of from the pool.
    #[arg(long)]
    on_demand: bool,
    /// Pool: `linear_memory_keep_resident` and `table_keep_resident`, MiB.
    #[arg(long, default_value_t = 0)]
    keep_resident: usize,
    /// Pool: reset memories with the PAGEMAP_SCAN ioctl (Linux 6.7+).
    #[arg(long)]
    pagemap_scan: bool,
    /// Largest linear memory, MiB.
    #[arg(long, default_value_t = 256)]
    max_memory: usize,
    /// Pool size (component instances).
    #[arg(long, default_value_t = 1000)]
    instances: u32,
    /// At most N invocations executing at once (0: no limit).
    #[arg(long, default_value_t = 0)]
    limit: usize,
    /// Turn fuel metering off.
    #[arg(long)]
    no_fuel: bool,
    /// Yield to the scheduler every 5 ms epoch tick, as gust does.
    #[arg(long)]
    epoch_yield: bool,
    /// tokio worker threads (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
}

type Body = UnsyncBoxBody<Bytes, anyhow::Error>;

struct Server {
    pre: ProxyPre<BenchState>,
    limit: Option<Arc<Semaphore>>,
    fuel: bool,
    epoch_yield: bool,
}

fn engine(args: &Args) -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config
        .consume_fuel(!args.no_fuel)
        .epoch_interruption(true)
        .memory_init_cow(true)
        .wasm_component_model(true);
    if !args.on_demand {
        let n = args.instances;
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(n)
            .total_core_instances(n * 4)
            .total_memories(n * 2)
            .total_tables(n * 4)
            .total_stacks(n)
            .max_memory_size(args.max_memory << 20)
            .linear_memory_keep_resident(args.keep_resident << 20)
            .table_keep_resident(args.keep_resident << 20);
        if args.pagemap_scan {
            pool.pagemap_scan(Enabled::Yes);
        }
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Ok(Engine::new(&config)?)
}

async fn handle(
    server: Arc<Server>,
    request: hyper::Request<hyper::body::Incoming>,
) -> anyhow::Result<hyper::Response<Body>> {
    let permit = match &server.limit {
        Some(sem) => Some(sem.clone().acquire_owned().await?),
        None => None,
    };
    let mut store = Store::new(server.pre.engine(), BenchState::new());
    if server.fuel {
        store.set_fuel(gust_benches::FUEL)?;
    }
    if server.epoch_yield {
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|_| {
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        });
    } else {
        store.set_epoch_deadline(u64::MAX / 2);
    }
    let request = store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, request)?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let out = store.data_mut().http().new_response_outparam(tx)?;
    let pre = server.pre.clone();
    let task = tokio::spawn(async move {
        let proxy = pre.instantiate_async(&mut store).await?;
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, request, out)
            .await?;
        drop(store);
        drop(permit);
        anyhow::Ok(())
    });
    match rx.await {
        Ok(Ok(response)) => Ok(response.map(|b| b.map_err(anyhow::Error::from).boxed_unsync())),
        Ok(Err(code)) => anyhow::bail!("guest error {code:?}"),
        Err(_) => match task.await? {
            Ok(()) => anyhow::bail!("no response"),
            Err(e) => Err(e),
        },
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.workers {
        rt.worker_threads(n);
    }
    let rt = rt.enable_all().build()?;
    let engine = engine(&args)?;
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    let bytes = std::fs::read(&args.file).with_context(|| format!("reading {:?}", args.file))?;
    let component = Component::new(&engine, &bytes)?;
    let pre = ProxyPre::new(linker.instantiate_pre(&component)?)?;
    {
        let engine = engine.clone();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(5));
                engine.increment_epoch();
            }
        });
    }
    let server = Arc::new(Server {
        pre,
        limit: (args.limit > 0).then(|| Arc::new(Semaphore::new(args.limit))),
        fuel: !args.no_fuel,
        epoch_yield: args.epoch_yield,
    });
    eprintln!("probe-serve {args:?}");
    rt.block_on(async move {
        let listener = TcpListener::bind(args.listen).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let server = server.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let server = server.clone();
                    async move {
                        Ok::<_, Infallible>(match handle(server, req).await {
                            Ok(response) => response,
                            Err(e) => {
                                let body =
                                    http_body_util::Full::new(Bytes::from(format!("{e:?}\n")))
                                        .map_err(|never| match never {})
                                        .boxed_unsync();
                                let mut response = hyper::Response::new(body);
                                *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                                response
                            }
                        })
                    }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
