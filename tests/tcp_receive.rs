//! Segment-by-segment tests of receiving data: delayed and immediate ACKs, out-of-order data and
//! SACK/D-SACK, the receive window.
//!
//! Fixtures and conventions: `tests/common/conn.rs`.

mod common;

use std::time::Instant;

use tunstack::tcp::{ConnEvent, IoError, TcpConfig};
use tunstack::wire::{Control, TcpOptions, TcpRepr};

use common::conn::*;

// ==================================================================== receiving data

#[test]
fn in_order_segment_is_delivered_and_its_ack_delayed_40ms() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    let data = stream(1000);
    feed(&mut conn, t0 + ms(200), data_seg(0, &data));
    assert_eq!(events(&mut conn), [ConnEvent::Readable]);
    expect_nothing(&mut conn, t0 + ms(200));
    assert_eq!(conn.poll_timeout(), Some(t0 + ms(240)));
    conn.handle_timeout(t0 + ms(239));
    expect_nothing(&mut conn, t0 + ms(239));
    conn.handle_timeout(t0 + ms(240));
    expect(
        &mut conn,
        t0 + ms(240),
        &[TcpRepr {
            ack: Some(RCV + 1000),
            window: 63_000,
            ..OURS
        }],
    );
    let mut out = [0u8; 2000];
    assert_eq!(conn.recv(&mut out), Ok(1000));
    assert_eq!(&out[..1000], &data[..]);
    assert_eq!(conn.recv(&mut out), Err(IoError::WouldBlock));
    // Reading 1000 bytes of a 64000-byte window is no reason for a window update.
    expect_nothing(&mut conn, t0 + ms(250));
}

#[test]
fn second_segment_is_acknowledged_at_once() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    let data = stream(2000);
    feed(&mut conn, t0 + ms(200), data_seg(0, &data[..1000]));
    expect_nothing(&mut conn, t0 + ms(200));
    feed(&mut conn, t0 + ms(205), data_seg(1000, &data[1000..]));
    expect(
        &mut conn,
        t0 + ms(205),
        &[TcpRepr {
            ack: Some(RCV + 2000),
            window: 62_000,
            ..OURS
        }],
    );
    // The delayed-ACK timer went with the ACK.
    conn.handle_timeout(t0 + ms(240));
    expect_nothing(&mut conn, t0 + ms(240));
    assert_eq!(events(&mut conn), [ConnEvent::Readable]);
}

#[test]
fn in_order_acks_wait_for_the_batch_until_the_stretch_limit() {
    let t0 = Instant::now();
    let config = TcpConfig {
        ack_stretch: 4,
        ..config()
    };
    let mut conn = open(t0, config, bare_peer());
    // Full-sized: our MSS, no options.
    let data = stream(4 * 1460);
    for i in 0..3 {
        feed(
            &mut conn,
            t0 + ms(200),
            data_seg(i * 1460, &data[i * 1460..(i + 1) * 1460]),
        );
        // Owed from the second segment on, but nothing forces the reader to stop for it.
        assert!(!conn.ack_due(), "segment {i} interrupts the batch");
    }
    feed(
        &mut conn,
        t0 + ms(200),
        data_seg(3 * 1460, &data[3 * 1460..]),
    );
    assert!(
        conn.ack_due(),
        "four segments unacknowledged: the ACK must go now"
    );
    expect(
        &mut conn,
        t0 + ms(200),
        &[TcpRepr {
            ack: Some(RCV + 4 * 1460),
            window: 64_000 - 4 * 1460,
            ..OURS
        }],
    );
    assert!(!conn.ack_due());
}

#[test]
fn a_super_segment_of_two_full_segments_is_acknowledged_without_delay() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), ts_peer());
    // With timestamps a full segment carries 1448 bytes; offloads merged two of them.
    let data = stream(2 * 1448);
    feed(
        &mut conn,
        t0 + ms(200),
        TcpRepr {
            payload: &data,
            options: ts(PEER_TS + 200, TS_OFFSET + 100),
            ..PEER
        },
    );
    let sent = transmit(&mut conn, t0 + ms(200));
    assert_eq!(
        sent.len(),
        1,
        "two segments' worth is acknowledged at once, not in 40 ms"
    );
    assert_eq!(parse_ours(&sent[0]).ack, Some(RCV + 2 * 1448));
}

/// RFC 5681 §4.2 with SACK compression as Linux does it (`tcp_comp_sack`): the first DupThresh
/// duplicate ACKs per RCV.NXT go at once; past them, segments that only lengthen a reported
/// block share an ACK per `sack_compression` (4 here) of them or wait for the batch's ACK; a new
/// hole, a filled one, and the first out-of-order segment after RCV.NXT moves are news again.
#[test]
fn sack_compression_past_three_duplicate_acks_is_bounded() {
    let t0 = Instant::now();
    let config = TcpConfig {
        sack_compression: 4,
        ..config()
    };
    let mut conn = open(t0, config, sack_peer());
    let data = stream(12_000);
    let seg = |i: usize| data_seg(i * 1000, &data[i * 1000..(i + 1) * 1000]);
    // A hole at 0..1000; the next three arrivals each get a duplicate ACK at once.
    for i in 1..4 {
        feed(&mut conn, t0 + ms(200), seg(i));
        assert!(conn.ack_due(), "duplicate ACK {i} must go at once");
        expect(
            &mut conn,
            t0 + ms(200),
            &[TcpRepr {
                options: sack(&[(RCV + 1000, RCV + (i + 1) * 1000)]),
                ..OURS
            }],
        );
    }
    // The next three only lengthen the block: they wait; the fourth brings their ACK.
    for i in 4..7 {
        feed(&mut conn, t0 + ms(201), seg(i));
        assert!(!conn.ack_due(), "segment {i} waits for the batch's ACK");
    }
    feed(&mut conn, t0 + ms(201), seg(7));
    assert!(conn.ack_due(), "four compressed segments bring an ACK");
    expect(
        &mut conn,
        t0 + ms(201),
        &[TcpRepr {
            options: sack(&[(RCV + 1000, RCV + 8000)]),
            ..OURS
        }],
    );
    // A second hole (8000..9000) is news.
    feed(&mut conn, t0 + ms(202), seg(9));
    assert!(conn.ack_due(), "a new hole");
    transmit(&mut conn, t0 + ms(202));
    // Filling the first hole moves RCV.NXT, with the second still open.
    feed(&mut conn, t0 + ms(203), seg(0));
    assert!(conn.ack_due(), "a filled hole");
    transmit(&mut conn, t0 + ms(203));
    // For the new RCV.NXT, the count of duplicate ACKs starts again.
    feed(&mut conn, t0 + ms(204), seg(10));
    assert!(
        conn.ack_due(),
        "the first out-of-order segment for the new RCV.NXT"
    );
}

/// A receive buffer that grows because loss filled the window past a hole
/// (`recv_buffer_max`) offers the larger window at once, even where SACK compression would hold
/// the ACK back: the sender stopped at the old edge.
#[test]
fn a_window_grown_under_loss_is_offered_at_once() {
    let t0 = Instant::now();
    let config = TcpConfig {
        recv_buffer: 8000,
        recv_buffer_max: 32_000,
        window_scaling: false,
        ..config()
    };
    let mut conn = open(t0, config, sack_peer());
    let data = stream(8000);
    let seg = |i: usize| data_seg(i * 1000, &data[i * 1000..(i + 1) * 1000]);
    // A hole at 0..1000; three immediate duplicate ACKs, then two held back.
    for i in 1..4 {
        feed(&mut conn, t0 + ms(200), seg(i));
        assert!(conn.ack_due());
        transmit(&mut conn, t0 + ms(200));
    }
    for i in 4..6 {
        feed(&mut conn, t0 + ms(200), seg(i));
        assert!(!conn.ack_due(), "segment {i} is compressed");
    }
    // This one ends within a segment of the 8000-byte edge: the buffer doubles.
    feed(&mut conn, t0 + ms(200), seg(6));
    assert!(conn.ack_due(), "the grown window goes out at once");
    let sent = transmit(&mut conn, t0 + ms(200));
    assert_eq!(sent.len(), 1);
    assert_eq!(parse_ours(&sent[0]).window, 16_000);
}

#[test]
fn every_out_of_order_segment_interrupts_the_batch_without_sack() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    let data = stream(3000);
    feed(&mut conn, t0 + ms(200), data_seg(1000, &data[1000..2000]));
    assert!(conn.ack_due());
    expect(&mut conn, t0 + ms(200), &[OURS]);
    // The sender counts duplicate ACKs: each one matters.
    feed(&mut conn, t0 + ms(201), data_seg(2000, &data[2000..]));
    assert!(conn.ack_due());
    expect(&mut conn, t0 + ms(201), &[OURS]);
}

#[test]
fn out_of_order_segment_gets_immediate_ack_with_sack_then_hole_fill_too() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), sack_peer());
    let data = stream(3000);
    feed(&mut conn, t0 + ms(200), data_seg(1000, &data[1000..2000]));
    assert!(events(&mut conn).is_empty(), "nothing readable yet");
    expect(
        &mut conn,
        t0 + ms(200),
        &[TcpRepr {
            options: sack(&[(RCV + 1000, RCV + 2000)]),
            ..OURS
        }],
    );
    // A second island: the most recent block comes first (RFC 2018 §4).
    feed(&mut conn, t0 + ms(201), data_seg(2500, &data[2500..3000]));
    expect(
        &mut conn,
        t0 + ms(201),
        &[TcpRepr {
            options: sack(&[(RCV + 2500, RCV + 3000), (RCV + 1000, RCV + 2000)]),
            ..OURS
        }],
    );
    // Filling the first hole is acknowledged at once (RFC 5681 §4.2).
    feed(&mut conn, t0 + ms(202), data_seg(0, &data[..1000]));
    assert_eq!(events(&mut conn), [ConnEvent::Readable]);
    expect(
        &mut conn,
        t0 + ms(202),
        &[TcpRepr {
            ack: Some(RCV + 2000),
            window: 62_000,
            options: sack(&[(RCV + 2500, RCV + 3000)]),
            ..OURS
        }],
    );
    feed(&mut conn, t0 + ms(203), data_seg(2000, &data[2000..2500]));
    expect(
        &mut conn,
        t0 + ms(203),
        &[TcpRepr {
            ack: Some(RCV + 3000),
            window: 61_000,
            ..OURS
        }],
    );
    let mut out = vec![0u8; 4000];
    assert_eq!(conn.recv(&mut out), Ok(3000));
    assert_eq!(&out[..3000], &data[..]);
    assert_eq!(conn.stats().out_of_order_in, 2);
}

#[test]
fn out_of_order_segment_without_sack_gets_plain_duplicate_ack() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    let data = stream(2000);
    feed(&mut conn, t0 + ms(200), data_seg(1000, &data[1000..]));
    expect(&mut conn, t0 + ms(200), &[OURS]);
}

#[test]
fn duplicate_segment_gets_immediate_ack() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    let data = stream(1000);
    feed(&mut conn, t0 + ms(200), data_seg(0, &data));
    expect_nothing(&mut conn, t0 + ms(200));
    feed(&mut conn, t0 + ms(210), data_seg(0, &data));
    let ack = TcpRepr {
        ack: Some(RCV + 1000),
        window: 63_000,
        ..OURS
    };
    expect(&mut conn, t0 + ms(210), &[ack]);
    // A segment overlapping old and new data: the new part is kept and ACKed at once.
    let more = stream(1500);
    feed(&mut conn, t0 + ms(220), data_seg(500, &more[500..1500]));
    expect(
        &mut conn,
        t0 + ms(220),
        &[TcpRepr {
            ack: Some(RCV + 1500),
            window: 62_500,
            ..OURS
        }],
    );
    assert_eq!(conn.recv_queue(), 1500);
}

#[test]
fn data_beyond_the_window_is_trimmed_and_zero_window_reopens_on_read() {
    let t0 = Instant::now();
    let mut conn = open(
        t0,
        TcpConfig {
            recv_buffer: 2000,
            // So that the first 1500-byte segment is one full segment, not more.
            mss: 1500,
            ..config()
        },
        bare_peer(),
    );
    let data = stream(3000);
    feed(&mut conn, t0 + ms(200), data_seg(0, &data[..1500]));
    expect_nothing(&mut conn, t0 + ms(200));
    // Only 500 of these 1000 bytes fit the window.
    feed(&mut conn, t0 + ms(201), data_seg(1500, &data[1500..2500]));
    let zero = TcpRepr {
        ack: Some(RCV + 2000),
        window: 0,
        ..OURS
    };
    expect(&mut conn, t0 + ms(201), &[zero]);
    assert_eq!(conn.recv_queue(), 2000);
    // A segment entirely beyond the (zero) window is answered with an ACK and dropped.
    feed(&mut conn, t0 + ms(202), data_seg(2000, &data[2000..2100]));
    expect(&mut conn, t0 + ms(202), &[zero]);
    assert_eq!(conn.recv_queue(), 2000);

    // Receiver SWS avoidance: 500 free bytes are not worth announcing (< min(buf/2, MSS)).
    let mut out = [0u8; 2000];
    assert_eq!(conn.recv(&mut out[..500]), Ok(500));
    expect_nothing(&mut conn, t0 + ms(300));
    assert_eq!(conn.recv(&mut out[500..1000]), Ok(500));
    expect(
        &mut conn,
        t0 + ms(301),
        &[TcpRepr {
            ack: Some(RCV + 2000),
            window: 1000,
            ..OURS
        }],
    );
    assert_eq!(conn.recv(&mut out[1000..]), Ok(1000));
    assert_eq!(&out[..], &data[..2000]);
    expect(
        &mut conn,
        t0 + ms(302),
        &[TcpRepr {
            ack: Some(RCV + 2000),
            window: 2000,
            ..OURS
        }],
    );
}

#[test]
fn zero_window_probe_from_the_peer_is_acknowledged_not_accepted() {
    let t0 = Instant::now();
    let mut conn = open(
        t0,
        TcpConfig {
            recv_buffer: 1000,
            ..config()
        },
        bare_peer(),
    );
    let data = stream(1001);
    feed(&mut conn, t0 + ms(200), data_seg(0, &data[..1000]));
    expect_nothing(&mut conn, t0 + ms(200));
    let zero = TcpRepr {
        ack: Some(RCV + 1000),
        window: 0,
        ..OURS
    };
    // Filling the window makes no second segment, so the ACK waits for the timer.
    conn.handle_timeout(t0 + ms(240));
    expect(&mut conn, t0 + ms(240), &[zero]);
    feed(&mut conn, t0 + ms(500), data_seg(1000, &data[1000..]));
    expect(&mut conn, t0 + ms(500), &[zero]);
    assert_eq!(conn.recv_queue(), 1000);
}

// ==================================================================== more transitions

#[test]
fn segment_without_ack_is_dropped() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    feed(
        &mut conn,
        t0 + ms(200),
        TcpRepr {
            ack: None,
            payload: b"data",
            ..PEER
        },
    );
    assert_eq!(conn.recv_queue(), 0);
    expect_nothing(&mut conn, t0 + ms(200));
}

#[test]
fn delayed_ack_rides_on_outgoing_data() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), bare_peer());
    feed(&mut conn, t0 + ms(200), data_seg(0, b"question"));
    expect_nothing(&mut conn, t0 + ms(200));
    conn.send(b"answer").unwrap();
    expect(
        &mut conn,
        t0 + ms(210),
        &[TcpRepr {
            control: Control::Psh,
            ack: Some(RCV + 8),
            window: 63_992,
            payload: b"answer",
            ..OURS
        }],
    );
    // No separate ACK when the delayed-ACK timer would have fired.
    conn.handle_timeout(t0 + ms(240));
    expect_nothing(&mut conn, t0 + ms(240));
}

#[test]
fn scaled_zero_window_reopens_when_the_application_reads() {
    let t0 = Instant::now();
    // 64 KiB + 1 needs shift 1; the window is announced in units of 2 bytes.
    let buffer = 65_536;
    let mut conn = open(
        t0,
        TcpConfig {
            recv_buffer: buffer,
            ..config()
        },
        TcpOptions {
            window_scale: Some(0),
            ..bare_peer()
        },
    );
    let data = stream(buffer);
    for (k, chunk) in data.chunks(1000).enumerate() {
        feed(&mut conn, t0 + ms(200), data_seg(k * 1000, chunk));
    }
    let acks = transmit(&mut conn, t0 + ms(200));
    let last = parse_ours(acks.last().unwrap());
    assert_eq!((last.ack, last.window), (Some(RCV + buffer), 0));
    let mut out = vec![0u8; 3000];
    // 500 bytes free is below min(buffer / 2, Eff.snd.MSS), the MSS being 536 as the peer sent
    // no MSS option (RFC 9293 §3.7.1): no update yet.
    assert_eq!(conn.recv(&mut out[..500]), Ok(500));
    expect_nothing(&mut conn, t0 + ms(300));
    assert_eq!(conn.recv(&mut out[500..]), Ok(2500));
    expect(
        &mut conn,
        t0 + ms(301),
        &[TcpRepr {
            ack: Some(RCV + buffer),
            window: 1500,
            ..OURS
        }],
    );
}

/// RFC 2883 §4: data that arrives a second time is reported in a D-SACK block, the first block
/// of the ACK it triggers, whether it lies below RCV.NXT or in an island we hold; the SACK block
/// of that island follows it.
#[test]
fn rfc2883_4_duplicate_data_is_reported_in_a_dsack_block() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), sack_peer());
    let data = stream(3000);
    feed(&mut conn, t0 + ms(200), data_seg(0, &data[..1000]));
    expect_nothing(&mut conn, t0 + ms(200));
    feed(&mut conn, t0 + ms(210), data_seg(0, &data[..1000]));
    let below_rcv_nxt = TcpRepr {
        ack: Some(RCV + 1000),
        window: 63_000,
        options: sack(&[(RCV, RCV + 1000)]),
        ..OURS
    };
    expect(&mut conn, t0 + ms(210), &[below_rcv_nxt]);
    feed(&mut conn, t0 + ms(220), data_seg(2000, &data[2000..]));
    let island = sack(&[(RCV + 2000, RCV + 3000)]);
    let dup_ack = TcpRepr {
        ack: Some(RCV + 1000),
        window: 63_000,
        options: island,
        ..OURS
    };
    expect(&mut conn, t0 + ms(220), &[dup_ack]);
    feed(&mut conn, t0 + ms(230), data_seg(2000, &data[2000..2500]));
    expect(
        &mut conn,
        t0 + ms(230),
        &[TcpRepr {
            options: sack(&[(RCV + 2000, RCV + 2500), (RCV + 2000, RCV + 3000)]),
            ..dup_ack
        }],
    );
    // Reported once: the next ACK carries only the SACK block.
    feed(&mut conn, t0 + ms(240), data_seg(2000, &data[2000..2000]));
    feed(&mut conn, t0 + ms(240), data_seg(1500, &data[1500..1600]));
    expect(
        &mut conn,
        t0 + ms(240),
        &[TcpRepr {
            options: sack(&[(RCV + 1500, RCV + 1600), (RCV + 2000, RCV + 3000)]),
            ..dup_ack
        }],
    );
}

/// RFC 2018 §4: the first SACK block reports the island holding the segment that triggered
/// the ACK, however many islands there are (all of them are kept: none of the data that
/// arrived inside the window is thrown away).
#[test]
fn rfc2018_4_first_block_is_the_triggering_segments_island_among_many() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), sack_peer());
    let data = stream(60_000);
    // 40 islands of 500 bytes with 1000-byte holes between them.
    for i in 0..40 {
        let at = 1000 + i * 1500;
        feed(&mut conn, t0 + ms(200), data_seg(at, &data[at..at + 500]));
        transmit(&mut conn, t0 + ms(200));
    }
    let at = 1000 + 7 * 1500 + 500;
    feed(&mut conn, t0 + ms(201), data_seg(at, &data[at..at + 100]));
    let sent = transmit(&mut conn, t0 + ms(201));
    let ack = parse_ours(sent.last().expect("an ACK"));
    let first = ack.options.sack_blocks().next().expect("a SACK block");
    assert_eq!(
        (first.left, first.right),
        (RCV + (1000 + 7 * 1500), RCV + (at + 100))
    );
    // Filling every hole delivers everything that was held.
    for i in 0..40 {
        let at = i * 1500;
        feed(&mut conn, t0 + ms(202), data_seg(at, &data[at..at + 1000]));
    }
    let mut out = vec![0u8; 60_000];
    assert_eq!(conn.recv(&mut out), Ok(60_000));
    assert_eq!(out, data);
}

/// RFC 9293 §3.8.6.2.1 and RFC 7323 §2.3 / App. F: with a scaled window and an application
/// that does not read, every byte the peer sends inside an edge we advertised is accepted, no
/// advertised edge ever passes the end of the buffer (the window is rounded down to the scale
/// unit, not up), and a full buffer is announced as a true zero window.
#[test]
fn rfc7323_2_3_window_rounds_down_and_never_promises_more_than_the_buffer() {
    let t0 = Instant::now();
    let capacity = 1_000_003;
    let cfg = TcpConfig {
        recv_buffer: capacity,
        ..config()
    };
    let peer = TcpOptions {
        window_scale: Some(0),
        ..NO_OPTIONS
    };
    let mut conn = open(t0, cfg, peer);
    let shift = 4; // 1_000_003 >> 4 fits the 16-bit field
    let buffer_end = RCV + capacity;
    let mut promise = RCV + 65_535; // the handshake ACK's (64-KiB-capped) window, at least
    let mut sent = 0usize;
    let mut last_window = None;
    let data = vec![0x5a; 1001];
    for step in 0..2_000u64 {
        let now = t0 + ms(200 + step * 50);
        let fired = run_until(&mut conn, now)
            .into_iter()
            .map(|(_, bytes)| bytes);
        for ack in fired.chain(transmit(&mut conn, now)).collect::<Vec<_>>() {
            let ack = parse_ours(&ack);
            let edge = ack.ack.unwrap() + (usize::from(ack.window) << shift);
            assert!(
                edge.before_eq(buffer_end),
                "step {step}: advertised edge {edge:?} is past the buffer's end {buffer_end:?}"
            );
            if edge.after(promise) {
                promise = edge;
            }
            last_window = Some(ack.window);
        }
        let room = promise.distance_from(RCV + sent);
        if room == 0 {
            break;
        }
        let len = room.min(data.len());
        feed(&mut conn, now, data_seg(sent, &data[..len]));
        sent += len;
        assert_eq!(
            conn.recv_queue(),
            sent,
            "step {step}: data inside our window was dropped"
        );
    }
    for (_, ack) in run_until(&mut conn, t0 + ms(200_000)) {
        last_window = Some(parse_ours(&ack).window);
    }
    assert!(
        capacity - sent < 1 << shift,
        "the window closed early: {sent} of {capacity}"
    );
    assert_eq!(
        last_window,
        Some(0),
        "a full buffer must show a zero window"
    );
}

/// RFC 9293 §3.10.7.4: with our receive window closed no data is acceptable, but the ACK field
/// of a segment at RCV.NXT is: what it acknowledges of ours is taken, and the text is dropped
/// and answered with the closed window.
#[test]
fn rfc9293_3_10_7_4_a_zero_window_still_takes_the_ack_field() {
    let t0 = Instant::now();
    let mut conn = open(
        t0,
        TcpConfig {
            recv_buffer: 2000,
            ..config()
        },
        bare_peer(),
    );
    let theirs = stream(3000);
    feed(&mut conn, t0 + ms(200), data_seg(0, &theirs[..2000]));
    transmit(&mut conn, t0 + ms(200));
    let ours = stream(500);
    conn.send(&ours).unwrap();
    assert_eq!(transmit(&mut conn, t0 + ms(210)).len(), 1);
    assert_eq!(conn.send_queue(), 500);
    // The peer probes our closed window with one byte, acknowledging our 500.
    feed(
        &mut conn,
        t0 + ms(300),
        TcpRepr {
            seq: RCV + 2000,
            ack: Some(SND + 500),
            payload: &theirs[2000..2001],
            ..PEER
        },
    );
    assert_eq!(conn.send_queue(), 0, "the ACK field was taken");
    assert_eq!(conn.recv_queue(), 2000, "the text was not");
    expect(
        &mut conn,
        t0 + ms(300),
        &[TcpRepr {
            seq: SND + 500,
            ack: Some(RCV + 2000),
            window: 0,
            ..OURS
        }],
    );
}
