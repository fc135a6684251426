//! Hostile guest: tries status codes and headers the host must refuse (an
//! out-of-range status, invalid header names and values, hop-by-hop headers
//! that belong to the connection, not to the function), records for each
//! attempt whether the host refused it, and answers 200 with
//! `{"refused": [...], "accepted": [...]}`. Every header the host accepted
//! goes into the response, so whatever gust lets through must still make a
//! valid HTTP response.

use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

/// Header names that are not valid HTTP tokens.
const INVALID_NAMES: &[&str] = &["bad header", "x\r\ny"];

/// A header value that would split the header block.
const INVALID_VALUE: (&str, &str) = ("x-bad-value", "a\r\nx-injected: 1");

/// Hop-by-hop headers (and `host`): the host owns these.
const FORBIDDEN: &[(&str, &str)] = &[
    ("connection", "close"),
    ("transfer-encoding", "chunked"),
    ("keep-alive", "timeout=5"),
    ("upgrade", "websocket"),
    ("host", "evil.example"),
];

/// Status codes outside 100..=999.
const INVALID_STATUSES: &[u16] = &[1000, 99];

struct BadHeaders;

impl wasi::exports::http::incoming_handler::Guest for BadHeaders {
    fn handle(_request: IncomingRequest, out: ResponseOutparam) {
        let mut outcome = Outcome::default();
        let headers =
            Fields::from_list(&[("content-type".to_owned(), b"application/json".to_vec())])
                .expect("static header is valid");

        let attempts = INVALID_NAMES
            .iter()
            .map(|&name| (name, "1"))
            .chain([INVALID_VALUE])
            .chain(FORBIDDEN.iter().copied());
        for (name, value) in attempts {
            let entry = (name.to_owned(), value.as_bytes().to_vec());
            // A fresh `fields` from the list alone, dropped again...
            outcome.record(
                format!("from_list {name:?}: {value:?}"),
                Fields::from_list(std::slice::from_ref(&entry)).is_ok(),
            );
            // ...and the same entry added to the response's own headers, so
            // whatever is accepted is really sent.
            outcome.record(
                format!("append {name:?}: {value:?}"),
                headers.append(&entry.0, &entry.1).is_ok(),
            );
        }

        let response = OutgoingResponse::new(headers);
        for &status in INVALID_STATUSES {
            outcome.record(
                format!("status {status}"),
                response.set_status_code(status).is_ok(),
            );
        }
        response
            .set_status_code(200)
            .expect("200 is a valid status");

        let body = response.body().expect("body is taken once");
        ResponseOutparam::set(out, Ok(response));
        {
            let stream = body.write().expect("stream is taken once");
            for piece in outcome.to_json().as_bytes().chunks(4096) {
                stream
                    .blocking_write_and_flush(piece)
                    .expect("the client is reading");
            }
        }
        OutgoingBody::finish(body, None).expect("body finishes");
    }
}

/// Which attempts the host refused and which it accepted.
#[derive(Default)]
struct Outcome {
    refused: Vec<String>,
    accepted: Vec<String>,
}

impl Outcome {
    fn record(&mut self, attempt: String, accepted: bool) {
        if accepted {
            self.accepted.push(attempt);
        } else {
            self.refused.push(attempt);
        }
    }

    fn to_json(&self) -> String {
        let list = |items: &[String]| {
            items
                .iter()
                .map(|s| json_string(s))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "{{\"refused\": [{}], \"accepted\": [{}]}}\n",
            list(&self.refused),
            list(&self.accepted)
        )
    }
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

wasi::http::proxy::export!(BadHeaders);
