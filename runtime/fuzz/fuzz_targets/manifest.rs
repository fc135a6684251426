//! `gust.toml` parsing and validation.
//!
//! Arbitrary bytes; when they are UTF-8 they are parsed with
//! `Manifest::parse` and, when that succeeds, validated against a base
//! directory that does not exist (so relative component paths are
//! missing). Invariants:
//!
//! - nothing panics;
//! - every error has the origin it was given, at least one problem, a
//!   non-empty `Display` naming the origin, and every problem a non-empty
//!   message; a parse error is one problem about the document (no field);
//!   every validation problem names a field under a known top-level key;
//! - every declared function whose component file is missing, and every
//!   route naming an undeclared function, is reported under its own field;
//! - a manifest that validates has consistent limits and route targets.

#![no_main]

use std::collections::BTreeSet;
use std::path::Path;

use gust_runtime::manifest::{ComponentSource, Limits};
use gust_runtime::{Manifest, ManifestError};
use libfuzzer_sys::fuzz_target;

const ORIGIN: &str = "fuzz";
const BASE: &str = "/nonexistent/gust-fuzz-base";
/// Top-level keys a validation problem may name.
const FIELDS: &[&str] = &[
    "server",
    "defaults",
    "ledger",
    "functions",
    "routes",
    "billing",
    "admin",
    "cache",
    "engine",
    "name",
];

fn check_error(e: &ManifestError) {
    assert_eq!(e.origin, ORIGIN, "error lost its origin: {e:?}");
    assert!(!e.problems.is_empty(), "error with no problem: {e:?}");
    let shown = e.to_string();
    assert!(!shown.trim().is_empty(), "empty Display: {e:?}");
    assert!(
        shown.contains(ORIGIN),
        "Display does not name the origin: {shown:?}"
    );
    for p in &e.problems {
        assert!(
            !p.message.trim().is_empty(),
            "problem without message: {e:?}"
        );
        assert!(shown.contains(&p.message), "Display omits {p:?}: {shown:?}");
        if !p.field.is_empty() {
            assert!(
                shown.contains(&p.field),
                "Display omits field of {p:?}: {shown:?}"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let manifest = match Manifest::parse(text, ORIGIN) {
        Ok(manifest) => manifest,
        Err(e) => {
            check_error(&e);
            // A parse error is about the document, reported as one problem.
            assert_eq!(e.problems.len(), 1, "{e:?}");
            return;
        }
    };

    let base = Path::new(BASE);
    let declared: Vec<(String, bool)> = manifest
        .functions
        .iter()
        .map(|(id, decl)| {
            let path = if decl.component.is_absolute() {
                decl.component.clone()
            } else {
                base.join(&decl.component)
            };
            (id.as_str().to_owned(), path.is_file())
        })
        .collect();
    let ids: BTreeSet<String> = declared.iter().map(|(id, _)| id.clone()).collect();
    let unknown_routes: Vec<usize> = manifest
        .routes
        .iter()
        .enumerate()
        .filter(|(_, r)| !ids.contains(r.function.as_str()))
        .map(|(i, _)| i)
        .collect();
    let no_routes = manifest.routes.is_empty();

    match manifest.validate(base, ORIGIN) {
        Err(e) => {
            check_error(&e);
            for p in &e.problems {
                let top = p.field.split(['.', '[']).next().unwrap_or("");
                assert!(
                    FIELDS.contains(&top),
                    "validation problem names no known field: {p:?}"
                );
            }
            let has = |field: &str| e.problems.iter().any(|p| p.field == field);
            for (id, exists) in &declared {
                if !exists {
                    let field = format!("functions.{id}.component");
                    assert!(has(&field), "missing component of `{id}` not reported: {e}");
                }
            }
            for i in unknown_routes {
                let field = format!("routes[{i}].function");
                assert!(
                    has(&field),
                    "route {i} to an unknown function not reported: {e}"
                );
            }
            if no_routes {
                assert!(has("routes"), "no routes, not reported: {e}");
            }
        }
        Ok(config) => {
            let (spec, runtime) = (&config.app, &config.runtime);
            // Only absolute component paths to existing files get here.
            assert!(declared.iter().all(|(_, exists)| *exists));
            assert!(unknown_routes.is_empty() && !no_routes);
            assert!(!spec.router.routes().is_empty());
            assert!(runtime.server.max_header_size >= 8192);
            assert!(!runtime.server.header_read_timeout.is_zero());
            assert!(!runtime.ledger.flush_interval.is_zero());
            let spec_ids: Vec<&str> = spec.functions.iter().map(|f| f.id.as_str()).collect();
            assert!(
                spec_ids.windows(2).all(|w| w[0] < w[1]),
                "ids not sorted/unique"
            );
            for f in &spec.functions {
                assert!(f.limits.fuel > 0, "{f:?}");
                assert!(!f.limits.timeout.is_zero(), "{f:?}");
                assert!(f.limits.timeout <= Limits::MAX_TIMEOUT, "{f:?}");
                assert!(matches!(&f.source, ComponentSource::File(p) if p.is_file()));
            }
            for route in spec.router.routes() {
                assert!(*route.target() < spec.functions.len());
                if let Some(methods) = route.methods() {
                    assert!(!methods.is_empty(), "empty method list accepted");
                }
            }
        }
    }
});
