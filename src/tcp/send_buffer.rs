//! Bytes the application handed us that the peer has not acknowledged yet.

use std::collections::VecDeque;

/// A bounded FIFO of unacknowledged and unsent bytes; byte 0 is always SND.UNA's.
///
/// Nothing is reserved up front: `capacity` only bounds what `push` accepts, and the deque
/// allocates as bytes arrive, so an idle connection's send side costs no heap at all.
#[derive(Debug)]
pub struct SendBuffer {
    bytes: VecDeque<u8>,
    capacity: usize,
}

impl SendBuffer {
    /// An empty buffer that accepts up to `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        SendBuffer {
            bytes: VecDeque::new(),
            capacity,
        }
    }

    /// Appends as much of `data` as fits and returns how much that was.
    pub fn push(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        self.bytes.extend(&data[..n]);
        n
    }

    /// Gives back the heap an empty buffer still holds (TIME-WAIT needs none).
    pub fn shed(&mut self) {
        if self.bytes.is_empty() {
            self.bytes = VecDeque::new();
        }
    }

    /// Drops `n` acknowledged bytes from the front.
    pub fn acknowledge(&mut self, n: usize) {
        let n = n.min(self.bytes.len());
        self.bytes.drain(..n);
    }

    /// Copies bytes starting `offset` bytes past SND.UNA into `out`; returns the count.
    pub fn copy_out(&self, offset: usize, out: &mut [u8]) -> usize {
        if offset >= self.bytes.len() {
            return 0;
        }
        let n = out.len().min(self.bytes.len() - offset);
        let (front, back) = self.bytes.as_slices();
        let mut written = 0;
        if offset < front.len() {
            let take = n.min(front.len() - offset);
            out[..take].copy_from_slice(&front[offset..offset + take]);
            written = take;
        }
        if written < n {
            let back_start = offset + written - front.len();
            out[written..n].copy_from_slice(&back[back_start..back_start + n - written]);
        }
        n
    }

    /// Bytes held (in flight plus not yet sent).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Room for more application data.
    pub fn free(&self) -> usize {
        self.capacity - self.bytes.len()
    }

    /// Heap bytes allocated now: nothing until the application sends, then what the deque grew
    /// to (it doubles as bytes are pushed, up to about `capacity`, and is kept for reuse).
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
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
}
