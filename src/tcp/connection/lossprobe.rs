//! RACK-TLP (RFC 8985) wired into the connection: every data transmission is logged with its
//! time, each ACK tells RACK what was delivered, RACK's verdicts feed the SACK recovery (and
//! PRR) that already exists, and the probe timer sends one tail loss probe.

use std::time::Instant;

use super::{Connection, State};
use crate::tcp::rack::{probe_timeout, tlp_outcome, AckFacts, TlpEpisode, TlpOutcome};
use crate::tcp::timers::Timer;
use crate::trace::{CcCause, Rexmit};
use crate::wire::{SeqNum, TcpRepr};

impl Connection {
    /// RACK runs only with SACK: without it nothing says which later segment was delivered.
    pub(super) fn rack_enabled(&self) -> bool {
        self.opts.sack && self.config.rack
    }

    /// TLP needs SACK too: the probe's ACK must show RACK what was delivered.
    fn tlp_enabled(&self) -> bool {
        self.opts.sack && self.config.tlp
    }

    /// Logs one transmission of `[start, end)` for RACK.
    pub(super) fn record_sent(&mut self, now: Instant, start: SeqNum, end: SeqNum, again: bool) {
        // SACKed bytes have left the network: during a recovery SND.UNA waits at the hole
        // while PRR sends on, and the span SND.MAX - SND.UNA grows far past what is in
        // flight. Counted, it made the next congestion event "reduce" to more than cwnd
        // (ssthresh 56 KB from a 38 KB window), and a drop-tail queue overflowed again at
        // once: ~4,200 drops per 10 MB in the simulator's shallow-queue scenario.
        let flight = end
            .max(self.snd.max)
            .distance_from(self.snd.una)
            .saturating_sub(self.loss.scoreboard.sacked_bytes());
        self.loss.flight_peak = self.loss.flight_peak.max(flight);
        if self.rack_enabled() {
            self.loss.sent.on_send(start, end, now, again);
        }
    }

    /// RFC 8985 §6.2 steps 1 to 4 for one ACK whose cumulative part is `una` (already checked
    /// against SND.MAX) and whose SACK blocks the scoreboard has taken: each newly delivered
    /// segment updates RACK, and a D-SACK widens the reordering window.
    pub(super) fn rack_on_ack(&mut self, now: Instant, seg: &TcpRepr, una: SeqNum, sacked: bool) {
        if !self.rack_enabled() {
            return;
        }
        let echo = seg
            .options
            .timestamps
            .filter(|ts| self.opts.timestamps && ts.echo != 0)
            .map(|ts| ts.echo);
        let (epoch, offset) = (self.epoch, self.ts_offset);
        let predates = |at: Instant| {
            echo.map(|echo| {
                let sent =
                    (at.saturating_duration_since(epoch).as_millis() as u32).wrapping_add(offset);
                (echo.wrapping_sub(sent) as i32) < 0
            })
        };
        let loss = &mut self.loss;
        let rack = &mut loss.rack;
        // The TSecr of a cumulative ACK is the TSval of the segment that moved RCV.NXT, so it
        // tells a retransmission's ACK from its original's (RFC 8985 §6.2 step 2).
        loss.sent.acknowledge(una, |s| {
            rack.on_delivered(s, now, predates(s.xmit_ts));
        });
        if sacked {
            let blocks = seg.options.sack_blocks();
            let span = blocks
                .filter(|b| b.left.before(b.right) && b.right.after(una))
                .fold(None, |acc: Option<(SeqNum, SeqNum)>, b| {
                    Some(acc.map_or((b.left, b.right), |(l, r)| (l.min(b.left), r.max(b.right))))
                });
            if let Some((from, to)) = span {
                let board = &loss.scoreboard;
                // A FIN takes a sequence number but no SACK can cover it: a segment counts
                // as SACKed when its bytes are.
                let data_end = self.snd.start + self.snd.buffer.len();
                let covered = |s: SeqNum, e: SeqNum| {
                    let e = e.min(data_end);
                    s.before(e) && board.sacked_in(s, e) == e.distance_from(s)
                };
                loss.sent.mark_sacked(
                    from.max(una),
                    to,
                    covered,
                    // No TSecr test here: an ACK for data beyond a hole echoes the TSval of
                    // the last in-order segment (RFC 7323 §4.3), never the SACKed one's.
                    |s| rack.on_delivered(s, now, None),
                );
            }
        }
        if Self::dsack_end(seg, una).is_some() {
            self.loss.rack.on_dsack(una, self.snd.nxt);
        }
    }

    /// The right edge of the ACK's D-SACK block, if it has one (RFC 2883 §4: the first block
    /// lies at or below the cumulative ACK, or inside the second block).
    fn dsack_end(seg: &TcpRepr, ack: SeqNum) -> Option<SeqNum> {
        Self::dsack_block(seg, ack).map(|block| block.right)
    }

    /// RFC 8985 §7.4: judges the TLP episode in progress by this ACK. A probe that repaired a
    /// loss costs one cwnd reduction, as a fast recovery would have.
    pub(super) fn tlp_on_ack(&mut self, seg: &TcpRepr, ack: SeqNum, news: bool) {
        let Some(episode) = self.loss.rack.tlp else {
            return;
        };
        let facts = AckFacts {
            ack,
            dsack_end: Self::dsack_end(seg, ack),
            news,
        };
        match tlp_outcome(episode, facts) {
            TlpOutcome::Pending => {}
            TlpOutcome::NoLoss => self.loss.rack.tlp = None,
            TlpOutcome::Repaired => {
                self.loss.rack.tlp = None;
                if self.loss.recovery.is_none() {
                    let mss = self.snd.mss;
                    self.loss.cc.on_enter_recovery(episode.flight, mss);
                    self.note_cc(CcCause::RecoveryEnter);
                    self.loss.cc.on_exit_recovery(episode.flight, mss);
                    // A real loss: an older episode's prior must not undo this reduction.
                    self.loss.undo.clear();
                    self.note_cc(CcCause::RecoveryExit);
                    self.stats.loss_probe_repairs += 1;
                }
            }
        }
    }

    /// RFC 8985 §6.2 step 5 and §6.3: marks what RACK finds lost, arms the reordering timer
    /// for the rest, and starts a recovery (RFC 6675 with PRR) when a loss is new.
    pub(super) fn rack_detect(&mut self, now: Instant) {
        if !self.rack_enabled() || !self.state.is_synchronized() {
            return;
        }
        let in_recovery = self.loss.recovery.is_some() || self.loss.rto_recover.is_some();
        let sacked_segments = self.loss.scoreboard.sacked_bytes() / self.snd.mss.max(1);
        let reo_wnd = self
            .loss
            .rack
            .reo_wnd(in_recovery, sacked_segments, self.loss.rtt.srtt());
        let (marked, timeout) = self
            .loss
            .rack
            .detect_loss(&mut self.loss.sent, now, reo_wnd);
        match timeout {
            Some(left) => self.timers.set(Timer::RackReorder, now + left),
            None => self.timers.stop(Timer::RackReorder),
        }
        if marked == 0 {
            return;
        }
        self.stats.rack_marked_lost += marked as u64;
        let after_timeout = self
            .loss
            .rto_recover
            .is_some_and(|point| self.snd.una.before(point));
        if self.loss.recovery.is_none() && !after_timeout {
            self.enter_recovery();
        }
    }

    /// The reordering timer (RFC 8985 §6.3): the window of a segment passed with no ACK.
    /// A recovery it starts counts one segment delivered for PRR (RFC 6937 §3 runs per ACK and
    /// no ACK came; Linux's tcp_rack_reo_timeout does the same), so that PRR-SSRB lets a
    /// segment follow the retransmission: if the retransmission is lost, that segment's ACK
    /// shows RACK the loss, where otherwise only the retransmission timeout would.
    pub(super) fn on_rack_timer(&mut self, now: Instant) {
        let was_recovering = self.loss.recovery.is_some();
        self.rack_detect(now);
        if !was_recovering && self.loss.recovery.is_some() {
            self.update_prr(self.snd.mss);
        }
    }

    /// RFC 8985 §7.2: (re)arms the probe timeout while the connection is in the open state
    /// with data outstanding and no probe pending; otherwise disarms it.
    pub(super) fn schedule_loss_probe(&mut self, now: Instant) {
        let sending = matches!(
            self.state,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::Closing
                | State::LastAck
        );
        let open = self.tlp_enabled()
            && sending
            && self.loss.recovery.is_none()
            && self.loss.rto_recover.is_none()
            && self.snd.una != self.snd.max
            && self.snd.nxt == self.snd.max
            && !self.snd.wnd.is_zero()
            && self.loss.rack.tlp.is_none();
        let rto_at = self.timers.get(Timer::Retransmit);
        let (true, Some(rto_at)) = (open, rto_at) else {
            self.timers.stop(Timer::LossProbe);
            return;
        };
        let one_segment = self.snd.max.distance_from(self.snd.una) <= self.snd.mss;
        let pto = probe_timeout(
            self.loss.rtt.srtt(),
            one_segment,
            rto_at.saturating_duration_since(now),
        );
        self.timers.set(Timer::LossProbe, now + pto);
    }

    /// The probe timeout fired (RFC 8985 §7.3): a probe goes with the next transmission, and
    /// the RTO is re-armed from now so it still backs the probe up.
    pub(super) fn on_loss_probe_timer(&mut self, now: Instant) {
        if self.loss.recovery.is_some()
            || self.loss.rto_recover.is_some()
            || self.snd.una == self.snd.max
            || self.loss.rack.tlp.is_some()
        {
            return;
        }
        self.loss.tlp_due = true;
        self.timers
            .set(Timer::Retransmit, now + self.loss.rtt.rto());
    }

    /// RFC 8985 §7.3: the loss probe, one segment: new data if the peer's window allows it
    /// (cwnd does not matter), else the last segment sent again.
    pub(super) fn emit_loss_probe(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if !std::mem::take(&mut self.loss.tlp_due)
            || self.loss.recovery.is_some()
            || self.snd.una == self.snd.max
            || self.snd.nxt != self.snd.max
        {
            return None;
        }
        let flight = self.snd.max.distance_from(self.snd.una);
        let data_end = self.data_end_seq();
        let max = self.snd.max;
        let unsent = data_end.distance_from(max);
        let fin_pending = self.snd.fin_queued && max.before_eq(data_end);
        let wnd_room = (self.snd.una + self.snd.wnd).distance_from(max);
        let max_payload = self
            .snd
            .mss
            .saturating_sub(self.sack_option_len(self.data_options_len()));
        let (len, is_retrans) = if (unsent > 0 && wnd_room > 0) || (unsent == 0 && fin_pending) {
            let len = self.within_one_run(max, unsent.min(wnd_room).min(max_payload));
            let fin = fin_pending && max + len == data_end;
            (self.emit_data_fin(now, max, len, fin, buf), false)
        } else {
            // The segment holding the highest byte sent (its FIN included).
            let data_top = max.min(data_end);
            let back = data_top.distance_from(self.snd.una).min(max_payload);
            let start = data_top - back;
            let (len, fin) = self.retransmission_extent(start, max)?;
            (self.emit_data_fin(now, start, len, fin, buf), true)
        };
        self.loss.rack.tlp = Some(TlpEpisode {
            end_seq: self.snd.max,
            is_retrans,
            flight,
        });
        self.timers.stop(Timer::LossProbe);
        self.stats.loss_probes += 1;
        Some(len)
    }

    /// RACK's part of NextSeg (RFC 8985 §6.2 with RFC 6675): the lowest segment RACK marked
    /// lost goes first, within PRR's allowance (the first of a recovery regardless).
    pub(super) fn emit_rack_retransmission(
        &mut self,
        now: Instant,
        buf: &mut [u8],
    ) -> Option<Option<usize>> {
        let mut rec = self.loss.recovery?;
        if !self.rack_enabled() {
            return None;
        }
        let (start, end) = self.loss.sent.first_lost()?;
        if !rec.forced && self.send_allowance() < self.snd.mss {
            return Some(None);
        }
        let (len, fin) = self.retransmission_extent(start, end)?;
        rec.forced = false;
        rec.high_rxt = rec.high_rxt.max(start + len + usize::from(fin));
        self.loss.recovery = Some(rec);
        self.stats.retransmits_fast += 1;
        self.trace_cause(Rexmit::Rack);
        Some(Some(self.emit_data_fin(now, start, len, fin, buf)))
    }

    /// Stops RACK-TLP's timers and forgets its marks and probe (a retransmission timeout
    /// takes over: go-back-N resends everything).
    pub(super) fn rack_on_timeout(&mut self) {
        self.loss.sent.clear_marks();
        self.loss.rack.tlp = None;
        self.loss.tlp_due = false;
        self.timers.stop(Timer::RackReorder);
        self.timers.stop(Timer::LossProbe);
    }
}
