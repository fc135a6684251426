//! A hello written for Spin 4 with the Spin Rust SDK 7, unchanged: a
//! WASIp3 component (`wasi:http/handler@0.3.0`) that gust must serve as it
//! is.

use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;

#[http_service]
async fn handle(request: Request) -> impl IntoResponse {
    format!(
        "Hello from a Spin SDK 7 component at {}!\n",
        request.uri().path()
    )
}
