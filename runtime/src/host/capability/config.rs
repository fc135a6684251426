//! `wasi:config` (both versions components import today, `0.2.0-rc.1` of
//! wasmtime and `0.2.0-draft-2024-09-27` of wasmCloud 2 and Spin) and the
//! environment (`wasi:cli/environment`), per function, with secrets.
//!
//! A function sees exactly the `config` and `environment` tables its
//! manifest gives it: nothing of the host's own environment, nothing of
//! another function's. Values may reference operator secrets,
//! `{{ secrets.NAME }}`, resolved once when the app loads (a missing
//! secret fails the load, naming the secret and never a value). Resolved
//! values are kept in [`Values`], whose `Debug` shows keys only, so they
//! cannot reach a log line by accident.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use anyhow::Context as _;
use wasmtime::component::{HasSelf, Linker};

use super::Capability;
use crate::host::HostState;
use crate::host::bindings::{config_draft, config_rc1};
use crate::manifest::{AppSpec, CapabilitySettings, FunctionId};

/// The config capability.
pub(crate) struct Config;

/// Resolved `(key, value)` pairs: secrets expanded. `Debug` prints keys.
#[derive(Default, Clone)]
pub(crate) struct Values(Vec<(String, String)>);

impl fmt::Debug for Values {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| k))
            .finish()
    }
}

impl Values {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// One function's resolved config and environment.
#[derive(Debug, Default)]
pub(crate) struct FunctionValues {
    config: Values,
    environment: Values,
}

/// Every function's values, resolved when the app opens.
pub(crate) struct AppValues(BTreeMap<FunctionId, Arc<FunctionValues>>);

fn resolve(
    table: &BTreeMap<String, String>,
    settings: &CapabilitySettings,
    what: &str,
) -> anyhow::Result<Values> {
    table
        .iter()
        .map(|(key, template)| {
            settings
                .expand(template)
                .map(|value| (key.clone(), value))
                .map_err(|e| anyhow::anyhow!("{what}.{key}: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .map(Values)
}

impl Capability for Config {
    type App = AppValues;
    type Instance = Arc<FunctionValues>;

    fn link(linker: &mut Linker<HostState>, _wasip3: bool) -> anyhow::Result<()> {
        config_rc1::wasi::config0_2_0_rc_1::store::add_to_linker::<HostState, HasSelf<HostState>>(
            linker,
            |s| s,
        )?;
        config_draft::wasi::config0_2_0_draft_2024_09_27::store::add_to_linker::<
            HostState,
            HasSelf<HostState>,
        >(linker, |s| s)?;
        Ok(())
    }

    fn open(app: &AppSpec, settings: &CapabilitySettings) -> anyhow::Result<AppValues> {
        let mut functions = BTreeMap::new();
        for f in &app.functions {
            let field = format!("functions.{}", f.id);
            let values = FunctionValues {
                config: resolve(&f.grants.config, settings, &format!("{field}.config"))?,
                environment: resolve(
                    &f.grants.environment,
                    settings,
                    &format!("{field}.environment"),
                )?,
            };
            functions.insert(f.id.clone(), Arc::new(values));
        }
        Ok(AppValues(functions))
    }

    fn instance(app: &AppValues, function: &FunctionId) -> Arc<FunctionValues> {
        app.0.get(function).cloned().unwrap_or_default()
    }

    fn configure_wasi(values: &Arc<FunctionValues>, wasi: &mut wasmtime_wasi::WasiCtxBuilder) {
        // Only these: a WasiCtx starts with an empty environment, so the
        // host's own never reaches a guest.
        wasi.envs(&values.environment.0);
    }
}

impl HostState {
    fn config_get(&self, key: &str) -> Option<String> {
        let _span = crate::telemetry::traces::capability("config.get", "gust.config.key", key);
        self.caps.config.config.get(key).map(str::to_owned)
    }

    fn config_all(&self) -> Vec<(String, String)> {
        let _span = crate::telemetry::traces::capability("config.get_all", "gust.config.key", "*");
        self.caps.config.config.0.clone()
    }
}

impl config_rc1::wasi::config0_2_0_rc_1::store::Host for HostState {
    fn get(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<Option<String>, config_rc1::wasi::config0_2_0_rc_1::store::Error>>
    {
        Ok(Ok(self.config_get(&key)))
    }

    fn get_all(
        &mut self,
    ) -> wasmtime::Result<
        Result<Vec<(String, String)>, config_rc1::wasi::config0_2_0_rc_1::store::Error>,
    > {
        Ok(Ok(self.config_all()))
    }
}

impl config_draft::wasi::config0_2_0_draft_2024_09_27::store::Host for HostState {
    fn get(
        &mut self,
        key: String,
    ) -> wasmtime::Result<
        Result<Option<String>, config_draft::wasi::config0_2_0_draft_2024_09_27::store::Error>,
    > {
        Ok(Ok(self.config_get(&key)))
    }

    fn get_all(
        &mut self,
    ) -> wasmtime::Result<
        Result<
            Vec<(String, String)>,
            config_draft::wasi::config0_2_0_draft_2024_09_27::store::Error,
        >,
    > {
        Ok(Ok(self.config_all()))
    }
}

/// Checks secrets resolve before anything is compiled, so `gust check`
/// and a deploy report a missing secret with the other problems.
pub(crate) fn check_secrets(app: &AppSpec, settings: &CapabilitySettings) -> anyhow::Result<()> {
    for f in &app.functions {
        for (what, table) in [
            ("config", &f.grants.config),
            ("environment", &f.grants.environment),
        ] {
            resolve(table, settings, &format!("functions.{}.{what}", f.id))
                .with_context(|| format!("resolving the secrets of `{}`", f.id))?;
        }
    }
    Ok(())
}
