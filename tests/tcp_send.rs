//! Segment-by-segment tests of sending data and loss recovery: segmentation, the congestion window,
//! retransmission timeouts, fast retransmit, NewReno and SACK recovery, zero-window probes.
//!
//! Fixtures and conventions: `tests/common/conn.rs`.

mod common;

use std::time::{Duration, Instant};

use tunstack::tcp::congestion::Unlimited;
use tunstack::tcp::{ConnEvent, Connection, Initial, IoError, State, TcpConfig};
use tunstack::wire::{Control, SeqNum, TcpOptions, TcpRepr};

use common::conn::*;

// ==================================================================== sending data

#[test]
fn segments_are_cut_at_the_mss_and_the_last_one_pushed() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    let data = stream(2500);
    assert_eq!(conn.send(&data), Ok(2500));
    expect(
        &mut conn,
        t0 + ms(200),
        &[
            TcpRepr {
                payload: &data[..1000],
                ..OURS
            },
            TcpRepr {
                seq: SND + 1000,
                payload: &data[1000..2000],
                ..OURS
            },
            TcpRepr {
                control: Control::Psh,
                seq: SND + 2000,
                payload: &data[2000..],
                ..OURS
            },
        ],
    );
    feed(
        &mut conn,
        t0 + ms(300),
        TcpRepr {
            ack: Some(SND + 2500),
            ..PEER
        },
    );
    assert_eq!(conn.send_queue(), 0);
    assert_eq!(
        conn.poll_timeout(),
        Some(t0 + ms(300) + TcpConfig::default().user_timeout)
    );
}

#[test]
fn initial_window_limits_the_first_flight() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    // RFC 5681 §3.1: MSS 1000 gives an initial window of 4 segments.
    assert_eq!(conn.stats().cwnd, 4000);
    let data = stream(6000);
    conn.send(&data).unwrap();
    let sent = transmit(&mut conn, t0 + ms(200));
    assert_eq!(sent.len(), 4);
    // Each ACK of one segment grows cwnd by one MSS in slow start: two more segments each.
    feed(
        &mut conn,
        t0 + ms(300),
        TcpRepr {
            ack: Some(SND + 1000),
            ..PEER
        },
    );
    assert_eq!(conn.stats().cwnd, 5000);
    let sent = transmit(&mut conn, t0 + ms(300));
    let seqs: Vec<SeqNum> = sent.iter().map(|b| parse_ours(b).seq).collect();
    assert_eq!(seqs, [SND + 4000, SND + 5000]);
}

#[test]
fn retransmission_after_exactly_one_rto_then_twice_that() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    assert_eq!(conn.rto(), ms(300));
    let data = stream(500);
    conn.send(&data).unwrap();
    let seg = TcpRepr {
        control: Control::Psh,
        payload: &data,
        ..OURS
    };
    expect(&mut conn, t0 + ms(200), &[seg]);
    assert_eq!(conn.poll_timeout(), Some(t0 + ms(500)));
    conn.handle_timeout(t0 + ms(499));
    expect_nothing(&mut conn, t0 + ms(499));
    conn.handle_timeout(t0 + ms(500));
    expect(&mut conn, t0 + ms(500), &[seg]);
    // RFC 6298 §5.5: the timer backs off to 2 * RTO.
    assert_eq!(conn.poll_timeout(), Some(t0 + ms(1100)));
    conn.handle_timeout(t0 + ms(1099));
    expect_nothing(&mut conn, t0 + ms(1099));
    conn.handle_timeout(t0 + ms(1100));
    expect(&mut conn, t0 + ms(1100), &[seg]);
    assert_eq!(conn.poll_timeout(), Some(t0 + ms(2300)));
    let stats = conn.stats();
    assert_eq!(stats.timeouts, 2);
    assert_eq!(stats.retransmits_timeout, 2);
    // RFC 5681 §3.1: after a timeout cwnd is one segment, ssthresh max(flight / 2, 2 MSS).
    assert_eq!(stats.cwnd, 1000);
    assert_eq!(stats.ssthresh, 2000);

    // Karn: the ACK of a retransmitted segment gives no sample, and the backed-off RTO stays
    // until one (RFC 6298 §5; see rfc6298_5_backoff_is_kept_until_a_valid_rtt_sample).
    feed(
        &mut conn,
        t0 + ms(1150),
        TcpRepr {
            ack: Some(SND + 500),
            ..PEER
        },
    );
    assert_eq!(conn.stats().srtt, Some(ms(100)));
    assert_eq!(conn.rto(), ms(1200));
    conn.handle_timeout(t0 + ms(2300));
    expect_nothing(&mut conn, t0 + ms(2300));
}

#[test]
fn rtt_is_sampled_from_timestamps_even_for_retransmissions() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), ts_peer());
    assert_eq!(conn.stats().srtt, Some(ms(100)));
    let data = stream(2000);
    conn.send(&data[..1000]).unwrap();
    expect(
        &mut conn,
        t0 + ms(200),
        &[TcpRepr {
            control: Control::Psh,
            payload: &data[..1000],
            options: ts(TS_OFFSET + 200, PEER_TS),
            ..OURS
        }],
    );
    feed(
        &mut conn,
        t0 + ms(250),
        TcpRepr {
            ack: Some(SND + 1000),
            options: ts(PEER_TS + 250, TS_OFFSET + 200),
            ..PEER
        },
    );
    // RFC 6298 §2.3 with R' = 50 ms: RTTVAR = 3/4 * 50 + 1/4 * 50, SRTT = 7/8 * 100 + 1/8 * 50.
    assert_eq!(conn.stats().srtt, Some(Duration::from_micros(93_750)));
    assert_eq!(conn.rto(), Duration::from_micros(293_750));

    conn.send(&data[1000..]).unwrap();
    transmit(&mut conn, t0 + ms(300));
    conn.handle_timeout(t0 + ms(600));
    expect(
        &mut conn,
        t0 + ms(600),
        &[TcpRepr {
            control: Control::Psh,
            seq: SND + 1000,
            payload: &data[1000..],
            options: ts(TS_OFFSET + 600, PEER_TS + 250),
            ..OURS
        }],
    );
    // The echo says which transmission is acknowledged (RFC 7323 §4): 20 ms, not 320 ms.
    feed(
        &mut conn,
        t0 + ms(620),
        TcpRepr {
            ack: Some(SND + 2000),
            options: ts(PEER_TS + 620, TS_OFFSET + 600),
            ..PEER
        },
    );
    assert_eq!(conn.stats().srtt, Some(Duration::from_nanos(84_531_250)));
}

/// Sends 4000 bytes and acknowledges them segment by segment, growing cwnd from 4000 to 8000,
/// then queues and sends 8000 more as eight segments. Returns those bytes (they start at
/// SND + 4000).
fn grow_window_and_send_eight(conn: &mut Connection, t0: Instant) -> Vec<u8> {
    conn.send(&stream(4000)).unwrap();
    assert_eq!(transmit(conn, t0 + ms(200)).len(), 4);
    for k in 1..=4 {
        feed(
            conn,
            t0 + ms(300),
            TcpRepr {
                ack: Some(SND + 1000 * k),
                ..PEER
            },
        );
    }
    expect_nothing(conn, t0 + ms(300));
    assert_eq!(conn.stats().cwnd, 8000);
    let data = stream(8000);
    conn.send(&data).unwrap();
    let sent = transmit(conn, t0 + ms(400));
    let seqs: Vec<SeqNum> = sent.iter().map(|b| parse_ours(b).seq).collect();
    let expected: Vec<SeqNum> = (0..8).map(|k| SND + 4000 + 1000 * k).collect();
    assert_eq!(seqs, expected);
    data
}

#[test]
fn three_duplicate_acks_retransmit_exactly_the_first_segment() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    let data = stream(4000);
    conn.send(&data).unwrap();
    assert_eq!(transmit(&mut conn, t0 + ms(200)).len(), 4);
    // The first segment is lost; the other three each elicit a duplicate ACK.
    let dup = TcpRepr { ..PEER };
    feed(&mut conn, t0 + ms(300), dup);
    expect_nothing(&mut conn, t0 + ms(300));
    feed(&mut conn, t0 + ms(301), dup);
    expect_nothing(&mut conn, t0 + ms(301));
    feed(&mut conn, t0 + ms(302), dup);
    expect(
        &mut conn,
        t0 + ms(302),
        &[TcpRepr {
            payload: &data[..1000],
            ..OURS
        }],
    );
    let stats = conn.stats();
    assert_eq!(stats.dup_acks_in, 3);
    assert_eq!(stats.recoveries, 1);
    assert_eq!(stats.retransmits_fast, 1);
    // RFC 5681 §3.2: ssthresh = max(FlightSize / 2, 2 * SMSS).
    assert_eq!(stats.ssthresh, 2000);
    // The retransmission fixed it: everything is acknowledged.
    feed(
        &mut conn,
        t0 + ms(400),
        TcpRepr {
            ack: Some(SND + 4000),
            ..PEER
        },
    );
    expect_nothing(&mut conn, t0 + ms(400));
    // RFC 6582 §3.2 step 3: cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS).
    assert_eq!(conn.stats().cwnd, 2000);
    assert_eq!(
        conn.poll_timeout(),
        Some(t0 + ms(400) + TcpConfig::default().user_timeout)
    );
}

#[test]
fn newreno_partial_ack_retransmits_the_next_hole_at_once() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    let data = grow_window_and_send_eight(&mut conn, t0);
    let base = SND + 4000;
    // Segments 0 and 3 are lost: six duplicate ACKs arrive.
    let dup = TcpRepr {
        ack: Some(base),
        ..PEER
    };
    for i in 0..2 {
        feed(&mut conn, t0 + ms(500 + i), dup);
        expect_nothing(&mut conn, t0 + ms(500 + i));
    }
    feed(&mut conn, t0 + ms(502), dup);
    expect(
        &mut conn,
        t0 + ms(502),
        &[TcpRepr {
            seq: base,
            payload: &data[..1000],
            ..OURS
        }],
    );
    assert_eq!(conn.stats().ssthresh, 4000);
    assert_eq!(conn.stats().cwnd, 4000);
    for i in 3..6 {
        feed(&mut conn, t0 + ms(500 + i), dup);
        expect_nothing(&mut conn, t0 + ms(500 + i));
    }
    // The retransmission arrives: a partial ACK up to the second hole (RFC 6582 §3.2 step 5).
    feed(
        &mut conn,
        t0 + ms(600),
        TcpRepr {
            ack: Some(base + 3000),
            ..PEER
        },
    );
    expect(
        &mut conn,
        t0 + ms(600),
        &[TcpRepr {
            seq: base + 3000,
            payload: &data[3000..4000],
            ..OURS
        }],
    );
    feed(
        &mut conn,
        t0 + ms(700),
        TcpRepr {
            ack: Some(base + 8000),
            ..PEER
        },
    );
    expect_nothing(&mut conn, t0 + ms(700));
    let stats = conn.stats();
    assert_eq!(stats.recoveries, 1);
    assert_eq!(stats.retransmits_fast, 2);
    assert_eq!(stats.retransmits_timeout, 0);
    assert_eq!(stats.ssthresh, 4000);
    assert_eq!(stats.cwnd, 2000);
}

#[test]
fn sack_recovery_retransmits_only_the_holes() {
    let t0 = Instant::now();
    // RFC 6675's rules on their own: RACK (RFC 8985, on by default) would call segment 3 lost
    // as soon as the later segments of its burst are SACKed in recovery, before IsLost does.
    let rfc6675_only = TcpConfig {
        rack: false,
        tlp: false,
        ..config()
    };
    let mut conn = open(t0, rfc6675_only, sack_peer());
    let data = grow_window_and_send_eight(&mut conn, t0);
    let b = SND + 4000;
    let sacked = |blocks: &[(SeqNum, SeqNum)]| TcpRepr {
        ack: Some(b),
        options: sack(blocks),
        ..PEER
    };
    // Segments 0 and 3 are lost.
    let first = (b + 1000, b + 3000);
    feed(&mut conn, t0 + ms(500), sacked(&[(b + 1000, b + 2000)]));
    expect_nothing(&mut conn, t0 + ms(500));
    feed(&mut conn, t0 + ms(501), sacked(&[first]));
    expect_nothing(&mut conn, t0 + ms(501));
    feed(
        &mut conn,
        t0 + ms(502),
        sacked(&[(b + 4000, b + 5000), first]),
    );
    expect(
        &mut conn,
        t0 + ms(502),
        &[TcpRepr {
            seq: b,
            payload: &data[..1000],
            ..OURS
        }],
    );
    // Segment 3 is not yet lost by RFC 6675's rule (more than 2 MSS SACKed above it) ...
    feed(
        &mut conn,
        t0 + ms(503),
        sacked(&[(b + 4000, b + 6000), first]),
    );
    expect_nothing(&mut conn, t0 + ms(503));
    // ... now it is. With room left in cwnd and nothing SACKed above the last segment, the
    // rescue retransmission (RFC 6675 §4 rule 4) resends that tail too, once.
    feed(
        &mut conn,
        t0 + ms(504),
        sacked(&[(b + 4000, b + 7000), first]),
    );
    expect(
        &mut conn,
        t0 + ms(504),
        &[
            TcpRepr {
                seq: b + 3000,
                payload: &data[3000..4000],
                ..OURS
            },
            TcpRepr {
                seq: b + 7000,
                control: Control::Psh,
                payload: &data[7000..8000],
                ..OURS
            },
        ],
    );
    feed(
        &mut conn,
        t0 + ms(505),
        sacked(&[(b + 4000, b + 8000), first]),
    );
    expect_nothing(&mut conn, t0 + ms(505));
    // The first retransmission arrives: a partial ACK; the second hole is already resent.
    feed(
        &mut conn,
        t0 + ms(600),
        TcpRepr {
            ack: Some(b + 3000),
            options: sack(&[(b + 4000, b + 8000)]),
            ..PEER
        },
    );
    expect_nothing(&mut conn, t0 + ms(600));
    feed(
        &mut conn,
        t0 + ms(601),
        TcpRepr {
            ack: Some(b + 8000),
            ..PEER
        },
    );
    expect_nothing(&mut conn, t0 + ms(601));
    let stats = conn.stats();
    assert_eq!(stats.recoveries, 1);
    assert_eq!(stats.retransmits_fast, 3);
    assert_eq!(stats.ssthresh, 4000);
    // RFC 6937 §3: recovery (with PRR) ends with cwnd = ssthresh, however little the ACK that
    // ended it left in flight.
    assert_eq!(stats.cwnd, 4000);
}

#[test]
fn zero_window_is_probed_with_backoff_while_the_peer_answers() {
    let t0 = Instant::now();
    // Few retries: probes the peer answers must not count against them (RFC 1122 §4.2.2.17).
    let mut conn = open(
        t0,
        TcpConfig {
            data_retries: 2,
            ..config()
        },
        bare_peer(),
    );
    let closed = TcpRepr { window: 0, ..PEER };
    feed(&mut conn, t0 + ms(200), closed);
    let data = stream(100);
    conn.send(&data).unwrap();
    expect_nothing(&mut conn, t0 + ms(200));
    // The persist timer: first probe after one RTO.
    assert_eq!(conn.poll_timeout(), Some(t0 + ms(500)));
    let probe = TcpRepr {
        payload: &data[..1],
        ..OURS
    };
    let mut at = t0 + ms(500);
    let mut interval = ms(300);
    for round in 0..6 {
        conn.handle_timeout(at);
        expect(&mut conn, at, &[probe]);
        feed(&mut conn, at + ms(10), closed);
        expect_nothing(&mut conn, at + ms(10));
        assert_eq!(conn.state(), State::Established, "round {round}");
        if round > 0 {
            interval *= 2;
        }
        assert_eq!(conn.poll_timeout(), Some(at + interval), "round {round}");
        at += interval;
    }
    assert_eq!(
        conn.stats().recoveries,
        0,
        "probe answers are not duplicate ACKs"
    );
    // The window opens and takes the probe byte: the rest follows.
    feed(
        &mut conn,
        at,
        TcpRepr {
            ack: Some(SND + 1),
            window: 1000,
            ..PEER
        },
    );
    expect(
        &mut conn,
        at,
        &[TcpRepr {
            control: Control::Psh,
            seq: SND + 1,
            payload: &data[1..],
            ..OURS
        }],
    );
}

#[test]
fn window_update_resumes_sending_without_a_probe() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    feed(&mut conn, t0 + ms(200), TcpRepr { window: 0, ..PEER });
    let data = stream(100);
    conn.send(&data).unwrap();
    expect_nothing(&mut conn, t0 + ms(200));
    feed(&mut conn, t0 + ms(300), PEER);
    expect(
        &mut conn,
        t0 + ms(300),
        &[TcpRepr {
            control: Control::Psh,
            payload: &data,
            ..OURS
        }],
    );
    assert_eq!(conn.stats().dup_acks_in, 0);
}

#[test]
fn window_scaling_applies_both_ways() {
    let t0 = Instant::now();
    // 1 MiB receive buffer: we announce shift 5. The peer announces shift 3.
    let mut conn = open_with_window(
        t0,
        TcpConfig {
            recv_buffer: 1 << 20,
            ..config()
        },
        TcpOptions {
            window_scale: Some(3),
            ..bare_peer()
        },
        3000,
    );
    conn.set_congestion_control(Box::new(Unlimited));
    let data = stream(6000);
    conn.send(&data).unwrap();
    // RFC 7323 §2.2: the window in the SYN-ACK is not scaled: 3000 bytes.
    let sent = transmit(&mut conn, t0 + ms(200));
    let lens: Vec<usize> = sent.iter().map(|b| parse_ours(b).payload.len()).collect();
    assert_eq!(lens, [1000, 1000, 1000]);
    assert_eq!(parse_ours(&sent[0]).window, 32768, "1 MiB >> 5");
    // Later windows are: 250 << 3 = 2000 bytes.
    feed(
        &mut conn,
        t0 + ms(300),
        TcpRepr {
            ack: Some(SND + 3000),
            window: 250,
            ..PEER
        },
    );
    let sent = transmit(&mut conn, t0 + ms(300));
    let seqs: Vec<SeqNum> = sent.iter().map(|b| parse_ours(b).seq).collect();
    assert_eq!(seqs, [SND + 3000, SND + 4000]);
    // Our window shrinks by what we hold, in units of 32 bytes.
    let payload = stream(2048);
    feed(&mut conn, t0 + ms(310), data_seg(0, &payload[..1024]));
    feed(&mut conn, t0 + ms(311), data_seg(1024, &payload[1024..]));
    let ack = transmit(&mut conn, t0 + ms(311));
    assert_eq!(ack.len(), 1);
    let ack = parse_ours(&ack[0]);
    assert_eq!(ack.ack, Some(RCV + 2048));
    assert_eq!(usize::from(ack.window), ((1usize << 20) - 2048) >> 5);
}

// ==================================================================== more transitions

#[test]
fn timeout_retransmits_one_segment_then_slow_starts() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    let data = stream(4000);
    conn.send(&data).unwrap();
    assert_eq!(transmit(&mut conn, t0 + ms(200)).len(), 4);
    conn.handle_timeout(t0 + ms(500));
    // cwnd is one segment: only the first goes again.
    expect(
        &mut conn,
        t0 + ms(500),
        &[TcpRepr {
            payload: &data[..1000],
            ..OURS
        }],
    );
    assert_eq!(conn.stats().ssthresh, 2000);
    feed(
        &mut conn,
        t0 + ms(600),
        TcpRepr {
            ack: Some(SND + 1000),
            ..PEER
        },
    );
    // Slow start: cwnd 2000, the next two segments follow (go-back-N).
    expect(
        &mut conn,
        t0 + ms(600),
        &[
            TcpRepr {
                seq: SND + 1000,
                payload: &data[1000..2000],
                ..OURS
            },
            TcpRepr {
                seq: SND + 2000,
                payload: &data[2000..3000],
                ..OURS
            },
        ],
    );
    // The originals had arrived after all: a cumulative ACK ends it.
    feed(
        &mut conn,
        t0 + ms(700),
        TcpRepr {
            ack: Some(SND + 4000),
            ..PEER
        },
    );
    expect_nothing(&mut conn, t0 + ms(700));
    assert_eq!(conn.send_queue(), 0);
}

#[test]
fn nagle_holds_a_small_segment_while_data_is_in_flight() {
    let t0 = Instant::now();
    let mut conn = open(
        t0,
        TcpConfig {
            nagle: true,
            ..config()
        },
        bare_peer(),
    );
    conn.send(b"one").unwrap();
    expect(
        &mut conn,
        t0 + ms(200),
        &[TcpRepr {
            control: Control::Psh,
            payload: b"one",
            ..OURS
        }],
    );
    conn.send(b"two").unwrap();
    expect_nothing(&mut conn, t0 + ms(201));
    feed(
        &mut conn,
        t0 + ms(300),
        TcpRepr {
            ack: Some(SND + 3),
            ..PEER
        },
    );
    expect(
        &mut conn,
        t0 + ms(300),
        &[TcpRepr {
            control: Control::Psh,
            seq: SND + 3,
            payload: b"two",
            ..OURS
        }],
    );
}

#[test]
fn writable_once_a_full_send_buffer_drains() {
    let t0 = Instant::now();
    let mut conn = open(
        t0,
        TcpConfig {
            send_buffer: 3000,
            send_buffer_max: 0,
            ..config()
        },
        bare_peer(),
    );
    assert_eq!(conn.send(&stream(5000)), Ok(3000));
    assert_eq!(conn.send(b"more"), Err(IoError::WouldBlock));
    transmit(&mut conn, t0 + ms(200));
    feed(
        &mut conn,
        t0 + ms(300),
        TcpRepr {
            ack: Some(SND + 1000),
            ..PEER
        },
    );
    assert_eq!(events(&mut conn), [ConnEvent::Writable]);
    assert_eq!(conn.send(&stream(5000)), Ok(1000));
}

/// Rounds of a sender that sends all it holds and gets all of it acknowledged `rtts[i]`
/// later, refilling at once; returns the most it held after each refill.
fn buffer_after_rounds(rtts: &[u64]) -> Vec<usize> {
    let t0 = Instant::now();
    let mut conn = open(
        t0,
        TcpConfig {
            send_buffer: 3000,
            send_buffer_max: 12_000,
            ..config()
        },
        bare_peer(),
    );
    let data = stream(20_000);
    assert_eq!(conn.send(&data), Ok(3000));
    let mut now = t0 + ms(200);
    let mut acked = 0;
    let mut held = Vec::new();
    for &rtt in rtts {
        let sent: usize = transmit(&mut conn, now).iter().map(|d| d.len() - 20).sum();
        now += ms(rtt);
        acked += sent;
        feed(
            &mut conn,
            now,
            TcpRepr {
                ack: Some(SND + acked),
                ..PEER
            },
        );
        let _ = conn.send(&data);
        held.push(conn.send_queue());
    }
    held
}

/// The send buffer grows with the delivery rate times the smallest RTT, doubling while it
/// is what limits the sender, up to `send_buffer_max` (Linux's `tcp_sndbuf_expand` doubles
/// it with cwnd).
#[test]
fn a_send_buffer_that_limits_the_sender_grows_to_its_maximum() {
    let held = buffer_after_rounds(&[100; 12]);
    assert!(held.iter().all(|&h| h <= 12_000), "{held:?}");
    assert_eq!(held.last(), Some(&12_000), "{held:?}");
}

/// Round trips ten times the smallest one mean data waits in a queue, not that the buffer
/// is short: a bigger one would only hold more (many connections sharing one device).
#[test]
fn a_send_buffer_behind_a_growing_queue_stays_as_it_is() {
    let mut rtts = vec![10];
    rtts.extend([100; 11]);
    let held = buffer_after_rounds(&rtts);
    assert!(held.iter().all(|&h| h <= 3000), "{held:?}");
}

#[test]
fn sequence_numbers_wrap_around() {
    let t0 = Instant::now();
    let iss = SeqNum(u32::MAX - 499);
    let irs = SeqNum(u32::MAX - 999);
    let mut conn = Connection::connect(
        t0,
        config(),
        TUPLE,
        Initial {
            iss,
            ts_offset: TS_OFFSET,
        },
    );
    transmit(&mut conn, t0);
    let peer = TcpRepr {
        seq: irs + 1,
        ack: Some(iss + 1),
        ..PEER
    };
    feed(
        &mut conn,
        t0 + ms(100),
        TcpRepr {
            control: Control::Syn,
            seq: irs,
            options: sack_peer(),
            ..peer
        },
    );
    transmit(&mut conn, t0 + ms(100));
    // ACKs carry SND.NXT, past the data sent below.
    let ours = TcpRepr {
        seq: iss + 3001,
        ack: Some(irs + 1),
        ..OURS
    };
    // Sending across the wrap.
    let data = stream(3000);
    conn.send(&data).unwrap();
    let sent = transmit(&mut conn, t0 + ms(200));
    let seqs: Vec<SeqNum> = sent.iter().map(|b| parse_ours(b).seq).collect();
    assert_eq!(seqs, [iss + 1, iss + 1001, iss + 2001]);
    assert_eq!(seqs[1], SeqNum(501));
    // Receiving across the wrap, out of order first (SACK block across zero).
    let incoming = stream(2000);
    feed(
        &mut conn,
        t0 + ms(250),
        TcpRepr {
            seq: irs + 1001,
            payload: &incoming[1000..],
            ..peer
        },
    );
    expect(
        &mut conn,
        t0 + ms(250),
        &[TcpRepr {
            options: sack(&[(irs + 1001, irs + 2001)]),
            ..ours
        }],
    );
    feed(
        &mut conn,
        t0 + ms(251),
        TcpRepr {
            payload: &incoming[..1000],
            ..peer
        },
    );
    expect(
        &mut conn,
        t0 + ms(251),
        &[TcpRepr {
            ack: Some(irs + 2001),
            window: 62_000,
            ..ours
        }],
    );
    let mut out = vec![0u8; 2000];
    assert_eq!(conn.recv(&mut out), Ok(2000));
    assert_eq!(out, incoming);
    // Everything we sent is acknowledged with an ACK number past zero.
    feed(
        &mut conn,
        t0 + ms(300),
        TcpRepr {
            seq: irs + 2001,
            ack: Some(iss + 3001),
            ..peer
        },
    );
    assert_eq!(conn.send_queue(), 0);
    assert_eq!(
        conn.poll_timeout(),
        Some(t0 + ms(300) + TcpConfig::default().user_timeout)
    );
}

#[test]
fn sack_evidence_starts_recovery_before_three_duplicate_acks() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), sack_peer());
    let data = stream(4000);
    conn.send(&data).unwrap();
    assert_eq!(transmit(&mut conn, t0 + ms(200)).len(), 4);
    // One (stretch) duplicate ACK SACKs three segments above the first: RFC 6675 IsLost holds.
    feed(
        &mut conn,
        t0 + ms(300),
        TcpRepr {
            options: sack(&[(SND + 1000, SND + 4000)]),
            ..PEER
        },
    );
    expect(
        &mut conn,
        t0 + ms(300),
        &[TcpRepr {
            payload: &data[..1000],
            ..OURS
        }],
    );
    assert_eq!(conn.stats().dup_acks_in, 1);
    assert_eq!(conn.stats().recoveries, 1);
}

#[test]
fn newreno_sends_new_data_as_duplicate_acks_inflate_the_window() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    let data = stream(8000);
    conn.send(&data).unwrap();
    assert_eq!(transmit(&mut conn, t0 + ms(200)).len(), 4);
    let dup = PEER;
    feed(&mut conn, t0 + ms(300), dup);
    feed(&mut conn, t0 + ms(301), dup);
    feed(&mut conn, t0 + ms(302), dup);
    // RFC 5681 §3.2: cwnd = ssthresh + 3 SMSS = 5000 over 4000 in flight: the retransmission
    // and one new segment.
    expect(
        &mut conn,
        t0 + ms(302),
        &[
            TcpRepr {
                payload: &data[..1000],
                ..OURS
            },
            TcpRepr {
                seq: SND + 4000,
                payload: &data[4000..5000],
                ..OURS
            },
        ],
    );
    // Each further duplicate ACK lets one more segment out.
    feed(&mut conn, t0 + ms(303), dup);
    expect(
        &mut conn,
        t0 + ms(303),
        &[TcpRepr {
            seq: SND + 5000,
            payload: &data[5000..6000],
            ..OURS
        }],
    );
}

/// RFC 1122 §4.2.2.17 and RFC 9293 §3.8.6.1: while the peer answers our zero-window probes,
/// the connection stays open however long the window stays closed (past the user timeout),
/// and a probe that times out is not a congestion signal: cwnd and ssthresh are untouched.
#[test]
fn rfc1122_4_2_2_17_answered_probes_keep_the_connection_and_the_congestion_state() {
    let t0 = Instant::now();
    let mut conn = open(
        t0,
        TcpConfig {
            data_retries: 3,
            user_timeout: Duration::from_secs(10),
            ..config()
        },
        bare_peer(),
    );
    // Some data acknowledged first, so cwnd has grown beyond its initial value.
    let data = stream(20_000);
    conn.send(&data[..3000]).unwrap();
    assert_eq!(transmit(&mut conn, t0 + ms(200)).len(), 3);
    let closed = TcpRepr {
        ack: Some(SND + 3000),
        window: 0,
        ..PEER
    };
    feed(&mut conn, t0 + ms(300), closed);
    let before = conn.stats();
    conn.send(&data[3000..]).unwrap();
    expect_nothing(&mut conn, t0 + ms(300));
    let mut now = t0 + ms(300);
    let mut probes = 0;
    // Two minutes of a closed window, twelve times the user timeout.
    while now < t0 + Duration::from_secs(120) {
        let Some(at) = conn.poll_timeout() else {
            panic!("no timer while data waits behind a closed window");
        };
        now = at;
        conn.handle_timeout(now);
        for bytes in transmit(&mut conn, now) {
            let seg = parse_ours(&bytes);
            assert_eq!(
                (seg.seq, seg.payload.len()),
                (SND + 3000, 1),
                "a one-byte probe"
            );
            probes += 1;
        }
        feed(&mut conn, now + ms(10), closed);
        assert_eq!(conn.state(), State::Established, "after {probes} probes");
    }
    assert!(probes >= 5, "{probes} probes in two minutes");
    let after = conn.stats();
    assert_eq!((after.cwnd, after.ssthresh), (before.cwnd, before.ssthresh));
    assert_eq!(
        after.timeouts, before.timeouts,
        "probes are not retransmission timeouts"
    );
}

/// RFC 6582 §3.2 (steps 1, 2 and 6) and RFC 6675 §5.1: after a retransmission timeout, the
/// duplicate ACKs that the flight sent before it still brings back are not a new loss: no fast
/// recovery starts until the cumulative ACK passes what was outstanding at the timeout, so cwnd
/// stays at one segment instead of jumping to half the old flight and bursting.
#[test]
fn rfc6582_3_2_no_second_recovery_on_stale_duplicate_acks_after_rto() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    grow_window_and_send_eight(&mut conn, t0);
    // Nothing comes back: the RTO fires and the first unacknowledged segment goes again.
    let rto_at = conn.poll_timeout().expect("the retransmission timer runs");
    conn.handle_timeout(rto_at);
    let resent = transmit(&mut conn, rto_at);
    assert_eq!(resent.len(), 1);
    assert_eq!(parse_ours(&resent[0]).seq, SND + 4000);
    assert_eq!(conn.stats().cwnd, 1000);
    // Late duplicate ACKs from the old flight (segments 2..8 arrived, the first did not).
    let stale = TcpRepr {
        ack: Some(SND + 4000),
        ..PEER
    };
    for i in 0..7u64 {
        feed(&mut conn, rto_at + ms(1 + i), stale);
        expect_nothing(&mut conn, rto_at + ms(1 + i));
    }
    let stats = conn.stats();
    assert_eq!(
        stats.recoveries, 0,
        "no fast recovery on stale duplicate ACKs"
    );
    assert_eq!(
        stats.cwnd, 1000,
        "cwnd stays at one segment after the timeout"
    );
    // The retransmission arrives; slow start resumes from there.
    feed(
        &mut conn,
        rto_at + ms(100),
        TcpRepr {
            ack: Some(SND + 12_000),
            ..PEER
        },
    );
    assert_eq!(conn.stats().recoveries, 0);
}

/// RFC 6298 §5 with Karn's algorithm (§3): an ACK for a retransmitted segment gives no RTT
/// sample, so the backed-off RTO stays until a segment sent once is acknowledged; only a valid
/// sample collapses the backoff (as Linux's tcp_ack_update_rtt does).
#[test]
fn rfc6298_5_backoff_is_kept_until_a_valid_rtt_sample() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    let data = stream(2000);
    conn.send(&data).unwrap();
    assert_eq!(transmit(&mut conn, t0 + ms(200)).len(), 2);
    let rto = conn.rto();
    assert_eq!(conn.poll_timeout(), Some(t0 + ms(200) + rto));
    conn.handle_timeout(t0 + ms(200) + rto);
    let at = t0 + ms(200) + rto;
    assert_eq!(transmit(&mut conn, at).len(), 1, "the first segment again");
    // Its ACK is ambiguous (Karn): no sample, so the timer for the rest keeps the backoff.
    feed(
        &mut conn,
        at + ms(100),
        TcpRepr {
            ack: Some(SND + 1000),
            ..PEER
        },
    );
    transmit(&mut conn, at + ms(100));
    assert_eq!(conn.rto(), rto * 2, "backoff kept without a sample");
    // A segment sent once and acknowledged is a valid sample: the backoff ends.
    conn.send(&data[..500]).unwrap();
    let sent_at = at + ms(150);
    transmit(&mut conn, sent_at);
    feed(
        &mut conn,
        sent_at + ms(100),
        TcpRepr {
            ack: Some(SND + 2500),
            ..PEER
        },
    );
    assert!(conn.rto() < rto * 2, "a valid sample collapses the backoff");
}
