//! `native-hello`: the native baseline of the end-to-end harness
//! (`benches/e2e/run.sh`, runtime `native`): a bare hyper server that
//! answers every request, whatever its method or path, with exactly what
//! the Rust hello guest (`guest-examples/hello`, through gust-sdk) answers:
//! `200`, `content-type: text/plain; charset=utf-8`, `content-length: 17`
//! and `Hello from gust!\n`. No WebAssembly, no routing, no metering, no
//! ledger: what serving the hello costs with nothing but the HTTP stack.
//!
//! ```text
//! native-hello [--listen 127.0.0.1:18084] [--workers N]
//! ```
//!
//! Like gust's server: a multi-threaded tokio runtime (one worker per core
//! unless `--workers`), hyper-util's `auto` connection builder (HTTP/1.1
//! with keep-alive, and HTTP/2 by prior knowledge), `TCP_NODELAY` on every
//! accepted connection. hyper adds `date` to every response, as it does in
//! gust and in `wasmtime serve`. (gust adds `x-request-id` too; the baseline
//! does not.)

use std::convert::Infallible;
use std::net::SocketAddr;

use anyhow::Context as _;
use bytes::Bytes;
use clap::Parser;
use gust_benches::HELLO_BODY;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

#[derive(Parser, Debug)]
#[command(
    about = "Native baseline for benches/e2e: answers every request like the Rust hello guest"
)]
struct Args {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:18084")]
    listen: SocketAddr,
    /// Tokio worker threads [default: one per core].
    #[arg(long)]
    workers: Option<usize>,
}

/// The hello guest's answer: gust-sdk's `text()` sets the content type,
/// its `write()` the length of the (fully known) body, and a new response
/// is `200`.
fn hello() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(HELLO_BODY)));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(HELLO_BODY.len()));
    response
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.workers {
        rt.worker_threads(n);
    }
    let rt = rt.enable_all().build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        eprintln!("native-hello listening on {}", listener.local_addr()?);
        let builder = auto::Builder::new(TokioExecutor::new());
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                // E.g. out of file descriptors: keep serving the others.
                Err(e) => {
                    eprintln!("accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let builder = builder.clone();
            tokio::spawn(async move {
                let service = service_fn(|_request| async { Ok::<_, Infallible>(hello()) });
                // Errors here are the client's (reset, malformed request).
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
