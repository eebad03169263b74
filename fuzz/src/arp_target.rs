//! Fuzz harness for ARP: `ArpPacket::parse`/`to_bytes` and the `Neighbors` state machine
//! driven by hostile packets, resolutions and time.
//!
//! Input format (every byte string is valid; missing bytes read as zero):
//! ```text
//! config:  per_neighbor:u8  total:u8  entries:u8  replies:u8  requests:u8
//! then records, each  op:u8  and its fields:
//!   op % 7 == 0  raw packet:      len:u16 bytes
//!   op % 7 == 1  built packet:    kind:u8 sender:u8 target:u8   (indexes into HOSTS; kind
//!                bit 0 reply, bit 1 sender MAC from another host, bit 2 target MAC zero)
//!   op % 7 == 2  resolve:         host:u8 len:u8
//!   op % 7 == 3  time passes:     millis:u16 (x 16 when the op's bit 7 is set)
//!   op % 7 == 4  poll_transmit until empty
//!   op % 7 == 5  announce
//!   op % 7 == 6  poll_event until empty
//! ```
//! Invariants after every step: no panic; held datagrams within `queue_total`, entries within
//! `max_entries`; everything sent is from our MAC and address, replies go to the asker,
//! released datagrams to a unicast MAC and were queued for it; packets that parse emit back to
//! the same 28 bytes. At the end, once every timer ran, nothing is held or remembered.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use tunstack::arp::{ArpConfig, ArpPacket, Neighbors, Operation, Resolution, Transmit};
use tunstack::ethernet::MacAddr;

use crate::input::Input;

/// Our MAC in the harness.
pub const OUR_MAC: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x02]);
/// Our address in the harness.
pub const OUR_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);

/// Addresses packets and resolutions use: neighbours, us, and the impossible ones.
const HOSTS: [(MacAddr, Ipv4Addr); 8] = [
    (MacAddr([2, 0, 0, 0, 0, 1]), Ipv4Addr::new(10, 77, 0, 1)),
    (MacAddr([2, 0, 0, 0, 0, 3]), Ipv4Addr::new(10, 77, 0, 3)),
    (MacAddr([2, 0, 0, 0, 0, 4]), Ipv4Addr::new(10, 77, 0, 4)),
    (MacAddr([2, 0, 0, 0, 0, 5]), Ipv4Addr::new(10, 77, 0, 5)),
    (OUR_MAC, OUR_IP),
    (MacAddr::BROADCAST, Ipv4Addr::BROADCAST),
    (MacAddr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED),
    (MacAddr([1, 0, 0x5e, 0, 0, 1]), Ipv4Addr::new(224, 0, 0, 1)),
];

/// Runs one fuzz input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let config = ArpConfig {
        queue_per_neighbor: usize::from(input.u8() % 8),
        queue_total: usize::from(input.u8() % 16),
        max_entries: 1 + usize::from(input.u8() % 8),
        max_pending_replies: usize::from(input.u8() % 8),
        max_requests: 1 + u32::from(input.u8() % 4),
        ..ArpConfig::default()
    };
    let mut neighbors = Neighbors::new(config.clone(), OUR_MAC, OUR_IP);
    let start = Instant::now();
    let mut now = start;
    // What was queued for each address, to check released datagrams against.
    let mut queued: Vec<(Ipv4Addr, Vec<u8>)> = Vec::new();
    let mut steps = 0;
    while !input.is_empty() && steps < 4096 {
        steps += 1;
        let op = input.u8();
        match op % 7 {
            0 => {
                let bytes = input.chunk();
                if let Ok(packet) = ArpPacket::parse(bytes) {
                    assert_eq!(&packet.to_bytes()[..], &bytes[..28], "parse/emit inverses");
                }
                let _ = neighbors.handle_arp(now, bytes);
            }
            1 => {
                let kind = input.u8();
                let sender = HOSTS[usize::from(input.u8()) % HOSTS.len()];
                let target = HOSTS[usize::from(input.u8()) % HOSTS.len()];
                let sender_mac = if kind & 2 != 0 {
                    HOSTS[usize::from(kind >> 3) % HOSTS.len()].0
                } else {
                    sender.0
                };
                let packet = ArpPacket {
                    operation: if kind & 1 != 0 {
                        Operation::Reply
                    } else {
                        Operation::Request
                    },
                    sender_mac,
                    sender_ip: sender.1,
                    target_mac: if kind & 4 != 0 {
                        MacAddr::UNSPECIFIED
                    } else {
                        target.0
                    },
                    target_ip: target.1,
                };
                let bytes = packet.to_bytes();
                assert_eq!(ArpPacket::parse(&bytes), Ok(packet));
                let _ = neighbors.handle_arp(now, &bytes);
            }
            2 => {
                let host = HOSTS[usize::from(input.u8()) % HOSTS.len()];
                let len = usize::from(input.u8());
                let datagram: Vec<u8> = (0..len).map(|n| n as u8 ^ steps as u8).collect();
                if neighbors.resolve(now, host.1, &datagram) == Resolution::Queued {
                    queued.push((host.1, datagram));
                }
            }
            3 => {
                let scale = if op & 0x80 != 0 { 16 } else { 1 };
                now += Duration::from_millis(u64::from(input.u16()) * scale);
                neighbors.handle_timeout(now);
            }
            4 => drain(&mut neighbors, &mut queued),
            5 => neighbors.announce(now),
            _ => while neighbors.poll_event().is_some() {},
        }
        check_bounds(&neighbors, &config);
    }
    // Every timer runs out: resolutions fail, entries expire, failures are forgotten.
    for _ in 0..10_000 {
        drain(&mut neighbors, &mut queued);
        let Some(deadline) = neighbors.poll_timeout() else {
            break;
        };
        now = now.max(deadline);
        neighbors.handle_timeout(now);
        check_bounds(&neighbors, &config);
    }
    drain(&mut neighbors, &mut queued);
    assert_eq!(neighbors.poll_timeout(), None, "a timer never ran out");
    assert!(neighbors.is_empty(), "an entry outlived every timer");
    assert_eq!(
        neighbors.held_datagrams(),
        0,
        "datagrams held after everything ended"
    );
}

fn check_bounds(neighbors: &Neighbors, config: &ArpConfig) {
    assert!(neighbors.held_datagrams() <= config.queue_total);
    assert!(neighbors.len() <= config.max_entries);
}

fn drain(neighbors: &mut Neighbors, queued: &mut Vec<(Ipv4Addr, Vec<u8>)>) {
    let mut buf = [0u8; 1514];
    while let Some(transmit) = neighbors.poll_transmit() {
        match &transmit {
            Transmit::Arp { dst, packet } => {
                assert_eq!((packet.sender_mac, packet.sender_ip), (OUR_MAC, OUR_IP));
                match packet.operation {
                    Operation::Reply => assert_eq!(*dst, packet.target_mac),
                    Operation::Request => {
                        assert_eq!(packet.target_mac, MacAddr::UNSPECIFIED);
                        assert!(dst.is_broadcast() || dst.is_unicast());
                    }
                }
            }
            Transmit::Ipv4 { dst, datagram } => {
                assert!(dst.is_unicast(), "released to {dst}");
                let position = queued
                    .iter()
                    .position(|(_, q)| q == datagram)
                    .expect("released datagram was queued");
                queued.remove(position);
            }
        }
        let len = transmit
            .emit(OUR_MAC, &mut buf)
            .expect("fits a 1514-byte frame");
        assert!(len >= 60);
    }
}
