//! Segment-by-segment tests of closing a connection: active, passive and simultaneous close, FIN
//! retransmission, TIME-WAIT.
//!
//! Fixtures and conventions: `tests/common/conn.rs`.

mod common;

use std::time::Instant;

use tunstack::tcp::{ConnEvent, IoError, State};
use tunstack::wire::{Control, TcpRepr};

use common::conn::*;

// ==================================================================== closing

#[test]
fn active_close_through_fin_wait_and_time_wait() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    conn.close();
    assert_eq!(conn.state(), State::FinWait1);
    assert_eq!(conn.send(b"late"), Err(IoError::SendClosed));
    expect(
        &mut conn,
        t0 + ms(200),
        &[TcpRepr {
            control: Control::Fin,
            ..OURS
        }],
    );
    feed(
        &mut conn,
        t0 + ms(300),
        TcpRepr {
            ack: Some(SND + 1),
            ..PEER
        },
    );
    assert_eq!(conn.state(), State::FinWait2);
    expect_nothing(&mut conn, t0 + ms(300));
    // The peer may still send data in FIN-WAIT-2.
    feed(
        &mut conn,
        t0 + ms(400),
        TcpRepr {
            ack: Some(SND + 1),
            payload: b"bye",
            ..PEER
        },
    );
    assert_eq!(conn.recv_queue(), 3);
    feed(
        &mut conn,
        t0 + ms(410),
        TcpRepr {
            control: Control::Fin,
            seq: RCV + 3,
            ack: Some(SND + 1),
            ..PEER
        },
    );
    assert_eq!(conn.state(), State::TimeWait);
    assert_eq!(
        events(&mut conn),
        [ConnEvent::Readable, ConnEvent::PeerFinished]
    );
    expect(
        &mut conn,
        t0 + ms(410),
        &[TcpRepr {
            seq: SND + 1,
            ack: Some(RCV + 4),
            // The right edge stays at RCV + 64000 (the FIN takes no buffer space).
            window: 63_996,
            ..OURS
        }],
    );
    // 2 MSL (time_wait, 60 s by default), then CLOSED.
    let end = t0 + ms(410) + config().time_wait;
    assert_eq!(conn.poll_timeout(), Some(end));
    conn.handle_timeout(end - ms(1));
    assert_eq!(conn.state(), State::TimeWait);
    // A retransmitted FIN is acknowledged again.
    feed(
        &mut conn,
        end - ms(1),
        TcpRepr {
            control: Control::Fin,
            seq: RCV + 3,
            ack: Some(SND + 1),
            ..PEER
        },
    );
    let acks = transmit(&mut conn, end - ms(1));
    assert_eq!(acks.len(), 1);
    assert_eq!(parse_ours(&acks[0]).ack, Some(RCV + 4));
    let end = conn.poll_timeout().unwrap();
    conn.handle_timeout(end);
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(events(&mut conn), [ConnEvent::Closed]);
    assert!(conn.is_closed());
    let mut out = [0u8; 10];
    assert_eq!(conn.recv(&mut out), Ok(3));
    assert_eq!(conn.recv(&mut out), Ok(0));
}

#[test]
fn fin_wait_2_gives_up_after_the_time_wait_period() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    conn.close();
    transmit(&mut conn, t0 + ms(200));
    feed(
        &mut conn,
        t0 + ms(300),
        TcpRepr {
            ack: Some(SND + 1),
            ..PEER
        },
    );
    assert_eq!(conn.state(), State::FinWait2);
    let limit = t0 + ms(300) + config().time_wait;
    assert_eq!(conn.poll_timeout(), Some(limit));
    conn.handle_timeout(limit);
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(events(&mut conn), [ConnEvent::Closed]);
}

#[test]
fn passive_close_through_close_wait_and_last_ack() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    feed(
        &mut conn,
        t0 + ms(200),
        TcpRepr {
            control: Control::Fin,
            ..PEER
        },
    );
    assert_eq!(conn.state(), State::CloseWait);
    assert_eq!(events(&mut conn), [ConnEvent::PeerFinished]);
    // A FIN is acknowledged at once.
    expect(
        &mut conn,
        t0 + ms(200),
        &[TcpRepr {
            ack: Some(RCV + 1),
            window: 63_999,
            ..OURS
        }],
    );
    let mut out = [0u8; 10];
    assert_eq!(conn.recv(&mut out), Ok(0));
    // We may still send in CLOSE-WAIT; close puts the FIN on the last segment.
    assert_eq!(conn.send(b"last"), Ok(4));
    conn.close();
    assert_eq!(conn.state(), State::LastAck);
    expect(
        &mut conn,
        t0 + ms(300),
        &[TcpRepr {
            control: Control::Fin,
            ack: Some(RCV + 1),
            window: 63_999,
            payload: b"last",
            ..OURS
        }],
    );
    feed(
        &mut conn,
        t0 + ms(400),
        TcpRepr {
            seq: RCV + 1,
            ack: Some(SND + 5),
            ..PEER
        },
    );
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(events(&mut conn), [ConnEvent::Closed]);
    expect_nothing(&mut conn, t0 + ms(400));
    assert_eq!(conn.poll_timeout(), None);
}

#[test]
fn simultaneous_close_goes_through_closing() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    conn.close();
    expect(
        &mut conn,
        t0 + ms(200),
        &[TcpRepr {
            control: Control::Fin,
            ..OURS
        }],
    );
    // The peer's FIN crosses ours: it does not acknowledge our FIN.
    feed(
        &mut conn,
        t0 + ms(210),
        TcpRepr {
            control: Control::Fin,
            ..PEER
        },
    );
    assert_eq!(conn.state(), State::Closing);
    assert_eq!(events(&mut conn), [ConnEvent::PeerFinished]);
    expect(
        &mut conn,
        t0 + ms(210),
        &[TcpRepr {
            seq: SND + 1,
            ack: Some(RCV + 1),
            window: 63_999,
            ..OURS
        }],
    );
    feed(
        &mut conn,
        t0 + ms(300),
        TcpRepr {
            seq: RCV + 1,
            ack: Some(SND + 1),
            ..PEER
        },
    );
    assert_eq!(conn.state(), State::TimeWait);
    expect_nothing(&mut conn, t0 + ms(300));
    let end = t0 + ms(300) + config().time_wait;
    assert_eq!(conn.poll_timeout(), Some(end));
    conn.handle_timeout(end);
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(events(&mut conn), [ConnEvent::Closed]);
}

#[test]
fn fin_is_retransmitted_after_rto() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    conn.close();
    let fin = TcpRepr {
        control: Control::Fin,
        ..OURS
    };
    expect(&mut conn, t0 + ms(200), &[fin]);
    assert_eq!(conn.poll_timeout(), Some(t0 + ms(500)));
    conn.handle_timeout(t0 + ms(500));
    expect(&mut conn, t0 + ms(500), &[fin]);
    conn.handle_timeout(t0 + ms(1100));
    expect(&mut conn, t0 + ms(1100), &[fin]);
    assert_eq!(conn.state(), State::FinWait1);
    feed(
        &mut conn,
        t0 + ms(1200),
        TcpRepr {
            ack: Some(SND + 1),
            ..PEER
        },
    );
    assert_eq!(conn.state(), State::FinWait2);
}

#[test]
fn out_of_order_fin_is_processed_when_the_hole_fills() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    let data = stream(1500);
    feed(
        &mut conn,
        t0 + ms(200),
        TcpRepr {
            control: Control::Fin,
            seq: RCV + 1000,
            payload: &data[1000..],
            ..PEER
        },
    );
    assert_eq!(conn.state(), State::Established);
    assert!(events(&mut conn).is_empty());
    expect(&mut conn, t0 + ms(200), &[OURS]);
    feed(&mut conn, t0 + ms(210), data_seg(0, &data[..1000]));
    assert_eq!(conn.state(), State::CloseWait);
    assert_eq!(
        events(&mut conn),
        [ConnEvent::Readable, ConnEvent::PeerFinished]
    );
    // The right edge stays where it was: RCV + 64000.
    expect(
        &mut conn,
        t0 + ms(210),
        &[TcpRepr {
            ack: Some(RCV + 1501),
            window: 62_499,
            ..OURS
        }],
    );
    let mut out = vec![0u8; 2000];
    assert_eq!(conn.recv(&mut out), Ok(1500));
    assert_eq!(&out[..1500], &data[..]);
    assert_eq!(conn.recv(&mut out), Ok(0));
}

// ==================================================================== more transitions

#[test]
fn fin_with_data_in_order_closes_the_receive_side() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    feed(
        &mut conn,
        t0 + ms(200),
        TcpRepr {
            control: Control::Fin,
            payload: b"tail",
            ..PEER
        },
    );
    assert_eq!(conn.state(), State::CloseWait);
    assert_eq!(
        events(&mut conn),
        [ConnEvent::Readable, ConnEvent::PeerFinished]
    );
    expect(
        &mut conn,
        t0 + ms(200),
        &[TcpRepr {
            ack: Some(RCV + 5),
            window: 63_995,
            ..OURS
        }],
    );
    // Our ACK was lost: the retransmitted FIN is acknowledged again.
    feed(
        &mut conn,
        t0 + ms(400),
        TcpRepr {
            control: Control::Fin,
            payload: b"tail",
            ..PEER
        },
    );
    expect(
        &mut conn,
        t0 + ms(400),
        &[TcpRepr {
            ack: Some(RCV + 5),
            window: 63_995,
            ..OURS
        }],
    );
    let mut out = [0u8; 10];
    assert_eq!(conn.recv(&mut out), Ok(4));
    assert_eq!(conn.recv(&mut out), Ok(0));
    assert_eq!(conn.recv(&mut out), Ok(0));
}
