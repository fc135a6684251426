//! Structured logging (`wasi:logging@0.1.0-draft`): messages go to the
//! host's log with the function, app and request they came from, at a
//! level the operator filters on. (What a guest prints to stdout or
//! stderr is captured too, but without a level.)
//!
//! ```no_run
//! use gust_sdk::{log, Request};
//!
//! fn handle(req: Request) -> &'static str {
//!     log::info(format!("{} {}", req.method(), req.uri().path()));
//!     if req.body().is_empty() {
//!         log::warn("empty body");
//!     }
//!     // A context names the part of the function that speaks.
//!     log::log(log::Level::Debug, "parser", "nothing to parse");
//!     "ok\n"
//! }
//!
//! gust_sdk::export!(handle);
//! ```

use crate::bindings::wasi::logging::logging;

pub use crate::bindings::wasi::logging::logging::Level;

/// Logs `message` at `level`, from `context` (a name for the part of the
/// function that speaks; may be empty).
pub fn log(level: Level, context: &str, message: impl AsRef<str>) {
    logging::log(level, context, message.as_ref());
}

/// Logs `message` at trace level.
pub fn trace(message: impl AsRef<str>) {
    log(Level::Trace, "", message);
}

/// Logs `message` at debug level.
pub fn debug(message: impl AsRef<str>) {
    log(Level::Debug, "", message);
}

/// Logs `message` at info level.
pub fn info(message: impl AsRef<str>) {
    log(Level::Info, "", message);
}

/// Logs `message` at warn level.
pub fn warn(message: impl AsRef<str>) {
    log(Level::Warn, "", message);
}

/// Logs `message` at error level.
pub fn error(message: impl AsRef<str>) {
    log(Level::Error, "", message);
}

/// Logs `message` at critical level.
pub fn critical(message: impl AsRef<str>) {
    log(Level::Critical, "", message);
}
