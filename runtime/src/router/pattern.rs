//! Route patterns: `/hello`, `/users/{id}`, `/static/{*rest}`.

use std::fmt;
use std::str::FromStr;

/// One segment of a route pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Must equal the path segment exactly.
    Literal(String),
    /// `{name}`: matches any one non-empty segment.
    Param(String),
    /// `{*name}`: matches the rest of the path (possibly empty); last only.
    Wildcard(String),
}

impl Segment {
    /// Specificity rank: lower wins. Exact beats parameter beats wildcard.
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 0,
            Segment::Param(_) => 1,
            Segment::Wildcard(_) => 2,
        }
    }
}

/// A validated route pattern.
///
/// Patterns start with `/` and are split on `/`. A segment is a literal, a
/// named parameter `{name}` or, as the last segment only, a wildcard
/// `{*name}`. Names are lowercase ASCII letters, digits and `_`, start with a
/// letter or `_`, and are unique within a pattern (they become request
/// headers `x-gust-param-NAME`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoutePattern {
    raw: String,
    segments: Vec<Segment>,
}

/// Why a route pattern is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid route pattern `{pattern}`: {reason}")]
pub struct PatternError {
    pattern: String,
    reason: String,
}

impl RoutePattern {
    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The parsed segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// True when the pattern has no parameters or wildcard.
    pub fn is_exact(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Literal(_)))
    }

    /// Sort key: compared segment by segment, literal < param < wildcard, so
    /// the most specific pattern sorts first.
    pub(crate) fn specificity(&self) -> Vec<u8> {
        self.segments.iter().map(Segment::rank).collect()
    }

    /// The pattern with parameter names erased: two patterns with the same
    /// shape match exactly the same paths.
    pub(crate) fn shape(&self) -> Vec<Segment> {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => Segment::Literal(l.clone()),
                Segment::Param(_) => Segment::Param(String::new()),
                Segment::Wildcard(_) => Segment::Wildcard(String::new()),
            })
            .collect()
    }

    /// Matches a request path (without query), returning the parameters.
    pub fn matches<'p>(&self, path: &'p str) -> Option<Vec<(&str, &'p str)>> {
        let rest = path.strip_prefix('/')?;
        let mut params = Vec::new();
        let mut remaining = Some(rest);
        for segment in &self.segments {
            match segment {
                Segment::Wildcard(name) => {
                    params.push((name.as_str(), remaining.unwrap_or("")));
                    return Some(params);
                }
                _ => {
                    let current = remaining?;
                    let (head, tail) = match current.split_once('/') {
                        Some((head, tail)) => (head, Some(tail)),
                        None => (current, None),
                    };
                    match segment {
                        Segment::Literal(lit) if lit == head => {}
                        Segment::Param(name) if !head.is_empty() => {
                            params.push((name.as_str(), head));
                        }
                        _ => return None,
                    }
                    remaining = tail;
                }
            }
        }
        // Every path segment must be consumed.
        remaining.is_none().then_some(params)
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl FromStr for RoutePattern {
    type Err = PatternError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let fail = |reason: &str| PatternError {
            pattern: raw.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = raw
            .strip_prefix('/')
            .ok_or_else(|| fail("must start with `/`"))?;
        if raw.contains(['?', '#']) {
            return Err(fail("must not contain `?` or `#`"));
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(fail("must not contain whitespace or control characters"));
        }
        let mut segments = Vec::new();
        {
            // `/` is one empty literal segment, like the path `/`.
            let parts: Vec<&str> = rest.split('/').collect();
            for (i, part) in parts.iter().enumerate() {
                let last = i + 1 == parts.len();
                let segment =
                    if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                        if let Some(name) = inner.strip_prefix('*') {
                            if !last {
                                return Err(fail("a wildcard `{*name}` must be the last segment"));
                            }
                            Segment::Wildcard(name.to_owned())
                        } else {
                            Segment::Param(inner.to_owned())
                        }
                    } else if part.contains(['{', '}']) {
                        return Err(fail("a parameter must be a whole segment, like `/{id}`"));
                    } else if part.is_empty() && !last {
                        return Err(fail("empty segment (`//`)"));
                    } else {
                        Segment::Literal((*part).to_owned())
                    };
                if let Segment::Param(name) | Segment::Wildcard(name) = &segment {
                    if !valid_name(name) {
                        return Err(fail(&format!(
                            "parameter name `{name}` must be lowercase letters, digits or `_`, not starting with a digit"
                        )));
                    }
                    let duplicate = segments.iter().any(
                        |s| matches!(s, Segment::Param(n) | Segment::Wildcard(n) if n == name),
                    );
                    if duplicate {
                        return Err(fail(&format!("parameter `{name}` appears twice")));
                    }
                }
                segments.push(segment);
            }
        }
        Ok(RoutePattern {
            raw: raw.to_owned(),
            segments,
        })
    }
}

impl TryFrom<String> for RoutePattern {
    type Error = PatternError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl fmt::Display for RoutePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl<'de> serde::Deserialize<'de> for RoutePattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RoutePattern {
        s.parse().unwrap()
    }

    #[test]
    fn parses_segments() {
        assert_eq!(p("/").segments(), &[Segment::Literal(String::new())]);
        assert_eq!(
            p("/users/{id}/posts/{*rest}").segments(),
            &[
                Segment::Literal("users".into()),
                Segment::Param("id".into()),
                Segment::Literal("posts".into()),
                Segment::Wildcard("rest".into()),
            ]
        );
        assert!(p("/hello").is_exact());
        assert!(!p("/users/{id}").is_exact());
    }

    #[test]
    fn rejects_bad_patterns() {
        for (bad, why) in [
            ("hello", "must start with `/`"),
            ("/a//b", "empty segment"),
            ("/{*rest}/x", "must be the last segment"),
            ("/a{id}", "whole segment"),
            ("/{Id}", "lowercase"),
            ("/{1d}", "lowercase"),
            ("/{}", "lowercase"),
            ("/{id}/{id}", "appears twice"),
            ("/a?b", "`?`"),
            ("/a b", "whitespace"),
        ] {
            let err = bad.parse::<RoutePattern>().unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(err.contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn matching() {
        assert_eq!(p("/hello").matches("/hello"), Some(vec![]));
        assert_eq!(p("/hello").matches("/hello/"), None);
        assert_eq!(p("/hello").matches("/hell"), None);
        assert_eq!(p("/").matches("/"), Some(vec![]));
        assert_eq!(p("/").matches("/x"), None);
        assert_eq!(
            p("/users/{id}").matches("/users/42"),
            Some(vec![("id", "42")])
        );
        assert_eq!(p("/users/{id}").matches("/users/"), None);
        assert_eq!(p("/users/{id}").matches("/users/42/x"), None);
        assert_eq!(
            p("/static/{*rest}").matches("/static/css/site.css"),
            Some(vec![("rest", "css/site.css")])
        );
        assert_eq!(
            p("/static/{*rest}").matches("/static"),
            Some(vec![("rest", "")])
        );
        assert_eq!(
            p("/static/{*rest}").matches("/static/"),
            Some(vec![("rest", "")])
        );
        assert_eq!(p("/static/{*rest}").matches("/staticx"), None);
        assert_eq!(p("/{*all}").matches("/"), Some(vec![("all", "")]));
        assert_eq!(p("/hello/").matches("/hello/"), Some(vec![]));
    }
}
