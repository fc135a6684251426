//! The route table: pattern parsing, conflicts, lookup.
//!
//! Structured input: a few route patterns (built from segments, or raw
//! text), each with a method list, and request paths (raw, or made to fit
//! one of the patterns). Invariants:
//!
//! - nothing panics;
//! - a pattern that parses shows as written and parses again to itself;
//! - a rejected route leaves the table unchanged and really conflicts (same
//!   shape, overlapping methods) with a route already there; an accepted one
//!   conflicts with none;
//! - an exact (parameter-free) route is found for its own path, with its
//!   target, for each method it accepts;
//! - every lookup agrees with a brute-force model of the documented rules
//!   (exact first, then most specific, then declaration order; GET implies
//!   HEAD; 405 with the union of methods, HEAD added when GET is there),
//!   its parameters rebuild the path, and a second lookup gives the same
//!   answer.

#![no_main]

use arbitrary::Arbitrary;
use gust_runtime::router::{RouteError, RoutePattern, Router, Segment};
use http::Method;
use libfuzzer_sys::fuzz_target;

const LITERALS: &[&str] = &[
    "", "a", "b", "users", "me", "static", "%2F", "a.b", "{", "}", "x y", "é", "*", "..",
];
const NAMES: &[&str] = &["id", "rest", "x", "_", "a1", "Id", "1d", "", "*x", "a-b"];

#[derive(Arbitrary, Debug)]
enum Name {
    Pick(u8),
    Raw(String),
}

impl Name {
    fn text(&self) -> String {
        match self {
            Name::Pick(i) => NAMES[*i as usize % NAMES.len()].to_owned(),
            Name::Raw(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Seg {
    Literal(Name),
    LiteralRaw(String),
    Param(Name),
    Wildcard(Name),
}

#[derive(Arbitrary, Debug)]
enum PatternIn {
    Segments(Vec<Seg>),
    Raw(String),
}

impl PatternIn {
    fn text(&self) -> String {
        match self {
            PatternIn::Raw(s) => s.clone(),
            PatternIn::Segments(segs) => {
                let mut out = String::new();
                for seg in segs {
                    out.push('/');
                    match seg {
                        Seg::Literal(Name::Pick(i)) => {
                            out.push_str(LITERALS[*i as usize % LITERALS.len()])
                        }
                        Seg::Literal(Name::Raw(s)) | Seg::LiteralRaw(s) => out.push_str(s),
                        Seg::Param(n) => {
                            out.push('{');
                            out.push_str(&n.text());
                            out.push('}');
                        }
                        Seg::Wildcard(n) => {
                            out.push_str("{*");
                            out.push_str(&n.text());
                            out.push('}');
                        }
                    }
                }
                if out.is_empty() {
                    out.push('/');
                }
                out
            }
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum MethodIn {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Patch,
    Custom(String),
}

impl MethodIn {
    fn method(&self) -> Option<Method> {
        Some(match self {
            MethodIn::Get => Method::GET,
            MethodIn::Head => Method::HEAD,
            MethodIn::Post => Method::POST,
            MethodIn::Put => Method::PUT,
            MethodIn::Delete => Method::DELETE,
            MethodIn::Options => Method::OPTIONS,
            MethodIn::Patch => Method::PATCH,
            MethodIn::Custom(s) => Method::from_bytes(s.as_bytes()).ok()?,
        })
    }
}

#[derive(Arbitrary, Debug)]
struct RouteIn {
    pattern: PatternIn,
    methods: Option<Vec<MethodIn>>,
}

#[derive(Arbitrary, Debug)]
enum PathIn {
    Raw(String),
    /// A path built for route `index`: parameters filled from `fill`.
    For {
        index: u8,
        fill: Vec<String>,
        trailing: bool,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    routes: Vec<RouteIn>,
    lookups: Vec<(MethodIn, PathIn)>,
}

/// A route as the model sees it.
struct Model {
    pattern: RoutePattern,
    methods: Option<Vec<Method>>,
    target: usize,
}

fn allows(methods: &Option<Vec<Method>>, m: &Method) -> bool {
    match methods {
        None => true,
        Some(ms) => ms.contains(m) || (*m == Method::HEAD && ms.contains(&Method::GET)),
    }
}

fn shape(p: &RoutePattern) -> Vec<u8> {
    // Literals differ by text; encode the text, params and wildcards by kind.
    let mut out = Vec::new();
    for s in p.segments() {
        match s {
            Segment::Literal(l) => {
                out.push(0);
                out.extend_from_slice(l.as_bytes());
                out.push(0xff);
            }
            Segment::Param(_) => out.push(1),
            Segment::Wildcard(_) => out.push(2),
        }
    }
    out
}

/// Two method lists overlap when some method is allowed by both (a GET
/// route also takes HEAD).
fn overlaps(a: &Option<Vec<Method>>, b: &Option<Vec<Method>>) -> bool {
    match (a, b) {
        (None, _) | (_, None) => true,
        (Some(ms), Some(_)) => [Method::GET, Method::HEAD]
            .iter()
            .chain(ms.iter())
            .any(|m| allows(a, m) && allows(b, m)),
    }
}

fn rank(s: &Segment) -> u8 {
    match s {
        Segment::Literal(_) => 0,
        Segment::Param(_) => 1,
        Segment::Wildcard(_) => 2,
    }
}

fn is_exact(p: &RoutePattern) -> bool {
    p.segments()
        .iter()
        .all(|s| matches!(s, Segment::Literal(_)))
}

/// The documented lookup, by brute force.
fn model_lookup(routes: &[Model], method: &Method, path: &str) -> Result<usize, Vec<Method>> {
    let mut order: Vec<usize> = (0..routes.len()).collect();
    order.sort_by_key(|&i| {
        let p = &routes[i].pattern;
        let spec: Vec<u8> = p.segments().iter().map(rank).collect();
        (!is_exact(p), if is_exact(p) { Vec::new() } else { spec }, i)
    });
    let mut allow: Vec<Method> = Vec::new();
    let mut matched = false;
    for i in order {
        let r = &routes[i];
        if r.pattern.matches(path).is_none() {
            continue;
        }
        if allows(&r.methods, method) {
            return Ok(i);
        }
        matched = true;
        for m in r.methods.iter().flatten() {
            if !allow.contains(m) {
                allow.push(m.clone());
            }
        }
    }
    if matched {
        if allow.contains(&Method::GET) && !allow.contains(&Method::HEAD) {
            allow.push(Method::HEAD);
        }
        Err(allow)
    } else {
        // No path match: "not found" is the empty allow list with matched
        // false; callers tell them apart with `matched_any`.
        Err(Vec::new())
    }
}

fn matched_any(routes: &[Model], path: &str) -> bool {
    routes.iter().any(|r| r.pattern.matches(path).is_some())
}

/// The path a pattern's parameters rebuild.
fn rebuild(p: &RoutePattern, params: &[(&str, &str)]) -> Vec<String> {
    let mut values = params.iter().map(|(_, v)| *v);
    let mut out = String::new();
    let mut alternatives = Vec::new();
    for s in p.segments() {
        match s {
            Segment::Literal(l) => {
                out.push('/');
                out.push_str(l);
            }
            Segment::Param(_) => {
                out.push('/');
                out.push_str(values.next().unwrap_or("<missing>"));
            }
            Segment::Wildcard(_) => {
                let v = values.next().unwrap_or("<missing>");
                if v.is_empty() {
                    // `/static/{*rest}` matches `/static` and `/static/`.
                    alternatives.push(if out.is_empty() {
                        "/".to_owned()
                    } else {
                        out.clone()
                    });
                }
                out.push('/');
                out.push_str(v);
            }
        }
    }
    alternatives.push(out);
    alternatives
}

fn path_for(p: &RoutePattern, fill: &[String], trailing: bool) -> String {
    let mut fill = fill.iter().map(String::as_str);
    let mut out = String::new();
    for s in p.segments() {
        out.push('/');
        match s {
            Segment::Literal(l) => out.push_str(l),
            Segment::Param(_) => out.push_str(fill.next().filter(|v| !v.is_empty()).unwrap_or("v")),
            Segment::Wildcard(_) => out.push_str(fill.next().unwrap_or("")),
        }
    }
    if trailing {
        out.push('/');
    }
    out
}

fuzz_target!(|input: Input| {
    let mut router: Router<usize> = Router::new();
    let mut model: Vec<Model> = Vec::new();

    for (target, route) in input.routes.iter().take(16).enumerate() {
        let text = route.pattern.text();
        let Ok(pattern) = text.parse::<RoutePattern>() else {
            continue;
        };
        assert_eq!(pattern.as_str(), text);
        assert_eq!(pattern.to_string(), text);
        assert_eq!(text.parse::<RoutePattern>().as_ref(), Ok(&pattern));
        let segments = pattern.segments();
        assert!(
            !segments[..segments.len().saturating_sub(1)]
                .iter()
                .any(|s| matches!(s, Segment::Wildcard(_))),
            "wildcard before the last segment accepted: {text:?}"
        );
        let methods: Option<Vec<Method>> = route
            .methods
            .as_ref()
            .map(|ms| ms.iter().filter_map(MethodIn::method).collect());
        // An empty list is refused by the manifest; the router takes it as
        // "no method", which the model handles too.
        let conflicting = model
            .iter()
            .any(|m| shape(&m.pattern) == shape(&pattern) && overlaps(&m.methods, &methods));
        let before = router.routes().len();
        match router.add(pattern.clone(), methods.clone(), target) {
            Ok(()) => {
                assert!(!conflicting, "conflicting route {text:?} accepted");
                assert_eq!(router.routes().len(), before + 1);
                model.push(Model {
                    pattern,
                    methods,
                    target,
                });
            }
            Err(conflict) => {
                assert!(
                    conflicting,
                    "route {text:?} rejected without a conflict: {conflict}"
                );
                assert_eq!(
                    router.routes().len(),
                    before,
                    "rejected route changed the table"
                );
                assert!(!conflict.to_string().is_empty());
            }
        }
    }

    // Exact routes are found for their own path, for each method they take.
    for r in &model {
        if !is_exact(&r.pattern) {
            continue;
        }
        let path = r.pattern.as_str();
        let methods = r
            .methods
            .clone()
            .unwrap_or_else(|| vec![Method::GET, Method::POST]);
        for m in &methods {
            let found = router
                .lookup(m, path)
                .unwrap_or_else(|e| panic!("exact route {path:?} not found for {m}: {e:?}"));
            assert_eq!(*found.route.target(), r.target, "{path:?} {m}");
            assert!(found.params.is_empty());
        }
    }

    for (method, path) in input.lookups.iter().take(32) {
        let Some(method) = method.method() else {
            continue;
        };
        let path = match path {
            PathIn::Raw(s) => s.clone(),
            PathIn::For {
                index,
                fill,
                trailing,
            } => {
                if model.is_empty() {
                    continue;
                }
                path_for(
                    &model[*index as usize % model.len()].pattern,
                    fill,
                    *trailing,
                )
            }
        };
        let got = router.lookup(&method, &path);
        let again = router.lookup(&method, &path);
        let expected = model_lookup(&model, &method, &path);
        match (&got, &again) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.route.target(), b.route.target(), "nondeterministic");
                assert_eq!(a.params, b.params, "nondeterministic");
            }
            (Err(a), Err(b)) => assert_eq!(a, b, "nondeterministic"),
            _ => panic!("nondeterministic: {got:?} / {again:?}"),
        }
        match got {
            Ok(found) => {
                let want = expected.unwrap_or_else(|allow| {
                    panic!(
                        "{method} {path:?}: router found {:?}, model says {allow:?}",
                        found.route.pattern()
                    )
                });
                assert_eq!(
                    *found.route.target(),
                    model[want].target,
                    "{method} {path:?}: router chose {}, model {}",
                    found.route.pattern(),
                    model[want].pattern
                );
                assert!(allows(
                    &found.route.methods().map(<[Method]>::to_vec),
                    &method
                ));
                let names: Vec<&str> = found
                    .route
                    .pattern()
                    .segments()
                    .iter()
                    .filter_map(|s| match s {
                        Segment::Param(n) | Segment::Wildcard(n) => Some(n.as_str()),
                        Segment::Literal(_) => None,
                    })
                    .collect();
                let got_names: Vec<&str> = found.params.iter().map(|(n, _)| *n).collect();
                assert_eq!(names, got_names, "{path:?}");
                let rebuilt = rebuild(found.route.pattern(), &found.params);
                assert!(rebuilt.contains(&path), "{path:?} rebuilt as {rebuilt:?}");
            }
            Err(RouteError::NotFound) => {
                assert!(
                    !matched_any(&model, &path),
                    "{method} {path:?}: not found, but a route matches"
                );
            }
            Err(RouteError::MethodNotAllowed { allow }) => {
                assert!(matched_any(&model, &path));
                let want = match expected {
                    Ok(i) => panic!("{method} {path:?}: 405, model chose {}", model[i].pattern),
                    Err(want) => want,
                };
                assert!(
                    !allow.contains(&method),
                    "{method} in Allow of a 405: {allow:?}"
                );
                let mut a: Vec<&str> = allow.iter().map(Method::as_str).collect();
                let mut b: Vec<&str> = want.iter().map(Method::as_str).collect();
                a.sort_unstable();
                b.sort_unstable();
                assert_eq!(a, b, "{method} {path:?}: Allow");
            }
        }
    }
});
