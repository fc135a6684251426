//! WASIp3 guest that keeps working after its response is complete: a
//! `wasi:http/handler@0.3` component that sends the full response `done\n`,
//! then, still in the same task, sleeps 50 ms (async `wait-for`) and writes
//! `post-return work finished` to stderr. Tests use it to check that gust
//! lets a p3 task run on after the response, and that the client is not
//! kept waiting for that work.

use wasip3::clocks::monotonic_clock;
use wasip3::http::types::{ErrorCode, Fields, Request, Response};
use wasip3::{wit_future, wit_stream};

struct PostReturn;

/// Writes `line` to the WASIp3 `wasi:cli/stderr`.
async fn log(line: &str) {
    let (mut tx, rx) = wit_stream::new();
    let written = wasip3::cli::stderr::write_via_stream(rx);
    tx.write_all(line.as_bytes().to_vec()).await;
    drop(tx);
    let _ = written.await;
}

impl wasip3::exports::http::handler::Guest for PostReturn {
    async fn handle(_request: Request) -> Result<Response, ErrorCode> {
        let headers = Fields::from_list(&[("content-type".to_owned(), b"text/plain".to_vec())])
            .expect("static header is valid");
        let (mut body, body_reader) = wit_stream::new();
        let (trailers, trailers_reader) = wit_future::new(|| Ok(None));
        let (response, _sent) = Response::new(headers, Some(body_reader), trailers_reader);
        wasip3::spawn_local(async move {
            body.write_all(b"done\n".to_vec()).await;
            // Close the body and send "no trailers": the response is complete.
            drop(body);
            drop(trailers);
            monotonic_clock::wait_for(50_000_000).await;
            log("post-return work finished\n").await;
        });
        Ok(response)
    }
}

wasip3::http::service::export!(PostReturn);
