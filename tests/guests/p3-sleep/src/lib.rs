//! Idle WASIp3 guest: a `wasi:http/handler@0.3` component that, for
//! `?ms=N`, waits N milliseconds with the async WASIp3
//! `wasi:clocks/monotonic-clock.wait-for` and then answers `slept N\n`.
//! Unlike `p3-spin` it burns no CPU while waiting: it is parked across an
//! await, which tests that gust lets an idle p3 guest finish (and can run
//! other work meanwhile). Without `?ms` it waits 0 ms; a bad value is a 400.

use wasip3::clocks::monotonic_clock;
use wasip3::http::types::{ErrorCode, Fields, Request, Response};
use wasip3::{wit_future, wit_stream};

struct Sleep;

fn text_response(status: u16, text: String) -> Response {
    let headers = Fields::from_list(&[("content-type".to_owned(), b"text/plain".to_vec())])
        .expect("static header is valid");
    let (mut body, body_reader) = wit_stream::new();
    let (trailers, trailers_reader) = wit_future::new(|| Ok(None));
    drop(trailers);
    let (response, _sent) = Response::new(headers, Some(body_reader), trailers_reader);
    response
        .set_status_code(status)
        .expect("status code is valid");
    wasip3::spawn_local(async move {
        body.write_all(text.into_bytes()).await;
    });
    response
}

impl wasip3::exports::http::handler::Guest for Sleep {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let query = request
            .get_path_with_query()
            .and_then(|p| p.split_once('?').map(|(_, q)| q.to_owned()))
            .unwrap_or_default();
        let ms = match query.split('&').find_map(|kv| kv.strip_prefix("ms=")) {
            None => 0,
            Some(value) => match value.parse::<u64>() {
                Ok(ms) => ms,
                Err(_) => return Ok(text_response(400, format!("bad ms value {value:?}\n"))),
            },
        };
        monotonic_clock::wait_for(ms.saturating_mul(1_000_000)).await;
        Ok(text_response(200, format!("slept {ms}\n")))
    }
}

wasip3::http::service::export!(Sleep);
