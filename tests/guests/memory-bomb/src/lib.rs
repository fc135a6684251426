//! Hostile guest: on every request it allocates memory in 1 MiB chunks, fills
//! each one (so the pages are really touched) and leaks it, forever. Once the
//! host refuses to grow linear memory the allocation fails and the guest
//! aborts, which is a trap; it never answers normally. gust is expected to
//! cap the instance's memory, answer 500 and keep serving.

use gust_sdk::Request;

/// How much one allocation asks for.
const CHUNK: usize = 1 << 20;

fn memory_bomb(_req: Request) -> &'static str {
    loop {
        std::mem::forget(std::hint::black_box(vec![0xA5_u8; CHUNK]));
    }
}

gust_sdk::export!(memory_bomb);
