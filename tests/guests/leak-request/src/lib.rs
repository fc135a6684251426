//! Hostile guest for instance reuse: never drops its incoming request, so
//! the request's unread body stays in the instance's resource table after
//! the response, as componentize-js's runtime leaves it. With `?consume` it
//! takes the `incoming-body` first and leaks that too, with `?stream` also
//! the body's stream. None of them may pin the client's connection.

use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct LeakRequest;

impl wasi::exports::http::incoming_handler::Guest for LeakRequest {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let query = request.path_with_query().unwrap_or_default();
        if query.ends_with("?consume") || query.ends_with("?stream") {
            if let Ok(body) = request.consume() {
                if query.ends_with("?stream")
                    && let Ok(stream) = body.stream()
                {
                    std::mem::forget(stream);
                }
                std::mem::forget(body);
            }
        }
        std::mem::forget(request);
        let body_text = b"leaked\n";
        let Ok(headers) = Fields::from_list(&[(
            "content-length".to_owned(),
            body_text.len().to_string().into_bytes(),
        )]) else {
            return;
        };
        let response = OutgoingResponse::new(headers);
        let Ok(body) = response.body() else { return };
        ResponseOutparam::set(out, Ok(response));
        if let Ok(stream) = body.write() {
            let _ = stream.blocking_write_and_flush(body_text);
        }
        let _ = OutgoingBody::finish(body, None);
    }
}

wasi::http::proxy::export!(LeakRequest);
