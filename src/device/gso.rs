//! Software segmentation: cuts a TCP super-segment (what the kernel hands a TUN with offloads
//! on) into the wire-sized segments it stands for, as GSO would on a real link.
//!
//! The fault injector needs this: `--impair loss=20%` must drop one packet in five, not one
//! burst of ~45 packets in five, and a corrupted "packet" must be one bit in ~1500 bytes, not
//! one bit in 64 KiB.

use std::net::Ipv4Addr;

use crate::wire::{checksum, tcp};

/// TCP header flags that belong to one end of a super-segment only (RFC 9293 §3.1): CWR goes
/// with the first piece, PSH and FIN with the last.
const CWR: u8 = 0x80;
const PSH: u8 = 0x08;
const FIN: u8 = 0x01;

/// Hands `out` each wire segment of `datagram` when its TCP payload is cut into pieces of at
/// most `mss` bytes: IPv4 total length, identification and header checksum, TCP sequence
/// number, flags and checksum all as the sender's stack would have written them. Anything that
/// is not an unfragmented IPv4 TCP segment with more than `mss` payload bytes is handed on
/// whole. The super-segment's own TCP checksum is not read: each piece gets a fresh one.
pub fn split_tcp(datagram: &[u8], mss: usize, mut out: impl FnMut(&[u8])) {
    let Some((ip_len, tcp_len, total)) = tcp_layout(datagram) else {
        out(datagram);
        return;
    };
    let headers = ip_len + tcp_len;
    let payload = &datagram[headers..total];
    if mss == 0 || payload.len() <= mss {
        out(datagram);
        return;
    }
    let src = Ipv4Addr::from(<[u8; 4]>::try_from(&datagram[12..16]).unwrap_or_default());
    let dst = Ipv4Addr::from(<[u8; 4]>::try_from(&datagram[16..20]).unwrap_or_default());
    let id = u16::from_be_bytes([datagram[4], datagram[5]]);
    let seq = u32::from_be_bytes(
        datagram[ip_len + 4..ip_len + 8]
            .try_into()
            .unwrap_or_default(),
    );
    let flags = datagram[ip_len + 13];
    let pieces = payload.len().div_ceil(mss);
    let mut piece = Vec::with_capacity(headers + mss);
    for (i, chunk) in payload.chunks(mss).enumerate() {
        piece.clear();
        piece.extend_from_slice(&datagram[..headers]);
        piece.extend_from_slice(chunk);
        let len = piece.len() as u16;
        piece[2..4].copy_from_slice(&len.to_be_bytes());
        piece[4..6].copy_from_slice(&id.wrapping_add(i as u16).to_be_bytes());
        piece[10..12].copy_from_slice(&[0, 0]);
        let header_sum = checksum::checksum(&piece[..ip_len]);
        piece[10..12].copy_from_slice(&header_sum.to_be_bytes());
        let piece_seq = seq.wrapping_add((i * mss) as u32);
        piece[ip_len + 4..ip_len + 8].copy_from_slice(&piece_seq.to_be_bytes());
        let mut piece_flags = flags;
        if i > 0 {
            piece_flags &= !CWR;
        }
        if i + 1 < pieces {
            piece_flags &= !(PSH | FIN);
        }
        piece[ip_len + 13] = piece_flags;
        piece[ip_len + 16..ip_len + 18].copy_from_slice(&[0, 0]);
        tcp::fill_checksum(src, dst, &mut piece[ip_len..]);
        out(&piece);
    }
}

/// Completes the TCP checksum of an IPv4 TCP datagram (anything else is left as it is).
pub fn fill_tcp_checksum(datagram: &mut [u8]) {
    let Some((ip_len, _, total)) = tcp_layout(datagram) else {
        return;
    };
    let src = Ipv4Addr::from(<[u8; 4]>::try_from(&datagram[12..16]).unwrap_or_default());
    let dst = Ipv4Addr::from(<[u8; 4]>::try_from(&datagram[16..20]).unwrap_or_default());
    datagram[ip_len + 16..ip_len + 18].copy_from_slice(&[0, 0]);
    tcp::fill_checksum(src, dst, &mut datagram[ip_len..total]);
}

/// IPv4 header length, TCP header length and IPv4 total length of an unfragmented IPv4 TCP
/// segment whose headers are all present; `None` for anything else.
fn tcp_layout(datagram: &[u8]) -> Option<(usize, usize, usize)> {
    let first = *datagram.first()?;
    let ip_len = usize::from(first & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*datagram.get(2)?, *datagram.get(3)?]));
    let fragment = u16::from_be_bytes([*datagram.get(6)?, *datagram.get(7)?]) & 0x3fff;
    if first >> 4 != 4
        || ip_len < 20
        || datagram.get(9) != Some(&tcp::PROTOCOL)
        || fragment != 0
        || total > datagram.len()
    {
        return None;
    }
    let tcp_len = usize::from(datagram.get(ip_len + 12)? >> 4) * 4;
    (tcp_len >= 20 && ip_len + tcp_len <= total).then_some((ip_len, tcp_len, total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tcp::{Control, TcpRepr};

    /// A 20-byte IPv4 header + 32-byte TCP header (timestamps) + `payload`, flags PSH|FIN|CWR.
    fn super_segment(payload: &[u8]) -> Vec<u8> {
        let total = (20 + 32 + payload.len()) as u16;
        let mut d = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0];
        d[2..4].copy_from_slice(&total.to_be_bytes());
        d.extend_from_slice(&[10, 77, 1, 2, 10, 77, 0, 2]);
        let sum = checksum::checksum(&d);
        d[10..12].copy_from_slice(&sum.to_be_bytes());
        // Ports 8081 -> 40000, seq 0xffff_fff0 (wraps), ack 7, offset 8 words, CWR|ACK|PSH|FIN.
        d.extend_from_slice(&[0x1f, 0x91, 0x9c, 0x40, 0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 7]);
        d.extend_from_slice(&[0x80, CWR | 0x10 | PSH | FIN, 0x01, 0x00, 0, 0, 0, 0]);
        d.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 5]);
        d.extend_from_slice(payload);
        tcp::fill_checksum(
            Ipv4Addr::new(10, 77, 1, 2),
            Ipv4Addr::new(10, 77, 0, 2),
            &mut d[20..],
        );
        d
    }

    #[test]
    fn a_super_segment_becomes_the_wire_segments_it_stands_for() {
        let payload: Vec<u8> = (0..3500u32).map(|i| i as u8).collect();
        let whole = super_segment(&payload);
        let mut pieces = Vec::new();
        split_tcp(&whole, 1448, |p| pieces.push(p.to_vec()));
        assert_eq!(pieces.len(), 3);
        let mut joined = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            assert_eq!(checksum::checksum(&piece[..20]), 0, "IPv4 header checksum");
            assert_eq!(
                usize::from(u16::from_be_bytes([piece[2], piece[3]])),
                piece.len()
            );
            assert_eq!(u16::from_be_bytes([piece[4], piece[5]]), 0x1234 + i as u16);
            let seg = TcpRepr::parse(
                Ipv4Addr::new(10, 77, 1, 2),
                Ipv4Addr::new(10, 77, 0, 2),
                &piece[20..],
            )
            .expect("a valid TCP segment with a correct checksum");
            assert_eq!(seg.seq.0, 0xffff_fff0u32.wrapping_add(i as u32 * 1448));
            assert_eq!(seg.options.timestamps.map(|t| t.value), Some(9));
            let last = i == 2;
            assert_eq!(seg.control == Control::Fin, last, "FIN only on the last");
            assert_eq!(piece[33] & PSH != 0, last, "PSH only on the last");
            assert_eq!(piece[33] & CWR != 0, i == 0, "CWR only on the first");
            joined.extend_from_slice(seg.payload);
        }
        assert_eq!(pieces[2].len(), 20 + 32 + 3500 - 2 * 1448);
        assert_eq!(joined, payload);
    }

    #[test]
    fn anything_else_passes_whole() {
        let small = super_segment(&[1; 1000]);
        let mut n = 0;
        split_tcp(&small, 1448, |p| {
            assert_eq!(p, &small[..]);
            n += 1;
        });
        let mut fragment = super_segment(&[1; 5000]);
        fragment[6] |= 0x20; // more fragments
        split_tcp(&fragment, 1448, |p| {
            assert_eq!(p, &fragment[..]);
            n += 1;
        });
        let junk = [0x45u8, 0, 0];
        split_tcp(&junk, 1448, |p| {
            assert_eq!(p, &junk[..]);
            n += 1;
        });
        assert_eq!(n, 3);
    }
}
