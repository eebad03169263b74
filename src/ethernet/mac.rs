//! 48-bit IEEE 802 MAC addresses: the two flag bits, text form, and a stable derived address.

use std::fmt;
use std::hash::Hasher;
use std::net::Ipv4Addr;
use std::str::FromStr;

use siphasher::sip::SipHasher13;
use thiserror::Error;

/// An Ethernet (IEEE 802) MAC address, kept as its six bytes in wire order so it can be copied
/// into and out of frames without conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

/// Bit 0 of the first byte: the I/G bit, set for group (multicast and broadcast) addresses.
const GROUP_BIT: u8 = 0x01;
/// Bit 1 of the first byte: the U/L bit, set for locally administered addresses.
const LOCAL_BIT: u8 = 0x02;
/// Fixed SipHash keys for `derive`: the address must be the same on every run and host, so it
/// is a function of its inputs only (these keys merely separate it from other hash uses).
const DERIVE_KEYS: (u64, u64) = (0x7475_6e73_7461_636b, 0x6d61_6320_6164_6472);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff, which every station on the segment receives (ARP requests go here).
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// 00:00:00:00:00:00, the "unknown" target hardware address of an ARP request.
    pub const UNSPECIFIED: MacAddr = MacAddr([0; 6]);

    /// Whether this is ff:ff:ff:ff:ff:ff.
    pub fn is_broadcast(self) -> bool {
        self == MacAddr::BROADCAST
    }

    /// Whether the I/G bit is set (broadcast included): such an address names a group, so it
    /// may be a destination but never a frame's source.
    pub fn is_multicast(self) -> bool {
        self.0[0] & GROUP_BIT != 0
    }

    /// Whether this names one station: not a group and not all zeros.
    pub fn is_unicast(self) -> bool {
        !self.is_multicast() && self != MacAddr::UNSPECIFIED
    }

    /// Whether the U/L bit is set: assigned by software rather than burnt in by a vendor, the
    /// only kind a host may invent for itself without colliding with an OUI.
    pub fn is_locally_administered(self) -> bool {
        self.0[0] & LOCAL_BIT != 0
    }

    /// A locally administered unicast address derived from an interface name and our IPv4
    /// address: the same inputs give the same MAC on every run, so peers' ARP caches and
    /// captures stay valid across restarts, while two stacks on one segment (different
    /// addresses) get different MACs without any configuration.
    pub fn derive(interface: &str, addr: Ipv4Addr) -> MacAddr {
        let mut hasher = SipHasher13::new_with_keys(DERIVE_KEYS.0, DERIVE_KEYS.1);
        hasher.write(interface.as_bytes());
        // A separator, so ("ab", 1.x.x.x) and ("a", ...) cannot hash the same bytes.
        hasher.write_u8(0);
        hasher.write(&addr.octets());
        let [b0, b1, b2, b3, b4, b5, _, _] = hasher.finish().to_be_bytes();
        MacAddr([(b0 & !GROUP_BIT) | LOCAL_BIT, b1, b2, b3, b4, b5])
    }

    /// The group address an IPv4 multicast group maps to (RFC 1112 §6.4): 01:00:5e followed by
    /// the low 23 bits of the group, so no ARP is needed to send to it.
    pub fn ipv4_multicast(group: Ipv4Addr) -> MacAddr {
        let [_, b1, b2, b3] = group.octets();
        MacAddr([0x01, 0x00, 0x5e, b1 & 0x7f, b2, b3])
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(bytes: [u8; 6]) -> Self {
        MacAddr(bytes)
    }
}

impl From<MacAddr> for [u8; 6] {
    fn from(mac: MacAddr) -> Self {
        mac.0
    }
}

impl fmt::Display for MacAddr {
    /// The usual lower-case colon form, `02:1a:2b:3c:4d:5e`, as `ip link` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// Why a string is not a MAC address; says what was expected so a command-line user can fix it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid MAC address {0:?}: expected six two-digit hex bytes like 02:1a:2b:3c:4d:5e")]
pub struct ParseMacError(pub String);

impl FromStr for MacAddr {
    type Err = ParseMacError;

    /// Accepts `aa:bb:cc:dd:ee:ff` and `aa-bb-cc-dd-ee-ff` (either case), nothing looser.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || ParseMacError(text.to_owned());
        let separator = if text.contains('-') { '-' } else { ':' };
        let mut bytes = [0u8; 6];
        let mut parts = text.split(separator);
        for byte in &mut bytes {
            let part = parts.next().ok_or_else(error)?;
            if part.len() != 2 || !part.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(error());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| error())?;
        }
        if parts.next().is_some() {
            return Err(error());
        }
        Ok(MacAddr(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        let mac = MacAddr([0x02, 0x1a, 0x2b, 0x3c, 0x4d, 0xfe]);
        assert_eq!(mac.to_string(), "02:1a:2b:3c:4d:fe");
        assert_eq!("02:1a:2b:3c:4d:fe".parse(), Ok(mac));
        assert_eq!("02-1A-2B-3C-4D-FE".parse(), Ok(mac));
        assert_eq!(MacAddr::BROADCAST.to_string(), "ff:ff:ff:ff:ff:ff");
    }

    #[test]
    fn parse_refuses_near_misses() {
        for bad in [
            "",
            "02:1a:2b:3c:4d",
            "02:1a:2b:3c:4d:5e:6f",
            "02:1a:2b:3c:4d:5",
            "02:1a:2b:3c:4d:5g",
            "021a:2b:3c:4d:5e",
            "02:1a-2b:3c:4d:5e",
            "+2:1a:2b:3c:4d:5e",
            "02:1a:2b:3c:4d:5e:",
        ] {
            assert_eq!(
                bad.parse::<MacAddr>(),
                Err(ParseMacError(bad.to_owned())),
                "{bad}"
            );
        }
    }

    #[test]
    fn flag_bits() {
        let vendor = MacAddr([0x00, 0x1b, 0x21, 0, 0, 1]);
        assert!(vendor.is_unicast() && !vendor.is_locally_administered());
        assert!(MacAddr::BROADCAST.is_multicast() && MacAddr::BROADCAST.is_broadcast());
        assert!(!MacAddr::BROADCAST.is_unicast());
        assert!(!MacAddr::UNSPECIFIED.is_unicast());
        let group = MacAddr::ipv4_multicast(Ipv4Addr::new(224, 0, 0, 251));
        assert_eq!(group.to_string(), "01:00:5e:00:00:fb");
        assert!(group.is_multicast() && !group.is_broadcast());
        // RFC 1112: only 23 bits of the group survive.
        assert_eq!(
            MacAddr::ipv4_multicast(Ipv4Addr::new(239, 255, 1, 2)),
            MacAddr::ipv4_multicast(Ipv4Addr::new(224, 127, 1, 2))
        );
    }

    #[test]
    fn derived_address_is_stable_local_unicast_and_input_dependent() {
        let ip = Ipv4Addr::new(10, 77, 0, 2);
        let mac = MacAddr::derive("tap0", ip);
        assert_eq!(mac, MacAddr::derive("tap0", ip));
        assert!(mac.is_locally_administered() && mac.is_unicast());
        assert_ne!(mac, MacAddr::derive("tap1", ip));
        assert_ne!(mac, MacAddr::derive("tap0", Ipv4Addr::new(10, 77, 0, 3)));
        // The same for every run, release and host: a change here breaks peers' caches.
        assert_eq!(mac.to_string(), "8e:a2:17:65:50:0f");
        for n in 0..=255u8 {
            let other = MacAddr::derive("tap0", Ipv4Addr::new(10, 0, 0, n));
            assert!(
                other.is_locally_administered() && other.is_unicast(),
                "{other}"
            );
        }
    }
}
