//! Transmit segmentation offload (`TcpConfig::max_burst_segments`): a connection hands out
//! several full segments of new data as one super-segment only when cwnd, the peer's window
//! and the send buffer allow them all now, the super-segment is exactly those segments back to
//! back, and loss detection and retransmission still work segment by segment.
//!
//! Fixtures and conventions: `tests/common/conn.rs` (peer MSS 1000, initial cwnd 4000).

mod common;

use std::time::Instant;

use tunstack::device::gso::split_tcp;
use tunstack::ipv4::PROTOCOL_TCP;
use tunstack::tcp::{Connection, TcpConfig};
use tunstack::testing::{ipv4_datagram, Ipv4Fields};
use tunstack::wire::tcp::{fill_checksum, fill_partial_checksum};
use tunstack::wire::{Control, TcpRepr};

use common::conn::*;

fn tso_config() -> TcpConfig {
    TcpConfig {
        max_burst_segments: 64,
        bursts_per_window: 1,
        ..config()
    }
}

/// TSO with the default share of the window per super-segment (`bursts_per_window`, 4).
fn shared_config() -> TcpConfig {
    let config = TcpConfig {
        max_burst_segments: 64,
        ..config()
    };
    assert_eq!(config.bursts_per_window, 4);
    config
}

/// Every segment the connection has to send now, with the segment size it comes with, into
/// a buffer that holds a whole 64 KiB super-segment.
fn transmit_tso(conn: &mut Connection, now: Instant) -> Vec<(Vec<u8>, Option<u16>)> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65535 - 20];
    while let Some(len) = conn.poll_transmit(now, &mut buf) {
        out.push((buf[..len].to_vec(), conn.segment_size()));
        assert!(out.len() < 1000, "poll_transmit never returns None");
    }
    out
}

/// A segment the connection sent, with the segment size it came with, ready to parse: a
/// super-segment must carry only the pseudo-header sum in its checksum field (offload completes
/// it per piece), and is completed here as the device would.
fn completed(bytes: &[u8], size: Option<u16>) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    if size.is_some() {
        let mut partial = bytes.clone();
        fill_partial_checksum(LOCAL_IP, REMOTE_IP, &mut partial);
        assert_eq!(
            bytes[16..18],
            partial[16..18],
            "a super-segment's partial checksum"
        );
        bytes[16..18].fill(0);
        fill_checksum(LOCAL_IP, REMOTE_IP, &mut bytes);
    }
    bytes
}

/// (seq offset from SND, payload length, control, segment size) of each segment.
fn shape(sent: &[(Vec<u8>, Option<u16>)]) -> Vec<(usize, usize, Control, Option<u16>)> {
    sent.iter()
        .map(|(bytes, size)| {
            let bytes = completed(bytes, *size);
            let seg = parse_ours(&bytes);
            (
                seg.seq.distance_from(SND),
                seg.payload.len(),
                seg.control,
                *size,
            )
        })
        .collect()
}

/// Cuts a super-segment as the kernel's TSO would (behind a plain 20-byte IPv4 header from the
/// library's test builder), so the pieces can be compared with what a connection without TSO
/// sends.
fn cut(bytes: &[u8], size: u16) -> Vec<Vec<u8>> {
    let fields = Ipv4Fields::plain(LOCAL_IP, REMOTE_IP, PROTOCOL_TCP);
    let datagram = ipv4_datagram(&fields, bytes);
    let mut pieces = Vec::new();
    split_tcp(&datagram, usize::from(size), |p| {
        pieces.push(p[20..].to_vec())
    });
    pieces
}

#[test]
fn off_by_default_every_segment_goes_alone() {
    assert_eq!(TcpConfig::default().max_burst_segments, 1);
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    conn.send(&stream(6000)).unwrap();
    let sent = transmit_tso(&mut conn, t0 + ms(200));
    assert_eq!(
        shape(&sent),
        [
            (0, 1000, Control::None, None),
            (1000, 1000, Control::None, None),
            (2000, 1000, Control::None, None),
            (3000, 1000, Control::None, None),
        ]
    );
}

#[test]
fn a_super_segment_is_exactly_the_segments_cwnd_allows_back_to_back() {
    let t0 = Instant::now();
    let data = stream(6000);
    let mut plain = open(t0, config(), bare_peer());
    let mut tso = open(t0, tso_config(), bare_peer());
    plain.send(&data).unwrap();
    tso.send(&data).unwrap();
    let now = t0 + ms(200);
    let expected = transmit_tso(&mut plain, now);
    let sent = transmit_tso(&mut tso, now);
    // Initial cwnd 4000: one super-segment of four pieces, not pushed (data follows).
    assert_eq!(shape(&sent), [(0, 4000, Control::None, Some(1000))]);
    let pieces = cut(&sent[0].0, 1000);
    let expected: Vec<Vec<u8>> = expected.into_iter().map(|(b, _)| b).collect();
    assert_eq!(pieces, expected, "the same bytes as four segments");
    assert_eq!(tso.stats().segments_out, plain.stats().segments_out);

    // An ACK of one piece: cwnd 5000, 3000 in flight, so two more pieces, the last of the
    // data and so pushed.
    for conn in [&mut plain, &mut tso] {
        feed(
            conn,
            t0 + ms(300),
            TcpRepr {
                ack: Some(SND + 1000),
                ..PEER
            },
        );
    }
    let sent = transmit_tso(&mut tso, t0 + ms(300));
    assert_eq!(shape(&sent), [(4000, 2000, Control::Psh, Some(1000))]);
    let expected: Vec<Vec<u8>> = transmit_tso(&mut plain, t0 + ms(300))
        .into_iter()
        .map(|(b, _)| b)
        .collect();
    assert_eq!(cut(&sent[0].0, 1000), expected);
}

/// `bursts_per_window` (4 by default): a super-segment carries at most a quarter of the window,
/// so that a flight is several of them and draws several ACKs, even from a receiver that
/// answers pieces arriving back to back with one delayed ACK. Losing one of those ACKs then
/// costs nothing, where the flight's only ACK would have left the retransmission timeout.
#[test]
fn a_super_segment_is_at_most_the_configured_share_of_the_window() {
    let t0 = Instant::now();
    // The peer's window (16 segments) is not the limit here: cwnd is.
    let mut conn = open_with_window(t0, shared_config(), bare_peer(), 16_000);
    conn.send(&stream(40_000)).unwrap();
    // cwnd 4000: a quarter is one segment, so no super-segment at all.
    let sent = transmit_tso(&mut conn, t0 + ms(200));
    assert_eq!(
        shape(&sent),
        [
            (0, 1000, Control::None, None),
            (1000, 1000, Control::None, None),
            (2000, 1000, Control::None, None),
            (3000, 1000, Control::None, None),
        ]
    );
    // Slow start: each ACK of a segment adds one, so after four ACKs cwnd is 8000 and 4000
    // are in flight; a quarter of 8000 is two pieces per super-segment.
    let mut now = t0 + ms(300);
    let mut sent = Vec::new();
    for acked in [1000, 2000, 3000, 4000] {
        feed(
            &mut conn,
            now,
            TcpRepr {
                ack: Some(SND + acked),
                window: 16_000,
                ..PEER
            },
        );
        sent.extend(shape(&transmit_tso(&mut conn, now)));
        now += ms(1);
    }
    assert!(
        sent.iter().all(|&(_, len, _, _)| len <= 2000),
        "no super-segment above a quarter of cwnd: {sent:?}"
    );
    assert!(
        sent.iter().any(|&(_, _, _, size)| size == Some(1000)),
        "two-piece super-segments once cwnd is 8 segments: {sent:?}"
    );
    assert_eq!(sent.iter().map(|s| s.1).sum::<usize>(), 8000, "{sent:?}");
}

#[test]
fn the_peers_window_and_a_single_segment_of_room_mean_no_super_segment() {
    let t0 = Instant::now();
    // The peer's window holds two and a half segments: two pieces go, the half waits.
    let mut conn = open_with_window(t0, tso_config(), bare_peer(), 2500);
    conn.send(&stream(6000)).unwrap();
    let sent = transmit_tso(&mut conn, t0 + ms(200));
    assert_eq!(shape(&sent), [(0, 2000, Control::None, Some(1000))]);
    // The window opens by one segment: that one goes alone.
    feed(
        &mut conn,
        t0 + ms(300),
        TcpRepr {
            ack: Some(SND + 1000),
            window: 2500,
            ..PEER
        },
    );
    let sent = transmit_tso(&mut conn, t0 + ms(300));
    assert_eq!(shape(&sent), [(2000, 1000, Control::None, None)]);
}

#[test]
fn a_super_segment_fits_the_buffer_it_is_written_into() {
    let t0 = Instant::now();
    let mut conn = open(t0, tso_config(), bare_peer());
    conn.send(&stream(6000)).unwrap();
    // 3000 bytes hold a 20-byte header and two pieces: cwnd's four go as two super-segments.
    let mut buf = vec![0u8; 3000];
    let mut sent = Vec::new();
    while let Some(len) = conn.poll_transmit(t0 + ms(200), &mut buf) {
        let bytes = completed(&buf[..len], conn.segment_size());
        let seg = parse_ours(&bytes);
        sent.push((
            seg.seq.distance_from(SND),
            seg.payload.len(),
            conn.segment_size(),
        ));
    }
    assert_eq!(sent, [(0, 2000, Some(1000)), (2000, 2000, Some(1000))]);
}

#[test]
fn the_fin_rides_on_the_last_piece() {
    let t0 = Instant::now();
    let mut conn = open(t0, tso_config(), bare_peer());
    conn.send(&stream(3000)).unwrap();
    conn.close();
    let sent = transmit_tso(&mut conn, t0 + ms(200));
    assert_eq!(shape(&sent), [(0, 3000, Control::Fin, Some(1000))]);
    let pieces = cut(&sent[0].0, 1000);
    let controls: Vec<Control> = pieces.iter().map(|p| parse_ours(p).control).collect();
    assert_eq!(controls, [Control::None, Control::None, Control::Fin]);
    feed(
        &mut conn,
        t0 + ms(300),
        TcpRepr {
            ack: Some(SND + 3001),
            ..PEER
        },
    );
    assert_eq!(conn.send_queue(), 0);
}

#[test]
fn a_lost_super_segment_is_retransmitted_segment_by_segment_after_a_timeout() {
    let t0 = Instant::now();
    let mut conn = open(t0, tso_config(), bare_peer());
    conn.send(&stream(4000)).unwrap();
    let sent = transmit_tso(&mut conn, t0 + ms(200));
    assert_eq!(shape(&sent), [(0, 4000, Control::Psh, Some(1000))]);
    // Nothing comes back: the RTO (300 ms) resends the first piece only.
    let deadline = conn.poll_timeout().unwrap();
    conn.handle_timeout(deadline);
    let sent = transmit_tso(&mut conn, deadline);
    assert_eq!(shape(&sent), [(0, 1000, Control::None, None)]);
    // Each ACK lets slow start resend more, still one piece per segment.
    let mut acked = 1000;
    let mut now = deadline;
    while acked < 4000 {
        now += ms(100);
        feed(
            &mut conn,
            now,
            TcpRepr {
                ack: Some(SND + acked),
                ..PEER
            },
        );
        for (offset, len, _, size) in shape(&transmit_tso(&mut conn, now)) {
            assert_eq!((len, size), (1000, None), "resent at {offset}");
            acked = acked.max(offset + len);
        }
    }
    assert_eq!(conn.stats().retransmits_timeout, 4);
}

/// Everything the connection sends now, super-segments cut into their pieces.
fn wire(conn: &mut Connection, now: Instant) -> Vec<Vec<u8>> {
    transmit_tso(conn, now)
        .into_iter()
        .flat_map(|(bytes, size)| match size {
            Some(size) => cut(&bytes, size),
            None => vec![bytes],
        })
        .collect()
}

#[test]
fn sacks_of_later_pieces_bring_the_same_recovery_as_without_tso() {
    let t0 = Instant::now();
    let mut plain = open(t0, config(), sack_peer());
    let mut tso = open(t0, tso_config(), sack_peer());
    for conn in [&mut plain, &mut tso] {
        conn.send(&stream(12_000)).unwrap();
    }
    let sent = transmit_tso(&mut tso, t0 + ms(200));
    assert_eq!(shape(&sent), [(0, 4000, Control::None, Some(1000))]);
    transmit_tso(&mut plain, t0 + ms(200));
    // The first piece is lost; the peer SACKs the other three, one duplicate ACK each, then
    // the rest as it arrives. Both connections must send the same wire segments throughout.
    let mut resent = Vec::new();
    let mut now = t0 + ms(300);
    for right in [2000, 3000, 4000, 5000, 6000] {
        let ack = TcpRepr {
            options: sack(&[(SND + 1000, SND + right)]),
            ..PEER
        };
        feed(&mut plain, now, ack);
        feed(&mut tso, now, ack);
        let expected = wire(&mut plain, now);
        assert_eq!(wire(&mut tso, now), expected, "after a SACK up to {right}");
        resent.extend(
            expected
                .iter()
                .map(|b| parse_ours(b).seq.distance_from(SND)),
        );
        now += ms(1);
    }
    assert!(resent.contains(&0), "the first piece is resent: {resent:?}");
    let ack = TcpRepr {
        ack: Some(SND + 6000),
        ..PEER
    };
    feed(&mut plain, now, ack);
    feed(&mut tso, now, ack);
    assert_eq!(wire(&mut tso, now), wire(&mut plain, now), "after recovery");
    assert_eq!(tso.stats().segments_out, plain.stats().segments_out);
}

/// The end of what the application queued, when it is no more than an initial window (4000
/// here), goes as one super-segment even where `bursts_per_window` would cut it into single
/// segments, short last piece and FIN included: a short reply is one write to the device, as
/// Linux sends it. Data that does not end the queue still keeps to its share of the window.
#[test]
fn a_short_reply_goes_whole_as_one_super_segment() {
    let t0 = Instant::now();
    let mut conn = open_with_window(t0, shared_config(), bare_peer(), 16_000);
    conn.send(&stream(2500)).unwrap();
    conn.close();
    let sent = transmit_tso(&mut conn, t0 + ms(200));
    assert_eq!(shape(&sent), [(0, 2500, Control::Fin, Some(1000))]);
    let pieces: Vec<(usize, Control)> = cut(&sent[0].0, 1000)
        .iter()
        .map(|p| {
            let seg = parse_ours(p);
            (seg.payload.len(), seg.control)
        })
        .collect();
    assert_eq!(
        pieces,
        [
            (1000, Control::None),
            (1000, Control::None),
            (500, Control::Fin)
        ]
    );
    // More than fits in the window now: a quarter of cwnd (one segment) at a time.
    let mut conn = open_with_window(t0, shared_config(), bare_peer(), 16_000);
    conn.send(&stream(5000)).unwrap();
    let sent = shape(&transmit_tso(&mut conn, t0 + ms(200)));
    assert!(
        sent.iter()
            .all(|&(_, len, _, size)| len == 1000 && size.is_none()),
        "{sent:?}"
    );
}
