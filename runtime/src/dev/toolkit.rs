//! What a build command gets from gust, as environment variables:
//!
//! - `GUST_WASI_ADAPTER`: the `wasi_snapshot_preview1` adapter, proxy
//!   flavour, of the wasmtime gust runs on, as a file. Toolchains that emit
//!   a wasip1 core module (Go, C) need it to make a `wasi:http/proxy`
//!   component (`wasm-tools component new --adapt`). The bytes come from
//!   the crates.io crate `wasi-preview1-component-adapter-provider`.
//! - `GUST_WIT`: gust's `wit/` directory (the `gust:function/handler`
//!   world and the WASI packages it includes).
//! - `GUST_SDK`: gust's `sdk/` directory (the Rust SDK, and the helpers
//!   for Go, C, Python and JavaScript).
//!
//! `GUST_WIT` and `GUST_SDK` are the source checkout gust was built from,
//! unless set in gust's own environment.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_PROXY_ADAPTER as PROXY_ADAPTER;

/// The source checkout gust was built from.
const CHECKOUT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The environment a build command runs with: `(name, value)` pairs.
pub fn build_env() -> anyhow::Result<Vec<(&'static str, PathBuf)>> {
    let mut env = vec![("GUST_WASI_ADAPTER", proxy_adapter()?)];
    for (name, dir) in [("GUST_WIT", "wit"), ("GUST_SDK", "sdk")] {
        if let Some(path) = checkout_dir(name, dir) {
            env.push((name, path));
        }
    }
    Ok(env)
}

/// `$var` if set, else `dir` of the checkout gust was built from if it
/// is still there.
pub fn checkout_dir(var: &str, dir: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(path));
    }
    Path::new(CHECKOUT).join(dir).canonicalize().ok()
}

/// The proxy adapter as a file in gust's cache directory, written once
/// per adapter (the file name carries a digest of its bytes).
pub fn proxy_adapter() -> anyhow::Result<PathBuf> {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(PROXY_ADAPTER);
    let short: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    let dir = crate::dirs::gust_dir("XDG_CACHE_HOME", ".cache")
        .unwrap_or_else(std::env::temp_dir)
        .join("adapters");
    let path = dir.join(format!("wasi_snapshot_preview1.proxy.{short}.wasm"));
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == PROXY_ADAPTER.len() as u64) {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // Written beside and renamed: concurrent builds never see half a file.
    let temp = dir.join(format!(".{short}.{}.tmp", std::process::id()));
    std::fs::write(&temp, PROXY_ADAPTER).with_context(|| format!("writing {}", temp.display()))?;
    std::fs::rename(&temp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
