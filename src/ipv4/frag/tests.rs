//! Reassembly in order, out of order, with duplicates and overlaps, and at its limits.
use super::*;

const HEADER: [u8; 20] = [0x45; 20];

fn limits() -> ReassemblyLimits {
    ReassemblyLimits {
        timeout: Duration::from_secs(30),
        max_bytes: 256 * 1024,
        max_datagrams: 4,
    }
}

fn key(identification: u16) -> FragmentKey {
    FragmentKey {
        src: Ipv4Addr::new(10, 77, 1, 2),
        dst: Ipv4Addr::new(10, 77, 0, 2),
        protocol: 6,
        identification,
    }
}

/// A payload whose byte at offset `i` is `i as u8`, so misplaced bytes are noticed.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn fragment<'a>(id: u16, payload: &'a [u8], offset: usize, len: usize, more: bool) -> Fragment<'a> {
    Fragment {
        key: key(id),
        offset,
        more_fragments: more,
        header: &HEADER,
        payload: &payload[offset..offset + len],
    }
}

/// Splits `payload` into fragments of `size` bytes (the last one shorter).
fn split(id: u16, payload: &[u8], size: usize) -> Vec<Fragment<'_>> {
    (0..payload.len())
        .step_by(size)
        .map(|offset| {
            let len = size.min(payload.len() - offset);
            fragment(id, payload, offset, len, offset + len < payload.len())
        })
        .collect()
}

fn reassemble(order: &[Fragment<'_>]) -> (Reassembler, Vec<FragmentOutcome>) {
    let t0 = Instant::now();
    let mut reassembler = Reassembler::new(limits());
    let outcomes = order.iter().map(|f| reassembler.insert(t0, f)).collect();
    (reassembler, outcomes)
}

#[test]
fn in_order() {
    let payload = pattern(3000);
    let (reassembler, outcomes) = reassemble(&split(1, &payload, 1480));
    assert_eq!(
        outcomes,
        [
            FragmentOutcome::Stored,
            FragmentOutcome::Stored,
            FragmentOutcome::Completed
        ]
    );
    assert_eq!(reassembler.completed(), &payload[..]);
    assert_eq!(reassembler.next_deadline(), None);
    assert_eq!(reassembler.bytes_held(), reassembler.bytes_recounted());
    assert!(reassembler.bytes_held() >= 3000);
}

#[test]
fn reversed_and_interleaved_with_another_datagram() {
    let first = pattern(2000);
    let second: Vec<u8> = pattern(1000).iter().map(|b| b ^ 0xff).collect();
    let mut order = split(7, &first, 512);
    order.reverse();
    order.insert(2, split(8, &second, 504)[1]);
    order.insert(1, split(8, &second, 504)[0]);
    let (_, outcomes) = reassemble(&order);
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == FragmentOutcome::Completed)
            .count(),
        2
    );

    let t0 = Instant::now();
    let mut reassembler = Reassembler::new(limits());
    let mut reversed = split(7, &first, 512);
    reversed.reverse();
    let last = reversed.pop().expect("fragments");
    for f in &reversed {
        assert_eq!(reassembler.insert(t0, f), FragmentOutcome::Stored);
    }
    assert_eq!(reassembler.insert(t0, &last), FragmentOutcome::Completed);
    assert_eq!(reassembler.completed(), &first[..]);
}

#[test]
fn exact_duplicate_is_dropped_but_reassembly_continues() {
    let payload = pattern(1600);
    let parts = split(2, &payload, 800);
    let (reassembler, outcomes) = reassemble(&[parts[0], parts[0], parts[1]]);
    assert_eq!(
        outcomes,
        [
            FragmentOutcome::Stored,
            FragmentOutcome::Rejected(DropReason::FragmentDuplicate),
            FragmentOutcome::Completed
        ]
    );
    assert_eq!(reassembler.completed(), &payload[..]);
}

#[test]
fn overlap_discards_the_whole_datagram() {
    let payload = pattern(2400);
    let parts = split(3, &payload, 800);
    let overlapping = fragment(3, &payload, 400, 800, true);
    let (reassembler, outcomes) = reassemble(&[parts[0], overlapping, parts[1], parts[2]]);
    assert_eq!(
        outcomes[1],
        FragmentOutcome::Rejected(DropReason::FragmentOverlap)
    );
    // The remaining fragments start a new reassembly that lacks the first part.
    assert_eq!(
        outcomes[2..],
        [FragmentOutcome::Stored, FragmentOutcome::Stored]
    );
    assert!(reassembler.next_deadline().is_some());

    // Overlap with the fragment before, and one starting at the same offset.
    let tail_overlap = fragment(3, &payload, 792, 16, true);
    let same_start = fragment(3, &payload, 0, 8, true);
    for bad in [tail_overlap, same_start] {
        let (_, outcomes) = reassemble(&[parts[0], bad]);
        assert_eq!(
            outcomes[1],
            FragmentOutcome::Rejected(DropReason::FragmentOverlap)
        );
    }
}

#[test]
fn inconsistent_fragments_are_invalid() {
    let payload = pattern(2400);
    let parts = split(4, &payload, 800);
    let early_end = fragment(4, &payload, 800, 800, false);
    let beyond_end = fragment(4, &payload, 1600, 800, true);
    let cases: [(&[Fragment<'_>], usize); 5] = [
        // A second, different last fragment.
        (&[parts[2], early_end], 1),
        // A fragment past the end set by the last fragment.
        (&[fragment(4, &payload, 800, 800, false), beyond_end], 1),
        // A last fragment ending before data already received.
        (&[parts[1], fragment(4, &payload, 0, 800, false)], 1),
        // More fragments follow but the length is not a multiple of 8.
        (&[fragment(4, &payload, 0, 801, true)], 0),
        // Empty.
        (&[fragment(4, &payload, 800, 0, true)], 0),
    ];
    for (order, bad) in cases {
        let (reassembler, outcomes) = reassemble(order);
        assert_eq!(
            outcomes[bad],
            FragmentOutcome::Rejected(DropReason::FragmentInvalid)
        );
        assert_eq!(
            reassembler.next_deadline(),
            None,
            "the datagram is discarded"
        );
        assert_eq!(reassembler.bytes_held(), 0);
    }
}

#[test]
fn oversized_datagram_is_refused() {
    let payload = pattern(65535);
    let (_, outcomes) = reassemble(&[fragment(5, &payload, 65000, 520, false)]);
    assert_eq!(
        outcomes,
        [FragmentOutcome::Rejected(DropReason::OversizedDatagram)]
    );
    let (_, outcomes) = reassemble(&[fragment(5, &payload, 64000, 1515, false)]);
    assert_eq!(
        outcomes,
        [FragmentOutcome::Stored],
        "exactly 65535 with the header"
    );
}

#[test]
fn limits_on_count_bytes_and_fragments() {
    let payload = pattern(65000);
    let t0 = Instant::now();

    let mut reassembler = Reassembler::new(limits());
    for id in 0..4 {
        let f = fragment(id, &payload, 0, 8, true);
        assert_eq!(reassembler.insert(t0, &f), FragmentOutcome::Stored);
    }
    assert_eq!(reassembler.take_evictions(), 0);
    let fifth = fragment(4, &payload, 0, 8, true);
    assert_eq!(reassembler.insert(t0, &fifth), FragmentOutcome::Stored);
    assert_eq!(reassembler.take_evictions(), 1, "the table holds four");
    assert_eq!(reassembler.bytes_held(), reassembler.bytes_recounted());

    let small = ReassemblyLimits {
        max_bytes: 4096,
        ..limits()
    };
    let mut reassembler = Reassembler::new(small);
    let big = fragment(9, &payload, 8000, 8, true);
    assert_eq!(
        reassembler.insert(t0, &big),
        FragmentOutcome::Rejected(DropReason::ReassemblyLimit)
    );
    assert_eq!(reassembler.next_deadline(), None);
    assert_eq!(reassembler.bytes_held(), 0);

    let mut reassembler = Reassembler::new(limits());
    for index in 0..MAX_FRAGMENTS_PER_DATAGRAM {
        let f = fragment(10, &payload, index * 16, 8, true);
        assert_eq!(reassembler.insert(t0, &f), FragmentOutcome::Stored);
    }
    let one_more = fragment(10, &payload, MAX_FRAGMENTS_PER_DATAGRAM * 16, 8, true);
    assert_eq!(
        reassembler.insert(t0, &one_more),
        FragmentOutcome::Rejected(DropReason::ReassemblyLimit)
    );
    assert_eq!(reassembler.bytes_held(), 0);
}

/// A table full of datagrams that will never complete (lost fragments, or an attacker) must
/// not shut out a new datagram until they time out: the oldest goes.
#[test]
fn full_table_evicts_the_oldest_for_a_new_datagram() {
    let payload = pattern(3000);
    let t0 = Instant::now();
    let mut reassembler = Reassembler::new(limits());
    for id in 0..4u16 {
        let at = t0 + Duration::from_millis(u64::from(id));
        let f = fragment(id, &payload, 0, 1000, true);
        assert_eq!(reassembler.insert(at, &f), FragmentOutcome::Stored);
    }
    let later = t0 + Duration::from_secs(1);
    let mut outcomes = Vec::new();
    for f in split(7, &payload, 1000) {
        outcomes.push(reassembler.insert(later, &f));
    }
    assert_eq!(outcomes.last(), Some(&FragmentOutcome::Completed));
    assert_eq!(reassembler.completed(), &payload[..]);
    assert_eq!(reassembler.take_evictions(), 1);
    // Datagram 0 (the oldest) is gone: its tail starts a fresh reassembly in the room the
    // completed one left; the next new datagram then evicts 1, the oldest now.
    let tail_of_0 = fragment(0, &payload, 2000, 1000, false);
    assert_eq!(
        reassembler.insert(later, &tail_of_0),
        FragmentOutcome::Stored
    );
    assert_eq!(reassembler.take_evictions(), 0);
    let head_of_8 = fragment(8, &payload, 0, 1000, true);
    assert_eq!(
        reassembler.insert(later, &head_of_8),
        FragmentOutcome::Stored
    );
    assert_eq!(reassembler.take_evictions(), 1);
    let rest_of_1 = split(1, &payload, 1000);
    assert_eq!(
        reassembler.insert(later, &rest_of_1[1]),
        FragmentOutcome::Stored
    );
    assert_eq!(
        reassembler.take_evictions(),
        1,
        "1 was evicted; 2 goes for it now"
    );
    // Datagram 3 is still there and completes.
    let rest_of_3 = split(3, &payload, 1000);
    assert_eq!(
        reassembler.insert(later, &rest_of_3[1]),
        FragmentOutcome::Stored
    );
    assert_eq!(
        reassembler.insert(later, &rest_of_3[2]),
        FragmentOutcome::Completed
    );
    assert_eq!(reassembler.take_evictions(), 0);
    assert_eq!(reassembler.bytes_held(), reassembler.bytes_recounted());
}

/// The memory budget works the same way: a datagram that needs the room others hold
/// evicts them, oldest first, but never more than it needs.
#[test]
fn full_memory_evicts_the_oldest_for_a_new_datagram() {
    let payload = pattern(60000);
    let t0 = Instant::now();
    let tight = ReassemblyLimits {
        max_bytes: 160 * 1024,
        ..limits()
    };
    let mut reassembler = Reassembler::new(tight);
    for id in 0..2u16 {
        let at = t0 + Duration::from_millis(u64::from(id));
        let f = fragment(id, &payload, 59000, 1000, false);
        assert_eq!(reassembler.insert(at, &f), FragmentOutcome::Stored);
    }
    let held_by_two = reassembler.bytes_held();
    assert!(held_by_two > 100 * 1024, "{held_by_two}");
    let later = t0 + Duration::from_secs(1);
    let third = fragment(2, &payload, 59000, 1000, false);
    assert_eq!(reassembler.insert(later, &third), FragmentOutcome::Stored);
    assert_eq!(reassembler.take_evictions(), 1);
    // Datagram 1 survived: its head completes it.
    let head_of_1: Vec<_> = split(1, &payload[..59000], 1000)
        .into_iter()
        .map(|mut f| {
            f.more_fragments = true;
            f
        })
        .collect();
    let mut last = FragmentOutcome::Stored;
    for f in &head_of_1 {
        last = reassembler.insert(later, f);
        if last != FragmentOutcome::Stored {
            break;
        }
    }
    assert_eq!(last, FragmentOutcome::Completed);
    assert_eq!(reassembler.completed(), &payload[..]);
    assert!(reassembler.bytes_held() <= 160 * 1024);
    assert_eq!(reassembler.bytes_held(), reassembler.bytes_recounted());
}

#[test]
fn timeout_expires_and_quotes_fragment_zero() {
    let payload = pattern(3000);
    let parts = split(6, &payload, 1000);
    let other = pattern(100);
    let t0 = Instant::now();
    let mut reassembler = Reassembler::new(limits());
    assert_eq!(reassembler.insert(t0, &parts[0]), FragmentOutcome::Stored);
    let later = t0 + Duration::from_secs(10);
    let without_zero = fragment(11, &other, 8, 16, true);
    assert_eq!(
        reassembler.insert(later, &without_zero),
        FragmentOutcome::Stored
    );
    assert_eq!(
        reassembler.next_deadline(),
        Some(t0 + Duration::from_secs(30))
    );

    let mut seen = Vec::new();
    reassembler.expire(t0 + Duration::from_secs(29), |e| seen.push(e.key));
    assert!(seen.is_empty());

    reassembler.expire(t0 + Duration::from_secs(30), |e| {
        let (header, first_bytes) = e.quote.expect("fragment zero arrived");
        assert_eq!(header, &HEADER);
        assert_eq!(first_bytes, &payload[..8]);
        seen.push(e.key);
    });
    assert_eq!(seen, [key(6)]);
    assert_eq!(
        reassembler.next_deadline(),
        Some(later + Duration::from_secs(30))
    );

    reassembler.expire(later + Duration::from_secs(30), |e| {
        assert!(e.quote.is_none());
        seen.push(e.key);
    });
    assert_eq!(seen, [key(6), key(11)]);
    assert_eq!(reassembler.bytes_held(), 0);

    // The late fragments start a fresh reassembly rather than completing the expired one.
    let late = later + Duration::from_secs(31);
    assert_eq!(reassembler.insert(late, &parts[1]), FragmentOutcome::Stored);
    assert_eq!(reassembler.insert(late, &parts[2]), FragmentOutcome::Stored);
}

#[test]
fn completed_datagram_is_released_on_the_next_insert() {
    let payload = pattern(1000);
    let parts = split(12, &payload, 496);
    let (mut reassembler, _) = reassemble(&parts);
    assert!(reassembler.bytes_held() >= 1000);
    assert_eq!(reassembler.bytes_held(), reassembler.bytes_recounted());
    reassembler.release_completed();
    assert_eq!(reassembler.bytes_held(), 0);
    assert!(reassembler.completed().is_empty());
}
