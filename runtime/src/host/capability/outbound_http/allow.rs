//! The outbound allow-list of one function, in Spin's syntax:
//! `scheme://host[:port]`.
//!
//! - scheme: `http`, `https`, or `*` (either);
//! - host: a name (`api.example.com`, matched exactly, case-insensitively),
//!   `*.` and a name (`*.example.com`: any name below it, not the name
//!   itself), `*` (any host), or an IP address (`127.0.0.1`, `[::1]`);
//! - port: a number, `*` (any), or nothing: the scheme's default port (80
//!   for `http`, 443 for `https`; for `*`, the default of the request's
//!   scheme).
//!
//! No path, query, user info or fragment. Names under `gust.internal` are
//! the app's own functions (in-process composition): only entries whose
//! host is under `gust.internal` (`http://users.gust.internal`,
//! `http://*.gust.internal`) allow them; a bare `*` host does not.

use std::net::IpAddr;

/// The domain of the app's own functions: `http://NAME.gust.internal`.
pub(crate) const INTERNAL_DOMAIN: &str = "gust.internal";

/// Which schemes an entry allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Schemes {
    Http,
    Https,
    Any,
}

/// Which hosts an entry allows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hosts {
    /// `*`.
    Any,
    /// `*.example.com`: names ending in `.example.com` (stored with the
    /// leading dot).
    Below(String),
    /// `example.com`, lower case.
    Name(String),
    /// `127.0.0.1`, `[::1]`: this address only, named explicitly (so it
    /// may be a private one, see `connect`).
    Ip(IpAddr),
}

/// Which ports an entry allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ports {
    /// None written: the default port of the request's scheme.
    Default,
    Exact(u16),
    Any,
}

/// One allow-list entry, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AllowEntry {
    schemes: Schemes,
    hosts: Hosts,
    ports: Ports,
}

/// The host of a request, as the allow-list and the connector see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Host {
    /// A name, lower case, without a trailing dot.
    Name(String),
    /// An IP address literal.
    Ip(IpAddr),
}

impl Host {
    /// Parses a URI's host (IPv6 literals in brackets).
    pub(crate) fn parse(host: &str) -> Option<Host> {
        if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            return inner.parse().ok().map(Host::Ip);
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Some(Host::Ip(ip));
        }
        let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        valid_name(&name).then_some(Host::Name(name))
    }

    /// The function a `NAME.gust.internal` host names, if it is one.
    pub(crate) fn internal_function(&self) -> Option<&str> {
        match self {
            Host::Name(name) => name
                .strip_suffix(INTERNAL_DOMAIN)
                .and_then(|rest| rest.strip_suffix('.')),
            Host::Ip(_) => None,
        }
    }

    /// Whether the host is under `gust.internal` (whatever the label).
    pub(crate) fn is_internal(&self) -> bool {
        matches!(self, Host::Name(name) if name == INTERNAL_DOMAIN
            || name.ends_with(&format!(".{INTERNAL_DOMAIN}")))
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
        }
    }
}

/// A DNS name as an allow-list or a request may use it: labels of ASCII
/// letters, digits, `-` and `_` (function ids have underscores).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The default port of `scheme` (`http` or `https`).
pub(crate) fn default_port(https: bool) -> u16 {
    if https { 443 } else { 80 }
}

impl AllowEntry {
    /// Parses one entry; the error says what is wrong, for the manifest's
    /// problem list.
    pub(crate) fn parse(entry: &str) -> Result<AllowEntry, String> {
        const FORM: &str = "expected `scheme://host[:port]` (scheme `http`, `https` or `*`; host a name, `*.name`, `*` or an IP address; port a number or `*`)";
        let Some((scheme, rest)) = entry.split_once("://") else {
            return Err(format!("`{entry}`: no scheme; {FORM}"));
        };
        let schemes = match scheme.to_ascii_lowercase().as_str() {
            "http" => Schemes::Http,
            "https" => Schemes::Https,
            "*" => Schemes::Any,
            other => {
                return Err(format!(
                    "`{entry}`: unsupported scheme `{other}` (use `http`, `https` or `*`)"
                ));
            }
        };
        if let Some(c) = rest.chars().find(|c| matches!(c, '/' | '?' | '#' | '@')) {
            return Err(format!(
                "`{entry}`: `{c}` is not allowed: an entry names a host and port, no path, query or user; {FORM}"
            ));
        }
        // `[v6]:port`, `[v6]`, `host:port`, `host`.
        let (host, port) = if rest.starts_with('[') {
            match rest.find(']') {
                Some(end) => {
                    let after = &rest[end + 1..];
                    let port = match after.strip_prefix(':') {
                        Some(port) => Some(port),
                        None if after.is_empty() => None,
                        None => return Err(format!("`{entry}`: unexpected `{after}`; {FORM}")),
                    };
                    (&rest[..=end], port)
                }
                None => return Err(format!("`{entry}`: unclosed `[`; {FORM}")),
            }
        } else {
            match rest.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        let ports = match port {
            None => Ports::Default,
            Some("*") => Ports::Any,
            Some(port) => match port.parse::<u16>() {
                Ok(0) | Err(_) => {
                    return Err(format!(
                        "`{entry}`: invalid port `{port}` (1 to 65535, or `*`)"
                    ));
                }
                Ok(port) => Ports::Exact(port),
            },
        };
        let hosts = if host == "*" {
            Hosts::Any
        } else if let Some(below) = host.strip_prefix("*.") {
            match Host::parse(below) {
                Some(Host::Name(name)) => Hosts::Below(format!(".{name}")),
                _ => {
                    return Err(format!(
                        "`{entry}`: `*.` must be followed by a host name, not `{below}`"
                    ));
                }
            }
        } else if host.contains('*') {
            return Err(format!(
                "`{entry}`: `*` may only be the whole host or its first label (`*.example.com`)"
            ));
        } else {
            match Host::parse(host) {
                Some(Host::Name(name)) => Hosts::Name(name),
                Some(Host::Ip(ip)) => Hosts::Ip(ip),
                None => return Err(format!("`{entry}`: invalid host `{host}`; {FORM}")),
            }
        };
        Ok(AllowEntry {
            schemes,
            hosts,
            ports,
        })
    }

    /// Whether this entry allows a request to `host:port` over `https` or
    /// plain `http`.
    pub(crate) fn allows(&self, https: bool, host: &Host, port: u16) -> bool {
        let scheme = match self.schemes {
            Schemes::Http => !https,
            Schemes::Https => https,
            Schemes::Any => true,
        };
        let port = match self.ports {
            Ports::Default => port == default_port(https),
            Ports::Exact(allowed) => port == allowed,
            Ports::Any => true,
        };
        scheme && port && self.allows_host(host)
    }

    fn allows_host(&self, host: &Host) -> bool {
        // The app's own functions are reachable only through entries
        // that name `gust.internal`: a `*` meant for the internet does
        // not grant composition.
        if host.is_internal() {
            return match (&self.hosts, host) {
                (Hosts::Name(allowed), Host::Name(name)) => allowed == name,
                (Hosts::Below(suffix), Host::Name(name)) => {
                    (suffix == &format!(".{INTERNAL_DOMAIN}")
                        || suffix.ends_with(&format!(".{INTERNAL_DOMAIN}")))
                        && name.ends_with(suffix.as_str())
                }
                _ => false,
            };
        }
        match (&self.hosts, host) {
            (Hosts::Any, _) => true,
            (Hosts::Below(suffix), Host::Name(name)) => name.ends_with(suffix.as_str()),
            (Hosts::Name(allowed), Host::Name(name)) => allowed == name,
            (Hosts::Ip(allowed), Host::Ip(ip)) => allowed == ip,
            _ => false,
        }
    }

    /// Whether this entry names the address `ip` itself: a request to it
    /// may then go to a private or loopback address (the operator wrote
    /// it down).
    pub(crate) fn names_ip(&self, ip: IpAddr) -> bool {
        self.hosts == Hosts::Ip(ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(h: &str) -> Host {
        Host::parse(h).expect("valid host")
    }

    fn allows(entry: &str, https: bool, h: &str, port: u16) -> bool {
        AllowEntry::parse(entry)
            .unwrap_or_else(|e| panic!("{e}"))
            .allows(https, &host(h), port)
    }

    #[test]
    fn entries_match_scheme_host_and_port() {
        assert!(allows(
            "https://api.example.com",
            true,
            "api.example.com",
            443
        ));
        assert!(allows(
            "https://api.example.com",
            true,
            "API.Example.com.",
            443
        ));
        assert!(!allows(
            "https://api.example.com",
            false,
            "api.example.com",
            80
        ));
        assert!(!allows(
            "https://api.example.com",
            true,
            "api.example.com",
            8443
        ));
        assert!(!allows("https://api.example.com", true, "example.com", 443));
        assert!(allows("http://*.example.com", false, "a.b.example.com", 80));
        assert!(!allows("http://*.example.com", false, "example.com", 80));
        assert!(!allows("http://*.example.com", false, "badexample.com", 80));
        assert!(allows("*://example.com", false, "example.com", 80));
        assert!(allows("*://example.com", true, "example.com", 443));
        assert!(!allows("*://example.com", true, "example.com", 80));
        assert!(allows("http://example.com:*", false, "example.com", 9999));
        assert!(allows("http://*:*", false, "127.0.0.1", 1));
        assert!(allows("http://127.0.0.1:8080", false, "127.0.0.1", 8080));
        assert!(!allows("http://127.0.0.1:8080", false, "localhost", 8080));
        assert!(allows("http://[::1]:8080", false, "[::1]", 8080));
    }

    #[test]
    fn internal_hosts_need_an_internal_entry() {
        assert!(allows(
            "http://users.gust.internal",
            false,
            "users.gust.internal",
            80
        ));
        assert!(!allows(
            "http://users.gust.internal",
            false,
            "orders.gust.internal",
            80
        ));
        assert!(allows(
            "http://*.gust.internal",
            false,
            "orders.gust.internal",
            80
        ));
        assert!(!allows("http://*:*", false, "orders.gust.internal", 80));
        assert!(!allows(
            "http://*.internal",
            false,
            "orders.gust.internal",
            80
        ));
        assert_eq!(
            host("Users.gust.internal").internal_function(),
            Some("users")
        );
        assert_eq!(host("a.b.gust.internal").internal_function(), Some("a.b"));
        assert_eq!(host("gust.internal").internal_function(), None);
        assert_eq!(host("example.com").internal_function(), None);
    }

    #[test]
    fn bad_entries_are_explained() {
        for (entry, says) in [
            ("example.com", "no scheme"),
            ("ftp://example.com", "unsupported scheme"),
            ("http://example.com/path", "no path"),
            ("http://user@example.com", "no path"),
            ("http://example.com:0", "invalid port"),
            ("http://example.com:http", "invalid port"),
            ("http://ex*mple.com", "first label"),
            ("http://*.", "must be followed"),
            ("http://", "invalid host"),
            ("http://[::1", "unclosed"),
            ("http://exa mple.com", "invalid host"),
        ] {
            let error = AllowEntry::parse(entry).expect_err(entry);
            assert!(error.contains(says), "{entry}: {error}");
        }
    }
}
