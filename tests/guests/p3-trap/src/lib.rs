//! Hostile WASIp3 guest: a `wasi:http/handler@0.3` component that panics
//! (traps) before it responds, so gust must answer an error itself.
//!
//! With `?error-code` it returns an error code instead of a response (no
//! trap). With `?after-head` it first returns the response head (`200`, streamed
//! body), writes one chunk `partial\n`, and then panics while streaming: the
//! status line is already out, so the client must see the body cut short.

use wasip3::http::types::{ErrorCode, Fields, Request, Response};
use wasip3::{wit_future, wit_stream};

struct Trap;

impl wasip3::exports::http::handler::Guest for Trap {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let query = request
            .get_path_with_query()
            .and_then(|p| p.split_once('?').map(|(_, q)| q.to_owned()))
            .unwrap_or_default();
        let flag = |name: &str| query.split('&').any(|kv| kv == name);
        if flag("error-code") {
            return Err(ErrorCode::InternalError(Some(
                "p3-trap: an error code on purpose".into(),
            )));
        }
        let after_head = flag("after-head");
        if !after_head {
            panic!("p3-trap: trapping before the response on purpose");
        }

        let headers = Fields::from_list(&[("content-type".to_owned(), b"text/plain".to_vec())])
            .expect("static header is valid");
        let (mut body, body_reader) = wit_stream::new();
        let (trailers, trailers_reader) = wit_future::new(|| Ok(None));
        let (response, _sent) = Response::new(headers, Some(body_reader), trailers_reader);
        wasip3::spawn_local(async move {
            // Keep the trailers writer alive so the body is not ended cleanly.
            let _trailers = trailers;
            body.write_all(b"partial\n".to_vec()).await;
            panic!("p3-trap: trapping in the middle of the body on purpose");
        });
        Ok(response)
    }
}

wasip3::http::service::export!(Trap);
