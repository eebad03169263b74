//! Trust under hostile input: memory stays bounded whatever arrives. IPv4 fragment reassembly
//! holds no more than its byte budget, a connection's receive buffer and the reassembly ring
//! under it no more than their capacity.
//!
//! Everything runs in memory under virtual time: an `Ipv4Layer`, a `ReceiveBuffer`, or one
//! `Stack` driven by a scripted peer (tests/common/scripted.rs). Shared with the other hostile
//! suites: tests/common/hostile.rs.

use std::time::{Duration, Instant};

mod common;

use proptest::prelude::*;

use common::hostile::{config, TCP};
use common::scripted::*;
use tunstack::ipv4::{Ipv4Config, Ipv4Layer};
use tunstack::tcp::reassembly::ReceiveBuffer;
use tunstack::tcp::State;
use tunstack::testing::{ipv4_datagram, Ipv4Fields};

/// A fragment an attacker might send: which datagram, where, how long, whether more follow.
#[derive(Debug, Clone)]
struct FragmentSpec {
    identification: u16,
    offset_units: u16,
    len: usize,
    more: bool,
    advance_ms: u64,
}

fn fragment_spec() -> impl Strategy<Value = FragmentSpec> {
    (
        0u16..6,
        0u16..200,
        0usize..1600,
        any::<bool>(),
        prop_oneof![4 => Just(0u64), 1 => 0u64..40_000],
    )
        .prop_map(
            |(identification, offset_units, len, more, advance_ms)| FragmentSpec {
                identification,
                offset_units,
                len,
                more,
                advance_ms,
            },
        )
}

/// The fragment `spec` describes (DF clear, TTL 64), from the library's test builder.
fn fragment_datagram(spec: &FragmentSpec) -> Vec<u8> {
    let fields = Ipv4Fields {
        identification: spec.identification,
        dont_fragment: false,
        more_fragments: spec.more,
        offset_units: spec.offset_units,
        ..Ipv4Fields::plain(SERVER, CLIENT, TCP)
    };
    ipv4_datagram(&fields, &vec![0xab; spec.len])
}

proptest! {
    #![proptest_config(config(64))]

    /// Whatever fragments arrive, reassembly holds no more than its budget, and once every
    /// reassembly timed out it holds nothing.
    #[test]
    fn ipv4_reassembly_memory_stays_within_its_limit(
        limit in prop_oneof![Just(0usize), 100usize..4096, 4096usize..70_000],
        max_reassemblies in 1usize..8,
        fragments in proptest::collection::vec(fragment_spec(), 1..120),
    ) {
        let timeout = Duration::from_secs(30);
        let mut layer = Ipv4Layer::new(Ipv4Config {
            local_addr: CLIENT,
            reassembly_timeout: timeout,
            reassembly_limit_bytes: limit,
            max_reassemblies,
            icmp_queue_len: 4,
            first_identification: 0,
        });
        let mut now = Instant::now();
        let mut buf = [0u8; 1500];
        for spec in &fragments {
            now += Duration::from_millis(spec.advance_ms);
            layer.handle_timeout(now);
            layer.handle_datagram(now, &fragment_datagram(spec));
            prop_assert!(
                layer.reassembly_memory() <= limit,
                "{} bytes held, limit {}", layer.reassembly_memory(), limit
            );
            while layer.poll_transmit(&mut buf).is_some() {}
        }
        now += timeout + Duration::from_secs(1);
        layer.handle_timeout(now);
        layer.handle_datagram(now, &[]);
        prop_assert_eq!(layer.reassembly_memory(), 0);
    }

    /// A connection's receive buffer never holds more than its capacity, whatever segments
    /// arrive (in window, overlapping, beyond the window, before RCV.NXT) and however slowly the
    /// application reads; and what it reads is exactly the peer's stream.
    #[test]
    fn connection_receive_memory_stays_within_its_buffer(
        capacity in prop_oneof![1usize..64, 64usize..5000, Just(65536usize)],
        peer_isn in any::<u32>(),
        segments in proptest::collection::vec(
            (-3000i32..80_000, 0usize..3000, prop::option::weighted(0.3, 1usize..6000)),
            1..80,
        ),
    ) {
        let mut peer = ScriptedPeer::connect(capacity, peer_isn, false);
        for (offset, len, read) in segments {
            let seq = peer.stack_ack.wrapping_add(offset as u32);
            peer.data(seq, len);
            let queued = peer.stack.connection(peer.id).map_or(0, |c| c.recv_queue());
            prop_assert!(queued <= capacity, "{} bytes queued in a {}-byte buffer", queued, capacity);
            if let Some(read) = read {
                peer.recv(read);
            }
            prop_assert_eq!(peer.state(), Some(State::Established));
        }
        peer.recv(1 << 20);
        prop_assert_eq!(&peer.read, &peer.expected_read());
    }

    /// The reassembly ring itself: in-order plus out-of-order bytes never exceed its capacity,
    /// and reads return the stream in order.
    #[test]
    fn receive_buffer_never_exceeds_its_capacity(
        capacity in 1usize..3000,
        ops in proptest::collection::vec((0u64..6000, 0usize..2000, 0usize..1500), 1..200),
    ) {
        let mut ring = ReceiveBuffer::new(capacity);
        let mut read = 0u64;
        let mut out = vec![0u8; 1500];
        for (start, len, take) in ops {
            let start = ring.consumed() + start;
            let data: Vec<u8> = (0..len).map(|i| pattern((start + i as u64) as u32)).collect();
            ring.insert(start, &data);
            prop_assert!(ring.readable() + ring.out_of_order_bytes() <= ring.capacity());
            let n = ring.read(&mut out[..take]);
            for (i, &byte) in out[..n].iter().enumerate() {
                prop_assert_eq!(byte, pattern((read + i as u64) as u32));
            }
            read += n as u64;
        }
    }
}
