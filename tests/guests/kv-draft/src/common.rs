//! HTTP plumbing and query parsing shared by the `kv-draft` and
//! `kv-draft2` test guests (included by path: each crate has its own
//! bindings, both named `crate::wasi`).

use crate::wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

/// Sends `body` with `status`.
pub fn respond(out: ResponseOutparam, status: u16, body: &[u8]) {
    let response = OutgoingResponse::new(Fields::new());
    let _ = response.set_status_code(status);
    let Ok(outgoing) = response.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = outgoing.write() {
        for chunk in body.chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                break;
            }
        }
    }
    let _ = OutgoingBody::finish(outgoing, None);
}

/// The whole request body.
pub fn read_body(request: &IncomingRequest) -> Vec<u8> {
    let mut data = Vec::new();
    let Ok(body) = request.consume() else {
        return data;
    };
    if let Ok(stream) = body.stream() {
        while let Ok(chunk) = stream.blocking_read(65536) {
            data.extend_from_slice(&chunk);
        }
    }
    data
}

/// The request's query parameters.
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn of(request: &IncomingRequest) -> Query {
        let target = request.path_with_query().unwrap_or_default();
        let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
        Query(
            query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (k.to_owned(), v.to_owned())
                })
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn num(&self, name: &str, default: u64) -> u64 {
        self.get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    /// `key=K`, or `keylen=N` for a key of N `k`s.
    pub fn key(&self) -> String {
        match self.get("keylen").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => "k".repeat(n),
            None => self.get("key").unwrap_or("key").to_owned(),
        }
    }

    /// The request body, else `value=V`, else `len=N` bytes of `x`.
    pub fn value(&self, body: Vec<u8>) -> Vec<u8> {
        if !body.is_empty() {
            return body;
        }
        match (
            self.get("value"),
            self.get("len").and_then(|n| n.parse::<usize>().ok()),
        ) {
            (Some(v), _) => v.as_bytes().to_vec(),
            (None, Some(n)) => vec![b'x'; n],
            (None, None) => Vec::new(),
        }
    }
}
