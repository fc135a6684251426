//! gust-sdk's less travelled paths, one route each (by the path's last
//! segment, so it can be mounted anywhere):
//!
//! - `chunks?N`: N chunks `chunk-I\n` through `Body::from_chunks`;
//! - `echo`: the request body streamed back (`Body::from_reader`);
//! - `count`: the request body's length, read as a stream;
//! - `kv`: `update` (appends `x` to `trail`), then `set_many` / `get_many` /
//!   `delete_many` / `keys`, answered as text;
//! - `config`: `config::all()` as `k=v` lines;
//! - `log`: one `log::warn` line;
//! - `send?N`: `http::send_streaming` of N 64 KiB chunks to
//!   `http://tour.gust.internal/count` (itself, in-process), answering what
//!   the callee counted.

use std::io::Read;

use gust_sdk::{Body, StreamingRequest, config, http, kv, log};

fn text(status: u16, body: String) -> http::Response<Body> {
    http::Response::builder()
        .status(status)
        .body(Body::from(body.into_bytes()))
        .unwrap_or_default()
}

fn kv_tour() -> Result<String, kv::Error> {
    let store = kv::Store::open("default")?;
    let trail = store.update("trail", |current| {
        let mut next = current.map(<[u8]>::to_vec).unwrap_or_default();
        next.push(b'x');
        next
    })?;
    store.set_many(&[
        ("a".to_owned(), b"1".to_vec()),
        ("b".to_owned(), b"2".to_vec()),
    ])?;
    let got = store.get_many(&["a".to_owned(), "b".to_owned(), "c".to_owned()])?;
    store.delete_many(&["a".to_owned()])?;
    let mut keys = store.keys()?;
    keys.sort();
    let got: Vec<String> = got
        .into_iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                v.map(|v| String::from_utf8_lossy(&v).into_owned())
                    .unwrap_or("-".into())
            )
        })
        .collect();
    Ok(format!(
        "trail={} got={} keys={}",
        String::from_utf8_lossy(&trail),
        got.join(","),
        keys.join(",")
    ))
}

fn tour(req: StreamingRequest) -> http::Response<Body> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let route = path.rsplit('/').next().unwrap_or("");
    let n: usize = query.parse().unwrap_or(0);
    match route {
        "chunks" => http::Response::new(Body::from_chunks(
            (0..n).map(|i| format!("chunk-{i}\n").into_bytes()),
        )),
        "echo" => http::Response::new(Body::from_reader(req.into_body())),
        "count" => {
            let mut body = req.into_body();
            let mut buf = vec![0u8; 65536];
            let mut total = 0usize;
            loop {
                match body.read(&mut buf) {
                    Ok(0) => break,
                    Ok(k) => total += k,
                    Err(e) => return text(400, format!("reading: {e}")),
                }
            }
            text(200, total.to_string())
        }
        "kv" => match kv_tour() {
            Ok(answer) => text(200, answer),
            Err(e) => text(500, e.to_string()),
        },
        "config" => match config::all() {
            Ok(all) => text(200, all.iter().map(|(k, v)| format!("{k}={v}\n")).collect()),
            Err(e) => text(500, e.to_string()),
        },
        "log" => {
            log::warn("tour was here");
            text(200, "logged".into())
        }
        "send" => {
            let request = http::Request::post("http://tour.gust.internal/count")
                .body(Body::from_chunks((0..n).map(|_| vec![7u8; 65536])));
            let Ok(request) = request else {
                return text(500, "bad request".into());
            };
            match gust_sdk::http::send_streaming(request) {
                Ok(response) => {
                    let status = response.status().as_u16();
                    match response.into_body().bytes() {
                        Ok(bytes) => text(status, String::from_utf8_lossy(&bytes).into_owned()),
                        Err(e) => text(502, format!("reading the answer: {e}")),
                    }
                }
                Err(e) => text(502, e.to_string()),
            }
        }
        _ => text(404, format!("no route {route}")),
    }
}

gust_sdk::export!(tour);
