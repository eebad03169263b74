//! Unit tests of the neighbour cache's corners; the RFC rules themselves are in tests/arp.rs.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::*;
use crate::ethernet::{EthernetRepr, MacAddr};

const OUR_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
const OUR_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const GW_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const GW_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);

fn cache(config: ArpConfig) -> Neighbors {
    Neighbors::new(config, OUR_MAC, OUR_IP)
}

fn packet(operation: Operation, sender: (MacAddr, Ipv4Addr), target: Ipv4Addr) -> [u8; 28] {
    ArpPacket {
        operation,
        sender_mac: sender.0,
        sender_ip: sender.1,
        target_mac: if operation == Operation::Reply {
            OUR_MAC
        } else {
            MacAddr::UNSPECIFIED
        },
        target_ip: target,
    }
    .to_bytes()
}

fn drain(neighbors: &mut Neighbors) -> Vec<Transmit> {
    std::iter::from_fn(|| neighbors.poll_transmit()).collect()
}

#[test]
fn transmit_emits_a_padded_frame_from_us() {
    let mut neighbors = cache(ArpConfig::default());
    let t0 = Instant::now();
    assert_eq!(
        neighbors.resolve(t0, GW_IP, &[0x45; 20]),
        Resolution::Queued
    );
    let request = neighbors.poll_transmit().expect("a request");
    let mut buf = [0xaau8; 1514];
    let len = request.emit(OUR_MAC, &mut buf).expect("fits");
    assert_eq!(len, 60);
    let (repr, payload) = EthernetRepr::parse(&buf[..len]).expect("valid frame");
    assert_eq!(repr.dst, MacAddr::BROADCAST);
    assert_eq!(repr.src, OUR_MAC);
    assert_eq!(repr.ethertype, etherparse::EtherType::ARP);
    let parsed = ArpPacket::parse(payload).expect("valid ARP");
    assert_eq!(parsed.operation, Operation::Request);
    assert_eq!(parsed.target_ip, GW_IP);
    assert_eq!((parsed.sender_mac, parsed.sender_ip), (OUR_MAC, OUR_IP));
    assert!(buf[42..60].iter().all(|&b| b == 0));

    assert_eq!(
        neighbors.handle_arp(t0, &packet(Operation::Reply, (GW_MAC, GW_IP), OUR_IP)),
        Ok(())
    );
    let released = neighbors.poll_transmit().expect("the datagram");
    assert_eq!(released.ethertype(), etherparse::EtherType::IPV4);
    assert_eq!(released.emit(OUR_MAC, &mut buf), Ok(60));
    assert_eq!(&buf[..6], &GW_MAC.0);
    assert_eq!(&buf[14..34], &[0x45; 20]);
}

#[test]
fn broadcast_and_multicast_next_hops_need_no_arp() {
    let mut neighbors = cache(ArpConfig::default());
    let t0 = Instant::now();
    assert_eq!(
        neighbors.resolve(t0, Ipv4Addr::BROADCAST, &[]),
        Resolution::Resolved(MacAddr::BROADCAST)
    );
    assert_eq!(
        neighbors.resolve(t0, Ipv4Addr::new(224, 0, 0, 251), &[]),
        Resolution::Resolved(MacAddr([0x01, 0, 0x5e, 0, 0, 0xfb]))
    );
    for invalid in [Ipv4Addr::UNSPECIFIED, Ipv4Addr::LOCALHOST, OUR_IP] {
        assert_eq!(
            neighbors.resolve(t0, invalid, &[]),
            Resolution::Dropped(DropReason::InvalidNextHop)
        );
    }
    assert!(neighbors.poll_transmit().is_none());
    assert!(neighbors.is_empty());
}

/// Runs every timer due up to `until`, at its own deadline, as an event loop would.
fn advance(neighbors: &mut Neighbors, until: Instant) -> Instant {
    while let Some(deadline) = neighbors.poll_timeout().filter(|d| *d <= until) {
        neighbors.handle_timeout(deadline);
    }
    until
}

#[test]
fn failures_back_off_exponentially_up_to_the_cap() {
    let config = ArpConfig {
        max_backoff: Duration::from_secs(3),
        ..ArpConfig::default()
    };
    let mut neighbors = cache(config);
    let mut now = Instant::now();
    assert_eq!(neighbors.resolve(now, GW_IP, &[1]), Resolution::Queued);
    let mut holds = Vec::new();
    for _ in 0..4 {
        now = advance(&mut neighbors, now + Duration::from_secs(3));
        assert_eq!(neighbors.poll_event(), Some(Event::Unreachable(GW_IP)));
        assert_eq!(neighbors.state(now, GW_IP), Some(NeighborState::Failed));
        drain(&mut neighbors);
        // Dropped at once, without a request, until the back-off ends; then a new round.
        let failed_at = now;
        while neighbors.resolve(now, GW_IP, &[1]) == Resolution::Dropped(DropReason::Unreachable) {
            assert!(drain(&mut neighbors).is_empty());
            now += Duration::from_millis(250);
        }
        holds.push(now - failed_at);
        assert_eq!(
            drain(&mut neighbors).len(),
            1,
            "one request starts the round"
        );
    }
    let secs = Duration::from_secs;
    assert_eq!(holds, [secs(1), secs(2), secs(3), secs(3)]);
    now = advance(&mut neighbors, now + secs(3));
    assert_eq!(neighbors.poll_event(), Some(Event::Unreachable(GW_IP)));
    advance(&mut neighbors, now + secs(3 + 30));
    assert!(
        neighbors.is_empty(),
        "failures are forgotten a reachable time later"
    );
    assert_eq!(neighbors.poll_timeout(), None);
    assert_eq!(neighbors.stats().failed, 5);
    assert_eq!(backoff(&ArpConfig::default(), 1), secs(1));
    assert_eq!(backoff(&ArpConfig::default(), 2), secs(2));
    assert_eq!(backoff(&ArpConfig::default(), 4), secs(8));
    assert_eq!(backoff(&ArpConfig::default(), 40), secs(60));
}

use super::neighbors::backoff;

#[test]
fn a_full_table_evicts_failed_then_oldest_reachable_never_resolving() {
    let config = ArpConfig {
        max_entries: 2,
        ..ArpConfig::default()
    };
    let mut neighbors = cache(config);
    let t0 = Instant::now();
    let host = |n: u8| {
        (
            MacAddr([2, 0, 0, 0, 1, n]),
            Ipv4Addr::new(10, 77, 0, 10 + n),
        )
    };
    // Two neighbours ask for us and are learned.
    for n in 0..2 {
        assert_eq!(
            neighbors.handle_arp(t0, &packet(Operation::Request, host(n), OUR_IP)),
            Ok(())
        );
    }
    assert_eq!(neighbors.len(), 2);
    // A third: the oldest (host 0, learned first at the same instant: lowest address) goes.
    let later = t0 + Duration::from_secs(1);
    assert_eq!(
        neighbors.handle_arp(later, &packet(Operation::Request, host(2), OUR_IP)),
        Ok(())
    );
    assert_eq!(neighbors.state(later, host(0).1), None);
    assert_eq!(neighbors.stats().evicted, 1);
    // Resolving fills the table with incomplete entries, which are never evicted.
    assert_eq!(
        neighbors.resolve(later, host(3).1, &[1]),
        Resolution::Queued
    );
    assert_eq!(
        neighbors.resolve(later, host(4).1, &[1]),
        Resolution::Queued
    );
    assert_eq!(
        neighbors.resolve(later, host(5).1, &[1]),
        Resolution::Dropped(DropReason::TableFull)
    );
    // A request for us is still answered when its sender cannot be learned.
    drain(&mut neighbors);
    assert_eq!(
        neighbors.handle_arp(later, &packet(Operation::Request, host(6), OUR_IP)),
        Err(DropReason::TableFull)
    );
    assert!(matches!(
        neighbors.poll_transmit(),
        Some(Transmit::Arp { packet, .. }) if packet.operation == Operation::Reply
    ));
    assert!(neighbors.len() <= 2);
}

#[test]
fn announce_sends_gratuitous_requests_at_the_interval() {
    let mut neighbors = cache(ArpConfig::default());
    let t0 = Instant::now();
    neighbors.announce(t0);
    let first = drain(&mut neighbors);
    let gratuitous = Transmit::Arp {
        dst: MacAddr::BROADCAST,
        packet: ArpPacket {
            operation: Operation::Request,
            sender_mac: OUR_MAC,
            sender_ip: OUR_IP,
            target_mac: MacAddr::UNSPECIFIED,
            target_ip: OUR_IP,
        },
    };
    assert_eq!(first, std::slice::from_ref(&gratuitous));
    assert_eq!(neighbors.poll_timeout(), Some(t0 + Duration::from_secs(2)));
    neighbors.handle_timeout(t0 + Duration::from_secs(1));
    assert!(drain(&mut neighbors).is_empty(), "early call is harmless");
    neighbors.handle_timeout(t0 + Duration::from_secs(2));
    assert_eq!(drain(&mut neighbors), [gratuitous]);
    assert_eq!(neighbors.poll_timeout(), None);
    assert_eq!(neighbors.stats().announcements_sent, 2);
}

#[test]
fn a_different_mac_within_the_lock_time_is_ignored() {
    let mut neighbors = cache(ArpConfig::default());
    let t0 = Instant::now();
    neighbors.resolve(t0, GW_IP, &[1]);
    neighbors
        .handle_arp(t0, &packet(Operation::Reply, (GW_MAC, GW_IP), OUR_IP))
        .ok();
    let proxy = MacAddr([0x02, 0, 0, 0, 0, 0x99]);
    let second = packet(Operation::Reply, (proxy, GW_IP), OUR_IP);
    assert_eq!(
        neighbors.handle_arp(t0 + Duration::from_millis(10), &second),
        Err(DropReason::Locked)
    );
    assert_eq!(
        neighbors.state(t0, GW_IP),
        Some(NeighborState::Reachable(GW_MAC))
    );
    // After the lock time, a changed MAC is merged (e.g. a failover announcement).
    let later = t0 + Duration::from_secs(2);
    assert_eq!(neighbors.handle_arp(later, &second), Ok(()));
    assert_eq!(
        neighbors.state(later, GW_IP),
        Some(NeighborState::Reachable(proxy))
    );
    assert_eq!(neighbors.stats().updated, 1);
}

#[test]
fn hostile_senders_are_refused_and_counted() {
    let mut neighbors = cache(ArpConfig::default());
    let t0 = Instant::now();
    let cases = [
        (
            packet(Operation::Request, (OUR_MAC, GW_IP), OUR_IP),
            DropReason::LoopedBack,
        ),
        (
            packet(Operation::Request, (MacAddr::BROADCAST, GW_IP), OUR_IP),
            DropReason::BadSender,
        ),
        (
            packet(Operation::Request, (MacAddr::UNSPECIFIED, GW_IP), OUR_IP),
            DropReason::BadSender,
        ),
        (
            packet(Operation::Request, (GW_MAC, Ipv4Addr::BROADCAST), OUR_IP),
            DropReason::BadSender,
        ),
        (
            packet(
                Operation::Request,
                (GW_MAC, Ipv4Addr::new(224, 0, 0, 1)),
                OUR_IP,
            ),
            DropReason::BadSender,
        ),
        (
            packet(Operation::Request, (GW_MAC, OUR_IP), OUR_IP),
            DropReason::AddressConflict,
        ),
    ];
    for (bytes, reason) in &cases {
        assert_eq!(neighbors.handle_arp(t0, bytes), Err(*reason));
    }
    assert_eq!(
        neighbors.handle_arp(t0, &[0; 27]),
        Err(DropReason::Truncated)
    );
    assert!(neighbors.is_empty());
    assert!(drain(&mut neighbors).is_empty(), "nothing answered");
    let conflict = neighbors.poll_event().expect("conflict reported");
    assert_eq!(conflict, Event::AddressConflict(GW_MAC));
    assert_eq!(
        conflict.to_string(),
        "02:00:00:00:00:01 also uses our IPv4 address"
    );
    assert_eq!(neighbors.stats().dropped(DropReason::BadSender), 4);
    assert_eq!(neighbors.stats().dropped_total(), 7);
}

#[test]
fn rfc5227_probes_are_answered_but_not_learned() {
    let mut neighbors = cache(ArpConfig::default());
    let t0 = Instant::now();
    let probe = packet(Operation::Request, (GW_MAC, Ipv4Addr::UNSPECIFIED), OUR_IP);
    assert_eq!(neighbors.handle_arp(t0, &probe), Ok(()));
    assert!(neighbors.is_empty());
    let Some(Transmit::Arp { dst, packet }) = neighbors.poll_transmit() else {
        panic!("no defence");
    };
    assert_eq!(dst, GW_MAC);
    assert_eq!(packet.operation, Operation::Reply);
    assert_eq!((packet.sender_mac, packet.sender_ip), (OUR_MAC, OUR_IP));
}

#[test]
fn reply_queue_is_bounded() {
    let config = ArpConfig {
        max_pending_replies: 2,
        ..ArpConfig::default()
    };
    let mut neighbors = cache(config);
    let t0 = Instant::now();
    let request = packet(Operation::Request, (GW_MAC, GW_IP), OUR_IP);
    assert_eq!(neighbors.handle_arp(t0, &request), Ok(()));
    assert_eq!(neighbors.handle_arp(t0, &request), Ok(()));
    assert_eq!(
        neighbors.handle_arp(t0, &request),
        Err(DropReason::ReplyQueueFull)
    );
    assert_eq!(drain(&mut neighbors).len(), 2);
    assert_eq!(neighbors.handle_arp(t0, &request), Ok(()));
    assert_eq!(neighbors.stats().replies_sent, 3);
}

#[test]
fn unreachable_reads_as_the_user_message() {
    assert_eq!(
        Event::Unreachable(GW_IP).to_string(),
        "no ARP reply from 10.77.0.1"
    );
}
