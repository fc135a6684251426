//! Host bindings of the standard WASI interfaces gust's capabilities
//! implement (`wasi:http`, `wasi:cli` and the rest come from
//! wasmtime-wasi), generated from the WIT in `wit/`: one module per
//! package version, since the drafts of one package do not link against
//! each other and components import either.
//!
//! Resource types map to the capability's own host types; every import is
//! async (backends do I/O) and trappable (a host failure that is not the
//! guest's business traps rather than being reported as a value).

/// `wasi:keyvalue@0.2.0-draft` (wasmtime, wasmCloud).
pub(crate) mod keyvalue_draft {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "wasi:keyvalue/imports@0.2.0-draft",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": crate::host::capability::key_value::Bucket,
        },
    });
}

/// `wasi:keyvalue@0.2.0-draft2` (Spin 3 and later).
pub(crate) mod keyvalue_draft2 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "wasi:keyvalue/imports@0.2.0-draft2",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": crate::host::capability::key_value::Bucket,
            "wasi:keyvalue/atomics.cas": crate::host::capability::key_value::Cas,
        },
    });
}

/// `wasi:config@0.2.0-rc.1` (wasmtime).
pub(crate) mod config_rc1 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "wasi:config/imports@0.2.0-rc.1",
        imports: { default: trappable },
    });
}

/// `wasi:config@0.2.0-draft-2024-09-27` (wasmCloud 2, Spin).
pub(crate) mod config_draft {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "wasi:config/imports@0.2.0-draft-2024-09-27",
        imports: { default: trappable },
    });
}

/// `wasi:logging@0.1.0-draft` (wasmCloud).
pub(crate) mod logging {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "wasi:logging/imports@0.1.0-draft",
        imports: { default: trappable },
    });
}

/// `wasi:blobstore@0.2.0-draft` (wasmCloud), over wasmtime-wasi's
/// `wasi:io` streams.
pub(crate) mod blobstore {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "wasi:blobstore/imports@0.2.0-draft",
        imports: { default: async | trappable },
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:blobstore/container.container": crate::host::capability::blob::Container,
            "wasi:blobstore/container.stream-object-names": crate::host::capability::blob::ObjectNames,
            "wasi:blobstore/types.outgoing-value": crate::host::capability::blob::OutgoingValue,
            "wasi:blobstore/types.incoming-value": crate::host::capability::blob::IncomingValue,
        },
    });
}
