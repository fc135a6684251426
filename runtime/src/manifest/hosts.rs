//! The hosts an app answers: `hosts = ["shop.example.com", "*.shop.example.com"]`.
//!
//! A pattern is an exact host name, `*.` followed by a host name (any
//! subdomain of it, one label or more, not the name itself), or `*` alone
//! (every host no other app claims: the node's default app). Patterns are
//! lowercase ASCII without a port; requests are matched on their `Host`
//! (HTTP/1.1) or `:authority` (HTTP/2) with the port removed and case
//! folded. An app that lists no hosts answers `*`.

use std::fmt;

use serde::Deserialize;

/// A validated host pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct HostPattern(String);

/// What a [`HostPattern`] matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostMatch<'a> {
    /// Exactly this host.
    Exact(&'a str),
    /// Any host ending in `.` + this name.
    Subdomains(&'a str),
    /// Any host (the default app).
    Any,
}

impl HostPattern {
    /// `*`: every host no other app claims.
    pub fn any() -> HostPattern {
        HostPattern("*".to_owned())
    }

    /// The pattern as written (lowercase).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the pattern matches.
    pub fn kind(&self) -> HostMatch<'_> {
        if self.0 == "*" {
            HostMatch::Any
        } else if let Some(name) = self.0.strip_prefix("*.") {
            HostMatch::Subdomains(name)
        } else {
            HostMatch::Exact(&self.0)
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for HostPattern {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        let pattern = raw.to_ascii_lowercase();
        if pattern == "*" {
            return Ok(HostPattern(pattern));
        }
        let name = pattern.strip_prefix("*.").unwrap_or(&pattern);
        check_name(name).map_err(|problem| format!("invalid host `{raw}`: {problem}"))?;
        Ok(HostPattern(pattern))
    }
}

impl TryFrom<&str> for HostPattern {
    type Error = String;

    fn try_from(raw: &str) -> Result<Self, Self::Error> {
        HostPattern::try_from(raw.to_owned())
    }
}

impl std::str::FromStr for HostPattern {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        HostPattern::try_from(raw)
    }
}

/// A DNS name (or an IPv4 address): dot-separated labels of letters,
/// digits and `-`, none empty or longer than 63, at most 253 in all.
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty host name");
    }
    if name.len() > 253 {
        return Err("longer than 253 characters");
    }
    if name.contains(':') {
        return Err("no port or IPv6 address: hosts are matched without the port");
    }
    if name.contains('*') {
        return Err("`*` only as `*` alone or as the first label (`*.example.com`)");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("empty label (two dots in a row, or a leading or trailing dot)");
        }
        if label.len() > 63 {
            return Err("a label longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err("only letters, digits, `-` and `.` are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label starts or ends with `-`");
        }
    }
    Ok(())
}

/// The host of an authority (`Host` header or `:authority`), lowercased,
/// without its port or IPv6 brackets' port; `None` if it is not a host name
/// gust could route on. Borrowed unless it had to be lowercased: this runs
/// on every request.
pub fn request_host(authority: &str) -> Option<std::borrow::Cow<'_, str>> {
    let authority = authority.trim();
    let host = if let Some(rest) = authority.strip_prefix('[') {
        // `[::1]:8080`: IPv6 literals only match `*`, but still route.
        let end = rest.find(']')?;
        &rest[..end]
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => authority,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() {
        return None;
    }
    Some(if host.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(host.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(host)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_validated_and_lowercased() {
        let ok = [
            "shop.example.com",
            "*.Shop.Example.com",
            "*",
            "localhost",
            "10.0.0.1",
        ];
        for raw in ok {
            let pattern = HostPattern::try_from(raw).unwrap();
            assert_eq!(pattern.as_str(), raw.to_ascii_lowercase());
        }
        assert_eq!(
            HostPattern::try_from("*.a.com").unwrap().kind(),
            HostMatch::Subdomains("a.com")
        );
        for bad in [
            "",
            "a..b",
            ".a",
            "a.",
            "a.*.b",
            "**",
            "*.",
            "a_b.com",
            "a.com:8080",
            "-a.com",
        ] {
            assert!(HostPattern::try_from(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn request_hosts_lose_port_and_case() {
        assert_eq!(
            request_host("Shop.Example.com:8080").as_deref(),
            Some("shop.example.com")
        );
        assert_eq!(
            request_host("shop.example.com.").as_deref(),
            Some("shop.example.com")
        );
        assert_eq!(request_host("[::1]:80").as_deref(), Some("::1"));
        assert_eq!(request_host("127.0.0.1").as_deref(), Some("127.0.0.1"));
        assert_eq!(request_host(""), None);
        assert_eq!(request_host(":80"), None);
    }
}
