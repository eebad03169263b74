//! Builders for datagrams that production code never sends, for tests and fuzz harnesses.
//!
//! The stack only originates one kind of IPv4 header (20 bytes, DF set, TTL 64: see
//! [`crate::ipv4::Ipv4Layer::write_header`]); tests must also craft what peers and attackers send:
//! fragments, options, odd TTLs and identifications, and headers edited after the fact. This is
//! the one builder for those, shared by the unit tests in `src/`, the integration tests in
//! `tests/` and the `fuzz/` crate. It is compiled for the crate's own tests and, for everyone
//! else, only with the `testing` feature; the TCP segment inside is written by
//! [`crate::wire::TcpRepr::emit`], never by hand.

use std::net::Ipv4Addr;

use crate::wire::checksum;

/// The header fields of a datagram a test sends; everything else is derived.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Fields<'a> {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// IP protocol number of the payload.
    pub protocol: u8,
    /// Time to live.
    pub ttl: u8,
    /// Identification, which groups fragments.
    pub identification: u16,
    /// The don't-fragment flag.
    pub dont_fragment: bool,
    /// The more-fragments flag.
    pub more_fragments: bool,
    /// Fragment offset in 8-byte units (13 bits are kept).
    pub offset_units: u16,
    /// IP options, padded with zeros (end of options) to a multiple of 4 and cut at 40 bytes.
    pub options: &'a [u8],
}

impl<'a> Ipv4Fields<'a> {
    /// An ordinary unfragmented datagram from `src` to `dst`: TTL 64, identification 0, DF set,
    /// no options.
    pub fn plain(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8) -> Self {
        Ipv4Fields {
            src,
            dst,
            protocol,
            ttl: 64,
            identification: 0,
            dont_fragment: true,
            more_fragments: false,
            offset_units: 0,
            options: &[],
        }
    }

    /// Sets the flags and fragment offset from the 16-bit field as it appears on the wire (DF
    /// 0x4000, MF 0x2000, offset in the low 13 bits; the reserved bit is ignored).
    pub fn with_flags_and_offset(self, flags_and_offset: u16) -> Self {
        Ipv4Fields {
            dont_fragment: flags_and_offset & 0x4000 != 0,
            more_fragments: flags_and_offset & 0x2000 != 0,
            offset_units: flags_and_offset & 0x1fff,
            ..self
        }
    }
}

/// A datagram with a correct header checksum carrying `payload`; a payload too long for the
/// 16-bit total length is cut to fit.
pub fn ipv4_datagram(fields: &Ipv4Fields<'_>, payload: &[u8]) -> Vec<u8> {
    let options = &fields.options[..fields.options.len().min(40)];
    let header_len = 20 + options.len().div_ceil(4) * 4;
    let total = (header_len + payload.len()).min(usize::from(u16::MAX));
    let mut out = vec![0u8; header_len];
    out[0] = 0x40 | (header_len / 4) as u8;
    out[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    out[4..6].copy_from_slice(&fields.identification.to_be_bytes());
    let mut flags_offset = fields.offset_units & 0x1fff;
    if fields.dont_fragment {
        flags_offset |= 0x4000;
    }
    if fields.more_fragments {
        flags_offset |= 0x2000;
    }
    out[6..8].copy_from_slice(&flags_offset.to_be_bytes());
    out[8] = fields.ttl;
    out[9] = fields.protocol;
    out[12..16].copy_from_slice(&fields.src.octets());
    out[16..20].copy_from_slice(&fields.dst.octets());
    out[20..20 + options.len()].copy_from_slice(options);
    out.extend_from_slice(&payload[..total - header_len]);
    fix_ipv4_checksum(&mut out);
    out
}

/// Recomputes the header checksum of a datagram in place (after a test edited the header), if
/// its IHL fits in the bytes.
pub fn fix_ipv4_checksum(datagram: &mut [u8]) {
    let Some(&first) = datagram.first() else {
        return;
    };
    let header_len = usize::from(first & 0x0f) * 4;
    if header_len < 20 || header_len > datagram.len() {
        return;
    }
    datagram[10] = 0;
    datagram[11] = 0;
    let sum = checksum::checksum(&datagram[..header_len]);
    datagram[10..12].copy_from_slice(&sum.to_be_bytes());
}
