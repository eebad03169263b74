//! Fuzz harness for TCP: a whole `Stack` talking to a scripted peer whose segments the fuzzer
//! chooses.
//!
//! The harness first completes a real handshake (the stack connecting out, or accepting on a
//! listener), built from the stack's own SYN or SYN-ACK so the sequence numbers are right. After
//! that, segment sequence and acknowledgment numbers are expressed as offsets from the values the
//! stack last revealed (its ACK = RCV.NXT, its highest sequence number sent = SND.MAX), so the
//! fuzzer reaches in-window segments, hole filling, FIN handling and every later state instead of
//! being rejected at the first check. Raw segments and raw datagrams cover the parsers.
//!
//! Input format (missing bytes read as zero):
//! ```text
//! config: mode:u8 buffers:u8 peer_isn:u32 peer_window:u16 peer_mss:u16 peer_shift:u8 peer_ts:u32
//!   mode bit 0: the stack accepts (else it connects); bit 1: skip the handshake;
//!   bits 2-4: peer offers timestamps, SACK, window scaling; bit 5: stack uses Nagle;
//!   bit 6: stack disables timestamps, bit 7: stack disables SACK
//! then records, each  op:u8  and its fields (op % 10):
//!   0, 1  segment at offsets  (see `Peer::offset_segment`)
//!   2     raw TCP segment:   flags:u8 len:u16 bytes   (bit 0: our ports, bit 1: fix checksum)
//!   3     raw datagram:      len:u16 bytes
//!   4     time passes:       millis:u16  (bit 7 of op: jump to the stack's next deadline)
//!   5     application send:  len:u16
//!   6     application recv:  len:u16
//!   7     close (even byte) or abort (odd byte): u8
//!   8     ICMP error about our traffic: kind:u8 mtu:u16 seq_offset:i16
//!   9     segment at offsets, delivered as two IPv4 fragments: cut:u8 reversed:u8 then as 0
//! ```
//! Invariants: no panic; every datagram the stack sends is valid (independent parser, checksums,
//! within the MTU and the buffer it was given); payload the stack sends is exactly what the
//! application queued at those sequence numbers; bytes the application reads are exactly what the
//! peer sent at those sequence numbers; the receive buffer never holds more than its capacity;
//! the connection table stays within its limit; `poll_transmit` runs dry.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use tunstack::stack::{ConnId, Event, Stack, StackConfig};
use tunstack::wire::{Control, SackBlock, SeqNum, TcpOptions, TcpRepr, Timestamps};

use crate::input::Input;
use crate::ipv4_target::{LOCAL, REMOTE};
use crate::packet::{self, Ipv4Fields, Sent, ICMP, TCP};

const SERVER_PORT: u16 = 80;
/// A second listener, so stray SYNs exercise passive opens and the backlog.
const OTHER_LISTENER: u16 = 8080;
const PEER_PORT: u16 = 40000;
const MAX_CONNECTIONS: usize = 6;
const MTUS: [usize; 4] = [1500, 576, 1280, 9000];
const RECV_BUFFERS: [usize; 8] = [1 << 20, 65535, 4096, 1460, 100, 1, 65536 + 7, 300_000];
const SEND_BUFFERS: [usize; 4] = [256 << 10, 4096, 1, 70_000];

/// The byte at sequence number `seq` of a stream; both directions use it, with different keys,
/// so content can be checked whatever order and overlap segments arrive in.
pub fn pattern(key: u32, seq: u32) -> u8 {
    let mixed = seq.wrapping_add(key).wrapping_mul(0x9e37_79b1);
    (mixed >> 24) as u8
}

const PEER_KEY: u32 = 0x5eed_0001;
const APP_KEY: u32 = 0x5eed_0002;

/// Runs one fuzz input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let mut peer = Peer::new(&mut input);
    let mut steps = 0;
    while !input.is_empty() && steps < 2048 {
        steps += 1;
        let op = input.u8();
        match op % 10 {
            0 | 1 => peer.offset_segment(&mut input, None),
            2 => peer.raw_segment(&mut input),
            3 => {
                let datagram = input.chunk().to_vec();
                peer.deliver(&datagram);
            }
            4 => {
                let millis = u64::from(input.u16());
                let deadline = peer.stack.poll_timeout();
                peer.now = match deadline {
                    Some(at) if op & 0x80 != 0 => at.max(peer.now),
                    _ => peer.now + Duration::from_millis(millis),
                };
                peer.peer_ts = peer.peer_ts.wrapping_add(millis as u32);
                peer.stack.handle_timeout(peer.now);
                peer.flush();
            }
            5 => {
                let len = usize::from(input.u16());
                peer.app_send(len);
            }
            6 => {
                let len = usize::from(input.u16());
                peer.app_recv(len);
            }
            7 => {
                if let Some(id) = peer.id {
                    let _ = if input.u8() & 1 == 0 {
                        peer.stack.close(id)
                    } else {
                        peer.stack.abort(id)
                    };
                    peer.flush();
                }
            }
            8 => peer.icmp_error(&mut input),
            _ => {
                let cut = input.u8();
                let reversed = input.u8() & 1 == 1;
                peer.offset_segment(&mut input, Some((cut, reversed)));
            }
        }
    }
    // Let every timer run out: the stack must settle without help.
    for _ in 0..64 {
        let Some(at) = peer.stack.poll_timeout() else {
            break;
        };
        peer.now = peer.now.max(at);
        peer.stack.handle_timeout(peer.now);
        peer.flush();
    }
}

/// The scripted peer and what it learned about the stack from the segments it received.
struct Peer {
    stack: Stack,
    now: Instant,
    mtu: usize,
    recv_buffer: usize,
    /// The connection under test.
    id: Option<ConnId>,
    /// The stack's port of that connection, and ours.
    stack_port: u16,
    peer_port: u16,
    peer_isn: u32,
    /// One past the highest sequence number we sent.
    peer_nxt: u32,
    peer_ts: u32,
    peer_window: u16,
    /// The stack's ISN, once seen.
    stack_iss: Option<u32>,
    /// Highest sequence number the stack sent (SND.MAX) and its latest ACK (RCV.NXT).
    stack_snd_max: u32,
    stack_ack: Option<u32>,
    /// Latest TSval the stack sent, to echo.
    stack_ts: u32,
    /// Latest ACK we sent, the base for SACK blocks and ICMP quotes.
    peer_ack: u32,
    /// Whether the stream into the stack holds only `pattern` bytes at their sequence numbers
    /// and starts at `peer_isn + 1` (false if the handshake was skipped or raw bytes got in).
    content_known: bool,
    /// Bytes the application read, and queued.
    read: u64,
    written: u64,
    tx: Vec<u8>,
    scratch: Vec<u8>,
}

impl Peer {
    fn new(input: &mut Input<'_>) -> Self {
        let mode = input.u8();
        let buffers = input.u8();
        let peer_isn = input.u32();
        let peer_window = input.u16();
        let peer_mss = input.u16();
        let peer_shift = input.u8();
        let peer_ts = input.u32();
        let mtu = MTUS[usize::from(buffers >> 6)];
        let recv_buffer = RECV_BUFFERS[usize::from(buffers & 7)];
        let mut config = StackConfig::new(LOCAL, mtu, [7; 16], u64::from(peer_isn));
        config.tcp.recv_buffer = recv_buffer;
        config.tcp.send_buffer = SEND_BUFFERS[usize::from((buffers >> 3) & 3)];
        config.tcp.nagle = mode & 0x20 != 0;
        config.tcp.timestamps = mode & 0x40 == 0;
        config.tcp.sack = mode & 0x80 == 0;
        config.max_connections = MAX_CONNECTIONS;
        config.backlog = 2;
        let now = Instant::now();
        let mut peer = Peer {
            stack: Stack::new(now, config),
            now,
            mtu,
            recv_buffer,
            id: None,
            stack_port: SERVER_PORT,
            peer_port: PEER_PORT,
            peer_isn,
            peer_nxt: peer_isn.wrapping_add(1),
            peer_ts,
            peer_window,
            stack_iss: None,
            stack_snd_max: 0,
            stack_ack: None,
            stack_ts: 0,
            peer_ack: 0,
            content_known: false,
            read: 0,
            written: 0,
            tx: vec![0; mtu],
            scratch: Vec::new(),
        };
        peer.stack
            .listen(OTHER_LISTENER)
            .expect("fresh stack listens");
        let options = TcpOptions {
            mss: (mode & 0x10 == 0 || peer_mss != 0).then_some(peer_mss),
            window_scale: (mode & 0x10 != 0).then_some(peer_shift),
            sack_permitted: mode & 0x08 != 0,
            timestamps: (mode & 0x04 != 0).then_some(Timestamps {
                value: peer_ts,
                echo: 0,
            }),
            sack_blocks: [None; 4],
        };
        let server = mode & 1 != 0;
        let handshake = mode & 2 == 0;
        if server {
            peer.stack.listen(SERVER_PORT).expect("fresh stack listens");
            if handshake {
                peer.send_repr(&TcpRepr {
                    src_port: PEER_PORT,
                    dst_port: SERVER_PORT,
                    control: Control::Syn,
                    seq: SeqNum(peer_isn),
                    ack: None,
                    window: peer_window,
                    options,
                    payload: &[],
                });
            }
        } else {
            let id = peer
                .stack
                .connect(now, SocketAddrV4::new(REMOTE, SERVER_PORT))
                .expect("fresh stack connects");
            peer.id = Some(id);
            peer.peer_port = SERVER_PORT;
            peer.stack_port = peer
                .stack
                .connection(id)
                .map_or(0, |conn| conn.local().port());
            peer.flush();
            if let (true, Some(iss)) = (handshake, peer.stack_iss) {
                let echo = peer.stack_ts;
                peer.send_repr(&TcpRepr {
                    src_port: SERVER_PORT,
                    dst_port: peer.stack_port,
                    control: Control::Syn,
                    seq: SeqNum(peer_isn),
                    ack: Some(SeqNum(iss.wrapping_add(1))),
                    window: peer_window,
                    options: TcpOptions {
                        timestamps: options.timestamps.map(|ts| Timestamps { echo, ..ts }),
                        ..options
                    },
                    payload: &[],
                });
            }
        }
        if server && handshake {
            if let Some(iss) = peer.stack_iss {
                peer.send_repr(&TcpRepr {
                    src_port: PEER_PORT,
                    dst_port: SERVER_PORT,
                    control: Control::None,
                    seq: SeqNum(peer_isn.wrapping_add(1)),
                    ack: Some(SeqNum(iss.wrapping_add(1))),
                    window: peer_window,
                    options: TcpOptions {
                        timestamps: options.timestamps.map(|_| Timestamps {
                            value: peer_ts,
                            echo: peer.stack_ts,
                        }),
                        ..TcpOptions::default()
                    },
                    payload: &[],
                });
            }
        }
        peer.content_known = handshake && peer.id.is_some();
        peer
    }

    /// A segment whose numbers are offsets from what the stack revealed:
    /// ```text
    /// flags:u8 select:u8 seq:i16 ack:i16 [seq:u32 if select&3==2] [ack:u32 if (select>>2)&3==2]
    /// [window:u16 if select bit 7] [options:u8 and their fields if select bit 5] len:u16
    /// ```
    /// `select` bits 0-1 pick the sequence number: RCV.NXT+seq, our highest sent+seq, a random
    /// one, RCV.NXT+256*seq; bits 2-3 the ACK: SND.MAX+ack, SND.MAX+256*ack, a random one, our
    /// previous ACK+ack; bit 4 corrupts the checksum, bit 6 sends the flag byte raw (illegal
    /// combinations included). RCV.NXT is the stack's latest ACK, SND.MAX its highest sequence
    /// number sent.
    fn offset_segment(&mut self, input: &mut Input<'_>, fragmented: Option<(u8, bool)>) {
        let flags = input.u8();
        let select = input.u8();
        let seq_offset = i32::from(input.i16());
        let ack_offset = i32::from(input.i16());
        let seq_base = self.stack_ack.unwrap_or(self.peer_isn.wrapping_add(1));
        let seq = match select & 3 {
            0 => seq_base.wrapping_add(seq_offset as u32),
            1 => self.peer_nxt.wrapping_add(seq_offset as u32),
            2 => input.u32(),
            _ => seq_base.wrapping_add((seq_offset * 256) as u32),
        };
        let ack = match (select >> 2) & 3 {
            0 => self.stack_snd_max.wrapping_add(ack_offset as u32),
            1 => self.stack_snd_max.wrapping_add((ack_offset * 256) as u32),
            2 => input.u32(),
            _ => self.peer_ack.wrapping_add(ack_offset as u32),
        };
        let window = if select & 0x80 != 0 {
            input.u16()
        } else {
            self.peer_window
        };
        let options = if select & 0x20 != 0 {
            self.read_options(input)
        } else {
            self.default_options()
        };
        let len = usize::from(input.u16() & 0x1fff);
        let control = match flags & 0x07 {
            0 if flags & 0x08 != 0 => Control::Psh,
            0 => Control::None,
            1 => Control::Fin,
            2 => Control::Syn,
            4 => Control::Rst,
            _ => Control::None,
        };
        let data_seq = seq.wrapping_add(u32::from(control == Control::Syn));
        let end = data_seq
            .wrapping_add(len as u32)
            .wrapping_add(u32::from(control == Control::Fin));
        if (end.wrapping_sub(self.peer_nxt) as i32) > 0 {
            self.peer_nxt = end;
        }
        let payload: Vec<u8> = (0..len)
            .map(|i| pattern(PEER_KEY, data_seq.wrapping_add(i as u32)))
            .collect();
        let repr = TcpRepr {
            src_port: self.peer_port,
            dst_port: self.stack_port,
            control,
            seq: SeqNum(seq),
            ack: (flags & 0x10 != 0).then_some(SeqNum(ack)),
            window,
            options,
            payload: &payload,
        };
        if flags & 0x10 != 0 {
            self.peer_ack = ack;
        }
        let mut segment = vec![0u8; repr.header_len() + payload.len()];
        repr.emit(REMOTE, LOCAL, &mut segment);
        if select & 0x40 != 0 {
            segment[13] = flags;
            packet::fix_tcp_checksum(REMOTE, LOCAL, &mut segment);
        }
        if select & 0x10 != 0 {
            segment[17] ^= 0x01;
        }
        let fields = Ipv4Fields::plain(REMOTE, LOCAL, TCP);
        match fragmented {
            None => {
                let datagram = packet::ipv4_datagram(&fields, &segment);
                self.deliver(&datagram);
            }
            Some((cut, reversed)) => {
                let cut = (8 * usize::from(cut)).min(segment.len() / 8 * 8).max(8);
                let first = Ipv4Fields {
                    dont_fragment: false,
                    more_fragments: cut < segment.len(),
                    identification: u16::from(cut as u8),
                    ..fields
                };
                let second = Ipv4Fields {
                    offset_units: (cut / 8) as u16,
                    more_fragments: false,
                    ..first
                };
                let mut datagrams = vec![packet::ipv4_datagram(
                    &first,
                    &segment[..cut.min(segment.len())],
                )];
                if cut < segment.len() {
                    datagrams.push(packet::ipv4_datagram(&second, &segment[cut..]));
                }
                if reversed {
                    datagrams.reverse();
                }
                for datagram in datagrams {
                    self.deliver(&datagram);
                }
            }
        }
    }

    /// ```text
    /// which:u8 ts_delta:i8 [mss:u16] [shift:u8] [sack: count:u8 then (left:i16 len:u16)*]
    /// ```
    fn read_options(&mut self, input: &mut Input<'_>) -> TcpOptions {
        let which = input.u8();
        let ts_delta = input.u8() as i8;
        let mut options = TcpOptions::default();
        if which & 1 != 0 {
            options.timestamps = Some(Timestamps {
                value: self.peer_ts.wrapping_add(i32::from(ts_delta) as u32),
                echo: self.stack_ts,
            });
        }
        if which & 2 != 0 {
            options.mss = Some(input.u16());
        }
        if which & 4 != 0 {
            options.window_scale = Some(input.u8());
        }
        options.sack_permitted = which & 8 != 0;
        if which & 0x10 != 0 {
            let count = 1 + usize::from(input.u8() % 4);
            let room = if options.timestamps.is_some() { 3 } else { 4 };
            for slot in options.sack_blocks.iter_mut().take(count.min(room)) {
                let left = self.peer_ack.wrapping_add(i32::from(input.i16()) as u32);
                let len = u32::from(input.u16());
                *slot = Some(SackBlock {
                    left: SeqNum(left),
                    right: SeqNum(left.wrapping_add(len)),
                });
            }
            // Options that do not fit in 40 bytes are not what a peer can send.
            if options.wire_len() > 40 {
                options.mss = None;
                options.window_scale = None;
                options.sack_permitted = false;
            }
        }
        options
    }

    fn default_options(&self) -> TcpOptions {
        TcpOptions {
            timestamps: Some(Timestamps {
                value: self.peer_ts,
                echo: self.stack_ts,
            }),
            ..TcpOptions::default()
        }
    }

    /// Raw segment bytes in a valid IPv4 datagram.
    fn raw_segment(&mut self, input: &mut Input<'_>) {
        let flags = input.u8();
        let mut segment = input.chunk().to_vec();
        if flags & 1 != 0 && segment.len() >= 4 {
            segment[0..2].copy_from_slice(&self.peer_port.to_be_bytes());
            segment[2..4].copy_from_slice(&self.stack_port.to_be_bytes());
            // Arbitrary bytes can land in the stream: stop checking its content.
            self.content_known = false;
        }
        if flags & 2 != 0 {
            packet::fix_tcp_checksum(REMOTE, LOCAL, &mut segment);
        }
        let datagram = packet::ipv4_datagram(&Ipv4Fields::plain(REMOTE, LOCAL, TCP), &segment);
        self.deliver(&datagram);
    }

    /// An ICMP error from a router quoting one of our segments.
    fn icmp_error(&mut self, input: &mut Input<'_>) {
        let kind = input.u8();
        let mtu = input.u16();
        let seq_offset = i32::from(input.i16());
        let (icmp_type, code) = match kind % 8 {
            0..=3 => (3, 4),
            4 => (3, kind >> 3),
            5 => (11, 0),
            6 => (12, 0),
            _ => (kind, kind >> 3),
        };
        let mut quoted = vec![0u8; 28];
        quoted[0] = 0x45;
        quoted[2..4].copy_from_slice(&1500u16.to_be_bytes());
        quoted[6] = 0x40;
        quoted[8] = 63;
        quoted[9] = TCP;
        quoted[12..16].copy_from_slice(&LOCAL.octets());
        quoted[16..20].copy_from_slice(&REMOTE.octets());
        packet::fix_ipv4_checksum(&mut quoted);
        quoted[20..22].copy_from_slice(&self.stack_port.to_be_bytes());
        quoted[22..24].copy_from_slice(&self.peer_port.to_be_bytes());
        let seq = self.peer_ack.wrapping_add(seq_offset as u32);
        quoted[24..28].copy_from_slice(&seq.to_be_bytes());
        let mut message = vec![icmp_type, code, 0, 0, 0, 0];
        message.extend_from_slice(&mtu.to_be_bytes());
        message.extend_from_slice(&quoted);
        packet::fix_icmp_checksum(&mut message);
        let router = Ipv4Addr::new(10, 77, 1, 1);
        let datagram = packet::ipv4_datagram(&Ipv4Fields::plain(router, LOCAL, ICMP), &message);
        self.deliver(&datagram);
    }

    fn send_repr(&mut self, repr: &TcpRepr<'_>) {
        let mut segment = vec![0u8; repr.header_len() + repr.payload.len()];
        repr.emit(REMOTE, LOCAL, &mut segment);
        let datagram = packet::ipv4_datagram(&Ipv4Fields::plain(REMOTE, LOCAL, TCP), &segment);
        self.deliver(&datagram);
    }

    fn deliver(&mut self, datagram: &[u8]) {
        self.stack.handle_datagram(self.now, datagram);
        self.flush();
    }

    fn app_send(&mut self, len: usize) {
        let Some(id) = self.id else {
            return;
        };
        let data: Vec<u8> = (0..len)
            .map(|i| pattern(APP_KEY, (self.written + i as u64) as u32))
            .collect();
        if let Ok(queued) = self.stack.send(id, &data) {
            assert!(queued <= len);
            self.written += queued as u64;
        }
        self.flush();
    }

    fn app_recv(&mut self, len: usize) {
        let Some(id) = self.id else {
            return;
        };
        self.scratch.resize(len, 0);
        if let Ok(n) = self.stack.recv(id, &mut self.scratch) {
            assert!(n <= len);
            if self.content_known {
                for (i, &byte) in self.scratch[..n].iter().enumerate() {
                    let seq = self
                        .peer_isn
                        .wrapping_add(1)
                        .wrapping_add((self.read + i as u64) as u32);
                    assert_eq!(
                        byte,
                        pattern(PEER_KEY, seq),
                        "the application read a byte the peer never sent at stream offset {}",
                        self.read + i as u64
                    );
                }
            }
            self.read += n as u64;
        }
        self.flush();
    }

    /// Sends everything the stack has, checking each datagram, then handles its events.
    fn flush(&mut self) {
        let mut sent = 0;
        while let Some(len) = self.stack.poll_transmit(self.now, &mut self.tx) {
            sent += 1;
            assert!(sent <= 100_000, "poll_transmit never runs dry");
            assert!(len <= self.mtu);
            let datagram = self.tx[..len].to_vec();
            if let Sent::Tcp { dst, segment } =
                packet::check_transmitted(&datagram, LOCAL, self.mtu)
            {
                self.observe(dst, segment);
            }
        }
        while let Some(event) = self.stack.poll_event() {
            if let Event::Incoming { port } = event {
                while let Some(id) = self.stack.accept(port) {
                    if port == SERVER_PORT && self.id.is_none() {
                        self.id = Some(id);
                    } else {
                        let _ = self.stack.close(id);
                    }
                }
            }
        }
        if let Some(conn) = self.id.and_then(|id| self.stack.connection(id)) {
            assert!(
                conn.recv_queue() <= self.recv_buffer,
                "receive buffer holds {} bytes, capacity {}",
                conn.recv_queue(),
                self.recv_buffer
            );
        }
        assert!(self.stack.connection_count() <= MAX_CONNECTIONS);
    }

    /// Learns the stack's sequence numbers from a segment it sent, and checks its payload.
    fn observe(&mut self, dst: Ipv4Addr, segment: &[u8]) {
        let repr = TcpRepr::parse(LOCAL, dst, segment).expect("checked by check_transmitted");
        if dst != REMOTE || repr.src_port != self.stack_port || repr.dst_port != self.peer_port {
            return;
        }
        if repr.control == Control::Syn {
            assert!(repr.payload.is_empty(), "data on our SYN");
            if self.stack_iss != Some(repr.seq.0) {
                if self.stack_iss.is_some() {
                    // A new incarnation on the same ports (the old one was closed and reaped,
                    // so only a passive open can do this): follow it from scratch.
                    assert!(
                        self.id.is_none_or(|id| self.stack.connection(id).is_none()),
                        "the ISN of a live connection changed"
                    );
                    self.id = None;
                    self.stack_ack = None;
                    self.content_known = false;
                    self.read = 0;
                    self.written = 0;
                }
                self.stack_iss = Some(repr.seq.0);
                self.stack_snd_max = repr.seq.0.wrapping_add(1);
                self.peer_ack = self.stack_snd_max;
            }
        }
        if repr.control == Control::Rst {
            return;
        }
        let end = repr.seq.0.wrapping_add(repr.segment_len() as u32);
        if (end.wrapping_sub(self.stack_snd_max) as i32) > 0 {
            self.stack_snd_max = end;
        }
        if let Some(ack) = repr.ack {
            self.stack_ack = Some(ack.0);
        }
        if let Some(ts) = repr.options.timestamps {
            self.stack_ts = ts.value;
        }
        if let Some(iss) = self.stack_iss {
            let first = iss.wrapping_add(1);
            for (i, &byte) in repr.payload.iter().enumerate() {
                let offset = repr.seq.0.wrapping_add(i as u32).wrapping_sub(first);
                assert!(
                    u64::from(offset) < self.written,
                    "sent stream offset {offset} but the application wrote {} bytes",
                    self.written
                );
                assert_eq!(
                    byte,
                    pattern(APP_KEY, offset),
                    "sent a wrong byte at stream offset {offset}"
                );
            }
        }
    }
}
