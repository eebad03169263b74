//! The link's own rules: which next hop a datagram goes to, frames in and out, and the
//! connection-facing event when a next hop never answers. ARP's rules are in tests/arp.rs.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::*;
use crate::arp::Operation;

const OUR_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
const OUR_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const GW_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const GW_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 9);
const FAR_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 2);

fn config() -> LinkConfig {
    LinkConfig {
        mac: OUR_MAC,
        addr: OUR_IP,
        prefix_len: 24,
        gateway: GW_IP,
        arp: ArpConfig {
            announcements: 0,
            ..ArpConfig::default()
        },
    }
}

/// A minimal IPv4 header to `dst` with `extra` bytes after it.
fn datagram(dst: Ipv4Addr, extra: usize) -> Vec<u8> {
    let total = (20 + extra) as u16;
    let mut d = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0];
    d[2..4].copy_from_slice(&total.to_be_bytes());
    d.extend_from_slice(&OUR_IP.octets());
    d.extend_from_slice(&dst.octets());
    d.resize(20 + extra, 0xab);
    d
}

fn frames(link: &mut Link) -> Vec<(Vec<u8>, Option<ArpPacket>)> {
    let mut buf = vec![0u8; 2048];
    std::iter::from_fn(|| {
        let t = link.poll_transmit(&mut buf)?;
        Some((buf[..t.len].to_vec(), t.arp))
    })
    .collect()
}

fn reply_from(mac: MacAddr, ip: Ipv4Addr) -> Vec<u8> {
    let packet = ArpPacket {
        operation: Operation::Reply,
        sender_mac: mac,
        sender_ip: ip,
        target_mac: OUR_MAC,
        target_ip: OUR_IP,
    };
    let mut frame = vec![0u8; 60];
    let repr = EthernetRepr {
        dst: OUR_MAC,
        src: mac,
        ethertype: EtherType::ARP,
    };
    let len = repr.emit(&mut frame, &packet.to_bytes()).unwrap();
    frame.truncate(len);
    frame
}

/// RFC 1122 §3.3.1.1: a destination in our prefix is resolved itself, any other goes to the
/// gateway; broadcast and multicast need no resolution.
#[test]
fn rfc1122_3_3_1_1_on_link_destinations_are_resolved_directly_others_via_the_gateway() {
    let config = config();
    assert_eq!(config.next_hop(PEER_IP), PEER_IP);
    assert_eq!(config.next_hop(FAR_IP), GW_IP);
    assert_eq!(config.next_hop(Ipv4Addr::new(8, 8, 8, 8)), GW_IP);
    assert_eq!(config.next_hop(Ipv4Addr::BROADCAST), Ipv4Addr::BROADCAST);
    let directed = Ipv4Addr::new(10, 77, 0, 255);
    assert_eq!(config.next_hop(directed), directed);

    let t0 = Instant::now();
    let mut link = Link::new(t0, config);
    assert_eq!(link.route(t0, &datagram(FAR_IP, 10)), Outbound::Queued);
    let sent = frames(&mut link);
    assert_eq!(sent.len(), 1);
    let request = sent[0].1.expect("an ARP request");
    assert_eq!(request.operation, Operation::Request);
    assert_eq!(
        request.target_ip, GW_IP,
        "the gateway is asked, not 10.77.1.2"
    );
}

/// RFC 826: the reply releases the queued datagram in an Ethernet frame to the gateway's
/// MAC; later datagrams go straight out behind a header naming it.
#[test]
fn rfc826_a_reply_releases_the_queued_datagram_and_later_ones_go_at_once() {
    let t0 = Instant::now();
    let mut link = Link::new(t0, config());
    let first = datagram(FAR_IP, 10);
    assert_eq!(link.route(t0, &first), Outbound::Queued);
    frames(&mut link);
    assert_eq!(
        link.handle_frame(t0, &reply_from(GW_MAC, GW_IP)),
        Inbound::Arp(ArpPacket::parse(&reply_from(GW_MAC, GW_IP)[14..]).ok())
    );
    let sent = frames(&mut link);
    assert_eq!(sent.len(), 1);
    let (repr, payload) = EthernetRepr::parse(&sent[0].0).unwrap();
    assert_eq!((repr.dst, repr.src), (GW_MAC, OUR_MAC));
    assert_eq!(repr.ethertype, EtherType::IPV4);
    assert_eq!(&payload[..first.len()], &first[..]);
    assert!(link.is_resolved(t0, FAR_IP));
    let Outbound::Send(header) = link.route(t0, &datagram(FAR_IP, 1000)) else {
        panic!("resolved: sent at once");
    };
    assert_eq!(&header[..6], &GW_MAC.0);
    assert_eq!(&header[6..12], &OUR_MAC.0);
    assert_eq!(&header[12..], &[0x08, 0x00]);
}

/// RFC 1122 §2.3.2.2: datagrams waiting for a next hop that never answers are discarded;
/// the link names the destinations whose connections should fail, once.
#[test]
fn rfc1122_2_3_2_2_an_unanswered_next_hop_fails_the_waiting_destinations() {
    let t0 = Instant::now();
    let mut link = Link::new(t0, config());
    assert_eq!(link.route(t0, &datagram(FAR_IP, 10)), Outbound::Queued);
    assert_eq!(
        link.route(t0, &datagram(Ipv4Addr::new(10, 77, 2, 3), 10)),
        Outbound::Queued
    );
    let mut now = t0;
    let mut requests = frames(&mut link).len();
    while let Some(at) = link.poll_timeout() {
        if at > t0 + Duration::from_secs(10) {
            break;
        }
        now = at;
        link.handle_timeout(now);
        requests += frames(&mut link).len();
        if !link.events.is_empty() {
            break;
        }
    }
    assert_eq!(requests, 3, "max_requests broadcast requests");
    assert_eq!(now, t0 + Duration::from_secs(3));
    assert_eq!(
        link.poll_event(),
        Some(LinkEvent::Unreachable {
            next_hop: GW_IP,
            destinations: vec![FAR_IP, Ipv4Addr::new(10, 77, 2, 3)],
        })
    );
    assert_eq!(link.poll_event(), None);
    // While backing off, a new datagram is dropped and its destination told at once.
    assert_eq!(
        link.route(now, &datagram(FAR_IP, 10)),
        Outbound::Dropped(arp::DropReason::Unreachable)
    );
    assert_eq!(
        link.poll_event(),
        Some(LinkEvent::Unreachable {
            next_hop: GW_IP,
            destinations: vec![FAR_IP],
        })
    );
}

/// A short frame's padding is not part of the datagram handed up; frames for other
/// stations are dropped.
#[test]
fn a_received_datagram_is_cut_from_its_padded_frame() {
    let t0 = Instant::now();
    let mut link = Link::new(t0, config());
    let inner = datagram(OUR_IP, 8);
    let repr = EthernetRepr {
        dst: OUR_MAC,
        src: GW_MAC,
        ethertype: EtherType::IPV4,
    };
    let mut frame = vec![0u8; 60];
    let len = repr.emit(&mut frame, &inner).unwrap();
    assert_eq!(len, 60);
    assert_eq!(link.handle_frame(t0, &frame[..len]), Inbound::Ipv4(14..42));
    let other = EthernetRepr {
        dst: MacAddr([0x02, 0, 0, 0, 0, 0x77]),
        ..repr
    };
    other.emit(&mut frame, &inner).unwrap();
    assert_eq!(link.handle_frame(t0, &frame[..len]), Inbound::Dropped);
    assert_eq!(
        link.ethernet_stats()
            .dropped(crate::ethernet::DropReason::NotForUs),
        1
    );
}

/// RFC 5227 §2.3: a new link announces our address first.
#[test]
fn rfc5227_2_3_a_new_link_announces_our_address() {
    let t0 = Instant::now();
    let mut link = Link::new(
        t0,
        LinkConfig {
            arp: ArpConfig::default(),
            ..config()
        },
    );
    let sent = frames(&mut link);
    assert_eq!(sent.len(), 1);
    let announcement = sent[0].1.unwrap();
    assert_eq!(
        (announcement.sender_ip, announcement.target_ip),
        (OUR_IP, OUR_IP)
    );
}
