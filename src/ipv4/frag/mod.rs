//! Fragment reassembly (RFC 791 §3.2, RFC 1122 §3.3.2) with bounded memory.
//!
//! Every byte held is accounted against one budget (buffers, their bookkeeping, and the last
//! completed datagram that the caller is still borrowing), so hostile fragments cannot make the
//! host allocate without limit. Overlapping fragments discard the whole datagram.

use std::mem::size_of;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::header::{HEADER_LEN, MAX_DATAGRAM_LEN, MAX_HEADER_LEN};
use super::DropReason;

/// Most fragments accepted for one datagram: 64 KiB in fragments of 64 bytes, far below the
/// smallest real MTU path, and it keeps the per-datagram bookkeeping small.
const MAX_FRAGMENTS_PER_DATAGRAM: usize = 1024;
/// Largest payload a datagram can have, with the shortest header.
const MAX_PAYLOAD_LEN: usize = MAX_DATAGRAM_LEN - HEADER_LEN;
/// How many fragment spans the bookkeeping grows by at a time.
const SPAN_GROWTH: usize = 16;
/// Bytes of payload quoted after the header in an ICMP error (RFC 792).
const QUOTED_PAYLOAD_LEN: usize = 8;

/// The limits a `Reassembler` keeps to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReassemblyLimits {
    pub timeout: Duration,
    pub max_bytes: usize,
    pub max_datagrams: usize,
}

/// What identifies the datagram a fragment belongs to (RFC 791 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FragmentKey {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub identification: u16,
}

/// One received fragment, borrowed from the device buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fragment<'a> {
    pub key: FragmentKey,
    /// Byte offset of `payload` in the original datagram.
    pub offset: usize,
    pub more_fragments: bool,
    /// The fragment's own header, quoted in a time exceeded message if this is fragment zero.
    pub header: &'a [u8],
    pub payload: &'a [u8],
}

/// What became of a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FragmentOutcome {
    /// Stored, waiting for the rest.
    Stored,
    /// The datagram is complete; its payload is `Reassembler::completed`.
    Completed,
    /// Refused; if the reason is not `FragmentDuplicate`, the datagram's reassembly is gone too.
    Rejected(DropReason),
}

/// A reassembly that timed out, with what an ICMP time exceeded message must quote.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expired<'a> {
    pub key: FragmentKey,
    /// Fragment zero's header and first payload bytes, if fragment zero arrived (RFC 1122 only
    /// asks for a time exceeded message in that case).
    pub quote: Option<(&'a [u8], &'a [u8])>,
}

/// A received byte range `start..end` of the datagram's payload.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
}

/// The state of one datagram being reassembled.
#[derive(Debug)]
struct Reassembly {
    key: FragmentKey,
    deadline: Instant,
    /// The payload so far, at its final offsets; gaps are zero until filled.
    data: Vec<u8>,
    /// The ranges received, sorted and disjoint.
    spans: Vec<Span>,
    /// Sum of the span lengths.
    received: usize,
    /// Payload length, known once the last fragment (MF clear) arrived.
    total_len: Option<usize>,
    first_header: [u8; MAX_HEADER_LEN],
    /// Length of `first_header`; 0 until fragment zero arrives.
    first_header_len: usize,
}

impl Reassembly {
    fn new(key: FragmentKey, deadline: Instant) -> Self {
        Reassembly {
            key,
            deadline,
            data: Vec::new(),
            spans: Vec::new(),
            received: 0,
            total_len: None,
            first_header: [0; MAX_HEADER_LEN],
            first_header_len: 0,
        }
    }

    /// Bytes this reassembly holds, including its own struct.
    fn cost(&self) -> usize {
        size_of::<Self>() + self.data.capacity() + self.spans.capacity() * size_of::<Span>()
    }

    /// The capacity `data` needs for a fragment ending at `end`: doubled when it grows, so
    /// fragments arriving in order do not reallocate each time, but never beyond the largest
    /// possible payload, and only `end` if doubling would not fit in `spare` bytes.
    fn data_capacity_for(&self, end: usize, spare: usize) -> usize {
        let capacity = self.data.capacity();
        if end <= capacity {
            return capacity;
        }
        let doubled = (capacity * 2).min(MAX_PAYLOAD_LEN).max(end);
        if doubled - capacity <= spare {
            doubled
        } else {
            end
        }
    }

    /// Extra bytes storing a fragment would allocate, given the capacity `data` will grow to.
    fn growth_for(&self, data_capacity: usize) -> usize {
        let data = data_capacity - self.data.capacity();
        let spans = if self.spans.len() == self.spans.capacity() {
            SPAN_GROWTH * size_of::<Span>()
        } else {
            0
        };
        data + spans
    }

    /// Checks `fragment` against what is held: where it goes in `spans`, or why it is refused.
    fn place(&self, start: usize, end: usize, last: bool) -> Result<usize, DropReason> {
        let index = self
            .spans
            .partition_point(|span| (span.start as usize) < start);
        if let Some(same_start) = self.spans.get(index) {
            if same_start.start as usize == start && same_start.end as usize == end {
                return Err(DropReason::FragmentDuplicate);
            }
            if (same_start.start as usize) < end {
                return Err(DropReason::FragmentOverlap);
            }
        }
        if let Some(before) = index.checked_sub(1).and_then(|i| self.spans.get(i)) {
            if before.end as usize > start {
                return Err(DropReason::FragmentOverlap);
            }
        }
        let highest_end = self.spans.last().map_or(0, |span| span.end as usize);
        let consistent = match (self.total_len, last) {
            (Some(_), true) => false,
            (Some(total), false) => end <= total,
            (None, true) => end >= highest_end,
            (None, false) => true,
        };
        if !consistent {
            return Err(DropReason::FragmentInvalid);
        }
        if self.spans.len() >= MAX_FRAGMENTS_PER_DATAGRAM {
            return Err(DropReason::ReassemblyLimit);
        }
        Ok(index)
    }

    /// Stores a fragment already checked by `place`, growing `data` to `data_capacity`.
    fn store(&mut self, index: usize, fragment: &Fragment<'_>, data_capacity: usize) {
        let start = fragment.offset;
        let end = start + fragment.payload.len();
        if end > self.data.len() {
            self.data.reserve_exact(data_capacity - self.data.len());
            self.data.resize(end, 0);
        }
        if let Some(target) = self.data.get_mut(start..end) {
            target.copy_from_slice(fragment.payload);
        }
        if self.spans.len() == self.spans.capacity() {
            self.spans.reserve_exact(SPAN_GROWTH);
        }
        self.spans.insert(
            index,
            Span {
                start: start as u32,
                end: end as u32,
            },
        );
        self.received += fragment.payload.len();
        if !fragment.more_fragments {
            self.total_len = Some(end);
        }
        if start == 0 {
            if let Some(slot) = self.first_header.get_mut(..fragment.header.len()) {
                slot.copy_from_slice(fragment.header);
                self.first_header_len = fragment.header.len();
            }
        }
    }

    fn is_complete(&self) -> bool {
        self.total_len == Some(self.received)
    }

    fn quote(&self) -> Option<(&[u8], &[u8])> {
        if self.first_header_len == 0 {
            return None;
        }
        let header = self.first_header.get(..self.first_header_len)?;
        let first_bytes = self.data.get(..QUOTED_PAYLOAD_LEN.min(self.data.len()))?;
        Some((header, first_bytes))
    }
}

/// Reassembles fragmented datagrams within fixed memory, count and time limits.
#[derive(Debug)]
pub(crate) struct Reassembler {
    limits: ReassemblyLimits,
    in_progress: Vec<Reassembly>,
    /// The payload of the last completed datagram, lent to the caller until the next call.
    completed: Vec<u8>,
    /// Bytes held by `in_progress` and `completed`; never above `limits.max_bytes`.
    bytes_held: usize,
    /// Unfinished reassemblies evicted for newer ones, not yet taken by `take_evictions`.
    evictions: u64,
}

impl Reassembler {
    pub fn new(limits: ReassemblyLimits) -> Self {
        Reassembler {
            limits,
            in_progress: Vec::with_capacity(limits.max_datagrams),
            completed: Vec::new(),
            bytes_held: 0,
            evictions: 0,
        }
    }

    /// Bytes currently held for reassembly.
    pub fn bytes_held(&self) -> usize {
        self.bytes_held
    }

    /// The payload of the datagram completed by the last `insert`.
    pub fn completed(&self) -> &[u8] {
        &self.completed
    }

    /// Frees the last completed datagram once the caller no longer borrows it.
    pub fn release_completed(&mut self) {
        self.bytes_held -= self.completed.capacity();
        self.completed = Vec::new();
    }

    /// When the earliest reassembly times out.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.in_progress.iter().map(|r| r.deadline).min()
    }

    /// Adds a fragment; completes, stores or refuses it.
    pub fn insert(&mut self, now: Instant, fragment: &Fragment<'_>) -> FragmentOutcome {
        self.release_completed();
        let len = fragment.payload.len();
        let start = fragment.offset;
        let end = start + len;
        if len == 0 || (fragment.more_fragments && len % 8 != 0) {
            return self.reject(fragment.key, DropReason::FragmentInvalid);
        }
        if end + fragment.header.len() > MAX_DATAGRAM_LEN {
            return self.reject(fragment.key, DropReason::OversizedDatagram);
        }
        let position = match self.in_progress.iter().position(|r| r.key == fragment.key) {
            Some(position) => position,
            None => match self.start(now, fragment.key) {
                Some(position) => position,
                None => return FragmentOutcome::Rejected(DropReason::ReassemblyLimit),
            },
        };
        let Some(reassembly) = self.in_progress.get(position) else {
            return FragmentOutcome::Rejected(DropReason::ReassemblyLimit);
        };
        let index = match reassembly.place(start, end, !fragment.more_fragments) {
            Ok(index) => index,
            Err(reason) => return self.reject(fragment.key, reason),
        };
        let Some(data_capacity) = self.make_room(fragment.key, end) else {
            return self.reject(fragment.key, DropReason::ReassemblyLimit);
        };
        let Some(position) = self.in_progress.iter().position(|r| r.key == fragment.key) else {
            return FragmentOutcome::Rejected(DropReason::ReassemblyLimit);
        };
        let reassembly = &mut self.in_progress[position];
        let cost_before = reassembly.cost();
        reassembly.store(index, fragment, data_capacity);
        self.bytes_held = self.bytes_held - cost_before + reassembly.cost();
        if !reassembly.is_complete() {
            return FragmentOutcome::Stored;
        }
        let done = self.in_progress.swap_remove(position);
        self.bytes_held -= done.cost();
        self.bytes_held += done.data.capacity();
        self.completed = done.data;
        FragmentOutcome::Completed
    }

    /// Discards reassemblies whose deadline is at or before `now`, showing each to `on_expired`.
    pub fn expire(&mut self, now: Instant, mut on_expired: impl FnMut(Expired<'_>)) {
        let mut index = 0;
        while let Some(reassembly) = self.in_progress.get(index) {
            if reassembly.deadline > now {
                index += 1;
                continue;
            }
            on_expired(Expired {
                key: reassembly.key,
                quote: reassembly.quote(),
            });
            let gone = self.in_progress.swap_remove(index);
            self.bytes_held -= gone.cost();
        }
    }

    /// Recomputes `bytes_held` from the actual allocations, to check the running account.
    #[cfg(test)]
    pub fn bytes_recounted(&self) -> usize {
        self.in_progress.iter().map(Reassembly::cost).sum::<usize>() + self.completed.capacity()
    }

    /// How many unfinished reassemblies were evicted since the last call, for the drop counters.
    pub fn take_evictions(&mut self) -> u64 {
        std::mem::take(&mut self.evictions)
    }

    /// Opens a reassembly for a new datagram, evicting the oldest ones if the table or the
    /// memory budget is full; returns its position.
    fn start(&mut self, now: Instant, key: FragmentKey) -> Option<usize> {
        let cost = size_of::<Reassembly>();
        if cost > self.limits.max_bytes || self.limits.max_datagrams == 0 {
            return None;
        }
        while self.in_progress.len() >= self.limits.max_datagrams
            || self.bytes_held + cost > self.limits.max_bytes
        {
            if !self.evict_oldest(None) {
                return None;
            }
        }
        self.in_progress
            .push(Reassembly::new(key, now + self.limits.timeout));
        self.bytes_held += cost;
        Some(self.in_progress.len() - 1)
    }

    /// The data capacity that holds `key`'s datagram up to `end`, after evicting other (older)
    /// reassemblies if the memory budget would otherwise be exceeded; `None` if it cannot fit
    /// even alone.
    fn make_room(&mut self, key: FragmentKey, end: usize) -> Option<usize> {
        loop {
            let reassembly = self.in_progress.iter().find(|r| r.key == key)?;
            let spare = self.limits.max_bytes.saturating_sub(self.bytes_held);
            let data_capacity = reassembly.data_capacity_for(end, spare);
            if reassembly.growth_for(data_capacity) <= spare {
                return Some(data_capacity);
            }
            if !self.evict_oldest(Some(key)) {
                return None;
            }
        }
    }

    /// Discards the reassembly that started first, other than `keep`'s; false if there is none.
    /// Reassemblies share one timeout, so the earliest deadline is the oldest datagram: the one
    /// least likely to complete.
    fn evict_oldest(&mut self, keep: Option<FragmentKey>) -> bool {
        let oldest = self
            .in_progress
            .iter()
            .enumerate()
            .filter(|(_, r)| Some(r.key) != keep)
            .min_by_key(|(_, r)| r.deadline)
            .map(|(position, _)| position);
        let Some(position) = oldest else {
            return false;
        };
        let gone = self.in_progress.swap_remove(position);
        self.bytes_held -= gone.cost();
        self.evictions += 1;
        true
    }

    /// Refuses a fragment; unless it is a harmless duplicate, its datagram is discarded too.
    fn reject(&mut self, key: FragmentKey, reason: DropReason) -> FragmentOutcome {
        if reason != DropReason::FragmentDuplicate {
            if let Some(position) = self.in_progress.iter().position(|r| r.key == key) {
                let gone = self.in_progress.swap_remove(position);
                self.bytes_held -= gone.cost();
            }
        }
        FragmentOutcome::Rejected(reason)
    }
}

#[cfg(test)]
mod tests;
