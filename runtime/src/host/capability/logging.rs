//! `wasi:logging@0.1.0-draft` (wasmCloud's logging interface).
//!
//! A message goes into the instance's kept stderr (see `output`) as one
//! line, `LEVEL context: message`, so it is bounded, rate limited, escaped
//! and logged with the invocation's app, function and request id exactly
//! like what the guest prints. Nothing to grant: writing to stderr is
//! always allowed, and this is the same thing with a level.
//! Marked as `wasi:logging`'s, it is kept in the node's log book (if any)
//! as stream `log` with its level.

use wasmtime::component::{HasSelf, Linker};

use super::Capability;
use crate::host::HostState;
use crate::host::bindings::logging::wasi::logging::logging::{Host, Level, add_to_linker};
use crate::manifest::{AppSpec, CapabilitySettings, FunctionId};

/// The logging capability.
pub(crate) struct Logging;

impl Capability for Logging {
    type App = ();
    type Instance = ();

    fn link(linker: &mut Linker<HostState>, _wasip3: bool) -> anyhow::Result<()> {
        add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
        Ok(())
    }

    fn open(_app: &AppSpec, _settings: &CapabilitySettings) -> anyhow::Result<()> {
        Ok(())
    }

    fn instance(_app: &(), _function: &FunctionId) {}
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Trace => "TRACE",
        Level::Debug => "DEBUG",
        Level::Info => "INFO",
        Level::Warn => "WARN",
        Level::Error => "ERROR",
        Level::Critical => "CRITICAL",
    }
}

impl Host for HostState {
    fn log(&mut self, level: Level, context: String, message: String) -> wasmtime::Result<()> {
        let line = if context.is_empty() {
            format!("{} {message}\n", level_name(level))
        } else {
            format!("{} {context}: {message}\n", level_name(level))
        };
        let level = level_name(level);
        self.caps.output.stderr.push_logged(level, line.as_bytes());
        Ok(())
    }
}
