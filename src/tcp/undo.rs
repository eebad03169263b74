//! Undoing congestion reductions that spurious retransmissions caused, as pure state.
//!
//! A fast retransmit after reordering, or a timeout after a delay spike, halves (or collapses)
//! the congestion window although nothing was lost. Three detectors tell afterwards:
//! - D-SACK (RFC 2883 §5, RFC 3708): the receiver reports every retransmission of the episode
//!   as a duplicate, so the originals had all arrived;
//! - timestamps (Eifel detection, RFC 3522): the ACK that covers the retransmitted data
//!   echoes a TSval older than the first retransmission's, so an original filled the hole;
//! - F-RTO (RFC 5682, with SACK §3.1): after a timeout, the two ACKs following the
//!   retransmission of the first segment acknowledge data that was never retransmitted.
//!
//! Then the window goes back to what it was (RFC 4015), as Linux's undo does (`undo_marker`,
//! `undo_retrans`, `retrans_stamp`, `prior_cwnd`). An [`Episode`] starts at each reduction
//! with the controller's [`Prior`]; the connection feeds it the retransmissions and ACKs and
//! applies the verdicts in one place (`Connection::undo_reduction`). Nothing here reads a
//! clock.

use super::congestion::Prior;
use crate::wire::SeqNum;

/// Most retransmitted ranges one episode tracks for D-SACK: beyond that (a go-back-N of a
/// large window after a real timeout) the episode is no candidate for a D-SACK undo anyway.
const MAX_TRACKED: usize = 64;

/// What reduced the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    /// Fast retransmit / SACK or RACK recovery (RFC 5681 §3.2, RFC 6675, RFC 8985).
    FastRecovery,
    /// The retransmission timer expired (RFC 6298 §5).
    Timeout,
}

/// What showed a reduction spurious (the `ConnStats` counter it feeds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UndoCause {
    /// Every retransmission of the episode came back as a D-SACK (RFC 2883 §5, RFC 3708).
    Dsack,
    /// The ACK covering the retransmissions echoed an older TSval (RFC 3522).
    Timestamp,
    /// F-RTO's second ACK acknowledged data that was never retransmitted (RFC 5682).
    Frto,
}

/// One congestion event that may yet be undone (Linux: from `undo_marker` on).
#[derive(Debug, Clone)]
pub struct Episode {
    /// What reduced the window; a timeout during a fast recovery makes it `Timeout`.
    pub reduction: Reduction,
    /// The controller's state before the first reduction of the episode.
    pub prior: Prior,
    /// SND.UNA when it began: D-SACKs below it are about older data (Linux `undo_marker`).
    pub marker: SeqNum,
    /// SND.MAX at the latest reduction of the episode.
    pub point: SeqNum,
    /// Retransmitted ranges not yet reported as duplicates, one entry per transmission
    /// (Linux counts `undo_retrans`; ranges let a D-SACK only cancel what it covers).
    outstanding: Vec<(SeqNum, SeqNum)>,
    /// More retransmissions than `MAX_TRACKED`: D-SACKs can no longer prove them all spurious.
    overflowed: bool,
    /// Our TSval on the first retransmission (Linux `retrans_stamp`, RFC 3522 RetransmitTS).
    pub retrans_ts: Option<u32>,
    /// One past the highest retransmitted sequence number.
    retrans_high: SeqNum,
    /// An ACK covering retransmitted data echoed the retransmission's TSval (or a later one):
    /// a retransmission was needed, timestamps cannot undo this episode.
    needed: bool,
    /// The TSecr of the ACK that showed the episode spurious by timestamps: with our TSval
    /// now it measures the RTT the timeout missed (RFC 4015 §3 step 7).
    pub proof_echo: Option<u32>,
}

/// F-RTO (RFC 5682 §3.1, SACK-enhanced) after a timeout, by the step it waits in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Frto {
    /// Not running: conventional RTO recovery (or none).
    #[default]
    Off,
    /// Step 2: the first segment was retransmitted; waiting for the ACK that advances
    /// SND.UNA. `point` is RecoveryPoint (SND.MAX at the timeout).
    AwaitFirstAck {
        /// RecoveryPoint.
        point: SeqNum,
    },
    /// Step 3: up to two new segments went out; the next ACK decides.
    AwaitSecondAck {
        /// RecoveryPoint.
        point: SeqNum,
        /// New-data bytes still allowed (two segments, sent whatever cwnd says).
        budget: usize,
        /// Bytes below RecoveryPoint neither cumulatively acknowledged nor SACKed yet.
        missing: usize,
    },
}

/// What one ACK means to F-RTO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrtoAck {
    /// The ACK advanced SND.UNA.
    pub advanced: bool,
    /// Its cumulative acknowledgement (after processing).
    pub ack: SeqNum,
    /// The connection counted it as a duplicate ACK.
    pub duplicate: bool,
    /// Its SACK blocks reach above RecoveryPoint.
    pub sacked_above: bool,
    /// Bytes below RecoveryPoint neither cumulatively acknowledged nor SACKed, after it.
    pub missing: usize,
    /// New data could go now (some unsent, and the peer's window has room beyond SND.MAX).
    pub can_send_new: bool,
}

/// F-RTO's answer to an ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrtoVerdict {
    /// Nothing to do (or F-RTO is not running).
    Wait,
    /// Step 2b: send up to two new segments (SND.NXT to SND.MAX) instead of going back.
    SendNew,
    /// Step 2a/3a: the timeout was genuine, go on with conventional RTO recovery.
    Conventional,
    /// Step 3b: the timeout was spurious.
    Spurious,
}

/// The undo state of one connection: the episode in progress and F-RTO.
#[derive(Debug, Default, Clone)]
pub struct UndoState {
    episode: Option<Episode>,
    frto: Frto,
}

impl UndoState {
    /// A reduction is about to happen at SND.UNA `una`, SND.MAX `max`; `prior` saves the
    /// controller's state. A second reduction inside an episode still in progress (a timeout
    /// during recovery, a backed-off timeout) keeps the first prior and what was counted, as
    /// Linux keeps `undo_marker`: only undoing both brings back the window before the event.
    pub fn begin(
        &mut self,
        reduction: Reduction,
        prior: impl FnOnce() -> Prior,
        una: SeqNum,
        max: SeqNum,
    ) {
        if let Some(ep) = &mut self.episode {
            if una.before(ep.point) {
                if reduction == Reduction::Timeout {
                    ep.reduction = Reduction::Timeout;
                }
                ep.point = ep.point.max(max);
                return;
            }
        }
        self.episode = Some(Episode {
            reduction,
            prior: prior(),
            marker: una,
            point: max,
            outstanding: Vec::new(),
            overflowed: false,
            retrans_ts: None,
            retrans_high: una,
            needed: false,
            proof_echo: None,
        });
    }

    /// Forgets the episode: a reduction that cannot be undone happened (a tail loss probe
    /// that repaired a loss, an idle restart) and restoring the older prior would undo it too.
    pub fn clear(&mut self) {
        self.episode = None;
        self.frto = Frto::Off;
    }

    /// The episode in progress, if any.
    pub fn episode(&self) -> Option<&Episode> {
        self.episode.as_ref()
    }

    /// Ends the episode because it is being undone, returning it.
    pub fn take(&mut self) -> Option<Episode> {
        self.frto = Frto::Off;
        self.episode.take()
    }

    /// `[start, end)` was retransmitted with TSval `tsval` (`None` without timestamps).
    pub fn on_retransmit(&mut self, start: SeqNum, end: SeqNum, tsval: Option<u32>) {
        let Some(ep) = &mut self.episode else {
            return;
        };
        if ep.retrans_ts.is_none() {
            ep.retrans_ts = tsval;
        }
        ep.retrans_high = ep.retrans_high.max(end);
        if ep.outstanding.len() < MAX_TRACKED {
            ep.outstanding.push((start, end));
        } else {
            ep.overflowed = true;
        }
    }

    /// A D-SACK reported `[left, right)` received twice (RFC 2883 §4). Cancels the
    /// retransmissions it covers; true when that was the last one, so every retransmission
    /// of the episode was unnecessary (RFC 3708 §3).
    pub fn on_dsack(&mut self, left: SeqNum, right: SeqNum) -> bool {
        let Some(ep) = &mut self.episode else {
            return false;
        };
        if ep.outstanding.is_empty() || left.before(ep.marker) || !left.before(right) {
            return false;
        }
        // The first transmission it covers whole is the duplicate; one partly covered is
        // trimmed (a retransmission may span two original segments).
        if let Some(i) = ep
            .outstanding
            .iter()
            .position(|&(s, e)| s.after_eq(left) && e.before_eq(right))
        {
            ep.outstanding.remove(i);
        } else {
            for range in &mut ep.outstanding {
                let (s, e) = *range;
                if s.after_eq(left) && s.before(right) {
                    range.0 = right.min(e);
                } else if e.after(left) && e.before_eq(right) {
                    range.1 = left.max(s);
                }
            }
            ep.outstanding.retain(|&(s, e)| s.before(e));
        }
        ep.outstanding.is_empty() && !ep.overflowed
    }

    /// Timestamps showed a retransmission of the episode was needed (so F-RTO need not
    /// look further either).
    pub fn retransmission_needed(&self) -> bool {
        self.episode.as_ref().is_some_and(|ep| ep.needed)
    }

    /// An ACK moved SND.UNA from `old` to `new`, echoing `echo` (RFC 3522 §2). True when it
    /// covers the last retransmitted byte and every ACK that covered retransmitted data
    /// echoed a TSval older than the first retransmission: originals, not retransmissions,
    /// filled the holes.
    pub fn on_advance(&mut self, old: SeqNum, new: SeqNum, echo: Option<u32>) -> bool {
        let Some(ep) = &mut self.episode else {
            return false;
        };
        let (Some(retrans_ts), Some(echo)) = (ep.retrans_ts, echo) else {
            return false;
        };
        if ep.needed || !old.before(ep.retrans_high) {
            return false;
        }
        if (echo.wrapping_sub(retrans_ts) as i32) >= 0 {
            ep.needed = true;
            return false;
        }
        let spurious = new.after_eq(ep.retrans_high);
        if spurious {
            ep.proof_echo = Some(echo);
        }
        spurious
    }

    /// SND.UNA reached `una`: an episode whose window and one more were acknowledged is
    /// over; its D-SACKs would have come by now, and restoring its prior that late could
    /// undo a later (idle, or probe) reduction.
    pub fn expire(&mut self, una: SeqNum) {
        if let Some(ep) = &self.episode {
            let window = ep.point.distance_from(ep.marker);
            if una.after(ep.point + window) {
                self.episode = None;
            }
        }
    }

    /// F-RTO's state.
    pub fn frto(&self) -> Frto {
        self.frto
    }

    /// RFC 5682 §3.1 step 1: a first timeout (not one during RTO recovery) at SND.MAX `max`.
    pub fn start_frto(&mut self, max: SeqNum) {
        self.frto = Frto::AwaitFirstAck { point: max };
    }

    /// Stops F-RTO (a second timeout, or undo switched off).
    pub fn stop_frto(&mut self) {
        self.frto = Frto::Off;
    }

    /// New data bytes F-RTO step 2b still allows whatever cwnd says, while in step 3.
    pub fn frto_budget(&self) -> Option<usize> {
        match self.frto {
            Frto::AwaitSecondAck { budget, .. } => Some(budget),
            _ => None,
        }
    }

    /// `len` bytes of new data were sent.
    pub fn on_new_data(&mut self, len: usize) {
        if let Frto::AwaitSecondAck { budget, .. } = &mut self.frto {
            *budget = budget.saturating_sub(len);
        }
    }

    /// RFC 5682 §3.1 steps 2 and 3 for one ACK; `mss` sizes the two new segments of 2b.
    pub fn frto_on_ack(&mut self, ack: FrtoAck, mss: usize) -> FrtoVerdict {
        match self.frto {
            Frto::Off => FrtoVerdict::Wait,
            Frto::AwaitFirstAck { point } => {
                // Step 2: duplicate ACKs only update the scoreboard.
                if !ack.advanced {
                    return FrtoVerdict::Wait;
                }
                if ack.ack.after_eq(point) || !ack.can_send_new {
                    // 2a: everything outstanding at the timeout is acknowledged (nothing to
                    // tell), or (2b's exception) no new data could probe: go back.
                    self.frto = Frto::Off;
                    return FrtoVerdict::Conventional;
                }
                self.frto = Frto::AwaitSecondAck {
                    point,
                    budget: 2 * mss,
                    missing: ack.missing,
                };
                FrtoVerdict::SendNew
            }
            Frto::AwaitSecondAck { point, missing, .. } => {
                let new_below = ack.missing < missing;
                if ack.ack.after(point) || ack.sacked_above && !new_below {
                    // 3a: the new segments arrived but nothing more of the old flight did.
                    self.frto = Frto::Off;
                    FrtoVerdict::Conventional
                } else if new_below {
                    // 3b: data sent before the timeout and never retransmitted arrived.
                    self.frto = Frto::Off;
                    FrtoVerdict::Spurious
                } else if ack.duplicate {
                    self.frto = Frto::Off;
                    FrtoVerdict::Conventional
                } else {
                    FrtoVerdict::Wait
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prior() -> Prior {
        Prior::new(20_000, 40_000)
    }

    fn s(n: u32) -> SeqNum {
        SeqNum(n)
    }

    #[test]
    fn dsack_for_every_retransmission_proves_the_episode_spurious() {
        let mut u = UndoState::default();
        u.begin(Reduction::FastRecovery, prior, s(1000), s(9000));
        u.on_retransmit(s(1000), s(2000), None);
        u.on_retransmit(s(3000), s(4000), None);
        assert!(!u.on_dsack(s(1000), s(2000)), "one of two");
        assert!(!u.on_dsack(s(500), s(900)), "below the marker: older data");
        assert!(
            !u.on_dsack(s(5000), s(6000)),
            "not a retransmission of ours"
        );
        assert!(u.on_dsack(s(3000), s(4000)));
        assert_eq!(u.take().unwrap().prior, prior());
    }

    #[test]
    fn a_range_sent_twice_needs_two_dsacks() {
        let mut u = UndoState::default();
        u.begin(Reduction::FastRecovery, prior, s(1000), s(9000));
        u.on_retransmit(s(1000), s(2000), None);
        u.on_retransmit(s(1000), s(2000), None);
        assert!(!u.on_dsack(s(1000), s(2000)));
        assert!(u.on_dsack(s(1000), s(2000)));
    }

    #[test]
    fn a_dsack_trims_a_partly_covered_retransmission() {
        let mut u = UndoState::default();
        u.begin(Reduction::FastRecovery, prior, s(1000), s(9000));
        u.on_retransmit(s(1000), s(3000), None);
        assert!(!u.on_dsack(s(1000), s(2000)));
        assert!(u.on_dsack(s(2000), s(3000)));
    }

    #[test]
    fn no_retransmission_no_dsack_undo() {
        let mut u = UndoState::default();
        u.begin(Reduction::FastRecovery, prior, s(1000), s(9000));
        assert!(!u.on_dsack(s(1000), s(2000)));
    }

    #[test]
    fn too_many_retransmissions_to_track_cannot_be_undone_by_dsack() {
        let mut u = UndoState::default();
        u.begin(Reduction::Timeout, prior, s(0), s(100_000));
        for i in 0..=MAX_TRACKED as u32 {
            u.on_retransmit(s(i * 1000), s(i * 1000 + 1000), None);
        }
        let mut undone = false;
        for i in 0..=MAX_TRACKED as u32 {
            undone |= u.on_dsack(s(i * 1000), s(i * 1000 + 1000));
        }
        assert!(!undone);
    }

    #[test]
    fn an_older_echo_on_the_ack_covering_the_retransmission_is_eifel() {
        let mut u = UndoState::default();
        u.begin(Reduction::FastRecovery, prior, s(1000), s(9000));
        u.on_retransmit(s(1000), s(2000), Some(500));
        assert!(
            !u.on_advance(s(1000), s(2000), None),
            "no timestamp, no verdict"
        );
        assert!(u.on_advance(s(1000), s(9000), Some(400)));
    }

    #[test]
    fn an_echo_of_the_retransmission_means_it_was_needed() {
        let mut u = UndoState::default();
        u.begin(Reduction::FastRecovery, prior, s(1000), s(9000));
        u.on_retransmit(s(1000), s(2000), Some(500));
        u.on_retransmit(s(3000), s(4000), Some(510));
        // The first hole was filled by its retransmission ...
        assert!(!u.on_advance(s(1000), s(3000), Some(500)));
        // ... so an original filling the second does not make the episode spurious.
        assert!(!u.on_advance(s(3000), s(9000), Some(300)));
    }

    #[test]
    fn an_echo_before_all_retransmissions_are_covered_waits() {
        let mut u = UndoState::default();
        u.begin(Reduction::FastRecovery, prior, s(1000), s(9000));
        u.on_retransmit(s(1000), s(2000), Some(500));
        u.on_retransmit(s(3000), s(4000), Some(510));
        assert!(!u.on_advance(s(1000), s(3000), Some(400)));
        assert!(u.on_advance(s(3000), s(5000), Some(450)));
    }

    #[test]
    fn a_timeout_inside_a_recovery_keeps_the_first_prior() {
        let mut u = UndoState::default();
        u.begin(Reduction::FastRecovery, prior, s(1000), s(9000));
        u.begin(Reduction::Timeout, || Prior::new(1, 2), s(2000), s(9000));
        let ep = u.episode().unwrap();
        assert_eq!(
            (ep.reduction, ep.prior, ep.marker),
            (Reduction::Timeout, prior(), s(1000))
        );
        // Once past the point, a new event is a new episode.
        u.begin(
            Reduction::FastRecovery,
            || Prior::new(1, 2),
            s(9000),
            s(12_000),
        );
        assert_eq!(u.episode().unwrap().prior, Prior::new(1, 2));
    }

    #[test]
    fn an_episode_expires_a_window_after_its_point() {
        let mut u = UndoState::default();
        u.begin(Reduction::FastRecovery, prior, s(1000), s(9000));
        u.expire(s(17_000));
        assert!(u.episode().is_some());
        u.expire(s(17_001));
        assert!(u.episode().is_none());
    }

    fn ack(advanced: bool, ack: u32, delivered: usize) -> FrtoAck {
        FrtoAck {
            advanced,
            ack: s(ack),
            duplicate: !advanced,
            sacked_above: false,
            missing: 8000 - delivered,
            can_send_new: true,
        }
    }

    #[test]
    fn frto_two_acks_for_original_data_make_the_timeout_spurious() {
        let mut u = UndoState::default();
        u.start_frto(s(9000));
        assert_eq!(u.frto_on_ack(ack(false, 1000, 0), 1000), FrtoVerdict::Wait);
        assert_eq!(
            u.frto_on_ack(ack(true, 2000, 1000), 1000),
            FrtoVerdict::SendNew
        );
        assert_eq!(u.frto_budget(), Some(2000));
        u.on_new_data(1000);
        assert_eq!(u.frto_budget(), Some(1000));
        assert_eq!(
            u.frto_on_ack(ack(true, 3000, 2000), 1000),
            FrtoVerdict::Spurious
        );
        assert_eq!(u.frto(), Frto::Off);
    }

    #[test]
    fn frto_sacks_for_the_new_segments_alone_mean_a_real_timeout() {
        let mut u = UndoState::default();
        u.start_frto(s(9000));
        assert_eq!(
            u.frto_on_ack(ack(true, 2000, 1000), 1000),
            FrtoVerdict::SendNew
        );
        let sack = FrtoAck {
            sacked_above: true,
            ..ack(false, 2000, 1000)
        };
        assert_eq!(u.frto_on_ack(sack, 1000), FrtoVerdict::Conventional);
        // A plain duplicate ACK in step 3 says the same.
        u.start_frto(s(9000));
        u.frto_on_ack(ack(true, 2000, 1000), 1000);
        assert_eq!(
            u.frto_on_ack(ack(false, 2000, 1000), 1000),
            FrtoVerdict::Conventional
        );
    }

    #[test]
    fn frto_goes_back_when_the_first_ack_covers_the_point_or_nothing_new_can_go() {
        let mut u = UndoState::default();
        u.start_frto(s(9000));
        assert_eq!(
            u.frto_on_ack(ack(true, 9000, 8000), 1000),
            FrtoVerdict::Conventional
        );
        u.start_frto(s(9000));
        let stuck = FrtoAck {
            can_send_new: false,
            ..ack(true, 2000, 1000)
        };
        assert_eq!(u.frto_on_ack(stuck, 1000), FrtoVerdict::Conventional);
    }
}
