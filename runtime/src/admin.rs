//! The admin listener: usage and metrics for the operator, on an address of
//! its own (loopback by default), never on the public port.
//!
//! | request | answer |
//! |---|---|
//! | `GET /usage?function=F&since=T` | usage totals per function as JSON (as `gust usage --format json`); `since` is RFC 3339 or a duration ago like `1h` |
//! | `GET /metrics` | ledger counters in Prometheus text format |
//! | `GET /healthz` | `ok` |

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode, header};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::ledger::{Ledger, UsageFilter};

/// Serves the admin endpoints on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    ledger: Option<Arc<Ledger>>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let ledger = ledger.clone();
                let service = hyper::service::service_fn(move |req| {
                    let ledger = ledger.clone();
                    async move { Ok::<_, Infallible>(handle(ledger, req).await) }
                });
                tokio::spawn(async move {
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            () = &mut shutdown => return,
        }
    }
}

fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: String,
) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

async fn handle<B>(
    ledger: Option<Arc<Ledger>>,
    req: hyper::Request<B>,
) -> hyper::Response<Full<Bytes>> {
    if req.method() != Method::GET {
        let mut response = reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "method not allowed\n".into(),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET"));
        return response;
    }
    match req.uri().path() {
        "/healthz" => reply(StatusCode::OK, "text/plain", "ok\n".into()),
        "/metrics" => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            metrics(ledger.as_deref()),
        ),
        "/usage" => {
            let Some(ledger) = ledger else {
                return reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    "no ledger configured\n".into(),
                );
            };
            let filter = match parse_filter(req.uri().query().unwrap_or("")) {
                Ok(filter) => filter,
                Err(e) => return reply(StatusCode::BAD_REQUEST, "text/plain", format!("{e}\n")),
            };
            let rows = tokio::task::spawn_blocking(move || ledger.usage(filter)).await;
            match rows {
                Ok(Ok(rows)) => reply(
                    StatusCode::OK,
                    "application/json",
                    serde_json::to_string(&rows).unwrap_or_else(|_| "[]".into()),
                ),
                Ok(Err(e)) => reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    format!("{e}\n"),
                ),
                Err(e) => reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    format!("{e}\n"),
                ),
            }
        }
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

fn parse_filter(query: &str) -> anyhow::Result<UsageFilter> {
    let mut filter = UsageFilter::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "function" => filter.function = Some(value.to_owned()),
            "since" => filter.since = Some(crate::ledger::parse_since(value)?),
            other => anyhow::bail!("unknown query parameter `{other}` (use function, since)"),
        }
    }
    Ok(filter)
}

fn metrics(ledger: Option<&Ledger>) -> String {
    let (written, dropped, errors, lost) = ledger.map_or((0, 0, 0, 0), |l| {
        let s = l.stats();
        (s.written(), s.dropped(), s.write_errors(), s.records_lost())
    });
    format!(
        "# HELP gust_ledger_records_written_total Usage records committed to the ledger.\n\
         # TYPE gust_ledger_records_written_total counter\n\
         gust_ledger_records_written_total {written}\n\
         # HELP gust_ledger_records_dropped_total Usage records lost (queue full or failed commit).\n\
         # TYPE gust_ledger_records_dropped_total counter\n\
         gust_ledger_records_dropped_total {dropped}\n\
         # HELP gust_ledger_write_errors_total Failed ledger commits, and ledger files found removed or replaced.\n\
         # TYPE gust_ledger_write_errors_total counter\n\
         gust_ledger_write_errors_total {errors}\n\
         # HELP gust_ledger_records_lost_total Usage records committed to a ledger file that was then removed or replaced while open.\n\
         # TYPE gust_ledger_records_lost_total counter\n\
         gust_ledger_records_lost_total {lost}\n\
         # HELP gust_guest_log_bytes_dropped_total Guest stdout/stderr bytes not logged (past the capture limit or over the per-function log rate).\n\
         # TYPE gust_guest_log_bytes_dropped_total counter\n\
         gust_guest_log_bytes_dropped_total {guest_dropped}\n",
        guest_dropped = crate::host::capability::output::log_bytes_dropped_total()
    )
}
