//! The deploy API, every request with a bearer token (`auth`):
//!
//! | request | answer |
//! |---|---|
//! | `GET /v1/apps` | the apps the token may see: version, hosts, functions, deployed at, by whom |
//! | `PUT /v1/apps/{app}` | body: a tar or tar.gz bundle; the new version serves when this answers 200 (201 for a new app) with its version, functions, routes, hosts and load report. 400 (bundle), 413 (too large), 408 (upload too slow), 422 (manifest, every problem; or the app does not load), 409 (a host another app claims): nothing changed |
//! | `GET /v1/apps/{app}` | versions kept, functions, routes, hosts, deployed at, by whom |
//! | `DELETE /v1/apps/{app}` | 204; the app stops serving and its versions are forgotten |
//! | `POST /v1/apps/{app}/rollback` | the previous kept version serves again (409 if none) |
//! | `GET /v1/apps/{app}/usage?function=F&since=T` | as `GET /usage`, the app's rows only |
//! | `GET /v1/apps/{app}/logs?function=F&since=T&limit=N` | the app's kept log lines, oldest first (`limit` default 100) |
//!
//! Every change asked (deploy, delete, rollback) is written to the audit
//! log with its result, refused ones included (but not those refused by
//! the failure limit, which would let a client fill the disk).

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::BodyExt as _;

use super::auth::{Caller, forbidden};
use super::{Admin, DeployApi, Reply, json, method_not_allowed};
use crate::deploy::audit::AuditEntry;
use crate::deploy::{DeployError, describe};
use crate::manifest::FunctionId;

/// Time allowed for a bundle's upload (408 past it). Default: 5 min.
const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Log lines answered when the query names no `limit`.
const DEFAULT_LOG_LIMIT: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    List,
    App,
    Rollback,
    Usage,
    Logs,
}

impl Route {
    fn allow(self) -> &'static str {
        match self {
            Route::List | Route::Usage | Route::Logs => "GET",
            Route::App => "GET, PUT, DELETE",
            Route::Rollback => "POST",
        }
    }
}

/// A change being asked, for the audit log.
struct Change<'a> {
    api: &'a DeployApi,
    action: &'static str,
    app: &'a str,
    peer: IpAddr,
    who: Option<String>,
}

impl Change<'_> {
    fn audit(&self, status: StatusCode, version: Option<u64>, detail: Option<String>) {
        let result = if status.is_success() {
            "ok"
        } else if status.is_server_error() {
            "failed"
        } else {
            "refused"
        };
        self.api.audit.record(AuditEntry {
            time: String::new(),
            who: self.who.clone(),
            peer: self.peer.to_string(),
            action: self.action.to_owned(),
            app: self.app.to_owned(),
            result: result.to_owned(),
            status: status.as_u16(),
            version,
            detail,
        });
    }
}

pub(super) async fn handle<B>(admin: Arc<Admin>, peer: IpAddr, req: hyper::Request<B>) -> Reply
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Some(api) = &admin.deploy else {
        return json(
            StatusCode::NOT_FOUND,
            serde_json::json!({ "error": "the deploy API is not on for this admin listener" }),
        );
    };
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path
        .trim_start_matches("/v1")
        .trim_matches('/')
        .split('/')
        .collect();
    let (route, name) = match segments.as_slice() {
        ["apps"] => (Some(Route::List), None),
        ["apps", app] => (Some(Route::App), Some(*app)),
        ["apps", app, "rollback"] => (Some(Route::Rollback), Some(*app)),
        ["apps", app, "usage"] => (Some(Route::Usage), Some(*app)),
        ["apps", app, "logs"] => (Some(Route::Logs), Some(*app)),
        _ => (None, None),
    };
    let method = req.method().clone();
    let action = match (route, &method) {
        (Some(Route::App), &Method::PUT) => Some("deploy"),
        (Some(Route::App), &Method::DELETE) => Some("delete"),
        (Some(Route::Rollback), &Method::POST) => Some("rollback"),
        _ => None,
    };
    let mut change = action.map(|action| Change {
        api,
        action,
        app: name.unwrap_or(""),
        peer,
        who: None,
    });
    // Who asks, before anything is looked at (even whether the path exists).
    let caller = match api.auth.authenticate(req.headers(), peer) {
        Ok(caller) => caller,
        Err(refused) => {
            if let Some(change) = &change
                && refused.reply.status() != StatusCode::TOO_MANY_REQUESTS
            {
                change.audit(refused.reply.status(), None, Some(refused.reason.into()));
            }
            return refused.reply;
        }
    };
    if let Some(change) = &mut change {
        change.who = Some(caller.token.id.clone());
    }
    let Some(route) = route else {
        return json(
            StatusCode::NOT_FOUND,
            serde_json::json!({ "error": "not found" }),
        );
    };
    let allowed = match route {
        Route::App => matches!(method, Method::GET | Method::PUT | Method::DELETE),
        Route::Rollback => method == Method::POST,
        _ => method == Method::GET,
    };
    if !allowed {
        return method_not_allowed(route.allow());
    }
    if route == Route::List {
        return list(api, &caller);
    }
    let app = match FunctionId::try_from(name.unwrap_or("")) {
        Ok(app) => app,
        Err(e) => {
            let reply = json(StatusCode::BAD_REQUEST, serde_json::json!({ "error": e }));
            if let Some(change) = &change {
                change.audit(reply.status(), None, Some(e));
            }
            return reply;
        }
    };
    if !caller.may(&app) {
        let reply = forbidden(&caller, &app);
        if let Some(change) = &change {
            change.audit(reply.status(), None, Some("token for another app".into()));
        }
        return reply;
    }
    let query = req.uri().query().unwrap_or("").to_owned();
    match (route, method) {
        (Route::App, Method::GET) => match detail(api, &app) {
            Some(body) => json(StatusCode::OK, body),
            None => not_found(&app),
        },
        (Route::App, Method::PUT) => deploy(api, &app, &caller, req, change).await,
        (Route::App, _) => {
            let result = api.deployer.delete(&app).await;
            let (reply, detail) = match result {
                Ok(()) => {
                    if let Some(logs) = &admin.logs {
                        logs.forget_app(&app);
                    }
                    (empty(StatusCode::NO_CONTENT), None)
                }
                Err(e) => (error(&e), Some(e.to_string())),
            };
            if let Some(change) = &change {
                change.audit(reply.status(), None, detail);
            }
            reply
        }
        (Route::Rollback, _) => {
            let result = api.deployer.rollback(&app).await;
            let (reply, version, detail) = match result {
                Ok(done) => (
                    json(StatusCode::OK, done.to_json(&app)),
                    Some(done.meta.version),
                    None,
                ),
                Err(e) => (error(&e), None, Some(e.to_string())),
            };
            if let Some(change) = &change {
                change.audit(reply.status(), version, detail);
            }
            reply
        }
        (Route::Usage, _) => super::usage::usage(admin.ledger.clone(), Some(app), &query).await,
        (Route::Logs, _) => logs(&admin, &app, &query),
        (Route::List, _) => list(api, &caller),
    }
}

async fn deploy<B>(
    api: &DeployApi,
    app: &FunctionId,
    caller: &Caller,
    req: hyper::Request<B>,
    change: Option<Change<'_>>,
) -> Reply
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let max = api.deployer.limits().max_bytes;
    let audit = |reply: &Reply, version: Option<u64>, detail: Option<String>| {
        if let Some(change) = &change {
            change.audit(reply.status(), version, detail);
        }
    };
    let limited =
        http_body_util::Limited::new(req.into_body(), usize::try_from(max).unwrap_or(usize::MAX));
    let collected = tokio::time::timeout(BODY_READ_TIMEOUT, limited.collect()).await;
    let body = match collected {
        Ok(Ok(collected)) => collected.to_bytes(),
        Err(_) => {
            let message = format!(
                "the bundle did not arrive within {}s",
                BODY_READ_TIMEOUT.as_secs()
            );
            let reply = json(
                StatusCode::REQUEST_TIMEOUT,
                serde_json::json!({ "error": message }),
            );
            audit(&reply, None, Some(message));
            return reply;
        }
        Ok(Err(e)) => {
            let too_large = e.is::<http_body_util::LengthLimitError>();
            let (status, message) = if too_large {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the bundle is larger than the limit of {max} bytes"),
                )
            } else {
                (StatusCode::BAD_REQUEST, format!("reading the bundle: {e}"))
            };
            let reply = json(status, serde_json::json!({ "error": message }));
            audit(&reply, None, Some(message));
            return reply;
        }
    };
    let new = api.deployer.kept(app).is_none() && api.deployer.apps().get(app).is_none();
    match api.deployer.deploy(app, body, &caller.token.id).await {
        Ok(done) => {
            let status = if new {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let reply = json(status, done.to_json(app));
            audit(&reply, Some(done.meta.version), None);
            reply
        }
        Err(e) => {
            let reply = error(&e);
            audit(&reply, None, Some(e.to_string()));
            reply
        }
    }
}

fn error(e: &DeployError) -> Reply {
    json(e.status(), e.to_json())
}

fn not_found(app: &FunctionId) -> Reply {
    json(
        StatusCode::NOT_FOUND,
        serde_json::json!({ "error": format!("no app `{app}`") }),
    )
}

fn empty(status: StatusCode) -> Reply {
    let mut reply = hyper::Response::new(http_body_util::Full::new(Bytes::new()));
    *reply.status_mut() = status;
    reply
}

/// The apps `caller` may see, serving or kept.
fn list(api: &DeployApi, caller: &Caller) -> Reply {
    let mut ids = api.deployer.apps().ids();
    ids.extend(api.deployer.deployed());
    ids.sort();
    ids.dedup();
    let apps: Vec<serde_json::Value> = ids
        .iter()
        .filter(|id| caller.may(id))
        .filter_map(|id| summary(api, id))
        .collect();
    json(StatusCode::OK, serde_json::json!({ "apps": apps }))
}

/// One app's line of the list; `None` if it is neither serving nor kept.
fn summary(api: &DeployApi, app: &FunctionId) -> Option<serde_json::Value> {
    let live = api.deployer.apps().get(app);
    let kept = api.deployer.kept(app);
    let current = kept
        .as_ref()
        .and_then(|(record, metas)| metas.iter().find(|m| m.version == record.current));
    let shown = match (&live, current) {
        (Some(live), _) => describe(live),
        (None, Some(meta)) => meta.clone(),
        (None, None) => return None,
    };
    Some(serde_json::json!({
        "app": app.as_str(),
        "serving": live.is_some(),
        "version": kept.as_ref().map(|(r, _)| r.current),
        "previous": kept.as_ref().and_then(|(r, _)| r.previous),
        "hosts": shown.hosts,
        "functions": shown.functions,
        "routes": shown.routes,
        "deployed_at": current.map(|m| m.deployed_at.clone()),
        "deployed_by": current.map(|m| m.deployed_by.clone()),
    }))
}

/// One app in full: the summary and every kept version's metadata.
fn detail(api: &DeployApi, app: &FunctionId) -> Option<serde_json::Value> {
    let mut body = summary(api, app)?;
    let versions = api
        .deployer
        .kept(app)
        .map(|(_, metas)| metas)
        .unwrap_or_default();
    body["versions"] = serde_json::to_value(versions).unwrap_or_default();
    if let Some(events) = api.deployer.events().get(app) {
        body["events"] = serde_json::json!({
            "deploys": events.deploys,
            "rollbacks": events.rollbacks,
            "failures": events.failures,
        });
    }
    Some(body)
}

fn logs(admin: &Admin, app: &FunctionId, query: &str) -> Reply {
    let Some(book) = &admin.logs else {
        return json(
            StatusCode::NOT_IMPLEMENTED,
            serde_json::json!({ "error": "this node keeps no logs" }),
        );
    };
    let mut function = None;
    let mut since = None;
    let mut limit = DEFAULT_LOG_LIMIT;
    for (key, value) in super::query_pairs(query) {
        let parsed = match key.as_str() {
            "function" => FunctionId::try_from(value).map(|f| function = Some(f)),
            "since" => crate::ledger::parse_since(&value)
                .map(|t| since = Some(t))
                .map_err(|e| e.to_string()),
            "limit" => value
                .parse()
                .map(|n| limit = n)
                .map_err(|_| format!("invalid limit `{value}`")),
            other => Err(format!(
                "unknown query parameter `{other}` (use function, since, limit)"
            )),
        };
        if let Err(e) = parsed {
            return json(StatusCode::BAD_REQUEST, serde_json::json!({ "error": e }));
        }
    }
    let lines = book.query(app, function.as_ref(), since, limit);
    json(
        StatusCode::OK,
        serde_json::to_value(lines).unwrap_or_default(),
    )
}
