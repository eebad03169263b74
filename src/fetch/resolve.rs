//! Turning a URL's host into the IPv4 address to connect to: `--resolve` entries first, then an
//! IPv4 literal, then the system resolver (IPv4 only, because the stack is).

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::str::FromStr;

use url::Url;

/// One `--resolve HOST:PORT:ADDR` entry: connect to `addr` whenever the URL names `host:port`,
/// so tests and users can reach a server without DNS (like curl's `--resolve`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveEntry {
    /// Host name as it appears in URLs (compared without regard to ASCII case).
    pub host: String,
    /// Port the entry applies to.
    pub port: u16,
    /// IPv4 address to use instead of resolving `host`.
    pub addr: Ipv4Addr,
}

impl ResolveEntry {
    /// Whether this entry applies to a URL naming `host:port`.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        self.port == port && self.host.eq_ignore_ascii_case(host)
    }
}

/// Why a `--resolve` value could not be used; the command line reports it as a usage error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveParseError {
    /// The value is not of the form HOST:PORT:ADDR.
    #[error("expected HOST:PORT:ADDR, e.g. example.com:80:10.77.1.2")]
    Shape,
    /// The host part is empty.
    #[error("the host is empty (expected HOST:PORT:ADDR)")]
    EmptyHost,
    /// The port is not a number from 1 to 65535.
    #[error("'{0}' is not a port number (1-65535)")]
    Port(String),
    /// The address is not a dotted-quad IPv4 address.
    #[error("'{0}' is not an IPv4 address (only IPv4 is supported)")]
    Addr(String),
}

impl FromStr for ResolveEntry {
    type Err = ResolveParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut parts = text.splitn(3, ':');
        let (Some(host), Some(port), Some(addr)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(ResolveParseError::Shape);
        };
        if host.is_empty() {
            return Err(ResolveParseError::EmptyHost);
        }
        let port = match port.parse::<u16>() {
            Ok(port) if port != 0 => port,
            _ => return Err(ResolveParseError::Port(port.to_owned())),
        };
        let addr = addr
            .parse::<Ipv4Addr>()
            .map_err(|_| ResolveParseError::Addr(addr.to_owned()))?;
        Ok(ResolveEntry {
            host: host.to_owned(),
            port,
            addr,
        })
    }
}

impl fmt::Display for ResolveEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.host, self.port, self.addr)
    }
}

/// Why a URL's host gave no IPv4 address to connect to; typed so callers (and tests) can tell
/// "no such host" from "IPv6 only" without reading the message.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The URL names no host at all (only reachable through a malformed redirect).
    #[error("URL has no host: {0}")]
    NoHost(Url),
    /// The host is an IPv6 literal; the stack speaks IPv4 only.
    #[error("{0} is an IPv6 address; only IPv4 is supported")]
    Ipv6Literal(String),
    /// The system resolver failed (no such name, no network...).
    #[error("cannot resolve {host}: {source}")]
    Lookup {
        /// The host name that was looked up.
        host: String,
        /// What the resolver said.
        source: io::Error,
    },
    /// The name exists but has only IPv6 addresses.
    #[error("{0} has no IPv4 address; only IPv4 is supported")]
    NoIpv4(String),
}

/// The address to connect to for `url`: the first matching `--resolve` entry, an IPv4 literal,
/// or the system resolver's first IPv4 address.
pub fn resolve(entries: &[ResolveEntry], url: &Url) -> Result<SocketAddrV4, ResolveError> {
    let host = url
        .host_str()
        .ok_or_else(|| ResolveError::NoHost(url.clone()))?;
    let port = url.port_or_known_default().unwrap_or(80);
    if let Some(entry) = entries.iter().find(|e| e.matches(host, port)) {
        return Ok(SocketAddrV4::new(entry.addr, port));
    }
    if let Ok(addr) = host.parse::<Ipv4Addr>() {
        return Ok(SocketAddrV4::new(addr, port));
    }
    if host.starts_with('[') {
        return Err(ResolveError::Ipv6Literal(host.to_owned()));
    }
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|source| ResolveError::Lookup {
            host: host.to_owned(),
            source,
        })?
        .collect();
    addrs
        .iter()
        .find_map(|a| match a {
            SocketAddr::V4(v4) => Some(*v4),
            SocketAddr::V6(_) => None,
        })
        .ok_or_else(|| ResolveError::NoIpv4(host.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_entries_follow_curls_form() {
        let entry: ResolveEntry = "example.com:8080:10.77.1.2".parse().unwrap();
        assert_eq!(
            entry,
            ResolveEntry {
                host: "example.com".to_owned(),
                port: 8080,
                addr: Ipv4Addr::new(10, 77, 1, 2),
            }
        );
        assert_eq!(entry.to_string(), "example.com:8080:10.77.1.2");
        assert_eq!(
            "example.com".parse::<ResolveEntry>(),
            Err(ResolveParseError::Shape)
        );
        assert_eq!(
            ":80:10.0.0.1".parse::<ResolveEntry>(),
            Err(ResolveParseError::EmptyHost)
        );
        assert_eq!(
            "h:0:10.0.0.1".parse::<ResolveEntry>(),
            Err(ResolveParseError::Port("0".to_owned()))
        );
        assert_eq!(
            "h:http:10.0.0.1".parse::<ResolveEntry>(),
            Err(ResolveParseError::Port("http".to_owned()))
        );
        assert_eq!(
            "h:80:[::1]".parse::<ResolveEntry>(),
            Err(ResolveParseError::Addr("[::1]".to_owned()))
        );
    }

    #[test]
    fn entries_win_over_literals_and_match_case_insensitively() {
        let entries: Vec<ResolveEntry> = vec![
            "example.com:80:10.77.1.2".parse().unwrap(),
            "10.0.0.9:80:10.77.1.3".parse().unwrap(),
        ];
        let url = |text: &str| Url::parse(text).unwrap();
        let addr = |a, b, c, d, port| SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), port);
        assert_eq!(
            resolve(&entries, &url("http://EXAMPLE.com/x")).unwrap(),
            addr(10, 77, 1, 2, 80)
        );
        assert_eq!(
            resolve(&entries, &url("http://10.0.0.9/")).unwrap(),
            addr(10, 77, 1, 3, 80)
        );
        assert_eq!(
            resolve(&entries, &url("https://10.0.0.9/")).unwrap(),
            addr(10, 0, 0, 9, 443)
        );
    }

    #[test]
    fn ipv6_literals_are_refused_by_name() {
        let error = resolve(&[], &Url::parse("http://[::1]:8080/").unwrap()).unwrap_err();
        assert!(matches!(error, ResolveError::Ipv6Literal(_)));
        assert_eq!(
            error.to_string(),
            "[::1] is an IPv6 address; only IPv4 is supported"
        );
    }
}
