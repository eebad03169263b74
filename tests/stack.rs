//! Tests of the `Stack` as a whole (not one `Connection`): the resets it sends for closed ports and
//! a listener's passive open, datagram in, datagram out; and the fuzzers' regressions that need a
//! whole stack against a scripted peer.
//!
//! Fixtures and conventions: `tests/common/conn.rs`, `tests/common/scripted.rs`.

mod common;

use std::net::SocketAddrV4;
use std::time::Instant;

use tunstack::stack::{Stack, StackConfig};
use tunstack::tcp::State;
use tunstack::wire::{Control, SeqNum, TcpOptions, TcpRepr};

use common::conn::*;
use common::scripted::{stack_config, tcp_of, ScriptedPeer, CLIENT, MTU, SERVER, SERVER_PORT};
use common::segment::tcp_datagram;

// ==================================================================== the stack's resets

const STACK_PORT: u16 = 8080;

/// An IPv4 datagram from REMOTE to LOCAL carrying `seg`.
fn datagram(seg: &TcpRepr) -> Vec<u8> {
    tcp_datagram(REMOTE_IP, LOCAL_IP, seg)
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

// ==================================================================== fuzz regressions

// Found by the fuzzers in fuzz/; they need a whole `Stack` and a scripted peer
// (tests/common/scripted.rs).

/// Found by fuzz/ (tcp target): a segment starting before the first byte of the stream, at the
/// sequence number of the peer's SYN, had its bytes stored one place early, so the application
/// read the byte sent at the SYN's sequence number as the stream's first byte.
#[test]
fn data_overlapping_the_syn_sequence_number_is_trimmed() {
    let mut peer = ScriptedPeer::connect(65536, 0xb995_282e, true);
    let isn = peer.peer_isn;
    peer.data(isn, 100);
    peer.recv(1000);
    assert_eq!(
        peer.read.len(),
        99,
        "the byte at the SYN's sequence number is not data"
    );
    assert_eq!(peer.read, peer.expected_read());
}

/// Found by fuzz/ (tcp target): after a simultaneous open (our SYN answered by a bare SYN), a
/// close in SYN-RECEIVED moved the connection to FIN-WAIT-1 although nobody had acknowledged
/// our SYN. The SYN-ACK was then never retransmitted, and after a timeout the FIN went out with
/// the SYN's sequence number (debug builds tripped over the byte of "data" that did not exist).
#[test]
fn close_during_simultaneous_open_sends_the_fin_after_the_handshake() {
    let now = Instant::now();
    let mut stack = Stack::new(now, stack_config(CLIENT, 9, 65536));
    let id = stack
        .connect(now, SocketAddrV4::new(SERVER, SERVER_PORT))
        .expect("connect");
    let mut buf = vec![0u8; MTU];
    let mut sent = |stack: &mut Stack, at: Instant| {
        let mut out = Vec::new();
        while let Some(len) = stack.poll_transmit(at, &mut buf) {
            let (_, _, repr) = tcp_of(&buf[..len]).expect("TCP");
            out.push((repr.control, repr.seq.0, repr.ack.map(|a| a.0)));
        }
        out
    };
    let syn = sent(&mut stack, now);
    assert_eq!(syn.len(), 1);
    let (control, iss, _) = syn[0];
    assert_eq!(control, Control::Syn);
    let port = stack.connection(id).expect("live").local().port();
    let peer_isn = 0x1234_5678u32;
    let from_peer = |control, seq: u32, ack: Option<u32>| {
        tcp_datagram(
            SERVER,
            CLIENT,
            &TcpRepr {
                src_port: SERVER_PORT,
                dst_port: port,
                control,
                seq: SeqNum(seq),
                ack: ack.map(SeqNum),
                window: 65535,
                options: TcpOptions {
                    mss: (control == Control::Syn).then_some(1460),
                    ..TcpOptions::default()
                },
                payload: &[],
            },
        )
    };
    stack.handle_datagram(now, &from_peer(Control::Syn, peer_isn, None));
    let synack = sent(&mut stack, now);
    assert_eq!(
        synack,
        vec![(Control::Syn, iss, Some(peer_isn.wrapping_add(1)))]
    );

    stack.close(id).expect("close");
    let mut at = now;
    for _ in 0..4 {
        assert!(
            sent(&mut stack, at).iter().all(|s| s.0 == Control::Syn),
            "only SYN-ACKs until the peer acknowledges our SYN"
        );
        at = stack
            .poll_timeout()
            .expect("the SYN-ACK retransmission timer runs");
        stack.handle_timeout(at);
        let retransmitted = sent(&mut stack, at);
        assert_eq!(
            retransmitted,
            vec![(Control::Syn, iss, Some(peer_isn.wrapping_add(1)))],
            "the SYN-ACK is retransmitted"
        );
    }

    let ack = Some(iss.wrapping_add(1));
    stack.handle_datagram(at, &from_peer(Control::None, peer_isn.wrapping_add(1), ack));
    let fin = sent(&mut stack, at);
    assert_eq!(fin.len(), 1, "{fin:?}");
    assert_eq!(fin[0].0, Control::Fin);
    assert_eq!(fin[0].1, iss.wrapping_add(1), "the FIN follows the SYN");
    let fin_ack = Some(iss.wrapping_add(2));
    stack.handle_datagram(
        at,
        &from_peer(Control::None, peer_isn.wrapping_add(1), fin_ack),
    );
    assert_eq!(
        stack.connection(id).map(|c| c.state()),
        Some(State::FinWait2)
    );
}

/// Found by fuzz/ (tcp target): fast recovery whose hole was only our FIN "retransmitted" a byte
/// of data that does not exist (a bare segment without the FIN; debug builds tripped over it),
/// so the FIN waited for the retransmission timeout instead.
#[test]
fn fast_retransmit_of_a_lone_fin_resends_the_fin() {
    let mut peer = ScriptedPeer::connect(65536, 77, false);
    let fin_seq = peer.stack_next;
    peer.stack.close(peer.id).expect("close");
    let sent = peer.flush();
    let (_, _, fin) = tcp_of(&sent[0]).expect("TCP");
    assert_eq!((fin.control, fin.seq.0), (Control::Fin, fin_seq));
    let dup_ack = TcpRepr {
        src_port: SERVER_PORT,
        dst_port: peer.port,
        control: Control::None,
        seq: SeqNum(peer.peer_isn.wrapping_add(1)),
        ack: Some(SeqNum(fin_seq)),
        window: 65535,
        options: TcpOptions::default(),
        payload: &[],
    };
    let mut resent = Vec::new();
    for _ in 0..3 {
        resent.extend(peer.send(&dup_ack));
    }
    let resent: Vec<(Control, u32, usize)> = resent
        .iter()
        .map(|d| {
            let (_, _, repr) = tcp_of(d).expect("TCP");
            (repr.control, repr.seq.0, repr.payload.len())
        })
        .collect();
    assert_eq!(
        resent,
        vec![(Control::Fin, fin_seq, 0)],
        "the FIN is fast-retransmitted"
    );
}

// ==================================================================== scale

// The stack's hot paths must cost what the active connections cost: a download next to 5,000
// idle connections does exactly the same work as alone. Work is counted, not timed:
// `StackStats::transmit_polls` counts the connections asked for a segment, and
// `timer_expirations` the connections whose timers fired.

const SCALE_IDLE: u16 = 5_000;
const SCALE_ACTIVE_PORT: u16 = 40_000;

/// A stack listening on `STACK_PORT` with room for the idle connections and one more.
fn scale_stack(t0: Instant) -> Stack {
    let mut config = StackConfig::new(LOCAL_IP, 1500, [7; 16], 1);
    config.max_connections = 2 * usize::from(SCALE_IDLE);
    config.backlog = 2 * usize::from(SCALE_IDLE);
    let mut stack = Stack::new(t0, config);
    stack.listen(STACK_PORT).unwrap();
    stack
}

/// A datagram from the peer's `port` to the stack's listening port.
fn from_peer_port(port: u16, control: Control, ack: Option<SeqNum>) -> Vec<u8> {
    datagram(&TcpRepr {
        src_port: port,
        dst_port: STACK_PORT,
        control,
        seq: if control == Control::Syn { IRS } else { RCV },
        ack,
        window: 65535,
        options: if control == Control::Syn {
            bare_peer()
        } else {
            NO_OPTIONS
        },
        payload: &[],
    })
}

/// Everything the stack sends now.
fn flush_all(stack: &mut Stack, now: Instant) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 2048];
    while let Some(len) = stack.poll_transmit(now, &mut buf) {
        out.push(buf[..len].to_vec());
        assert!(out.len() < 100_000, "runaway flush");
    }
    out
}

/// A passive open from the peer's `port`: SYN, SYN-ACK, ACK. Returns the sequence number of
/// our first data byte.
fn handshake(stack: &mut Stack, now: Instant, port: u16) -> SeqNum {
    stack.handle_datagram(now, &from_peer_port(port, Control::Syn, None));
    let out = flush_all(stack, now);
    let syn_ack = stack_segment(out.last().expect("SYN-ACK"));
    assert_eq!((syn_ack.control, syn_ack.dst_port), (Control::Syn, port));
    let snd = syn_ack.seq + 1;
    stack.handle_datagram(now, &from_peer_port(port, Control::None, Some(snd)));
    snd
}

/// A passive open from the peer's `port`, accepted. Returns the connection and the sequence
/// number of our first data byte.
fn passive_open(stack: &mut Stack, now: Instant, port: u16) -> (tunstack::stack::ConnId, SeqNum) {
    let snd = handshake(stack, now, port);
    let id = stack.accept(STACK_PORT).expect("established");
    while stack.poll_event().is_some() {}
    (id, snd)
}

/// The work of one download, counted.
#[derive(Debug, PartialEq, Eq)]
struct DownloadWork {
    segments: u64,
    flushes: u64,
    transmit_polls: u64,
    timer_expirations: u64,
}

/// Opens `idle` connections that then stay idle, and sends 200 kB on one more to a peer that
/// acknowledges every flight, except one it loses to the retransmission timer.
fn download_among_idle(idle: u16) -> DownloadWork {
    let t0 = Instant::now();
    let mut stack = scale_stack(t0);
    for i in 0..idle {
        passive_open(&mut stack, t0, 1024 + i);
    }
    assert_eq!(stack.connection_count(), usize::from(idle));
    let mut now = t0 + ms(10);
    let (id, snd) = passive_open(&mut stack, now, SCALE_ACTIVE_PORT);
    let before = stack.stats().clone();
    let data = vec![0x5a; 200_000];
    let end = snd + data.len();
    let (mut queued, mut acked, mut lost) = (0, snd, false);
    let mut work = DownloadWork {
        segments: 0,
        flushes: 0,
        transmit_polls: 0,
        timer_expirations: 0,
    };
    while acked != end {
        assert!(work.flushes < 10_000, "the download does not finish");
        if let Ok(n) = stack.send(id, &data[queued..]) {
            queued += n;
        }
        let out = flush_all(&mut stack, now);
        work.flushes += 1;
        work.segments += out.len() as u64;
        now += ms(5);
        if !lost && work.segments > 50 {
            // This flight is lost: the retransmission timer, and only it, fires.
            lost = true;
            now = stack.poll_timeout().expect("retransmission timer");
            stack.handle_timeout(now);
            continue;
        }
        for d in &out {
            let seg = stack_segment(d);
            let seg_end = seg.seq + seg.payload.len();
            if seg_end.after(acked) {
                acked = seg_end;
            }
        }
        let ack = from_peer_port(SCALE_ACTIVE_PORT, Control::None, Some(acked));
        stack.handle_datagram(now, &ack);
        while stack.poll_event().is_some() {}
    }
    assert!(flush_all(&mut stack, now).is_empty());
    work.flushes += 1;
    stack
        .audit_schedule(now)
        .expect("schedule agrees with a scan");
    work.transmit_polls = stack.stats().transmit_polls - before.transmit_polls;
    work.timer_expirations = stack.stats().timer_expirations - before.timer_expirations;
    work
}

#[test]
fn idle_connections_cost_a_download_nothing() {
    let alone = download_among_idle(0);
    let crowded = download_among_idle(SCALE_IDLE);
    eprintln!("alone: {alone:?}\nwith {SCALE_IDLE} idle: {crowded:?}");
    assert_eq!(
        crowded, alone,
        "idle connections changed the work per segment"
    );
    // Each flush asks the one active connection until it has nothing more.
    assert_eq!(
        crowded.transmit_polls,
        crowded.segments + crowded.flushes,
        "one poll per segment sent plus one per flush"
    );
    assert_eq!(
        crowded.timer_expirations, 1,
        "only the lost flight's timer fired"
    );
    assert!(
        crowded.segments > 137,
        "200 kB in 1000-byte segments, one flight twice"
    );
}

/// A SYN flood against a listener whose backlog holds 5,000 connections nobody accepted: every
/// SYN is answered with a cookie and no connection is asked for anything; then `unlisten`
/// resets the 5,000 and the stack forgets them all.
#[test]
fn a_syn_flood_beside_a_full_backlog_costs_no_connection_work() {
    let t0 = Instant::now();
    let mut config = StackConfig::new(LOCAL_IP, 1500, [7; 16], 1);
    config.max_connections = 2 * usize::from(SCALE_IDLE);
    config.backlog = usize::from(SCALE_IDLE);
    let mut stack = Stack::new(t0, config);
    stack.listen(STACK_PORT).unwrap();
    for i in 0..SCALE_IDLE {
        handshake(&mut stack, t0, 1024 + i);
    }
    assert!(flush_all(&mut stack, t0).is_empty());
    while stack.poll_event().is_some() {}
    let before = stack.stats().clone();
    let now = t0 + ms(10);
    let flood = 2_000u16;
    let mut answered = 0;
    for i in 0..flood {
        stack.handle_datagram(now, &from_peer_port(20_000 + i, Control::Syn, None));
        if stack.take_transmit_due() {
            answered += flush_all(&mut stack, now).len();
        }
    }
    answered += flush_all(&mut stack, now).len();
    let stats = stack.stats();
    assert_eq!(answered, usize::from(flood));
    assert_eq!(
        stats.syn_cookies_sent - before.syn_cookies_sent,
        u64::from(flood)
    );
    assert_eq!(
        stats.transmit_polls, before.transmit_polls,
        "no connection was asked"
    );
    assert_eq!(stack.connection_count(), usize::from(SCALE_IDLE));
    stack
        .audit_schedule(now)
        .expect("schedule agrees with a scan");

    stack.unlisten(STACK_PORT);
    let resets = flush_all(&mut stack, now);
    assert_eq!(resets.len(), usize::from(SCALE_IDLE));
    assert!(resets
        .iter()
        .all(|d| stack_segment(d).control == Control::Rst));
    assert_eq!(
        stack.connection_count(),
        0,
        "aborted connections are reaped"
    );
    assert_eq!(
        stack.poll_timeout(),
        None,
        "no timer outlives its connection"
    );
}

/// Several bulk senders through the whole life of a round-robin: turns in connection order,
/// a connection opened after the newest one sent, and an abort (whose reaping restarts the
/// turn from the first connection). Returns the peer port of each data segment sent, flush by
/// flush.
fn turns_of_bulk_senders() -> Vec<Vec<u16>> {
    let t0 = Instant::now();
    let mut stack = scale_stack(t0);
    let mut flushes = Vec::new();
    let mut acked = std::collections::HashMap::new();
    let mut flush = |stack: &mut Stack, acked: &mut std::collections::HashMap<u16, SeqNum>| {
        let out = flush_all(stack, t0);
        let mut ports = Vec::new();
        for d in &out {
            let seg = stack_segment(d);
            if !seg.payload.is_empty() || seg.control == Control::Rst {
                ports.push(seg.dst_port);
            }
            let end = seg.seq + seg.payload.len();
            let ack = acked.entry(seg.dst_port).or_insert(end);
            if end.after(*ack) {
                *ack = end;
            }
        }
        flushes.push(ports);
    };
    let ack = |stack: &mut Stack, acked: &std::collections::HashMap<u16, SeqNum>, port: u16| {
        let seg = from_peer_port(port, Control::None, Some(acked[&port]));
        stack.handle_datagram(t0, &seg);
    };
    let data = vec![1u8; 20_000];
    let mut ids = std::collections::HashMap::new();
    for port in [1001, 1002, 1003] {
        ids.insert(port, passive_open(&mut stack, t0, port).0);
    }
    for port in [1003, 1001, 1002] {
        stack.send(ids[&port], &data).unwrap();
    }
    flush(&mut stack, &mut acked);
    ack(&mut stack, &acked, 1002);
    flush(&mut stack, &mut acked);
    ids.insert(1004, passive_open(&mut stack, t0, 1004).0);
    stack.send(ids[&1004], &data).unwrap();
    ack(&mut stack, &acked, 1001);
    ack(&mut stack, &acked, 1003);
    flush(&mut stack, &mut acked);
    ack(&mut stack, &acked, 1002);
    ack(&mut stack, &acked, 1004);
    flush(&mut stack, &mut acked);
    stack.abort(ids[&1002]).unwrap();
    for port in [1004, 1003, 1001] {
        ack(&mut stack, &acked, port);
    }
    flush(&mut stack, &mut acked);
    for port in [1001, 1003, 1004] {
        ack(&mut stack, &acked, port);
    }
    flush(&mut stack, &mut acked);
    flushes
}

/// The ready set serves connections in exactly the order the full scan it replaced did (the
/// expected turns are what commit 5f26ee2, which asked every connection, sent).
#[test]
fn bulk_senders_take_turns_as_before() {
    let turns = turns_of_bulk_senders();
    let expected: [&[u16]; 6] = [
        &[
            1001, 1002, 1003, 1001, 1002, 1003, 1001, 1002, 1003, 1001, 1002, 1003,
        ],
        &[1002, 1002, 1002, 1002, 1002, 1002],
        &[
            1001, 1003, 1004, 1001, 1003, 1004, 1001, 1003, 1004, 1001, 1003, 1004, 1001, 1003,
            1001, 1003,
        ],
        &[
            1004, 1002, 1004, 1002, 1004, 1002, 1004, 1002, 1004, 1002, 1004, 1002, 1002, 1002,
        ],
        // 1002's reset takes its turn; reaping it restarts the next flush from the first.
        &[
            1003, 1004, 1001, 1002, 1003, 1004, 1001, 1003, 1004, 1001, 1003, 1004, 1001, 1003,
            1004, 1001, 1003, 1004, 1001, 1003, 1004, 1001, 1003, 1004, 1001,
        ],
        &[1001, 1003, 1004, 1001, 1003, 1004],
    ];
    assert_eq!(turns, expected);
}

// ==================================================================== TIME-WAIT reuse

/// Everything `stack` sends now.
fn drain(stack: &mut Stack, now: Instant) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 2048];
    while let Some(len) = stack.poll_transmit(now, &mut buf) {
        out.push(buf[..len].to_vec());
        assert!(out.len() < 10);
    }
    out
}

/// A server-side connection that closed first and sits in TIME-WAIT, its peer's last TSval
/// 1000 and its RCV.NXT at peer ISN + 2; returns the stack and the server's ISS.
fn server_in_time_wait(t0: Instant, timestamps: bool) -> (Stack, SeqNum) {
    let mut stack = Stack::new(t0, StackConfig::new(LOCAL_IP, 1500, [7; 16], 1));
    stack.listen(STACK_PORT).unwrap();
    let opts = |val: u32, ecr: u32| {
        if timestamps {
            ts(val, ecr)
        } else {
            NO_OPTIONS
        }
    };
    let syn = TcpRepr {
        dst_port: STACK_PORT,
        control: Control::Syn,
        seq: SeqNum(5000),
        ack: None,
        options: TcpOptions {
            mss: Some(1460),
            ..opts(900, 0)
        },
        ..PEER
    };
    stack.handle_datagram(t0, &datagram(&syn));
    let out = drain(&mut stack, t0);
    let syn_ack = stack_segment(&out[0]);
    assert_eq!(syn_ack.control, Control::Syn);
    let iss = syn_ack.seq;
    let tsval = syn_ack.options.timestamps.map_or(0, |t| t.value);
    let ack = |seq: u32, ack: SeqNum, control: Control, val: u32| TcpRepr {
        dst_port: STACK_PORT,
        control,
        seq: SeqNum(seq),
        ack: Some(ack),
        options: opts(val, tsval),
        ..PEER
    };
    stack.handle_datagram(t0, &datagram(&ack(5001, iss + 1, Control::None, 950)));
    let id = stack.accept(STACK_PORT).expect("accepted");
    stack.close(id).unwrap();
    let fin = drain(&mut stack, t0);
    assert_eq!(stack_segment(&fin[0]).control, Control::Fin);
    stack.handle_datagram(t0, &datagram(&ack(5001, iss + 2, Control::Fin, 1000)));
    drain(&mut stack, t0);
    let state = stack.connection(id).map(|c| c.state());
    assert_eq!(state, Some(State::TimeWait));
    (stack, iss)
}

fn new_syn(seq: u32, tsval: Option<u32>) -> TcpRepr<'static> {
    TcpRepr {
        dst_port: STACK_PORT,
        control: Control::Syn,
        seq: SeqNum(seq),
        ack: None,
        options: TcpOptions {
            mss: Some(1460),
            ..tsval.map_or(NO_OPTIONS, |v| ts(v, 0))
        },
        ..PEER
    }
}

#[test]
fn rfc6191_2_a_syn_with_a_newer_timestamp_reopens_a_time_wait_connection() {
    let t0 = Instant::now();
    let (mut stack, _) = server_in_time_wait(t0, true);
    // An older timestamp is an old duplicate: TIME-WAIT answers it with an ACK, no new
    // connection.
    let now = t0 + ms(100);
    stack.handle_datagram(now, &datagram(&new_syn(9000, Some(999))));
    let out = drain(&mut stack, now);
    assert!(out.iter().all(|d| stack_segment(d).control != Control::Syn));
    assert_eq!(stack.stats().time_wait_reopened, 0);
    // A newer one (even with a lower sequence number) starts a new incarnation at once.
    stack.handle_datagram(now, &datagram(&new_syn(100, Some(1100))));
    let out = drain(&mut stack, now);
    let syn_ack = stack_segment(&out[0]);
    assert_eq!(syn_ack.control, Control::Syn);
    assert_eq!(syn_ack.ack, Some(SeqNum(101)));
    assert_eq!(stack.stats().time_wait_reopened, 1);
}

#[test]
fn rfc1122_4_2_2_13_without_timestamps_a_syn_beyond_rcv_nxt_reopens_time_wait() {
    let t0 = Instant::now();
    let (mut stack, _) = server_in_time_wait(t0, false);
    let now = t0 + ms(100);
    // At or below RCV.NXT (5002): not provably new.
    stack.handle_datagram(now, &datagram(&new_syn(5001, None)));
    let out = drain(&mut stack, now);
    assert!(out.iter().all(|d| stack_segment(d).control != Control::Syn));
    stack.handle_datagram(now, &datagram(&new_syn(70_000, None)));
    let out = drain(&mut stack, now);
    let syn_ack = stack_segment(&out[0]);
    assert_eq!(syn_ack.control, Control::Syn);
    assert_eq!(syn_ack.ack, Some(SeqNum(70_001)));
    assert_eq!(stack.stats().time_wait_reopened, 1);
}
