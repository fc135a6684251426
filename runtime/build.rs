//! Compiles `guest-examples/` to components (feature `builtin-examples`) so
//! the `gust` binary can serve them, with no manual step. The generated
//! `examples.rs` names each component's bytes and path
//! (`gust_runtime::examples`). Every crate in `guest-examples/` is built and
//! embedded, found in the directory tree, not listed; the test guests
//! (`tests/guests/`) are the `gust-tests` crate's to build.

// `build_guests`, `watch` and the `std` items used here (`env`, `Path`,
// `PathBuf`): shared with `tests/build.rs`.
include!("../guest-examples/build-guests.rs");

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
    for dir in ["guest-examples", "sdk", "wit"] {
        watch(&root.join(dir));
    }
    let code = build_guests(&root.join("guest-examples"), "example");
    std::fs::write(&generated, code).expect("writing examples.rs");
}
