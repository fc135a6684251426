//! Traps on purpose, before sending a response: gust answers 500 and keeps
//! serving every other request.

use gust_sdk::Request;

fn trap(req: Request) -> &'static str {
    panic!("this function traps on purpose ({})", req.uri().path());
}

gust_sdk::export!(trap);
