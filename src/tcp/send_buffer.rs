//! Bytes the application handed us that the peer has not acknowledged yet.

use std::collections::VecDeque;

use bytes::Bytes;

/// A bounded ring of unacknowledged and unsent bytes; byte 0 is always SND.UNA's.
///
/// Nothing is reserved up front: `capacity` only bounds what the application may queue, and
/// the ring grows (doubling) as bytes arrive, so an idle connection's send side costs no heap.
/// The ring is ours rather than a `VecDeque` so that [`SendBuffer::push_with`] can hand the
/// application its free space: a file is read straight into the ring instead of into a
/// buffer of its own first, one copy of every body byte fewer.
///
/// The application may also hand over bytes it shares rather than copies
/// ([`SendBuffer::push_shared`]: `tunstack serve` gives a file's pages, mapped), which are
/// held by reference among the copied ones. Nothing here reads them: they leave through
/// [`SendBuffer::slices`] for a device to write.
#[derive(Debug)]
pub struct SendBuffer {
    ring: Vec<u8>,
    /// Where SND.UNA's byte is in `ring`.
    head: usize,
    /// Bytes held in `ring`.
    ring_len: usize,
    /// The stream in order, as runs of ring bytes and shared bytes; empty while no shared
    /// bytes are held (the stream is then the ring's bytes).
    runs: VecDeque<Run>,
    /// Bytes held (ring and shared).
    len: usize,
    capacity: usize,
}

/// A stretch of the stream held one way. Its `Debug` prints lengths only: shared bytes must
/// not be read here (see [`SendBuffer::push_shared`]).
enum Run {
    /// The next this many bytes of the ring.
    Ring(usize),
    /// The first `len` of bytes the application shared. What follows them in `Bytes` is the
    /// rest of what it shared last, so that the next part of the same bytes extends this run
    /// rather than starting one (a segment is cut where runs meet).
    Shared { bytes: Bytes, len: usize },
}

impl SendBuffer {
    /// An empty buffer that accepts up to `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        SendBuffer {
            ring: Vec::new(),
            head: 0,
            ring_len: 0,
            runs: VecDeque::new(),
            len: 0,
            capacity,
        }
    }

    /// Appends as much of `data` as fits and returns how much that was.
    pub fn push(&mut self, data: &[u8]) -> usize {
        self.push_with(data.len(), |first, second| {
            let split = first.len();
            first.copy_from_slice(&data[..split]);
            second.copy_from_slice(&data[split..split + second.len()]);
            split + second.len()
        })
    }

    /// Lets `fill` write up to `max` bytes (fewer when less is free) straight into the ring:
    /// it gets the free space as two slices, to be filled in order, and returns how many bytes
    /// it wrote (the count is clamped to what it was given). Returns that count.
    pub fn push_with(
        &mut self,
        max: usize,
        fill: impl FnOnce(&mut [u8], &mut [u8]) -> usize,
    ) -> usize {
        let want = max.min(self.free());
        self.reserve(want);
        let size = self.ring.len();
        let tail = if size == 0 {
            0
        } else {
            (self.head + self.ring_len) % size
        };
        let (first, second) = if tail + want <= size {
            (&mut self.ring[tail..tail + want], &mut [][..])
        } else {
            let wrapped = tail + want - size;
            let (low, high) = self.ring.split_at_mut(tail);
            (high, &mut low[..wrapped])
        };
        let given = first.len() + second.len();
        let n = fill(first, second).min(given);
        self.ring_len += n;
        self.len += n;
        if n > 0 && !self.runs.is_empty() {
            match self.runs.back_mut() {
                Some(Run::Ring(held)) => *held += n,
                _ => self.runs.push_back(Run::Ring(n)),
            }
        }
        n
    }

    /// Appends as much of `data` as fits without copying it (the rest is left to the caller)
    /// and returns how much that was. The bytes must not change until they are acknowledged.
    pub fn push_shared(&mut self, data: Bytes) -> usize {
        let n = data.len().min(self.free());
        if n == 0 {
            return 0;
        }
        self.len += n;
        if let Some(Run::Shared { bytes, len }) = self.runs.back_mut() {
            let next = bytes[*len..].as_ptr();
            if std::ptr::eq(next, data.as_ptr()) && bytes.len() >= *len + n {
                *len += n;
                return n;
            }
        }
        if self.runs.is_empty() && self.ring_len > 0 {
            self.runs.push_back(Run::Ring(self.ring_len));
        }
        self.runs.push_back(Run::Shared {
            bytes: data,
            len: n,
        });
        n
    }

    /// Whether any bytes held are shared ones (which only a device may read, see
    /// [`SendBuffer::push_shared`]).
    pub fn holds_shared(&self) -> bool {
        !self.runs.is_empty()
    }

    /// How many bytes from `offset` past SND.UNA are held one way, so that
    /// [`SendBuffer::slices`] gives them all: a segment is cut where the runs meet.
    pub fn contiguous(&self, offset: usize) -> usize {
        if self.runs.is_empty() {
            return self.len.saturating_sub(offset);
        }
        let mut at = 0;
        for run in &self.runs {
            let len = run.len();
            if offset < at + len {
                return at + len - offset;
            }
            at += len;
        }
        0
    }

    /// The shared bytes starting `offset` past SND.UNA, as far as they go one way, if that is
    /// how they are held: for a device that must keep them while it waits to write.
    pub fn shared_at(&self, offset: usize, len: usize) -> Option<Bytes> {
        let (run, skip) = self.run_at(offset)?;
        match run {
            Run::Shared { bytes, len: held } => Some(bytes.slice(skip..(skip + len).min(*held))),
            Run::Ring(_) => None,
        }
    }

    /// The run holding the byte `offset` past SND.UNA, and how far into it that byte is.
    fn run_at(&self, offset: usize) -> Option<(&Run, usize)> {
        let mut at = 0;
        for run in &self.runs {
            let len = run.len();
            if offset < at + len {
                return Some((run, offset - at));
            }
            at += len;
        }
        None
    }

    /// Where the byte `offset` past SND.UNA is among the ring's bytes, when it is a ring byte.
    fn ring_offset(&self, offset: usize) -> Option<usize> {
        if self.runs.is_empty() {
            return (offset < self.len).then_some(offset);
        }
        let mut at = 0;
        let mut ring_at = 0;
        for run in &self.runs {
            let len = run.len();
            if offset < at + len {
                return match run {
                    Run::Ring(_) => Some(ring_at + offset - at),
                    Run::Shared { .. } => None,
                };
            }
            if let Run::Ring(n) = run {
                ring_at += n;
            }
            at += len;
        }
        None
    }

    /// Makes room in the ring for `extra` more bytes (at most what `capacity` allows), moving
    /// what is held to the front of a bigger ring when it must grow.
    fn reserve(&mut self, extra: usize) {
        let needed = self.ring_len + extra;
        if needed <= self.ring.len() {
            return;
        }
        let size = needed
            .next_power_of_two()
            .max(self.ring.len() * 2)
            .min(self.capacity)
            .max(needed);
        let mut ring = vec![0; size];
        let (front, back) = self.ring_slices(0, self.ring_len);
        ring[..front.len()].copy_from_slice(front);
        ring[front.len()..self.ring_len].copy_from_slice(back);
        self.ring = ring;
        self.head = 0;
    }

    /// Lets the application queue up to `capacity` bytes from now on (never less than before):
    /// the connection grows its send buffer with the path's bandwidth-delay product.
    pub fn grow_capacity(&mut self, capacity: usize) {
        self.capacity = self.capacity.max(capacity);
    }

    /// The most bytes the application may queue.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Gives back the heap an empty buffer still holds (TIME-WAIT needs none).
    pub fn shed(&mut self) {
        if self.runs.is_empty() {
            self.runs = VecDeque::new();
        }
        if self.ring_len == 0 {
            self.ring = Vec::new();
            self.head = 0;
        }
    }

    /// Drops `n` acknowledged bytes from the front.
    pub fn acknowledge(&mut self, n: usize) {
        let n = n.min(self.len);
        self.len -= n;
        if self.runs.is_empty() {
            self.drop_ring(n);
            return;
        }
        let mut left = n;
        while left > 0 {
            let Some(run) = self.runs.front_mut() else {
                break;
            };
            let take = left.min(run.len());
            let ring = match run {
                Run::Ring(held) => {
                    *held -= take;
                    take
                }
                Run::Shared { bytes, len } => {
                    let _ = bytes.split_to(take);
                    *len -= take;
                    0
                }
            };
            if run.len() == 0 {
                self.runs.pop_front();
            }
            self.drop_ring(ring);
            left -= take;
        }
        if self.runs.iter().all(|run| matches!(run, Run::Ring(_))) {
            self.runs.clear();
        }
    }

    /// Drops `n` bytes from the ring's front.
    fn drop_ring(&mut self, n: usize) {
        self.ring_len -= n;
        self.head = if self.ring_len == 0 {
            0
        } else {
            (self.head + n) % self.ring.len()
        };
    }

    /// The `len` bytes starting `offset` bytes past SND.UNA (fewer if fewer are held, or if
    /// they are not all held one way: [`SendBuffer::contiguous`]), as the two pieces the ring
    /// may hold them in, or one piece of shared bytes.
    pub fn slices(&self, offset: usize, len: usize) -> (&[u8], &[u8]) {
        let len = len.min(self.contiguous(offset));
        if self.runs.is_empty() {
            return self.ring_slices(offset, len);
        }
        match self.run_at(offset) {
            Some((Run::Shared { bytes, .. }, skip)) => (&bytes[skip..skip + len], &[]),
            Some((Run::Ring(_), _)) => match self.ring_offset(offset) {
                Some(at) => self.ring_slices(at, len),
                None => (&[], &[]),
            },
            None => (&[], &[]),
        }
    }

    /// The ring's `len` bytes from its `offset`th (fewer if fewer are held), in the two pieces
    /// the ring may hold them in.
    fn ring_slices(&self, offset: usize, len: usize) -> (&[u8], &[u8]) {
        if offset >= self.ring_len {
            return (&[], &[]);
        }
        let len = len.min(self.ring_len - offset);
        let size = self.ring.len();
        let start = (self.head + offset) % size;
        if start + len <= size {
            (&self.ring[start..start + len], &[])
        } else {
            (&self.ring[start..], &self.ring[..start + len - size])
        }
    }

    /// Copies bytes starting `offset` bytes past SND.UNA into `out`, as far as they are held
    /// one way; returns the count. Reads shared bytes: not for a buffer that
    /// [`SendBuffer::holds_shared`] bytes a device alone may read.
    pub fn copy_out(&self, offset: usize, out: &mut [u8]) -> usize {
        debug_assert!(
            !matches!(self.run_at(offset), Some((Run::Shared { .. }, _))),
            "shared bytes are for the device alone"
        );
        let (front, back) = self.slices(offset, out.len());
        out[..front.len()].copy_from_slice(front);
        out[front.len()..front.len() + back.len()].copy_from_slice(back);
        front.len() + back.len()
    }

    /// Bytes held (in flight plus not yet sent).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room for more application data.
    pub fn free(&self) -> usize {
        self.capacity - self.len
    }

    /// Heap bytes allocated now: nothing until the application sends, then what the ring grew
    /// to (it doubles as bytes are pushed, up to `capacity`, and is kept for reuse).
    pub fn heap_bytes(&self) -> usize {
        self.ring.len() + self.runs.capacity() * std::mem::size_of::<Run>()
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Run::Ring(n) => write!(f, "Ring({n})"),
            Run::Shared { len, .. } => write!(f, "Shared({len})"),
        }
    }
}

impl Run {
    fn len(&self) -> usize {
        match self {
            Run::Ring(n) => *n,
            Run::Shared { len, .. } => *len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_buffer_reserves_nothing() {
        let mut buf = SendBuffer::new(256 << 10);
        assert_eq!(buf.heap_bytes(), 0);
        assert_eq!(buf.free(), 256 << 10);
        buf.push(&[1; 1000]);
        assert!(
            (1000..4096).contains(&buf.heap_bytes()),
            "{}",
            buf.heap_bytes()
        );
    }

    #[test]
    fn push_is_bounded_and_copy_out_spans_the_wrap() {
        let mut buf = SendBuffer::new(8);
        assert_eq!(buf.push(b"abcdef"), 6);
        buf.acknowledge(4);
        assert_eq!(buf.push(b"ghijklmn"), 6);
        assert_eq!(buf.free(), 0);
        let mut out = [0u8; 8];
        assert_eq!(buf.copy_out(0, &mut out), 8);
        assert_eq!(&out, b"efghijkl");
        assert_eq!(buf.copy_out(3, &mut out[..2]), 2);
        assert_eq!(&out[..2], b"hi");
        assert_eq!(buf.copy_out(8, &mut out), 0);
    }

    #[test]
    fn push_with_fills_both_pieces_across_the_wrap_and_growth_keeps_the_order() {
        let mut buf = SendBuffer::new(16);
        assert_eq!(buf.push(b"abcd"), 4);
        buf.acknowledge(2);
        // Grows from 4 to 8 bytes, moving "cd" to the front.
        let n = buf.push_with(4, |first, second| {
            assert_eq!((first.len(), second.len()), (4, 0));
            first.fill(b'x');
            4
        });
        assert_eq!(n, 4);
        assert_eq!(buf.heap_bytes(), 8);
        buf.acknowledge(3);
        // Three held at the ring's end; five more wrap around to its start.
        let n = buf.push_with(5, |first, second| {
            let (a, b) = (first.len(), second.len());
            assert!(a > 0 && b > 0, "{a} {b}");
            for (i, byte) in first.iter_mut().chain(second.iter_mut()).enumerate() {
                *byte = b'0' + i as u8;
            }
            a + b
        });
        assert_eq!(n, 5);
        let mut out = [0u8; 8];
        assert_eq!(buf.copy_out(0, &mut out), 8);
        assert_eq!(&out, b"xxx01234");
        // A filler that reports more than it was given is held to what it got.
        let n = buf.push_with(100, |first, second| first.len() + second.len() + 7);
        assert_eq!(n, 8);
        assert_eq!(buf.free(), 0);
        assert_eq!(buf.push_with(1, |_, _| 1), 0);
    }

    #[test]
    fn shared_bytes_sit_between_copied_ones_and_segments_are_cut_where_they_meet() {
        let mut buf = SendBuffer::new(1 << 20);
        assert_eq!(buf.push(b"head"), 4);
        let file = Bytes::from_static(b"0123456789");
        // Shared in two parts of the same bytes: they extend one run.
        assert_eq!(buf.push_shared(file.slice(..10)), 10);
        buf.acknowledge(0);
        assert_eq!(buf.contiguous(0), 4);
        assert_eq!(buf.contiguous(2), 2);
        assert_eq!(buf.contiguous(4), 10);
        assert_eq!(buf.push(b"tail"), 4);
        assert!(buf.holds_shared());
        assert_eq!(buf.len(), 18);
        assert_eq!(buf.contiguous(14), 4);
        assert_eq!(buf.slices(0, 100), (&b"head"[..], &b""[..]));
        assert_eq!(buf.slices(6, 100), (&b"23456789"[..], &b""[..]));
        assert_eq!(buf.slices(15, 2), (&b"ai"[..], &b""[..]));
        assert_eq!(buf.shared_at(6, 3).as_deref(), Some(&b"234"[..]));
        assert_eq!(buf.shared_at(15, 3), None);
        // Only the ring is heap of ours; the shared bytes are the application's.
        assert!(buf.heap_bytes() < 4096, "{}", buf.heap_bytes());
        buf.acknowledge(7);
        assert_eq!(buf.slices(0, 100), (&b"3456789"[..], &b""[..]));
        assert_eq!(buf.contiguous(0), 7);
        buf.acknowledge(7);
        assert!(!buf.holds_shared(), "only copied bytes are left");
        assert_eq!(buf.slices(0, 100), (&b"tail"[..], &b""[..]));
        let mut out = [0u8; 4];
        assert_eq!(buf.copy_out(0, &mut out), 4);
        assert_eq!(&out, b"tail");
    }

    #[test]
    fn the_next_part_of_the_same_shared_bytes_extends_the_run_and_the_capacity_bounds_it() {
        let mut buf = SendBuffer::new(8);
        let file = Bytes::from_static(b"abcdefghijklmnop");
        assert_eq!(buf.push_shared(file.slice(..)), 8);
        assert_eq!(buf.push_shared(file.slice(8..)), 0);
        buf.acknowledge(5);
        assert_eq!(buf.push_shared(file.slice(8..)), 5);
        assert_eq!(buf.contiguous(0), 8, "one run, not two");
        assert_eq!(buf.slices(0, 8), (&b"fghijklm"[..], &b""[..]));
        // Other bytes start a run of their own.
        buf.acknowledge(8);
        assert!(!buf.holds_shared());
        assert_eq!(buf.push_shared(Bytes::from_static(b"xy")), 2);
        assert_eq!(buf.push_shared(Bytes::from_static(b"zz")), 2);
        assert_eq!(buf.contiguous(0), 2);
        assert_eq!(buf.slices(2, 8), (&b"zz"[..], &b""[..]));
    }
}
