//! Bytes the application handed us that the peer has not acknowledged yet.

/// A bounded ring of unacknowledged and unsent bytes; byte 0 is always SND.UNA's.
///
/// Nothing is reserved up front: `capacity` only bounds what the application may queue, and
/// the ring grows (doubling) as bytes arrive, so an idle connection's send side costs no heap.
/// The ring is ours rather than a `VecDeque` so that [`SendBuffer::push_with`] can hand the
/// application its free space: a file is read straight into the ring instead of into a
/// buffer of its own first, one copy of every body byte fewer.
#[derive(Debug)]
pub struct SendBuffer {
    ring: Vec<u8>,
    /// Where SND.UNA's byte is in `ring`.
    head: usize,
    len: usize,
    capacity: usize,
}

impl SendBuffer {
    /// An empty buffer that accepts up to `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        SendBuffer {
            ring: Vec::new(),
            head: 0,
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
            (self.head + self.len) % size
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
        self.len += n;
        n
    }

    /// Makes room in the ring for `extra` more bytes (at most what `capacity` allows), moving
    /// what is held to the front of a bigger ring when it must grow.
    fn reserve(&mut self, extra: usize) {
        let needed = self.len + extra;
        if needed <= self.ring.len() {
            return;
        }
        let size = needed
            .next_power_of_two()
            .max(self.ring.len() * 2)
            .min(self.capacity)
            .max(needed);
        let mut ring = vec![0; size];
        let (front, back) = self.slices(0, self.len);
        ring[..front.len()].copy_from_slice(front);
        ring[front.len()..self.len].copy_from_slice(back);
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
        if self.len == 0 {
            self.ring = Vec::new();
            self.head = 0;
        }
    }

    /// Drops `n` acknowledged bytes from the front.
    pub fn acknowledge(&mut self, n: usize) {
        let n = n.min(self.len);
        self.len -= n;
        self.head = if self.len == 0 {
            0
        } else {
            (self.head + n) % self.ring.len()
        };
    }

    /// The `len` bytes starting `offset` bytes past SND.UNA (fewer if fewer are held), as the
    /// two pieces the ring may hold them in.
    pub fn slices(&self, offset: usize, len: usize) -> (&[u8], &[u8]) {
        if offset >= self.len {
            return (&[], &[]);
        }
        let len = len.min(self.len - offset);
        let size = self.ring.len();
        let start = (self.head + offset) % size;
        if start + len <= size {
            (&self.ring[start..start + len], &[])
        } else {
            (&self.ring[start..], &self.ring[..start + len - size])
        }
    }

    /// Copies bytes starting `offset` bytes past SND.UNA into `out`; returns the count.
    pub fn copy_out(&self, offset: usize, out: &mut [u8]) -> usize {
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
        self.ring.len()
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
}
