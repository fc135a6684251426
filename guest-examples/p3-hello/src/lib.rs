//! The smallest WASIp3 guest: a component that exports
//! `wasi:http/handler@0.3` and answers every request `200` with a fixed
//! `text/plain` greeting. It is the p3 counterpart of `hello`, for testing
//! that gust serves WASIp3 components at all.

use wasip3::http::types::{ErrorCode, Fields, Request, Response};
use wasip3::{wit_future, wit_stream};

const BODY: &[u8] = b"Hello from a WASIp3 gust function!\n";

struct Hello;

impl wasip3::exports::http::handler::Guest for Hello {
    async fn handle(_request: Request) -> Result<Response, ErrorCode> {
        let headers = Fields::from_list(&[("content-type".to_owned(), b"text/plain".to_vec())])
            .expect("static header is valid");
        let (mut body, body_reader) = wit_stream::new();
        // No trailers: dropping the writer sends the default `Ok(None)`.
        let (trailers, trailers_reader) = wit_future::new(|| Ok(None));
        drop(trailers);
        let (response, _sent) = Response::new(headers, Some(body_reader), trailers_reader);

        // The host reads the body only once it has the response, so the body
        // is written by a task that keeps running after `handle` returns.
        wasip3::spawn_local(async move {
            body.write_all(BODY.to_vec()).await;
        });
        Ok(response)
    }
}

wasip3::http::service::export!(Hello);
