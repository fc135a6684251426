//! Bindings generated from the `gust:function/handler` world in `wit/`.
//!
//! Function authors rarely need these directly: [`crate::export!`] wires a
//! plain `fn(Request) -> Response` to `wasi:http/incoming-handler`. They are
//! public for authors who want the raw WASI interfaces (streaming bodies,
//! outgoing requests).

wit_bindgen::generate!({
    path: "../wit",
    world: "gust:function/handler",
    generate_all,
    pub_export_macro: true,
    export_macro_name: "__export_handler",
    default_bindings_module: "::gust_sdk::bindings",
});
