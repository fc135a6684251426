//! Echoes the request back.
//!
//! By default the answer is a JSON object with the method, path, query,
//! headers, route parameters and body (as UTF-8, lossy). With `?raw` in the
//! query the body comes back byte for byte instead.

use gust_sdk::{Request, RequestExt, http};
use serde_json::{Map, Value, json};

fn echo(req: Request) -> http::Response<Vec<u8>> {
    let query = req.uri().query().unwrap_or("").to_owned();
    if query.split('&').any(|kv| kv == "raw") {
        let content_type = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .cloned()
            .unwrap_or(http::HeaderValue::from_static("application/octet-stream"));
        let mut response = http::Response::new(req.into_body());
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, content_type);
        return response;
    }

    let mut headers = Map::new();
    for (name, value) in req.headers() {
        let value = Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned());
        match headers.get_mut(name.as_str()) {
            Some(Value::Array(values)) => values.push(value),
            _ => {
                headers.insert(name.as_str().to_owned(), Value::Array(vec![value]));
            }
        }
    }
    let params: Map<String, Value> = req
        .params()
        .params
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let body = json!({
        "method": req.method().as_str(),
        "path": req.uri().path(),
        "query": query,
        "headers": headers,
        "route": req.route(),
        "params": params,
        "body": String::from_utf8_lossy(req.body()),
        "body_len": req.body().len(),
    });
    let mut response = http::Response::new(body.to_string().into_bytes());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

gust_sdk::export!(echo);
