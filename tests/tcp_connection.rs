//! Segment-by-segment tests of the TCP state machine through its public API.
//!
//! Every test feeds single segments into a `Connection` (emitted to bytes and parsed back, so
//! the wire format is exercised too) and asserts exactly which segments `poll_transmit` writes.
//! Time is a literal offset from one `t0` per test: the code under test never reads a clock.
//!
//! Conventions: our side is `LOCAL` with ISS `ISS` and timestamp clock `TS_OFFSET + ms since
//! t0`; the peer is `REMOTE` with ISS `IRS`. `open` completes an active open whose SYN-ACK
//! arrives at t0 + 100 ms, so the first RTT sample is 100 ms and the RTO 300 ms.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use tunstack::ipv4::IcmpErrorKind;
use tunstack::stack::{Stack, StackConfig};
use tunstack::tcp::congestion::Unlimited;
use tunstack::tcp::{
    ConnError, ConnEvent, Connection, FourTuple, Initial, IoError, State, TcpConfig,
};
use tunstack::wire::checksum;
use tunstack::wire::tcp::MAX_SACK_BLOCKS;
use tunstack::wire::{Control, SackBlock, SeqNum, TcpOptions, TcpRepr, Timestamps};

const LOCAL_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const REMOTE_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const LOCAL_PORT: u16 = 49152;
const REMOTE_PORT: u16 = 80;
const LOCAL: SocketAddrV4 = SocketAddrV4::new(LOCAL_IP, LOCAL_PORT);
const REMOTE: SocketAddrV4 = SocketAddrV4::new(REMOTE_IP, REMOTE_PORT);
const TUPLE: FourTuple = FourTuple {
    local: LOCAL,
    remote: REMOTE,
};

/// Our initial sequence number.
const ISS: SeqNum = SeqNum(10_000);
/// The peer's initial sequence number.
const IRS: SeqNum = SeqNum(50_000);
/// Our first data byte's sequence number.
const SND: SeqNum = SeqNum(ISS.0 + 1);
/// The peer's first data byte's sequence number.
const RCV: SeqNum = SeqNum(IRS.0 + 1);
/// Our TSval is this plus the milliseconds since t0 (never 0, which means "no echo").
const TS_OFFSET: u32 = 100;
const INITIAL: Initial = Initial {
    iss: ISS,
    ts_offset: TS_OFFSET,
};
/// The peer's TSval in its SYN or SYN-ACK.
const PEER_TS: u32 = 7000;

const NO_OPTIONS: TcpOptions = TcpOptions {
    mss: None,
    window_scale: None,
    sack_permitted: false,
    timestamps: None,
    sack_blocks: [None; MAX_SACK_BLOCKS],
};

/// Template for segments the peer sends.
const PEER: TcpRepr<'static> = TcpRepr {
    src_port: REMOTE_PORT,
    dst_port: LOCAL_PORT,
    control: Control::None,
    seq: RCV,
    ack: Some(SND),
    window: 65535,
    options: NO_OPTIONS,
    payload: &[],
};

/// Template for segments we expect from the connection.
const OURS: TcpRepr<'static> = TcpRepr {
    src_port: LOCAL_PORT,
    dst_port: REMOTE_PORT,
    control: Control::None,
    seq: SND,
    ack: Some(RCV),
    window: 64_000,
    options: NO_OPTIONS,
    payload: &[],
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The configuration most tests use: a 64000-byte receive buffer (no window scaling needed,
/// so window fields are bytes).
fn config() -> TcpConfig {
    TcpConfig {
        recv_buffer: 64_000,
        send_buffer: 64_000,
        ..TcpConfig::default()
    }
}

fn ts(value: u32, echo: u32) -> TcpOptions {
    TcpOptions {
        timestamps: Some(Timestamps { value, echo }),
        ..NO_OPTIONS
    }
}

fn sack(blocks: &[(SeqNum, SeqNum)]) -> TcpOptions {
    let mut options = NO_OPTIONS;
    for (slot, &(left, right)) in options.sack_blocks.iter_mut().zip(blocks) {
        *slot = Some(SackBlock { left, right });
    }
    options
}

/// A peer that announces MSS 1000 and nothing else: no scaling, SACK or timestamps.
fn bare_peer() -> TcpOptions {
    TcpOptions {
        mss: Some(1000),
        ..NO_OPTIONS
    }
}

/// MSS 1000 and SACK-permitted.
fn sack_peer() -> TcpOptions {
    TcpOptions {
        sack_permitted: true,
        ..bare_peer()
    }
}

/// MSS 1460, SACK-permitted and timestamps, echoing our SYN's TSval (sent at t0).
fn ts_peer() -> TcpOptions {
    TcpOptions {
        mss: Some(1460),
        sack_permitted: true,
        ..ts(PEER_TS, TS_OFFSET)
    }
}

/// A recognisable byte stream.
fn stream(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Emits `seg` as the peer would, parses it back and hands it to the connection.
fn feed(conn: &mut Connection, now: Instant, seg: TcpRepr) {
    let mut buf = vec![0u8; 100 + seg.payload.len()];
    let len = seg.emit(REMOTE_IP, LOCAL_IP, &mut buf);
    let parsed = TcpRepr::parse(REMOTE_IP, LOCAL_IP, &buf[..len]).expect("test segment parses");
    assert_eq!(parsed, seg, "test segment survives the wire");
    conn.handle_segment(now, &parsed);
}

/// Every segment the connection has to send now, as bytes.
fn transmit(conn: &mut Connection, now: Instant) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 4096];
    while let Some(len) = conn.poll_transmit(now, &mut buf) {
        out.push(buf[..len].to_vec());
        assert!(out.len() < 1000, "poll_transmit never returns None");
    }
    out
}

/// Parses what we sent, checking the checksum with our address as the source.
fn parse_ours(bytes: &[u8]) -> TcpRepr<'_> {
    TcpRepr::parse(LOCAL_IP, REMOTE_IP, bytes).expect("our segment parses, checksum included")
}

/// Asserts that exactly `expected` goes out now, in this order.
fn expect(conn: &mut Connection, now: Instant, expected: &[TcpRepr]) {
    let sent = transmit(conn, now);
    let got: Vec<TcpRepr> = sent.iter().map(|b| parse_ours(b)).collect();
    assert_eq!(got, expected);
}

fn expect_nothing(conn: &mut Connection, now: Instant) {
    expect(conn, now, &[]);
}

fn events(conn: &mut Connection) -> Vec<ConnEvent> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

/// Fires timers in order up to and including `until`, collecting what goes out (time, bytes).
fn run_until(conn: &mut Connection, until: Instant) -> Vec<(Instant, Vec<u8>)> {
    let mut out = Vec::new();
    for _ in 0..10_000 {
        match conn.poll_timeout() {
            Some(at) if at <= until => {
                conn.handle_timeout(at);
                out.extend(transmit(conn, at).into_iter().map(|b| (at, b)));
            }
            _ => return out,
        }
    }
    panic!("timers keep firing");
}

/// Active open: SYN at t0, the peer's SYN-ACK (window 65535, `options`) at t0 + 100 ms.
fn open(t0: Instant, config: TcpConfig, options: TcpOptions) -> Connection {
    open_with_window(t0, config, options, 65535)
}

fn open_with_window(
    t0: Instant,
    config: TcpConfig,
    options: TcpOptions,
    window: u16,
) -> Connection {
    let mut conn = Connection::connect(t0, config, TUPLE, INITIAL);
    let syn = transmit(&mut conn, t0);
    assert_eq!(syn.len(), 1);
    assert_eq!(parse_ours(&syn[0]).control, Control::Syn);
    feed(
        &mut conn,
        t0 + ms(100),
        TcpRepr {
            control: Control::Syn,
            seq: IRS,
            ack: Some(SND),
            window,
            options,
            ..PEER
        },
    );
    let ack = transmit(&mut conn, t0 + ms(100));
    assert_eq!(ack.len(), 1);
    assert_eq!(parse_ours(&ack[0]).ack, Some(RCV));
    assert_eq!(conn.state(), State::Established);
    assert_eq!(events(&mut conn), [ConnEvent::Connected]);
    conn
}

/// The SYN-ACK the peer would send to our SYN.
fn syn_ack(options: TcpOptions) -> TcpRepr<'static> {
    TcpRepr {
        control: Control::Syn,
        seq: IRS,
        ack: Some(SND),
        options,
        ..PEER
    }
}

/// Our SYN under `config()`.
fn our_syn(tsval: u32) -> TcpRepr<'static> {
    TcpRepr {
        control: Control::Syn,
        seq: ISS,
        ack: None,
        window: 64_000,
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(0),
            sack_permitted: true,
            ..ts(tsval, 0)
        },
        ..OURS
    }
}

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

fn peer_syn(options: TcpOptions) -> TcpRepr<'static> {
    TcpRepr {
        control: Control::Syn,
        seq: IRS,
        ack: None,
        options,
        ..PEER
    }
}

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

fn accept(t0: Instant, syn: TcpRepr) -> Connection {
    Connection::accept(t0, config(), TUPLE, &syn, INITIAL)
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

// ==================================================================== receiving data

fn data_seg(offset: usize, payload: &[u8]) -> TcpRepr<'_> {
    TcpRepr {
        seq: RCV + offset,
        payload,
        ..PEER
    }
}

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

#[test]
fn sack_compression_starts_after_three_immediate_duplicate_acks() {
    let t0 = Instant::now();
    let mut conn = open(t0, config(), sack_peer());
    let data = stream(8000);
    // A hole at 0..1000; the next three arrivals each get a duplicate ACK at once, as a
    // sender counting to DupThresh needs.
    for i in 1..4 {
        feed(
            &mut conn,
            t0 + ms(200),
            data_seg(i * 1000, &data[i * 1000..(i + 1) * 1000]),
        );
        assert!(
            conn.ack_due(),
            "out-of-order segment {i} must be acknowledged at once"
        );
        expect(
            &mut conn,
            t0 + ms(200),
            &[TcpRepr {
                options: sack(&[(RCV + 1000, RCV + (i + 1) * 1000)]),
                ..OURS
            }],
        );
    }
    // The fourth only lengthens the reported block: it waits for the batch's ACK.
    feed(&mut conn, t0 + ms(201), data_seg(4000, &data[4000..5000]));
    assert!(!conn.ack_due());
    expect(
        &mut conn,
        t0 + ms(201),
        &[TcpRepr {
            options: sack(&[(RCV + 1000, RCV + 5000)]),
            ..OURS
        }],
    );
    // A second hole is news again.
    feed(&mut conn, t0 + ms(202), data_seg(6000, &data[6000..7000]));
    assert!(conn.ack_due(), "a new hole");
    transmit(&mut conn, t0 + ms(202));
    // Filling the first hole moves RCV.NXT: the count starts again.
    feed(&mut conn, t0 + ms(203), data_seg(0, &data[..1000]));
    assert!(conn.ack_due(), "a filled hole");
    transmit(&mut conn, t0 + ms(203));
    feed(&mut conn, t0 + ms(204), data_seg(7000, &data[7000..8000]));
    assert!(
        conn.ack_due(),
        "the first out-of-order segment for the new RCV.NXT"
    );
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
    let mut conn = open(t0, config(), sack_peer());
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
    assert_eq!(stats.cwnd, 2000);
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

// ==================================================================== the stack's resets

const STACK_PORT: u16 = 8080;

/// An IPv4 datagram from REMOTE to LOCAL carrying `seg`.
fn datagram(seg: &TcpRepr) -> Vec<u8> {
    let mut buf = vec![0u8; 20 + 60 + seg.payload.len()];
    let len = seg.emit(REMOTE_IP, LOCAL_IP, &mut buf[20..]);
    let total = (20 + len) as u16;
    buf.truncate(20 + len);
    let header = &mut buf[..20];
    header[0] = 0x45;
    header[2..4].copy_from_slice(&total.to_be_bytes());
    header[6] = 0x40;
    header[8] = 64;
    header[9] = 6;
    header[12..16].copy_from_slice(&REMOTE_IP.octets());
    header[16..20].copy_from_slice(&LOCAL_IP.octets());
    let sum = checksum::checksum(header);
    header[10..12].copy_from_slice(&sum.to_be_bytes());
    buf
}

/// Hands `seg` to a fresh stack with no listener and returns what it sends back.
fn stack_reply(seg: TcpRepr) -> Vec<Vec<u8>> {
    let t0 = Instant::now();
    let mut stack = Stack::new(t0, StackConfig::new(LOCAL_IP, 1500, [7; 16], 1));
    stack.handle_datagram(t0, &datagram(&seg));
    let mut out = Vec::new();
    let mut buf = vec![0u8; 2048];
    while let Some(len) = stack.poll_transmit(t0, &mut buf) {
        out.push(buf[..len].to_vec());
        assert!(out.len() < 10);
    }
    out
}

fn stack_segment(datagram: &[u8]) -> TcpRepr<'_> {
    assert_eq!(datagram[9], 6, "TCP");
    assert_eq!(&datagram[12..16], &LOCAL_IP.octets());
    assert_eq!(&datagram[16..20], &REMOTE_IP.octets());
    TcpRepr::parse(LOCAL_IP, REMOTE_IP, &datagram[20..]).expect("valid segment")
}

#[test]
fn stack_answers_a_syn_to_a_closed_port_with_rst_ack() {
    let syn = TcpRepr {
        dst_port: STACK_PORT,
        control: Control::Syn,
        seq: SeqNum(1234),
        ack: None,
        options: TcpOptions {
            mss: Some(1460),
            ..NO_OPTIONS
        },
        payload: b"early",
        ..PEER
    };
    let out = stack_reply(syn);
    assert_eq!(out.len(), 1);
    // RFC 9293 §3.10.7.1: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
    assert_eq!(
        stack_segment(&out[0]),
        TcpRepr {
            src_port: STACK_PORT,
            dst_port: REMOTE_PORT,
            control: Control::Rst,
            seq: SeqNum(0),
            ack: Some(SeqNum(1234 + 1 + 5)),
            window: 0,
            options: NO_OPTIONS,
            payload: &[],
        }
    );
}

#[test]
fn stack_answers_an_ack_to_a_closed_port_with_rst_at_its_ack() {
    let seg = TcpRepr {
        dst_port: STACK_PORT,
        seq: SeqNum(1234),
        ack: Some(SeqNum(98_765)),
        payload: b"data",
        ..PEER
    };
    let out = stack_reply(seg);
    assert_eq!(out.len(), 1);
    // <SEQ=SEG.ACK><CTL=RST>.
    assert_eq!(
        stack_segment(&out[0]),
        TcpRepr {
            src_port: STACK_PORT,
            dst_port: REMOTE_PORT,
            control: Control::Rst,
            seq: SeqNum(98_765),
            ack: None,
            window: 0,
            options: NO_OPTIONS,
            payload: &[],
        }
    );
}

#[test]
fn stack_ignores_an_rst_to_a_closed_port() {
    for ack in [None, Some(SeqNum(5))] {
        let rst = TcpRepr {
            dst_port: STACK_PORT,
            control: Control::Rst,
            ack,
            window: 0,
            ..PEER
        };
        assert!(stack_reply(rst).is_empty());
    }
}

#[test]
fn stack_listener_completes_a_passive_open() {
    let t0 = Instant::now();
    let mut stack = Stack::new(t0, StackConfig::new(LOCAL_IP, 1500, [7; 16], 1));
    stack.listen(STACK_PORT).unwrap();
    let syn = TcpRepr {
        dst_port: STACK_PORT,
        control: Control::Syn,
        seq: IRS,
        ack: None,
        options: bare_peer(),
        ..PEER
    };
    stack.handle_datagram(t0, &datagram(&syn));
    let mut buf = vec![0u8; 2048];
    let len = stack.poll_transmit(t0, &mut buf).expect("SYN-ACK");
    let syn_ack = stack_segment(&buf[..len]);
    assert_eq!(syn_ack.control, Control::Syn);
    assert_eq!(syn_ack.ack, Some(RCV));
    let their_iss = syn_ack.seq;
    assert!(stack.poll_transmit(t0, &mut buf).is_none());
    assert_eq!(stack.accept(STACK_PORT), None, "not established yet");
    let ack = TcpRepr {
        dst_port: STACK_PORT,
        ack: Some(their_iss + 1),
        payload: b"hi",
        ..PEER
    };
    stack.handle_datagram(t0 + ms(1), &datagram(&ack));
    let id = stack.accept(STACK_PORT).expect("established connection");
    let events: Vec<_> = std::iter::from_fn(|| stack.poll_event()).collect();
    assert_eq!(
        events,
        [
            tunstack::stack::Event::Incoming { port: STACK_PORT },
            tunstack::stack::Event::Readable(id),
        ]
    );
    let mut out = [0u8; 10];
    assert_eq!(stack.recv(id, &mut out), Ok(2));
    assert_eq!(&out[..2], b"hi");
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
