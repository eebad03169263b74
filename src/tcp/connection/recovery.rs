//! ACK processing and loss recovery: RTT samples, duplicate ACKs, SACK loss detection, the pipe,
//! what to retransmit next, and the retransmission timeout.

use std::time::{Duration, Instant};

use super::{ConnEvent, Connection, Recovery};
use crate::tcp::timers::Timer;
use crate::tcp::undo::Reduction;
use crate::tcp::DUP_THRESH;
use crate::trace::CcCause;
use crate::wire::{Control, SeqNum, TcpRepr};

impl Connection {
    pub(super) fn sample_rtt_from(&mut self, now: Instant, seg: &TcpRepr, timed: Option<SeqNum>) {
        if self.opts.timestamps {
            if let Some(ts) = seg.options.timestamps {
                if ts.echo != 0 {
                    // RFC 7323 §4.2 makes a TSecr sample a MAY. After a timeout, an echo older
                    // than the timeout comes from a segment whose ACK was lost and that the
                    // peer saw again as a duplicate: it measures our backoff, not the path.
                    if let Some(at) = self.loss.timeout_ts {
                        if (ts.echo.wrapping_sub(at) as i32) < 0 {
                            return;
                        }
                        self.loss.timeout_ts = None;
                    }
                    let elapsed = self.ts_now(now).wrapping_sub(ts.echo);
                    // Ignore nonsense echoes (RFC 7323 §4.2 sanity: not from the future, < 1 h).
                    if (elapsed as i32) >= 0 && elapsed < 3_600_000 {
                        self.loss
                            .rtt
                            .on_sample(Duration::from_millis(u64::from(elapsed.max(1))));
                        return;
                    }
                }
            }
        }
        if let (Some((seq, sent)), Some(ack)) = (self.loss.rtt_probe, seg.ack) {
            if timed.is_some() || ack.after(seq) {
                self.loss.rtt.on_sample(now.duration_since(sent));
                self.loss.rtt_probe = None;
            }
        }
    }

    pub(super) fn process_ack(&mut self, now: Instant, seg: &TcpRepr, ack: SeqNum) {
        // Blocks at or below the new cumulative ACK say nothing new (they are D-SACKs or
        // stale): only bytes above it count as newly SACKed.
        let floor = if ack.after(self.snd.una) && ack.before_eq(self.snd.max) {
            ack
        } else {
            self.snd.una
        };
        let newly_sacked = if self.opts.sack {
            self.loss
                .scoreboard
                .update(seg.options.sack_blocks(), floor, self.snd.max)
        } else {
            0
        };
        self.rack_on_ack(now, seg, floor, newly_sacked > 0);
        let window = self.opts.snd_scale.apply(seg.window);
        let window_changed = window != self.snd.wnd;
        // RFC 9293 §3.10.7.4: update the send window only from newer segments.
        if self.snd.wl1.before(seg.seq) || (self.snd.wl1 == seg.seq && self.snd.wl2.before_eq(ack))
        {
            self.snd.wnd = window;
            self.snd.max_wnd = self.snd.max_wnd.max(window);
            self.snd.wl1 = seg.seq;
            self.snd.wl2 = ack;
            if !window.is_zero() {
                self.timers.stop(Timer::Persist);
            }
        }

        if window.is_zero() {
            // The peer answers while its window is closed, typically our zero-window probes:
            // it is alive, so the probes must not run out the retries nor the user timeout
            // (RFC 9293 §3.8.6.1; RFC 1122 §4.2.2.17: the connection MUST stay open).
            self.loss.retries = 0;
            if self.timers.is_set(Timer::User) {
                self.timers.set(Timer::User, now + self.config.user_timeout);
            }
        }
        // RFC 6675 §2: with SACK, an ACK that SACKs bytes not SACKed before is a duplicate ACK
        // whatever else it does (carry data, change the window, move the cumulative ACK).
        let sack_dup = newly_sacked > 0 && !window.is_zero();
        let una_before = self.snd.una;
        let dup_acks_before = self.stats.dup_acks_in;
        let mut estimated = 0;
        if ack.after(self.snd.una) {
            self.on_new_ack(now, seg, ack);
            // §5: the cumulative ACK reset DupAcks; one that is also a DupAck counts at once,
            // so IsLost(HighACK + 1) can start recovery without waiting for more ACKs (when
            // the ACKs in between were lost, or the receiver stretches its ACKs).
            if sack_dup && self.loss.recovery.is_none() && self.snd.una != self.snd.max {
                self.on_duplicate_ack(newly_sacked);
            }
        } else if ack == self.snd.una
            && self.snd.una != self.snd.max
            && !window.is_zero()
            && (sack_dup
                || (seg.payload.is_empty() && seg.control == Control::None && !window_changed))
        {
            // A closed window answering a probe says nothing about loss: only ACKs that leave
            // room for the outstanding data count as duplicates (RFC 5681 §2).
            self.on_duplicate_ack(newly_sacked);
            if !self.opts.sack {
                // RFC 6937 §3: without SACK, a duplicate ACK stands for one segment delivered.
                estimated = self.snd.mss;
            }
        }
        let duplicate = self.stats.dup_acks_in > dup_acks_before;
        self.undo_on_ack(now, seg, ack, una_before, duplicate);
        let advanced = if ack.after(una_before) {
            ack.distance_from(una_before)
        } else {
            0
        };
        let news = advanced > 0 || newly_sacked > 0 || !seg.payload.is_empty() || window_changed;
        self.tlp_on_ack(seg, ack, news);
        self.rack_detect(now);
        self.update_prr(advanced + newly_sacked + estimated);
        self.fin_acknowledged_transitions(now);
        // RFC 8985 §7.2: restart the probe timeout when new data is acknowledged.
        if advanced > 0 || !self.timers.is_set(Timer::LossProbe) {
            self.schedule_loss_probe(now);
        } else if self.loss.recovery.is_some() {
            self.timers.stop(Timer::LossProbe);
        }
    }

    pub(super) fn on_new_ack(&mut self, now: Instant, seg: &TcpRepr, ack: SeqNum) {
        let acked = ack.distance_from(self.snd.una);
        self.sample_rtt_from(now, seg, None);
        // Drop acknowledged payload: sequence space also counts our SYN and FIN.
        let data_acked = ack.min(self.data_end_seq()).distance_from(self.snd.start);
        self.snd.buffer.acknowledge(data_acked);
        self.snd.start += data_acked;
        self.snd.una = ack;
        if self.snd.nxt.before(ack) {
            self.snd.nxt = ack;
        }
        self.loss.scoreboard.advance(ack);
        self.loss.retries = 0;
        self.loss.soft_error = None;
        self.snd.probe_due = false;
        if self
            .loss
            .rto_recover
            .is_some_and(|point| ack.after_eq(point))
        {
            self.loss.rto_recover = None;
            self.loss.rack.on_recovery_exit();
        }

        let flight = self.snd.max.distance_from(self.snd.una);
        match self.loss.recovery {
            Some(rec) if ack.after_eq(rec.point) => {
                // RFC 6937 §3: with PRR (our SACK recovery) cwnd ends at ssthresh, as in Linux;
                // the ACK that ends recovery may leave a flight far below it (ACKs come in
                // bursts), and RFC 6582's min(ssthresh, FlightSize + SMSS) would then shrink
                // the window each time.
                let exit_flight = if self.opts.sack {
                    self.loss.cc.ssthresh()
                } else {
                    flight
                };
                self.loss.cc.on_exit_recovery(exit_flight, self.snd.mss);
                self.note_cc(CcCause::RecoveryExit);
                self.loss.recovery = None;
                self.loss.dup_acks = 0;
                self.loss.rack.on_recovery_exit();
            }
            Some(mut rec) => {
                // Partial ACK (RFC 6582 §3.2 step 5): the next hole is lost too.
                if !self.opts.sack {
                    rec.high_rxt = ack;
                    rec.forced = true;
                    self.loss.dup_acks = self
                        .loss
                        .dup_acks
                        .saturating_sub((acked / self.snd.mss.max(1)) as u32);
                }
                rec.high_rxt = rec.high_rxt.max(ack);
                self.loss.recovery = Some(rec);
            }
            None => {
                self.loss.dup_acks = 0;
                let srtt = self.loss.rtt.srtt();
                self.loss.cc.on_ack(acked, self.snd.mss, now, srtt);
                self.note_cc_ack();
            }
        }

        // RFC 6298 §5.2/5.3: stop the timer when all is acknowledged, else restart it.
        if self.snd.una == self.snd.max {
            self.timers.stop(Timer::Retransmit);
            self.timers.set(Timer::User, now + self.config.user_timeout);
        } else {
            self.timers
                .set(Timer::Retransmit, now + self.loss.rtt.rto());
            self.timers.set(Timer::User, now + self.config.user_timeout);
        }
        self.expand_send_buffer(now, data_acked);
        if self.snd.writable_wanted && self.snd.buffer.free() > 0 {
            self.snd.writable_wanted = false;
            self.events.push_back(ConnEvent::Writable);
        }
    }

    /// Grows the send buffer towards twice the bandwidth-delay product: the rate data was
    /// acknowledged at over the last round trip, times the smallest RTT seen, up to
    /// `TcpConfig::send_buffer_max`. A buffer that limits the sender (the ACKs of all of it
    /// come back a round trip later) measures about its own size and doubles, as Linux's
    /// `tcp_sndbuf_expand` doubles it with cwnd; behind a queue (many connections sharing a
    /// device, whose round trips grow with it) the rate times the smallest RTT is well under
    /// the flight, and the buffer stays put. Sizing by cwnd instead grew
    /// 100 parallel downloads through one TUN to 4 MiB each: 350 MiB held, and 5.1 s for
    /// 3.2 GB where 256 KiB each took 3.1 s.
    fn expand_send_buffer(&mut self, now: Instant, acked: usize) {
        let max = self.config.send_buffer_max;
        if max <= self.snd.buffer.capacity() {
            return;
        }
        let (Some(min_rtt), Some(srtt)) = (self.loss.rtt.min_rtt(), self.loss.rtt.srtt()) else {
            return;
        };
        let Some((since, bytes)) = &mut self.snd.rate else {
            self.snd.rate = Some((now, 0));
            return;
        };
        *bytes += acked;
        let elapsed = now.saturating_duration_since(*since);
        if elapsed < srtt || elapsed.is_zero() {
            return;
        }
        let bdp = *bytes as f64 * min_rtt.as_secs_f64() / elapsed.as_secs_f64();
        self.snd.rate = Some((now, 0));
        let target = (2.0 * bdp).min(max as f64) as usize;
        self.snd.buffer.grow_capacity(target);
    }

    pub(super) fn on_duplicate_ack(&mut self, newly_sacked: usize) {
        self.loss.dup_acks += 1;
        self.stats.dup_acks_in += 1;
        if self.loss.recovery.is_some() {
            return;
        }
        if self
            .loss
            .rto_recover
            .is_some_and(|point| self.snd.una.before(point))
        {
            // Echoes of the flight sent before the timeout: the go-back-N after it repairs
            // those losses, at the slow-start rate.
            return;
        }
        if self.rack_enabled() && self.loss.rack.reordering_seen() {
            // RFC 8985 §6.2: once reordering was seen, counting duplicate ACKs would mistake
            // it for loss; RACK's reordering window judges alone (as in Linux).
            return;
        }
        let sack_says_lost = self.opts.sack
            && newly_sacked > 0
            && self
                .loss
                .scoreboard
                .loss_edge(self.loss_threshold())
                .is_some_and(|edge| edge.after(self.snd.una));
        if self.loss.dup_acks >= DUP_THRESH || sack_says_lost {
            self.enter_recovery();
        }
    }

    /// RFC 5681 §3.2 / RFC 6675 §5 (or RACK, RFC 8985 §6.2): fast retransmit and enter
    /// recovery. A tail loss probe in progress is settled by this recovery.
    pub(super) fn enter_recovery(&mut self) {
        let flight = self.snd.max.distance_from(self.snd.una);
        let peak = self.congestion_flight();
        self.undo_begin(Reduction::FastRecovery);
        self.loss.cc.on_enter_recovery(peak, self.snd.mss);
        self.note_cc(CcCause::RecoveryEnter);
        self.stats.recoveries += 1;
        self.loss.rtt_probe = None;
        self.loss.rack.tlp = None;
        self.loss.tlp_due = false;
        self.timers.stop(Timer::LossProbe);
        self.loss.recovery = Some(Recovery {
            point: self.snd.max,
            high_rxt: self.snd.una,
            forced: true,
            rescued: false,
            prr_delivered: 0,
            prr_out: 0,
            recover_fs: flight,
            sndcnt: 0,
        });
    }

    /// FlightSize for a congestion event (RFC 5681 §3.1 equation 4, RFC 9438 §4.6): the most
    /// that was outstanding since the previous event, not what the ACK that revealed the loss
    /// left. ACKs arrive in bursts and are all taken before the sender refills, so the flight
    /// right then may be a fraction of the window that was full a moment ago; halving that
    /// (Linux uses cwnd) left ssthresh at two segments and the recovery with nothing new to
    /// send, so a lost retransmission could only be found by the RTO. Starts over from the
    /// current flight.
    fn congestion_flight(&mut self) -> usize {
        let flight = self.snd.max.distance_from(self.snd.una);
        std::mem::replace(&mut self.loss.flight_peak, flight).max(flight)
    }

    pub(super) fn loss_threshold(&self) -> usize {
        (DUP_THRESH as usize - 1) * self.snd.mss
    }

    /// Bytes we may still send under cwnd; RFC 6675 "pipe" during recovery.
    pub(super) fn pipe(&self) -> usize {
        let outstanding = self.snd.nxt.distance_from(self.snd.una);
        let sacked = self.loss.scoreboard.sacked_in(self.snd.una, self.snd.nxt);
        let Some(rec) = self.loss.recovery else {
            return outstanding.saturating_sub(sacked);
        };
        let (edge, dup_credit) = self.lost_edge(rec);
        // Lost and not yet retransmitted bytes are not in the network.
        let lost_from = rec.high_rxt.max(self.snd.una);
        let mut lost = if lost_from.before(edge) {
            edge.distance_from(lost_from) - self.loss.scoreboard.sacked_in(lost_from, edge)
        } else {
            0
        };
        if self.rack_enabled() {
            // What RACK marked lost beyond that range (RFC 8985 §6.2 feeds the same pipe).
            lost += self.loss.sent.lost_bytes_outside(lost_from, edge);
        }
        outstanding.saturating_sub(sacked + lost + dup_credit)
    }

    /// Where un-SACKed bytes stop counting as lost, and (without SACK) the bytes the duplicate
    /// ACKs say have left the network, as Linux estimates them.
    pub(super) fn lost_edge(&self, rec: Recovery) -> (SeqNum, usize) {
        if self.opts.sack {
            // Once reordering was seen, RACK alone marks losses (see `on_duplicate_ack`).
            let rack_alone = self.rack_enabled() && self.loss.rack.reordering_seen();
            let edge = if rack_alone {
                self.snd.una
            } else {
                self.loss
                    .scoreboard
                    .loss_edge(self.loss_threshold())
                    .unwrap_or(self.snd.una)
            };
            // Fast retransmit always resends the first segment (RFC 6675 §5 step 4.3); later
            // on, only SACK evidence (IsLost) marks a segment lost.
            let first = (self.snd.una + self.snd.mss).min(self.snd.max);
            (edge.max(if rec.forced { first } else { self.snd.una }), 0)
        } else {
            let first = (self.snd.una + self.snd.mss).min(self.snd.max);
            (first, self.loss.dup_acks as usize * self.snd.mss)
        }
    }

    pub(super) fn on_retransmit_timeout(&mut self, now: Instant) {
        let limit = if self.state.is_synchronized() {
            self.config.data_retries
        } else {
            self.config.syn_retries
        };
        if self.loss.retries >= limit {
            let err = self.timeout_error();
            let rst = self.state.is_synchronized();
            self.enter_closed(Some(err));
            self.rst_due = rst;
            return;
        }
        self.loss.retries += 1;
        if self.state.is_synchronized() && self.snd.wnd.is_zero() && self.snd.una != self.snd.max {
            // The peer's window is closed: what timed out is a zero-window probe, which says
            // nothing about congestion (RFC 9293 §3.8.6.1, RFC 1122 §4.2.2.17). Probe again
            // after a backed-off interval; cwnd, ssthresh and the SACK record stay, and
            // `retries` counts only probes the peer left unanswered.
            // The interval backs off, but stays within half the user timeout so that a peer
            // that answers is heard from before that timer runs out (as Linux clamps probe0).
            self.loss.rtt.on_timeout();
            self.loss.rtt_probe = None;
            self.snd.nxt = self.snd.una;
            self.snd.probe_due = true;
            let interval = self.loss.rtt.rto().min(self.config.user_timeout / 2);
            self.timers.set(Timer::Retransmit, now + interval);
            return;
        }
        self.stats.timeouts += 1;
        self.rack_on_timeout();
        let flight = self.snd.max.distance_from(self.snd.una);
        let peak = self.congestion_flight();
        if self.state.is_synchronized() && flight > 0 {
            self.undo_on_timeout();
            self.loss.cc.on_timeout(peak, self.snd.mss);
            self.note_cc(CcCause::Rto);
        }
        self.loss.rtt.on_timeout();
        self.loss.rtt_probe = None;
        self.loss.timeout_ts = Some(self.ts_now(now));
        self.loss.recovery = None;
        if self.state.is_synchronized() {
            self.loss.rto_recover = Some(self.snd.max);
        }
        self.loss.dup_acks = 0;
        self.loss.scoreboard.clear();
        // Go back N: everything from SND.UNA is sent again as the window allows.
        self.snd.nxt = self.snd.una;
        if self.snd.wnd.is_zero() && self.snd.una != self.snd.max {
            self.snd.probe_due = true;
        }
        self.timers
            .set(Timer::Retransmit, now + self.loss.rtt.rto());
    }

    /// SACK/NewReno recovery: retransmit the next lost hole if the pipe allows (RFC 6675 §5
    /// NextSeg rule 1, or RFC 6582's retransmission on a partial ACK).
    pub(super) fn emit_recovery_retransmission(
        &mut self,
        now: Instant,
        buf: &mut [u8],
    ) -> Option<usize> {
        if let Some(sent) = self.emit_rack_retransmission(now, buf) {
            return sent;
        }
        let mut rec = self.loss.recovery?;
        let (edge, _) = self.lost_edge(rec);
        let from = rec.high_rxt.max(self.snd.una);
        let (start, hole_end) = self
            .loss
            .scoreboard
            .next_hole(from, edge.min(self.snd.max))?;
        if !rec.forced && !self.room_for_a_segment() {
            return None;
        }
        let (len, fin) = self.retransmission_extent(start, hole_end)?;
        rec.forced = false;
        rec.high_rxt = start + len + usize::from(fin);
        self.loss.recovery = Some(rec);
        self.stats.retransmits_fast += 1;
        Some(self.emit_data_fin(now, start, len, fin, buf))
    }

    /// RFC 6675 §4 NextSeg rules 3 and 4, when rule 1 found no lost segment and rule 2 no new
    /// data (the application or the peer's window holds it back), and cwnd has room:
    /// - rule 3: the first un-SACKed hole above HighRxt and below the highest SACKed byte, lost
    ///   or not, so a hole with too few SACKs above it to count as lost is not left to the
    ///   retransmission timer;
    /// - rule 4, the rescue retransmission: once per recovery, the segment holding the highest
    ///   outstanding byte when nothing is SACKed above it (a lost tail never draws SACKs).
    ///   HighRxt stays, as the rule says. Only a tail above HighRxt is rescued: resending a
    ///   segment rule 1 or 3 already sent again would repair nothing new.
    pub(super) fn emit_recovery_extra(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let mut rec = self.loss.recovery?;
        if !self.opts.sack || !self.room_for_a_segment() {
            return None;
        }
        let from = rec.high_rxt.max(self.snd.una);
        let highest_sacked = self.loss.scoreboard.highest();
        if let Some((start, hole_end)) =
            highest_sacked.and_then(|top| self.loss.scoreboard.next_hole(from, top))
        {
            let (len, fin) = self.retransmission_extent(start, hole_end)?;
            rec.high_rxt = start + len + usize::from(fin);
            self.loss.recovery = Some(rec);
            self.stats.retransmits_fast += 1;
            return Some(self.emit_data_fin(now, start, len, fin, buf));
        }
        if rec.rescued {
            return None;
        }
        let top = self.snd.max;
        let floor = highest_sacked.unwrap_or(self.snd.una).max(from);
        if !floor.before(top) {
            return None;
        }
        // The last segment's worth below SND.MAX (its FIN included, which takes no payload).
        let data_top = top.min(self.data_end_seq());
        let max_payload = self.max_retransmit_payload();
        let back = data_top.distance_from(floor).min(max_payload);
        let start = if floor.before(data_top) {
            data_top - back
        } else {
            floor
        };
        let (len, fin) = self.retransmission_extent(start, top)?;
        rec.rescued = true;
        self.loss.recovery = Some(rec);
        self.stats.retransmits_fast += 1;
        Some(self.emit_data_fin(now, start, len, fin, buf))
    }

    /// Whether one more full segment may go: within PRR's allowance during recovery, else
    /// within cwnd (RFC 6675 §5 step (C)).
    fn room_for_a_segment(&self) -> bool {
        self.send_allowance() >= self.snd.mss
    }

    /// Bytes that may be sent now: in recovery what PRR allows (RFC 6937), else cwnd - pipe.
    pub(super) fn send_allowance(&self) -> usize {
        match self.loss.recovery {
            Some(rec) => rec.sndcnt,
            // F-RTO's new segments after a timeout (RFC 5682 §3.1 step 2b) go whatever cwnd says.
            None => self
                .frto_allowance()
                .unwrap_or_else(|| self.loss.cc.window().saturating_sub(self.pipe())),
        }
    }

    /// RFC 6937 §3, on each ACK during recovery: how much may be sent in answer. While pipe
    /// is above ssthresh, in proportion to what was delivered (so the reduction is spread over
    /// the round trip instead of a silence followed by a burst); below it, PRR-SSRB: catch up
    /// towards ssthresh, at most one segment beyond what was delivered.
    pub(super) fn update_prr(&mut self, delivered: usize) {
        let Some(mut rec) = self.loss.recovery else {
            return;
        };
        rec.prr_delivered += delivered;
        let pipe = self.pipe();
        // In whole segments, as Linux counts (in packets): a reduction to, say, 2.8 segments
        // must still let the third go, or a small window has room for nothing beyond the
        // fast retransmission, and when that is lost only the RTO finds it (nothing sent
        // after it comes back to show RACK the loss).
        let ssthresh = self.loss.cc.ssthresh();
        let mss = self.snd.mss.max(1);
        let ssthresh = ssthresh.checked_next_multiple_of(mss).unwrap_or(ssthresh);
        rec.sndcnt = if pipe > ssthresh {
            let due = (rec.prr_delivered as u128 * ssthresh as u128)
                .div_ceil(rec.recover_fs.max(1) as u128) as usize;
            due.saturating_sub(rec.prr_out)
        } else {
            let limit = rec.prr_delivered.saturating_sub(rec.prr_out).max(delivered) + self.snd.mss;
            (ssthresh - pipe).min(limit)
        };
        self.loss.recovery = Some(rec);
    }

    /// PRR's accounting of a segment sent during recovery (RFC 6937: prr_out).
    pub(super) fn count_recovery_send(&mut self, len: usize) {
        if let Some(rec) = &mut self.loss.recovery {
            rec.prr_out += len;
            rec.sndcnt = rec.sndcnt.saturating_sub(len);
        }
    }

    /// Payload bytes a retransmission may carry next to its options (SACK blocks included).
    fn max_retransmit_payload(&self) -> usize {
        self.snd
            .mss
            .saturating_sub(self.sack_option_len(self.data_options_len()))
    }

    /// How much of the hole `start..hole_end` one retransmission covers, and whether it carries
    /// the FIN: the hole may end with (or be only) our FIN, which has a sequence number but no
    /// byte in the send buffer. `None` if there is nothing to send.
    pub(super) fn retransmission_extent(
        &self,
        start: SeqNum,
        hole_end: SeqNum,
    ) -> Option<(usize, bool)> {
        let data_end = self.data_end_seq();
        let len = hole_end
            .distance_from(start)
            .min(self.max_retransmit_payload())
            .min(data_end.distance_from(start))
            .min(
                self.snd
                    .buffer
                    .contiguous(start.distance_from(self.snd.start)),
            );
        let fin = self.snd.fin_queued && start + len == data_end && hole_end.after(data_end);
        (len > 0 || fin).then_some((len, fin))
    }
}
