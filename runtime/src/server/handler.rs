//! One request: route it, hand it to its function, map every failure to a
//! status.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderName, HeaderValue, header};
use rand::RngExt as _;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::body::{LimitedBody, RequestBody};
use super::invoke::{Invoked, RequestInfo};
use super::reject::Rejection;
use crate::app::{App, RouteTarget};
use crate::host::IoMeter;
use crate::manifest::ServerSettings;
use crate::router::RouteError;

/// Headers gust sets on requests it routes to a function. Clients cannot
/// set them: any `x-gust-*` header they send is removed first.
pub use crate::headers;

const RESERVED_PREFIX: &str = "x-gust-";

/// Length of a request id: 32 lowercase hex digits.
const REQUEST_ID_LEN: usize = 32;

/// A new request id, 128 bits as [`REQUEST_ID_LEN`] lowercase hex digits:
/// the wall-clock time in milliseconds since the Unix epoch (48 bits, the
/// first 12 digits), then 80 random bits from the thread's ChaCha
/// generator (seeded from the OS, no system call per request). Unique in
/// practice, sortable by time to the millisecond, and telling nothing of
/// the requests served before or since.
fn new_request_id() -> String {
    const MS_BITS: u32 = 48;
    const RANDOM_BITS: u32 = 128 - MS_BITS;
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis())
        & ((1 << MS_BITS) - 1);
    let random = rand::rng().random::<u128>() >> MS_BITS;
    format!("{:0REQUEST_ID_LEN$x}", (ms << RANDOM_BITS) | random)
}

/// Serves one request. Never fails: every error becomes a response.
pub(crate) async fn handle<B: RequestBody>(
    app: App,
    settings: ServerSettings,
    request: hyper::Request<B>,
) -> hyper::Response<HyperOutgoingBody> {
    let request_id = new_request_id();
    let mut response = route_and_invoke(&app, &settings, request, request_id.clone()).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(headers::REQUEST_ID), value);
    }
    response
}

async fn route_and_invoke<B: RequestBody>(
    app: &App,
    settings: &ServerSettings,
    mut request: hyper::Request<B>,
    request_id: String,
) -> hyper::Response<HyperOutgoingBody> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_unique_hex_and_start_with_the_time() {
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let ids: Vec<String> = (0..10_000).map(|_| new_request_id()).collect();
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        for id in &ids {
            assert_eq!(id.len(), REQUEST_ID_LEN, "{id}");
            assert!(
                id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                "{id}"
            );
            let ms = u128::from_str_radix(&id[..12], 16).unwrap();
            assert!(
                (before.as_millis()..=after.as_millis()).contains(&ms),
                "{id}"
            );
        }
        // Within one millisecond the order is random; across them, by time.
        assert!(ids.iter().map(|id| &id[..12]).is_sorted());
    }
}
