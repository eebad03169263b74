//! The receive buffer: in-order bytes waiting for the application, and out-of-order bytes
//! parked at their place until the hole before them fills (the source of our SACK blocks).

use std::ops::Range;

/// Most out-of-order islands we track; a segment that would need more is dropped (the sender
/// will retransmit it), so memory stays bounded by the buffer whatever arrives.
pub const MAX_ISLANDS: usize = 32;

/// One contiguous run of out-of-order bytes, in absolute stream offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Island {
    start: u64,
    end: u64,
    /// When this island last grew, to order SACK blocks by recency (RFC 2018 §4).
    touched: u64,
}

/// What an insertion did, for ACK policy and statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
}

/// A ring of `capacity` bytes. Stream offsets are 64-bit counts from the first data byte, so
/// nothing here has to reason about sequence-number wrap.
#[derive(Debug)]
pub struct ReceiveBuffer {
    ring: Box<[u8]>,
    /// Absolute offset of the first unread byte, and its ring index.
    read_offset: u64,
    read_index: usize,
    /// In-order bytes ready for the application.
    readable: usize,
    islands: Vec<Island>,
    clock: u64,
}

impl ReceiveBuffer {
    /// A buffer holding at most `capacity` bytes, in order or not.
    pub fn new(capacity: usize) -> Self {
        ReceiveBuffer {
            ring: vec![0; capacity.max(1)].into_boxed_slice(),
            read_offset: 0,
            read_index: 0,
            readable: 0,
            islands: Vec::new(),
            clock: 0,
        }
    }

    /// Total size of the ring.
    pub fn capacity(&self) -> usize {
        self.ring.len()
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
        !self.islands.is_empty()
    }

    /// Bytes parked out of order.
    pub fn out_of_order_bytes(&self) -> usize {
        self.islands
            .iter()
            .map(|i| (i.end - i.start) as usize)
            .sum()
    }

    /// Stores `data` that starts at absolute stream offset `start`. Bytes before RCV.NXT or past
    /// the buffer's end are ignored, so callers need only map sequence numbers to offsets.
    pub fn insert(&mut self, start: u64, data: &[u8]) -> Inserted {
        let next = self.next_offset();
        let limit = self.read_offset + self.capacity() as u64;
        let begin = start.max(next);
        let end = (start + data.len() as u64).min(limit);
        if begin >= end {
            return Inserted {
                duplicate: !data.is_empty(),
                ..Inserted::default()
            };
        }
        if self.covered(begin, end) {
            return Inserted {
                duplicate: true,
                ..Inserted::default()
            };
        }
        if begin > next && !self.can_track(begin, end) {
            // Not stored, but still news to report at once like any new hole.
            return Inserted {
                out_of_order: true,
                new_island: true,
                ..Inserted::default()
            };
        }
        let src = &data[(begin - start) as usize..(end - start) as usize];
        self.write_at(begin, src);
        if begin == next {
            let mut new_end = end;
            // Swallow every island the new bytes reach.
            while let Some(first) = self.islands.first() {
                if first.start > new_end {
                    break;
                }
                new_end = new_end.max(first.end);
                self.islands.remove(0);
            }
            let advanced = (new_end - next) as usize;
            self.readable += advanced;
            Inserted {
                advanced,
                ..Inserted::default()
            }
        } else {
            let merged = self.add_island(begin, end);
            Inserted {
                out_of_order: true,
                new_island: !merged,
                ..Inserted::default()
            }
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
        let cap = self.capacity();
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
        self.read_index = (self.read_index + n) % self.capacity();
    }

    /// The (up to four) most recently changed out-of-order ranges as absolute offsets, newest
    /// first (RFC 2018 §4: the first block reports the segment that triggered the ACK). No
    /// allocation: this runs for every ACK sent while there is a hole.
    pub fn sack_ranges(&self) -> impl Iterator<Item = Range<u64>> {
        let mut newest: [Option<Island>; 4] = [None; 4];
        for island in &self.islands {
            let mut candidate = *island;
            for slot in newest.iter_mut() {
                match slot {
                    Some(held) if held.touched >= candidate.touched => {}
                    Some(held) => std::mem::swap(held, &mut candidate),
                    None => {
                        *slot = Some(candidate);
                        break;
                    }
                }
            }
        }
        newest.into_iter().flatten().map(|i| i.start..i.end)
    }

    fn covered(&self, begin: u64, end: u64) -> bool {
        self.islands
            .iter()
            .any(|i| i.start <= begin && end <= i.end)
    }

    fn can_track(&self, begin: u64, end: u64) -> bool {
        self.islands.len() < MAX_ISLANDS
            || self
                .islands
                .iter()
                .any(|i| begin <= i.end && i.start <= end)
    }

    /// Records `begin..end` as held; true when it joined an island already there.
    fn add_island(&mut self, begin: u64, end: u64) -> bool {
        self.clock += 1;
        let before = self.islands.len();
        let mut merged = Island {
            start: begin,
            end,
            touched: self.clock,
        };
        self.islands.retain(|i| {
            let overlaps = i.start <= merged.end && merged.start <= i.end;
            if overlaps {
                merged.start = merged.start.min(i.start);
                merged.end = merged.end.max(i.end);
            }
            !overlaps
        });
        let joined = self.islands.len() < before;
        let at = self.islands.partition_point(|i| i.start < merged.start);
        self.islands.insert(at, merged);
        joined
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) {
        let cap = self.capacity();
        let index = (self.read_index + (offset - self.read_offset) as usize) % cap;
        let first = data.len().min(cap - index);
        self.ring[index..index + first].copy_from_slice(&data[..first]);
        self.ring[..data.len() - first].copy_from_slice(&data[first..]);
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
        assert_eq!(buf.sack_ranges().collect::<Vec<_>>(), vec![5..10]);
        assert_eq!(buf.insert(0, b"hello").advanced, 10);
        assert!(!buf.has_out_of_order());
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
    fn duplicates_are_reported() {
        let mut buf = ReceiveBuffer::new(32);
        buf.insert(0, b"abc");
        assert!(buf.insert(0, b"abc").duplicate);
        buf.insert(10, b"xyz");
        assert!(buf.insert(11, b"y").duplicate);
    }

    #[test]
    fn data_beyond_the_buffer_is_cut() {
        let mut buf = ReceiveBuffer::new(4);
        assert_eq!(buf.insert(0, b"abcdef").advanced, 4);
        assert_eq!(buf.window(), 0);
        assert!(buf.insert(4, b"ef").duplicate);
        assert_eq!(read_all(&mut buf), b"abcd");
    }

    #[test]
    fn sack_ranges_put_the_latest_first() {
        let mut buf = ReceiveBuffer::new(100);
        buf.insert(10, b"a");
        buf.insert(20, b"b");
        buf.insert(30, b"c");
        buf.insert(11, b"a");
        let ranges: Vec<_> = buf.sack_ranges().collect();
        assert_eq!(ranges, vec![10..12, 30..31, 20..21]);
    }

    #[test]
    fn island_count_is_bounded() {
        let mut buf = ReceiveBuffer::new(10_000);
        for i in 0..100u64 {
            buf.insert(2 + i * 3, b"x");
        }
        assert_eq!(buf.out_of_order_bytes(), MAX_ISLANDS);
        assert_eq!(buf.sack_ranges().count(), 4);
    }

    proptest! {
        /// Whatever order and overlap the pieces arrive in, the stream comes out intact and
        /// the memory held never exceeds the buffer.
        #[test]
        fn any_arrival_order_reassembles(
            pieces in proptest::collection::vec((0usize..2000, 1usize..300), 1..200),
            read_every in 1usize..10,
        ) {
            let stream: Vec<u8> = (0..2300u32).map(|i| (i * 7 + 3) as u8).collect();
            let mut buf = ReceiveBuffer::new(4096);
            let mut out = Vec::new();
            for (n, (start, len)) in pieces.iter().enumerate() {
                let end = (start + len).min(stream.len());
                buf.insert(*start as u64, &stream[*start..end]);
                prop_assert!(buf.readable() + buf.out_of_order_bytes() <= buf.capacity());
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
}
