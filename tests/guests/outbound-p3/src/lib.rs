//! A WASIp3 guest that sends a request through the p3 client
//! (`wasi:http/client.send`), for the outbound HTTP tests: `GET
//! /...?url=URL` (the rest of the query, as it is) sends `GET URL` and
//! answers with the upstream status and body (read whole), or `502` and
//! the error code when the request or its body fails.

use wasip3::http::client;
use wasip3::http::types::{ErrorCode, Fields, Request, Response, Scheme};
use wasip3::{wit_future, wit_stream};

struct Fetch;

fn answer(status: u16, body: Vec<u8>) -> Result<Response, ErrorCode> {
    let (mut body_out, body_reader) = wit_stream::new();
    let (trailers, trailers_reader) = wit_future::new(|| Ok(None));
    let (response, _sent) = Response::new(Fields::new(), Some(body_reader), trailers_reader);
    response
        .set_status_code(status)
        .map_err(|()| ErrorCode::InternalError(Some("bad status".to_owned())))?;
    wasip3::spawn_local(async move {
        let _ = body_out.write_all(body).await;
        drop(body_out);
        drop(trailers);
    });
    Ok(response)
}

fn failed(what: &str, code: &ErrorCode) -> Result<Response, ErrorCode> {
    answer(502, format!("{what}: {code:?}\n").into_bytes())
}

impl wasip3::exports::http::handler::Guest for Fetch {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let url = request
            .get_path_with_query()
            .and_then(|p| p.split_once("?url=").map(|(_, url)| url.to_owned()))
            .unwrap_or_default();
        drop(request);
        let Some((scheme, rest)) = url.split_once("://") else {
            return answer(400, b"no ?url=\n".to_vec());
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (trailers, trailers_reader) = wit_future::new(|| Ok(None));
        drop(trailers);
        let (outgoing, _sent) = Request::new(Fields::new(), None, trailers_reader, None);
        let scheme = if scheme == "https" {
            Scheme::Https
        } else {
            Scheme::Http
        };
        let _ = outgoing.set_scheme(Some(&scheme));
        let _ = outgoing.set_authority(Some(authority));
        let _ = outgoing.set_path_with_query(Some(path));
        let response = match client::send(outgoing).await {
            Ok(response) => response,
            Err(code) => return failed("outbound request failed", &code),
        };
        let status = response.get_status_code();
        let (done, done_reader) = wit_future::new(|| Ok(()));
        let (body, result) = Response::consume_body(response, done_reader);
        let bytes = body.collect().await;
        drop(done);
        match result.await {
            Ok(_) => answer(status, bytes),
            Err(code) => failed("body failed", &code),
        }
    }
}

wasip3::http::service::export!(Fetch);
