//! RACK-TLP loss detection (RFC 8985) for the sender, as pure state: the connection feeds it
//! what it sent and what the peer acknowledged, with the time, and acts on its answers.
//!
//! - RACK (§6): a segment is lost once a segment sent after it was delivered and a reordering
//!   window has passed since; time, not a count of duplicate ACKs, decides, so a lost
//!   retransmission or a lost segment near the end of a short flight is found too.
//! - TLP (§7): when the ACKs stop with data outstanding, one probe at about two round trips
//!   draws the ACK (or SACK) that lets RACK see a lost tail, instead of waiting for the RTO.
//!
//! Nothing here reads a clock: every time comes in as an argument.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::DUP_THRESH;
use crate::wire::SeqNum;

/// Worst-case delayed-ACK time a probe of a single segment must allow for (RFC 8985 §7.2
/// WCDelAckT: 200 ms, what Linux's delayed ACK may reach).
pub const WORST_CASE_DELAYED_ACK: Duration = Duration::from_millis(200);

/// PTO before any RTT sample (RFC 8985 §7.2).
pub const INITIAL_PTO: Duration = Duration::from_secs(1);

/// How many recoveries an enlarged reordering window outlives a D-SACK (RFC 8985 §6.2 step 4:
/// 16), so one burst of reordering does not widen it for good.
const REO_WND_PERSIST: u32 = 16;

/// One transmission of a range of sequence space, the per-segment record RACK needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentSegment {
    /// First sequence number.
    pub start: SeqNum,
    /// One past the last sequence number (a FIN counts).
    pub end: SeqNum,
    /// When it was (last) sent: RACK compares these times.
    pub xmit_ts: Instant,
    /// It was sent more than once, so an ACK for it may be for an earlier copy (RFC 8985 §6.2
    /// step 2 then needs the timestamp or min_RTT check).
    pub retransmitted: bool,
    /// The peer SACKed all of it.
    pub sacked: bool,
    /// RACK marked it lost and it has not been retransmitted since.
    pub lost: bool,
}

impl SentSegment {
    fn len(&self) -> usize {
        self.end.distance_from(self.start)
    }
}

/// The segments sent and not yet cumulatively acknowledged, in sequence order, disjoint.
/// A retransmission overwrites the part of the records it covers.
#[derive(Debug, Default, Clone)]
pub struct SentLog {
    segments: VecDeque<SentSegment>,
    /// The highest end of any retransmission recorded: beyond it every record was sent once,
    /// in sequence order, so its sending times only grow (see `RackState::detect_loss`).
    retransmitted_to: Option<SeqNum>,
}

impl SentLog {
    /// Records a transmission of `[start, end)` at `now`; `retransmitted` when any of it was
    /// sent before. Whatever older records said about that range is replaced.
    pub fn on_send(&mut self, start: SeqNum, end: SeqNum, now: Instant, retransmitted: bool) {
        if !start.before(end) {
            return;
        }
        if retransmitted {
            self.retransmitted_to = Some(self.retransmitted_to.map_or(end, |to| to.max(end)));
        }
        let record = SentSegment {
            start,
            end,
            xmit_ts: now,
            retransmitted,
            sacked: false,
            lost: false,
        };
        // The common case: new data after everything recorded.
        if self.segments.back().is_none_or(|s| s.end.before_eq(start)) {
            self.segments.push_back(record);
            return;
        }
        let first = self.segments.partition_point(|s| s.end.before_eq(start));
        let mut at = first;
        let mut tail = None;
        while let Some(s) = self.segments.get(at).copied() {
            if !s.start.before(end) {
                break;
            }
            if s.end.after(end) {
                tail = Some(SentSegment { start: end, ..s });
            }
            if s.start.before(start) {
                // Keep the part below the new record.
                self.segments[at].end = start;
                at += 1;
            } else {
                self.segments.remove(at);
            }
        }
        self.segments.insert(at, record);
        if let Some(tail) = tail {
            self.segments.insert(at + 1, tail);
        }
    }

    /// Removes what `una` cumulatively acknowledges; `delivered` sees each removed record that
    /// the peer had not SACKed before (those are newly delivered), in sequence order.
    pub fn acknowledge(&mut self, una: SeqNum, mut delivered: impl FnMut(&SentSegment)) {
        // Forgotten once acknowledged, so that it never ages past half the sequence space.
        if self.retransmitted_to.is_some_and(|to| to.before_eq(una)) {
            self.retransmitted_to = None;
        }
        while let Some(front) = self.segments.front_mut() {
            if front.end.before_eq(una) {
                let s = self.segments.pop_front().expect("front exists");
                if !s.sacked {
                    delivered(&s);
                }
            } else {
                if front.start.before(una) {
                    front.start = una;
                }
                break;
            }
        }
    }

    /// Marks SACKed the records inside `[from, to)` that `fully_sacked` says are covered;
    /// `delivered` sees each record newly SACKed.
    pub fn mark_sacked(
        &mut self,
        from: SeqNum,
        to: SeqNum,
        fully_sacked: impl Fn(SeqNum, SeqNum) -> bool,
        mut delivered: impl FnMut(&SentSegment),
    ) {
        let first = self.segments.partition_point(|s| s.end.before_eq(from));
        for s in self.segments.iter_mut().skip(first) {
            if !s.start.before(to) {
                break;
            }
            if !s.sacked && fully_sacked(s.start, s.end) {
                s.sacked = true;
                s.lost = false;
                delivered(s);
            }
        }
    }

    /// Forgets SACK and loss marks (after a retransmission timeout: the receiver may have
    /// reneged, RFC 2018 §8, and go-back-N resends everything anyway).
    pub fn clear_marks(&mut self) {
        for s in &mut self.segments {
            s.sacked = false;
            s.lost = false;
        }
    }

    /// Forgets the loss marks but not the SACK marks (a recovery was undone as spurious: RACK
    /// marks again what is still missing once its reordering window passes).
    pub fn clear_lost_marks(&mut self) {
        for s in &mut self.segments {
            s.lost = false;
        }
    }

    /// Forgets everything (the connection will send nothing more that RACK should judge).
    pub fn clear(&mut self) {
        self.segments.clear();
        self.retransmitted_to = None;
    }

    /// The lowest record RACK marked lost that is still to be retransmitted.
    pub fn first_lost(&self) -> Option<(SeqNum, SeqNum)> {
        self.segments
            .iter()
            .find(|s| s.lost)
            .map(|s| (s.start, s.end))
    }

    /// Bytes marked lost and not retransmitted that lie outside `[from, to)`, for the pipe
    /// (RFC 6675 counts lost bytes as out of the network; `[from, to)` is what the caller
    /// already counted).
    pub fn lost_bytes_outside(&self, from: SeqNum, to: SeqNum) -> usize {
        self.segments
            .iter()
            .filter(|s| s.lost)
            .map(|s| {
                let (a, b) = (s.start.max(from), s.end.min(to));
                let inside = if a.before(b) { b.distance_from(a) } else { 0 };
                s.len() - inside
            })
            .sum()
    }

    /// How many records there are (for tests and limits).
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    /// True when nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }
}

/// RACK_sent_after (RFC 8985 §6.2): whether (t1, seq1) was sent after (t2, seq2); segments
/// sent in one burst share a time, and the higher one counts as later.
pub fn sent_after(t1: Instant, seq1: SeqNum, t2: Instant, seq2: SeqNum) -> bool {
    t1 > t2 || (t1 == t2 && seq1.after(seq2))
}

/// The TLP probe timeout (RFC 8985 §7.2): two round trips, plus the worst-case delayed ACK
/// when a single segment is in flight (its ACK may be delayed), never later than the RTO
/// would fire (`rto_left`).
pub fn probe_timeout(srtt: Option<Duration>, one_segment: bool, rto_left: Duration) -> Duration {
    let pto = match srtt {
        Some(srtt) if one_segment => srtt * 2 + WORST_CASE_DELAYED_ACK,
        Some(srtt) => srtt * 2,
        None => INITIAL_PTO,
    };
    pto.min(rto_left)
}

/// A TLP episode (RFC 8985 §7.4): the probe went out and its outcome is not known yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlpEpisode {
    /// TLP.end_seq: SND.NXT after the probe.
    pub end_seq: SeqNum,
    /// TLP.is_retrans: the probe resent the last segment (no new data could go).
    pub is_retrans: bool,
    /// The flight when the probe went, for the one cwnd reduction if it repaired a loss.
    pub flight: usize,
}

/// What an ACK says about an outstanding TLP episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlpOutcome {
    /// Still unknown: keep waiting (and send no other probe).
    Pending,
    /// The episode is over and no loss is known (new data probe, D-SACK, or pure dupack).
    NoLoss,
    /// The probe repaired a loss: reduce cwnd once, as a fast recovery would.
    Repaired,
}

/// The facts about one ACK that TLP loss detection needs (RFC 8985 §7.4.2).
#[derive(Debug, Clone, Copy)]
pub struct AckFacts {
    /// The cumulative acknowledgement.
    pub ack: SeqNum,
    /// The right edge of a D-SACK block, if the ACK carries one.
    pub dsack_end: Option<SeqNum>,
    /// It moved SND.UNA, SACKed something new, carried data or changed the window.
    pub news: bool,
}

/// TLP_process_ack (RFC 8985 §7.4.2, in Linux's order): judges an ACK against an episode.
pub fn tlp_outcome(episode: TlpEpisode, facts: AckFacts) -> TlpOutcome {
    if facts.ack.before(episode.end_seq) {
        return TlpOutcome::Pending;
    }
    if !episode.is_retrans {
        // A probe of new data: it was delivered; RACK judges anything before it.
        TlpOutcome::NoLoss
    } else if facts.dsack_end == Some(episode.end_seq) {
        // The original and the probe both arrived: the probe was not needed.
        TlpOutcome::NoLoss
    } else if facts.ack.after(episode.end_seq) {
        // Data beyond the probe is acknowledged and no D-SACK came for it: the original
        // was lost and the probe repaired it.
        TlpOutcome::Repaired
    } else if !facts.news {
        // A pure duplicate ACK at the probe's end: the receiver already had it.
        TlpOutcome::NoLoss
    } else {
        TlpOutcome::Pending
    }
}

/// RACK's per-connection state (RFC 8985 §6.1 and §7.1).
#[derive(Debug, Clone)]
pub struct RackState {
    /// RACK.xmit_ts and RACK.end_seq: the most recently sent segment that was delivered.
    latest: Option<(Instant, SeqNum)>,
    /// RACK.rtt: the RTT measured with that segment.
    rtt: Duration,
    /// RACK.min_RTT: the least RTT RACK measured. Only its own samples count: they have the
    /// resolution of `Instant`, while a timestamp sample is whole milliseconds and may read
    /// up to one more than the path's true minimum, which would make the `rtt < min_RTT` test
    /// reject a retransmission's genuine ACK.
    min_rtt: Option<Duration>,
    /// RACK.fack: the highest end of any segment delivered.
    fack: Option<SeqNum>,
    /// RACK.reordering_seen: a segment was delivered below one delivered earlier, without
    /// having been retransmitted.
    reordering_seen: bool,
    /// RACK.reo_wnd_mult: D-SACKs (spurious retransmissions) widen the window ...
    reo_wnd_mult: u32,
    /// ... for this many recoveries (RACK.reo_wnd_persist) ...
    reo_wnd_persist: u32,
    /// ... at most once per round trip (RACK.dsack_round).
    dsack_round: Option<SeqNum>,
    /// The TLP episode in progress, if any.
    pub tlp: Option<TlpEpisode>,
}

impl Default for RackState {
    fn default() -> Self {
        RackState {
            latest: None,
            rtt: Duration::ZERO,
            min_rtt: None,
            fack: None,
            reordering_seen: false,
            reo_wnd_mult: 1,
            reo_wnd_persist: 0,
            dsack_round: None,
            tlp: None,
        }
    }
}

impl RackState {
    /// Takes an RTT sample into RACK.min_RTT.
    pub fn note_rtt(&mut self, rtt: Duration) {
        self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
    }

    /// RACK.min_RTT, once there is one.
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }

    /// Whether reordering was seen; once it was, RACK alone judges loss (as Linux does).
    pub fn reordering_seen(&self) -> bool {
        self.reordering_seen
    }

    /// RACK_update and RACK_detect_reordering (RFC 8985 §6.2 steps 2 and 3) for one segment
    /// newly delivered at `now`. `echo_predates` says the ACK's TSecr is older than the
    /// segment's last transmission (`None` without timestamps): then the ACK answers an
    /// earlier copy and says nothing about this one.
    pub fn on_delivered(&mut self, seg: &SentSegment, now: Instant, echo_predates: Option<bool>) {
        if let Some(fack) = self.fack {
            if seg.end.after(fack) {
                self.fack = Some(seg.end);
            } else if seg.end.before(fack) && !seg.retransmitted {
                self.reordering_seen = true;
            }
        } else {
            self.fack = Some(seg.end);
        }
        let rtt = now.saturating_duration_since(seg.xmit_ts);
        if seg.retransmitted {
            if echo_predates == Some(true) {
                return;
            }
            // RFC 8985 §6.2 step 2: an ACK sooner than min_RTT after the retransmission must
            // be the original's. The test allows an eighth: min_RTT comes from segments sent
            // in bursts, each waiting for the ones before it at the bottleneck, while a
            // retransmission usually goes alone and may come back slightly faster. An
            // original's ACK comes far sooner (at least RACK.reo_wnd or a PTO too soon).
            if self.min_rtt.is_some_and(|min| rtt < min - min / 8) {
                return;
            }
        }
        self.rtt = rtt;
        if !seg.retransmitted {
            self.note_rtt(rtt);
        }
        let newer = self
            .latest
            .is_none_or(|(ts, end)| sent_after(seg.xmit_ts, seg.end, ts, end));
        if newer {
            self.latest = Some((seg.xmit_ts, seg.end));
        }
    }

    /// RFC 8985 §6.2 step 4, the D-SACK part: a D-SACK (a spurious retransmission) widens
    /// the reordering window by one min_RTT/4 step, at most once per round trip.
    pub fn on_dsack(&mut self, snd_una: SeqNum, snd_nxt: SeqNum) {
        if self
            .dsack_round
            .is_some_and(|round| snd_una.after_eq(round))
        {
            self.dsack_round = None;
        }
        if self.dsack_round.is_none() {
            self.dsack_round = Some(snd_nxt);
            self.reo_wnd_mult = self.reo_wnd_mult.saturating_add(1);
            self.reo_wnd_persist = REO_WND_PERSIST;
        }
    }

    /// A recovery (fast or RTO) ended: after `REO_WND_PERSIST` of them without D-SACK the
    /// window returns to its base size.
    pub fn on_recovery_exit(&mut self) {
        self.reo_wnd_persist = self.reo_wnd_persist.saturating_sub(1);
        if self.reo_wnd_persist == 0 {
            self.reo_wnd_mult = 1;
        }
    }

    /// RACK.reo_wnd (RFC 8985 §6.2 step 4): while no reordering was seen, zero in recovery
    /// or once DupThresh segments are SACKed (RACK then acts like the duplicate-ACK rule);
    /// else min_RTT/4 per step, never above SRTT.
    pub fn reo_wnd(
        &self,
        in_recovery: bool,
        sacked_segments: usize,
        srtt: Option<Duration>,
    ) -> Duration {
        if !self.reordering_seen && (in_recovery || sacked_segments >= DUP_THRESH as usize) {
            return Duration::ZERO;
        }
        let base = self.min_rtt.unwrap_or(Duration::ZERO) / 4 * self.reo_wnd_mult;
        match srtt {
            Some(srtt) => base.min(srtt),
            None => base,
        }
    }

    /// RACK_detect_loss (RFC 8985 §6.2 step 5): marks lost every unSACKed segment sent
    /// before the latest delivered one whose time (RACK.rtt + `reo_wnd` after it was sent)
    /// is up. Returns how many were newly marked, and when the last of the others is due
    /// (RFC 8985 §6.3 arms the reordering timer for it; it re-runs this, so earlier ones are
    /// caught by then too).
    pub fn detect_loss(
        &self,
        log: &mut SentLog,
        now: Instant,
        reo_wnd: Duration,
    ) -> (usize, Option<Duration>) {
        let Some((latest_ts, latest_end)) = self.latest else {
            return (0, None);
        };
        let mut marked = 0;
        let mut timeout: Option<Duration> = None;
        let retransmitted_to = log.retransmitted_to;
        for seg in log.segments.iter_mut() {
            if !sent_after(latest_ts, latest_end, seg.xmit_ts, seg.end) {
                // Records sent once are in sending order (new data goes out in sequence), so
                // past the last retransmission none after this one is older either: stop, as
                // Linux's walk of its time-sorted queue does. Without this every ACK of a
                // clean bulk transfer scanned the whole flight (2,900 records at 4 MiB).
                let only_originals_follow =
                    retransmitted_to.is_none_or(|to| to.before_eq(seg.start));
                if !seg.retransmitted && only_originals_follow {
                    break;
                }
                continue;
            }
            if seg.sacked || seg.lost {
                continue;
            }
            let deadline = seg.xmit_ts + self.rtt + reo_wnd;
            if deadline <= now {
                seg.lost = true;
                marked += 1;
            } else {
                let left = deadline - now;
                timeout = Some(timeout.map_or(left, |t| t.max(left)));
            }
        }
        (marked, timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn log_of(t0: Instant, ends: &[(u32, u32, u64)]) -> SentLog {
        let mut log = SentLog::default();
        for &(s, e, at) in ends {
            log.on_send(SeqNum(s), SeqNum(e), t0 + ms(at), false);
        }
        log
    }

    #[test]
    fn a_retransmission_overwrites_part_of_the_records() {
        let t0 = Instant::now();
        let mut log = log_of(t0, &[(0, 100, 0), (100, 200, 0), (200, 300, 0)]);
        log.on_send(SeqNum(50), SeqNum(150), t0 + ms(10), true);
        let spans: Vec<_> = log
            .segments
            .iter()
            .map(|s| (s.start.0, s.end.0, s.retransmitted))
            .collect();
        assert_eq!(
            spans,
            [
                (0, 50, false),
                (50, 150, true),
                (150, 200, false),
                (200, 300, false)
            ]
        );
        let mut seen = Vec::new();
        log.acknowledge(SeqNum(160), |s| seen.push(s.end.0));
        assert_eq!(seen, [50, 150]);
        assert_eq!(log.segments[0].start, SeqNum(160));
    }

    /// Where the last retransmission ended is forgotten once acknowledged: kept, it would age
    /// past half the sequence space and compare the wrong way round.
    #[test]
    fn the_end_of_the_retransmissions_is_forgotten_once_acknowledged() {
        let t0 = Instant::now();
        let mut log = log_of(t0, &[(0, 100, 0), (100, 200, 0)]);
        log.on_send(SeqNum(0), SeqNum(100), t0 + ms(10), true);
        assert_eq!(log.retransmitted_to, Some(SeqNum(100)));
        log.acknowledge(SeqNum(50), |_| {});
        assert_eq!(log.retransmitted_to, Some(SeqNum(100)));
        log.acknowledge(SeqNum(100), |_| {});
        assert_eq!(log.retransmitted_to, None);
    }

    /// How many records `detect_loss` marks at 100 ms (reordering window 0, RTT 10 ms) once
    /// `sacked` is SACKed, in a log of `sent` (start, end, ms) and then `retransmitted`.
    fn marked_after_sack(
        sent: &[(u32, u32, u64)],
        retransmitted: Option<(u32, u32, u64)>,
        sacked: (u32, u32),
    ) -> usize {
        let t0 = Instant::now();
        let now = t0 + ms(100);
        let mut rack = RackState::default();
        rack.note_rtt(ms(10));
        let mut log = log_of(t0, sent);
        if let Some((start, end, at)) = retransmitted {
            log.on_send(SeqNum(start), SeqNum(end), t0 + ms(at), true);
        }
        log.mark_sacked(
            SeqNum(sacked.0),
            SeqNum(sacked.1),
            |_, _| true,
            |s| rack.on_delivered(s, now, None),
        );
        rack.detect_loss(&mut log, now, ms(0)).0
    }

    /// The walk stops at the first record sent once that is not older than the latest
    /// delivered one, but not while a retransmission lies beyond it.
    #[test]
    fn loss_detection_stops_at_newer_originals_but_not_before_a_retransmission() {
        // The two records sent before the latest delivered one (at 60) are lost; the walk
        // ends at the one sent at 90.
        let sent = [(0, 100, 0), (100, 200, 50), (200, 300, 60), (300, 400, 90)];
        assert_eq!(marked_after_sack(&sent, None, (200, 300)), 2);
        // 0-100 was sent (at 80) after the latest delivered (at 70), but 100-200 beyond it
        // was retransmitted at 10: it must still be judged, and is lost.
        let sent = [(0, 100, 80), (300, 400, 70)];
        assert_eq!(
            marked_after_sack(&sent, Some((100, 200, 10)), (300, 400)),
            1
        );
    }

    #[test]
    fn a_segment_is_lost_once_the_reordering_window_passes() {
        let t0 = Instant::now();
        let mut log = log_of(t0, &[(0, 100, 0), (100, 200, 0)]);
        let mut rack = RackState::default();
        rack.note_rtt(ms(100));
        let now = t0 + ms(100);
        log.mark_sacked(
            SeqNum(100),
            SeqNum(200),
            |_, _| true,
            |s| rack.on_delivered(s, now, None),
        );
        let wnd = rack.reo_wnd(false, 1, Some(ms(100)));
        assert_eq!(wnd, ms(25));
        assert_eq!(rack.detect_loss(&mut log, now, wnd), (0, Some(ms(25))));
        let later = now + ms(25);
        assert_eq!(rack.detect_loss(&mut log, later, wnd), (1, None));
        assert_eq!(log.first_lost(), Some((SeqNum(0), SeqNum(100))));
        assert_eq!(log.lost_bytes_outside(SeqNum(0), SeqNum(50)), 50);
        // Three SACKed segments and no reordering yet: no window at all.
        assert_eq!(rack.reo_wnd(false, 3, Some(ms(100))), Duration::ZERO);
    }

    #[test]
    fn late_original_means_reordering_and_dsack_widens_the_window() {
        let t0 = Instant::now();
        let mut log = log_of(t0, &[(0, 100, 0), (100, 200, 0)]);
        let mut rack = RackState::default();
        rack.note_rtt(ms(40));
        let now = t0 + ms(50);
        log.mark_sacked(
            SeqNum(100),
            SeqNum(200),
            |_, _| true,
            |s| rack.on_delivered(s, now, None),
        );
        assert!(!rack.reordering_seen());
        log.acknowledge(SeqNum(200), |s| rack.on_delivered(s, now, None));
        assert!(rack.reordering_seen());
        assert_eq!(rack.reo_wnd(true, 5, Some(ms(50))), ms(10));
        rack.on_dsack(SeqNum(200), SeqNum(400));
        rack.on_dsack(SeqNum(300), SeqNum(500));
        assert_eq!(rack.reo_wnd(false, 0, Some(ms(50))), ms(20));
        for _ in 0..REO_WND_PERSIST {
            rack.on_recovery_exit();
        }
        assert_eq!(rack.reo_wnd(false, 0, Some(ms(50))), ms(10));
    }

    #[test]
    fn an_ambiguous_ack_of_a_retransmission_is_not_a_sample() {
        let t0 = Instant::now();
        let mut rack = RackState::default();
        rack.note_rtt(ms(100));
        let seg = SentSegment {
            start: SeqNum(0),
            end: SeqNum(100),
            xmit_ts: t0,
            retransmitted: true,
            sacked: false,
            lost: false,
        };
        // Too soon to be the retransmission's own ACK.
        rack.on_delivered(&seg, t0 + ms(10), None);
        assert_eq!(rack.latest, None);
        rack.on_delivered(&seg, t0 + ms(150), Some(true));
        assert_eq!(rack.latest, None);
        rack.on_delivered(&seg, t0 + ms(150), Some(false));
        assert_eq!(rack.latest, Some((t0, SeqNum(100))));
    }

    #[test]
    fn probe_timeout_and_outcomes() {
        assert_eq!(probe_timeout(Some(ms(50)), false, ms(300)), ms(100));
        assert_eq!(probe_timeout(Some(ms(50)), true, ms(1000)), ms(300));
        assert_eq!(probe_timeout(Some(ms(50)), true, ms(250)), ms(250));
        assert_eq!(probe_timeout(None, false, ms(3000)), INITIAL_PTO);
        let ep = TlpEpisode {
            end_seq: SeqNum(1000),
            is_retrans: true,
            flight: 4000,
        };
        let facts = |ack, dsack_end: Option<u32>, news| AckFacts {
            ack: SeqNum(ack),
            dsack_end: dsack_end.map(SeqNum),
            news,
        };
        assert_eq!(tlp_outcome(ep, facts(900, None, true)), TlpOutcome::Pending);
        assert_eq!(
            tlp_outcome(ep, facts(1000, None, true)),
            TlpOutcome::Pending
        );
        assert_eq!(
            tlp_outcome(ep, facts(1000, Some(1000), true)),
            TlpOutcome::NoLoss
        );
        assert_eq!(
            tlp_outcome(ep, facts(1000, None, false)),
            TlpOutcome::NoLoss
        );
        assert_eq!(
            tlp_outcome(ep, facts(1500, None, true)),
            TlpOutcome::Repaired
        );
        let new_data = TlpEpisode {
            is_retrans: false,
            ..ep
        };
        assert_eq!(
            tlp_outcome(new_data, facts(1000, None, true)),
            TlpOutcome::NoLoss
        );
    }
}
