//! `gust.toml`: parsing and validation into an [`AppSpec`].
//!
//! Parsing rejects unknown fields and malformed values (with the line and the
//! field named by the TOML parser); validation then checks what only the
//! whole document can tell: routes naming unknown functions, conflicting
//! routes, missing component files, limits out of range. All validation
//! problems are reported together, each with the field it concerns.
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:8080"
//!
//! [defaults]
//! fuel = 5_000_000_000
//! timeout = "10s"
//!
//! [functions.hello]
//! component = "hello.wasm"
//!
//! [functions.users]
//! component = "users.wasm"
//! timeout = "2s"
//!
//! [[routes]]
//! path = "/hello"
//! function = "hello"
//!
//! [[routes]]
//! path = "/users/{id}"
//! function = "users"
//! methods = ["GET", "DELETE"]
//! ```

mod backends;
mod build;
mod grants;
mod hosts;
mod model;
mod node;
mod runtime;
mod sections;
mod spec;

pub use backends::{
    BlobDecl, BlobLimits, CapabilitySettings, ContainerBackend, ContainerDecl, DataDecl,
    KeyValueDecl, KeyValueLimits, S3Settings, SecretDecl, SecretSource, StoreBackend, StoreDecl,
    TemplatePart, parse_template, valid_name,
};
pub use build::{BuildStep, build_steps};
pub use grants::Grants;
pub use hosts::{HostMatch, HostPattern, request_host};
pub(crate) use model::duration;
pub use model::{
    AdminDecl, BuildDecl, CacheDecl, FunctionDecl, FunctionId, LedgerDecl, LimitsDecl, LoadDecl,
    Manifest, MethodName, QuotaDecl, RouteDecl, ServerDecl, TelemetryDecl,
};
pub use runtime::{
    AdminSettings, EngineSettings, LedgerLocation, LedgerSettings, RuntimeSpec, ServerSettings,
    TelemetrySettings,
};
pub use sections::{OPERATOR_SECTIONS, TENANT_SECTIONS};
pub use spec::{AppSpec, ComponentSource, Config, FunctionSpec, Limits};

use std::fmt;
use std::path::{Path, PathBuf};

/// One thing wrong with a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field concerned, e.g. `routes[2].function`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// A manifest that cannot be used, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// Where the manifest came from (a path, or `<inline>`).
    pub origin: String,
    /// What is wrong; never empty.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid manifest {}:", self.origin)?;
        for problem in &self.problems {
            if problem.field.is_empty() {
                write!(f, "\n  - {}", problem.message)?;
            } else {
                write!(f, "\n  - {}: {}", problem.field, problem.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ManifestError {}

impl ManifestError {
    fn single(origin: &str, field: &str, message: impl Into<String>) -> Self {
        ManifestError {
            origin: origin.to_owned(),
            problems: vec![Problem {
                field: field.to_owned(),
                message: message.into(),
            }],
        }
    }
}

impl Manifest {
    /// Parses TOML text. `origin` names the document in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Manifest, ManifestError> {
        toml::from_str(text).map_err(|e| {
            // The TOML error names the key and shows the offending line.
            ManifestError::single(origin, "", e.to_string().trim_end())
        })
    }

    /// Reads, parses and validates a manifest file. Component paths are
    /// resolved against the manifest's directory.
    pub fn load(path: &Path) -> Result<Config, ManifestError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ManifestError::single(&origin, "", format!("cannot read file: {e}")))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Manifest::parse(&text, &origin)?.validate(&base, &origin)
    }

    /// Checks the whole document and resolves it into the tenant's
    /// [`AppSpec`] and the operator's [`RuntimeSpec`].
    pub fn validate(self, base: &Path, origin: &str) -> Result<Config, ManifestError> {
        spec::validate(self, base, origin)
    }

    /// Validates the `gust.toml` of a deployed bundle (`text`, components
    /// under `base`) against the node's operator settings: the tenant's
    /// sections only, every problem reported at once.
    pub fn validate_bundle(
        text: &str,
        base: &Path,
        origin: &str,
        runtime: &RuntimeSpec,
    ) -> Result<AppSpec, ManifestError> {
        spec::validate_bundle(text, base, origin, runtime)
    }
}

/// Resolves `path` against `base` unless it is absolute.
fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// Every problem a validation finds, collected to be reported at once.
struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            field: field.into(),
            message: message.into(),
        });
    }
}

#[cfg(test)]
mod tests;
