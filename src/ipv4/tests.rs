//! Tests of the whole layer: captured-looking datagrams in, `Ingress` and datagrams out.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::testing::{fix_ipv4_checksum, ipv4_datagram, Ipv4Fields};
use crate::wire::checksum;

const LOCAL: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 2);

/// A TCP SYN from 10.77.1.2:51514 to 10.77.0.2:8080 as Linux sends it (MSS 1460, SACK
/// permitted, timestamps, window scale 7), TCP checksum included.
const SYN: [u8; 60] = [
    0x45, 0x00, 0x00, 0x3c, 0x8d, 0x3e, 0x40, 0x00, 0x40, 0x06, 0x97, 0xe0, 0x0a, 0x4d, 0x01, 0x02,
    0x0a, 0x4d, 0x00, 0x02, 0xc9, 0x3a, 0x1f, 0x90, 0x6b, 0x8b, 0x45, 0x67, 0x00, 0x00, 0x00, 0x00,
    0xa0, 0x02, 0xfa, 0xf0, 0xb1, 0x85, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a,
    0x9a, 0x3c, 0x51, 0xf2, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
];

/// `ping 10.77.0.2` from 10.77.1.2 as iputils sends it: DF, id 0x0d2f, seq 1, a 16-byte
/// timestamp then the bytes 0x10..=0x37.
const PING: [u8; 84] = [
    0x45, 0x00, 0x00, 0x54, 0x5b, 0x1c, 0x40, 0x00, 0x40, 0x01, 0xc9, 0xef, 0x0a, 0x4d, 0x01, 0x02,
    0x0a, 0x4d, 0x00, 0x02, 0x08, 0x00, 0xf5, 0x2d, 0x0d, 0x2f, 0x00, 0x01, 0x80, 0x85, 0x74, 0x67,
    0x00, 0x00, 0x00, 0x00, 0x40, 0xe2, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x11, 0x12, 0x13,
    0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23,
    0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33,
    0x34, 0x35, 0x36, 0x37,
];

/// Our reply to `PING` when our next identification is 0x1000, computed independently.
const PING_REPLY: [u8; 84] = [
    0x45, 0x00, 0x00, 0x54, 0x10, 0x00, 0x40, 0x00, 0x40, 0x01, 0x15, 0x0c, 0x0a, 0x4d, 0x00, 0x02,
    0x0a, 0x4d, 0x01, 0x02, 0x00, 0x00, 0xfd, 0x2d, 0x0d, 0x2f, 0x00, 0x01, 0x80, 0x85, 0x74, 0x67,
    0x00, 0x00, 0x00, 0x00, 0x40, 0xe2, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x11, 0x12, 0x13,
    0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23,
    0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33,
    0x34, 0x35, 0x36, 0x37,
];

/// Router 10.77.1.1 says "fragmentation needed, next-hop MTU 1400" about our 1500-byte segment
/// 10.77.0.2:40000 -> 10.77.1.2:80 with seq 0x0badf00d, quoting its header, TCP header and 8
/// payload bytes (TTL already decremented to 63, as Linux routers quote it).
const FRAG_NEEDED: [u8; 76] = [
    0x45, 0xc0, 0x00, 0x4c, 0x9a, 0x01, 0x00, 0x00, 0x40, 0x01, 0xca, 0x53, 0x0a, 0x4d, 0x01, 0x01,
    0x0a, 0x4d, 0x00, 0x02, 0x03, 0x04, 0xa3, 0xb5, 0x00, 0x00, 0x05, 0x78, 0x45, 0x00, 0x05, 0xdc,
    0x00, 0x42, 0x40, 0x00, 0x3f, 0x06, 0x20, 0x3d, 0x0a, 0x4d, 0x00, 0x02, 0x0a, 0x4d, 0x01, 0x02,
    0x9c, 0x40, 0x00, 0x50, 0x0b, 0xad, 0xf0, 0x0d, 0x11, 0x22, 0x33, 0x44, 0x50, 0x18, 0x01, 0xf6,
    0x12, 0x34, 0x00, 0x00, 0x47, 0x45, 0x54, 0x20, 0x2f, 0x20, 0x48, 0x54,
];

/// A SYN that Linux sent through a TUN device (kernel 10.77.1.2 connecting to 10.77.0.2:8080),
/// captured in a throwaway network namespace.
const LINUX_SYN: [u8; 60] = [
    0x45, 0x00, 0x00, 0x3c, 0x83, 0xed, 0x40, 0x00, 0x40, 0x06, 0xa1, 0x31, 0x0a, 0x4d, 0x01, 0x02,
    0x0a, 0x4d, 0x00, 0x02, 0x8f, 0xee, 0x1f, 0x90, 0xa7, 0xe3, 0x42, 0x7c, 0x00, 0x00, 0x00, 0x00,
    0xa0, 0x02, 0xfa, 0xf0, 0x86, 0xd3, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a,
    0x04, 0x06, 0x12, 0xb7, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x0a,
];

/// Linux's echo reply to an echo request whose header `write_header` wrote: proof that the
/// kernel accepted our header (it answers nothing when the checksum is off by one bit).
const LINUX_ECHO_REPLY: [u8; 60] = [
    0x45, 0x00, 0x00, 0x3c, 0x67, 0x94, 0x00, 0x00, 0x40, 0x01, 0xfd, 0x8f, 0x0a, 0x4d, 0x01, 0x02,
    0x0a, 0x4d, 0x00, 0x02, 0x00, 0x00, 0xfc, 0xc9, 0x12, 0x34, 0x00, 0x01, 0x00, 0x01, 0x02, 0x03,
    0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13,
    0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
];

fn layer() -> Ipv4Layer {
    Ipv4Layer::new(Ipv4Config {
        first_identification: 0x1000,
        ..Ipv4Config::default()
    })
}

/// Recomputes the ICMP checksum of an ICMP datagram with a 20-byte header.
fn fix_icmp_checksum(datagram: &mut [u8]) {
    datagram[22] = 0;
    datagram[23] = 0;
    let [hi, lo] = checksum::checksum(&datagram[20..]).to_be_bytes();
    datagram[22] = hi;
    datagram[23] = lo;
}

/// A datagram from the peer to us with a correct header checksum.
fn datagram(protocol: u8, identification: u16, flags_and_offset: u16, payload: &[u8]) -> Vec<u8> {
    let fields = Ipv4Fields {
        identification,
        ..Ipv4Fields::plain(PEER, LOCAL, protocol)
    };
    ipv4_datagram(&fields.with_flags_and_offset(flags_and_offset), payload)
}

/// Fragments of `payload` (split at `size`, a multiple of 8) as the peer would send them.
fn fragments(protocol: u8, identification: u16, payload: &[u8], size: usize) -> Vec<Vec<u8>> {
    (0..payload.len())
        .step_by(size)
        .map(|offset| {
            let end = (offset + size).min(payload.len());
            let more = if end < payload.len() { 0x2000 } else { 0 };
            let flags = more | u16::try_from(offset / 8).expect("fits");
            datagram(protocol, identification, flags, &payload[offset..end])
        })
        .collect()
}

/// An ICMP echo request message (not yet in a datagram) with `data_len` bytes of data.
fn echo_request(data_len: usize) -> Vec<u8> {
    let mut message = vec![8, 0, 0, 0, 0x12, 0x34, 0x00, 0x01];
    message.extend((0..data_len).map(|i| i as u8));
    let [hi, lo] = checksum::checksum(&message).to_be_bytes();
    message[2] = hi;
    message[3] = lo;
    message
}

fn expect_tcp<'a>(ingress: Ingress<'a>) -> &'a [u8] {
    match ingress {
        Ingress::Tcp {
            src, dst, segment, ..
        } => {
            assert_eq!((src, dst), (PEER, LOCAL));
            segment
        }
        other => panic!("expected a TCP segment, got {other:?}"),
    }
}

#[test]
fn captured_syn_is_delivered_as_tcp() {
    let mut ip = layer();
    let t0 = Instant::now();
    assert_eq!(expect_tcp(ip.handle_datagram(t0, &SYN)), &SYN[20..]);

    // Ethernet-style padding after the total length is not part of the segment.
    let mut padded = SYN.to_vec();
    padded.extend_from_slice(&[0; 6]);
    assert_eq!(expect_tcp(ip.handle_datagram(t0, &padded)), &SYN[20..]);
    assert_eq!(ip.stats().received, 2);
    assert_eq!(ip.stats().delivered, 2);
    assert_eq!(ip.stats().dropped_total(), 0);
}

#[test]
fn syn_captured_from_linux_is_delivered() {
    let mut ip = layer();
    assert_eq!(
        expect_tcp(ip.handle_datagram(Instant::now(), &LINUX_SYN)),
        &LINUX_SYN[20..]
    );
}

#[test]
fn echo_reply_from_linux_is_not_acted_on() {
    let mut ip = layer();
    assert_eq!(
        ip.handle_datagram(Instant::now(), &LINUX_ECHO_REPLY),
        Ingress::Dropped(DropReason::IcmpUnhandled)
    );
}

#[test]
fn ip_options_are_skipped() {
    let mut with_options = SYN[..20].to_vec();
    with_options[0] = 0x46;
    with_options[3] += 4;
    with_options.extend_from_slice(&[1, 1, 1, 0]);
    with_options.extend_from_slice(&SYN[20..]);
    fix_ipv4_checksum(&mut with_options);
    let mut ip = layer();
    assert_eq!(
        expect_tcp(ip.handle_datagram(Instant::now(), &with_options)),
        &SYN[20..]
    );
}

#[test]
fn ttl_zero_and_one_are_still_delivered() {
    // RFC 1122 §3.2.1.7: a host must not discard a datagram just because its TTL is below 2.
    let mut ip = layer();
    for ttl in [0, 1] {
        let mut syn = SYN;
        syn[8] = ttl;
        fix_ipv4_checksum(&mut syn);
        assert_eq!(
            expect_tcp(ip.handle_datagram(Instant::now(), &syn)),
            &SYN[20..]
        );
    }
}

#[test]
fn captured_ping_gets_the_exact_reply() {
    let mut ip = layer();
    assert_eq!(ip.handle_datagram(Instant::now(), &PING), Ingress::Consumed);
    let mut buf = [0u8; MAX_ICMP_DATAGRAM_LEN];
    let len = ip.poll_transmit(&mut buf).expect("a reply is queued");
    assert_eq!(buf[..len], PING_REPLY);
    assert_eq!(checksum::checksum(&buf[..20]), 0);
    assert_eq!(checksum::checksum(&buf[20..len]), 0);
    let header = etherparse::Ipv4HeaderSlice::from_slice(&buf[..len]).expect("valid header");
    assert_eq!(header.source_addr(), LOCAL);
    assert_eq!(header.destination_addr(), PEER);
    let icmp = etherparse::Icmpv4Slice::from_slice(&buf[20..len]).expect("valid ICMP");
    assert_eq!(icmp.type_u8(), 0);
    assert_eq!(ip.poll_transmit(&mut buf), None);
    assert_eq!(ip.stats().echo_replies, 1);
}

#[test]
fn captured_fragmentation_needed_becomes_an_icmp_error() {
    let mut ip = layer();
    let expected = IcmpError {
        kind: IcmpErrorKind::FragmentationNeeded { next_hop_mtu: 1400 },
        reporter: Ipv4Addr::new(10, 77, 1, 1),
        local_port: 40000,
        remote_addr: PEER,
        remote_port: 80,
        seq: 0x0bad_f00d,
    };
    assert_eq!(
        ip.handle_datagram(Instant::now(), &FRAG_NEEDED),
        Ingress::IcmpError(expected)
    );
    assert_eq!(ip.stats().icmp_errors, 1);
}

#[test]
fn write_header_is_what_linux_accepts() {
    let mut ip = layer();
    let mut buf = [0u8; 60];
    buf[20..].copy_from_slice(&[0xaa; 40]);
    assert_eq!(ip.write_header(&mut buf, PEER, PROTOCOL_TCP, 40), Ok(20));
    assert_eq!(checksum::checksum(&buf[..20]), 0);
    let header = etherparse::Ipv4HeaderSlice::from_slice(&buf).expect("valid header");
    assert_eq!(header.version(), 4);
    assert_eq!(header.ihl(), 5);
    assert_eq!(header.total_len(), 60);
    assert_eq!(header.identification(), 0x1000);
    assert!(header.dont_fragment());
    assert!(!header.more_fragments());
    assert_eq!(header.ttl(), 64);
    assert_eq!(header.protocol(), etherparse::IpNumber::TCP);
    assert_eq!(header.source_addr(), LOCAL);
    assert_eq!(header.destination_addr(), PEER);
    assert_eq!(
        header.header_checksum(),
        header.to_header().calc_header_checksum()
    );

    ip.write_header(&mut buf, PEER, PROTOCOL_TCP, 40)
        .expect("fits");
    assert_eq!(
        u16::from_be_bytes([buf[4], buf[5]]),
        0x1001,
        "identifications differ"
    );
}

#[test]
fn fragmented_segment_is_reassembled_in_any_order() {
    let segment: Vec<u8> = (0..4000u32).map(|i| (i * 7) as u8).collect();
    let parts = fragments(PROTOCOL_TCP, 0x4242, &segment, 1480);
    let t0 = Instant::now();
    for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
        let mut ip = layer();
        assert_eq!(ip.handle_datagram(t0, &parts[order[0]]), Ingress::Consumed);
        assert_eq!(ip.handle_datagram(t0, &parts[order[1]]), Ingress::Consumed);
        assert!(ip.poll_timeout().is_some());
        assert_eq!(
            expect_tcp(ip.handle_datagram(t0, &parts[order[2]])),
            &segment[..]
        );
        assert_eq!(ip.poll_timeout(), None);
        assert_eq!(ip.stats().fragments_received, 3);
        assert_eq!(ip.stats().reassembled, 1);
        assert_eq!(ip.stats().delivered, 1);
    }
}

#[test]
fn only_a_whole_datagram_keeps_the_devices_word_on_its_checksum() {
    let segment: Vec<u8> = (0..4000u32).map(|i| (i * 7) as u8).collect();
    let t0 = Instant::now();
    let mut ip = layer();
    let whole = datagram(PROTOCOL_TCP, 0x4141, 0, &segment[..1000]);
    match ip.handle_datagram_with(t0, &whole, ChecksumStatus::Trusted) {
        Ingress::Tcp { checksum, .. } => assert_eq!(checksum, ChecksumStatus::Trusted),
        other => panic!("expected a TCP segment, got {other:?}"),
    }
    // Pieces vouched for one by one do not vouch for the datagram they make together.
    let parts = fragments(PROTOCOL_TCP, 0x4242, &segment, 1480);
    let mut last = None;
    for part in &parts {
        last = Some(
            match ip.handle_datagram_with(t0, part, ChecksumStatus::Trusted) {
                Ingress::Tcp { checksum, .. } => Some(checksum),
                _ => None,
            },
        );
    }
    assert_eq!(last, Some(Some(ChecksumStatus::Unverified)));
}

#[test]
fn duplicated_fragment_does_not_spoil_reassembly() {
    let segment = vec![0x5a; 3000];
    let parts = fragments(PROTOCOL_TCP, 7, &segment, 1000);
    let mut ip = layer();
    let t0 = Instant::now();
    assert_eq!(ip.handle_datagram(t0, &parts[0]), Ingress::Consumed);
    assert_eq!(ip.handle_datagram(t0, &parts[1]), Ingress::Consumed);
    assert_eq!(
        ip.handle_datagram(t0, &parts[1]),
        Ingress::Dropped(DropReason::FragmentDuplicate)
    );
    assert_eq!(expect_tcp(ip.handle_datagram(t0, &parts[2])), &segment[..]);
}

#[test]
fn overlapping_fragment_discards_the_datagram() {
    let segment = vec![0x5a; 3000];
    let parts = fragments(PROTOCOL_TCP, 8, &segment, 1000);
    let overlapping = datagram(PROTOCOL_TCP, 8, 0x2000 | (504 / 8), &segment[..1000]);
    let mut ip = layer();
    let t0 = Instant::now();
    assert_eq!(ip.handle_datagram(t0, &parts[0]), Ingress::Consumed);
    assert_eq!(
        ip.handle_datagram(t0, &overlapping),
        Ingress::Dropped(DropReason::FragmentOverlap)
    );
    assert_eq!(ip.poll_timeout(), None);
    assert_eq!(ip.reassembly_memory(), 0);
    // What is left cannot complete the datagram without fragment zero.
    assert_eq!(ip.handle_datagram(t0, &parts[1]), Ingress::Consumed);
    assert_eq!(ip.handle_datagram(t0, &parts[2]), Ingress::Consumed);
}

#[test]
fn reassembly_limits_are_enforced() {
    let mut ip = Ipv4Layer::new(Ipv4Config {
        max_reassemblies: 2,
        reassembly_limit_bytes: 7 * 1024,
        ..Ipv4Config::default()
    });
    let t0 = Instant::now();
    let big = vec![0u8; 6000];
    for id in 0..2 {
        let first = &fragments(PROTOCOL_TCP, id, &big, 1000)[0];
        assert_eq!(ip.handle_datagram(t0, first), Ingress::Consumed);
    }
    // A third datagram evicts the oldest rather than being refused.
    let third = &fragments(PROTOCOL_TCP, 2, &big, 1000)[0];
    assert_eq!(ip.handle_datagram(t0, third), Ingress::Consumed);
    assert_eq!(ip.stats().dropped(DropReason::ReassemblyEvicted), 1);
    // Growing datagram 1 to 6000 bytes needs the room datagram 2 holds: 2 goes.
    let last_of_second = &fragments(PROTOCOL_TCP, 1, &big, 1000)[5];
    assert_eq!(ip.handle_datagram(t0, last_of_second), Ingress::Consumed);
    assert_eq!(ip.stats().dropped(DropReason::ReassemblyEvicted), 2);
    assert!(ip.reassembly_memory() <= 7 * 1024);
    // One datagram alone bigger than the budget is refused, evicting nobody for nothing.
    let mut small = Ipv4Layer::new(Ipv4Config {
        reassembly_limit_bytes: 4 * 1024,
        ..Ipv4Config::default()
    });
    let last = &fragments(PROTOCOL_TCP, 3, &big, 1000)[5];
    assert_eq!(
        small.handle_datagram(t0, last),
        Ingress::Dropped(DropReason::ReassemblyLimit)
    );
    assert_eq!(small.reassembly_memory(), 0);
    assert!(ip.reassembly_memory_recounted() == ip.reassembly_memory());
}

#[test]
fn oversized_reassembly_is_refused() {
    let mut ip = layer();
    let tail = datagram(PROTOCOL_TCP, 9, 8190, &[0u8; 24]);
    assert_eq!(
        ip.handle_datagram(Instant::now(), &tail),
        Ingress::Dropped(DropReason::OversizedDatagram)
    );
}

#[test]
fn timed_out_reassembly_sends_time_exceeded_about_fragment_zero() {
    let segment = vec![0x11; 3000];
    let parts = fragments(PROTOCOL_TCP, 0x0abc, &segment, 1000);
    let mut ip = layer();
    let t0 = Instant::now();
    assert_eq!(ip.handle_datagram(t0, &parts[0]), Ingress::Consumed);
    assert_eq!(
        ip.handle_datagram(t0 + Duration::from_secs(5), &parts[1]),
        Ingress::Consumed
    );
    let deadline = t0 + Duration::from_secs(30);
    assert_eq!(ip.poll_timeout(), Some(deadline));

    ip.handle_timeout(deadline - Duration::from_millis(1));
    assert_eq!(ip.poll_timeout(), Some(deadline));
    ip.handle_timeout(deadline);
    assert_eq!(ip.poll_timeout(), None);
    assert_eq!(ip.reassembly_memory(), 0);
    assert_eq!(ip.stats().dropped(DropReason::ReassemblyTimeout), 1);

    let mut buf = [0u8; MAX_ICMP_DATAGRAM_LEN];
    let len = ip.poll_transmit(&mut buf).expect("time exceeded queued");
    assert_eq!(len, 20 + 8 + 20 + 8);
    let header = etherparse::Ipv4HeaderSlice::from_slice(&buf[..len]).expect("valid header");
    assert_eq!(header.destination_addr(), PEER);
    assert_eq!(header.protocol(), etherparse::IpNumber::ICMP);
    assert_eq!(checksum::checksum(&buf[20..len]), 0);
    assert_eq!(buf[20..22], [11, 1], "fragment reassembly time exceeded");
    assert_eq!(buf[28..48], parts[0][..20]);
    assert_eq!(buf[48..56], segment[..8]);
    assert_eq!(ip.stats().time_exceeded_sent, 1);

    // The last fragment, late, does not resurrect the datagram.
    assert_eq!(ip.handle_datagram(deadline, &parts[2]), Ingress::Consumed);
    assert!(ip.poll_transmit(&mut buf).is_none());
}

#[test]
fn fragment_arriving_after_the_deadline_expires_the_old_reassembly_first() {
    let segment = vec![0x22; 2000];
    let parts = fragments(PROTOCOL_TCP, 0x0bcd, &segment, 1000);
    let mut ip = layer();
    let t0 = Instant::now();
    assert_eq!(ip.handle_datagram(t0, &parts[0]), Ingress::Consumed);
    // The caller never called handle_timeout; the stale half must not complete the datagram.
    let late = t0 + Duration::from_secs(31);
    assert_eq!(ip.handle_datagram(late, &parts[1]), Ingress::Consumed);
    assert_eq!(ip.stats().dropped(DropReason::ReassemblyTimeout), 1);
}

#[test]
fn fragmented_ping_is_answered_whole() {
    let request = echo_request(1400);
    let parts = fragments(PROTOCOL_ICMP, 0x77, &request, 800);
    let mut ip = layer();
    let t0 = Instant::now();
    assert_eq!(ip.handle_datagram(t0, &parts[1]), Ingress::Consumed);
    assert_eq!(ip.handle_datagram(t0, &parts[0]), Ingress::Consumed);
    let mut buf = [0u8; MAX_ICMP_DATAGRAM_LEN];
    let len = ip.poll_transmit(&mut buf).expect("reply queued");
    assert_eq!(len, 20 + request.len());
    assert_eq!(buf[20], 0);
    assert_eq!(buf[24..len], request[4..]);
    assert_eq!(checksum::checksum(&buf[20..len]), 0);
}

#[test]
fn timed_out_icmp_error_fragments_are_not_reported() {
    // RFC 1122 §3.2.2: never an ICMP error about an ICMP error.
    let mut error = vec![3, 1, 0, 0, 0, 0, 0, 0];
    error.resize(64, 0);
    let parts = fragments(PROTOCOL_ICMP, 0x78, &error, 32);
    let mut ip = layer();
    let t0 = Instant::now();
    assert_eq!(ip.handle_datagram(t0, &parts[0]), Ingress::Consumed);
    ip.handle_timeout(t0 + Duration::from_secs(30));
    assert_eq!(ip.stats().dropped(DropReason::ReassemblyTimeout), 1);
    assert_eq!(ip.poll_transmit(&mut [0u8; MAX_ICMP_DATAGRAM_LEN]), None);
}

#[test]
fn small_transmit_buffer_discards_rather_than_wedges() {
    let mut ip = layer();
    let t0 = Instant::now();
    assert_eq!(ip.handle_datagram(t0, &PING), Ingress::Consumed);
    assert_eq!(ip.handle_datagram(t0, &PING), Ingress::Consumed);
    assert_eq!(ip.poll_transmit(&mut [0u8; 40]), None);
    assert_eq!(ip.stats().transmit_buffer_too_small, 2);
}

/// Feeds datagrams to a layer and remembers why any were dropped.
struct Probe {
    ip: Ipv4Layer,
    t0: Instant,
    drops: Vec<DropReason>,
}

impl Probe {
    fn feed(&mut self, bytes: &[u8]) {
        if let Ingress::Dropped(reason) = self.ip.handle_datagram(self.t0, bytes) {
            self.drops.push(reason);
        }
    }
}

/// `SYN` after `edit`.
fn edited_syn(edit: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let mut bytes = SYN.to_vec();
    edit(&mut bytes);
    bytes
}

/// One way to reach each drop reason through the public API; returns the stats afterwards.
fn provoke(reason: DropReason) -> Ipv4Stats {
    let mut probe = Probe {
        ip: Ipv4Layer::new(Ipv4Config {
            max_reassemblies: 1,
            ..Ipv4Config::default()
        }),
        t0: Instant::now(),
        drops: Vec::new(),
    };
    match reason {
        DropReason::Truncated => probe.feed(&SYN[..19]),
        DropReason::BadVersion => probe.feed(&edited_syn(|b| b[0] = 0x55)),
        DropReason::Ipv6 => probe.feed(&edited_syn(|b| b[0] = 0x60)),
        DropReason::BadHeaderLength => {
            probe.feed(&edited_syn(|b| b[0] = 0x44));
            probe.feed(&[0x4f; 40]);
        }
        DropReason::BadTotalLength => {
            probe.feed(&SYN[..59]);
            probe.feed(&edited_syn(|b| {
                b[3] = 19;
                fix_ipv4_checksum(b);
            }));
        }
        DropReason::BadChecksum => probe.feed(&edited_syn(|b| b[8] = 63)),
        DropReason::NotForUs => probe.feed(&edited_syn(|b| {
            b[19] = 3;
            fix_ipv4_checksum(b);
        })),
        DropReason::BadSource => {
            for source in [
                [0, 0, 0, 0],
                [255; 4],
                [224, 0, 0, 5],
                [127, 0, 0, 1],
                [10, 77, 0, 2],
            ] {
                probe.feed(&edited_syn(|b| {
                    b[12..16].copy_from_slice(&source);
                    fix_ipv4_checksum(b);
                }));
            }
        }
        DropReason::UnsupportedProtocol => probe.feed(&datagram(17, 1, 0, &[0; 8])),
        DropReason::FragmentInvalid => probe.feed(&datagram(PROTOCOL_TCP, 1, 0x2000, &[0; 9])),
        DropReason::FragmentDuplicate => {
            let first = datagram(PROTOCOL_TCP, 1, 0x2000, &[0; 8]);
            probe.feed(&first);
            probe.feed(&first);
        }
        DropReason::FragmentOverlap => {
            probe.feed(&datagram(PROTOCOL_TCP, 1, 0x2000, &[0; 16]));
            probe.feed(&datagram(PROTOCOL_TCP, 1, 0x2001, &[0; 16]));
        }
        DropReason::OversizedDatagram => {
            probe.feed(&datagram(PROTOCOL_TCP, 1, 8191, &[0; 16]));
        }
        DropReason::ReassemblyLimit => {
            // One fragment more than a datagram may have, each 8 bytes with a gap after it.
            for index in 0..=1024 {
                probe.feed(&datagram(PROTOCOL_TCP, 1, 0x2000 | (index * 2), &[0; 8]));
            }
        }
        DropReason::ReassemblyEvicted => {
            probe.feed(&datagram(PROTOCOL_TCP, 1, 0x2000, &[0; 8]));
            probe.feed(&datagram(PROTOCOL_TCP, 2, 0x2000, &[0; 8]));
            probe.drops.push(DropReason::ReassemblyEvicted);
        }
        DropReason::ReassemblyTimeout => {
            probe.feed(&datagram(PROTOCOL_TCP, 1, 0x2001, &[0; 8]));
            probe.ip.handle_timeout(probe.t0 + Duration::from_secs(30));
            probe.drops.push(DropReason::ReassemblyTimeout);
        }
        DropReason::IcmpMalformed => probe.feed(&datagram(PROTOCOL_ICMP, 1, 0, &[8, 0, 0])),
        DropReason::IcmpBadChecksum => {
            let mut bad = datagram(PROTOCOL_ICMP, 1, 0, &echo_request(4));
            bad[30] ^= 0xff;
            probe.feed(&bad);
        }
        DropReason::IcmpNotOurs => {
            let mut theirs = FRAG_NEEDED;
            theirs[40..44].copy_from_slice(&[10, 77, 0, 9]);
            fix_icmp_checksum(&mut theirs);
            probe.feed(&theirs);
        }
        DropReason::IcmpUnhandled => {
            let mut echo_reply = datagram(PROTOCOL_ICMP, 1, 0, &echo_request(4));
            echo_reply[20] = 0;
            fix_icmp_checksum(&mut echo_reply);
            probe.feed(&echo_reply);
        }
        DropReason::EchoTooLarge => {
            probe.feed(&datagram(PROTOCOL_ICMP, 1, 0, &echo_request(1473)));
        }
        DropReason::IcmpQueueFull => {
            for _ in 0..=Ipv4Config::default().icmp_queue_len {
                probe.feed(&PING);
            }
        }
    }
    assert!(!probe.drops.is_empty(), "{reason:?} produced no drop");
    assert!(
        probe.drops.iter().all(|seen| *seen == reason),
        "{reason:?} provoked {:?}",
        probe.drops
    );
    probe.ip.stats().clone()
}

#[test]
fn every_drop_reason_is_reachable_and_counted() {
    for reason in DropReason::ALL {
        let stats = provoke(reason);
        assert!(stats.dropped(reason) >= 1, "{reason:?} not counted");
        assert_eq!(stats.dropped(reason), stats.dropped_total(), "{reason:?}");
    }
}

/// A fragment from the peer with arbitrary identification, offset and MF flag, usually of a
/// plausible length (whole 8-byte blocks, with a tail only on the last fragment).
fn arbitrary_fragment() -> impl Strategy<Value = Vec<u8>> {
    (
        0u16..4,
        0u16..8192,
        0usize..400,
        0usize..8,
        any::<bool>(),
        prop_oneof![Just(PROTOCOL_ICMP), Just(PROTOCOL_TCP)],
    )
        .prop_map(
            |(identification, offset_units, blocks, tail, more, protocol)| {
                let flags = (if more { 0x2000 } else { 0 }) | offset_units;
                let tail = if more && tail != 0 { 0 } else { tail };
                let len = (blocks * 8 + tail).min(65535 - 20);
                datagram(protocol, identification, flags, &vec![0x33; len])
            },
        )
}

/// A datagram that is either noise, a corrupted capture, or a plausible fragment.
fn hostile_datagram() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        (0usize..4, any::<usize>(), any::<u8>()).prop_map(|(which, at, byte)| {
            let mut bytes =
                [&SYN[..], &PING[..], &FRAG_NEEDED[..], &PING_REPLY[..]][which].to_vec();
            let at = at % bytes.len();
            bytes[at] = byte;
            bytes.truncate(at.max(1) + usize::from(byte) % 64);
            bytes
        }),
        arbitrary_fragment(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn hostile_input_never_panics_and_reassembly_memory_stays_bounded(
        steps in proptest::collection::vec((hostile_datagram(), 0u64..20_000), 1..60),
        limit in 1024usize..128 * 1024,
        max_reassemblies in 0usize..6,
    ) {
        let mut ip = Ipv4Layer::new(Ipv4Config {
            reassembly_limit_bytes: limit,
            max_reassemblies,
            icmp_queue_len: 2,
            ..Ipv4Config::default()
        });
        let t0 = Instant::now();
        let mut now = t0;
        let mut buf = [0u8; MAX_ICMP_DATAGRAM_LEN];
        for (bytes, advance_ms) in &steps {
            now += Duration::from_millis(*advance_ms);
            if let Some(deadline) = ip.poll_timeout() {
                if deadline <= now {
                    ip.handle_timeout(now);
                }
            }
            let _ = ip.handle_datagram(now, bytes);
            prop_assert!(ip.reassembly_memory() <= limit);
            prop_assert_eq!(ip.reassembly_memory(), ip.reassembly_memory_recounted());
            while let Some(len) = ip.poll_transmit(&mut buf) {
                prop_assert_eq!(checksum::checksum(&buf[..20]), 0);
                prop_assert_eq!(checksum::checksum(&buf[20..len]), 0);
            }
        }
        prop_assert_eq!(ip.stats().received, steps.len() as u64);
    }

    #[test]
    fn fragments_in_any_order_with_duplicates_reassemble_exactly(
        segment in proptest::collection::vec(any::<u8>(), 1..5000),
        blocks in 1usize..185,
        order_seed in proptest::collection::vec(any::<u16>(), 64),
        duplicate_every in 2usize..6,
    ) {
        let parts = fragments(PROTOCOL_TCP, 0x5151, &segment, blocks * 8);
        let mut order: Vec<usize> = (0..parts.len()).collect();
        order.sort_by_key(|&i| order_seed[i % order_seed.len()].wrapping_mul(i as u16 + 1));
        let mut ip = layer();
        let t0 = Instant::now();
        let mut delivered = None;
        for (step, &index) in order.iter().enumerate() {
            if step % duplicate_every == 1 {
                let repeat = order[step - 1];
                prop_assert_eq!(
                    ip.handle_datagram(t0, &parts[repeat]),
                    Ingress::Dropped(DropReason::FragmentDuplicate)
                );
            }
            match ip.handle_datagram(t0, &parts[index]) {
                Ingress::Consumed => prop_assert!(step + 1 < order.len() || parts.len() == 1),
                Ingress::Tcp { segment: reassembled, .. } => {
                    delivered = Some(reassembled.to_vec());
                }
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        prop_assert_eq!(delivered, Some(segment));
        prop_assert_eq!(ip.reassembly_memory(), ip.reassembly_memory_recounted());
    }
}
