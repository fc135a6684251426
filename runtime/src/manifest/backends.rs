//! What the operator sets for the host capabilities: where data lives
//! (`[data]`), which backend serves each key-value store
//! (`[key_value_store.NAME]`) and blob container (`[blob_container.NAME]`),
//! their limits (`[key_value]`, `[blob]`) and where secrets come from
//! (`[secrets.NAME]`). A store or container that a function is granted but
//! the operator did not map gets the embedded default: a SQLite file or a
//! directory under the data directory, one per app, so apps never share
//! data unless the operator maps them to the same backend on purpose.
//!
//! ```toml
//! [data]
//! dir = "/var/lib/gust"
//!
//! [key_value_store.default]
//! type = "redis"
//! url = "redis://127.0.0.1:6379"
//!
//! [blob_container.uploads]
//! type = "s3"
//! endpoint = "http://127.0.0.1:9000"
//! bucket = "uploads"
//! region = "us-east-1"
//! access_key_id = "{{ secrets.s3_key }}"
//! secret_access_key = "{{ secrets.s3_secret }}"
//!
//! [secrets.s3_key]
//! env = "GUST_S3_KEY"
//! [secrets.s3_secret]
//! file = "/run/secrets/s3"
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Problems, resolve};

/// `[data]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataDecl {
    /// Where embedded stores and containers live, relative to the manifest.
    /// Default: gust's data directory (`$XDG_DATA_HOME/gust`, else
    /// `~/.local/share/gust`).
    pub dir: Option<PathBuf>,
}

/// `[key_value_store.NAME]`: the backend of one store name.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum StoreDecl {
    /// A SQLite file (created if missing), relative to the manifest.
    Sqlite {
        /// Default: `kv/NAME.sqlite` under the app's data directory.
        path: Option<PathBuf>,
    },
    /// A Redis server, e.g. `redis://127.0.0.1:6379/0`.
    Redis {
        /// The server's URL.
        url: String,
    },
}

/// `[blob_container.NAME]`: the backend of one container name.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ContainerDecl {
    /// A directory (created if missing), relative to the manifest.
    Fs {
        /// Default: `blob/NAME` under the app's data directory.
        dir: Option<PathBuf>,
    },
    /// An S3-protocol server.
    S3 {
        /// e.g. `https://s3.eu-west-1.amazonaws.com` or `http://127.0.0.1:9000`.
        endpoint: String,
        /// The bucket holding the container's objects.
        bucket: String,
        /// Default: `us-east-1`.
        region: Option<String>,
        /// Key id; may reference a secret, `{{ secrets.NAME }}`.
        access_key_id: String,
        /// Secret key; may reference a secret.
        secret_access_key: String,
    },
}

/// `[key_value]`: limits of every store.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyValueDecl {
    /// Longest key, in bytes.
    pub max_key_size: Option<usize>,
    /// Largest value, in bytes.
    pub max_value_size: Option<usize>,
    /// Most keys in one store.
    pub max_keys: Option<u64>,
}

/// `[blob]`: limits of every container.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobDecl {
    /// Largest object, in bytes.
    pub max_object_size: Option<u64>,
}

/// `[secrets.NAME]`: where one secret's value comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretDecl {
    /// An environment variable of the gust process.
    pub env: Option<String>,
    /// A file (its whole content, one trailing newline removed), relative
    /// to the manifest.
    pub file: Option<PathBuf>,
}

/// A store's backend, resolved.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreBackend {
    /// A SQLite file; `None` is the embedded default under the app's data
    /// directory.
    Sqlite(Option<PathBuf>),
    /// A Redis server.
    Redis(String),
}

impl fmt::Debug for StoreBackend {
    // A Redis URL may hold a password: show only its host.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreBackend::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            StoreBackend::Redis(url) => {
                let shown = url.rsplit('@').next().unwrap_or(url);
                f.debug_tuple("Redis").field(&shown).finish()
            }
        }
    }
}

/// A container's backend, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerBackend {
    /// A directory; `None` is the embedded default under the app's data
    /// directory.
    Fs(Option<PathBuf>),
    /// An S3-protocol bucket.
    S3(S3Settings),
}

/// An S3-protocol container's settings. The credentials are templates
/// (`{{ secrets.NAME }}` or literal) resolved when the app opens; `Debug`
/// shows secret references but hides literal credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// The server's URL.
    pub endpoint: String,
    /// The bucket.
    pub bucket: String,
    /// The region.
    pub region: String,
    /// Key id template.
    pub access_key_id: String,
    /// Secret key template.
    pub secret_access_key: String,
}

impl fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |template: &str| match parse_template(template).as_deref() {
            Ok([TemplatePart::Secret(_)]) => template.to_owned(),
            _ => "<hidden>".to_owned(),
        };
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &shown(&self.access_key_id))
            .field("secret_access_key", &shown(&self.secret_access_key))
            .finish()
    }
}

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable.
    Env(String),
    /// A file.
    File(PathBuf),
}

impl SecretSource {
    /// Reads the secret's value now.
    pub fn read(&self) -> Result<String, String> {
        match self {
            SecretSource::Env(var) => {
                std::env::var(var).map_err(|_| format!("environment variable `{var}` is not set"))
            }
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map(|s| s.strip_suffix('\n').unwrap_or(&s).to_owned())
                .map_err(|e| format!("reading {}: {e}", path.display())),
        }
    }
}

/// Limits of every key-value store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyValueLimits {
    /// Longest key, in bytes. Default: 256.
    pub max_key_size: usize,
    /// Largest value, in bytes. Default: 1 MiB.
    pub max_value_size: usize,
    /// Most keys in one store. Default: 100,000.
    pub max_keys: u64,
}

impl Default for KeyValueLimits {
    fn default() -> Self {
        KeyValueLimits {
            max_key_size: 256,
            max_value_size: 1 << 20,
            max_keys: 100_000,
        }
    }
}

/// Limits of every blob container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLimits {
    /// Largest object, in bytes (a write past it fails; the upload example
    /// answers 413). Default: 1 GiB.
    pub max_object_size: u64,
}

impl Default for BlobLimits {
    fn default() -> Self {
        BlobLimits {
            max_object_size: 1 << 30,
        }
    }
}

/// The operator's capability settings, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapabilitySettings {
    /// Where embedded stores and containers live; `None` is gust's data
    /// directory. Each app gets `apps/APP/` below it.
    pub data_dir: Option<PathBuf>,
    /// Backends of store names; unmapped names get the embedded SQLite.
    pub stores: BTreeMap<String, StoreBackend>,
    /// Backends of container names; unmapped names get a directory.
    pub containers: BTreeMap<String, ContainerBackend>,
    /// Key-value limits.
    pub key_value: KeyValueLimits,
    /// Blob limits.
    pub blob: BlobLimits,
    /// Secrets by name.
    pub secrets: BTreeMap<String, SecretSource>,
    /// Where guest output and `wasi:logging` lines are kept per function
    /// for the admin API; none: only logged through `tracing`. Not read
    /// from a file: the embedder (`gust serve`) sets the node's book.
    pub logs: Option<crate::logs::LogBook>,
}

impl CapabilitySettings {
    /// The data directory of `app`: `DATA/apps/APP`.
    pub fn app_dir(&self, app: &str) -> PathBuf {
        let base = self.data_dir.clone().unwrap_or_else(crate::dirs::data_dir);
        base.join("apps").join(app)
    }

    /// Resolves `{{ secrets.NAME }}` references in `template` (the rest is
    /// kept literally). Errors name the secret, never its value.
    pub fn expand(&self, template: &str) -> Result<String, String> {
        let mut out = String::new();
        for part in parse_template(template)? {
            match part {
                TemplatePart::Text(text) => out.push_str(text),
                TemplatePart::Secret(name) => {
                    let source = self
                        .secrets
                        .get(name)
                        .ok_or_else(|| format!("no secret named `{name}` in [secrets]"))?;
                    out.push_str(&source.read().map_err(|e| format!("secret `{name}`: {e}"))?);
                }
            }
        }
        Ok(out)
    }
}

/// One piece of a value template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart<'a> {
    /// Literal text.
    Text(&'a str),
    /// `{{ secrets.NAME }}`.
    Secret(&'a str),
}

/// Splits a value into literal text and `{{ secrets.NAME }}` references.
pub fn parse_template(template: &str) -> Result<Vec<TemplatePart<'_>>, String> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            parts.push(TemplatePart::Text(&rest[..open]));
        }
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| "`{{` without a closing `}}`".to_owned())?;
        let inner = after[..close].trim();
        let name = inner.strip_prefix("secrets.").ok_or_else(|| {
            format!("`{{{{ {inner} }}}}`: only `{{{{ secrets.NAME }}}}` may be referenced")
        })?;
        if !valid_name(name) {
            return Err(format!("`{name}` is not a valid secret name"));
        }
        parts.push(TemplatePart::Secret(name));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Text(rest));
    }
    Ok(parts)
}

/// Store, container and secret names: 1 to 64 of `A-Z a-z 0-9 _ - .`,
/// not starting with `.`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Reports `name` (of a secret, store or container table) unless it is
/// [`valid_name`].
fn check_name(problems: &mut Problems, field: &str, name: &str) {
    if !valid_name(name) {
        problems.push(field, "invalid name: use 1 to 64 of A-Z a-z 0-9 _ - .");
    }
}

/// Checks every secret reference in `template` names a declared secret.
pub(super) fn check_template(
    problems: &mut Problems,
    field: &str,
    template: &str,
    secrets: &BTreeMap<String, SecretSource>,
) {
    match parse_template(template) {
        Err(e) => problems.push(field, e),
        Ok(parts) => {
            for part in parts {
                if let TemplatePart::Secret(name) = part
                    && !secrets.contains_key(name)
                {
                    problems.push(field, format!("no secret named `{name}` in [secrets]"));
                }
            }
        }
    }
}

/// The operator's capability sections, as written.
pub(super) struct BackendDecls<'a> {
    pub data: &'a DataDecl,
    pub stores: &'a BTreeMap<String, StoreDecl>,
    pub containers: &'a BTreeMap<String, ContainerDecl>,
    pub key_value: &'a KeyValueDecl,
    pub blob: &'a BlobDecl,
    pub secrets: &'a BTreeMap<String, SecretDecl>,
}

/// Validates the operator's capability sections.
pub(super) fn capability_settings(
    decls: BackendDecls<'_>,
    base: &Path,
    problems: &mut Problems,
) -> CapabilitySettings {
    let mut secrets = BTreeMap::new();
    for (name, decl) in decls.secrets {
        let field = format!("secrets.{name}");
        check_name(problems, &field, name);
        match (&decl.env, &decl.file) {
            (Some(var), None) if !var.is_empty() => {
                secrets.insert(name.clone(), SecretSource::Env(var.clone()));
            }
            (None, Some(path)) => {
                secrets.insert(name.clone(), SecretSource::File(resolve(base, path)));
            }
            _ => problems.push(&field, "set exactly one of `env` or `file`"),
        }
    }
    let mut stores = BTreeMap::new();
    for (name, decl) in decls.stores {
        let field = format!("key_value_store.{name}");
        check_name(problems, &field, name);
        let backend = match decl {
            StoreDecl::Sqlite { path } => {
                StoreBackend::Sqlite(path.as_ref().map(|p| resolve(base, p)))
            }
            StoreDecl::Redis { url } => {
                if !(url.starts_with("redis://")
                    || url.starts_with("rediss://")
                    || url.starts_with("redis+unix://"))
                {
                    problems.push(
                        format!("{field}.url"),
                        "must start with redis://, rediss:// or redis+unix://",
                    );
                }
                StoreBackend::Redis(url.clone())
            }
        };
        stores.insert(name.clone(), backend);
    }
    let mut containers = BTreeMap::new();
    for (name, decl) in decls.containers {
        let field = format!("blob_container.{name}");
        check_name(problems, &field, name);
        let backend = match decl {
            ContainerDecl::Fs { dir } => {
                ContainerBackend::Fs(dir.as_ref().map(|d| resolve(base, d)))
            }
            ContainerDecl::S3 {
                endpoint,
                bucket,
                region,
                access_key_id,
                secret_access_key,
            } => {
                if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                    problems.push(
                        format!("{field}.endpoint"),
                        "must be an http:// or https:// URL",
                    );
                }
                if bucket.is_empty() {
                    problems.push(format!("{field}.bucket"), "must not be empty");
                }
                check_template(
                    problems,
                    &format!("{field}.access_key_id"),
                    access_key_id,
                    &secrets,
                );
                check_template(
                    problems,
                    &format!("{field}.secret_access_key"),
                    secret_access_key,
                    &secrets,
                );
                ContainerBackend::S3(S3Settings {
                    endpoint: endpoint.trim_end_matches('/').to_owned(),
                    bucket: bucket.clone(),
                    region: region.clone().unwrap_or_else(|| "us-east-1".to_owned()),
                    access_key_id: access_key_id.clone(),
                    secret_access_key: secret_access_key.clone(),
                })
            }
        };
        containers.insert(name.clone(), backend);
    }
    let d = KeyValueLimits::default();
    let key_value = KeyValueLimits {
        max_key_size: decls.key_value.max_key_size.unwrap_or(d.max_key_size),
        max_value_size: decls.key_value.max_value_size.unwrap_or(d.max_value_size),
        max_keys: decls.key_value.max_keys.unwrap_or(d.max_keys),
    };
    for (name, zero) in [
        ("max_key_size", key_value.max_key_size == 0),
        ("max_value_size", key_value.max_value_size == 0),
        ("max_keys", key_value.max_keys == 0),
    ] {
        if zero {
            problems.push(format!("key_value.{name}"), "must be greater than 0");
        }
    }
    let blob = BlobLimits {
        max_object_size: decls
            .blob
            .max_object_size
            .unwrap_or(BlobLimits::default().max_object_size),
    };
    if blob.max_object_size == 0 {
        problems.push("blob.max_object_size", "must be greater than 0");
    }
    CapabilitySettings {
        data_dir: decls.data.dir.as_ref().map(|d| resolve(base, d)),
        stores,
        containers,
        key_value,
        blob,
        secrets,
        logs: None,
    }
}
