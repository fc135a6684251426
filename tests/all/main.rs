//! gust's integration tests: real components, the examples of
//! `guest-examples/` and the test guests of `tests/guests/`, served over
//! real HTTP on 127.0.0.1 ephemeral ports.

mod stories;
mod support;

mod admission;
mod applications;
mod apps;
mod billing;
mod blob;
mod cache;
mod clients;
mod concurrency;
mod config;
mod deploy;
mod echo;
mod failures;
mod fuel;
mod host_work;
mod hostile;
mod hot_swap;
mod in_process;
mod key_value;
mod languages;
mod limits;
mod loading;
mod logs;
mod metrics;
mod outbound;
mod p3;
mod raw;
mod request_ids;
mod reuse;
mod routing;
mod sdk;
mod shutdown;
mod soak;
mod tenants;
