//! Compiles `guest-examples/` to components (feature `builtin-examples`) so
//! the `gust` binary can serve them and the tests can use them, with no
//! manual step. The generated `examples.rs` names each component's bytes and
//! path.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every crate in `guest-examples/`, in the order they are listed.
const EXAMPLES: &[&str] = &[
    "hello",
    "echo",
    "trap",
    "spin",
    "work",
    "raw",
    "fetch",
    "memory-bomb",
    "stack-overflow",
    "stream-trap",
    "ignore-body",
    "endless-body",
    "handle-leak",
    "host-wait",
    "bad-headers",
    "counter",
    "minimal",
    "error-code",
    "leak-request",
    "p3-hello",
    "p3-echo",
    "p3-trap",
    "p3-spin",
    "p3-sleep",
    "p3-post-return",
    "spin-hello",
    "log-forge",
    "overlong-body",
    "host-churn",
];

/// Components written by hand as `guest-examples/wat/<name>.wat`. They are
/// used as text: wasmtime's `Component::new` parses WAT (`wat` feature).
const WAT_EXAMPLES: &[&str] = &["table-bomb"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CARGO_FEATURE_BUILTIN_EXAMPLES");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let generated = out_dir.join("examples.rs");
    if env::var_os("CARGO_FEATURE_BUILTIN_EXAMPLES").is_none() {
        std::fs::write(&generated, "").expect("writing examples.rs");
        return;
    }

    let crate_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = crate_dir
        .parent()
        .expect("runtime/ sits in the workspace root");
    let examples = root.join("guest-examples");
    for dir in ["guest-examples", "sdk", "wit"] {
        watch(&root.join(dir));
    }

    // `<target>/<profile>/build/<crate>-<hash>/out` -> `<target>/guest-examples`,
    // shared by every profile so the guests build once.
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .map(|t| t.join("guest-examples"))
        .unwrap_or_else(|| out_dir.join("guest-examples"));

    // Under rustup, go through its `cargo` proxy so the guests build with
    // the toolchain `rust-toolchain.toml` pins (which has the wasm32-wasip2
    // target), even when the outer build runs on another one, e.g.
    // `cargo +nightly fuzz`.
    let rustup = env::var_os("RUSTUP_TOOLCHAIN").is_some();
    let cargo = match env::var_os("CARGO") {
        Some(cargo) if !rustup => cargo,
        _ => "cargo".into(),
    };
    if rustup {
        ensure_guest_target(&examples);
    }
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(examples.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir)
        // The outer build's flags and wrappers (clippy, coverage) are for the
        // host crates, not for the guests.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_MAKEFLAGS")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .status()
        .expect("running cargo to build guest-examples");
    assert!(
        status.success(),
        "building guest-examples for wasm32-wasip2 failed (is the target installed? `rustup target add wasm32-wasip2`)"
    );

    let release = target_dir.join("wasm32-wasip2").join("release");
    let mut code = String::new();
    let mut all = String::new();
    // Cargo names a cdylib's output with `_` for `-`.
    let built = EXAMPLES.iter().map(|name| {
        (
            name,
            release.join(format!("{}.wasm", name.replace('-', "_"))),
        )
    });
    let wat = WAT_EXAMPLES
        .iter()
        .map(|name| (name, examples.join("wat").join(format!("{name}.wat"))));
    for (name, path) in built.chain(wat) {
        assert!(path.is_file(), "missing {}", path.display());
        let upper = name.to_uppercase().replace('-', "_");
        let path = path.display().to_string();
        writeln!(code, "/// The `{name}` example component.").unwrap();
        writeln!(code, "pub const {upper}: &[u8] = include_bytes!({path:?});").unwrap();
        writeln!(code, "/// Where the `{name}` example component is.").unwrap();
        writeln!(code, "pub const {upper}_PATH: &str = {path:?};").unwrap();
        writeln!(all, "    ({name:?}, {upper}_PATH),").unwrap();
    }
    writeln!(
        code,
        "/// Every example component: its name and where it is.\npub const ALL: &[(&str, &str)] = &[\n{all}];"
    )
    .unwrap();
    std::fs::write(&generated, code).expect("writing examples.rs");
}

/// Installs what `rust-toolchain.toml` pins (toolchain, `wasm32-wasip2`,
/// components) when the guests' toolchain lacks the target: rustup's
/// auto-install may be off (`RUSTUP_AUTO_INSTALL=0`), and a missing target
/// would otherwise fail the guest build with "can't find crate for `core`".
fn ensure_guest_target(examples: &Path) {
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .current_dir(examples)
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    let installed = sysroot
        .as_deref()
        .is_some_and(|root| root.join("lib/rustlib/wasm32-wasip2").is_dir());
    if installed {
        return;
    }
    println!(
        "cargo:warning=installing the pinned toolchain's wasm32-wasip2 target (rustup toolchain install)"
    );
    let status = Command::new("rustup")
        .args(["toolchain", "install"])
        .current_dir(examples)
        .env_remove("RUSTUP_TOOLCHAIN")
        .status();
    match status {
        Ok(status) if status.success() => {}
        other => println!(
            "cargo:warning=`rustup toolchain install` failed ({other:?}); install the target by hand: `rustup target add wasm32-wasip2`"
        ),
    }
}

/// Reruns the build script when anything under `dir` changes, except build
/// output.
fn watch(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == "target") {
            continue;
        }
        if path.is_dir() {
            watch(&path);
        } else {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}
