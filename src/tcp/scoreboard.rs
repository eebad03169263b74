//! The sender's view of what the peer has SACKed (RFC 6675 §3), and the loss inferences made
//! from it.

use crate::wire::{SackBlock, SeqNum};

/// Most SACKed ranges remembered; a peer sends at most four blocks per ACK, so this only
/// limits what a hostile or very lossy peer can make us store.
pub const MAX_RANGES: usize = 64;

/// SACKed ranges above SND.UNA, sorted and disjoint.
#[derive(Debug, Default, Clone)]
pub struct Scoreboard {
    ranges: Vec<(SeqNum, SeqNum)>,
}

impl Scoreboard {
    /// Records the blocks of one ACK, ignoring any outside `(snd_una, snd_max]` (D-SACK and
    /// bogus blocks). Returns how many bytes were newly SACKed.
    pub fn update(
        &mut self,
        blocks: impl Iterator<Item = SackBlock>,
        snd_una: SeqNum,
        snd_max: SeqNum,
    ) -> usize {
        let before = self.sacked_bytes();
        for block in blocks {
            let (left, right) = (block.left.max(snd_una), block.right);
            if !left.before(right) || right.after(snd_max) || !block.left.before(snd_max) {
                continue;
            }
            self.insert(left, right);
        }
        self.sacked_bytes().saturating_sub(before)
    }

    fn insert(&mut self, mut left: SeqNum, mut right: SeqNum) {
        let mut merged_any = false;
        self.ranges.retain(|&(l, r)| {
            let overlaps = l.before_eq(right) && left.before_eq(r);
            if overlaps {
                left = left.min(l);
                right = right.max(r);
                merged_any = true;
            }
            !overlaps
        });
        if !merged_any && self.ranges.len() >= MAX_RANGES {
            return;
        }
        let at = self.ranges.partition_point(|&(l, _)| l.before(left));
        self.ranges.insert(at, (left, right));
    }

    /// Forgets everything at or below a new cumulative ACK.
    pub fn advance(&mut self, snd_una: SeqNum) {
        self.ranges.retain_mut(|(l, r)| {
            if r.before_eq(snd_una) {
                return false;
            }
            *l = l.max(snd_una);
            true
        });
    }

    /// Forgets all SACK information (after a timeout, RFC 2018 §8: the receiver may renege).
    pub fn clear(&mut self) {
        self.ranges.clear();
    }

    /// True when nothing is SACKed.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Total bytes SACKed.
    pub fn sacked_bytes(&self) -> usize {
        self.ranges.iter().map(|&(l, r)| r.distance_from(l)).sum()
    }

    /// Bytes SACKed inside `[from, to)`.
    pub fn sacked_in(&self, from: SeqNum, to: SeqNum) -> usize {
        self.ranges
            .iter()
            .map(|&(l, r)| {
                let (a, b) = (l.max(from), r.min(to));
                if a.before(b) {
                    b.distance_from(a)
                } else {
                    0
                }
            })
            .sum()
    }

    /// The loss edge of RFC 6675's IsLost: every un-SACKed byte before it has more than
    /// `threshold` SACKed bytes above it and counts as lost. `None` when nothing qualifies.
    pub fn loss_edge(&self, threshold: usize) -> Option<SeqNum> {
        let mut above = 0;
        for &(l, r) in self.ranges.iter().rev() {
            above += r.distance_from(l);
            if above > threshold {
                return Some(l);
            }
        }
        None
    }

    /// The first un-SACKed byte at or after `from`, and where that hole ends (the next SACKed
    /// byte, or `limit`).
    pub fn next_hole(&self, from: SeqNum, limit: SeqNum) -> Option<(SeqNum, SeqNum)> {
        let mut start = from;
        for &(l, r) in &self.ranges {
            if r.before_eq(start) {
                continue;
            }
            if l.after(start) {
                let end = l.min(limit);
                return start.before(end).then_some((start, end));
            }
            start = r;
        }
        start.before(limit).then_some((start, limit))
    }

    /// The highest SACKed byte's successor, if any.
    pub fn highest(&self) -> Option<SeqNum> {
        self.ranges.last().map(|&(_, r)| r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(l: u32, r: u32) -> SackBlock {
        SackBlock {
            left: SeqNum(l),
            right: SeqNum(r),
        }
    }

    #[test]
    fn blocks_merge_and_bogus_ones_are_ignored() {
        let mut sb = Scoreboard::default();
        let news = sb.update(
            [
                block(200, 300),
                block(300, 400),
                block(50, 90),
                block(900, 2000),
            ]
            .into_iter(),
            SeqNum(100),
            SeqNum(1000),
        );
        assert_eq!(news, 200);
        assert_eq!(sb.ranges, vec![(SeqNum(200), SeqNum(400))]);
        sb.advance(SeqNum(250));
        assert_eq!(sb.ranges, vec![(SeqNum(250), SeqNum(400))]);
        sb.advance(SeqNum(400));
        assert!(sb.is_empty());
    }

    #[test]
    fn holes_and_loss_edge() {
        let mut sb = Scoreboard::default();
        sb.update(
            [block(200, 300), block(400, 500), block(600, 700)].into_iter(),
            SeqNum(100),
            SeqNum(800),
        );
        assert_eq!(
            sb.next_hole(SeqNum(100), SeqNum(800)),
            Some((SeqNum(100), SeqNum(200)))
        );
        assert_eq!(
            sb.next_hole(SeqNum(250), SeqNum(800)),
            Some((SeqNum(300), SeqNum(400)))
        );
        assert_eq!(
            sb.next_hole(SeqNum(700), SeqNum(800)),
            Some((SeqNum(700), SeqNum(800)))
        );
        assert_eq!(sb.next_hole(SeqNum(700), SeqNum(700)), None);
        // More than 150 bytes SACKed above: only at the second block from the top.
        assert_eq!(sb.loss_edge(150), Some(SeqNum(400)));
        assert_eq!(sb.loss_edge(300), None);
        assert_eq!(sb.sacked_in(SeqNum(250), SeqNum(450)), 100);
    }
}
