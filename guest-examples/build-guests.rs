// Building a workspace of guests from a build script. Shared by
// `runtime/build.rs` (the examples in `guest-examples/`, embedded in the
// `gust` binary) and `tests/build.rs` (the test guests in `tests/guests/`)
// with `include!`: a build script is a single file, and this is the part
// both need. It is not a guest (cargo takes only directories as members).
//
// A guest workspace is discovered, not listed: every directory with a
// `Cargo.toml` is a guest crate (a `cdylib` whose package is named as the
// directory), and every `wat/<name>.wat` is a component written by hand,
// used as text (wasmtime's `Component::new` parses WAT, `wat` feature).

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The guests of `workspace`: its crates and its `wat/*.wat` components,
/// each sorted by name.
fn discover(workspace: &Path) -> (Vec<String>, Vec<String>) {
    let names = |dir: &Path, keep: &dyn Fn(&Path) -> Option<String>| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| keep(&entry.path()))
            .collect();
        names.sort();
        names
    };
    let crates = names(workspace, &|path| {
        let name = path.file_name()?.to_str()?;
        let guest = !name.starts_with('.') && name != "target" && path.join("Cargo.toml").is_file();
        guest.then(|| name.to_owned())
    });
    let wat = names(&workspace.join("wat"), &|path| {
        if path.extension()? != "wat" {
            return None;
        }
        Some(path.file_stem()?.to_str()?.to_owned())
    });
    (crates, wat)
}

/// Builds the guest crates of `workspace` (release, `wasm32-wasip2`,
/// `--locked`) and returns Rust code naming every guest, crate or WAT:
/// `NAME: &[u8]` (its bytes), `NAME_PATH: &str` (where it is; `NAME` is the
/// guest's name in upper case, `-` as `_`) and `ALL` (every guest's name
/// and path). `what` describes the guests in the generated docs.
///
/// Every guest workspace builds into `<target>/guest-examples`, shared by
/// every profile so that the guests build once and their common
/// dependencies (wit-bindgen, wasi, wasip3) once for all workspaces.
fn build_guests(workspace: &Path, what: &str) -> String {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // `<target>/<profile>/build/<crate>-<hash>/out` -> `<target>/guest-examples`.
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .map(|t| t.join("guest-examples"))
        .unwrap_or_else(|| out_dir.join("guest-examples"));
    let (crates, wat) = discover(workspace);

    if !crates.is_empty() {
        cargo_build(workspace, &target_dir);
    }

    let release = target_dir.join("wasm32-wasip2").join("release");
    // Cargo names a cdylib's output with `_` for `-`.
    let built = crates.iter().map(|name| {
        (
            name,
            release.join(format!("{}.wasm", name.replace('-', "_"))),
        )
    });
    let wat = wat
        .iter()
        .map(|name| (name, workspace.join("wat").join(format!("{name}.wat"))));
    let mut code = String::new();
    let mut all = String::new();
    for (name, path) in built.chain(wat) {
        assert!(path.is_file(), "missing {}", path.display());
        let upper = name.to_uppercase().replace('-', "_");
        let path = path.display().to_string();
        writeln!(code, "/// The `{name}` {what} component.").unwrap();
        writeln!(code, "pub const {upper}: &[u8] = include_bytes!({path:?});").unwrap();
        writeln!(code, "/// Where the `{name}` {what} component is.").unwrap();
        writeln!(code, "pub const {upper}_PATH: &str = {path:?};").unwrap();
        writeln!(all, "    ({name:?}, {upper}_PATH),").unwrap();
    }
    writeln!(
        code,
        "/// Every {what} component: its name and where it is.\npub const ALL: &[(&str, &str)] = &[\n{all}];"
    )
    .unwrap();
    code
}

/// `cargo build --release --locked --target wasm32-wasip2` of the
/// workspace, into `target_dir`.
fn cargo_build(workspace: &Path, target_dir: &Path) {
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
        ensure_guest_target(workspace);
    }
    // CI builds exactly what the lock file says; a developer who adds a
    // guest gets the lock file updated instead of an error.
    println!("cargo:rerun-if-env-changed=CI");
    let locked = env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0");
    let status = Command::new(cargo)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .args(locked.then_some("--locked"))
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir)
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
        .unwrap_or_else(|e| panic!("running cargo to build {}: {e}", workspace.display()));
    assert!(
        status.success(),
        "building {} for wasm32-wasip2 failed (is the target installed? `rustup target add wasm32-wasip2`)",
        workspace.display()
    );
}

/// Installs what `rust-toolchain.toml` pins (toolchain, `wasm32-wasip2`,
/// components) when the guests' toolchain lacks the target: rustup's
/// auto-install may be off (`RUSTUP_AUTO_INSTALL=0`), and a missing target
/// would otherwise fail the guest build with "can't find crate for `core`".
fn ensure_guest_target(workspace: &Path) {
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .current_dir(workspace)
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
        .current_dir(workspace)
        .env_remove("RUSTUP_TOOLCHAIN")
        .status();
    match status {
        Ok(status) if status.success() => {}
        other => println!(
            "cargo:warning=`rustup toolchain install` failed ({other:?}); install the target by hand: `rustup target add wasm32-wasip2`"
        ),
    }
}

/// Reruns the build script when anything under `dir` changes: cargo scans
/// a directory's whole tree, so a guest added or removed counts too (as
/// does a build by hand into a `target/` there, which is harmless).
fn watch(dir: &Path) {
    println!("cargo:rerun-if-changed={}", dir.display());
}

/// Watches what a guest build reads from `workspace`: its manifest, lock,
/// `.cargo` and `wat` directories and each guest crate's directory, not
/// the whole tree, so that files other toolchains write beside the crates
/// (the Python, JavaScript, Go and C examples' builds) rebuild nothing.
/// A guest crate added or removed still counts: it changes the lock file.
fn watch_guests(workspace: &Path) {
    let (crates, _) = discover(workspace);
    let fixed = ["Cargo.toml", "Cargo.lock", ".cargo", "wat"];
    for path in fixed.into_iter().chain(crates.iter().map(String::as_str)) {
        let path = workspace.join(path);
        if path.exists() {
            watch(&path);
        }
    }
}

/// Watches the Rust SDK (`sdk/Cargo.toml`, `sdk/src`) that guests build
/// against; the other languages' SDKs beside it are not Rust inputs.
fn watch_sdk(root: &Path) {
    for path in ["sdk/Cargo.toml", "sdk/src"] {
        watch(&root.join(path));
    }
}
