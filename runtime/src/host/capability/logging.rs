//! `wasi:logging@0.1.0-draft`.

use super::Capability;
use crate::manifest::{AppSpec, CapabilitySettings, FunctionId};

/// The logging capability.
pub(crate) struct Logging;

impl Capability for Logging {
    type App = ();
    type Instance = ();

    fn open(_app: &AppSpec, _settings: &CapabilitySettings) -> anyhow::Result<()> {
        Ok(())
    }

    fn instance(_app: &(), _function: &FunctionId) {}
}
