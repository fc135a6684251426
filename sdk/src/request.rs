//! Turning a `wasi:http` incoming request into an [`http::Request`].

use std::collections::BTreeMap;

use crate::bindings::wasi::http::types::{IncomingRequest, Method, Scheme};
use crate::bindings::wasi::io::streams::StreamError;
use crate::body::IncomingBody;
use crate::{Request, StreamingRequest};

/// Named route parameters of the matched route, e.g. `id` for `/users/{id}`.
///
/// Values are as they appeared in the path (still percent-encoded). A
/// trailing wildcard `{*rest}` captures the rest of the path without its
/// leading slash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteParams {
    /// The matched route pattern, if gust routed this request.
    pub route: Option<String>,
    /// Parameter name to value.
    pub params: BTreeMap<String, String>,
}

impl RouteParams {
    /// Reads the route headers gust sets on a request.
    pub fn from_headers(headers: &http::HeaderMap) -> Self {
        let mut out = RouteParams::default();
        for (name, value) in headers {
            let Ok(value) = value.to_str() else { continue };
            if name.as_str() == crate::headers::ROUTE {
                out.route = Some(value.to_owned());
            } else if let Some(param) = name.as_str().strip_prefix(crate::headers::PARAM_PREFIX) {
                out.params.insert(param.to_owned(), value.to_owned());
            }
        }
        out
    }
}

/// Route information on a request routed by gust.
pub trait RequestExt {
    /// All route parameters.
    fn params(&self) -> &RouteParams;
    /// One named route parameter.
    fn param(&self, name: &str) -> Option<&str> {
        self.params().params.get(name).map(String::as_str)
    }
    /// The matched route pattern.
    fn route(&self) -> Option<&str> {
        self.params().route.as_deref()
    }
}

static EMPTY: RouteParams = RouteParams {
    route: None,
    params: BTreeMap::new(),
};

impl<B> RequestExt for http::Request<B> {
    fn params(&self) -> &RouteParams {
        self.extensions().get::<RouteParams>().unwrap_or(&EMPTY)
    }
}

/// Reads method, URI, headers and the whole body.
pub(crate) fn read(incoming: IncomingRequest) -> Result<Request, String> {
    let request = head(&incoming)?;
    let body = read_body(&incoming)?;
    Ok(request.map(|()| body))
}

/// Reads method, URI and headers; the body is read by the handler.
pub(crate) fn read_streaming(incoming: IncomingRequest) -> Result<StreamingRequest, String> {
    let request = head(&incoming)?;
    let body = incoming
        .consume()
        .map_err(|()| "request body already consumed".to_owned())?;
    let body = IncomingBody::new(body)?;
    Ok(request.map(|()| body))
}

/// Method, URI, headers and route parameters.
fn head(incoming: &IncomingRequest) -> Result<http::Request<()>, String> {
    let method = match incoming.method() {
        Method::Get => http::Method::GET,
        Method::Head => http::Method::HEAD,
        Method::Post => http::Method::POST,
        Method::Put => http::Method::PUT,
        Method::Delete => http::Method::DELETE,
        Method::Connect => http::Method::CONNECT,
        Method::Options => http::Method::OPTIONS,
        Method::Trace => http::Method::TRACE,
        Method::Patch => http::Method::PATCH,
        Method::Other(other) => {
            http::Method::from_bytes(other.as_bytes()).map_err(|e| format!("bad method: {e}"))?
        }
    };
    let path = incoming.path_with_query().unwrap_or_else(|| "/".to_owned());
    let mut uri = http::Uri::builder().path_and_query(path);
    if let Some(authority) = incoming.authority() {
        let scheme = match incoming.scheme() {
            Some(Scheme::Https) => "https".to_owned(),
            Some(Scheme::Other(s)) => s,
            _ => "http".to_owned(),
        };
        uri = uri.scheme(scheme.as_str()).authority(authority);
    }
    let uri = uri.build().map_err(|e| format!("bad uri: {e}"))?;

    let mut builder = http::Request::builder().method(method).uri(uri);
    for (name, value) in incoming.headers().entries() {
        builder = builder.header(name, value);
    }
    let mut request = builder.body(()).map_err(|e| format!("bad request: {e}"))?;
    let params = RouteParams::from_headers(request.headers());
    request.extensions_mut().insert(params);
    Ok(request)
}

fn read_body(incoming: &IncomingRequest) -> Result<Vec<u8>, String> {
    let body = incoming
        .consume()
        .map_err(|()| "request body already consumed".to_owned())?;
    let stream = body
        .stream()
        .map_err(|()| "request body stream unavailable".to_owned())?;
    let mut out = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => out.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(format!("reading request body: {}", e.to_debug_string()));
            }
        }
    }
    Ok(out)
}
