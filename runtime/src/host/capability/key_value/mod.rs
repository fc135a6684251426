//! `wasi:keyvalue` (both drafts): stores a function is granted, on SQLite
//! (the embedded default) or Redis.

use super::Capability;
use crate::manifest::{AppSpec, CapabilitySettings, FunctionId};

/// The key-value capability.
pub(crate) struct KeyValue;

/// An opened store (the `bucket` resource of both drafts).
pub struct Bucket;

/// A compare-and-swap handle (`wasi:keyvalue/atomics.cas`, draft2).
pub struct Cas;

impl Capability for KeyValue {
    type App = ();
    type Instance = ();

    fn open(_app: &AppSpec, _settings: &CapabilitySettings) -> anyhow::Result<()> {
        Ok(())
    }

    fn instance(_app: &(), _function: &FunctionId) {}
}
