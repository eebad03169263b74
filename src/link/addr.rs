//! `--local-ip ADDR[/PREFIX]`: our address and, in TAP mode, the on-link prefix, parsed with
//! one-line errors; and the default gateway of a subnet.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use thiserror::Error;

/// The prefix TAP mode assumes when `--local-ip` gives a plain address (the sandbox's /24).
pub const DEFAULT_TAP_PREFIX: u8 = 24;

/// An IPv4 address with an optional prefix length, as `--local-ip` takes it: `10.77.0.2`
/// (TUN mode needs no more) or `10.77.0.2/24` (TAP mode's on-link subnet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceAddr {
    /// The address.
    pub addr: Ipv4Addr,
    /// The prefix length, if one was given.
    pub prefix_len: Option<u8>,
}

impl From<Ipv4Addr> for InterfaceAddr {
    fn from(addr: Ipv4Addr) -> Self {
        InterfaceAddr {
            addr,
            prefix_len: None,
        }
    }
}

impl fmt::Display for InterfaceAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.prefix_len {
            Some(len) => write!(f, "{}/{len}", self.addr),
            None => write!(f, "{}", self.addr),
        }
    }
}

/// Why `--local-ip` was refused; the message is the one line the user sees.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseInterfaceAddrError {
    /// Not a dotted-quad IPv4 address.
    #[error("'{0}' is not an IPv4 address (e.g. 10.77.0.2 or 10.77.0.2/24)")]
    Address(String),
    /// A prefix length that is not a number from 1 to 30: a host needs a subnet with room
    /// for itself and a gateway.
    #[error("'{0}' is not a prefix length from 1 to 30")]
    Prefix(String),
    /// The address is the subnet's network or broadcast address, which no host may have.
    #[error("{0} is not a host address in its subnet (network or broadcast address)")]
    NotAHost(String),
}

impl FromStr for InterfaceAddr {
    type Err = ParseInterfaceAddrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: Ipv4Addr = addr_text
            .parse()
            .map_err(|_| ParseInterfaceAddrError::Address(addr_text.to_owned()))?;
        let Some(prefix_text) = prefix_text else {
            return Ok(addr.into());
        };
        let prefix_len = prefix_text
            .parse::<u8>()
            .ok()
            .filter(|len| (1..=30).contains(len))
            .ok_or_else(|| ParseInterfaceAddrError::Prefix(prefix_text.to_owned()))?;
        let host_bits = u32::from(addr) & !(u32::MAX << (32 - prefix_len));
        if host_bits == 0 || host_bits == !(u32::MAX << (32 - prefix_len)) {
            return Err(ParseInterfaceAddrError::NotAHost(text.to_owned()));
        }
        Ok(InterfaceAddr {
            addr,
            prefix_len: Some(prefix_len),
        })
    }
}

/// The conventional gateway of `addr`'s subnet: its first host address (the `.1` of a /24),
/// which is where `setup/sandbox` and most home networks put the router.
pub fn default_gateway(addr: Ipv4Addr, prefix_len: u8) -> Ipv4Addr {
    let mask = match prefix_len {
        0 => 0,
        n => u32::MAX << (32 - u32::from(n.min(32))),
    };
    Ipv4Addr::from((u32::from(addr) & mask) | 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_address_has_no_prefix_and_a_prefix_is_kept() {
        let plain: InterfaceAddr = "10.77.0.2".parse().unwrap();
        assert_eq!(plain, Ipv4Addr::new(10, 77, 0, 2).into());
        let with: InterfaceAddr = "10.77.0.2/24".parse().unwrap();
        assert_eq!(with.prefix_len, Some(24));
        assert_eq!(with.to_string(), "10.77.0.2/24");
    }

    #[test]
    fn bad_values_get_one_line_errors() {
        for (text, message) in [
            (
                "10.77.0",
                "'10.77.0' is not an IPv4 address (e.g. 10.77.0.2 or 10.77.0.2/24)",
            ),
            ("10.77.0.2/33", "'33' is not a prefix length from 1 to 30"),
            ("10.77.0.2/", "'' is not a prefix length from 1 to 30"),
            ("10.77.0.2/x", "'x' is not a prefix length from 1 to 30"),
            (
                "10.77.0.0/24",
                "10.77.0.0/24 is not a host address in its subnet (network or broadcast address)",
            ),
            (
                "10.77.0.255/24",
                "10.77.0.255/24 is not a host address in its subnet (network or broadcast address)",
            ),
        ] {
            let error = text.parse::<InterfaceAddr>().unwrap_err();
            assert_eq!(error.to_string(), message, "{text}");
        }
    }

    #[test]
    fn the_default_gateway_is_the_first_host_of_the_subnet() {
        assert_eq!(
            default_gateway(Ipv4Addr::new(10, 77, 0, 2), 24),
            Ipv4Addr::new(10, 77, 0, 1)
        );
        assert_eq!(
            default_gateway(Ipv4Addr::new(192, 168, 5, 77), 16),
            Ipv4Addr::new(192, 168, 0, 1)
        );
    }
}
