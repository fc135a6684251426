//! Streaming WASIp3 echo: a `wasi:http/handler@0.3` component that answers
//! `200` and streams the request body back chunk by chunk as it reads it,
//! never holding more than one chunk. It copies the request's
//! `content-type`, and reflects the `x-gust-route` request header as
//! `x-echo-route` so tests can see route headers reach a p3 guest.
//!
//! Query flags:
//! - `?trailers`: also send the response trailer `x-trailer: done`
//!   (declared in a `trailer` header, as HTTP/1.1 needs).
//! - `?params`: instead of echoing, answer `text/plain` with one
//!   `name=value` line per `x-gust-*` request header, sorted by name.

use wasip3::http::types::{ErrorCode, Fields, Request, Response};
use wasip3::wit_bindgen::StreamResult;
use wasip3::{wit_future, wit_stream};

/// Largest chunk read from the request body at a time.
const CHUNK: usize = 16 * 1024;

struct Echo;

impl wasip3::exports::http::handler::Guest for Echo {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let query = request
            .get_path_with_query()
            .and_then(|p| p.split_once('?').map(|(_, q)| q.to_owned()))
            .unwrap_or_default();
        let has_flag = |flag: &str| {
            query
                .split('&')
                .any(|kv| kv.split('=').next() == Some(flag))
        };
        let request_headers = request.get_headers();

        if has_flag("params") {
            return Ok(params_response(&request_headers));
        }

        let mut headers = Vec::new();
        if let Some(value) = request_headers.get("content-type").into_iter().next() {
            headers.push(("content-type".to_owned(), value));
        }
        if let Some(value) = request_headers.get("x-gust-route").into_iter().next() {
            headers.push(("x-echo-route".to_owned(), value));
        }
        drop(request_headers);
        let send_trailers = has_flag("trailers");
        if send_trailers {
            // HTTP/1.1 servers send only the trailers a response declares.
            headers.push(("trailer".to_owned(), b"x-trailer".to_vec()));
        }
        let headers = Fields::from_list(&headers).map_err(|e| internal(format!("{e:?}")))?;

        // Dropping `request_done` (after the body is read) reports `Ok(())`.
        let (request_done, request_done_reader) = wit_future::new(|| Ok(()));
        let (mut body_in, trailers_in) = Request::consume_body(request, request_done_reader);
        let (mut body_out, body_out_reader) = wit_stream::new();
        let (trailers_out, trailers_out_reader) = wit_future::new(|| Ok(None));
        let (response, _sent) = Response::new(headers, Some(body_out_reader), trailers_out_reader);

        // Copy the body after `handle` returned: the host only starts reading
        // the response body once it has the response.
        wasip3::spawn_local(async move {
            loop {
                let (status, chunk) = body_in.read(Vec::with_capacity(CHUNK)).await;
                match status {
                    StreamResult::Complete(_) => {
                        if !chunk.is_empty() && !body_out.write_all(chunk).await.is_empty() {
                            // The client went away: nothing left to do.
                            return;
                        }
                    }
                    StreamResult::Dropped | StreamResult::Cancelled => break,
                }
            }
            let request_end = trailers_in.await;
            drop(request_done);
            drop(body_out);
            match request_end {
                Err(e) => {
                    // The request body broke off: end the response in error too.
                    let _ = trailers_out.write(Err(e)).await;
                }
                Ok(_) if send_trailers => {
                    let trailers = Fields::from_list(&[("x-trailer".to_owned(), b"done".to_vec())])
                        .expect("static trailer is valid");
                    let _ = trailers_out.write(Ok(Some(trailers))).await;
                }
                Ok(_) => drop(trailers_out),
            }
        });
        Ok(response)
    }
}

/// `name=value` lines for every `x-gust-*` request header, sorted by name.
fn params_response(request_headers: &Fields) -> Response {
    let mut params: Vec<(String, Vec<u8>)> = request_headers
        .copy_all()
        .into_iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value))
        .filter(|(name, _)| name.starts_with("x-gust-"))
        .collect();
    // Stable: repeated headers keep their order.
    params.sort_by(|a, b| a.0.cmp(&b.0));
    let mut body = Vec::new();
    for (name, value) in params {
        body.extend_from_slice(name.as_bytes());
        body.push(b'=');
        body.extend_from_slice(&value);
        body.push(b'\n');
    }
    let headers = Fields::from_list(&[("content-type".to_owned(), b"text/plain".to_vec())])
        .expect("static header is valid");
    let (mut body_out, body_out_reader) = wit_stream::new();
    let (trailers_out, trailers_out_reader) = wit_future::new(|| Ok(None));
    drop(trailers_out);
    let (response, _sent) = Response::new(headers, Some(body_out_reader), trailers_out_reader);
    wasip3::spawn_local(async move {
        body_out.write_all(body).await;
    });
    response
}

fn internal(message: String) -> ErrorCode {
    ErrorCode::InternalError(Some(message))
}

wasip3::http::service::export!(Echo);
