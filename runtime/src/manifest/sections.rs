//! Whose section is whose: the operator's settings (`RuntimeSpec`), read
//! the same way from a one-app `gust.toml` and from a node's
//! configuration, and the sections a deployed bundle or a node's
//! configuration may not have.

use std::path::Path;

use super::backends::{BackendDecls, capability_settings};
use super::runtime::{
    RuntimeSpec, admin_settings, engine_settings, ledger_settings, server_settings,
    telemetry_settings,
};
use super::{Manifest, Problems, resolve};
use crate::cache::CacheLocation;

/// The sections only the operator sets: a deployed bundle may not (`gust
/// deploy` leaves them out of what it packs). `[billing]` is among them: in
/// a node the operator's prices apply to every deployed app (in a one-app
/// `gust.toml` both sides are one author's).
pub const OPERATOR_SECTIONS: &[&str] = &[
    "billing",
    "server",
    "engine",
    "ledger",
    "admin",
    "telemetry",
    "cache",
    "data",
    "key_value_store",
    "blob_container",
    "key_value",
    "blob",
    "secrets",
];

/// The sections only an app sets: a node's configuration may not.
pub const TENANT_SECTIONS: &[&str] = &["name", "hosts", "defaults", "functions", "routes"];

/// A problem for each top-level key of `text` among `sections`, saying
/// `why`.
pub(super) fn refuse(text: &str, sections: &[&str], why: &str, problems: &mut Problems) {
    if let Ok(table) = text.parse::<toml::Table>() {
        for key in table.keys() {
            if sections.contains(&key.as_str()) {
                problems.push(key.clone(), why);
            }
        }
    }
}

/// The operator's sections of `m`, each validating itself; paths resolve
/// against `base`.
pub(super) fn runtime_spec(m: &Manifest, base: &Path, problems: &mut Problems) -> RuntimeSpec {
    RuntimeSpec {
        prices: m.billing.clone(),
        server: server_settings(&m.server, problems),
        engine: engine_settings(&m.engine, problems),
        ledger: ledger_settings(&m.ledger, base, problems),
        admin: admin_settings(&m.admin, base, problems),
        telemetry: telemetry_settings(&m.telemetry, problems),
        cache: match (m.cache.enabled, &m.cache.dir) {
            (Some(false), _) => CacheLocation::Disabled,
            (_, Some(dir)) => CacheLocation::Dir(resolve(base, dir)),
            (_, None) => CacheLocation::Default,
        },
        capabilities: capability_settings(
            BackendDecls {
                data: &m.data,
                stores: &m.key_value_store,
                containers: &m.blob_container,
                key_value: &m.key_value,
                blob: &m.blob,
                secrets: &m.secrets,
            },
            base,
            problems,
        ),
    }
}
