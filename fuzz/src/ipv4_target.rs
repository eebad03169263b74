//! Fuzz harness for `Ipv4Layer::handle_datagram`: validation, ICMP and fragment reassembly.
//!
//! Input format (every byte string is valid; missing bytes read as zero):
//! ```text
//! config:  limit_choice:u8  reassemblies_and_icmp_queue:u8  timeout_secs:u8
//! then records, each  op:u8  and its fields:
//!   op % 5 == 0  raw datagram:          len:u16 bytes
//!   op % 5 == 1  mutated real datagram: flags:u8 len:u16 bytes   (flags bit 0: set dst to
//!                ours, bit 1: fix the TCP/ICMP checksum; the header checksum is always fixed)
//!   op % 5 == 2  built datagram or fragment: see `built_fields`, then payload len:u16 bytes
//!   op % 5 == 3  built datagram cut into fragments: fields, payload, then
//!                unit:u8 order_seed:u8 tweak:u8
//!   op % 5 == 4  time passes: millis:u16 (x 16 when the op's bit 7 is set)
//! ```
//! Invariants checked after every step: no panic, `reassembly_memory()` within the configured
//! limit, every datagram the layer queues is a valid ICMP reply from our address, every TCP
//! segment handed up is for us; at the end, once everything expired, no memory is held.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use tunstack::ipv4::{Ingress, Ipv4Config, Ipv4Layer, MAX_ICMP_DATAGRAM_LEN};
use tunstack::wire::ChecksumStatus;

use crate::input::Input;
use crate::packet::{self, Ipv4Fields, ICMP, TCP};

/// Our address in every harness.
pub const LOCAL: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// The usual peer.
pub const REMOTE: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 2);

const LIMITS: [usize; 6] = [0, 300, 2048, 8192, 65536, 256 * 1024];

/// Runs one fuzz input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let limit = LIMITS[usize::from(input.u8()) % LIMITS.len()];
    let counts = input.u8();
    let timeout = Duration::from_secs(1 + u64::from(input.u8() % 60));
    let config = Ipv4Config {
        local_addr: LOCAL,
        reassembly_timeout: timeout,
        reassembly_limit_bytes: limit,
        max_reassemblies: 1 + usize::from(counts & 0x0f),
        icmp_queue_len: usize::from(counts >> 4),
        first_identification: 0,
    };
    let mut layer = Ipv4Layer::new(config);
    let start = Instant::now();
    let mut now = start;
    let mut steps = 0;
    while !input.is_empty() && steps < 4096 {
        steps += 1;
        let op = input.u8();
        match op % 5 {
            0 => {
                let datagram = input.chunk();
                deliver(&mut layer, now, datagram, limit);
            }
            1 => {
                let flags = input.u8();
                let mut datagram = input.chunk().to_vec();
                if datagram.len() >= 20 {
                    if flags & 1 != 0 {
                        datagram[16..20].copy_from_slice(&LOCAL.octets());
                    }
                    if flags & 2 != 0 {
                        packet::fix_inner_checksum(&mut datagram);
                    }
                    packet::fix_ipv4_checksum(&mut datagram);
                }
                deliver(&mut layer, now, &datagram, limit);
            }
            2 => {
                let (fields, fix_inner) = built_fields(&mut input);
                let payload = input.chunk();
                let mut datagram = packet::ipv4_datagram(&fields, payload);
                if fix_inner && !fields.more_fragments && fields.offset_units == 0 {
                    packet::fix_inner_checksum(&mut datagram);
                    packet::fix_ipv4_checksum(&mut datagram);
                }
                deliver(&mut layer, now, &datagram, limit);
            }
            3 => {
                let (fields, fix_inner) = built_fields(&mut input);
                let payload = input.chunk();
                let unit = 8 * (1 + usize::from(input.u8() % 64));
                let order_seed = input.u8();
                let tweak = input.u8();
                for fragment in fragments(&fields, payload, fix_inner, unit, order_seed, tweak) {
                    deliver(&mut layer, now, &fragment, limit);
                }
            }
            _ => {
                let scale = if op & 0x80 != 0 { 16 } else { 1 };
                now += Duration::from_millis(u64::from(input.u16()) * scale);
                layer.handle_timeout(now);
                drain(&mut layer, limit);
            }
        }
    }
    // Everything expires; the next datagram releases the last completed one.
    now += timeout + Duration::from_secs(1);
    layer.handle_timeout(now);
    drain(&mut layer, limit);
    assert_eq!(
        layer.poll_timeout(),
        None,
        "a reassembly outlived its timeout"
    );
    deliver(&mut layer, now, &[], limit);
    assert_eq!(
        layer.reassembly_memory(),
        0,
        "reassembly memory still accounted after every reassembly expired"
    );
}

/// Reads the fields of a built datagram; returns them and whether to fix the inner checksum.
///
/// ```text
/// addr:u8  protocol:u8  identification:u8  flags:u8  offset_units:u16  ttl:u8  options:u8 bytes
/// ```
fn built_fields<'a>(input: &mut Input<'a>) -> (Ipv4Fields<'a>, bool) {
    let addr = input.u8();
    let src = match addr & 0x07 {
        0..=3 => REMOTE,
        4 => Ipv4Addr::new(10, 77, 1, 3),
        5 => LOCAL,
        6 => Ipv4Addr::new(224, 0, 0, 1),
        _ => Ipv4Addr::new(0, 0, 0, 0),
    };
    let dst = if addr & 0x38 == 0x38 {
        Ipv4Addr::new(10, 77, 0, 3)
    } else {
        LOCAL
    };
    let protocol = match input.u8() {
        p @ 0..=127 => {
            if p & 1 == 0 {
                TCP
            } else {
                ICMP
            }
        }
        p => p,
    };
    let identification = u16::from(input.u8() & 0x07);
    let flags = input.u8();
    let offset_units = input.u16();
    let ttl = input.u8();
    let options_len = usize::from(input.u8() % 11) * 4;
    let options = input.bytes(options_len);
    let fields = Ipv4Fields {
        src,
        dst,
        protocol,
        ttl,
        identification,
        dont_fragment: flags & 1 != 0,
        more_fragments: flags & 2 != 0,
        offset_units: if flags & 4 != 0 { offset_units } else { 0 },
        options,
    };
    (fields, flags & 8 != 0)
}

/// Cuts the datagram `fields` + `payload` into fragments of `unit` bytes, in an order chosen by
/// `order_seed`; `tweak` may duplicate, overlap or drop one fragment.
fn fragments(
    fields: &Ipv4Fields<'_>,
    payload: &[u8],
    fix_inner: bool,
    unit: usize,
    order_seed: u8,
    tweak: u8,
) -> Vec<Vec<u8>> {
    let mut payload = payload.to_vec();
    if fix_inner {
        let whole = Ipv4Fields {
            more_fragments: false,
            offset_units: 0,
            ..*fields
        };
        let mut datagram = packet::ipv4_datagram(&whole, &payload);
        packet::fix_inner_checksum(&mut datagram);
        let header_len = usize::from(datagram[0] & 0x0f) * 4;
        payload = datagram[header_len..].to_vec();
    }
    let mut pieces: Vec<(usize, usize)> = Vec::new();
    let mut offset = 0;
    while offset < payload.len() && pieces.len() < 256 {
        let end = (offset + unit).min(payload.len());
        pieces.push((offset, end));
        offset = end;
    }
    if let Some(last) = pieces.last_mut() {
        last.1 = payload.len();
    }
    let count = pieces.len();
    if count > 1 {
        let mut state = u32::from(order_seed) | 0x100;
        for i in (1..count).rev() {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            pieces.swap(i, state as usize % (i + 1));
        }
    }
    match tweak % 8 {
        1 if count > 0 => pieces.push(pieces[usize::from(tweak >> 3) % count]),
        2 if count > 0 => {
            let (start, end) = pieces[usize::from(tweak >> 3) % count];
            pieces.push((start.saturating_sub(8), end));
        }
        3 if count > 1 => {
            pieces.remove(usize::from(tweak >> 3) % count);
        }
        _ => {}
    }
    pieces
        .into_iter()
        .map(|(start, end)| {
            let piece = Ipv4Fields {
                more_fragments: end < payload.len(),
                offset_units: (start / 8) as u16,
                options: if start == 0 { fields.options } else { &[] },
                ..*fields
            };
            packet::ipv4_datagram(&piece, &payload[start..end])
        })
        .collect()
}

fn deliver(layer: &mut Ipv4Layer, now: Instant, datagram: &[u8], limit: usize) {
    match layer.handle_datagram(now, datagram) {
        Ingress::Tcp {
            src,
            dst,
            segment,
            checksum,
        } => {
            assert_eq!(
                checksum,
                ChecksumStatus::Unverified,
                "a datagram nobody vouched for came out trusted"
            );
            assert_eq!(dst, LOCAL, "delivered a segment for another host");
            assert_ne!(src, LOCAL, "delivered a segment from ourselves");
            assert!(segment.len() <= 65535 - 20);
        }
        Ingress::IcmpError(error) => {
            assert_ne!(error.remote_addr, LOCAL);
        }
        Ingress::Consumed | Ingress::Dropped(_) => {}
    }
    drain(layer, limit);
}

fn drain(layer: &mut Ipv4Layer, limit: usize) {
    assert!(
        layer.reassembly_memory() <= limit,
        "reassembly holds {} bytes, limit {limit}",
        layer.reassembly_memory()
    );
    let mut buf = [0u8; MAX_ICMP_DATAGRAM_LEN];
    let mut sent = 0;
    while let Some(len) = layer.poll_transmit(&mut buf) {
        sent += 1;
        assert!(sent <= 4096, "poll_transmit never runs dry");
        packet::check_transmitted(&buf[..len], LOCAL, MAX_ICMP_DATAGRAM_LEN);
    }
}
