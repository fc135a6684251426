//! The smallest gust function: answers every request with a greeting.

use gust_sdk::Request;

fn hello(_req: Request) -> &'static str {
    "Hello from gust!\n"
}

gust_sdk::export!(hello);
