//! The function's configuration (`wasi:config/store@0.2.0-rc.1`): the
//! `config` table of its manifest entry, with `{{ secrets.NAME }}`
//! templates resolved by the host from the operator's secrets.
//!
//! ```no_run
//! // gust.toml:
//! //   [functions.greet]
//! //   config = { greeting = "Hello", api_key = "{{ secrets.api_key }}" }
//! use gust_sdk::config;
//!
//! fn greet() -> Result<String, config::Error> {
//!     let greeting = config::get("greeting")?.unwrap_or_else(|| "Hi".to_owned());
//!     // `require` fails when the key is missing.
//!     let key = config::require("api_key")?;
//!     let keys = config::all()?.len();
//!     Ok(format!("{greeting}! ({keys} settings, key of {} bytes)\n", key.len()))
//! }
//!
//! gust_sdk::export!(greet);
//! ```

use std::fmt;

use crate::bindings::wasi::config0_2_0_rc_1::store;

/// What reading the configuration can fail with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// [`require`]d key that is not set.
    Missing(String),
    /// The source of the configuration failed (e.g. a secret could not
    /// be resolved).
    Upstream(String),
    /// Reading the configuration failed.
    Io(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Missing(key) => write!(f, "config value {key:?} is not set"),
            Error::Upstream(message) => write!(f, "config source error: {message}"),
            Error::Io(message) => write!(f, "config error: {message}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<store::Error> for Error {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::Upstream(message) => Error::Upstream(message),
            store::Error::Io(message) => Error::Io(message),
        }
    }
}

/// The result of reading the configuration.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The value of `key`, if the manifest sets it.
pub fn get(key: &str) -> Result<Option<String>> {
    Ok(store::get(key)?)
}

/// The value of `key`; [`Error::Missing`] if the manifest does not set it.
pub fn require(key: &str) -> Result<String> {
    get(key)?.ok_or_else(|| Error::Missing(key.to_owned()))
}

/// Every key and value.
pub fn all() -> Result<Vec<(String, String)>> {
    Ok(store::get_all()?)
}
