//! Segment-by-segment tests of the RFC 5961 defences (challenge ACKs, their rate limit) and PAWS
//! (RFC 7323).
//!
//! Fixtures and conventions: `tests/common/conn.rs`.

mod common;

use std::time::Instant;

use tunstack::tcp::{ConnError, ConnEvent, IoError, State};
use tunstack::wire::{Control, TcpRepr};

use common::conn::*;

// ==================================================================== RFC 5961

#[test]
fn rst_with_exact_sequence_number_resets() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    feed(
        &mut conn,
        t0 + ms(200),
        TcpRepr {
            control: Control::Rst,
            ack: None,
            window: 0,
            ..PEER
        },
    );
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(events(&mut conn), [ConnEvent::Failed(ConnError::Reset)]);
    expect_nothing(&mut conn, t0 + ms(200));
    let mut out = [0u8; 10];
    assert_eq!(conn.recv(&mut out), Err(IoError::Failed(ConnError::Reset)));
}

#[test]
fn rst_in_window_but_not_exact_gets_a_challenge_ack() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    feed(
        &mut conn,
        t0 + ms(200),
        TcpRepr {
            control: Control::Rst,
            seq: RCV + 100,
            window: 0,
            ..PEER
        },
    );
    assert_eq!(conn.state(), State::Established);
    assert!(events(&mut conn).is_empty());
    expect(&mut conn, t0 + ms(200), &[OURS]);
    assert_eq!(conn.stats().challenge_acks, 1);
}

#[test]
fn rst_outside_the_window_is_ignored() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    for seq in [RCV + 64_000, RCV - 1, RCV + 1_000_000] {
        feed(
            &mut conn,
            t0 + ms(200),
            TcpRepr {
                control: Control::Rst,
                seq,
                window: 0,
                ..PEER
            },
        );
        expect_nothing(&mut conn, t0 + ms(200));
    }
    assert_eq!(conn.state(), State::Established);
    assert_eq!(conn.stats().challenge_acks, 0);
}

#[test]
fn syn_in_established_gets_a_challenge_ack() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    // In the window: RFC 5961 §4.2 challenge ACK, no reset.
    feed(
        &mut conn,
        t0 + ms(200),
        TcpRepr {
            control: Control::Syn,
            seq: RCV + 10,
            ack: None,
            ..PEER
        },
    );
    expect(&mut conn, t0 + ms(200), &[OURS]);
    assert_eq!(conn.stats().challenge_acks, 1);
    // An old SYN (a retransmitted SYN-ACK) is out of window: a plain ACK.
    feed(&mut conn, t0 + ms(201), syn_ack(bare_peer()));
    expect(&mut conn, t0 + ms(201), &[OURS]);
    assert_eq!(conn.state(), State::Established);
    assert!(events(&mut conn).is_empty());
}

#[test]
fn challenge_acks_are_rate_limited() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    let t1 = t0 + ms(1000);
    let rst = |offset: usize| TcpRepr {
        control: Control::Rst,
        seq: RCV + offset,
        window: 0,
        ..PEER
    };
    let mut acks = 0;
    for i in 1..=15 {
        feed(&mut conn, t1, rst(i));
        acks += transmit(&mut conn, t1).len();
    }
    // RFC 5961 §7: at most challenge_acks_per_second (10).
    assert_eq!(acks, 10);
    feed(&mut conn, t1 + ms(999), rst(20));
    expect_nothing(&mut conn, t1 + ms(999));
    feed(&mut conn, t1 + ms(1000), rst(21));
    expect(&mut conn, t1 + ms(1000), &[OURS]);
    assert_eq!(conn.state(), State::Established);
    assert_eq!(conn.stats().challenge_acks, 11);
}

#[test]
fn ack_of_data_never_sent_is_answered_and_dropped() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    let data = stream(100);
    feed(
        &mut conn,
        t0 + ms(200),
        TcpRepr {
            ack: Some(SND + 1000),
            payload: &data,
            ..PEER
        },
    );
    expect(&mut conn, t0 + ms(200), &[OURS]);
    assert_eq!(conn.recv_queue(), 0);
    assert!(events(&mut conn).is_empty());
}

#[test]
fn ack_too_old_is_answered_and_dropped() {
    let t0 = Instant::now();
    // The peer's window is 1000 bytes, so MAX.SND.WND is 1000.
    let mut conn = open_with_window(t0, config(), bare_peer(), 1000);
    conn.send(&stream(3000)).unwrap();
    for k in 1..=3 {
        assert_eq!(transmit(&mut conn, t0 + ms(200)).len(), 1);
        feed(
            &mut conn,
            t0 + ms(200),
            TcpRepr {
                ack: Some(SND + 1000 * k),
                window: 1000,
                ..PEER
            },
        );
    }
    expect_nothing(&mut conn, t0 + ms(200));
    let data = stream(200);
    // RFC 5961 §5.2: SEG.ACK < SND.UNA - MAX.SND.WND is dropped with an ACK.
    feed(
        &mut conn,
        t0 + ms(300),
        TcpRepr {
            ack: Some(SND),
            window: 1000,
            payload: &data[..100],
            ..PEER
        },
    );
    expect(
        &mut conn,
        t0 + ms(300),
        &[TcpRepr {
            seq: SND + 3000,
            ..OURS
        }],
    );
    assert_eq!(conn.recv_queue(), 0);
    // An old ACK within MAX.SND.WND is fine: the data is taken.
    feed(
        &mut conn,
        t0 + ms(301),
        TcpRepr {
            ack: Some(SND + 2500),
            window: 1000,
            payload: &data[..100],
            ..PEER
        },
    );
    assert_eq!(conn.recv_queue(), 100);
}

// ==================================================================== PAWS

#[test]
fn paws_drops_a_segment_with_an_old_timestamp_and_acks() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), ts_peer());
    let data = stream(200);
    feed(
        &mut conn,
        t0 + ms(200),
        TcpRepr {
            payload: &data[..100],
            options: ts(PEER_TS + 200, TS_OFFSET + 100),
            ..PEER
        },
    );
    assert_eq!(conn.recv_queue(), 100);
    // RFC 7323 §5.3: TSval older than TS.Recent: drop, but acknowledge.
    feed(
        &mut conn,
        t0 + ms(210),
        TcpRepr {
            seq: RCV + 100,
            payload: &data[100..],
            options: ts(PEER_TS + 150, TS_OFFSET + 100),
            ..PEER
        },
    );
    expect(
        &mut conn,
        t0 + ms(210),
        &[TcpRepr {
            ack: Some(RCV + 100),
            window: 63_900,
            options: ts(TS_OFFSET + 210, PEER_TS + 200),
            ..OURS
        }],
    );
    assert_eq!(conn.recv_queue(), 100);
    assert_eq!(conn.stats().rejected_in, 1);
}

// ==================================================================== more transitions

#[test]
fn rst_is_exempt_from_paws() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), ts_peer());
    feed(
        &mut conn,
        t0 + ms(200),
        TcpRepr {
            control: Control::Rst,
            window: 0,
            options: ts(1, 0),
            ..PEER
        },
    );
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(events(&mut conn), [ConnEvent::Failed(ConnError::Reset)]);
}

/// RFC 5961 §7 (ACK throttling), as Linux's tcp_oow_rate_limited: an unacceptable segment
/// without data is answered at most once per 500 ms, so two stacks that disagree about the
/// window cannot exchange ACKs in a loop; one carrying data is always answered.
#[test]
fn rfc5961_7_acks_to_unacceptable_pure_acks_are_rate_limited() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    let outside = TcpRepr {
        seq: RCV + 100_000,
        ..PEER
    };
    let answer = [OURS];
    feed(&mut conn, t0 + ms(200), outside);
    expect(&mut conn, t0 + ms(200), &answer);
    for i in 1..10 {
        feed(&mut conn, t0 + ms(200 + i * 10), outside);
        expect_nothing(&mut conn, t0 + ms(200 + i * 10));
    }
    feed(&mut conn, t0 + ms(700), outside);
    expect(&mut conn, t0 + ms(700), &answer);
    // Old data is always answered (the peer missed our ACK).
    let data = stream(100);
    feed(&mut conn, t0 + ms(710), data_seg(0, &data));
    transmit(&mut conn, t0 + ms(760));
    for i in 0..3 {
        feed(&mut conn, t0 + ms(800 + i), data_seg(0, &data));
        assert_eq!(
            transmit(&mut conn, t0 + ms(800 + i)).len(),
            1,
            "duplicate {i}"
        );
    }
}
