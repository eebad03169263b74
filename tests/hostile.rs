//! Trust under hostile input: properties of the sans-IO stack when the network lies in the
//! middle of a download.
//!
//! * A blind attacker, who does not know the sequence numbers, can neither reset nor inject into
//!   a connection (RFC 5961), and only draws rate-limited challenge ACKs.
//! * Datagrams not for us, or broken, are counted and dropped and do not disturb a transfer.
//! * A segment the kernel vouches for skips the checksum; the same bytes unverified are checked.
//!
//! Everything runs in memory: two `Stack`s handing datagrams to each other (`Pair`, below).
//! Time is virtual. The other hostile suites: tests/hostile_memory.rs (bounded memory) and
//! tests/hostile_unpredictable.rs (ISNs and ports); what they share is in
//! tests/common/hostile.rs. The fuzzers' regressions live beside what they exercise:
//! tests/stack.rs and src/wire/checksum.rs.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

mod common;

use proptest::prelude::*;

use common::hostile::{config, ipv4, TCP};
use common::scripted::*;
use common::segment::{segment, tcp_datagram};
use tunstack::ipv4::DropReason;
use tunstack::stack::{ConnId, Event, Stack};
use tunstack::tcp::State;
use tunstack::testing::fix_ipv4_checksum;
use tunstack::wire::{ChecksumStatus, Control, SeqNum, TcpOptions, TcpRepr};

// ------------------------------------------------------------------------------ two stacks

/// What one side revealed in the segments it sent on the connection.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    /// One past the highest sequence number sent (SND.MAX).
    snd_max: Option<u32>,
    /// The latest acknowledgment number sent (its RCV.NXT).
    ack: Option<u32>,
    /// The lowest sequence number still unacknowledged by the other side (its view of SND.UNA),
    /// from the other side's ACKs.
    peer_acked: Option<u32>,
    /// The ISN, from the SYN.
    isn: Option<u32>,
}

fn learn(seen: &mut Seen, repr: &TcpRepr<'_>) {
    if repr.control == Control::Syn {
        seen.isn = Some(repr.seq.0);
    }
    let end = repr.seq.0.wrapping_add(repr.segment_len() as u32);
    match seen.snd_max {
        Some(max) if (end.wrapping_sub(max) as i32) <= 0 => {}
        _ => seen.snd_max = Some(end),
    }
    if let Some(ack) = repr.ack {
        seen.ack = Some(ack.0);
    }
}

/// A client stack downloading `data` from a server stack, datagrams handed over directly.
///
/// Not tests/sim's `Pair` on purpose: these tests need the bare sans-IO `Stack`s between two
/// datagrams (to inject, with a chosen `ChecksumStatus`, and check counters at once), every
/// segment both ways, and a stop at any predicate; that one runs `Driver`s over `Link`s.
struct Pair {
    now: Instant,
    client: Stack,
    server: Stack,
    client_id: ConnId,
    server_id: Option<ConnId>,
    data: Vec<u8>,
    written: usize,
    received: Vec<u8>,
    eof: bool,
    client_failed: bool,
    client_seen: Seen,
    server_seen: Seen,
    buf: Vec<u8>,
}

impl Pair {
    fn new(seed: u64, data: Vec<u8>) -> Pair {
        let now = Instant::now();
        let mut server = Stack::new(now, stack_config(SERVER, seed ^ 0x5e, 64 << 10));
        server.listen(SERVER_PORT).expect("listen");
        let mut client = Stack::new(now, stack_config(CLIENT, seed, 64 << 10));
        let client_id = client
            .connect(now, SocketAddrV4::new(SERVER, SERVER_PORT))
            .expect("connect");
        let mut pair = Pair {
            now,
            client,
            server,
            client_id,
            server_id: None,
            data,
            written: 0,
            received: Vec::new(),
            eof: false,
            client_failed: false,
            client_seen: Seen::default(),
            server_seen: Seen::default(),
            buf: vec![0; MTU],
        };
        pair.run_until(|p| p.server_id.is_some(), &mut |_, _, _| {});
        pair
    }

    fn client_state(&self) -> Option<State> {
        self.client.connection(self.client_id).map(|c| c.state())
    }

    /// Moves datagrams both ways, lets the applications read and write, and advances time when
    /// nothing moves, until `done` or nothing is left to do (bounded). Each datagram from the
    /// server goes through `tap` first, which may inject more into the client.
    fn run_until(
        &mut self,
        done: impl Fn(&Pair) -> bool,
        tap: &mut dyn FnMut(&mut Stack, Instant, &[u8]),
    ) {
        for _ in 0..200_000 {
            if done(self) {
                return;
            }
            let mut moved = false;
            while let Some(len) = self.client.poll_transmit(self.now, &mut self.buf) {
                if let Some((_, _, repr)) = tcp_of(&self.buf[..len]) {
                    learn(&mut self.client_seen, &repr);
                    if let Some(ack) = repr.ack {
                        self.server_seen.peer_acked = Some(ack.0);
                    }
                }
                self.server.handle_datagram(self.now, &self.buf[..len]);
                moved = true;
            }
            while let Some(len) = self.server.poll_transmit(self.now, &mut self.buf) {
                let datagram = self.buf[..len].to_vec();
                if let Some((_, _, repr)) = tcp_of(&datagram) {
                    learn(&mut self.server_seen, &repr);
                    if let Some(ack) = repr.ack {
                        self.client_seen.peer_acked = Some(ack.0);
                    }
                }
                tap(&mut self.client, self.now, &datagram);
                self.client.handle_datagram(self.now, &datagram);
                moved = true;
            }
            moved |= self.applications();
            if !moved {
                // Both stacks are flushed: their schedules must agree with a full scan.
                for stack in [&mut self.client, &mut self.server] {
                    stack
                        .audit_schedule(self.now)
                        .expect("schedule agrees with a scan");
                }
                let next = [self.client.poll_timeout(), self.server.poll_timeout()]
                    .into_iter()
                    .flatten()
                    .min();
                let Some(at) = next else {
                    return;
                };
                self.now = self.now.max(at);
                self.client.handle_timeout(self.now);
                self.server.handle_timeout(self.now);
            }
        }
        panic!("the transfer did not settle");
    }

    /// The server writes `data` then closes; the client reads everything and closes at EOF.
    fn applications(&mut self) -> bool {
        let mut moved = false;
        while let Some(event) = self.server.poll_event() {
            if let Event::Incoming { port } = event {
                self.server_id = self.server.accept(port);
            }
        }
        while let Some(event) = self.client.poll_event() {
            if let Event::Failed(..) = event {
                self.client_failed = true;
            }
        }
        if let Some(id) = self.server_id {
            if self.written < self.data.len() {
                if let Ok(n) = self.server.send(id, &self.data[self.written..]) {
                    self.written += n;
                    moved |= n > 0;
                    if self.written == self.data.len() {
                        self.server.close(id).expect("server closes");
                    }
                }
            }
        }
        let mut chunk = [0u8; 16384];
        while !self.eof {
            match self.client.recv(self.client_id, &mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    let _ = self.client.close(self.client_id);
                    moved = true;
                }
                Ok(n) => {
                    self.received.extend_from_slice(&chunk[..n]);
                    moved = true;
                }
                Err(_) => break,
            }
        }
        moved
    }

    fn finish(&mut self) {
        self.run_until(|p| p.eof, &mut |_, _, _| {});
    }
}

fn transfer_data(len: usize, seed: u64) -> Vec<u8> {
    (0..len)
        .map(|i| pattern((i as u32) ^ (seed as u32)))
        .collect()
}

// ------------------------------------------------------------------------------ RFC 5961

/// One spoofed segment from the server's address and port to the client's, by an attacker who
/// knows the 4-tuple and roughly where the window is, but not the exact numbers.
#[derive(Debug, Clone)]
enum Blind {
    /// RST with a sequence number in the window but not RCV.NXT (RFC 5961 §3: challenge ACK).
    RstInWindow {
        offset: u32,
    },
    /// RST anywhere (not RCV.NXT).
    RstAnywhere {
        seq: u32,
    },
    /// SYN in the window (RFC 5961 §4: challenge ACK) or anywhere.
    SynInWindow {
        offset: u32,
    },
    SynAnywhere {
        seq: u32,
    },
    /// Data in the window whose ACK is outside [SND.UNA - MAX.SND.WND, SND.NXT] (RFC 5961 §5).
    DataBadAck {
        offset: u32,
        len: usize,
        ack_distance: u32,
        too_new: bool,
    },
    /// Data with a random sequence number and a random ACK.
    DataAnywhere {
        seq: u32,
        ack: u32,
        len: usize,
    },
}

fn blind() -> impl Strategy<Value = Blind> {
    prop_oneof![
        (1u32..60_000).prop_map(|offset| Blind::RstInWindow { offset }),
        any::<u32>().prop_map(|seq| Blind::RstAnywhere { seq }),
        (0u32..60_000).prop_map(|offset| Blind::SynInWindow { offset }),
        any::<u32>().prop_map(|seq| Blind::SynAnywhere { seq }),
        (0u32..60_000, 1usize..1400, 0u32..0x7000_0000, any::<bool>()).prop_map(
            |(offset, len, ack_distance, too_new)| Blind::DataBadAck {
                offset,
                len,
                ack_distance,
                too_new
            }
        ),
        (any::<u32>(), any::<u32>(), 1usize..1400)
            .prop_map(|(seq, ack, len)| Blind::DataAnywhere { seq, ack, len }),
    ]
}

/// Largest window either stack can advertise with 64 KiB buffers: a bound on MAX.SND.WND.
const MAX_WINDOW: u32 = 2 * 65536;

fn blind_segment(
    attack: &Blind,
    client_port: u16,
    rcv_nxt: u32,
    snd_una: u32,
    snd_max: u32,
) -> Option<Vec<u8>> {
    let payload = vec![b'!'; 1400];
    let (control, seq, ack, len) = match *attack {
        Blind::RstInWindow { offset } => (Control::Rst, rcv_nxt.wrapping_add(offset), None, 0),
        Blind::RstAnywhere { seq } => (Control::Rst, seq, None, 0),
        Blind::SynInWindow { offset } => (Control::Syn, rcv_nxt.wrapping_add(offset), None, 0),
        Blind::SynAnywhere { seq } => (Control::Syn, seq, None, 0),
        Blind::DataBadAck {
            offset,
            len,
            ack_distance,
            too_new,
        } => {
            let ack = if too_new {
                snd_max.wrapping_add(1 + ack_distance)
            } else {
                snd_una.wrapping_sub(MAX_WINDOW + 1 + ack_distance)
            };
            (Control::Psh, rcv_nxt.wrapping_add(offset), Some(ack), len)
        }
        Blind::DataAnywhere { seq, ack, len } => (Control::Psh, seq, Some(ack), len),
    };
    if seq == rcv_nxt {
        // The one value RFC 5961 cannot protect; the attacker did not guess it.
        return None;
    }
    Some(tcp_datagram(
        SERVER,
        CLIENT,
        &TcpRepr {
            src_port: SERVER_PORT,
            dst_port: client_port,
            control,
            seq: SeqNum(seq),
            ack: ack.map(SeqNum),
            window: 65535,
            options: TcpOptions::default(),
            payload: &payload[..len],
        },
    ))
}

proptest! {
    #![proptest_config(config(24))]

    /// Blind RSTs, SYNs and data in the middle of a download: the connection stays established,
    /// no injected byte reaches the application, challenge ACKs stay within their rate limit,
    /// no blind segment draws more than one segment in reply, and the download completes
    /// byte-exact afterwards.
    #[test]
    fn blind_attacks_neither_reset_nor_inject(
        seed in any::<u64>(),
        attacks in proptest::collection::vec(
            (blind(), prop_oneof![3 => Just(0u64), 1 => 0u64..1500]),
            1..300,
        ),
    ) {
        let data = transfer_data(200_000, seed);
        let mut pair = Pair::new(seed, data.clone());
        pair.run_until(|p| p.received.len() >= 50_000, &mut |_, _, _| {});
        prop_assert_eq!(pair.client_state(), Some(State::Established));

        let port = pair.client.connection(pair.client_id).expect("live").local().port();
        let challenges_before = pair.client.connection(pair.client_id).expect("live").stats().challenge_acks;
        // The application read every byte delivered in order, so RCV.NXT is exact.
        let server_isn = pair.server_seen.isn.expect("the server sent its SYN-ACK");
        let rcv_nxt = server_isn.wrapping_add(1).wrapping_add(pair.received.len() as u32);
        let snd_max = pair.client_seen.snd_max.expect("the client sent");
        let snd_una = pair.client_seen.peer_acked.expect("the server acknowledged");
        let started = pair.now;
        let mut replies = 0usize;
        let mut sent = 0usize;
        let mut buf = vec![0u8; MTU];
        for (attack, pause_ms) in &attacks {
            pair.now += Duration::from_millis(*pause_ms);
            let Some(datagram) = blind_segment(attack, port, rcv_nxt, snd_una, snd_max) else {
                continue;
            };
            sent += 1;
            pair.client.handle_datagram(pair.now, &datagram);
            while let Some(len) = pair.client.poll_transmit(pair.now, &mut buf) {
                let (_, _, repr) = tcp_of(&buf[..len]).expect("the client sends TCP");
                prop_assert!(repr.control != Control::Rst, "the client reset: {:?}", repr);
                replies += 1;
            }
            prop_assert_eq!(pair.client_state(), Some(State::Established), "after {:?}", attack);
        }
        let elapsed = pair.now.duration_since(started);
        let conn = pair.client.connection(pair.client_id).expect("live");
        let challenges = conn.stats().challenge_acks - challenges_before;
        let limit = 10 * (elapsed.as_secs() + 1);
        prop_assert!(challenges <= limit, "{} challenge ACKs in {:?}", challenges, elapsed);
        prop_assert!(replies <= sent, "{} replies to {} blind segments", replies, sent);
        prop_assert!(!pair.client_failed);

        pair.finish();
        prop_assert!(pair.eof);
        prop_assert!(pair.received == data, "the download differs after the attack");
    }
}

/// A burst of in-window RSTs and SYNs at one instant draws at most the configured number of
/// challenge ACKs per second (RFC 5961 §7), and the next second some again.
#[test]
fn challenge_acks_are_rate_limited() {
    let data = transfer_data(100_000, 3);
    let mut pair = Pair::new(3, data.clone());
    pair.run_until(|p| p.received.len() >= 20_000, &mut |_, _, _| {});
    let port = pair
        .client
        .connection(pair.client_id)
        .expect("live")
        .local()
        .port();
    let server_isn = pair.server_seen.isn.expect("SYN-ACK seen");
    let rcv_nxt = server_isn
        .wrapping_add(1)
        .wrapping_add(pair.received.len() as u32);
    let mut buf = vec![0u8; MTU];
    for second in 0..3u64 {
        pair.now += Duration::from_secs(1);
        let mut replies = 0;
        for i in 0..400u32 {
            let attack = if i % 2 == 0 {
                Blind::RstInWindow { offset: 1 + i }
            } else {
                Blind::SynInWindow { offset: i }
            };
            let datagram = blind_segment(&attack, port, rcv_nxt, 0, 0).expect("not RCV.NXT");
            pair.client.handle_datagram(pair.now, &datagram);
            while let Some(len) = pair.client.poll_transmit(pair.now, &mut buf) {
                let (_, _, repr) = tcp_of(&buf[..len]).expect("TCP");
                assert_eq!(repr.control, Control::None, "a challenge ACK is a bare ACK");
                assert_eq!(repr.ack, Some(SeqNum(rcv_nxt)), "it acknowledges RCV.NXT");
                replies += 1;
            }
        }
        assert!(
            (1..=10).contains(&replies),
            "second {second}: {replies} challenge ACKs for 400 in-window RSTs and SYNs"
        );
        assert_eq!(pair.client_state(), Some(State::Established));
    }
    pair.finish();
    assert!(pair.received == data);
}

// ------------------------------------------------------------------------------ not for us

/// A datagram a host on the path might show us that is not a segment of our connection.
#[derive(Debug, Clone, Copy)]
enum Stray {
    /// A copy of the real datagram addressed to another host.
    OtherDestination,
    /// An IPv6 datagram.
    Ipv6,
    /// The real datagram with its header changed but not its checksum.
    BadIpChecksum,
    /// The first `n` (< 20) bytes of the real datagram.
    Truncated(usize),
    /// The real datagram with a header length below 5 words.
    BadIhl(u8),
    /// The real datagram claiming a total length longer than it is.
    BadTotalLength,
    /// The real datagram from a multicast source.
    MartianSource,
    /// A UDP datagram for us.
    OtherProtocol,
    /// The real datagram with a payload byte flipped: the TCP checksum fails.
    CorruptSegment(usize),
    /// A blind data segment in a datagram with IP options (record route).
    BlindWithOptions(u32),
    /// A copy of the real datagram with TTL 0 (a host still accepts it, RFC 1122 §3.2.1.7: a
    /// harmless duplicate).
    TtlZero,
}

fn stray() -> impl Strategy<Value = Stray> {
    prop_oneof![
        Just(Stray::OtherDestination),
        Just(Stray::Ipv6),
        Just(Stray::BadIpChecksum),
        (0usize..20).prop_map(Stray::Truncated),
        (0u8..5).prop_map(Stray::BadIhl),
        Just(Stray::BadTotalLength),
        Just(Stray::MartianSource),
        Just(Stray::OtherProtocol),
        any::<usize>().prop_map(Stray::CorruptSegment),
        any::<u32>().prop_map(Stray::BlindWithOptions),
        Just(Stray::TtlZero),
    ]
}

/// What `stray` builds from the real datagram `real`, and the drop reason the IPv4 layer must
/// count for it (`None` when the datagram passes IPv4 and TCP judges it).
fn make_stray(stray: Stray, real: &[u8], client_port: u16) -> (Vec<u8>, Option<DropReason>) {
    let mut copy = real.to_vec();
    match stray {
        Stray::OtherDestination => {
            copy[16..20].copy_from_slice(&Ipv4Addr::new(10, 77, 0, 3).octets());
            fix_ipv4_checksum(&mut copy);
            (copy, Some(DropReason::NotForUs))
        }
        Stray::Ipv6 => {
            let mut v6 = vec![0x60, 0, 0, 0, 0, 20, 6, 64];
            v6.extend_from_slice(&[0xfd; 32]);
            v6.extend_from_slice(&real[20..real.len().min(40)]);
            (v6, Some(DropReason::Ipv6))
        }
        Stray::BadIpChecksum => {
            copy[8] = copy[8].wrapping_sub(1);
            (copy, Some(DropReason::BadChecksum))
        }
        Stray::Truncated(n) => (copy[..n].to_vec(), Some(DropReason::Truncated)),
        Stray::BadIhl(words) => {
            copy[0] = 0x40 | words;
            (copy, Some(DropReason::BadHeaderLength))
        }
        Stray::BadTotalLength => {
            let claimed = (real.len() + 1) as u16;
            copy[2..4].copy_from_slice(&claimed.to_be_bytes());
            fix_ipv4_checksum(&mut copy);
            (copy, Some(DropReason::BadTotalLength))
        }
        Stray::MartianSource => {
            copy[12..16].copy_from_slice(&Ipv4Addr::new(224, 0, 0, 251).octets());
            fix_ipv4_checksum(&mut copy);
            (copy, Some(DropReason::BadSource))
        }
        Stray::OtherProtocol => (
            ipv4(SERVER, CLIENT, 17, 64, &[], &[0; 16]),
            Some(DropReason::UnsupportedProtocol),
        ),
        Stray::CorruptSegment(at) => {
            let index = 20 + at % (copy.len() - 20);
            copy[index] ^= 0x20;
            (copy, None)
        }
        Stray::BlindWithOptions(seq) => {
            let segment_bytes = {
                let repr = TcpRepr {
                    src_port: SERVER_PORT,
                    dst_port: client_port,
                    control: Control::Psh,
                    seq: SeqNum(seq),
                    ack: Some(SeqNum(seq.rotate_left(7))),
                    window: 1000,
                    options: TcpOptions::default(),
                    payload: b"injected",
                };
                segment(SERVER, CLIENT, &repr)
            };
            let record_route = [7, 7, 4, 0, 0, 0, 0, 0];
            (
                ipv4(SERVER, CLIENT, TCP, 64, &record_route, &segment_bytes),
                None,
            )
        }
        Stray::TtlZero => {
            copy[8] = 0;
            fix_ipv4_checksum(&mut copy);
            (copy, None)
        }
    }
}

proptest! {
    #![proptest_config(config(24))]

    /// Strays and corrupted copies injected next to the real datagrams of a download: each is
    /// counted under its reason and dropped (or judged harmless by TCP), and the download
    /// completes byte-exact.
    #[test]
    fn strays_are_counted_and_do_not_disturb_a_transfer(
        seed in any::<u64>(),
        strays in proptest::collection::vec((stray(), 0usize..4), 1..60),
    ) {
        let data = transfer_data(120_000, seed);
        let mut pair = Pair::new(seed, data.clone());
        let port = pair.client.connection(pair.client_id).expect("live").local().port();
        let mut pending = strays.into_iter();
        let mut next = pending.next();
        let mut countdown = next.as_ref().map_or(0, |s| s.1);
        let mut expected = std::collections::HashMap::<DropReason, u64>::new();
        let mut corrupted = 0u64;
        let mut injected = 0usize;
        pair.run_until(|p| p.eof, &mut |client, now, real| {
            let Some((stray, _)) = next else {
                return;
            };
            if real.len() < 40 {
                return;
            }
            if countdown > 0 {
                countdown -= 1;
                return;
            }
            let (datagram, reason) = make_stray(stray, real, port);
            match (reason, stray) {
                (Some(reason), _) => *expected.entry(reason).or_default() += 1,
                (None, Stray::CorruptSegment(_)) => corrupted += 1,
                (None, _) => {}
            }
            client.handle_datagram(now, &datagram);
            injected += 1;
            next = pending.next();
            countdown = next.as_ref().map_or(0, |s| s.1);
        });
        prop_assert!(pair.eof);
        prop_assert!(pair.received == data, "the download differs");
        prop_assert!(!pair.client_failed);
        for reason in DropReason::ALL {
            let want = expected.get(&reason).copied().unwrap_or(0);
            prop_assert_eq!(pair.client.ip_stats().dropped(reason), want, "{:?}", reason);
        }
        prop_assert_eq!(pair.client.stats().tcp_checksum_failures, corrupted);
        prop_assert!(injected > 0);
    }
}

// ------------------------------------------------------------------------------ checksum trust

/// With offloads the kernel vouches for a segment whose checksum field holds only part of the
/// sum: the stack must take it as it is. The same bytes from nowhere in particular are checked,
/// counted and dropped.
#[test]
fn a_trusted_segment_skips_the_checksum_and_an_unverified_one_is_checked() {
    let data = transfer_data(60_000, 11);
    let mut pair = Pair::new(11, data.clone());
    let mut offered = 0;
    pair.run_until(|p| p.eof, &mut |client, now, real| {
        let Some((_, _, repr)) = tcp_of(real) else {
            return;
        };
        if repr.payload.is_empty() || offered >= 3 {
            return;
        }
        offered += 1;
        // The real segment, as the kernel hands it over with NEEDS_CSUM: the field holds
        // something that is not the full sum. It arrives first; the real one then is a
        // duplicate.
        let mut offloaded = real.to_vec();
        offloaded[20 + 16] ^= 0x5a;
        let before = client.stats().tcp_checksum_failures;
        client.handle_datagram_with(now, &offloaded, ChecksumStatus::Trusted);
        assert_eq!(
            client.stats().tcp_checksum_failures,
            before,
            "trusted, not checked"
        );
        client.handle_datagram_with(now, &offloaded, ChecksumStatus::Unverified);
        assert_eq!(
            client.stats().tcp_checksum_failures,
            before + 1,
            "checked and counted"
        );
    });
    assert_eq!(offered, 3);
    assert!(pair.eof);
    assert!(pair.received == data, "the download differs");
    assert_eq!(pair.client.stats().tcp_checksum_failures, 3);
}
