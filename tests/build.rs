//! Compiles the test guests in `tests/guests/` (fixtures and hostile
//! guests) to components, found in the directory tree, not listed. The
//! generated `guests.rs` is `gust_tests::guests` (`lib.rs`): each
//! component's bytes and path, and `ALL`.

// `build_guests`, `watch_guests`, `watch_sdk`, `watch` and the `std`
// items used here (`env`, `Path`, `PathBuf`): shared with `runtime/build.rs`.
include!("../guest-examples/build-guests.rs");

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let crate_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = crate_dir
        .parent()
        .expect("tests/ sits in the workspace root");
    watch_guests(&crate_dir.join("guests"));
    watch_sdk(root);
    watch(&root.join("wit"));
    let code = build_guests(&crate_dir.join("guests"), "test guest");
    std::fs::write(out_dir.join("guests.rs"), code).expect("writing guests.rs");
}
