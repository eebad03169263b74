//! ARP's rules, one test per rule, named after the clause it checks (RFC 826, RFC 1122
//! §2.3.2, RFC 5227), plus the hardening this cache adds (no poisoning, bounded queues).
//! Everything runs on virtual time: an `Instant` base plus literal durations.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use tunstack::arp::{
    ArpConfig, ArpPacket, DropReason, Event, NeighborState, Neighbors, Operation, Resolution,
    Transmit,
};
use tunstack::ethernet::{EthernetLayer, EthernetRepr, Ingress, MacAddr};

const OUR_MAC: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x02]);
const OUR_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const GW_MAC: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);
const GW_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const OTHER_MAC: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x03]);
const OTHER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 3);

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ours() -> Neighbors {
    Neighbors::new(ArpConfig::default(), OUR_MAC, OUR_IP)
}

fn request(sender: (MacAddr, Ipv4Addr), target: Ipv4Addr) -> [u8; 28] {
    ArpPacket {
        operation: Operation::Request,
        sender_mac: sender.0,
        sender_ip: sender.1,
        target_mac: MacAddr::UNSPECIFIED,
        target_ip: target,
    }
    .to_bytes()
}

fn reply(sender: (MacAddr, Ipv4Addr), target: (MacAddr, Ipv4Addr)) -> [u8; 28] {
    ArpPacket {
        operation: Operation::Reply,
        sender_mac: sender.0,
        sender_ip: sender.1,
        target_mac: target.0,
        target_ip: target.1,
    }
    .to_bytes()
}

fn drain(neighbors: &mut Neighbors) -> Vec<Transmit> {
    std::iter::from_fn(|| neighbors.poll_transmit()).collect()
}

/// Broadcast requests for `target` in `transmits`.
fn broadcast_requests(transmits: &[Transmit], target: Ipv4Addr) -> usize {
    transmits
        .iter()
        .filter(|t| {
            matches!(t, Transmit::Arp { dst, packet }
                if *dst == MacAddr::BROADCAST
                    && packet.operation == Operation::Request
                    && packet.target_ip == target)
        })
        .count()
}

/// Runs every timer due up to `until` at its own deadline, as the event loop would, and
/// collects what was sent with the time it was sent.
fn run_until(neighbors: &mut Neighbors, until: Instant) -> Vec<(Instant, Transmit)> {
    let mut sent = Vec::new();
    while let Some(deadline) = neighbors.poll_timeout().filter(|d| *d <= until) {
        neighbors.handle_timeout(deadline);
        sent.extend(drain(neighbors).into_iter().map(|t| (deadline, t)));
    }
    sent
}

#[test]
fn rfc826_reply_to_request_for_our_address() {
    // The request arrives as a frame, through the Ethernet layer, as it will from a TAP.
    let mut link = EthernetLayer::new(OUR_MAC);
    let mut neighbors = ours();
    let t0 = Instant::now();
    let mut frame = [0u8; 60];
    let repr = EthernetRepr {
        dst: MacAddr::BROADCAST,
        src: GW_MAC,
        ethertype: etherparse::EtherType::ARP,
    };
    let len = repr
        .emit(&mut frame, &request((GW_MAC, GW_IP), OUR_IP))
        .expect("fits");
    let Ingress::Arp { packet, .. } = link.handle_frame(&frame[..len]) else {
        panic!("ARP not handed up");
    };
    assert_eq!(neighbors.handle_arp(t0, packet), Ok(()));

    // "Swap hardware and protocol fields, putting the local hardware and protocol addresses
    // in the sender fields. Set the ar$op field to ares_op$REPLY. Send the packet to the
    // (new) target hardware address."
    let sent = drain(&mut neighbors);
    assert_eq!(
        sent,
        [Transmit::Arp {
            dst: GW_MAC,
            packet: ArpPacket {
                operation: Operation::Reply,
                sender_mac: OUR_MAC,
                sender_ip: OUR_IP,
                target_mac: GW_MAC,
                target_ip: GW_IP,
            },
        }]
    );
    let mut out = [0u8; 1514];
    let len = sent[0].emit(OUR_MAC, &mut out).expect("fits");
    assert_eq!(len, 60, "padded to the Ethernet minimum");
    let (repr, payload) = EthernetRepr::parse(&out[..len]).expect("valid frame");
    assert_eq!((repr.dst, repr.src), (GW_MAC, OUR_MAC));
    assert_eq!(
        ArpPacket::parse(payload).map(|p| p.operation),
        Ok(Operation::Reply)
    );
    assert_eq!(neighbors.stats().replies_sent, 1);
}

#[test]
fn rfc826_request_for_us_teaches_us_the_asker() {
    // "?Am I the target protocol address? Yes: If Merge_flag is false, add the triplet."
    let mut neighbors = ours();
    let t0 = Instant::now();
    assert_eq!(
        neighbors.handle_arp(t0, &request((GW_MAC, GW_IP), OUR_IP)),
        Ok(())
    );
    drain(&mut neighbors);
    assert_eq!(
        neighbors.resolve(t0 + secs(1), GW_IP, &[0x45; 40]),
        Resolution::Resolved(GW_MAC)
    );
    assert!(drain(&mut neighbors).is_empty(), "no request needed");
    assert_eq!(neighbors.stats().learned, 1);
}

#[test]
fn rfc826_merge_updates_existing_entry_only() {
    let mut neighbors = ours();
    let t0 = Instant::now();
    // A request for someone else, from a host we do not know: nothing is learned.
    assert_eq!(
        neighbors.handle_arp(t0, &request((OTHER_MAC, OTHER_IP), GW_IP)),
        Err(DropReason::NotForUs)
    );
    assert_eq!(neighbors.state(t0, OTHER_IP), None);
    assert!(drain(&mut neighbors).is_empty(), "and not answered");

    // Once we are resolving OTHER_IP, the same broadcast completes the entry ("update the
    // sender hardware address field of the entry"), even though it targets someone else.
    assert_eq!(
        neighbors.resolve(t0, OTHER_IP, &[0x45; 40]),
        Resolution::Queued
    );
    drain(&mut neighbors);
    assert_eq!(
        neighbors.handle_arp(t0, &request((OTHER_MAC, OTHER_IP), GW_IP)),
        Ok(())
    );
    assert_eq!(
        neighbors.state(t0, OTHER_IP),
        Some(NeighborState::Reachable(OTHER_MAC))
    );
    assert!(matches!(
        drain(&mut neighbors).as_slice(),
        [Transmit::Ipv4 { dst: OTHER_MAC, .. }]
    ));

    // A later announcement of a new MAC for it (failover) updates the entry too.
    let moved = MacAddr([0x02, 0, 0, 0, 0, 0x33]);
    let t1 = t0 + secs(5);
    assert_eq!(
        neighbors.handle_arp(t1, &request((moved, OTHER_IP), OTHER_IP)),
        Ok(())
    );
    assert_eq!(
        neighbors.state(t1, OTHER_IP),
        Some(NeighborState::Reachable(moved))
    );
    assert_eq!(neighbors.len(), 1);
    assert_eq!(neighbors.stats().updated, 1);
}

#[test]
fn unsolicited_reply_is_not_cached() {
    let mut neighbors = ours();
    let t0 = Instant::now();
    // A reply to us about an address we never asked about: the classic poisoning move.
    assert_eq!(
        neighbors.handle_arp(t0, &reply((OTHER_MAC, GW_IP), (OUR_MAC, OUR_IP))),
        Err(DropReason::Unsolicited)
    );
    // And one addressed to nobody in particular.
    assert_eq!(
        neighbors.handle_arp(t0, &reply((OTHER_MAC, GW_IP), (OTHER_MAC, OTHER_IP))),
        Err(DropReason::Unsolicited)
    );
    assert_eq!(neighbors.state(t0, GW_IP), None);
    assert_eq!(neighbors.stats().dropped(DropReason::Unsolicited), 2);
    // So the next datagram for GW_IP asks the segment instead of trusting the liar.
    assert_eq!(
        neighbors.resolve(t0, GW_IP, &[0x45; 40]),
        Resolution::Queued
    );
    assert_eq!(broadcast_requests(&drain(&mut neighbors), GW_IP), 1);
}

#[test]
fn queued_datagrams_are_released_in_order_once_resolved() {
    let mut neighbors = ours();
    let t0 = Instant::now();
    for n in 0..3u8 {
        assert_eq!(
            neighbors.resolve(t0 + Duration::from_millis(u64::from(n)), GW_IP, &[n; 40]),
            Resolution::Queued
        );
    }
    assert_eq!(broadcast_requests(&drain(&mut neighbors), GW_IP), 1);
    assert_eq!(
        neighbors.handle_arp(
            t0 + Duration::from_millis(5),
            &reply((GW_MAC, GW_IP), (OUR_MAC, OUR_IP))
        ),
        Ok(())
    );
    let released: Vec<(MacAddr, u8)> = drain(&mut neighbors)
        .into_iter()
        .map(|t| match t {
            Transmit::Ipv4 { dst, datagram } => (dst, datagram[0]),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(released, [(GW_MAC, 0), (GW_MAC, 1), (GW_MAC, 2)]);
    assert_eq!(neighbors.held_datagrams(), 0);
    assert_eq!(
        neighbors.poll_timeout(),
        Some(t0 + Duration::from_millis(5) + secs(30))
    );
}

#[test]
fn rfc1122_2_3_2_1_at_most_one_request_per_second() {
    // "A mechanism to prevent ARP flooding ... MUST be included. The recommended maximum
    // rate is 1 per second per destination."
    let mut neighbors = ours();
    let t0 = Instant::now();
    let mut sent = Vec::new();
    for ms in (0..2900).step_by(100) {
        let now = t0 + Duration::from_millis(ms);
        sent.extend(run_until(&mut neighbors, now));
        neighbors.resolve(now, GW_IP, &[0x45; 40]);
        sent.extend(drain(&mut neighbors).into_iter().map(|t| (now, t)));
    }
    let times: Vec<Duration> = sent.iter().map(|(at, _)| *at - t0).collect();
    assert_eq!(times, [secs(0), secs(1), secs(2)]);
}

#[test]
fn resolution_fails_after_retries_and_queued_datagrams_are_dropped() {
    let mut neighbors = ours();
    let t0 = Instant::now();
    assert_eq!(
        neighbors.resolve(t0, GW_IP, &[0x45; 40]),
        Resolution::Queued
    );
    assert_eq!(
        neighbors.resolve(t0, GW_IP, &[0x45; 40]),
        Resolution::Queued
    );
    assert_eq!(broadcast_requests(&drain(&mut neighbors), GW_IP), 1);
    let sent = run_until(&mut neighbors, t0 + secs(10));
    // Linux's mcast_solicit 3, retrans_time 1 s: requests at 0, 1 and 2 s; give up at 3 s.
    let times: Vec<Duration> = sent.iter().map(|(at, _)| *at - t0).collect();
    assert_eq!(times, [secs(1), secs(2)]);
    let event = neighbors.poll_event().expect("failure reported");
    assert_eq!(event, Event::Unreachable(GW_IP));
    assert_eq!(event.to_string(), "no ARP reply from 10.77.0.1");
    assert_eq!(neighbors.poll_event(), None);
    // RFC 1122 §2.3.2.2: the queued datagrams are discarded, and counted.
    assert_eq!(neighbors.stats().dropped(DropReason::ResolutionFailed), 2);
    assert_eq!(neighbors.held_datagrams(), 0);
    assert_eq!(neighbors.stats().requests_sent, 3);
    assert_eq!(neighbors.stats().failed, 1);
    assert!(!sent.iter().any(|(_, t)| matches!(t, Transmit::Ipv4 { .. })));
}

#[test]
fn a_late_reply_after_failure_revives_the_entry() {
    let mut neighbors = ours();
    let t0 = Instant::now();
    neighbors.resolve(t0, GW_IP, &[0x45; 40]);
    run_until(&mut neighbors, t0 + secs(3));
    assert_eq!(
        neighbors.state(t0 + secs(3), GW_IP),
        Some(NeighborState::Failed)
    );
    // We did ask, so the answer is solicited even if it comes late.
    let late = t0 + Duration::from_millis(3500);
    assert_eq!(
        neighbors.handle_arp(late, &reply((GW_MAC, GW_IP), (OUR_MAC, OUR_IP))),
        Ok(())
    );
    assert_eq!(
        neighbors.resolve(late, GW_IP, &[0x45; 40]),
        Resolution::Resolved(GW_MAC)
    );
}

#[test]
fn rfc1122_2_3_2_1_entry_expires_and_is_revalidated() {
    // "(1) Timeout -- Periodically time out cache entries, even if they are in use."
    // "(2) Unicast Poll -- Actively poll the remote host by periodically sending a
    // point-to-point ARP Request to it."
    let mut neighbors = ours();
    let t0 = Instant::now();
    neighbors.resolve(t0, GW_IP, &[0x45; 40]);
    neighbors
        .handle_arp(t0, &reply((GW_MAC, GW_IP), (OUR_MAC, OUR_IP)))
        .expect("solicited");
    drain(&mut neighbors);

    // In use: unicast requests to the cached MAC in the last 3 s before the 30 s run out.
    assert_eq!(
        neighbors.resolve(t0 + secs(10), GW_IP, &[0x45; 40]),
        Resolution::Resolved(GW_MAC)
    );
    let polls = run_until(&mut neighbors, t0 + Duration::from_millis(28_500));
    let expected = |at: u64| {
        (
            t0 + secs(at),
            Transmit::Arp {
                dst: GW_MAC,
                packet: ArpPacket {
                    operation: Operation::Request,
                    sender_mac: OUR_MAC,
                    sender_ip: OUR_IP,
                    target_mac: MacAddr::UNSPECIFIED,
                    target_ip: GW_IP,
                },
            },
        )
    };
    assert_eq!(polls, [expected(27), expected(28)]);
    // The answer confirms it for another 30 s, with no broadcast and no stall.
    let t1 = t0 + Duration::from_millis(28_600);
    neighbors
        .handle_arp(t1, &reply((GW_MAC, GW_IP), (OUR_MAC, OUR_IP)))
        .expect("solicited");
    assert_eq!(neighbors.stats().revalidated, 1);
    assert_eq!(
        neighbors.resolve(t0 + secs(40), GW_IP, &[0x45; 40]),
        Resolution::Resolved(GW_MAC)
    );

    // Not used since then, and unanswered: no polls, and it expires 30 s after confirmation.
    let t2 = t0 + secs(45);
    neighbors
        .handle_arp(t2, &reply((GW_MAC, GW_IP), (OUR_MAC, OUR_IP)))
        .expect("solicited");
    assert!(run_until(&mut neighbors, t2 + secs(30)).is_empty());
    assert_eq!(neighbors.state(t2 + secs(30), GW_IP), None);
    assert_eq!(neighbors.stats().expired, 1);
    // The next datagram re-resolves from scratch.
    assert_eq!(
        neighbors.resolve(t2 + secs(31), GW_IP, &[0x45; 40]),
        Resolution::Queued
    );
    assert_eq!(broadcast_requests(&drain(&mut neighbors), GW_IP), 1);
}

#[test]
fn rfc1122_2_3_2_1_unanswered_revalidation_lets_the_entry_expire() {
    let mut neighbors = ours();
    let t0 = Instant::now();
    neighbors.resolve(t0, GW_IP, &[0x45; 40]);
    neighbors
        .handle_arp(t0, &reply((GW_MAC, GW_IP), (OUR_MAC, OUR_IP)))
        .expect("solicited");
    drain(&mut neighbors);
    neighbors.resolve(t0 + secs(1), GW_IP, &[0x45; 40]);
    let polls = run_until(&mut neighbors, t0 + secs(31));
    let times: Vec<Duration> = polls.iter().map(|(at, _)| *at - t0).collect();
    assert_eq!(times, [secs(27), secs(28), secs(29)]);
    assert_eq!(neighbors.state(t0 + secs(30), GW_IP), None);
    assert_eq!(neighbors.stats().refreshes_sent, 3);
}

#[test]
fn queue_is_bounded() {
    let config = ArpConfig {
        queue_per_neighbor: 2,
        queue_total: 3,
        ..ArpConfig::default()
    };
    let mut neighbors = Neighbors::new(config, OUR_MAC, OUR_IP);
    let t0 = Instant::now();
    let datagram = [0x45; 40];
    assert_eq!(neighbors.resolve(t0, GW_IP, &datagram), Resolution::Queued);
    assert_eq!(neighbors.resolve(t0, GW_IP, &datagram), Resolution::Queued);
    assert_eq!(
        neighbors.resolve(t0, GW_IP, &datagram),
        Resolution::Dropped(DropReason::QueueFull)
    );
    assert_eq!(
        neighbors.resolve(t0, OTHER_IP, &datagram),
        Resolution::Queued
    );
    // The total is reached: a datagram for a fourth neighbour is dropped, but its
    // resolution still starts so the next one can get through.
    let fourth = Ipv4Addr::new(10, 77, 0, 4);
    assert_eq!(
        neighbors.resolve(t0, fourth, &datagram),
        Resolution::Dropped(DropReason::QueueTotalFull)
    );
    assert_eq!(broadcast_requests(&drain(&mut neighbors), fourth), 1);
    assert_eq!(neighbors.held_datagrams(), 3);
    // Released datagrams count until polled: the bound covers everything we hold.
    neighbors
        .handle_arp(t0, &reply((GW_MAC, GW_IP), (OUR_MAC, OUR_IP)))
        .expect("solicited");
    assert_eq!(neighbors.held_datagrams(), 3);
    assert_eq!(
        neighbors.resolve(t0, fourth, &datagram),
        Resolution::Dropped(DropReason::QueueTotalFull)
    );
    drain(&mut neighbors);
    assert_eq!(neighbors.held_datagrams(), 1);
    assert_eq!(neighbors.resolve(t0, fourth, &datagram), Resolution::Queued);
    assert_eq!(neighbors.stats().dropped(DropReason::QueueFull), 1);
    assert_eq!(neighbors.stats().dropped(DropReason::QueueTotalFull), 2);
}

#[test]
fn rfc5227_2_3_announcement_on_start() {
    let mut neighbors = ours();
    let t0 = Instant::now();
    neighbors.announce(t0);
    let mut sent: Vec<(Instant, Transmit)> =
        drain(&mut neighbors).into_iter().map(|t| (t0, t)).collect();
    sent.extend(run_until(&mut neighbors, t0 + secs(10)));
    assert_eq!(sent.len(), 2);
    for (at, (when, transmit)) in [t0, t0 + secs(2)].iter().zip(&sent) {
        assert_eq!(when, at);
        let Transmit::Arp { dst, packet } = transmit else {
            panic!("{transmit:?}");
        };
        assert_eq!(*dst, MacAddr::BROADCAST);
        assert_eq!(packet.operation, Operation::Request);
        assert_eq!((packet.sender_mac, packet.sender_ip), (OUR_MAC, OUR_IP));
        assert_eq!(
            packet.target_ip, OUR_IP,
            "an announcement names us as target too"
        );
        assert!(packet.is_announcement());
    }
}

#[test]
fn two_caches_resolve_each_other_through_ethernet() {
    // Two hosts on one segment, frames passed by hand: A resolves B, B learns A from the
    // request, and A's queued datagram arrives at B.
    let a_mac = MacAddr::derive("tap0", OUR_IP);
    let b_mac = MacAddr::derive("tap0", GW_IP);
    let (mut a_link, mut b_link) = (EthernetLayer::new(a_mac), EthernetLayer::new(b_mac));
    let mut a = Neighbors::new(ArpConfig::default(), a_mac, OUR_IP);
    let mut b = Neighbors::new(ArpConfig::default(), b_mac, GW_IP);
    let t0 = Instant::now();
    let datagram = tunstack::testing::ipv4_datagram(
        &tunstack::testing::Ipv4Fields::plain(OUR_IP, GW_IP, 6),
        &[0u8; 20],
    );
    assert_eq!(a.resolve(t0, GW_IP, &datagram), Resolution::Queued);
    let mut delivered = Vec::new();
    for _ in 0..2 {
        carry(t0, (&mut a, a_mac), (&mut b_link, &mut b), &mut delivered);
        carry(t0, (&mut b, b_mac), (&mut a_link, &mut a), &mut delivered);
    }
    assert_eq!(delivered, [datagram], "padding trimmed on the way in");
    assert_eq!(a.state(t0, GW_IP), Some(NeighborState::Reachable(b_mac)));
    assert_eq!(b.state(t0, OUR_IP), Some(NeighborState::Reachable(a_mac)));
    assert_eq!(b.resolve(t0, OUR_IP, &[]), Resolution::Resolved(a_mac));
}

/// Moves everything `from` has to send through `to`'s Ethernet layer into `to`; IPv4
/// datagrams that arrive are collected.
fn carry(
    now: Instant,
    (from, from_mac): (&mut Neighbors, MacAddr),
    (to_link, to): (&mut EthernetLayer, &mut Neighbors),
    delivered: &mut Vec<Vec<u8>>,
) {
    let mut buf = [0u8; 1514];
    while let Some(transmit) = from.poll_transmit() {
        let len = transmit.emit(from_mac, &mut buf).expect("fits");
        match to_link.handle_frame(&buf[..len]) {
            Ingress::Arp { packet, .. } => to.handle_arp(now, packet).expect("accepted"),
            Ingress::Ipv4 { datagram, .. } => delivered.push(datagram.to_vec()),
            Ingress::Dropped(reason) => panic!("{reason}"),
        }
    }
}
