//! A client `Stack` driven by a peer the test scripts segment by segment (the addresses of
//! tests/hostile*.rs and tests/stack.rs), and what reads the datagrams it sends.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use super::segment::tcp_datagram;
use tunstack::stack::{ConnId, Stack, StackConfig};
use tunstack::tcp::State;
use tunstack::wire::{Control, SeqNum, TcpOptions, TcpRepr, Timestamps};

pub const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
pub const SERVER: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 2);
pub const SERVER_PORT: u16 = 80;
pub const MTU: usize = 1500;

/// The byte at sequence number `seq` of a scripted stream, so content can be checked whatever
/// order and overlap segments arrive in.
pub fn pattern(seq: u32) -> u8 {
    (seq.wrapping_mul(0x9e37_79b1) >> 24) as u8
}

/// The TCP segment in a datagram a stack sent: (source, destination, segment).
pub fn tcp_of(datagram: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, TcpRepr<'_>)> {
    let header_len = usize::from(datagram.first()? & 0x0f) * 4;
    if datagram.get(9) != Some(&tunstack::ipv4::PROTOCOL_TCP) {
        return None;
    }
    let src = Ipv4Addr::new(datagram[12], datagram[13], datagram[14], datagram[15]);
    let dst = Ipv4Addr::new(datagram[16], datagram[17], datagram[18], datagram[19]);
    let repr = TcpRepr::parse(src, dst, datagram.get(header_len..)?).ok()?;
    Some((src, dst, repr))
}

pub fn stack_config(addr: Ipv4Addr, seed: u64, recv_buffer: usize) -> StackConfig {
    let mut secret = [0u8; 16];
    secret[..8].copy_from_slice(&seed.to_le_bytes());
    secret[8..].copy_from_slice(&(!seed).to_le_bytes());
    let mut config = StackConfig::new(addr, MTU, secret, seed);
    config.tcp.recv_buffer = recv_buffer;
    config
}

/// A client `Stack` connected to a peer scripted by the test, which knows the real sequence
/// numbers because it did the handshake from the stack's own SYN.
pub struct ScriptedPeer {
    pub now: Instant,
    pub stack: Stack,
    pub id: ConnId,
    pub port: u16,
    pub peer_isn: u32,
    /// The stack's ISN + 1 (its first data sequence number) and its latest ACK.
    pub stack_next: u32,
    pub stack_ack: u32,
    pub read: Vec<u8>,
    pub buf: Vec<u8>,
}

impl ScriptedPeer {
    pub fn connect(recv_buffer: usize, peer_isn: u32, timestamps: bool) -> ScriptedPeer {
        let now = Instant::now();
        let mut stack = Stack::new(now, stack_config(CLIENT, u64::from(peer_isn), recv_buffer));
        let id = stack
            .connect(now, SocketAddrV4::new(SERVER, SERVER_PORT))
            .expect("connect");
        let mut peer = ScriptedPeer {
            now,
            stack,
            id,
            port: 0,
            peer_isn,
            stack_next: 0,
            stack_ack: 0,
            read: Vec::new(),
            buf: vec![0; MTU],
        };
        let syn = peer
            .flush()
            .into_iter()
            .next()
            .expect("the stack sends its SYN");
        let (_, _, syn) = tcp_of(&syn).expect("a TCP SYN");
        assert_eq!(syn.control, Control::Syn);
        peer.port = syn.src_port;
        peer.stack_next = syn.seq.0.wrapping_add(1);
        let echo = syn.options.timestamps.map_or(0, |ts| ts.value);
        peer.send(&TcpRepr {
            src_port: SERVER_PORT,
            dst_port: peer.port,
            control: Control::Syn,
            seq: SeqNum(peer_isn),
            ack: Some(SeqNum(peer.stack_next)),
            window: 65535,
            options: TcpOptions {
                mss: Some(1460),
                sack_permitted: true,
                timestamps: timestamps.then_some(Timestamps { value: 1, echo }),
                ..TcpOptions::default()
            },
            payload: &[],
        });
        assert_eq!(peer.state(), Some(State::Established));
        peer
    }

    pub fn state(&self) -> Option<State> {
        self.stack.connection(self.id).map(|c| c.state())
    }

    /// A data segment at `seq` whose bytes are `pattern(seq + i)`.
    pub fn data(&mut self, seq: u32, len: usize) {
        let payload: Vec<u8> = (0..len)
            .map(|i| pattern(seq.wrapping_add(i as u32)))
            .collect();
        self.send(&TcpRepr {
            src_port: SERVER_PORT,
            dst_port: self.port,
            control: Control::Psh,
            seq: SeqNum(seq),
            ack: Some(SeqNum(self.stack_next)),
            window: 65535,
            options: TcpOptions::default(),
            payload: &payload,
        });
    }

    pub fn send(&mut self, repr: &TcpRepr<'_>) -> Vec<Vec<u8>> {
        let datagram = tcp_datagram(SERVER, CLIENT, repr);
        self.stack.handle_datagram(self.now, &datagram);
        self.flush()
    }

    pub fn flush(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(len) = self.stack.poll_transmit(self.now, &mut self.buf) {
            let datagram = self.buf[..len].to_vec();
            if let Some((_, _, repr)) = tcp_of(&datagram) {
                if let Some(ack) = repr.ack {
                    self.stack_ack = ack.0;
                }
            }
            out.push(datagram);
        }
        while self.stack.poll_event().is_some() {}
        out
    }

    /// Reads up to `len` bytes into `read`.
    pub fn recv(&mut self, len: usize) {
        let mut chunk = vec![0u8; len];
        if let Ok(n) = self.stack.recv(self.id, &mut chunk) {
            self.read.extend_from_slice(&chunk[..n]);
        }
        self.flush();
    }

    /// The bytes the application should have read: the peer's stream from its ISN + 1.
    pub fn expected_read(&self) -> Vec<u8> {
        let first = self.peer_isn.wrapping_add(1);
        (0..self.read.len())
            .map(|i| pattern(first.wrapping_add(i as u32)))
            .collect()
    }
}
