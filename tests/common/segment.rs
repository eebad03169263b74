//! The one TCP segment builder of the integration tests. Segments are written by production code
//! (`TcpRepr::emit`) and datagrams by the library's test builder (`tunstack::testing`), so no test
//! carries a hand-built copy of either header.

use std::net::Ipv4Addr;

use tunstack::ipv4::PROTOCOL_TCP;
use tunstack::testing::{ipv4_datagram, Ipv4Fields};
use tunstack::wire::TcpRepr;

/// `repr` as bytes on the wire, sent from `src` to `dst` (checksum included).
pub fn segment(src: Ipv4Addr, dst: Ipv4Addr, repr: &TcpRepr<'_>) -> Vec<u8> {
    let mut bytes = vec![0u8; repr.header_len() + repr.payload.len()];
    let len = repr.emit(src, dst, &mut bytes);
    bytes.truncate(len);
    bytes
}

/// `repr` in a plain IPv4 datagram from `src` to `dst`: TTL 64, DF set, no options.
pub fn tcp_datagram(src: Ipv4Addr, dst: Ipv4Addr, repr: &TcpRepr<'_>) -> Vec<u8> {
    ipv4_datagram(
        &Ipv4Fields::plain(src, dst, PROTOCOL_TCP),
        &segment(src, dst, repr),
    )
}
