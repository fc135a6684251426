//! `gust new LANG NAME`: a new function project from a template built into
//! gust (`runtime/templates/LANG/`): a hello with its `gust.toml`, whose
//! build section `gust build` runs and which `gust serve gust.toml` then
//! serves, unchanged.
//!
//! In a template's files, `{{name}}` is the project's name,
//! `{{name_snake}}` the name with `-` as `_` (Rust's artifact name),
//! `{{gust_sdk}}` and `{{gust_wit}}` gust's `sdk/` and `wit/` directories,
//! `{{rust_channel}}` the Rust toolchain gust is built with.
//! A file named `gitignore` is written as `.gitignore` and a `.tmpl`
//! suffix is dropped (a template's `Cargo.toml` must not look like a crate
//! of gust's own); files starting with `#!` are made executable.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::toolkit::checkout_dir;

/// Every template file: `(language, path in the project, contents)`.
const FILES: &[(&str, &str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/templates.rs"));

/// The languages there are templates for.
pub fn languages() -> Vec<&'static str> {
    let mut langs: Vec<&str> = FILES.iter().map(|(lang, _, _)| *lang).collect();
    langs.dedup();
    langs
}

/// Creates `parent/NAME` from the template of `lang`; returns its path.
/// Refuses an invalid name, an unknown language and an existing directory.
pub fn create(lang: &str, name: &str, parent: &Path) -> anyhow::Result<PathBuf> {
    check_name(name)?;
    let files: Vec<_> = FILES.iter().filter(|(l, _, _)| *l == lang).collect();
    if files.is_empty() {
        anyhow::bail!(
            "no template for `{lang}`: choose one of {}",
            languages().join(", ")
        );
    }
    let dir = parent.join(name);
    if dir.exists() {
        anyhow::bail!("{} already exists", dir.display());
    }
    let sdk = checkout_dir("GUST_SDK", "sdk");
    let wit = checkout_dir("GUST_WIT", "wit");
    let text = |dir: &Option<PathBuf>| dir.as_deref().map(|d| d.display().to_string());
    let (sdk, wit) = (text(&sdk), text(&wit));
    for (_, relative, contents) in files {
        let relative = target_name(relative);
        let path = dir.join(&relative);
        let contents = match std::str::from_utf8(contents) {
            Ok(text) => substitute(text, name, sdk.as_deref(), wit.as_deref())
                .with_context(|| format!("template file {relative}"))?
                .into_bytes(),
            Err(_) => contents.to_vec(),
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, &contents).with_context(|| format!("writing {}", path.display()))?;
        if contents.starts_with(b"#!") {
            make_executable(&path)?;
        }
    }
    Ok(dir)
}

/// Project names: what a function id, a Cargo package and a Go module
/// all accept.
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    anyhow::ensure!(
        ok,
        "invalid name `{name}`: use 1 to 64 of a-z, 0-9 and `-`, starting with a letter"
    );
    Ok(())
}

fn target_name(relative: &str) -> String {
    let relative = relative.strip_suffix(".tmpl").unwrap_or(relative);
    match relative.rsplit_once('/') {
        Some((dir, "gitignore")) => format!("{dir}/.gitignore"),
        None if relative == "gitignore" => ".gitignore".to_owned(),
        _ => relative.to_owned(),
    }
}

fn substitute(
    text: &str,
    name: &str,
    sdk: Option<&str>,
    wit: Option<&str>,
) -> anyhow::Result<String> {
    let mut out = text
        .replace("{{name}}", name)
        .replace("{{name_snake}}", &name.replace('-', "_"))
        .replace("{{rust_channel}}", env!("GUST_RUST_CHANNEL"));
    for (key, value, var) in [
        ("{{gust_sdk}}", sdk, "GUST_SDK"),
        ("{{gust_wit}}", wit, "GUST_WIT"),
    ] {
        if out.contains(key) {
            let value = value.with_context(|| {
                format!(
                    "gust's source checkout is gone: set {var} to gust's {} directory",
                    var[5..].to_lowercase()
                )
            })?;
            out = out.replace(key, value);
        }
    }
    Ok(out)
}

#[cfg(unix)]
fn make_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} executable", path.display()))
}

#[cfg(not(unix))]
fn make_executable(_: &Path) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["hello", "my-fn", "a1"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Hello",
            "1a",
            "a_b",
            "a-",
            "../x",
            "a/b",
            &"a".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_names() {
        assert_eq!(target_name("gitignore"), ".gitignore");
        assert_eq!(target_name("src/gitignore"), "src/.gitignore");
        assert_eq!(target_name("Cargo.toml.tmpl"), "Cargo.toml");
        assert_eq!(target_name("src/lib.rs"), "src/lib.rs");
    }
}
