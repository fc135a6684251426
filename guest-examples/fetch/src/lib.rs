//! Makes an outbound request to `?url=http://host:port/path` through
//! `wasi:http/outgoing-handler` and reports what happened: `200` with the
//! upstream status, or `502` with the error code. gust grants no outbound
//! access yet, so this shows the request being refused.

use gust_sdk::bindings::wasi::http::outgoing_handler;
use gust_sdk::bindings::wasi::http::types::{Fields, OutgoingRequest, Scheme};
use gust_sdk::{Request, http};

fn fetch(req: Request) -> (http::StatusCode, String) {
    let url = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("url=")))
        .unwrap_or("http://127.0.0.1:9/");
    let Ok(uri) = url.parse::<http::Uri>() else {
        return (http::StatusCode::BAD_REQUEST, format!("bad url {url}\n"));
    };
    let outgoing = OutgoingRequest::new(Fields::new());
    let _ = outgoing.set_scheme(Some(&Scheme::Http));
    let _ = outgoing.set_authority(uri.authority().map(|a| a.as_str()));
    let _ = outgoing.set_path_with_query(uri.path_and_query().map(|p| p.as_str()));
    let failed = |e: String| {
        (
            http::StatusCode::BAD_GATEWAY,
            format!("outbound request failed: {e}\n"),
        )
    };
    match outgoing_handler::handle(outgoing, None) {
        Err(code) => failed(format!("{code:?}")),
        Ok(future) => {
            future.subscribe().block();
            match future.get() {
                Some(Ok(Ok(response))) => (
                    http::StatusCode::OK,
                    format!("upstream answered {}\n", response.status()),
                ),
                Some(Ok(Err(code))) => failed(format!("{code:?}")),
                other => failed(format!("{other:?}")),
            }
        }
    }
}

gust_sdk::export!(fetch);
