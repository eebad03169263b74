//! One bit per byte of the receive ring (set where an out-of-order byte is held), with a
//! summary level so that looking for the next held or missing byte skips whole 4 KiB stretches.
//!
//! Why two levels: at 10–20% loss a grown window (up to 4 MiB, 64 Ki words) has hundreds of
//! islands, and every out-of-order segment asks where its island starts and ends and every ACK
//! where the SACK blocks are. Scanning word by word made those lookups a third of the receiver's
//! CPU in a 64 MiB download at 10% loss (perf, 2026-11-28); with one summary bit per word, a
//! lookup reads at most a word per 4 KiB of window plus two words at each end.

use std::ops::Range;

/// A fixed-length bitmap with a summary of which words have any bit set and which are full.
#[derive(Debug, Clone)]
pub(super) struct Bits {
    len: usize,
    words: Box<[u64]>,
    /// Bit w set when `words[w]` has any bit set.
    nonempty: Box<[u64]>,
    /// Bit w set when `words[w]` has a clear bit (within `len` or not: a partial last word is
    /// never full).
    notfull: Box<[u64]>,
}

impl Bits {
    /// `len` clear bits.
    pub(super) fn new(len: usize) -> Self {
        let words = len.div_ceil(64);
        let summary = words.div_ceil(64);
        let mut notfull = vec![0u64; summary].into_boxed_slice();
        for w in 0..words {
            notfull[w / 64] |= 1 << (w % 64);
        }
        Bits {
            len,
            words: vec![0; words].into_boxed_slice(),
            nonempty: vec![0; summary].into_boxed_slice(),
            notfull,
        }
    }

    /// Heap bytes: a bit per position and two per 64 of them.
    pub(super) fn heap_bytes(&self) -> usize {
        8 * (self.words.len() + self.nonempty.len() + self.notfull.len())
    }

    /// Sets (`value`) or clears the bits of `range`; returns how many changed.
    pub(super) fn update(&mut self, range: Range<usize>, value: bool) -> usize {
        debug_assert!(range.end <= self.len, "{range:?} beyond {} bits", self.len);
        let mut changed = 0;
        for (w, mask) in words(range) {
            let word = &mut self.words[w];
            if value {
                changed += (mask & !*word).count_ones() as usize;
                *word |= mask;
            } else {
                changed += (mask & *word).count_ones() as usize;
                *word &= !mask;
            }
            let word = *word;
            set_bit(&mut self.nonempty, w, word != 0);
            set_bit(&mut self.notfull, w, word != u64::MAX);
        }
        changed
    }

    /// The set bits, lowest first.
    #[cfg(test)]
    pub(super) fn ones(&self) -> impl Iterator<Item = usize> + '_ {
        let mut from = 0;
        std::iter::from_fn(move || {
            let at = self.first(from..self.len, true)?;
            from = at + 1;
            Some(at)
        })
    }

    /// True when some bit of `range` is set.
    pub(super) fn any(&self, range: Range<usize>) -> bool {
        self.first(range, true).is_some()
    }

    /// True when every bit of `range` is set.
    pub(super) fn all(&self, range: Range<usize>) -> bool {
        self.first(range, false).is_none()
    }

    /// The lowest index in `range` whose bit is `value`.
    pub(super) fn first(&self, range: Range<usize>, value: bool) -> Option<usize> {
        let (start, end) = (range.start, range.end.min(self.len));
        if start >= end {
            return None;
        }
        let last = (end - 1) / 64;
        let mut w = start / 64;
        let mut mask = u64::MAX << (start % 64);
        loop {
            let word = if value { self.words[w] } else { !self.words[w] };
            let mut bits = word & mask;
            if w == last {
                bits &= below(end - w * 64);
            }
            if bits != 0 {
                return Some(w * 64 + bits.trailing_zeros() as usize);
            }
            if w == last {
                return None;
            }
            let summary = if value { &self.nonempty } else { &self.notfull };
            w = first_set(summary, w + 1..last + 1)?;
            mask = u64::MAX;
        }
    }

    /// The highest index in `range` whose bit is `value`.
    pub(super) fn last(&self, range: Range<usize>, value: bool) -> Option<usize> {
        let (start, end) = (range.start, range.end.min(self.len));
        if start >= end {
            return None;
        }
        let first = start / 64;
        let mut w = (end - 1) / 64;
        let mut mask = below(end - w * 64);
        loop {
            let word = if value { self.words[w] } else { !self.words[w] };
            let mut bits = word & mask;
            if w == first {
                bits &= u64::MAX << (start % 64);
            }
            if bits != 0 {
                return Some(w * 64 + 63 - bits.leading_zeros() as usize);
            }
            if w == first {
                return None;
            }
            let summary = if value { &self.nonempty } else { &self.notfull };
            w = last_set(summary, first..w)?;
            mask = u64::MAX;
        }
    }
}

/// The low `n` bits (all 64 when `n` is 64 or more).
fn below(n: usize) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

fn set_bit(summary: &mut [u64], index: usize, value: bool) {
    let bit = 1u64 << (index % 64);
    if value {
        summary[index / 64] |= bit;
    } else {
        summary[index / 64] &= !bit;
    }
}

/// The lowest set bit of a plain bitmap within `range`.
fn first_set(bits: &[u64], range: Range<usize>) -> Option<usize> {
    words(range).find_map(|(w, mask)| {
        let hit = bits[w] & mask;
        (hit != 0).then(|| w * 64 + hit.trailing_zeros() as usize)
    })
}

/// The highest set bit of a plain bitmap within `range`.
fn last_set(bits: &[u64], range: Range<usize>) -> Option<usize> {
    words(range).rev().find_map(|(w, mask)| {
        let hit = bits[w] & mask;
        (hit != 0).then(|| w * 64 + 63 - hit.leading_zeros() as usize)
    })
}

/// The 64-bit words a bit range touches, each with the mask of its bits in the range.
fn words(range: Range<usize>) -> impl DoubleEndedIterator<Item = (usize, u64)> {
    let (start, end) = (range.start, range.end);
    let first_word = start / 64;
    let last_word = if start < end {
        end.div_ceil(64)
    } else {
        first_word
    };
    (first_word..last_word).map(move |word| {
        let lo = start.max(word * 64) - word * 64;
        let hi = end.min(word * 64 + 64) - word * 64;
        (word, below(hi - lo) << lo)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The plain answer to compare with.
    fn naive_first(model: &[bool], range: Range<usize>, value: bool) -> Option<usize> {
        range
            .clone()
            .find(|&i| i < model.len() && model[i] == value)
    }

    fn naive_last(model: &[bool], range: Range<usize>, value: bool) -> Option<usize> {
        range
            .clone()
            .rev()
            .find(|&i| i < model.len() && model[i] == value)
    }

    #[test]
    fn lookups_skip_whole_words_both_ways() {
        let mut bits = Bits::new(64 * 64 * 3 + 17);
        bits.update(5000..9000, true);
        assert_eq!(bits.first(0..bits.len, true), Some(5000));
        assert_eq!(bits.first(5000..bits.len, false), Some(9000));
        assert_eq!(bits.last(0..9000, false), Some(4999));
        assert_eq!(bits.last(0..bits.len, true), Some(8999));
        assert!(bits.all(5000..9000));
        assert!(!bits.all(4999..9000));
        assert!(!bits.any(9000..bits.len));
        assert_eq!(bits.update(4000..6000, false), 1000);
        assert_eq!(bits.ones().next(), Some(6000));
        assert_eq!(bits.ones().count(), 3000);
    }

    #[test]
    fn a_partial_last_word_is_never_full() {
        let mut bits = Bits::new(70);
        bits.update(0..70, true);
        assert_eq!(bits.first(0..70, false), None);
        assert_eq!(bits.first(0..1000, false), None, "nothing past the end");
        assert_eq!(bits.last(0..70, true), Some(69));
    }

    proptest! {
        #[test]
        fn agrees_with_a_plain_vector(
            len in 1usize..10_000,
            ops in proptest::collection::vec((0usize..10_000, 0usize..3000, any::<bool>()), 0..40),
            probes in proptest::collection::vec((0usize..10_000, 0usize..10_000, any::<bool>()), 1..40),
        ) {
            let mut bits = Bits::new(len);
            let mut model = vec![false; len];
            for (start, width, value) in ops {
                let start = start % len;
                let end = (start + width).min(len);
                let changed = model[start..end].iter().filter(|&&b| b != value).count();
                model[start..end].iter_mut().for_each(|b| *b = value);
                prop_assert_eq!(bits.update(start..end, value), changed);
            }
            for (a, b, value) in probes {
                let range = a.min(b)..a.max(b);
                prop_assert_eq!(bits.first(range.clone(), value), naive_first(&model, range.clone(), value));
                prop_assert_eq!(bits.last(range.clone(), value), naive_last(&model, range.clone(), value));
            }
            let ones: Vec<usize> = bits.ones().collect();
            let expected: Vec<usize> = (0..len).filter(|&i| model[i]).collect();
            prop_assert_eq!(ones, expected);
        }
    }
}
