//! One request: route it, hand it to its function, map every failure to a
//! status.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{HeaderName, HeaderValue, header};
use hyper::body::Incoming;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::body::LimitedBody;
use super::reject::Rejection;
use crate::app::{App, RouteTarget};
use crate::host::IoMeter;
use crate::invoke::{Invoked, RequestInfo};
use crate::router::RouteError;

/// Headers gust sets on requests it routes to a function. Clients cannot
/// set them: any `x-gust-*` header they send is removed first.
pub mod headers {
    /// The route pattern that matched, e.g. `/users/{id}`.
    pub const ROUTE: &str = "x-gust-route";
    /// Prefix of one header per named route parameter: `x-gust-param-id`.
    pub const PARAM_PREFIX: &str = "x-gust-param-";
    /// The request id, also on the response.
    pub const REQUEST_ID: &str = "x-request-id";
}

const RESERVED_PREFIX: &str = "x-gust-";

static NEXT_REQUEST: AtomicU64 = AtomicU64::new(1);

fn next_request_id() -> String {
    format!("{:016x}", NEXT_REQUEST.fetch_add(1, Ordering::Relaxed))
}

/// Serves one request. Never fails: every error becomes a response.
pub(crate) async fn handle(
    app: App,
    request: hyper::Request<Incoming>,
) -> hyper::Response<HyperOutgoingBody> {
    let request_id = next_request_id();
    let mut response = route_and_invoke(&app, request, request_id.clone()).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(headers::REQUEST_ID), value);
    }
    response
}

async fn route_and_invoke(
    app: &App,
    mut request: hyper::Request<Incoming>,
    request_id: String,
) -> hyper::Response<HyperOutgoingBody> {
    let settings = app.settings();
    let target_len = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if target_len > settings.max_url_length {
        return Rejection::UriTooLong.into_response();
    }
    // hyper enforces this for HTTP/1.1; HTTP/2 only bounds header bytes.
    if request.headers().len() > settings.max_headers {
        return Rejection::TooManyHeaders.into_response();
    }
    let path = request.uri().path().to_owned();
    let matched = match app.router().lookup(request.method(), &path) {
        Ok(matched) => matched,
        Err(RouteError::NotFound) => return Rejection::NotFound.into_response(),
        Err(RouteError::MethodNotAllowed { allow }) => {
            return Rejection::MethodNotAllowed(allow).into_response();
        }
    };
    let limit = settings.max_body_size;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Rejection::BodyTooLarge.into_response();
    }

    let target = matched.route.target();
    let route = matched.route.pattern().as_str().to_owned();
    let function = &app.functions()[target.function];
    let route_headers = route_headers(target, &matched.params);
    let headers = request.headers_mut();
    let reserved: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with(RESERVED_PREFIX))
        .cloned()
        .collect();
    for name in reserved {
        headers.remove(name);
    }
    match route_headers {
        Some(route_headers) => headers.extend(route_headers),
        None => return Rejection::BadRequest.into_response(),
    }

    let (parts, body) = request.into_parts();
    let io = Arc::new(IoMeter::default());
    let body_deadline = tokio::time::Instant::now() + settings.body_read_timeout;
    let (body, body_status) = LimitedBody::new(body, limit, body_deadline, io.clone());
    let info = RequestInfo {
        request_id,
        route,
        head: parts.method == http::Method::HEAD,
        body: body_status.clone(),
    };
    let invoked = function
        .invoke(
            info,
            hyper::Request::from_parts(parts, body),
            io,
            app.sinks(),
        )
        .await;
    // A guest that answered anyway has its answer replaced: the request it
    // saw was cut short.
    if let Some(rejection) = body_status.rejection() {
        return rejection.into_response();
    }
    match invoked {
        Invoked::Response(response) => response,
        Invoked::GuestError(code) => {
            tracing::debug!(?code, "guest answered with an error code");
            Rejection::GuestError.into_response()
        }
        Invoked::QuotaExceeded(rest) => Rejection::QuotaExceeded(rest).into_response(),
        Invoked::Busy(refused) => {
            tracing::debug!(%refused, "request not admitted");
            Rejection::Busy.into_response()
        }
        Invoked::BadRequest(detail) => {
            tracing::debug!(%detail, "request cannot be passed to the guest");
            Rejection::BadRequest.into_response()
        }
        Invoked::Failed { outcome, detail } => {
            tracing::debug!(%outcome, %detail, "invocation failed without a response");
            Rejection::Failed(outcome).into_response()
        }
    }
}

/// `x-gust-route` and one `x-gust-param-NAME` per parameter (names and
/// the route value prepared at load time); `None` when a parameter value is
/// not a valid header value.
fn route_headers(target: &RouteTarget, params: &[(&str, &str)]) -> Option<http::HeaderMap> {
    let mut map = http::HeaderMap::with_capacity(params.len() + 1);
    map.insert(
        HeaderName::from_static(headers::ROUTE),
        target.route_value.clone(),
    );
    for (name, (_, value)) in target.param_names.iter().zip(params) {
        map.insert(name.clone(), HeaderValue::from_str(value).ok()?);
    }
    Some(map)
}
