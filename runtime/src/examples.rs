//! The built-in examples: components compiled from `guest-examples/` by the
//! build script and embedded in the binary, so that `gust serve` with no
//! arguments serves something on a fresh clone.
//!
//! | route | example | what it shows |
//! |---|---|---|
//! | `GET /hello` | `hello` | the smallest function |
//! | `/echo/{*rest}` | `echo` | request echoed as JSON (`?raw`: body echoed as is) |
//! | `/users/{id}` | `echo` | route parameters reaching the guest |
//! | `/trap` | `trap` | a guest trap answered with 500 |
//! | `/spin` | `spin` | an endless loop stopped at its 2 s deadline (504) |
//! | `GET /work?n=N` | `work` | fuel growing with the work done |
//! | `/raw/{*rest}` | `raw` | a component built without gust-sdk |
//! | `GET /fetch?url=URL` | `fetch` | outbound HTTP, refused: not granted |
//!
//! Also here, not served by default: `p3-hello` (a WASIp3 component),
//! `spin-hello` (built with the Spin Rust SDK 7) and `minimal` (the fewest
//! host calls a response needs, the benchmarks' floor). The example
//! applications `counter`, `upload`, `users` and `gateway` are embedded too
//! but need their manifests (`guest-examples/NAME/gust.toml`;
//! `gateway/gust.toml` serves all four). Every crate in
//! `guest-examples/` is embedded, so every one is an example a user may
//! read; test fixtures and hostile guests are in `tests/guests/`
//! (`gust_tests::guests`).

use std::time::Duration;

use crate::manifest::{AppSpec, ComponentSource, FunctionId, FunctionSpec, Limits, ManifestError};

include!(concat!(env!("OUT_DIR"), "/examples.rs"));

/// The app `gust serve` runs when given no manifest.
pub fn app_spec() -> Result<AppSpec, ManifestError> {
    let function = |id: &str, bytes: &'static [u8], limits: Limits| FunctionSpec {
        limits,
        ..FunctionSpec::new(
            FunctionId::try_from(id).expect("example ids are valid"),
            ComponentSource::Embedded(bytes),
        )
    };
    // Fuel enough for minutes of spinning, so it is the deadline that
    // stops it (the default budget is about 2 s of this loop).
    let short = Limits {
        timeout: Duration::from_secs(2),
        fuel: 1_000_000_000_000,
        ..Limits::default()
    };
    let functions = vec![
        function("hello", HELLO, Limits::default()),
        function("echo", ECHO, Limits::default()),
        function("trap", TRAP, Limits::default()),
        function("spin", SPIN, short),
        function("work", WORK, Limits::default()),
        function("raw", RAW, Limits::default()),
        function("fetch", FETCH, Limits::default()),
    ];
    let get = || Some(vec![http::Method::GET]);
    let route = |p: &str| p.parse().expect("example routes are valid");
    AppSpec::new(
        functions,
        vec![
            (route("/hello"), get(), 0),
            (route("/echo/{*rest}"), None, 1),
            (route("/users/{id}"), None, 1),
            (route("/trap"), None, 2),
            (route("/spin"), None, 3),
            (route("/work"), get(), 4),
            (route("/raw/{*rest}"), None, 5),
            (route("/fetch"), get(), 6),
        ],
    )
}
