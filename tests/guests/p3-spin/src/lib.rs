//! Hostile WASIp3 guest: a `wasi:http/handler@0.3` component that never
//! responds and burns CPU in an endless loop, so gust must interrupt it
//! (epoch deadline / timeout) instead of waiting.
//!
//! With `?after-head` it first returns the response head (`200`, streamed
//! body) and writes one chunk `spinning\n`, then spins while the body is
//! still open.

use wasip3::http::types::{ErrorCode, Fields, Request, Response};
use wasip3::{wit_future, wit_stream};

struct Spin;

/// Burns CPU forever without ever yielding to the host.
fn spin() -> ! {
    let mut counter: u64 = 0;
    loop {
        counter = core::hint::black_box(counter.wrapping_add(1));
    }
}

impl wasip3::exports::http::handler::Guest for Spin {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let after_head = request
            .get_path_with_query()
            .and_then(|p| p.split_once('?').map(|(_, q)| q.to_owned()))
            .is_some_and(|q| q.split('&').any(|kv| kv == "after-head"));
        if !after_head {
            spin();
        }

        let headers = Fields::from_list(&[("content-type".to_owned(), b"text/plain".to_vec())])
            .expect("static header is valid");
        let (mut body, body_reader) = wit_stream::new();
        let (trailers, trailers_reader) = wit_future::new(|| Ok(None));
        let (response, _sent) = Response::new(headers, Some(body_reader), trailers_reader);
        wasip3::spawn_local(async move {
            let _trailers = trailers;
            body.write_all(b"spinning\n".to_vec()).await;
            spin();
        });
        Ok(response)
    }
}

wasip3::http::service::export!(Spin);
