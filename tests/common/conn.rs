//! Fixtures of the segment-by-segment tests of the TCP state machine through its public API
//! (tests/tcp_*.rs, tests/stack.rs).
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

use super::segment::segment;
use tunstack::tcp::{ConnEvent, Connection, FourTuple, Initial, State, TcpConfig};
use tunstack::wire::tcp::MAX_SACK_BLOCKS;
use tunstack::wire::{Control, SackBlock, SeqNum, TcpOptions, TcpRepr, Timestamps};

pub const LOCAL_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const REMOTE_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const LOCAL_PORT: u16 = 49152;
pub const REMOTE_PORT: u16 = 80;
pub const LOCAL: SocketAddrV4 = SocketAddrV4::new(LOCAL_IP, LOCAL_PORT);
pub const REMOTE: SocketAddrV4 = SocketAddrV4::new(REMOTE_IP, REMOTE_PORT);

pub const TUPLE: FourTuple = FourTuple {
    local: LOCAL,
    remote: REMOTE,
};

/// Our initial sequence number.
pub const ISS: SeqNum = SeqNum(10_000);

/// The peer's initial sequence number.
pub const IRS: SeqNum = SeqNum(50_000);

/// Our first data byte's sequence number.
pub const SND: SeqNum = SeqNum(ISS.0 + 1);

/// The peer's first data byte's sequence number.
pub const RCV: SeqNum = SeqNum(IRS.0 + 1);

/// Our TSval is this plus the milliseconds since t0 (never 0, which means "no echo").
pub const TS_OFFSET: u32 = 100;

pub const INITIAL: Initial = Initial {
    iss: ISS,
    ts_offset: TS_OFFSET,
};

/// The peer's TSval in its SYN or SYN-ACK.
pub const PEER_TS: u32 = 7000;

pub const NO_OPTIONS: TcpOptions = TcpOptions {
    mss: None,
    window_scale: None,
    sack_permitted: false,
    timestamps: None,
    sack_blocks: [None; MAX_SACK_BLOCKS],
};

/// Template for segments the peer sends.
pub const PEER: TcpRepr<'static> = TcpRepr {
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
pub const OURS: TcpRepr<'static> = TcpRepr {
    src_port: LOCAL_PORT,
    dst_port: REMOTE_PORT,
    control: Control::None,
    seq: SND,
    ack: Some(RCV),
    window: 64_000,
    options: NO_OPTIONS,
    payload: &[],
};

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The configuration most tests use: a 64000-byte receive buffer (no window scaling needed,
/// so window fields are bytes).
pub fn config() -> TcpConfig {
    TcpConfig {
        recv_buffer: 64_000,
        send_buffer: 64_000,
        ..TcpConfig::default()
    }
}

pub fn ts(value: u32, echo: u32) -> TcpOptions {
    TcpOptions {
        timestamps: Some(Timestamps { value, echo }),
        ..NO_OPTIONS
    }
}

pub fn sack(blocks: &[(SeqNum, SeqNum)]) -> TcpOptions {
    let mut options = NO_OPTIONS;
    for (slot, &(left, right)) in options.sack_blocks.iter_mut().zip(blocks) {
        *slot = Some(SackBlock { left, right });
    }
    options
}

/// A peer that announces MSS 1000 and nothing else: no scaling, SACK or timestamps.
pub fn bare_peer() -> TcpOptions {
    TcpOptions {
        mss: Some(1000),
        ..NO_OPTIONS
    }
}

/// MSS 1000 and SACK-permitted.
pub fn sack_peer() -> TcpOptions {
    TcpOptions {
        sack_permitted: true,
        ..bare_peer()
    }
}

/// MSS 1460, SACK-permitted and timestamps, echoing our SYN's TSval (sent at t0).
pub fn ts_peer() -> TcpOptions {
    TcpOptions {
        mss: Some(1460),
        sack_permitted: true,
        ..ts(PEER_TS, TS_OFFSET)
    }
}

/// A recognisable byte stream.
pub fn stream(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Emits `seg` as the peer would, parses it back and hands it to the connection.
pub fn feed(conn: &mut Connection, now: Instant, seg: TcpRepr) {
    let bytes = segment(REMOTE_IP, LOCAL_IP, &seg);
    let parsed = TcpRepr::parse(REMOTE_IP, LOCAL_IP, &bytes).expect("test segment parses");
    assert_eq!(parsed, seg, "test segment survives the wire");
    conn.handle_segment(now, &parsed);
}

/// Every segment the connection has to send now, as bytes.
pub fn transmit(conn: &mut Connection, now: Instant) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 4096];
    while let Some(len) = conn.poll_transmit(now, &mut buf) {
        out.push(buf[..len].to_vec());
        assert!(out.len() < 1000, "poll_transmit never returns None");
    }
    out
}

/// Parses what we sent, checking the checksum with our address as the source.
pub fn parse_ours(bytes: &[u8]) -> TcpRepr<'_> {
    TcpRepr::parse(LOCAL_IP, REMOTE_IP, bytes).expect("our segment parses, checksum included")
}

/// Asserts that exactly `expected` goes out now, in this order.
pub fn expect(conn: &mut Connection, now: Instant, expected: &[TcpRepr]) {
    let sent = transmit(conn, now);
    let got: Vec<TcpRepr> = sent.iter().map(|b| parse_ours(b)).collect();
    assert_eq!(got, expected);
}

pub fn expect_nothing(conn: &mut Connection, now: Instant) {
    expect(conn, now, &[]);
}

pub fn events(conn: &mut Connection) -> Vec<ConnEvent> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

/// Fires timers in order up to and including `until`, collecting what goes out (time, bytes).
pub fn run_until(conn: &mut Connection, until: Instant) -> Vec<(Instant, Vec<u8>)> {
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
pub fn open(t0: Instant, config: TcpConfig, options: TcpOptions) -> Connection {
    open_with_window(t0, config, options, 65535)
}

pub fn open_with_window(
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
pub fn syn_ack(options: TcpOptions) -> TcpRepr<'static> {
    TcpRepr {
        control: Control::Syn,
        seq: IRS,
        ack: Some(SND),
        options,
        ..PEER
    }
}

/// Our SYN under `config()`.
pub fn our_syn(tsval: u32) -> TcpRepr<'static> {
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

// ==================================================================== passive open

pub fn peer_syn(options: TcpOptions) -> TcpRepr<'static> {
    TcpRepr {
        control: Control::Syn,
        seq: IRS,
        ack: None,
        options,
        ..PEER
    }
}

pub fn accept(t0: Instant, syn: TcpRepr) -> Connection {
    Connection::accept(t0, config(), TUPLE, &syn, INITIAL)
}

// ==================================================================== receiving data

pub fn data_seg(offset: usize, payload: &[u8]) -> TcpRepr<'_> {
    TcpRepr {
        seq: RCV + offset,
        payload,
        ..PEER
    }
}
