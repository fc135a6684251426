//! {{name}}: a gust function. `GET /` answers `Hello, world!`,
//! `GET /hello/NAME` answers `Hello, NAME!` (`NAME` is the route
//! parameter `{name}` of the route in gust.toml).

use gust_sdk::{Request, RequestExt, Response};

fn handle(req: Request) -> Response {
    let name = req.param("name").unwrap_or("world");
    http::Response::builder()
        .status(200)
        .header("content-type", "text/plain; charset=utf-8")
        .body(format!("Hello, {name}!\n").into_bytes())
        .expect("a valid response")
}

gust_sdk::export!(handle);
