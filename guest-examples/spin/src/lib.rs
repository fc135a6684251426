//! Loops forever: gust stops it at the function's wall-clock deadline (504)
//! or when it runs out of fuel.

use gust_sdk::Request;

fn spin(_req: Request) -> &'static str {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

gust_sdk::export!(spin);
