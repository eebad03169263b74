//! Spurious retransmissions (RFC 2883 §5 / RFC 3708 D-SACK, RFC 3522 Eifel detection,
//! RFC 5682 F-RTO) wired into the connection, and the one place a reduction is undone
//! (RFC 4015): `undo_reduction`. The state and its rules are in `tcp::undo`.

use std::time::{Duration, Instant};

use super::Connection;
use crate::tcp::timers::Timer;
use crate::tcp::undo::{FrtoAck, FrtoVerdict, Reduction, UndoCause};
use crate::trace::CcCause;
use crate::wire::{SackBlock, SeqNum, TcpRepr};

impl Connection {
    /// A congestion reduction is about to happen: saves the controller's state so that it
    /// can be undone if the episode turns out spurious.
    pub(super) fn undo_begin(&mut self, reduction: Reduction) {
        if !self.config.undo && !self.config.frto {
            return;
        }
        let cc = &self.loss.cc;
        self.loss
            .undo
            .begin(reduction, || cc.save(), self.snd.una, self.snd.max);
    }

    /// The retransmission timer expired with data outstanding and is about to reduce cwnd:
    /// starts an episode, and F-RTO (RFC 5682 §3.1 step 1) when this is a first timeout
    /// (neither during RTO recovery nor during a fast recovery).
    pub(super) fn undo_on_timeout(&mut self) {
        let first = self.loss.rto_recover.is_none() && self.loss.recovery.is_none();
        self.undo_begin(Reduction::Timeout);
        if self.config.frto && first {
            self.loss.undo.start_frto(self.snd.max);
        } else {
            self.loss.undo.stop_frto();
        }
    }

    /// `[start, end)` is being sent: a retransmission counts for the episode (D-SACK and the
    /// first one's TSval for Eifel), new data spends F-RTO's allowance.
    pub(super) fn undo_on_send(&mut self, now: Instant, start: SeqNum, end: SeqNum, new: bool) {
        if new {
            self.loss.undo.on_new_data(end.distance_from(start));
        } else {
            let tsval = self.opts.timestamps.then(|| self.ts_now(now));
            self.loss.undo.on_retransmit(start, end, tsval);
        }
    }

    /// New data F-RTO step 2b allows whatever cwnd says (`None`: F-RTO is not sending).
    pub(super) fn frto_allowance(&self) -> Option<usize> {
        self.loss.undo.frto_budget()
    }

    /// Everything one ACK tells about the episode in progress, after the ACK was processed
    /// (SND.UNA moved from `una_before`; `duplicate` when it counted as a duplicate ACK).
    pub(super) fn undo_on_ack(
        &mut self,
        now: Instant,
        seg: &TcpRepr,
        ack: SeqNum,
        una_before: SeqNum,
        duplicate: bool,
    ) {
        if self.loss.undo.episode().is_none() {
            return;
        }
        if self.config.undo {
            if let Some(block) = Self::dsack_block(seg, ack) {
                if self.loss.undo.on_dsack(block.left, block.right) {
                    self.undo_reduction(now, UndoCause::Dsack);
                    return;
                }
            }
        }
        let advanced = self.snd.una.after(una_before);
        if self.config.undo && self.opts.timestamps && advanced {
            let echo = seg
                .options
                .timestamps
                .filter(|ts| ts.echo != 0)
                .map(|ts| ts.echo);
            if self.loss.undo.on_advance(una_before, self.snd.una, echo) {
                self.undo_reduction(now, UndoCause::Timestamp);
                return;
            }
            if self.loss.undo.retransmission_needed() {
                // The retransmission filled the hole: the timeout was real.
                self.loss.undo.stop_frto();
            }
        }
        self.frto_on_ack(now, seg, advanced, duplicate);
        self.loss.undo.expire(self.snd.una);
    }

    /// RFC 5682 §3.1 steps 2 and 3.
    fn frto_on_ack(&mut self, now: Instant, seg: &TcpRepr, advanced: bool, duplicate: bool) {
        let point = match self.loss.undo.frto() {
            crate::tcp::undo::Frto::Off => return,
            crate::tcp::undo::Frto::AwaitFirstAck { point }
            | crate::tcp::undo::Frto::AwaitSecondAck { point, .. } => point,
        };
        let una = self.snd.una;
        let missing = if una.before(point) {
            point.distance_from(una) - self.loss.scoreboard.sacked_in(una, point)
        } else {
            0
        };
        let max = self.snd.max;
        let data_end = self.data_end_seq();
        let unsent = data_end.after(max) || (self.snd.fin_queued && max.before_eq(data_end));
        let facts = FrtoAck {
            advanced,
            ack: una,
            duplicate,
            sacked_above: seg
                .options
                .sack_blocks()
                .any(|b| b.left.before(b.right) && b.right.after(point)),
            missing,
            can_send_new: unsent && (una + self.snd.wnd).after(max),
        };
        match self.loss.undo.frto_on_ack(facts, self.snd.mss) {
            FrtoVerdict::Wait => {}
            // 2b: new data goes next, instead of the go-back-N.
            FrtoVerdict::SendNew => self.snd.nxt = max,
            // 2a / 3a: a real timeout; go back N from SND.UNA (SACKed data is skipped).
            FrtoVerdict::Conventional => self.snd.nxt = una,
            FrtoVerdict::Spurious => self.undo_reduction(now, UndoCause::Frto),
        }
    }

    /// The D-SACK block of an ACK whose cumulative acknowledgement is `ack`, if it has one
    /// (RFC 2883 §4: the first block lies at or below the cumulative ACK, or inside the
    /// second block).
    pub(super) fn dsack_block(seg: &TcpRepr, ack: SeqNum) -> Option<SackBlock> {
        let mut blocks = seg.options.sack_blocks();
        let first = blocks.next()?;
        let inside_second = blocks
            .next()
            .is_some_and(|b| b.left.before_eq(first.left) && first.right.before_eq(b.right));
        (first.right.before_eq(ack) || inside_second).then_some(first)
    }

    /// Undoes the reduction of the episode in progress, shown spurious by `why`: the one
    /// place this happens (RFC 4015 §3 for timeouts, RFC 3708 / Linux's undo for recoveries).
    /// - The controller goes back to its saved state (never below what it grew to since).
    /// - A fast recovery in progress ends without the deflation of its normal end; RACK's
    ///   loss marks go (what is still missing is marked again after its reordering window).
    /// - After a timeout: sending resumes with new data instead of going back N (step 5),
    ///   the RTO is adapted to the RTT that fooled it (step 7) and its backoff dropped.
    pub(super) fn undo_reduction(&mut self, now: Instant, why: UndoCause) {
        let Some(episode) = self.loss.undo.take() else {
            return;
        };
        self.loss.cc.restore(&episode.prior);
        match why {
            UndoCause::Dsack => self.stats.undos_dsack += 1,
            UndoCause::Timestamp => self.stats.undos_timestamp += 1,
            UndoCause::Frto => self.stats.undos_frto += 1,
        }
        if self.loss.recovery.take().is_some() {
            self.loss.dup_acks = 0;
            self.loss.rack.on_recovery_exit();
        }
        self.loss.sent.clear_lost_marks();
        if episode.reduction == Reduction::Timeout {
            self.stats.spurious_rtos += 1;
            if self.loss.rto_recover.take().is_some() {
                self.loss.rack.on_recovery_exit();
            }
            if self.snd.nxt.before(self.snd.max) {
                self.snd.nxt = self.snd.max;
            }
            let sample = episode.proof_echo.and_then(|echo| {
                let ms = self.ts_now(now).wrapping_sub(echo);
                ((ms as i32) >= 0).then(|| Duration::from_millis(u64::from(ms.max(1))))
            });
            self.loss.rtt.adapt_after_spurious_timeout(sample);
            if self.snd.una != self.snd.max {
                self.timers
                    .set(Timer::Retransmit, now + self.loss.rtt.rto());
            }
        }
        self.note_cc(CcCause::Undo);
        self.schedule_loss_probe(now);
    }
}
