//! Host capabilities: what a guest can reach beyond computing, each behind
//! one small trait, in the spirit of Spin's factors.
//!
//! A capability links its interfaces into the engine's linker once, checks
//! its part of an app's config without I/O, opens what an app needs (pools,
//! directories, allow-lists), makes the state each instance holds in its
//! store (an ungranted capability denies), and resets that state between
//! the requests of a reused instance. [`HostState`] holds one field per
//! capability ([`Caps`]); an [`App`](crate::App) holds one opened state per
//! capability ([`AppCaps`]).
//!
//! Adding a capability is one module implementing [`Capability`], its grant
//! in the manifest's function declaration, and one line in the
//! `capabilities!` list below.
//!
//! The capabilities: the guest's stdout and stderr ([`output`]),
//! `wasi:logging` ([`logging`]), `wasi:config` and the environment with
//! secrets ([`config`]), `wasi:keyvalue` ([`key_value`]),
//! `wasi:blobstore` ([`blob`]) and outbound HTTP with in-process
//! composition ([`outbound_http`]). Nothing but the output streams is
//! granted by default.

pub(crate) mod blob;
pub(crate) mod config;
pub(crate) mod key_value;
pub(crate) mod logging;
pub(crate) mod outbound_http;
pub(crate) mod output;

use wasmtime::component::Linker;
use wasmtime_wasi::WasiCtxBuilder;

use crate::host::HostState;
use crate::manifest::{AppSpec, CapabilitySettings, FunctionId};

/// One host capability.
pub(crate) trait Capability: 'static {
    /// What the capability keeps per app: opened once when the app loads,
    /// shared by every invocation of its functions.
    type App: Send + Sync + 'static;
    /// What it keeps per instance, in the store's [`HostState`].
    type Instance: Send + 'static;

    /// Adds the capability's interfaces to the engine's linker (once per
    /// engine; `wasip3` for the engine of WASIp3 components). The WASI and
    /// `wasi:http` interfaces every function gets are linked by the core.
    fn link(_linker: &mut Linker<HostState>, _wasip3: bool) -> anyhow::Result<()> {
        Ok(())
    }

    /// Checks the app's configuration of this capability (the grants in
    /// `app`, the operator's `settings`), without I/O, as `(field,
    /// problem)` pairs: every problem at once.
    fn validate(
        _app: &AppSpec,
        _settings: &CapabilitySettings,
        _problems: &mut Vec<(String, String)>,
    ) {
    }

    /// Opens what the app needs: backends of the stores and containers its
    /// functions are granted, allow-lists, resolved secrets.
    fn open(app: &AppSpec, settings: &CapabilitySettings) -> anyhow::Result<Self::App>;

    /// The state of a new instance of `function`. A function the capability
    /// was not granted to gets a state that denies.
    fn instance(app: &Self::App, function: &FunctionId) -> Self::Instance;

    /// Lets the capability configure the instance's WASI context (standard
    /// streams, environment, ...).
    fn configure_wasi(_instance: &Self::Instance, _wasi: &mut WasiCtxBuilder) {}

    /// Readies a reused instance's state for its next request.
    fn reset(_instance: &mut Self::Instance) {}
}

/// Declares the capability list: the per-app and per-instance state
/// structs and the functions that run every capability's hooks in order.
macro_rules! capabilities {
    ($($field:ident: $cap:ty,)*) => {
        /// Every capability's per-app state.
        pub(crate) struct AppCaps {
            $(pub(crate) $field: <$cap as Capability>::App,)*
        }

        /// Every capability's per-instance state, in [`HostState`].
        pub(crate) struct Caps {
            $(pub(crate) $field: <$cap as Capability>::Instance,)*
        }

        /// Links every capability's interfaces.
        pub(crate) fn link(linker: &mut Linker<HostState>, wasip3: bool) -> anyhow::Result<()> {
            $(<$cap as Capability>::link(linker, wasip3)?;)*
            Ok(())
        }

        /// Every capability's configuration problems in `app`.
        pub(crate) fn validate(
            app: &AppSpec,
            settings: &CapabilitySettings,
        ) -> Vec<(String, String)> {
            let mut problems = Vec::new();
            $(<$cap as Capability>::validate(app, settings, &mut problems);)*
            problems
        }

        impl AppCaps {
            /// Opens every capability for `app`.
            pub(crate) fn open(
                app: &AppSpec,
                settings: &CapabilitySettings,
            ) -> anyhow::Result<AppCaps> {
                Ok(AppCaps {
                    $($field: <$cap as Capability>::open(app, settings)?,)*
                })
            }

            /// The state of a new instance of `function`.
            pub(crate) fn instance(&self, function: &FunctionId) -> Caps {
                Caps {
                    $($field: <$cap as Capability>::instance(&self.$field, function),)*
                }
            }
        }

        impl Caps {
            /// Lets every capability configure the instance's WASI context.
            pub(crate) fn configure_wasi(&self, wasi: &mut WasiCtxBuilder) {
                $(<$cap as Capability>::configure_wasi(&self.$field, wasi);)*
            }

            /// Readies every capability's state for the next request.
            pub(crate) fn reset(&mut self) {
                $(<$cap as Capability>::reset(&mut self.$field);)*
            }
        }
    };
}

capabilities! {
    output: output::GuestOutputs,
    logging: logging::Logging,
    config: config::Config,
    key_value: key_value::KeyValue,
    blob: blob::Blob,
    outbound_http: outbound_http::OutboundHttp,
}
