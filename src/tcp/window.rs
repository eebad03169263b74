//! Window sizes and window scale factors (RFC 7323 §2) as types, so the 16-bit header field, the
//! shift and the byte count cannot be mixed up by a hand-written shift.

use std::ops::{Add, Sub};

use crate::wire::SeqNum;

/// Largest value of the 16-bit window field.
const MAX_FIELD: u16 = u16::MAX;

/// A window in bytes, as the connection reasons about it (unscaled).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowSize(usize);

impl WindowSize {
    /// A closed window.
    pub const ZERO: WindowSize = WindowSize(0);

    /// A window of `bytes` bytes.
    pub const fn new(bytes: usize) -> Self {
        WindowSize(bytes)
    }

    /// The size in bytes.
    pub const fn get(self) -> usize {
        self.0
    }

    /// A closed window: nothing may be sent into it but a zero-window probe.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The value of the 16-bit window field that announces this window under `scale`: rounded
    /// *down* to the scale unit (announcing more than we have would promise buffer space we
    /// lack) and saturating at 65535.
    pub fn to_field(self, scale: WindowScale) -> u16 {
        (self.0 >> scale.shift()).min(usize::from(MAX_FIELD)) as u16
    }

    /// This size rounded down to what `scale` can express: the largest window the peer can be
    /// told that is not above it.
    pub fn round_down(self, scale: WindowScale) -> WindowSize {
        scale.apply(self.to_field(scale))
    }
}

/// The sequence number `window` bytes after this one: a window's right edge from its left
/// (SND.UNA + SND.WND), in sequence space (modulo 2^32, as `SeqNum + usize`).
impl Add<WindowSize> for SeqNum {
    type Output = SeqNum;
    fn add(self, window: WindowSize) -> SeqNum {
        self + window.get()
    }
}

/// The sequence number `window` bytes before this one (SND.UNA - MAX.SND.WND, RFC 5961 §5.2),
/// in sequence space (modulo 2^32, as `SeqNum - usize`).
impl Sub<WindowSize> for SeqNum {
    type Output = SeqNum;
    fn sub(self, window: WindowSize) -> SeqNum {
        self - window.get()
    }
}

/// A window scale shift (RFC 7323 §2.2): window fields count units of 2^shift bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowScale(u8);

impl WindowScale {
    /// RFC 7323 §2.3: shifts above 14 are used as 14.
    pub const MAX_SHIFT: u8 = 14;
    /// No scaling: what both directions use when the option was not agreed, and what a SYN's own
    /// window field always uses (RFC 7323 §2.2).
    pub const NONE: WindowScale = WindowScale(0);

    /// The scale for `shift`, clamped to 14 as RFC 7323 §2.3 asks of a receiver of a larger one.
    pub fn new(shift: u8) -> Self {
        WindowScale(shift.min(Self::MAX_SHIFT))
    }

    /// The smallest scale whose largest window covers `bytes` (or the largest scale when none
    /// does): what we announce for a receive buffer of that size.
    pub fn for_window(bytes: usize) -> Self {
        let mut shift = 0;
        while shift < Self::MAX_SHIFT && (bytes >> shift) > usize::from(MAX_FIELD) {
            shift += 1;
        }
        WindowScale(shift)
    }

    /// The shift, as carried by the window scale option.
    pub const fn shift(self) -> u8 {
        self.0
    }

    /// The window in bytes that the header field `field` announces under this scale.
    pub fn apply(self, field: u16) -> WindowSize {
        WindowSize(usize::from(field) << self.0)
    }

    /// The largest window this scale can announce.
    pub fn max_window(self) -> WindowSize {
        self.apply(MAX_FIELD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_above_fourteen_are_clamped() {
        assert_eq!(WindowScale::new(7).shift(), 7);
        assert_eq!(WindowScale::new(14).shift(), 14);
        assert_eq!(WindowScale::new(15).shift(), 14);
        assert_eq!(WindowScale::new(255).shift(), 14);
    }

    #[test]
    fn apply_shifts_the_field() {
        assert_eq!(WindowScale::NONE.apply(65535), WindowSize::new(65535));
        assert_eq!(WindowScale::new(7).apply(100), WindowSize::new(12_800));
        assert_eq!(
            WindowScale::new(14).max_window(),
            WindowSize::new(65535 << 14)
        );
    }

    #[test]
    fn to_field_rounds_down_and_saturates() {
        let scale = WindowScale::new(5);
        assert_eq!(WindowSize::new(31).to_field(scale), 0);
        assert_eq!(WindowSize::new(32).to_field(scale), 1);
        assert_eq!(WindowSize::new(63).to_field(scale), 1);
        assert_eq!(WindowSize::new(1 << 30).to_field(scale), 65535);
        assert_eq!(WindowSize::new(70_000).to_field(WindowScale::NONE), 65535);
        assert_eq!(WindowSize::new(63).round_down(scale), WindowSize::new(32));
        assert_eq!(WindowSize::new(64).round_down(scale), WindowSize::new(64));
    }

    #[test]
    fn for_window_picks_the_smallest_sufficient_shift() {
        assert_eq!(WindowScale::for_window(0), WindowScale::NONE);
        assert_eq!(WindowScale::for_window(65535), WindowScale::NONE);
        assert_eq!(WindowScale::for_window(65536).shift(), 1);
        assert_eq!(WindowScale::for_window(1 << 20).shift(), 5);
        assert_eq!(WindowScale::for_window(usize::MAX).shift(), 14);
    }
}
