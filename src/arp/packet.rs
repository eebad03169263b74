//! The ARP packet (RFC 826) for Ethernet and IPv4: 28 bytes, parsed and emitted.
//!
//! etherparse 0.16 knows ARP's numbers (`ArpHardwareId`, `EtherType`) but has no ARP packet
//! type (that arrived in 0.17), so the fixed 28-byte layout is written out here, with the
//! numbers taken from etherparse.

use std::net::Ipv4Addr;

use etherparse::{ArpHardwareId, EtherType};
use thiserror::Error;

use crate::ethernet::MacAddr;

/// Length of an Ethernet/IPv4 ARP packet; anything after it in a frame is link padding.
pub const PACKET_LEN: usize = 28;
const HARDWARE_LEN: u8 = 6;
const PROTOCOL_LEN: u8 = 4;
const OP_REQUEST: u16 = 1;
const OP_REPLY: u16 = 2;

/// The ARP opcode (RFC 826 `ar$op`); RARP and InARP opcodes are not for a host like us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// "Who has `target_ip`? Tell `sender_ip`."
    Request,
    /// "`sender_ip` is at `sender_mac`."
    Reply,
}

/// An ARP packet mapping IPv4 to Ethernet addresses; `parse` and `emit` are exact inverses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpPacket {
    /// Request or reply.
    pub operation: Operation,
    /// `ar$sha`: the sender's MAC.
    pub sender_mac: MacAddr,
    /// `ar$spa`: the sender's IPv4 address (0.0.0.0 in an RFC 5227 probe).
    pub sender_ip: Ipv4Addr,
    /// `ar$tha`: the target's MAC; zeros in a request, whose point is to learn it.
    pub target_mac: MacAddr,
    /// `ar$tpa`: the address being asked about (request) or the requester's (reply).
    pub target_ip: Ipv4Addr,
}

/// Why bytes are not an ARP packet we can use; each is counted apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum ArpParseError {
    /// Fewer than 28 bytes.
    #[error("shorter than an Ethernet/IPv4 ARP packet")]
    Truncated,
    /// The hardware type is not Ethernet, or its address length is not 6.
    #[error("ARP for a hardware type other than Ethernet")]
    UnsupportedHardware,
    /// The protocol type is not IPv4, or its address length is not 4.
    #[error("ARP for a protocol other than IPv4")]
    UnsupportedProtocol,
    /// An opcode other than request or reply (RARP, InARP, ...).
    #[error("ARP opcode other than request or reply")]
    UnknownOperation,
}

impl ArpPacket {
    /// Parses an ARP packet in RFC 826's order (hardware, then protocol, then opcode); bytes
    /// after the first 28 are link padding and ignored.
    pub fn parse(bytes: &[u8]) -> Result<ArpPacket, ArpParseError> {
        let b: &[u8; PACKET_LEN] = bytes.first_chunk().ok_or(ArpParseError::Truncated)?;
        let hardware = ArpHardwareId(u16::from_be_bytes([b[0], b[1]]));
        if hardware != ArpHardwareId::ETHER || b[4] != HARDWARE_LEN {
            return Err(ArpParseError::UnsupportedHardware);
        }
        let protocol = EtherType(u16::from_be_bytes([b[2], b[3]]));
        if protocol != EtherType::IPV4 || b[5] != PROTOCOL_LEN {
            return Err(ArpParseError::UnsupportedProtocol);
        }
        let operation = match u16::from_be_bytes([b[6], b[7]]) {
            OP_REQUEST => Operation::Request,
            OP_REPLY => Operation::Reply,
            _ => return Err(ArpParseError::UnknownOperation),
        };
        Ok(ArpPacket {
            operation,
            sender_mac: MacAddr([b[8], b[9], b[10], b[11], b[12], b[13]]),
            sender_ip: Ipv4Addr::new(b[14], b[15], b[16], b[17]),
            target_mac: MacAddr([b[18], b[19], b[20], b[21], b[22], b[23]]),
            target_ip: Ipv4Addr::new(b[24], b[25], b[26], b[27]),
        })
    }

    /// The 28 bytes of this packet.
    pub fn to_bytes(&self) -> [u8; PACKET_LEN] {
        let op = match self.operation {
            Operation::Request => OP_REQUEST,
            Operation::Reply => OP_REPLY,
        };
        let [h0, h1] = ArpHardwareId::ETHER.0.to_be_bytes();
        let [p0, p1] = EtherType::IPV4.0.to_be_bytes();
        let [o0, o1] = op.to_be_bytes();
        let [s0, s1, s2, s3, s4, s5] = self.sender_mac.0;
        let [si0, si1, si2, si3] = self.sender_ip.octets();
        let [t0, t1, t2, t3, t4, t5] = self.target_mac.0;
        let [ti0, ti1, ti2, ti3] = self.target_ip.octets();
        [
            h0,
            h1,
            p0,
            p1,
            HARDWARE_LEN,
            PROTOCOL_LEN,
            o0,
            o1,
            s0,
            s1,
            s2,
            s3,
            s4,
            s5,
            si0,
            si1,
            si2,
            si3,
            t0,
            t1,
            t2,
            t3,
            t4,
            t5,
            ti0,
            ti1,
            ti2,
            ti3,
        ]
    }

    /// Whether this announces the sender's own mapping (RFC 5227 §2.3 and RFC 5944
    /// "gratuitous ARP"): sender and target address are the same.
    pub fn is_announcement(&self) -> bool {
        self.sender_ip == self.target_ip
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Who has 10.77.0.2? Tell 10.77.0.1 (sender 6a:3d:95:1c:40:07), as Linux sends it.
    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x6a, 0x3d, 0x95, 0x1c, 0x40, 0x07, 0x0a,
        0x4d, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x4d, 0x00, 0x02,
    ];

    fn request() -> ArpPacket {
        ArpPacket {
            operation: Operation::Request,
            sender_mac: MacAddr([0x6a, 0x3d, 0x95, 0x1c, 0x40, 0x07]),
            sender_ip: Ipv4Addr::new(10, 77, 0, 1),
            target_mac: MacAddr::UNSPECIFIED,
            target_ip: Ipv4Addr::new(10, 77, 0, 2),
        }
    }

    #[test]
    fn parse_and_emit_are_inverses() {
        assert_eq!(ArpPacket::parse(&REQUEST), Ok(request()));
        assert_eq!(request().to_bytes(), REQUEST);
        let reply = ArpPacket {
            operation: Operation::Reply,
            ..request()
        };
        let bytes = reply.to_bytes();
        assert_eq!(&bytes[6..8], &[0, 2]);
        assert_eq!(ArpPacket::parse(&bytes), Ok(reply));
    }

    #[test]
    fn padding_is_ignored() {
        let mut padded = REQUEST.to_vec();
        padded.resize(46, 0);
        assert_eq!(ArpPacket::parse(&padded), Ok(request()));
    }

    #[test]
    fn refusals_in_rfc_826_order() {
        assert_eq!(
            ArpPacket::parse(&REQUEST[..27]),
            Err(ArpParseError::Truncated)
        );
        let edit = |at: usize, value: u8| {
            let mut bytes = REQUEST;
            bytes[at] = value;
            ArpPacket::parse(&bytes)
        };
        assert_eq!(edit(1, 6), Err(ArpParseError::UnsupportedHardware));
        assert_eq!(edit(4, 8), Err(ArpParseError::UnsupportedHardware));
        assert_eq!(edit(2, 0x86), Err(ArpParseError::UnsupportedProtocol));
        assert_eq!(edit(5, 16), Err(ArpParseError::UnsupportedProtocol));
        assert_eq!(edit(7, 3), Err(ArpParseError::UnknownOperation));
        assert_eq!(edit(6, 1), Err(ArpParseError::UnknownOperation));
        // Hardware is judged before protocol, protocol before opcode.
        let mut all_wrong = REQUEST;
        all_wrong[1] = 6;
        all_wrong[2] = 0x86;
        all_wrong[7] = 9;
        assert_eq!(
            ArpPacket::parse(&all_wrong),
            Err(ArpParseError::UnsupportedHardware)
        );
    }

    #[test]
    fn announcements() {
        assert!(!request().is_announcement());
        let announce = ArpPacket {
            target_ip: Ipv4Addr::new(10, 77, 0, 1),
            ..request()
        };
        assert!(announce.is_announcement());
    }
}
