//! Hostile guest: recurses without bound on every request, with a frame of
//! sixteen live `u64`s per call, until the native Wasm call stack overflows
//! (wasmtime's `max_wasm_stack`: trap "call stack exhausted"). gust is
//! expected to answer 500 and keep serving.

use gust_sdk::Request;

/// Recurses forever. The sixteen values are live across the call, so each
/// call keeps them in its own frame on the native Wasm stack (they are plain
/// locals, not in linear memory), and the work after the call keeps the
/// recursion from becoming a loop. `black_box` hides the exit condition.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if std::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    let frame: [u64; 16] =
        std::array::from_fn(|i| depth.wrapping_mul(i as u64 + 3).rotate_left(i as u32));
    let below = recurse(depth + 1);
    frame.iter().fold(below, |acc, x| acc.rotate_left(7) ^ x)
}

fn stack_overflow(_req: Request) -> String {
    format!("unreachable: {}\n", recurse(0))
}

gust_sdk::export!(stack_overflow);
