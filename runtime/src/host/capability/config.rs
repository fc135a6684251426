//! `wasi:config` (both versions) and the environment, with secrets.

use super::Capability;
use crate::manifest::{AppSpec, CapabilitySettings, FunctionId};

/// The config capability.
pub(crate) struct Config;

impl Capability for Config {
    type App = ();
    type Instance = ();

    fn open(_app: &AppSpec, _settings: &CapabilitySettings) -> anyhow::Result<()> {
        Ok(())
    }

    fn instance(_app: &(), _function: &FunctionId) {}
}
