//! Segment-by-segment tests of the TCP handshake: active and passive open, simultaneous open, SYN
//! and SYN-ACK retransmission.
//!
//! Fixtures and conventions: `tests/common/conn.rs`.

mod common;

use std::time::Instant;

use tunstack::tcp::congestion::Unlimited;
use tunstack::tcp::{
    ConnError, ConnEvent, Connection, FourTuple, Initial, IoError, State, TcpConfig,
};
use tunstack::wire::{Control, SeqNum, TcpOptions, TcpRepr, Timestamps};

use common::conn::*;

// ==================================================================== active open

#[test]
fn syn_carries_mss_window_scale_sack_permitted_and_timestamps() {
    let t0 = Instant::now();
    let mut conn = Connection::connect(t0, TcpConfig::default(), TUPLE, INITIAL);
    assert_eq!(conn.state(), State::SynSent);
    // A 1 MiB buffer needs shift 5 to fit the 16-bit field; the SYN's own window is unscaled.
    expect(
        &mut conn,
        t0,
        &[TcpRepr {
            control: Control::Syn,
            seq: ISS,
            ack: None,
            window: 65535,
            options: TcpOptions {
                mss: Some(1460),
                window_scale: Some(5),
                sack_permitted: true,
                ..ts(TS_OFFSET, 0)
            },
            ..OURS
        }],
    );
    assert_eq!(conn.poll_timeout(), Some(t0 + ms(1000)));
    assert!(events(&mut conn).is_empty());
}

#[test]
fn syn_ack_establishes_and_is_acknowledged() {
    let t0 = Instant::now();
    let mut conn = Connection::connect(t0, TcpConfig::default(), TUPLE, INITIAL);
    transmit(&mut conn, t0);
    feed(
        &mut conn,
        t0 + ms(100),
        syn_ack(TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            ..ts(PEER_TS, TS_OFFSET)
        }),
    );
    assert_eq!(conn.state(), State::Established);
    assert_eq!(events(&mut conn), [ConnEvent::Connected]);
    // The ACK carries a scaled window (1 MiB >> 5) and echoes the peer's TSval.
    expect(
        &mut conn,
        t0 + ms(100),
        &[TcpRepr {
            window: 32768,
            options: ts(TS_OFFSET + 100, PEER_TS),
            ..OURS
        }],
    );
    // RFC 6298 §2.2: the first sample (100 ms, from the echoed timestamp) sets SRTT.
    assert_eq!(conn.stats().srtt, Some(ms(100)));
    assert_eq!(conn.rto(), ms(300));
    // The handshake's timer is stopped: nothing is in flight.
    expect_nothing(&mut conn, t0 + ms(1100));
}

#[test]
fn syn_ack_without_options_turns_them_all_off() {
    let t0 = Instant::now();
    let mut conn = Connection::connect(t0, TcpConfig::default(), TUPLE, INITIAL);
    transmit(&mut conn, t0);
    feed(&mut conn, t0 + ms(100), syn_ack(NO_OPTIONS));
    assert_eq!(conn.state(), State::Established);
    // No scaling: the window field caps at 65535; no timestamps or SACK.
    expect(
        &mut conn,
        t0 + ms(100),
        &[TcpRepr {
            window: 65535,
            ..OURS
        }],
    );
    // Without an MSS option the peer's MSS is 536 (RFC 9293 §3.7.1).
    conn.set_congestion_control(Box::new(Unlimited));
    let data = stream(600);
    assert_eq!(conn.send(&data), Ok(600));
    expect(
        &mut conn,
        t0 + ms(200),
        &[
            TcpRepr {
                window: 65535,
                payload: &data[..536],
                ..OURS
            },
            TcpRepr {
                control: Control::Psh,
                seq: SND + 536,
                window: 65535,
                payload: &data[536..],
                ..OURS
            },
        ],
    );
}

#[test]
fn handshake_rtt_is_sampled_without_timestamps() {
    // We offer timestamps, the peer declines: the SYN must still be timed (RFC 6298 §2).
    let t0 = Instant::now();
    let conn = open(t0, config(), bare_peer());
    assert_eq!(conn.stats().srtt, Some(ms(100)));
    assert_eq!(conn.rto(), ms(300));
}

#[test]
fn rst_with_acceptable_ack_in_syn_sent_is_refused() {
    let t0 = Instant::now();
    let mut conn = Connection::connect(t0, config(), TUPLE, INITIAL);
    transmit(&mut conn, t0);
    feed(
        &mut conn,
        t0 + ms(50),
        TcpRepr {
            control: Control::Rst,
            seq: SeqNum(0),
            ack: Some(SND),
            window: 0,
            ..PEER
        },
    );
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(events(&mut conn), [ConnEvent::Failed(ConnError::Refused)]);
    expect_nothing(&mut conn, t0 + ms(50));
    assert_eq!(conn.poll_timeout(), None);
    assert!(conn.is_closed());
    assert_eq!(
        conn.send(b"x"),
        Err(IoError::Failed(ConnError::Refused)),
        "the error reaches the application"
    );
}

#[test]
fn rst_in_syn_sent_without_acceptable_ack_is_ignored() {
    let t0 = Instant::now();
    let mut conn = Connection::connect(t0, config(), TUPLE, INITIAL);
    transmit(&mut conn, t0);
    // RFC 9293 §3.10.7.3: a RST without ACK, or with an ACK that does not cover our SYN, is
    // dropped.
    for ack in [None, Some(ISS), Some(SND + 1)] {
        feed(
            &mut conn,
            t0 + ms(50),
            TcpRepr {
                control: Control::Rst,
                seq: IRS,
                ack,
                window: 0,
                ..PEER
            },
        );
        assert_eq!(conn.state(), State::SynSent);
        expect_nothing(&mut conn, t0 + ms(50));
    }
    assert!(events(&mut conn).is_empty());
    // The SYN timer still runs.
    conn.handle_timeout(t0 + ms(1000));
    expect(&mut conn, t0 + ms(1000), &[our_syn(TS_OFFSET + 1000)]);
}

/// A bare reset from us with this sequence number, as RFC 9293 answers a stray ACK.
fn our_rst(seq: SeqNum) -> TcpRepr<'static> {
    TcpRepr {
        src_port: LOCAL.port(),
        dst_port: REMOTE.port(),
        control: Control::Rst,
        seq,
        ack: None,
        window: 0,
        options: TcpOptions::default(),
        payload: &[],
    }
}

#[test]
fn syn_ack_with_bad_ack_gets_a_reset_and_changes_nothing() {
    let t0 = Instant::now();
    let mut conn = Connection::connect(t0, config(), TUPLE, INITIAL);
    transmit(&mut conn, t0);
    // SEG.ACK =< ISS or SEG.ACK > SND.NXT is not acceptable: RFC 9293 §3.10.7.3 answers
    // <SEQ=SEG.ACK><CTL=RST> and otherwise ignores the segment.
    for ack in [ISS, SND + 1, ISS - 100] {
        feed(
            &mut conn,
            t0 + ms(50),
            TcpRepr {
                ack: Some(ack),
                ..syn_ack(bare_peer())
            },
        );
        assert_eq!(conn.state(), State::SynSent);
        expect(&mut conn, t0 + ms(50), &[our_rst(ack)]);
    }
    assert!(events(&mut conn).is_empty());
    // A good SYN-ACK still completes the handshake.
    feed(&mut conn, t0 + ms(60), syn_ack(bare_peer()));
    assert_eq!(conn.state(), State::Established);
    assert_eq!(events(&mut conn), [ConnEvent::Connected]);
}

#[test]
fn syn_retransmits_with_exponential_backoff_then_times_out() {
    let t0 = Instant::now();
    let mut conn = Connection::connect(
        t0,
        TcpConfig {
            syn_retries: 3,
            ..config()
        },
        TUPLE,
        INITIAL,
    );
    expect(&mut conn, t0, &[our_syn(TS_OFFSET)]);
    // RFC 6298 §2.1 / §5.5: first after 1 s, then doubling.
    conn.handle_timeout(t0 + ms(999));
    expect_nothing(&mut conn, t0 + ms(999));
    assert_eq!(conn.poll_timeout(), Some(t0 + ms(1000)));
    conn.handle_timeout(t0 + ms(1000));
    expect(&mut conn, t0 + ms(1000), &[our_syn(TS_OFFSET + 1000)]);
    assert_eq!(conn.poll_timeout(), Some(t0 + ms(3000)));
    conn.handle_timeout(t0 + ms(2999));
    expect_nothing(&mut conn, t0 + ms(2999));
    conn.handle_timeout(t0 + ms(3000));
    expect(&mut conn, t0 + ms(3000), &[our_syn(TS_OFFSET + 3000)]);
    assert_eq!(conn.poll_timeout(), Some(t0 + ms(7000)));
    conn.handle_timeout(t0 + ms(7000));
    expect(&mut conn, t0 + ms(7000), &[our_syn(TS_OFFSET + 7000)]);
    assert_eq!(conn.poll_timeout(), Some(t0 + ms(15_000)));
    assert_eq!(conn.state(), State::SynSent);
    assert!(events(&mut conn).is_empty());
    // syn_retries retransmissions used up: the next expiry gives up, without a RST.
    conn.handle_timeout(t0 + ms(15_000));
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(events(&mut conn), [ConnEvent::Failed(ConnError::TimedOut)]);
    expect_nothing(&mut conn, t0 + ms(15_000));
    assert_eq!(conn.stats().retransmits_timeout, 3);
}

#[test]
fn data_queued_in_syn_sent_goes_out_after_the_handshake() {
    let t0 = Instant::now();
    let mut conn = Connection::connect(t0, config(), TUPLE, INITIAL);
    assert_eq!(conn.send(b"GET / HTTP/1.1\r\n\r\n"), Ok(18));
    expect(&mut conn, t0, &[our_syn(TS_OFFSET)]);
    feed(&mut conn, t0 + ms(100), syn_ack(bare_peer()));
    // The request itself acknowledges the SYN-ACK: no separate ACK.
    expect(
        &mut conn,
        t0 + ms(100),
        &[TcpRepr {
            control: Control::Psh,
            payload: b"GET / HTTP/1.1\r\n\r\n",
            ..OURS
        }],
    );
}

// ==================================================================== passive open

fn full_syn_options() -> TcpOptions {
    TcpOptions {
        mss: Some(1200),
        window_scale: Some(2),
        sack_permitted: true,
        ..ts(PEER_TS, 0)
    }
}

/// Our SYN-ACK to `full_syn_options` under `config()`.
fn our_full_syn_ack(tsval: u32, echo: u32) -> TcpRepr<'static> {
    TcpRepr {
        control: Control::Syn,
        seq: ISS,
        ack: Some(RCV),
        window: 64_000,
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(0),
            sack_permitted: true,
            ..ts(tsval, echo)
        },
        ..OURS
    }
}

#[test]
fn syn_ack_mirrors_the_peers_options() {
    let t0 = Instant::now();
    let mut conn = accept(t0, peer_syn(full_syn_options()));
    assert_eq!(conn.state(), State::SynReceived);
    expect(&mut conn, t0, &[our_full_syn_ack(TS_OFFSET, PEER_TS)]);

    // A peer that offers nothing gets nothing but our MSS.
    let mut conn = accept(t0, peer_syn(NO_OPTIONS));
    expect(
        &mut conn,
        t0,
        &[TcpRepr {
            control: Control::Syn,
            seq: ISS,
            window: 64_000,
            options: TcpOptions {
                mss: Some(1460),
                ..NO_OPTIONS
            },
            ..OURS
        }],
    );
}

#[test]
fn ack_of_syn_ack_establishes() {
    let t0 = Instant::now();
    let mut conn = accept(t0, peer_syn(full_syn_options()));
    transmit(&mut conn, t0);
    feed(
        &mut conn,
        t0 + ms(50),
        TcpRepr {
            window: 1000,
            options: ts(PEER_TS + 50, TS_OFFSET),
            ..PEER
        },
    );
    assert_eq!(conn.state(), State::Established);
    assert_eq!(events(&mut conn), [ConnEvent::Connected]);
    expect_nothing(&mut conn, t0 + ms(50));
    assert_eq!(conn.stats().srtt, Some(ms(50)));
    // The peer's window is scaled by its shift of 2: 4000 bytes; MSS 1200 - 12 for timestamps.
    // The 436 bytes left in the window wait (sender SWS avoidance, RFC 9293 §3.8.6.2.1).
    conn.set_congestion_control(Box::new(Unlimited));
    let data = stream(5000);
    conn.send(&data).unwrap();
    let sent = transmit(&mut conn, t0 + ms(60));
    let lens: Vec<usize> = sent.iter().map(|b| parse_ours(b).payload.len()).collect();
    assert_eq!(lens, [1188, 1188, 1188]);
}

#[test]
fn retransmitted_syn_in_syn_received_re_elicits_syn_ack() {
    let t0 = Instant::now();
    let mut conn = accept(t0, peer_syn(full_syn_options()));
    expect(&mut conn, t0, &[our_full_syn_ack(TS_OFFSET, PEER_TS)]);
    // Our SYN-ACK was lost; the peer's SYN timer fires.
    feed(
        &mut conn,
        t0 + ms(1000),
        peer_syn(TcpOptions {
            timestamps: Some(Timestamps {
                value: PEER_TS + 1000,
                echo: 0,
            }),
            ..full_syn_options()
        }),
    );
    expect(
        &mut conn,
        t0 + ms(1000),
        &[our_full_syn_ack(TS_OFFSET + 1000, PEER_TS + 1000)],
    );
    assert_eq!(conn.state(), State::SynReceived);
}

#[test]
fn syn_ack_is_retransmitted_on_timeout() {
    let t0 = Instant::now();
    let mut conn = accept(t0, peer_syn(full_syn_options()));
    expect(&mut conn, t0, &[our_full_syn_ack(TS_OFFSET, PEER_TS)]);
    assert_eq!(conn.poll_timeout(), Some(t0 + ms(1000)));
    conn.handle_timeout(t0 + ms(1000));
    expect(
        &mut conn,
        t0 + ms(1000),
        &[our_full_syn_ack(TS_OFFSET + 1000, PEER_TS)],
    );
    assert_eq!(conn.poll_timeout(), Some(t0 + ms(3000)));
}

#[test]
fn bad_ack_in_syn_received_does_not_establish() {
    let t0 = Instant::now();
    let mut conn = accept(t0, peer_syn(NO_OPTIONS));
    transmit(&mut conn, t0);
    feed(
        &mut conn,
        t0 + ms(10),
        TcpRepr {
            ack: Some(SND + 5),
            ..PEER
        },
    );
    assert_eq!(conn.state(), State::SynReceived);
    assert!(events(&mut conn).is_empty());
    // RFC 9293 §3.10.7.4: the unacceptable ACK is answered with <SEQ=SEG.ACK><CTL=RST>.
    expect(&mut conn, t0 + ms(10), &[our_rst(SND + 5)]);
}

#[test]
fn close_in_syn_received_sends_fin_after_the_handshake() {
    let t0 = Instant::now();
    let mut conn = accept(t0, peer_syn(NO_OPTIONS));
    conn.close();
    // RFC 9293 §3.10.4: the SYN-ACK still goes out, the FIN waits for ESTABLISHED.
    let syn_ack = transmit(&mut conn, t0);
    assert_eq!(syn_ack.len(), 1);
    assert_eq!(parse_ours(&syn_ack[0]).control, Control::Syn);
    feed(&mut conn, t0 + ms(10), PEER);
    assert_eq!(conn.state(), State::FinWait1);
    expect(
        &mut conn,
        t0 + ms(10),
        &[TcpRepr {
            control: Control::Fin,
            window: 64_000,
            ..OURS
        }],
    );
}

// ==================================================================== more transitions

/// Moves everything `from` has to send into `to`; returns (control, seq, ack) of each.
fn relay(
    from: &mut Connection,
    to: &mut Connection,
    now: Instant,
) -> Vec<(Control, SeqNum, Option<SeqNum>)> {
    let (src, dst) = (*from.local().ip(), *to.local().ip());
    let mut summary = Vec::new();
    for bytes in transmit(from, now) {
        let seg = TcpRepr::parse(src, dst, &bytes).unwrap();
        summary.push((seg.control, seg.seq, seg.ack));
        to.handle_segment(now, &seg);
    }
    summary
}

#[test]
fn simultaneous_open_establishes_on_the_crossing_syn_acks() {
    let t0 = Instant::now();
    let mut a = Connection::connect(t0, config(), TUPLE, INITIAL);
    let mut b = Connection::connect(
        t0,
        config(),
        FourTuple {
            local: REMOTE,
            remote: LOCAL,
        },
        Initial {
            iss: IRS,
            ts_offset: 500,
        },
    );
    // Both SYNs are in flight at once: take them out before delivering either.
    let syn_a = transmit(&mut a, t0);
    let syn_b = transmit(&mut b, t0);
    b.handle_segment(t0, &TcpRepr::parse(LOCAL_IP, REMOTE_IP, &syn_a[0]).unwrap());
    a.handle_segment(t0, &TcpRepr::parse(REMOTE_IP, LOCAL_IP, &syn_b[0]).unwrap());
    assert_eq!(
        (a.state(), b.state()),
        (State::SynReceived, State::SynReceived)
    );
    // RFC 9293 §3.5 figure 8: each answers with SYN-ACK; each SYN-ACK establishes.
    let syn_ack_a = transmit(&mut a, t0 + ms(10));
    let syn_ack_b = transmit(&mut b, t0 + ms(10));
    b.handle_segment(
        t0 + ms(20),
        &TcpRepr::parse(LOCAL_IP, REMOTE_IP, &syn_ack_a[0]).unwrap(),
    );
    a.handle_segment(
        t0 + ms(20),
        &TcpRepr::parse(REMOTE_IP, LOCAL_IP, &syn_ack_b[0]).unwrap(),
    );
    assert_eq!(
        (a.state(), b.state()),
        (State::Established, State::Established)
    );
    assert_eq!(events(&mut a), [ConnEvent::Connected]);
    assert_eq!(events(&mut b), [ConnEvent::Connected]);
    // Nothing more is owed; data flows.
    assert!(relay(&mut a, &mut b, t0 + ms(20)).is_empty());
    assert!(relay(&mut b, &mut a, t0 + ms(20)).is_empty());
    a.send(b"ping").unwrap();
    assert_eq!(
        relay(&mut a, &mut b, t0 + ms(30)),
        [(Control::Psh, SND, Some(RCV))]
    );
    assert_eq!(b.recv_queue(), 4);
}

#[test]
fn ack_completing_a_passive_open_may_carry_data() {
    let t0 = Instant::now();
    let mut conn = accept(t0, peer_syn(NO_OPTIONS));
    transmit(&mut conn, t0);
    feed(
        &mut conn,
        t0 + ms(10),
        TcpRepr {
            control: Control::Psh,
            payload: b"request",
            ..PEER
        },
    );
    assert_eq!(conn.state(), State::Established);
    assert_eq!(
        events(&mut conn),
        [ConnEvent::Connected, ConnEvent::Readable]
    );
    assert_eq!(conn.recv_queue(), 7);
}

#[test]
fn syn_ack_retransmissions_give_up_after_syn_retries() {
    let t0 = Instant::now();
    let mut conn = Connection::accept(
        t0,
        TcpConfig {
            syn_retries: 2,
            ..config()
        },
        TUPLE,
        &peer_syn(NO_OPTIONS),
        INITIAL,
    );
    transmit(&mut conn, t0);
    let out = run_until(&mut conn, t0 + ms(10_000));
    let times: Vec<Instant> = out.iter().map(|(at, _)| *at).collect();
    assert_eq!(times, [t0 + ms(1000), t0 + ms(3000)]);
    assert!(out
        .iter()
        .all(|(_, b)| parse_ours(b).control == Control::Syn));
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(events(&mut conn), [ConnEvent::Failed(ConnError::TimedOut)]);
}

/// RFC 9293 §3.10.7.3 (SYN-SENT, fourth check): text on a SYN-ACK is delivered, starting with
/// the byte after the SYN's sequence number, not shifted by it.
#[test]
fn rfc9293_3_10_7_3_data_on_a_syn_ack_is_delivered_in_place() {
    let t0 = Instant::now();
    let mut conn = Connection::connect(t0, config(), TUPLE, INITIAL);
    transmit(&mut conn, t0);
    feed(
        &mut conn,
        t0 + ms(100),
        TcpRepr {
            payload: b"hello",
            ..syn_ack(bare_peer())
        },
    );
    assert_eq!(conn.state(), State::Established);
    assert_eq!(
        events(&mut conn),
        [ConnEvent::Connected, ConnEvent::Readable]
    );
    expect(
        &mut conn,
        t0 + ms(100),
        &[TcpRepr {
            ack: Some(RCV + 5),
            window: 63_995,
            ..OURS
        }],
    );
    let mut out = [0u8; 16];
    assert_eq!(conn.recv(&mut out), Ok(5));
    assert_eq!(&out[..5], b"hello");
    // The next segment continues the stream where the SYN-ACK's text ended.
    feed(&mut conn, t0 + ms(110), data_seg(5, b" world"));
    assert_eq!(conn.recv(&mut out), Ok(6));
    assert_eq!(&out[..6], b" world");
}

/// RFC 7323 §4 (RTTM) with Karn's rule: after a lost SYN, a SYN-ACK whose TSecr echoes the
/// retransmitted SYN's TSval is an unambiguous RTT sample, so data starts with an RTO from the
/// path (as Linux does), not the handshake's backed-off timer.
#[test]
fn rfc7323_4_syn_ack_echoing_the_retransmitted_syn_gives_a_sample() {
    let t0 = Instant::now();
    let mut conn = Connection::connect(t0, config(), TUPLE, INITIAL);
    expect(&mut conn, t0, &[our_syn(TS_OFFSET)]);
    conn.handle_timeout(t0 + ms(1000));
    expect(&mut conn, t0 + ms(1000), &[our_syn(TS_OFFSET + 1000)]);
    feed(
        &mut conn,
        t0 + ms(1100),
        syn_ack(TcpOptions {
            mss: Some(1460),
            sack_permitted: true,
            ..ts(PEER_TS, TS_OFFSET + 1000)
        }),
    );
    assert_eq!(conn.state(), State::Established);
    assert_eq!(conn.stats().srtt, Some(ms(100)));
    assert_eq!(conn.rto(), ms(300));
}

/// RFC 6298 §5.7: when a SYN timed out and the handshake gave no RTT sample (no timestamps),
/// data transmission starts with the RTO re-initialised to 3 s, not the doubled SYN timer.
#[test]
fn rfc6298_5_7_rto_is_three_seconds_after_a_lost_syn_without_a_sample() {
    let t0 = Instant::now();
    let mut conn = Connection::connect(t0, config(), TUPLE, INITIAL);
    transmit(&mut conn, t0);
    conn.handle_timeout(t0 + ms(1000));
    transmit(&mut conn, t0 + ms(1000));
    conn.handle_timeout(t0 + ms(3000));
    transmit(&mut conn, t0 + ms(3000));
    feed(&mut conn, t0 + ms(3100), syn_ack(bare_peer()));
    assert_eq!(conn.state(), State::Established);
    assert_eq!(conn.stats().srtt, None, "Karn: no sample");
    assert_eq!(conn.rto(), ms(3000));
}
