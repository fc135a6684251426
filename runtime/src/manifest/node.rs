//! A node's configuration: a `gust.toml` with the operator's sections only
//! (`[server]`, `[engine]`, `[ledger]`, `[admin]`, `[telemetry]`,
//! `[cache]`, `[data]`, the capabilities' backends and secrets) and no app:
//! the apps come through the deploy API. Tenant sections (`name`,
//! `hosts`, `defaults`, `functions`, `routes`) are refused; `[billing]`
//! here prices every deployed app.
//!
//! ```toml
//! [server]
//! listen = "0.0.0.0:8080"
//!
//! [admin]
//! listen = "127.0.0.1:8081"
//! state_dir = "/var/lib/gust/state"
//! ```

use std::path::Path;

use super::sections::{TENANT_SECTIONS, refuse, runtime_spec};
use super::{Manifest, ManifestError, Problems, RuntimeSpec};

impl Manifest {
    /// Reads and validates a node's configuration file: the operator's
    /// settings, every problem reported at once. Paths resolve against the
    /// file's directory.
    pub fn load_node(path: &Path) -> Result<RuntimeSpec, ManifestError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ManifestError::single(&origin, "", format!("cannot read file: {e}")))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Manifest::parse_node(&text, &base, &origin)
    }

    /// [`Manifest::load_node`] of `text`, paths resolved against `base`.
    pub fn parse_node(text: &str, base: &Path, origin: &str) -> Result<RuntimeSpec, ManifestError> {
        let mut problems = Problems(Vec::new());
        refuse(
            text,
            TENANT_SECTIONS,
            "app configuration: a node's configuration may not set it (deploy apps with `gust deploy`)",
            &mut problems,
        );
        let m = Manifest::parse(text, origin)?;
        let runtime = runtime_spec(&m, base, &mut problems);
        if problems.0.is_empty() {
            Ok(runtime)
        } else {
            Err(ManifestError {
                origin: origin.to_owned(),
                problems: problems.0,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_config_has_operator_sections_only() {
        let base = Path::new("/etc/gust");
        let runtime = Manifest::parse_node(
            "[server]\nlisten = \"127.0.0.1:9000\"\n[admin]\nlisten = \"127.0.0.1:9001\"\nstate_dir = \"state\"\n",
            base,
            "node.toml",
        )
        .unwrap();
        assert_eq!(runtime.server.listen.port(), 9000);
        assert_eq!(runtime.admin.listen.map(|a| a.port()), Some(9001));
        assert_eq!(runtime.admin.state_dir, base.join("state"));
        assert_eq!(runtime.admin.tokens, base.join("state/tokens"));

        let e = Manifest::parse_node(
            "name = \"x\"\n[functions.a]\ncomponent = \"a.wasm\"\n[engine]\ntime_slice = \"0ms\"\n",
            base,
            "node.toml",
        )
        .unwrap_err();
        let mut fields: Vec<&str> = e.problems.iter().map(|p| p.field.as_str()).collect();
        fields.sort();
        assert_eq!(fields, ["engine.time_slice", "functions", "name"], "{e}");
    }
}
