//! The receive filter, the demux and link padding, frame by frame.

use std::net::Ipv4Addr;
use std::time::Instant;

use etherparse::EtherType;

use super::*;
use crate::ipv4::{self, Ipv4Config, Ipv4Layer};
use crate::testing::{ipv4_datagram, Ipv4Fields};

const OURS: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x02]);
const PEER: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);
const LOCAL_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);

fn frame(dst: MacAddr, src: MacAddr, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 14 + payload.len().max(46)];
    let repr = EthernetRepr {
        dst,
        src,
        ethertype: EtherType(ethertype),
    };
    let len = repr.emit(&mut buf, payload).expect("buffer sized for it");
    buf.truncate(len);
    buf
}

/// A 40-byte TCP/IPv4 datagram (header only, checksum left for TCP to judge).
fn small_datagram() -> Vec<u8> {
    ipv4_datagram(
        &Ipv4Fields::plain(PEER_IP, LOCAL_IP, ipv4::PROTOCOL_TCP),
        &[0u8; 20],
    )
}

#[test]
fn accepts_our_mac_broadcast_and_joined_groups_only() {
    let mut layer = EthernetLayer::new(OURS);
    let group = MacAddr::ipv4_multicast(Ipv4Addr::new(224, 0, 0, 251));
    let datagram = small_datagram();
    for dst in [OURS, MacAddr::BROADCAST] {
        assert!(matches!(
            layer.handle_frame(&frame(dst, PEER, 0x0800, &datagram)),
            Ingress::Ipv4 { src: PEER, .. }
        ));
    }
    let to_group = frame(group, PEER, 0x0800, &datagram);
    assert_eq!(
        layer.handle_frame(&to_group),
        Ingress::Dropped(DropReason::NotForUs)
    );
    layer.join(group);
    layer.join(group);
    assert!(matches!(
        layer.handle_frame(&to_group),
        Ingress::Ipv4 { .. }
    ));
    layer.leave(group);
    assert_eq!(
        layer.handle_frame(&to_group),
        Ingress::Dropped(DropReason::NotForUs)
    );
    // Joining a unicast address does not open the filter to another station's traffic.
    layer.join(PEER);
    assert_eq!(
        layer.handle_frame(&frame(PEER, OURS, 0x0800, &datagram)),
        Ingress::Dropped(DropReason::NotForUs)
    );
    let stats = layer.stats();
    assert_eq!(stats.received, 6);
    assert_eq!(stats.ipv4, 3);
    assert_eq!(stats.dropped(DropReason::NotForUs), 3);
    assert_eq!(stats.dropped_total(), 3);
}

#[test]
fn drops_are_counted_by_reason() {
    let mut layer = EthernetLayer::new(OURS);
    let payload = [0u8; 46];
    let cases: [(Vec<u8>, DropReason); 8] = [
        (vec![0xff; 13], DropReason::Truncated),
        (
            frame(OURS, MacAddr::BROADCAST, 0x0800, &payload),
            DropReason::BadSource,
        ),
        (frame(OURS, OURS, 0x0806, &payload), DropReason::LoopedBack),
        (
            frame(OURS, PEER, 0x0026, &payload),
            DropReason::LengthFramed,
        ),
        (frame(OURS, PEER, 0x86dd, &payload), DropReason::Ipv6),
        (frame(OURS, PEER, 0x8100, &payload), DropReason::VlanTagged),
        (
            frame(OURS, PEER, 0x88cc, &payload),
            DropReason::UnknownEtherType,
        ),
        (frame(PEER, PEER, 0x0800, &payload), DropReason::NotForUs),
    ];
    for (bytes, reason) in &cases {
        assert_eq!(layer.handle_frame(bytes), Ingress::Dropped(*reason));
    }
    for reason in DropReason::ALL {
        assert_eq!(layer.stats().dropped(reason), 1, "{reason:?}");
    }
    assert_eq!(layer.stats().received, 8);
}

#[test]
fn all_lists_every_reason_at_its_own_index() {
    for (position, reason) in DropReason::ALL.iter().enumerate() {
        assert_eq!(*reason as usize, position, "{reason:?}");
    }
}

#[test]
fn padding_is_trimmed_to_the_ipv4_total_length() {
    let mut layer = EthernetLayer::new(OURS);
    let datagram = small_datagram();
    let padded = frame(OURS, PEER, 0x0800, &datagram);
    assert_eq!(
        padded.len(),
        60,
        "a 40-byte datagram travels in a 60-byte frame"
    );
    let Ingress::Ipv4 { datagram: up, .. } = layer.handle_frame(&padded) else {
        panic!("not delivered");
    };
    assert_eq!(up, &datagram[..]);
    assert_eq!(layer.stats().padding_trimmed, 1);

    // And the IPv4 layer above sees a 20-byte TCP segment, not 26 bytes with padding.
    let mut ip = Ipv4Layer::new(Ipv4Config::default());
    match ip.handle_datagram(Instant::now(), up) {
        ipv4::Ingress::Tcp { segment, .. } => assert_eq!(segment.len(), 20),
        other => panic!("{other:?}"),
    }
}

#[test]
fn implausible_total_length_is_left_for_ipv4_to_judge() {
    let mut layer = EthernetLayer::new(OURS);
    let mut datagram = small_datagram();
    datagram[2..4].copy_from_slice(&200u16.to_be_bytes());
    let long_claim = frame(OURS, PEER, 0x0800, &datagram);
    let Ingress::Ipv4 { datagram: up, .. } = layer.handle_frame(&long_claim) else {
        panic!("not delivered");
    };
    assert_eq!(up.len(), 46, "passed on whole");
    let mut ip = Ipv4Layer::new(Ipv4Config::default());
    assert_eq!(
        ip.handle_datagram(Instant::now(), up),
        ipv4::Ingress::Dropped(ipv4::DropReason::BadTotalLength)
    );
    // Not IPv4 inside, or a tiny claimed length: untouched as well.
    for garbage in [vec![0x60u8; 46], vec![0x45, 0, 0, 4]] {
        let bytes = frame(OURS, PEER, 0x0800, &garbage);
        let Ingress::Ipv4 { datagram: up, .. } = layer.handle_frame(&bytes) else {
            panic!("not delivered");
        };
        assert_eq!(up.len(), 46);
    }
    assert_eq!(layer.stats().padding_trimmed, 0);
}

#[test]
fn arp_is_handed_up_with_the_sender() {
    let mut layer = EthernetLayer::new(OURS);
    let packet = [0x11u8; 28];
    let bytes = frame(MacAddr::BROADCAST, PEER, 0x0806, &packet);
    assert_eq!(
        layer.handle_frame(&bytes),
        Ingress::Arp {
            src: PEER,
            packet: &bytes[14..],
        }
    );
    assert_eq!(layer.stats().arp, 1);
}

#[test]
fn unpadded_short_frames_from_a_tap_are_accepted() {
    // Linux does not pad frames it writes to a TAP: a 42-byte ARP frame arrives as 42 bytes.
    let mut layer = EthernetLayer::new(OURS);
    let mut bytes = frame(OURS, PEER, 0x0806, &[0x22u8; 28]);
    bytes.truncate(42);
    assert!(matches!(
        layer.handle_frame(&bytes),
        Ingress::Arp { packet, .. } if packet.len() == 28
    ));
}

#[test]
fn write_header_then_pad() {
    let layer = EthernetLayer::new(OURS);
    let mut buf = [0xeeu8; 1514];
    assert_eq!(layer.write_header(&mut buf, PEER, EtherType::ARP), Ok(14));
    buf[14..42].fill(0x33);
    assert_eq!(pad(&mut buf, 42), Ok(60));
    let (repr, payload) = EthernetRepr::parse(&buf[..60]).expect("valid frame");
    assert_eq!(
        repr,
        EthernetRepr {
            dst: PEER,
            src: OURS,
            ethertype: EtherType::ARP
        }
    );
    assert_eq!(&payload[..28], &[0x33; 28]);
    assert_eq!(&payload[28..], &[0; 18]);
}
