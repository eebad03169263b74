//! Segment-by-segment tests of how a connection ends badly: aborts, resets, ICMP errors, user
//! timeouts and retries running out; and path MTU changes.
//!
//! Fixtures and conventions: `tests/common/conn.rs`.

mod common;

use std::time::Instant;

use tunstack::ipv4::IcmpErrorKind;
use tunstack::tcp::{ConnError, ConnEvent, Connection, State, TcpConfig};
use tunstack::wire::{Control, SeqNum, TcpRepr};

use common::conn::*;

// ==================================================================== aborts and errors

#[test]
fn abort_sends_rst() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    conn.send(b"unsent data").unwrap();
    conn.abort();
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(events(&mut conn), [ConnEvent::Failed(ConnError::Aborted)]);
    assert!(!conn.is_closed(), "the RST is still to be sent");
    expect(
        &mut conn,
        t0 + ms(200),
        &[TcpRepr {
            control: Control::Rst,
            ack: None,
            window: 0,
            ..OURS
        }],
    );
    assert!(conn.is_closed());
    assert_eq!(conn.poll_timeout(), None);
}

#[test]
fn abort_in_syn_sent_sends_nothing() {
    let t0 = Instant::now();
    let mut conn = Connection::connect(t0, config(), TUPLE, INITIAL);
    transmit(&mut conn, t0);
    conn.abort();
    expect_nothing(&mut conn, t0);
    assert!(conn.is_closed());
}

#[test]
fn user_timeout_counts_from_the_first_unacknowledged_segment() {
    let t0 = Instant::now();
    let mut conn = open(
        t0,
        TcpConfig {
            user_timeout: ms(10_000),
            data_retries: 100,
            ..config()
        },
        bare_peer(),
    );
    // Idle for 5 s, then data that is never acknowledged.
    let sent_at = t0 + ms(5000);
    conn.send(b"hello").unwrap();
    assert_eq!(transmit(&mut conn, sent_at).len(), 1);
    let retransmissions = run_until(&mut conn, sent_at + ms(9999));
    assert_eq!(conn.state(), State::Established);
    let times: Vec<Instant> = retransmissions.iter().map(|(at, _)| *at).collect();
    let expected: Vec<Instant> = [300, 900, 2100, 4500, 9300]
        .iter()
        .map(|&d| sent_at + ms(d))
        .collect();
    assert_eq!(times, expected);
    let last = run_until(&mut conn, sent_at + ms(10_000));
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(events(&mut conn), [ConnEvent::Failed(ConnError::TimedOut)]);
    assert_eq!(last.len(), 1);
    let rst = parse_ours(&last[0].1);
    assert_eq!((rst.control, rst.ack), (Control::Rst, None));
}

#[test]
fn data_retries_exhausted_times_out_with_rst() {
    let t0 = Instant::now();
    let mut conn = open(
        t0,
        TcpConfig {
            data_retries: 2,
            ..config()
        },
        bare_peer(),
    );
    conn.send(b"hello").unwrap();
    transmit(&mut conn, t0 + ms(200));
    let out = run_until(&mut conn, t0 + ms(200 + 300 + 600 + 1200));
    let kinds: Vec<(Instant, Control)> = out
        .iter()
        .map(|(at, b)| (*at, parse_ours(b).control))
        .collect();
    assert_eq!(
        kinds,
        [
            (t0 + ms(500), Control::Psh),
            (t0 + ms(1100), Control::Psh),
            (t0 + ms(2300), Control::Rst),
        ]
    );
    assert_eq!(events(&mut conn), [ConnEvent::Failed(ConnError::TimedOut)]);
}

/// RFC 5927 §4.2: hard errors end a connection attempt, but once synchronized they are soft.
#[test]
fn icmp_hard_error_aborts_only_a_handshake() {
    let t0 = Instant::now();
    let mut conn = Connection::connect(t0, config(), TUPLE, INITIAL);
    transmit(&mut conn, t0);
    conn.handle_icmp_error(ISS, IcmpErrorKind::PortUnreachable);
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(
        events(&mut conn),
        [ConnEvent::Failed(ConnError::Unreachable(
            IcmpErrorKind::PortUnreachable
        ))]
    );
    expect_nothing(&mut conn, t0 + ms(10));

    let mut conn = open(t0, config(), bare_peer());
    conn.send(b"hello").unwrap();
    transmit(&mut conn, t0 + ms(200));
    conn.handle_icmp_error(SND, IcmpErrorKind::PortUnreachable);
    assert_eq!(conn.state(), State::Established);
    assert!(events(&mut conn).is_empty());
}

#[test]
fn icmp_soft_error_aborts_only_a_handshake() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    conn.send(b"hello").unwrap();
    transmit(&mut conn, t0 + ms(200));
    conn.handle_icmp_error(SND + 2, IcmpErrorKind::HostUnreachable);
    assert_eq!(conn.state(), State::Established);
    assert!(events(&mut conn).is_empty());

    let mut conn = Connection::connect(t0, config(), TUPLE, INITIAL);
    transmit(&mut conn, t0);
    conn.handle_icmp_error(ISS, IcmpErrorKind::HostUnreachable);
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(
        events(&mut conn),
        [ConnEvent::Failed(ConnError::Unreachable(
            IcmpErrorKind::HostUnreachable
        ))]
    );
}

#[test]
fn icmp_error_quoting_a_sequence_number_not_in_flight_is_ignored() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    conn.send(b"hello").unwrap();
    transmit(&mut conn, t0 + ms(200));
    // In flight: [SND, SND + 5). RFC 5927 §4.1.
    for seq in [SND + 5, SND - 1, SND + 100_000, ISS] {
        conn.handle_icmp_error(seq, IcmpErrorKind::PortUnreachable);
        assert_eq!(conn.state(), State::Established);
    }
    assert!(events(&mut conn).is_empty());

    let mut conn = Connection::connect(t0, config(), TUPLE, INITIAL);
    transmit(&mut conn, t0);
    conn.handle_icmp_error(ISS + 1, IcmpErrorKind::HostUnreachable);
    conn.handle_icmp_error(ISS - 1, IcmpErrorKind::PortUnreachable);
    assert_eq!(conn.state(), State::SynSent);
}

#[test]
fn path_mtu_reduces_the_segment_size() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), ts_peer());
    let data = stream(3000);
    conn.send(&data).unwrap();
    // MSS 1460 minus 12 bytes of timestamps.
    let sent = transmit(&mut conn, t0 + ms(200));
    let lens: Vec<usize> = sent.iter().map(|b| parse_ours(b).payload.len()).collect();
    assert_eq!(lens, [1448, 1448, 104]);
    // Not about data in flight: ignored.
    conn.handle_path_mtu(SND + 3000, 1000);
    expect_nothing(&mut conn, t0 + ms(201));
    // RFC 1191: 1000-byte datagrams hold 1000 - 40 - 12 bytes of payload; what is in flight
    // goes again in the new size.
    conn.handle_path_mtu(SND, 1000);
    let sent = transmit(&mut conn, t0 + ms(210));
    let got: Vec<(SeqNum, usize)> = sent
        .iter()
        .map(|b| {
            let r = parse_ours(b);
            (r.seq, r.payload.len())
        })
        .collect();
    assert_eq!(
        got,
        [
            (SND, 948),
            (SND + 948, 948),
            (SND + 1896, 948),
            (SND + 2844, 156)
        ]
    );
    assert!(sent.iter().all(|b| b.len() + 20 <= 1000));
}

// ==================================================================== more transitions

#[test]
fn rst_in_syn_received_is_refused_and_in_last_ack_just_closes() {
    let t0 = Instant::now();
    let mut conn = accept(t0, peer_syn(NO_OPTIONS));
    transmit(&mut conn, t0);
    feed(
        &mut conn,
        t0 + ms(10),
        TcpRepr {
            control: Control::Rst,
            ack: None,
            window: 0,
            ..PEER
        },
    );
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(events(&mut conn), [ConnEvent::Failed(ConnError::Refused)]);

    let mut conn = open(t0, config(), bare_peer());
    feed(
        &mut conn,
        t0 + ms(200),
        TcpRepr {
            control: Control::Fin,
            ..PEER
        },
    );
    conn.close();
    transmit(&mut conn, t0 + ms(200));
    assert_eq!(conn.state(), State::LastAck);
    events(&mut conn);
    feed(
        &mut conn,
        t0 + ms(300),
        TcpRepr {
            control: Control::Rst,
            seq: RCV + 1,
            ack: None,
            window: 0,
            ..PEER
        },
    );
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(events(&mut conn), [ConnEvent::Closed]);
}
