//! The admin listener: the deploy API, usage and metrics for the operator,
//! on an address of its own (loopback by default), never on the public
//! port.
//!
//! | request | answer |
//! |---|---|
//! | `GET /healthz` | `ok` |
//! | `GET /metrics` | metrics per app and function (`telemetry::metrics`), in OpenMetrics when the `Accept` header takes it, else Prometheus text 0.0.4 |
//! | `GET /usage?function=F&since=T` | usage totals per function as JSON (as `gust usage --format json`); `since` is RFC 3339 or a duration ago like `1h` |
//! | `/v1/...` | the deploy API (`apps`), with a bearer token (`auth`) |
//!
//! One module per job: `usage` (usage and ledger counters), `apps` (the
//! deploy API), `auth` (tokens and the failure limit).

mod apps;
mod auth;
mod usage;

use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode, header};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::deploy::Deployer;
use crate::deploy::audit::AuditLog;
use crate::deploy::tokens::{FailureLimiter, Tokens};
use crate::ledger::Ledger;
use crate::logs::LogBook;
use crate::telemetry::metrics::{Metrics, Sources};

/// Time allowed for an admin request's head (HTTP/1.1). Default: 10 s.
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// An admin response.
pub(crate) type Reply = hyper::Response<Full<Bytes>>;

/// What the admin listener serves: usage from the ledger, and the deploy
/// API when it has a [`Deployer`].
pub struct Admin {
    ledger: Option<Arc<Ledger>>,
    deploy: Option<DeployApi>,
    logs: Option<LogBook>,
    metrics: Metrics,
}

/// The deploy API's parts.
struct DeployApi {
    deployer: Deployer,
    auth: auth::Auth,
    audit: AuditLog,
}

impl Admin {
    /// Usage and metrics from `ledger`; no deploy API.
    pub fn new(ledger: Option<Arc<Ledger>>) -> Admin {
        let metrics = Metrics::new(Sources {
            ledger: ledger.clone(),
            ..Sources::default()
        });
        Admin {
            ledger,
            deploy: None,
            logs: None,
            metrics,
        }
    }

    /// Turns the deploy API on, over `deployer`, with the token file and
    /// audit log of the node's `[admin]` settings.
    pub fn with_deployer(mut self, deployer: Deployer) -> anyhow::Result<Admin> {
        let settings = &deployer.runtime().admin;
        let audit = AuditLog::open(&settings.audit_log).map_err(|e| {
            anyhow::anyhow!(
                "cannot open the audit log {}: {e}",
                settings.audit_log.display()
            )
        })?;
        let auth = auth::Auth {
            tokens: Tokens::new(&settings.tokens),
            limiter: FailureLimiter::default(),
        };
        self.deploy = Some(DeployApi {
            deployer,
            auth,
            audit,
        });
        Ok(self)
    }

    /// Serves `GET /v1/apps/{app}/logs` from `logs`.
    pub fn with_logs(mut self, logs: LogBook) -> Admin {
        self.logs = Some(logs);
        self
    }

    /// Serves `GET /metrics` from `metrics` (by default: the ledger's
    /// counters only).
    pub fn with_metrics(mut self, metrics: Metrics) -> Admin {
        self.metrics = metrics;
        self
    }

    /// Serves the admin endpoints on `listener` until `shutdown` completes.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let admin = Arc::new(self);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, peer)) = accepted else { continue };
                    let admin = admin.clone();
                    let service = hyper::service::service_fn(move |req| {
                        let admin = admin.clone();
                        async move { Ok::<_, Infallible>(handle(admin, peer.ip(), req).await) }
                    });
                    tokio::spawn(async move {
                        let mut builder = auto::Builder::new(TokioExecutor::new());
                        // A client that never finishes its head does not
                        // hold a connection open forever.
                        builder
                            .http1()
                            .timer(TokioTimer::new())
                            .header_read_timeout(HEADER_READ_TIMEOUT);
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                () = &mut shutdown => return,
            }
        }
    }
}

/// Serves usage and metrics from `ledger` on `listener` until `shutdown`
/// completes (no deploy API: see [`Admin`]).
pub async fn serve(
    listener: TcpListener,
    ledger: Option<Arc<Ledger>>,
    shutdown: impl Future<Output = ()>,
) {
    Admin::new(ledger).serve(listener, shutdown).await
}

pub(crate) fn text(status: StatusCode, body: impl Into<String>) -> Reply {
    reply(status, "text/plain", Bytes::from(body.into()))
}

pub(crate) fn json(status: StatusCode, body: serde_json::Value) -> Reply {
    let mut bytes = serde_json::to_vec(&body).unwrap_or_default();
    bytes.push(b'\n');
    reply(status, "application/json", Bytes::from(bytes))
}

fn reply(status: StatusCode, content_type: &'static str, body: Bytes) -> Reply {
    let mut response = hyper::Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

pub(crate) fn method_not_allowed(allow: &'static str) -> Reply {
    let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    response
}

/// The `key=value` pairs of a query string, percent-decoded.
pub(crate) fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle<B>(admin: Arc<Admin>, peer: IpAddr, req: hyper::Request<B>) -> Reply
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let path = req.uri().path();
    if path == "/v1" || path.starts_with("/v1/") {
        return apps::handle(admin, peer, req).await;
    }
    if req.method() != Method::GET {
        return method_not_allowed("GET");
    }
    match path {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/metrics" => {
            let accept = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok());
            let (content_type, body) = admin.metrics.render(Metrics::accepts_openmetrics(accept));
            reply(StatusCode::OK, content_type, Bytes::from(body))
        }
        "/usage" => {
            let query = req.uri().query().unwrap_or("").to_owned();
            usage::usage(admin.ledger.clone(), None, &query).await
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_pairs_are_decoded() {
        assert_eq!(
            super::query_pairs("since=2026-11-22T10%3A00%3A00Z&function=a+b&x&bad=%zz%4"),
            vec![
                ("since".into(), "2026-11-22T10:00:00Z".into()),
                ("function".into(), "a b".into()),
                ("x".into(), String::new()),
                ("bad".into(), "%zz%4".into()),
            ]
        );
    }
}
