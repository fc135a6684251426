//! Compiles `guest-examples/` to components (feature `builtin-examples`) so
//! the `gust` binary can serve them, with no manual step. The generated
//! `examples.rs` names each component's bytes and path
//! (`gust_runtime::examples`). Every crate in `guest-examples/` is built and
//! embedded, found in the directory tree, not listed; the test guests
//! (`tests/guests/`) are the `gust-tests` crate's to build.

// `build_guests`, `watch_guests`, `watch_sdk`, `watch` and the `std`
// items used here (`env`, `Path`, `PathBuf`): shared with `tests/build.rs`.
include!("../guest-examples/build-guests.rs");

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    embed_templates();
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
    watch_guests(&root.join("guest-examples"));
    watch_sdk(root);
    watch(&root.join("wit"));
    let code = build_guests(&root.join("guest-examples"), "example");
    std::fs::write(&generated, code).expect("writing examples.rs");
}

/// Writes `templates.rs`: every file under `templates/LANG/` (the projects
/// `gust new LANG NAME` creates), as `(LANG, path in the project, bytes)`.
fn embed_templates() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let crate_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let templates = crate_dir.join("templates");
    watch(&templates);
    // The toolchain gust is built with: the Rust template pins it (the SDK
    // needs its version, and it has the wasm32-wasip2 target).
    let toolchain = crate_dir.join("../rust-toolchain.toml");
    watch(&toolchain);
    let channel = std::fs::read_to_string(&toolchain)
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix("channel").map(str::to_owned))
        })
        .map(|rest| {
            rest.trim_start_matches([' ', '='])
                .trim()
                .trim_matches('"')
                .to_owned()
        })
        .unwrap_or_else(|| "stable".to_owned());
    println!("cargo:rustc-env=GUST_RUST_CHANNEL={channel}");
    let mut files = Vec::new();
    collect_files(&templates, &mut files);
    files.sort();
    let mut code = String::from("&[\n");
    for path in files {
        let relative = path.strip_prefix(&templates).expect("beneath templates/");
        let mut parts = relative.iter();
        let lang = parts
            .next()
            .expect("a language directory")
            .to_string_lossy();
        let rest: PathBuf = parts.collect();
        let rest = rest.to_string_lossy().replace('\\', "/");
        writeln!(
            code,
            "    ({lang:?}, {rest:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    code.push(']');
    std::fs::write(out_dir.join("templates.rs"), code).expect("writing templates.rs");
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, files);
        } else if path.is_file() {
            files.push(path);
        }
    }
}
