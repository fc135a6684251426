//! gust's integration tests live in `all/`. This library holds what other
//! test code needs too: the test guests.

/// The test guests of `tests/guests/` (fixtures and hostile guests),
/// compiled by `build.rs`: `MEMORY_BOMB` (the component's bytes),
/// `MEMORY_BOMB_PATH` (where it is), ... and `ALL`. The examples users see
/// are `gust_runtime::examples`.
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}
