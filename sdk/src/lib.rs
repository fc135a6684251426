//! # gust-sdk: write gust functions in Rust
//!
//! A gust function is a `wasi:http/proxy` component. With this crate, writing
//! one is writing an ordinary function from an [`http::Request`] to anything
//! that converts into an [`http::Response`], and exporting it with one macro
//! line:
//!
//! ```no_run
//! use gust_sdk::{Request, Response, RequestExt};
//!
//! fn handle(req: Request) -> Response {
//!     let name = req.param("name").unwrap_or("world").to_owned();
//!     http::Response::builder()
//!         .status(200)
//!         .header("content-type", "text/plain")
//!         .body(format!("Hello, {name}!\n").into_bytes())
//!         .unwrap()
//! }
//!
//! gust_sdk::export!(handle);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2`; the `.wasm`
//! in `target/wasm32-wasip2/release/` is the component to name in `gust.toml`.
//!
//! A handler that needs nothing from the request takes no argument,
//! `fn() -> impl IntoResponse`: the SDK then does not read the request at
//! all, which saves nine host calls and three resource drops (8-10 µs in
//! the in-process benchmark) per invocation.
//!
//! A [`Request`]'s body is read completely before the handler runs. A
//! handler that takes a [`StreamingRequest`] instead reads the body as it
//! arrives (an [`IncomingBody`] is an [`std::io::Read`]), and any handler
//! may answer with a streamed [`Body`] (a reader or chunks), so a function
//! can move more data than its memory holds (see [`body`]). Route
//! information that gust adds (the matched pattern and the named
//! parameters) is available through [`RequestExt`]. A panic in the handler
//! traps the instance, which gust answers with `500`.
//!
//! ## Capabilities
//!
//! What the manifest grants a function, each a module with an example:
//!
//! | module | what | manifest |
//! | --- | --- | --- |
//! | [`kv`] | key-value stores: get, set, atomic increment, compare-and-swap | `key_value_stores = ["default"]` |
//! | [`blob`] | blob containers: objects streamed in and out | `blob_containers = ["uploads"]` |
//! | [`config`] | configuration values and secrets | `config = { key = "value" }` |
//! | [`log`] | leveled logging to the host's log | always |
//! | [`http`] | outbound HTTP, other functions in-process | `allowed_outbound_hosts = [...]` |

pub mod bindings;
pub mod blob;
pub mod body;
pub mod config;
pub mod http;
pub mod kv;
pub mod log;
mod request;
mod response;

pub use body::{Body, IncomingBody};
pub use request::{RequestExt, RouteParams};
pub use response::IntoResponse;

/// The request a handler receives: the body is the complete request body.
pub type Request = ::http::Request<Vec<u8>>;

/// The request a streaming handler receives: the body is read as it
/// arrives.
pub type StreamingRequest = ::http::Request<IncomingBody>;

/// The response a handler usually returns.
pub type Response = ::http::Response<Vec<u8>>;

/// Headers gust sets on every request it routes to a function.
pub mod headers {
    /// The route pattern that matched, e.g. `/users/{id}`.
    pub const ROUTE: &str = "x-gust-route";
    /// Prefix of one header per named route parameter: `x-gust-param-id`.
    pub const PARAM_PREFIX: &str = "x-gust-param-";
}

/// Exports a handler as the component's `wasi:http/incoming-handler`. A
/// handler is one of
///
/// - `fn(Request) -> impl IntoResponse`: the whole body in memory;
/// - `fn(StreamingRequest) -> impl IntoResponse`: the body as a reader;
/// - `fn() -> impl IntoResponse`: the request is not read at all.
#[macro_export]
macro_rules! export {
    ($handler:path) => {
        const _: () = {
            struct GustHandler;
            impl $crate::bindings::exports::wasi::http::incoming_handler::Guest for GustHandler {
                fn handle(
                    request: $crate::bindings::wasi::http::types::IncomingRequest,
                    out: $crate::bindings::wasi::http::types::ResponseOutparam,
                ) {
                    $crate::__private::serve(request, out, $handler)
                }
            }
    $crate::bindings::__export_handler!(GustHandler with_types_in $crate::bindings);
        };
    };
}

#[doc(hidden)]
pub mod __private {
    use crate::bindings::wasi::http::types::{IncomingRequest, ResponseOutparam};
    use crate::{Body, IntoResponse, Request, StreamingRequest};

    /// What [`crate::export!`] accepts; `Marker` tells the shapes apart,
    /// as a function type implements only one of them.
    pub trait Handler<Marker> {
        /// Runs the handler on `incoming`.
        fn run(self, incoming: IncomingRequest) -> ::http::Response<Body>;
    }

    /// `fn(Request) -> R`.
    pub struct TakesRequest;
    /// `fn(StreamingRequest) -> R`.
    pub struct TakesStreamingRequest;
    /// `fn() -> R`.
    pub struct TakesNothing;

    fn bad_request(message: String) -> ::http::Response<Body> {
        ::http::Response::builder()
            .status(400)
            .body(Body::from(message))
            .unwrap_or_default()
    }

    impl<F, R> Handler<TakesRequest> for F
    where
        F: FnOnce(Request) -> R,
        R: IntoResponse,
    {
        fn run(self, incoming: IncomingRequest) -> ::http::Response<Body> {
            match crate::request::read(incoming) {
                Ok(request) => self(request).into_response(),
                Err(message) => bad_request(message),
            }
        }
    }

    impl<F, R> Handler<TakesStreamingRequest> for F
    where
        F: FnOnce(StreamingRequest) -> R,
        R: IntoResponse,
    {
        fn run(self, incoming: IncomingRequest) -> ::http::Response<Body> {
            match crate::request::read_streaming(incoming) {
                Ok(request) => self(request).into_response(),
                Err(message) => bad_request(message),
            }
        }
    }

    impl<F, R> Handler<TakesNothing> for F
    where
        F: FnOnce() -> R,
        R: IntoResponse,
    {
        fn run(self, incoming: IncomingRequest) -> ::http::Response<Body> {
            // Unread: the host discards the body.
            drop(incoming);
            self().into_response()
        }
    }

    /// Reads the request (if the handler takes it), runs the handler and
    /// writes its response.
    pub fn serve<M, H: Handler<M>>(incoming: IncomingRequest, out: ResponseOutparam, handler: H) {
        let response = handler.run(incoming);
        crate::response::write(out, response);
    }
}
