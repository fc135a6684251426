//! The route table: maps a request's method and path to a target.
//!
//! This module knows nothing of wasmtime; the target type is generic.
//!
//! # Matching rules
//!
//! 1. Exact patterns (`/hello`) are looked up first, by hash.
//! 2. Then patterns with parameters or a wildcard, most specific first:
//!    patterns are compared segment by segment from the left, a literal
//!    beats a `{param}`, which beats a `{*wildcard}`. Among equally specific
//!    patterns the one declared first wins (two patterns that match exactly
//!    the same paths with overlapping methods are rejected when the table is
//!    built, so this only orders patterns that overlap partially).
//! 3. The first route whose pattern matches and whose method list allows the
//!    request's method is chosen. A route without a method list allows every
//!    method; a route that allows `GET` also allows `HEAD`.
//! 4. If no route matches the path: not found (404). If routes match the path
//!    but none allows the method: method not allowed (405), with the union of
//!    their methods for the `Allow` header.
//!
//! Paths are matched as sent (percent-encoded, without the query), and a
//! trailing slash is significant: `/hello` does not match `/hello/`.

mod pattern;

pub use pattern::{PatternError, RoutePattern, Segment};

use std::collections::HashMap;

use http::Method;

/// A route: a pattern, the methods it accepts (`None`: all) and a target.
#[derive(Debug, Clone)]
pub struct Route<T> {
    pattern: RoutePattern,
    methods: Option<Vec<Method>>,
    target: T,
}

impl<T> Route<T> {
    /// The route's pattern.
    pub fn pattern(&self) -> &RoutePattern {
        &self.pattern
    }

    /// The methods this route accepts; `None` means all.
    pub fn methods(&self) -> Option<&[Method]> {
        self.methods.as_deref()
    }

    /// What the route leads to.
    pub fn target(&self) -> &T {
        &self.target
    }

    fn allows(&self, method: &Method) -> bool {
        match &self.methods {
            None => true,
            Some(methods) => {
                methods.contains(method)
                    || (method == Method::HEAD && methods.contains(&Method::GET))
            }
        }
    }

    fn overlaps(&self, other: &Route<T>) -> Option<String> {
        match (&self.methods, &other.methods) {
            (None, _) | (_, None) => Some("any method".to_owned()),
            // A GET route takes HEAD too, so it overlaps a HEAD route.
            (Some(a), Some(_)) => [Method::GET, Method::HEAD]
                .iter()
                .chain(a.iter())
                .find(|m| self.allows(m) && other.allows(m))
                .map(|m| m.to_string()),
        }
    }
}

/// A successful lookup.
#[derive(Debug)]
pub struct Match<'r, 'p, T> {
    /// The route that matched.
    pub route: &'r Route<T>,
    /// Named parameters, in pattern order.
    pub params: Vec<(&'r str, &'p str)>,
}

/// Why a lookup found no route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// No route matches the path.
    #[error("no route matches this path")]
    NotFound,
    /// Routes match the path but none accepts the method.
    #[error("method not allowed")]
    MethodNotAllowed {
        /// Methods that would have been accepted (for the `Allow` header).
        allow: Vec<Method>,
    },
}

/// Two routes match the same paths with the same method.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("route `{new}` conflicts with route `{existing}`: both match the same paths for {method}")]
pub struct RouteConflict {
    /// The route declared first.
    pub existing: String,
    /// The route that conflicts with it.
    pub new: String,
    /// A method both accept.
    pub method: String,
}

/// The route table. Cheap to share behind an `Arc`; built by value.
#[derive(Debug, Clone)]
pub struct Router<T> {
    routes: Vec<Route<T>>,
    /// Exact pattern text to route indices, in declaration order.
    exact: HashMap<String, Vec<usize>>,
    /// Non-exact routes, most specific first.
    dynamic: Vec<usize>,
    /// Routes by shape (pattern with names erased), to find conflicts.
    shapes: HashMap<Vec<Segment>, Vec<usize>>,
}

impl<T> Default for Router<T> {
    fn default() -> Self {
        Router {
            routes: Vec::new(),
            exact: HashMap::new(),
            dynamic: Vec::new(),
            shapes: HashMap::new(),
        }
    }
}

impl<T> Router<T> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route, rejecting one that conflicts with an existing route.
    pub fn route(
        mut self,
        pattern: RoutePattern,
        methods: Option<Vec<Method>>,
        target: T,
    ) -> Result<Self, RouteConflict> {
        self.add(pattern, methods, target)?;
        Ok(self)
    }

    /// Like [`Router::route`], in place; on conflict the table is unchanged.
    pub fn add(
        &mut self,
        pattern: RoutePattern,
        methods: Option<Vec<Method>>,
        target: T,
    ) -> Result<(), RouteConflict> {
        let route = Route {
            pattern,
            methods,
            target,
        };
        let shape = route.pattern.shape();
        let same_shape = self.shapes.get(&shape).into_iter().flatten();
        for existing in same_shape.map(|&i| &self.routes[i]) {
            if let Some(method) = existing.overlaps(&route) {
                return Err(RouteConflict {
                    existing: existing.pattern.to_string(),
                    new: route.pattern.to_string(),
                    method,
                });
            }
        }
        let index = self.routes.len();
        if route.pattern.is_exact() {
            self.exact
                .entry(route.pattern.as_str().to_owned())
                .or_default()
                .push(index);
        } else {
            let key = route.pattern.specificity();
            // Stable insertion keeps declaration order among equals.
            let at = self
                .dynamic
                .partition_point(|&i| self.routes[i].pattern.specificity() <= key);
            self.dynamic.insert(at, index);
        }
        self.shapes.entry(shape).or_default().push(index);
        self.routes.push(route);
        Ok(())
    }

    /// All routes, in declaration order.
    pub fn routes(&self) -> &[Route<T>] {
        &self.routes
    }

    /// Finds the route for a request. `path` excludes the query string.
    pub fn lookup<'r, 'p>(
        &'r self,
        method: &Method,
        path: &'p str,
    ) -> Result<Match<'r, 'p, T>, RouteError> {
        let mut allow: Vec<Method> = Vec::new();
        let mut path_matched = false;
        let exact = self.exact.get(path).into_iter().flatten();
        for &index in exact.chain(self.dynamic.iter()) {
            let route = &self.routes[index];
            let Some(params) = route.pattern.matches(path) else {
                continue;
            };
            if route.allows(method) {
                return Ok(Match { route, params });
            }
            path_matched = true;
            for m in route.methods.iter().flatten() {
                if !allow.contains(m) {
                    allow.push(m.clone());
                }
            }
        }
        if path_matched {
            if allow.contains(&Method::GET) && !allow.contains(&Method::HEAD) {
                allow.push(Method::HEAD);
            }
            Err(RouteError::MethodNotAllowed { allow })
        } else {
            Err(RouteError::NotFound)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, Option<&[Method]>)]) -> Router<usize> {
        let mut router = Router::new();
        for (i, (pattern, methods)) in routes.iter().enumerate() {
            router = router
                .route(pattern.parse().unwrap(), methods.map(|m| m.to_vec()), i)
                .unwrap();
        }
        router
    }

    fn target(router: &Router<usize>, method: Method, path: &str) -> Result<usize, RouteError> {
        router.lookup(&method, path).map(|m| *m.route.target())
    }

    #[test]
    fn exact_beats_param_beats_wildcard() {
        // Declared least specific first, to show order does not matter.
        let r = router(&[
            ("/{*rest}", None),
            ("/users/{*rest}", None),
            ("/users/{id}", None),
            ("/users/me", None),
            ("/{section}/profile", None),
        ]);
        assert_eq!(target(&r, Method::GET, "/users/me"), Ok(3));
        assert_eq!(target(&r, Method::GET, "/users/42"), Ok(2));
        assert_eq!(target(&r, Method::GET, "/users/42/posts"), Ok(1));
        // `/users/{id}` beats `/{section}/profile`: literal first segment wins.
        assert_eq!(target(&r, Method::GET, "/users/profile"), Ok(2));
        assert_eq!(target(&r, Method::GET, "/admin/profile"), Ok(4));
        assert_eq!(target(&r, Method::GET, "/anything/else"), Ok(0));
        assert_eq!(target(&r, Method::GET, "/"), Ok(0));
    }

    #[test]
    fn params_are_returned() {
        let r = router(&[("/users/{id}/files/{*path}", None)]);
        let m = r.lookup(&Method::GET, "/users/7/files/a/b.txt").unwrap();
        assert_eq!(m.params, vec![("id", "7"), ("path", "a/b.txt")]);
        assert_eq!(m.route.pattern().as_str(), "/users/{id}/files/{*path}");
    }

    #[test]
    fn not_found() {
        let r = router(&[("/hello", None), ("/users/{id}", None)]);
        assert_eq!(target(&r, Method::GET, "/nope"), Err(RouteError::NotFound));
        assert_eq!(
            target(&r, Method::GET, "/hello/"),
            Err(RouteError::NotFound)
        );
        assert_eq!(target(&r, Method::GET, "/users"), Err(RouteError::NotFound));
    }

    #[test]
    fn method_filter_and_405() {
        let r = router(&[
            ("/items", Some(&[Method::GET])),
            ("/items", Some(&[Method::POST])),
            ("/items/{id}", Some(&[Method::DELETE])),
        ]);
        assert_eq!(target(&r, Method::GET, "/items"), Ok(0));
        assert_eq!(target(&r, Method::HEAD, "/items"), Ok(0));
        assert_eq!(target(&r, Method::POST, "/items"), Ok(1));
        assert_eq!(
            target(&r, Method::PUT, "/items"),
            Err(RouteError::MethodNotAllowed {
                allow: vec![Method::GET, Method::POST, Method::HEAD]
            })
        );
        assert_eq!(
            target(&r, Method::GET, "/items/3"),
            Err(RouteError::MethodNotAllowed {
                allow: vec![Method::DELETE]
            })
        );
    }

    #[test]
    fn falls_through_to_a_less_specific_route_that_accepts_the_method() {
        let r = router(&[
            ("/users/{id}", Some(&[Method::GET])),
            ("/users/{*rest}", None),
        ]);
        assert_eq!(target(&r, Method::POST, "/users/1"), Ok(1));
    }

    #[test]
    fn conflicts_are_rejected() {
        let r: Router<usize> = Router::new()
            .route("/users/{id}".parse().unwrap(), None, 0)
            .unwrap();
        let err = r
            .clone()
            .route("/users/{name}".parse().unwrap(), Some(vec![Method::GET]), 1)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "route `/users/{name}` conflicts with route `/users/{id}`: both match the same paths for any method"
        );
        let r: Router<usize> = Router::new()
            .route(
                "/a".parse().unwrap(),
                Some(vec![Method::GET, Method::PUT]),
                0,
            )
            .unwrap();
        let err = r
            .clone()
            .route("/a".parse().unwrap(), Some(vec![Method::PUT]), 1)
            .unwrap_err();
        assert_eq!(err.method, "PUT");
        // A HEAD route next to a GET route would never be reached.
        let err = r
            .clone()
            .route("/a".parse().unwrap(), Some(vec![Method::HEAD]), 1)
            .unwrap_err();
        assert_eq!(err.method, "HEAD");
        // Disjoint methods on the same pattern are fine.
        assert!(
            r.route("/a".parse().unwrap(), Some(vec![Method::POST]), 2)
                .is_ok()
        );
    }
}
