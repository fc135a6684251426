//! The deploy API's client: `gust deploy`, `gust apps`, `gust rollback`
//! talking to a node's admin listener over HTTP/1.1 (hyper-util's client).

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// How long one request may take, compile time of a deploy included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// A node's admin API, with the caller's token.
pub struct AdminClient {
    base: String,
    token: Option<String>,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// An answer: its status and JSON body (`null` when empty).
pub struct Answer {
    pub status: StatusCode,
    pub body: serde_json::Value,
}

impl Answer {
    /// The body when the status is a success, else an error with the
    /// answer's `error` and every `problems` entry.
    pub fn ok(self) -> anyhow::Result<serde_json::Value> {
        if self.status.is_success() {
            return Ok(self.body);
        }
        let mut message = format!(
            "{}: {}",
            self.status,
            self.body["error"]
                .as_str()
                .map_or_else(|| self.body.to_string(), str::to_owned)
        );
        for problem in self.body["problems"].as_array().into_iter().flatten() {
            let field = problem["field"].as_str().unwrap_or("");
            let text = problem["message"].as_str().unwrap_or("");
            if field.is_empty() {
                message.push_str(&format!("\n  - {text}"));
            } else {
                message.push_str(&format!("\n  - {field}: {text}"));
            }
        }
        if let (Some(host), Some(owner)) =
            (self.body["host"].as_str(), self.body["claimed_by"].as_str())
        {
            message.push_str(&format!("\n  host `{host}` belongs to app `{owner}`"));
        }
        anyhow::bail!(message)
    }
}

impl AdminClient {
    /// A client of the admin listener at `url` (`http://HOST:PORT`, or just
    /// `HOST:PORT`).
    pub fn new(url: &str, token: Option<String>) -> anyhow::Result<AdminClient> {
        let base = if url.contains("://") {
            url.trim_end_matches('/').to_owned()
        } else {
            format!("http://{}", url.trim_end_matches('/'))
        };
        let uri: Uri = base
            .parse()
            .map_err(|e| anyhow::anyhow!("invalid admin URL `{url}`: {e}"))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            anyhow::bail!("invalid admin URL `{url}`: use http://HOST:PORT");
        }
        Ok(AdminClient {
            base,
            token: token.filter(|t| !t.is_empty()),
            client: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    /// Sends `method path` with `body`.
    pub async fn send(&self, method: Method, path: &str, body: Bytes) -> anyhow::Result<Answer> {
        let mut request = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if !body.is_empty() {
            request = request.header(header::CONTENT_TYPE, "application/x-tar");
        }
        let request = request.body(Full::new(body))?;
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status();
            let bytes = response.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| anyhow::anyhow!("{method} {path}: no answer within {REQUEST_TIMEOUT:?}"))?
            .map_err(|e| anyhow::anyhow!("{method} {}{path}: {e:#}", self.base))?;
        let body = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(
                |_| serde_json::json!({ "error": String::from_utf8_lossy(&bytes).trim() }),
            )
        };
        Ok(Answer { status, body })
    }
}
