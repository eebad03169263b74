//! TCP sequence numbers: 32-bit values compared modulo 2^32 (RFC 9293 §3.4).

use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// A TCP sequence number.
///
/// Deliberately has no `Ord`: `a < b` is meaningless across the 2^32 wrap, so comparisons go through
/// [`SeqNum::before`] and friends, which are correct whenever the two values are less than 2^31 apart
/// (always true inside one connection's windows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNum(pub u32);

impl SeqNum {
    /// True when `self` comes strictly before `other` in sequence space.
    pub fn before(self, other: SeqNum) -> bool {
        (self.0.wrapping_sub(other.0) as i32) < 0
    }

    /// True when `self` comes strictly after `other`.
    pub fn after(self, other: SeqNum) -> bool {
        other.before(self)
    }

    /// True when `self` is before or equal to `other`.
    pub fn before_eq(self, other: SeqNum) -> bool {
        !self.after(other)
    }

    /// True when `self` is after or equal to `other`.
    pub fn after_eq(self, other: SeqNum) -> bool {
        !self.before(other)
    }

    /// True when `start <= self < end`.
    pub fn in_range(self, start: SeqNum, end: SeqNum) -> bool {
        self.after_eq(start) && self.before(end)
    }

    /// The later of two sequence numbers.
    pub fn max(self, other: SeqNum) -> SeqNum {
        if self.after(other) {
            self
        } else {
            other
        }
    }

    /// The earlier of two sequence numbers.
    pub fn min(self, other: SeqNum) -> SeqNum {
        if self.before(other) {
            self
        } else {
            other
        }
    }

    /// The distance from `earlier` to `self`, which must not be before `earlier`; 0 if it is.
    pub fn distance_from(self, earlier: SeqNum) -> usize {
        let d = self.0.wrapping_sub(earlier.0) as i32;
        d.max(0) as usize
    }
}

impl Add<usize> for SeqNum {
    type Output = SeqNum;
    fn add(self, rhs: usize) -> SeqNum {
        SeqNum(self.0.wrapping_add(rhs as u32))
    }
}

impl AddAssign<usize> for SeqNum {
    fn add_assign(&mut self, rhs: usize) {
        *self = *self + rhs;
    }
}

impl Sub<usize> for SeqNum {
    type Output = SeqNum;
    fn sub(self, rhs: usize) -> SeqNum {
        SeqNum(self.0.wrapping_sub(rhs as u32))
    }
}

/// The signed distance `self - rhs`, for code that must handle both directions.
impl Sub for SeqNum {
    type Output = i32;
    fn sub(self, rhs: SeqNum) -> i32 {
        self.0.wrapping_sub(rhs.0) as i32
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ordering_across_the_wrap() {
        let near_max = SeqNum(u32::MAX - 10);
        let wrapped = near_max + 20usize;
        assert_eq!(wrapped, SeqNum(9));
        assert!(near_max.before(wrapped));
        assert!(wrapped.after(near_max));
        assert_eq!(wrapped - near_max, 20);
        assert_eq!(near_max - wrapped, -20);
        assert_eq!(wrapped.distance_from(near_max), 20);
        assert_eq!(near_max.distance_from(wrapped), 0);
        assert!(SeqNum(5).in_range(near_max, wrapped));
        assert!(!wrapped.in_range(near_max, wrapped));
    }

    proptest! {
        #[test]
        fn adding_less_than_half_the_space_moves_forward(base: u32, delta in 1u32..(1 << 31)) {
            let a = SeqNum(base);
            let b = a + delta as usize;
            prop_assert!(a.before(b));
            prop_assert!(b.after(a));
            prop_assert!(!b.before(a));
            prop_assert_eq!(b - a, delta as i32);
            prop_assert_eq!(b.distance_from(a), delta as usize);
            prop_assert_eq!(a.max(b), b);
            prop_assert_eq!(a.min(b), a);
        }

        #[test]
        fn exactly_one_of_before_equal_after(x: u32, y: u32) {
            prop_assume!(x.wrapping_sub(y) != 1 << 31);
            let (a, b) = (SeqNum(x), SeqNum(y));
            let count = [a.before(b), a == b, a.after(b)].iter().filter(|&&t| t).count();
            prop_assert_eq!(count, 1);
        }

        #[test]
        fn in_range_matches_offsets(start: u32, len in 0u32..100_000, off in 0u32..200_000) {
            let s = SeqNum(start);
            let x = s + off as usize;
            prop_assert_eq!(x.in_range(s, s + len as usize), off < len);
        }
    }
}
