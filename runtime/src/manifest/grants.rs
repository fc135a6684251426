//! What a function is granted, as the tenant writes it in its
//! `[functions.ID]` table (names taken from Spin): nothing is granted by
//! default.
//!
//! ```toml
//! [functions.counter]
//! component = "counter.wasm"
//! key_value_stores = ["default"]
//! blob_containers = ["uploads"]
//! allowed_outbound_hosts = ["https://api.example.com", "http://users.gust.internal"]
//! config = { greeting = "hello", api_token = "{{ secrets.api_token }}" }
//! environment = { LOG_LEVEL = "debug" }
//! ```
//!
//! Names and templates are checked here; each capability checks the rest
//! of its grant (the outbound allow-list's syntax, for one) when the app
//! loads.

use std::collections::BTreeMap;

use super::Problems;
use super::backends::{CapabilitySettings, check_template, valid_name};

/// A function's grants, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Key-value stores it may open, by name.
    pub key_value_stores: Vec<String>,
    /// Blob containers it may open, by name.
    pub blob_containers: Vec<String>,
    /// Outbound HTTP allow-list entries, as written (Spin's syntax:
    /// `scheme://host[:port]`, `*.` wildcards); parsed by the outbound
    /// HTTP capability.
    pub allowed_outbound_hosts: Vec<String>,
    /// `wasi:config` values; may reference `{{ secrets.NAME }}`.
    pub config: BTreeMap<String, String>,
    /// Environment variables (`wasi:cli/environment`); may reference
    /// secrets too. The host's own environment never reaches a guest.
    pub environment: BTreeMap<String, String>,
}

impl Grants {
    /// Whether anything at all is granted.
    pub fn is_empty(&self) -> bool {
        *self == Grants::default()
    }
}

/// Checks a function's grants against the operator's settings.
pub(super) fn check_grants(
    problems: &mut Problems,
    field: &str,
    grants: &Grants,
    settings: &CapabilitySettings,
) {
    for (list, names) in [
        ("key_value_stores", &grants.key_value_stores),
        ("blob_containers", &grants.blob_containers),
    ] {
        for (i, name) in names.iter().enumerate() {
            if !valid_name(name) {
                problems.push(
                    format!("{field}.{list}[{i}]"),
                    format!("invalid name `{name}`: use 1 to 64 of A-Z a-z 0-9 _ - ."),
                );
            }
            if names[..i].contains(name) {
                problems.push(
                    format!("{field}.{list}[{i}]"),
                    format!("`{name}` is listed twice"),
                );
            }
        }
    }
    for (key, value) in &grants.config {
        let ok = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ok {
            problems.push(
                format!("{field}.config.{key}"),
                "invalid key: use A-Z a-z 0-9 _ - .",
            );
        }
        check_template(
            problems,
            &format!("{field}.config.{key}"),
            value,
            &settings.secrets,
        );
    }
    for (key, value) in &grants.environment {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            problems.push(
                format!("{field}.environment.{key}"),
                "invalid variable name (empty, or holds `=` or NUL)",
            );
        }
        if value.contains('\0') {
            problems.push(format!("{field}.environment.{key}"), "holds a NUL byte");
        }
        check_template(
            problems,
            &format!("{field}.environment.{key}"),
            value,
            &settings.secrets,
        );
    }
}
