//! gust's integration tests: real components from `guest-examples/`, served
//! over real HTTP on 127.0.0.1 ephemeral ports.

mod support;

mod billing;
mod cache;
mod concurrency;
mod echo;
mod failures;
mod fuel;
mod limits;
mod loading;
mod outbound;
mod raw;
mod routing;
mod shutdown;
