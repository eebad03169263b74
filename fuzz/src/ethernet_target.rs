//! Fuzz harness for the Ethernet layer: `EthernetRepr::parse`/`emit`, the receive filter and
//! demux of `EthernetLayer::handle_frame`, and `MacAddr`'s text form.
//!
//! Input format (every byte string is valid; missing bytes read as zero):
//! ```text
//! config:  groups:u8   (bit n: join group n of GROUPS)
//! then records, each  op:u8  len:u16 bytes
//!   op bits 0-1: rewrite the destination MAC: 0 keep, 1 ours, 2 broadcast, 3 a group
//!   op bits 2-3: rewrite the ethertype: 0 keep, 1 IPv4, 2 ARP, 3 IPv6
//!   op bit 4:    also parse the bytes as a MAC address string
//! ```
//! Invariants: no panic; what parses emits back to the same header bytes and parses again to
//! the same header; emitted frames are at least 60 bytes with zeroed padding; an IPv4 datagram
//! handed up is a prefix of the payload and its length is the total length when trimmed; an
//! ARP packet handed up is the whole payload; every frame is counted exactly once; a MAC that
//! parses prints back to an equal MAC.

use tunstack::ethernet::{EthernetLayer, EthernetRepr, Ingress, MacAddr, MIN_FRAME_LEN};

/// Our MAC in the harness.
pub const OURS: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x02]);
const GROUPS: [MacAddr; 3] = [
    MacAddr([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]),
    MacAddr([0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb]),
    MacAddr([0x33, 0x33, 0x00, 0x00, 0x00, 0x01]),
];

/// Runs one fuzz input.
pub fn run(data: &[u8]) {
    let mut input = crate::input::Input::new(data);
    let mut layer = EthernetLayer::new(OURS);
    let groups = input.u8();
    for (n, group) in GROUPS.iter().enumerate() {
        if groups & (1 << n) != 0 {
            layer.join(*group);
        }
    }
    let mut frames = 0u64;
    while !input.is_empty() && frames < 4096 {
        let op = input.u8();
        let mut frame = input.chunk().to_vec();
        if op & 0x10 != 0 {
            check_mac_text(&frame);
        }
        if frame.len() >= 14 {
            let dst = match op & 0x03 {
                0 => None,
                1 => Some(OURS),
                2 => Some(MacAddr::BROADCAST),
                _ => Some(GROUPS[usize::from(groups) % GROUPS.len()]),
            };
            if let Some(dst) = dst {
                frame[..6].copy_from_slice(&dst.0);
            }
            let ethertype: Option<u16> = match (op >> 2) & 0x03 {
                0 => None,
                1 => Some(0x0800),
                2 => Some(0x0806),
                _ => Some(0x86dd),
            };
            if let Some(ethertype) = ethertype {
                frame[12..14].copy_from_slice(&ethertype.to_be_bytes());
            }
        }
        check_parse_emit(&frame);
        frames += 1;
        let before = layer.stats().clone();
        match layer.handle_frame(&frame) {
            Ingress::Ipv4 { src, datagram } => {
                let payload = &frame[14..];
                assert!(payload.starts_with(datagram), "IPv4 datagram is a prefix");
                assert!(src.is_unicast() || src == MacAddr::UNSPECIFIED);
                assert!(layer.accepts(MacAddr(frame[..6].try_into().unwrap())));
                if datagram.len() < payload.len() {
                    let total = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
                    assert_eq!(datagram.len(), total, "trimmed to the total length");
                    assert!(total >= 20);
                    assert_eq!(layer.stats().padding_trimmed, before.padding_trimmed + 1);
                }
            }
            Ingress::Arp { packet, .. } => assert_eq!(packet, &frame[14..]),
            Ingress::Dropped(reason) => {
                assert_eq!(layer.stats().dropped(reason), before.dropped(reason) + 1);
            }
        }
        let stats = layer.stats();
        assert_eq!(stats.received, frames);
        assert_eq!(stats.ipv4 + stats.arp + stats.dropped_total(), frames);
    }
}

fn check_parse_emit(frame: &[u8]) {
    let Ok((repr, payload)) = EthernetRepr::parse(frame) else {
        return;
    };
    assert_eq!(payload, &frame[14..]);
    let mut header = [0u8; 14];
    assert_eq!(repr.emit_header(&mut header), Ok(14));
    assert_eq!(&header, &frame[..14], "parse and emit are inverses");
    let mut buf = vec![0xa5u8; frame.len().max(MIN_FRAME_LEN) + 1];
    let len = repr.emit(&mut buf, payload).expect("buffer sized for it");
    assert_eq!(len, frame.len().max(MIN_FRAME_LEN));
    assert!(
        buf[frame.len()..len].iter().all(|&b| b == 0),
        "padding zeroed"
    );
    assert_eq!(buf[len], 0xa5, "nothing written past the frame");
    let (again, again_payload) = EthernetRepr::parse(&buf[..len]).expect("our frame parses");
    assert_eq!(again, repr);
    assert!(again_payload.starts_with(payload));
}

fn check_mac_text(bytes: &[u8]) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        if let Ok(mac) = text.parse::<MacAddr>() {
            assert_eq!(mac.to_string().parse::<MacAddr>(), Ok(mac));
            assert_eq!(mac.to_string(), text.to_ascii_lowercase().replace('-', ":"));
        }
    }
    if let Some(six) = bytes.first_chunk::<6>() {
        let mac = MacAddr(*six);
        assert_eq!(mac.to_string().parse::<MacAddr>(), Ok(mac));
    }
}
