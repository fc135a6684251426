//! The smallest gust function: answers every request with a greeting. It
//! takes no request, so gust-sdk reads none.

fn hello() -> &'static str {
    "Hello from gust!\n"
}

gust_sdk::export!(hello);
