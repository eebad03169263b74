//! The receive buffer: in-order bytes waiting for the application, and out-of-order bytes
//! parked at their place until the hole before them fills (the source of our SACK blocks).
//!
//! Which out-of-order bytes are held is one bit per byte of the ring, so everything inside the
//! window we advertised is kept whatever the number of holes (at 20% loss a 1 MiB window has
//! ~150 of them), and the bookkeeping is bounded by the buffer: a little over an eighth of its size. The SACK
//! blocks (RFC 2018) come from that bitmap: the islands that changed most recently first, then
//! the lowest others.

mod bits;

use std::ops::Range;

use bits::Bits;

/// The ring a buffer starts with before data asks for more.
pub const INITIAL_RING: usize = 4096;
/// What an emptied ring shrinks to when its connection will receive nothing more.
const SHED_RING: usize = 64;
/// Most SACK blocks any segment can carry (40 option bytes); we remember that many islands by
/// recency.
const RECENT: usize = 4;

/// What an insertion did, for ACK policy and statistics.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inserted {
    /// Bytes that became readable in order (how far RCV.NXT moves).
    pub advanced: usize,
    /// Nothing new: every byte was already held or already delivered.
    pub duplicate: bool,
    /// The segment was stored beyond a hole.
    pub out_of_order: bool,
    /// The out-of-order bytes touch no island held before: the sender has a new hole to learn
    /// about, not just a longer SACK block.
    pub new_island: bool,
    /// Bytes of the segment we had already received (before RCV.NXT, or a whole segment already
    /// held): what a D-SACK block reports (RFC 2883 §4).
    pub already_held: Option<Range<u64>>,
}

/// A ring of up to `capacity` bytes. Stream offsets are 64-bit counts from the first data
/// byte, so nothing here has to reason about sequence-number wrap.
///
/// The ring is allocated as data needs it: it starts at [`INITIAL_RING`] bytes and doubles
/// (copying what it holds) when a segment lands beyond its end, up to `capacity`. The window
/// advertised is always `capacity` less what is unread, so what we offered we can still take;
/// an idle connection, or one a slow trickle uses, costs kilobytes instead of the whole window.
///
/// Why one doubling ring rather than fixed-size pages allocated on first write and freed when
/// read: growing from 4 KiB to 1 MiB is eight reallocations that copy under 1 MiB in all, once
/// per connection (measured at 1.3 ms altogether per connection on the test machine, 0.6 ms at
/// most for one), and the per-byte paths (writes, reads, the `held` bitmap scans) keep one
/// contiguous ring with one modulo; pages would put a page-table lookup and a split at every
/// page boundary into all of them. The ring is never shrunk nor re-zeroed by reads: a
/// connection that once needed the whole window keeps it, so a busy one never pays the copies
/// twice.
#[derive(Debug)]
pub struct ReceiveBuffer {
    /// The buffer's size: the most bytes it will hold, which sets the window.
    size: usize,
    /// The allocated ring, `size` bytes or fewer; offsets map onto it modulo its length.
    ring: Box<[u8]>,
    /// One bit per ring position: set where an out-of-order byte is held (never for readable
    /// bytes, which are all the bytes from `read_index` for `readable`).
    held: Bits,
    /// Absolute offset of the first unread byte, and its ring index.
    read_offset: u64,
    read_index: usize,
    /// In-order bytes ready for the application.
    readable: usize,
    /// Out-of-order bytes held (set bits).
    out_of_order: usize,
    /// Islands (absolute offsets) most recently grown, newest first, for SACK block order.
    recent: [Option<(u64, u64)>; RECENT],
    /// One past the highest out-of-order byte ever stored, so looking for islands stops there
    /// instead of scanning the whole window.
    highest: u64,
}

impl ReceiveBuffer {
    /// A buffer holding at most `capacity` bytes, in order or not.
    pub fn new(capacity: usize) -> Self {
        Self::with_ring(capacity, INITIAL_RING)
    }

    /// A buffer of `capacity` bytes whose ring starts at `ring` bytes (tests use small rings to
    /// exercise the growth).
    fn with_ring(capacity: usize, ring: usize) -> Self {
        let capacity = capacity.max(1);
        let ring = capacity.min(ring.max(1));
        ReceiveBuffer {
            size: capacity,
            ring: vec![0; ring].into_boxed_slice(),
            held: Bits::new(ring),
            read_offset: 0,
            read_index: 0,
            readable: 0,
            out_of_order: 0,
            recent: [None; RECENT],
            highest: 0,
        }
    }

    /// Enlarges the buffer to `capacity` bytes (it never shrinks): the end of the buffer (the
    /// window's right edge) moves right by the growth; the ring follows when data needs it.
    pub fn grow(&mut self, capacity: usize) {
        self.size = self.size.max(capacity);
    }

    /// Makes the ring hold at least `needed` bytes from the first unread one: doubling, never
    /// beyond the buffer's size.
    fn reserve(&mut self, needed: usize) {
        let old = self.ring.len();
        if needed <= old {
            return;
        }
        self.reshape(needed.max(2 * old).min(self.size));
    }

    /// Reallocates the ring at `capacity` bytes: every readable and held byte keeps its stream
    /// offset. Costs a copy of the old ring, hence the doubling.
    fn reshape(&mut self, capacity: usize) {
        let old = self.ring.len();
        // Unroll the ring so that offset `read_offset + i` sits at index i.
        let mut ring = vec![0; capacity].into_boxed_slice();
        let (head, tail) = self.ring.split_at(self.read_index);
        ring[..tail.len()].copy_from_slice(tail);
        ring[tail.len()..old].copy_from_slice(head);
        // Held bytes move run by run. A run never contains `read_index` (that position is the
        // first unread byte, or RCV.NXT itself when nothing is readable: never held), so each
        // maps onto one range of the unrolled ring.
        let mut held = Bits::new(capacity);
        let mut from = 0;
        while let Some(start) = self.held.first(from..old, true) {
            let end = self.held.first(start..old, false).unwrap_or(old);
            let unrolled = (start + old - self.read_index) % old;
            held.update(unrolled..unrolled + (end - start), true);
            from = end;
        }
        self.ring = ring;
        self.held = held;
        self.read_index = 0;
    }

    /// Gives the ring back (down to a token allocation) when it holds nothing, for a
    /// connection that will receive no more data (TIME-WAIT): a server that closes first
    /// keeps one such connection per request for 2 MSL, and a grown ring each would be most
    /// of its memory. Offsets are kept; a later write grows the ring again.
    pub fn shed(&mut self) {
        if self.readable > 0 || self.out_of_order > 0 || self.ring.len() <= SHED_RING {
            return;
        }
        self.ring = vec![0; SHED_RING].into_boxed_slice();
        self.held = Bits::new(SHED_RING);
        self.read_index = 0;
        self.recent = [None; RECENT];
    }

    /// The buffer's size (the allocated ring may be smaller until data needs it).
    pub fn capacity(&self) -> usize {
        self.size
    }

    /// Bytes allocated for the ring now.
    pub fn allocated(&self) -> usize {
        self.ring.len()
    }

    /// Heap bytes the buffer holds: the ring and its `held` bitmap (a little over an eighth
    /// of the ring: a bit per byte and two per 64 bytes).
    pub fn heap_bytes(&self) -> usize {
        self.ring.len() + self.held.heap_bytes()
    }

    /// One past the last offset the allocated ring can hold: no byte is held beyond it.
    fn ring_limit(&self) -> u64 {
        self.read_offset + self.ring.len() as u64
    }

    /// Bytes the application can read now.
    pub fn readable(&self) -> usize {
        self.readable
    }

    /// Space from RCV.NXT to the end of the buffer: the receive window.
    pub fn window(&self) -> usize {
        self.capacity() - self.readable
    }

    /// Absolute offset of RCV.NXT.
    pub fn next_offset(&self) -> u64 {
        self.read_offset + self.readable as u64
    }

    /// Total bytes ever read by the application (moves the window's right edge).
    pub fn consumed(&self) -> u64 {
        self.read_offset
    }

    /// True when some bytes wait beyond a hole.
    pub fn has_out_of_order(&self) -> bool {
        self.out_of_order > 0
    }

    /// Bytes parked out of order.
    pub fn out_of_order_bytes(&self) -> usize {
        self.out_of_order
    }

    /// One past the last offset the ring can hold now.
    fn limit(&self) -> u64 {
        self.read_offset + self.capacity() as u64
    }

    /// Stores `data` that starts at absolute stream offset `start`. Bytes before RCV.NXT or past
    /// the buffer's end are ignored, so callers need only map sequence numbers to offsets.
    pub fn insert(&mut self, start: u64, data: &[u8]) -> Inserted {
        let next = self.next_offset();
        let limit = self.limit();
        let seg_end = start + data.len() as u64;
        let begin = start.max(next);
        let end = seg_end.min(limit);
        let below_next = (start < next).then(|| start..seg_end.min(next));
        if begin >= end {
            return Inserted {
                duplicate: !data.is_empty(),
                already_held: below_next,
                ..Inserted::default()
            };
        }
        if begin > next && end <= self.ring_limit() && self.all_held(begin, end) {
            return Inserted {
                duplicate: true,
                already_held: Some(begin..end),
                ..Inserted::default()
            };
        }
        self.reserve((end - self.read_offset) as usize);
        let held_limit = self.ring_limit();
        let src = &data[(begin - start) as usize..(end - start) as usize];
        self.write_at(begin, src);
        if begin == next {
            let mut new_end = end;
            // With nothing held out of order (the common case) no bit is set: skip the scans.
            if self.out_of_order > 0 {
                self.out_of_order -= self.update(begin, end, false);
            }
            if self.out_of_order > 0 && new_end < held_limit && self.any_held(new_end, new_end + 1)
            {
                // The new bytes reach an island: it becomes readable with them.
                let run_end = self.run_end(new_end);
                self.out_of_order -= self.update(new_end, run_end, false);
                new_end = run_end;
            }
            let advanced = (new_end - next) as usize;
            self.readable += advanced;
            return Inserted {
                advanced,
                already_held: below_next,
                ..Inserted::default()
            };
        }
        let touches = self.any_held(begin - 1, (end + 1).min(held_limit));
        self.out_of_order += self.update(begin, end, true);
        self.highest = self.highest.max(end);
        let island = (self.run_start(begin), self.run_end(end));
        self.recent.iter_mut().for_each(|slot| {
            if slot.is_some_and(|(s, e)| s < island.1 && island.0 < e) {
                *slot = None;
            }
        });
        self.recent.rotate_right(1);
        self.recent[0] = Some(island);
        // Keep the remembered islands packed at the front, newest first.
        self.recent.sort_by_key(Option::is_none);
        Inserted {
            out_of_order: true,
            new_island: !touches,
            ..Inserted::default()
        }
    }

    /// Copies readable bytes into `out` and frees their space.
    pub fn read(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.readable);
        let (a, b) = self.readable_slices();
        let first = n.min(a.len());
        out[..first].copy_from_slice(&a[..first]);
        out[first..n].copy_from_slice(&b[..n - first]);
        self.consume(n);
        n
    }

    /// The readable bytes as up to two slices, for zero-copy consumers.
    pub fn readable_slices(&self) -> (&[u8], &[u8]) {
        let cap = self.ring.len();
        let first_len = self.readable.min(cap - self.read_index);
        let a = &self.ring[self.read_index..self.read_index + first_len];
        let b = &self.ring[..self.readable - first_len];
        (a, b)
    }

    /// Marks `n` readable bytes as consumed.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.readable);
        self.readable -= n;
        self.read_offset += n as u64;
        self.read_index = (self.read_index + n) % self.ring.len();
    }

    /// Up to four out-of-order islands as absolute offsets: the most recently grown first (RFC
    /// 2018 §4: the first block holds the segment that triggered the ACK, the next ones repeat
    /// the latest reported), then the lowest others. No allocation: this runs for every ACK
    /// sent while there is a hole.
    pub fn sack_ranges(&self) -> impl Iterator<Item = Range<u64>> {
        let mut out: [Option<(u64, u64)>; RECENT] = [None; RECENT];
        if self.out_of_order > 0 {
            let next = self.next_offset();
            let limit = self.ring_limit();
            for &(start, end) in self.recent.iter().flatten() {
                let (start, end) = (start.max(next), end.min(limit));
                if let Some(at) = (start < end)
                    .then(|| self.first(start, end, true))
                    .flatten()
                {
                    push_unique(&mut out, (self.run_start(at), self.run_end(at)));
                }
            }
            let mut from = next;
            let scan_end = self.highest.min(limit);
            while out[RECENT - 1].is_none() && from < scan_end {
                let Some(at) = self.first(from, scan_end, true) else {
                    break;
                };
                let island = (at, self.run_end(at));
                push_unique(&mut out, island);
                from = island.1;
            }
        }
        out.into_iter().flatten().map(|(start, end)| start..end)
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) {
        let cap = self.ring.len();
        let index = self.index(offset);
        let first = data.len().min(cap - index);
        self.ring[index..index + first].copy_from_slice(&data[..first]);
        self.ring[..data.len() - first].copy_from_slice(&data[first..]);
    }

    /// The ring index of absolute offset `offset` (within the window).
    fn index(&self, offset: u64) -> usize {
        (self.read_index + (offset - self.read_offset) as usize) % self.ring.len()
    }

    /// The ring index ranges that absolute offsets `begin..end` occupy: one, or two when the
    /// range wraps (the second is empty otherwise).
    fn spans(&self, begin: u64, end: u64) -> [Range<usize>; 2] {
        let cap = self.ring.len();
        let start = self.index(begin);
        let len = (end - begin) as usize;
        if start + len <= cap {
            [start..start + len, 0..0]
        } else {
            [start..cap, 0..start + len - cap]
        }
    }

    /// Sets (`held`) or clears the bits of `begin..end`; returns how many changed.
    fn update(&mut self, begin: u64, end: u64, held: bool) -> usize {
        let [a, b] = self.spans(begin, end);
        self.held.update(a, held) + self.held.update(b, held)
    }

    fn any_held(&self, begin: u64, end: u64) -> bool {
        self.spans(begin, end)
            .into_iter()
            .any(|span| self.held.any(span))
    }

    fn all_held(&self, begin: u64, end: u64) -> bool {
        self.spans(begin, end)
            .into_iter()
            .all(|span| self.held.all(span))
    }

    /// The first offset in `begin..end` whose bit is `held`.
    fn first(&self, begin: u64, end: u64, held: bool) -> Option<u64> {
        let [a, b] = self.spans(begin, end);
        let a_len = a.len();
        if let Some(index) = self.held.first(a.clone(), held) {
            return Some(begin + (index - a.start) as u64);
        }
        let index = self.held.first(b.clone(), held)?;
        Some(begin + (a_len + index - b.start) as u64)
    }

    /// The last offset in `begin..end` whose bit is `held`.
    fn last(&self, begin: u64, end: u64, held: bool) -> Option<u64> {
        let [a, b] = self.spans(begin, end);
        if let Some(index) = self.held.last(b.clone(), held) {
            return Some(begin + (a.len() + index - b.start) as u64);
        }
        let index = self.held.last(a.clone(), held)?;
        Some(begin + (index - a.start) as u64)
    }

    /// Where the run of held bytes that contains (or starts at) `at` ends.
    fn run_end(&self, at: u64) -> u64 {
        let limit = self.ring_limit();
        self.first(at, limit, false).unwrap_or(limit)
    }

    /// Where the run of held bytes that ends just before `at` (or contains it) starts.
    fn run_start(&self, at: u64) -> u64 {
        let next = self.next_offset();
        self.last(next, at, false).map_or(next, |clear| clear + 1)
    }
}

/// Puts `island` in the first free slot unless it is there already.
fn push_unique(out: &mut [Option<(u64, u64)>; RECENT], island: (u64, u64)) {
    if out.contains(&Some(island)) {
        return;
    }
    if let Some(slot) = out.iter_mut().find(|slot| slot.is_none()) {
        *slot = Some(island);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read_all(buf: &mut ReceiveBuffer) -> Vec<u8> {
        let mut out = vec![0; buf.readable()];
        buf.read(&mut out);
        out
    }

    fn sacks(buf: &ReceiveBuffer) -> Vec<Range<u64>> {
        buf.sack_ranges().collect()
    }

    #[test]
    fn in_order_then_read() {
        let mut buf = ReceiveBuffer::new(16);
        assert_eq!(buf.insert(0, b"hello").advanced, 5);
        assert_eq!(buf.window(), 11);
        assert_eq!(read_all(&mut buf), b"hello");
        assert_eq!(buf.window(), 16);
    }

    #[test]
    fn hole_filled_releases_the_island() {
        let mut buf = ReceiveBuffer::new(32);
        let r = buf.insert(5, b"world");
        assert!(r.out_of_order);
        assert_eq!(sacks(&buf), vec![5..10]);
        assert_eq!(buf.insert(0, b"hello").advanced, 10);
        assert!(!buf.has_out_of_order());
        assert_eq!(sacks(&buf), vec![]);
        assert_eq!(read_all(&mut buf), b"helloworld");
    }

    #[test]
    fn only_bytes_touching_no_island_make_a_new_one() {
        let mut buf = ReceiveBuffer::new(64);
        assert!(buf.insert(10, b"abc").new_island);
        assert!(
            !buf.insert(13, b"def").new_island,
            "adjacent: the block grows"
        );
        assert!(!buf.insert(8, b"xyz").new_island, "overlapping");
        assert!(buf.insert(30, b"q").new_island, "beyond a second hole");
        assert!(!buf.insert(0, b"12345678").new_island, "in order");
    }

    #[test]
    fn duplicates_are_reported_with_their_range() {
        let mut buf = ReceiveBuffer::new(32);
        buf.insert(0, b"abc");
        let old = buf.insert(0, b"abc");
        assert!(old.duplicate);
        assert_eq!(old.already_held, Some(0..3));
        buf.insert(10, b"xyz");
        let held = buf.insert(11, b"y");
        assert!(held.duplicate);
        assert_eq!(held.already_held, Some(11..12));
        let partly = buf.insert(1, b"bcdef");
        assert!(!partly.duplicate);
        assert_eq!(partly.already_held, Some(1..3), "the old part, for D-SACK");
        assert_eq!(partly.advanced, 3);
    }

    #[test]
    fn data_beyond_the_buffer_is_cut() {
        let mut buf = ReceiveBuffer::new(4);
        assert_eq!(buf.insert(0, b"abcdef").advanced, 4);
        assert_eq!(buf.window(), 0);
        let beyond = buf.insert(4, b"ef");
        assert!(beyond.duplicate, "nothing stored");
        assert_eq!(beyond.already_held, None, "but nothing was held either");
        assert_eq!(read_all(&mut buf), b"abcd");
    }

    #[test]
    fn sack_ranges_put_the_latest_first() {
        let mut buf = ReceiveBuffer::new(100);
        buf.insert(10, b"a");
        buf.insert(20, b"b");
        buf.insert(30, b"c");
        buf.insert(11, b"a");
        assert_eq!(sacks(&buf), vec![10..12, 30..31, 20..21]);
    }

    /// RFC 2018 §4: the first block is the island holding the segment that triggered the ACK,
    /// even when islands far older than the recent four exist.
    #[test]
    fn first_block_is_the_triggering_segments_island() {
        let mut buf = ReceiveBuffer::new(10_000);
        for i in 0..10u64 {
            buf.insert(100 + i * 100, &[1; 50]);
        }
        buf.insert(350, &[2; 10]);
        assert_eq!(sacks(&buf)[0], 300..360);
        // An island merged from both sides is reported whole.
        buf.insert(360, &[3; 40]);
        assert_eq!(sacks(&buf)[0], 300..450);
        assert_eq!(sacks(&buf).len(), 4);
    }

    /// Every out-of-order byte inside the window is kept, however many holes there are
    /// (20% loss makes ~150 in a 1 MiB window); the bookkeeping is a little over an eighth of the buffer.
    #[test]
    fn many_holes_are_all_kept() {
        let mut buf = ReceiveBuffer::new(1 << 20);
        let mss = 1448u64;
        let mut stored = 0;
        for i in 0..700u64 {
            if i % 3 != 0 {
                let r = buf.insert(i * mss, &[i as u8; 1448]);
                assert!(r.out_of_order && !r.duplicate, "segment {i}");
                stored += 1448;
            }
        }
        assert_eq!(buf.out_of_order_bytes(), stored);
        // Fill the holes: everything becomes readable.
        for i in (0..700u64).step_by(3) {
            buf.insert(i * mss, &[i as u8; 1448]);
        }
        assert_eq!(buf.readable(), 700 * 1448);
        assert!(!buf.has_out_of_order());
        let data = read_all(&mut buf);
        assert!(data.chunks(1448).enumerate().all(|(i, c)| c[0] == i as u8));
    }

    #[test]
    fn islands_across_the_ring_wrap() {
        let mut buf = ReceiveBuffer::new(100);
        buf.insert(0, &[0; 90]);
        assert_eq!(read_all(&mut buf).len(), 90);
        // The window is now offsets 90..190, ring indices 90..100 then 0..90.
        let r = buf.insert(95, &[7; 20]);
        assert!(r.out_of_order && r.new_island);
        assert_eq!(sacks(&buf), vec![95..115]);
        assert_eq!(buf.insert(90, &[6; 5]).advanced, 25);
        assert_eq!(read_all(&mut buf), [[6; 5].as_slice(), &[7; 20]].concat());
    }

    proptest! {
        /// Whatever order and overlap the pieces arrive in, the stream comes out intact, the
        /// memory held never exceeds the buffer, and the SACK ranges are exactly maximal runs of
        /// held bytes, the one just grown first; also when the ring grows on the way.
        #[test]
        fn any_arrival_order_reassembles(
            pieces in proptest::collection::vec((0usize..2000, 1usize..300), 1..200),
            read_every in 1usize..10,
            grow_at in 0usize..250,
            first_ring in 1usize..1100,
        ) {
            let stream: Vec<u8> = (0..2300u32).map(|i| (i * 7 + 3) as u8).collect();
            // The ring starts small and grows as segments land beyond it.
            let mut buf = ReceiveBuffer::with_ring(1000, first_ring);
            let mut held = vec![false; stream.len() + 1000];
            let mut out = Vec::new();
            for (n, (start, len)) in pieces.iter().enumerate() {
                if n == grow_at {
                    // Growing mid-stream (to a size that is no multiple of 64) loses nothing.
                    buf.grow(1537);
                }
                let end = (start + len).min(stream.len());
                let r = buf.insert(*start as u64, &stream[*start..end]);
                let next = buf.next_offset() as usize;
                let limit = (buf.consumed() as usize + buf.capacity()).min(stream.len());
                for (i, h) in held.iter_mut().enumerate().take(end.min(limit)).skip(*start) {
                    *h = i >= next;
                }
                for h in held.iter_mut().take(next) {
                    *h = false;
                }
                prop_assert!(buf.readable() + buf.out_of_order_bytes() <= buf.capacity());
                prop_assert_eq!(buf.out_of_order_bytes(), held.iter().filter(|h| **h).count());
                for range in buf.sack_ranges() {
                    let (s, e) = (range.start as usize, range.end as usize);
                    prop_assert!(s > next && held[s..e].iter().all(|h| *h));
                    prop_assert!(!held[s - 1] && !held[e], "{:?} is not maximal", range);
                }
                if r.out_of_order {
                    let first = buf.sack_ranges().next().unwrap();
                    prop_assert!(first.start <= *start as u64 && (*start as u64) < first.end);
                }
                if n % read_every == 0 {
                    out.extend(read_all(&mut buf));
                }
            }
            buf.insert(0, &stream);
            out.extend(read_all(&mut buf));
            while out.len() < stream.len() {
                let at = buf.next_offset() as usize;
                buf.insert(at as u64, &stream[at..]);
                out.extend(read_all(&mut buf));
            }
            prop_assert_eq!(out, stream);
        }
    }

    #[test]
    fn shedding_an_empty_ring_keeps_offsets_and_the_window() {
        let stream: Vec<u8> = (0..30_000u32).map(|i| (i * 13 + 1) as u8).collect();
        let mut buf = ReceiveBuffer::new(64 << 10);
        buf.insert(0, &stream[..20_000]);
        let mut sink = vec![0u8; 20_000];
        assert_eq!(buf.read(&mut sink), 20_000);
        let window = buf.window();
        assert!(buf.heap_bytes() > 20_000);
        buf.shed();
        assert!(buf.heap_bytes() < 100, "{}", buf.heap_bytes());
        assert_eq!(buf.window(), window);
        // Still a working buffer at the same offsets.
        buf.insert(20_000, &stream[20_000..30_000]);
        assert_eq!(buf.read(&mut sink[..10_000]), 10_000);
        assert_eq!(&sink[..10_000], &stream[20_000..30_000]);
        // Unread bytes are never shed.
        buf.insert(30_000, &[1, 2, 3]);
        let before = buf.heap_bytes();
        buf.shed();
        assert_eq!(buf.heap_bytes(), before);
    }

    #[test]
    fn growing_keeps_readable_and_held_bytes_at_their_offsets() {
        let stream: Vec<u8> = (0..400u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut buf = ReceiveBuffer::new(100);
        // Wrap the ring: read 70 of 80 bytes, so the read index sits at 70.
        buf.insert(0, &stream[..80]);
        let mut sink = [0u8; 70];
        assert_eq!(buf.read(&mut sink), 70);
        // A hole at 80..90, an island at 90..170 that wraps the ring and ends at its end.
        assert!(buf.insert(90, &stream[90..170]).out_of_order);
        assert_eq!(buf.window(), 90);
        buf.grow(250);
        assert_eq!(buf.capacity(), 250);
        assert_eq!(buf.window(), 240);
        assert_eq!(buf.out_of_order_bytes(), 80);
        assert_eq!(buf.sack_ranges().next(), Some(90..170));
        assert_eq!(buf.sack_ranges().count(), 1);
        // Room beyond the old end, then the hole: everything reads back in order.
        assert!(buf.insert(170, &stream[170..300]).out_of_order);
        assert_eq!(buf.insert(80, &stream[80..90]).advanced, 220);
        assert!(!buf.has_out_of_order());
        assert_eq!(read_all(&mut buf), &stream[70..300]);
        // Growing to less than the capacity does nothing.
        buf.grow(10);
        assert_eq!(buf.capacity(), 250);
    }

    /// Issue 13: a connection nobody sends to (half-open, idle) costs a few KiB of receive
    /// buffer, not the 1 MiB window it offers.
    #[test]
    fn an_idle_buffer_costs_a_few_kib() {
        let buf = ReceiveBuffer::new(1 << 20);
        assert_eq!(buf.window(), 1 << 20);
        // The ring, its bitmap (an eighth) and the bitmap's two summary words.
        assert_eq!(buf.heap_bytes(), INITIAL_RING + INITIAL_RING / 8 + 16);
        assert!(buf.heap_bytes() <= 5 << 10, "{}", buf.heap_bytes());
    }

    /// Growth doubles, so reaching the full size copies less than the size once over; and a
    /// buffer that was read empty keeps its ring (no shrinking, no re-zeroing, no regrowth).
    #[test]
    fn growth_doubles_and_a_drained_ring_is_kept() {
        let mut buf = ReceiveBuffer::new(1 << 20);
        let mut sizes = vec![buf.allocated()];
        let mut sink = vec![0u8; 1 << 20];
        for i in 0..(1u64 << 20) / 1448 {
            buf.insert(i * 1448, &[i as u8; 1448]);
            if buf.allocated() != *sizes.last().unwrap() {
                sizes.push(buf.allocated());
            }
        }
        assert_eq!(
            sizes,
            (12..=20).map(|shift| 1usize << shift).collect::<Vec<_>>(),
            "4 KiB doubling to 1 MiB: eight copies of at most half the final size"
        );
        buf.read(&mut sink);
        assert_eq!(buf.readable(), 0);
        assert_eq!(buf.allocated(), 1 << 20);
        let at = buf.next_offset();
        buf.insert(at, &[9; 1448]);
        assert_eq!(buf.allocated(), 1 << 20);
    }

    #[test]
    fn the_ring_is_allocated_as_data_needs_it() {
        let mut buf = ReceiveBuffer::new(1 << 20);
        assert_eq!(buf.allocated(), INITIAL_RING);
        assert_eq!(
            buf.window(),
            1 << 20,
            "the whole window is offered from the start"
        );
        buf.insert(0, &[1; 1000]);
        assert_eq!(buf.allocated(), INITIAL_RING);
        // A segment far inside the window: the ring grows to hold it, the hole stays.
        buf.insert(300_000, &[2; 1000]);
        assert!(
            (301_000..=1 << 20).contains(&buf.allocated()),
            "{}",
            buf.allocated()
        );
        assert_eq!(
            buf.sack_ranges().collect::<Vec<_>>(),
            vec![300_000..301_000]
        );
        buf.insert(1000, &vec![3; 299_000]);
        assert_eq!(buf.readable(), 301_000);
        let all = read_all(&mut buf);
        assert_eq!(&all[..1000], &[1; 1000]);
        assert_eq!(&all[300_000..], &[2; 1000]);
        // The right edge can never pass the buffer's size, so neither can the ring.
        buf.insert(301_000, &vec![4; 2 << 20]);
        assert_eq!(buf.allocated(), 1 << 20);
        assert_eq!(buf.readable(), 1 << 20);
    }
}
