//! The IPv4 header (RFC 791 §3.1): validating received headers and writing outbound ones.

use std::net::Ipv4Addr;

use super::DropReason;
use crate::wire::checksum;

/// Length of a header without options; the only kind this host sends.
pub const HEADER_LEN: usize = 20;
/// Longest possible datagram: the total length field is 16 bits.
pub(crate) const MAX_DATAGRAM_LEN: usize = 65535;
/// Longest header: IHL is 4 bits of 32-bit words.
pub(crate) const MAX_HEADER_LEN: usize = 60;
/// IP protocol number of ICMP.
pub const PROTOCOL_ICMP: u8 = 1;
/// IP protocol number of TCP.
pub const PROTOCOL_TCP: u8 = 6;

const VERSION_4: u8 = 4;
const VERSION_6: u8 = 6;
const FLAG_DONT_FRAGMENT: u16 = 0x4000;
const FLAG_MORE_FRAGMENTS: u16 = 0x2000;
const FRAGMENT_OFFSET_MASK: u16 = 0x1fff;
/// TTL of datagrams we originate (Linux's default, as RFC 1700 recommends).
const DEFAULT_TTL: u8 = 64;

/// The fields of a structurally valid received header that the layer acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReceivedHeader {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub identification: u16,
    pub more_fragments: bool,
    /// Offset of this fragment's payload in the original datagram, in bytes.
    pub fragment_offset: usize,
    pub header_len: usize,
    pub total_len: usize,
}

impl ReceivedHeader {
    /// Whether this datagram is only part of one (RFC 791: MF set or a non-zero offset).
    pub fn is_fragment(&self) -> bool {
        self.more_fragments || self.fragment_offset != 0
    }

    /// The header bytes, options included.
    pub fn header<'a>(&self, datagram: &'a [u8]) -> &'a [u8] {
        datagram.get(..self.header_len).unwrap_or_default()
    }

    /// The payload: after the header, up to the total length (link padding excluded).
    pub fn payload<'a>(&self, datagram: &'a [u8]) -> &'a [u8] {
        datagram
            .get(self.header_len..self.total_len)
            .unwrap_or_default()
    }
}

/// Checks the structure of a received header in RFC 791 order and extracts its fields.
///
/// Addresses and protocol are judged by the caller, who knows the local address.
pub(crate) fn parse(datagram: &[u8]) -> Result<ReceivedHeader, DropReason> {
    let fixed: &[u8; HEADER_LEN] = datagram.first_chunk().ok_or(DropReason::Truncated)?;
    match fixed[0] >> 4 {
        VERSION_4 => {}
        VERSION_6 => return Err(DropReason::Ipv6),
        _ => return Err(DropReason::BadVersion),
    }
    let header_len = usize::from(fixed[0] & 0x0f) * 4;
    if header_len < HEADER_LEN || header_len > datagram.len() {
        return Err(DropReason::BadHeaderLength);
    }
    let total_len = usize::from(u16::from_be_bytes([fixed[2], fixed[3]]));
    if total_len < header_len || total_len > datagram.len() {
        return Err(DropReason::BadTotalLength);
    }
    let header = datagram
        .get(..header_len)
        .ok_or(DropReason::BadHeaderLength)?;
    if checksum::checksum(header) != 0 {
        return Err(DropReason::BadChecksum);
    }
    let flags_and_offset = u16::from_be_bytes([fixed[6], fixed[7]]);
    Ok(ReceivedHeader {
        src: Ipv4Addr::new(fixed[12], fixed[13], fixed[14], fixed[15]),
        dst: Ipv4Addr::new(fixed[16], fixed[17], fixed[18], fixed[19]),
        protocol: fixed[9],
        identification: u16::from_be_bytes([fixed[4], fixed[5]]),
        more_fragments: flags_and_offset & FLAG_MORE_FRAGMENTS != 0,
        fragment_offset: usize::from(flags_and_offset & FRAGMENT_OFFSET_MASK) * 8,
        header_len,
        total_len,
    })
}

/// Whether `src` cannot be the address of a single remote host (RFC 1122 §3.2.1.3), so a
/// datagram from it is spoofed or misrouted and must not be answered.
pub(crate) fn is_martian_source(src: Ipv4Addr, local: Ipv4Addr) -> bool {
    src.octets()[0] == 0
        || src.is_broadcast()
        || src.is_multicast()
        || src.is_loopback()
        || src == local
}

/// The fields of a header we originate; everything else is fixed by `write`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutboundHeader {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub identification: u16,
    /// Header plus payload; the caller has checked it fits the 16-bit field.
    pub total_len: u16,
}

/// Writes a 20-byte header with DF set (we do path MTU discovery, RFC 1191) and its checksum.
pub(crate) fn write(out: &mut [u8; HEADER_LEN], fields: &OutboundHeader) {
    let [total_hi, total_lo] = fields.total_len.to_be_bytes();
    let [id_hi, id_lo] = fields.identification.to_be_bytes();
    let [flags_hi, flags_lo] = FLAG_DONT_FRAGMENT.to_be_bytes();
    let [s0, s1, s2, s3] = fields.src.octets();
    let [d0, d1, d2, d3] = fields.dst.octets();
    *out = [
        (VERSION_4 << 4) | 5,
        0,
        total_hi,
        total_lo,
        id_hi,
        id_lo,
        flags_hi,
        flags_lo,
        DEFAULT_TTL,
        fields.protocol,
        0,
        0,
        s0,
        s1,
        s2,
        s3,
        d0,
        d1,
        d2,
        d3,
    ];
    let [sum_hi, sum_lo] = checksum::checksum(out).to_be_bytes();
    out[10] = sum_hi;
    out[11] = sum_lo;
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);

    #[test]
    fn written_header_parses_back_and_satisfies_etherparse() {
        let mut out = [0u8; HEADER_LEN];
        write(
            &mut out,
            &OutboundHeader {
                src: LOCAL,
                dst: Ipv4Addr::new(10, 77, 1, 2),
                protocol: PROTOCOL_TCP,
                identification: 0xbeef,
                total_len: 40,
            },
        );
        assert_eq!(checksum::checksum(&out), 0);
        let slice = etherparse::Ipv4HeaderSlice::from_slice(&out).expect("etherparse accepts it");
        assert!(slice.dont_fragment());
        assert!(!slice.more_fragments());
        assert_eq!(slice.ttl(), 64);
        assert_eq!(slice.identification(), 0xbeef);

        let mut datagram = out.to_vec();
        datagram.resize(40, 0);
        let parsed = parse(&datagram).expect("our own header is valid");
        assert_eq!(parsed.src, LOCAL);
        assert_eq!(parsed.dst, Ipv4Addr::new(10, 77, 1, 2));
        assert_eq!(parsed.protocol, PROTOCOL_TCP);
        assert!(!parsed.is_fragment());
        assert_eq!(parsed.payload(&datagram).len(), 20);
    }

    #[test]
    fn martian_sources() {
        for martian in [
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::new(0, 1, 2, 3),
            Ipv4Addr::BROADCAST,
            Ipv4Addr::new(224, 0, 0, 1),
            Ipv4Addr::new(239, 255, 255, 250),
            Ipv4Addr::LOCALHOST,
            Ipv4Addr::new(127, 8, 8, 8),
            LOCAL,
        ] {
            assert!(is_martian_source(martian, LOCAL), "{martian}");
        }
        for fine in [Ipv4Addr::new(10, 77, 1, 2), Ipv4Addr::new(93, 184, 215, 14)] {
            assert!(!is_martian_source(fine, LOCAL), "{fine}");
        }
    }
}
