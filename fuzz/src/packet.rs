//! Building datagrams for the stack under test, and checking the ones it sends with an
//! independent parser (etherparse), so a bug in tunstack's own wire code cannot hide itself.

use std::net::Ipv4Addr;

use etherparse::{Ipv4HeaderSlice, TcpSlice};
use tunstack::wire::checksum;

/// IP protocol number of ICMP.
pub const ICMP: u8 = 1;
/// IP protocol number of TCP.
pub const TCP: u8 = 6;

// The IPv4 builder is the library's own (the `testing` feature), shared with tunstack's tests.
pub use tunstack::testing::{fix_ipv4_checksum, ipv4_datagram, Ipv4Fields};

/// Recomputes the TCP checksum of `segment` (sent from `src` to `dst`) in place.
pub fn fix_tcp_checksum(src: Ipv4Addr, dst: Ipv4Addr, segment: &mut [u8]) {
    if segment.len() < 20 || segment.len() > usize::from(u16::MAX) {
        return;
    }
    segment[16] = 0;
    segment[17] = 0;
    let pseudo = checksum::pseudo_header(src, dst, TCP, segment.len() as u16);
    let sum = checksum::finish(checksum::accumulate(pseudo, segment));
    segment[16..18].copy_from_slice(&sum.to_be_bytes());
}

/// Recomputes the ICMP checksum of `message` in place.
pub fn fix_icmp_checksum(message: &mut [u8]) {
    if message.len() < 4 {
        return;
    }
    message[2] = 0;
    message[3] = 0;
    let sum = checksum::checksum(message);
    message[2..4].copy_from_slice(&sum.to_be_bytes());
}

/// Fixes the checksum of the transport payload of an unfragmented datagram built by
/// [`ipv4_datagram`], for TCP or ICMP.
pub fn fix_inner_checksum(datagram: &mut [u8]) {
    if datagram.len() < 20 {
        return;
    }
    let header_len = usize::from(datagram[0] & 0x0f) * 4;
    if header_len < 20 || header_len > datagram.len() {
        return;
    }
    let src = Ipv4Addr::new(datagram[12], datagram[13], datagram[14], datagram[15]);
    let dst = Ipv4Addr::new(datagram[16], datagram[17], datagram[18], datagram[19]);
    let protocol = datagram[9];
    let payload = &mut datagram[header_len..];
    match protocol {
        TCP => fix_tcp_checksum(src, dst, payload),
        ICMP => fix_icmp_checksum(payload),
        _ => {}
    }
}

/// What a transmitted datagram carried, once it passed [`check_transmitted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent<'a> {
    Tcp { dst: Ipv4Addr, segment: &'a [u8] },
    Icmp { dst: Ipv4Addr, message: &'a [u8] },
}

/// Checks a datagram the stack sent from `local`: a well-formed unfragmented IPv4 datagram no
/// longer than `mtu`, with a correct header checksum, and a TCP segment or ICMP message whose own
/// checksum verifies. Panics (so the fuzzer reports it) on any violation.
pub fn check_transmitted(datagram: &[u8], local: Ipv4Addr, mtu: usize) -> Sent<'_> {
    assert!(
        datagram.len() <= mtu,
        "sent {} bytes on a {mtu}-byte MTU",
        datagram.len()
    );
    let header = Ipv4HeaderSlice::from_slice(datagram).expect("sent an unparsable IPv4 header");
    assert_eq!(
        header.to_header().calc_header_checksum(),
        header.header_checksum(),
        "sent a bad IPv4 header checksum"
    );
    assert_eq!(usize::from(header.total_len()), datagram.len());
    assert_eq!(header.source_addr(), local, "sent from a foreign address");
    assert!(!header.more_fragments() && header.fragments_offset().value() == 0);
    let dst = header.destination_addr();
    assert_ne!(dst, local, "sent to ourselves");
    let payload = &datagram[header.slice().len()..];
    match header.protocol().0 {
        TCP => {
            let tcp = TcpSlice::from_slice(payload).expect("sent an unparsable TCP header");
            let expected = tcp
                .calc_checksum_ipv4(local.octets(), dst.octets())
                .expect("segment fits the length field");
            assert_eq!(tcp.checksum(), expected, "sent a bad TCP checksum");
            let parsed = tunstack::wire::TcpRepr::parse(local, dst, payload);
            assert!(
                parsed.is_ok(),
                "our own parser refuses what we sent: {parsed:?}"
            );
            Sent::Tcp {
                dst,
                segment: payload,
            }
        }
        ICMP => {
            assert_eq!(checksum::checksum(payload), 0, "sent a bad ICMP checksum");
            assert!(payload.len() >= 8, "sent a truncated ICMP message");
            assert!(
                matches!(payload[0], 0 | 11),
                "sent ICMP type {} (only echo replies and time exceeded are expected)",
                payload[0]
            );
            Sent::Icmp {
                dst,
                message: payload,
            }
        }
        other => panic!("sent protocol {other}"),
    }
}
