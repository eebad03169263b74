//! `--trace` inside a connection: typed events of its decisions (docs/trace-format.md), and
//! the final counters `--stats` prints.
//!
//! Off (the default), a connection carries `None` here and every hook is one branch: nothing
//! is allocated or computed. On, the hooks are few: the entry points that take `now`
//! (`handle_segment`, `handle_timeout`, `poll_transmit`) note the time and what a decision
//! needs to be explained, the call sites of the congestion controller say why cwnd moved
//! ([`Connection::note_cc`]), and everything else (state changes, RTT samples and backoffs,
//! zero-window episodes, the end) is found by comparing with what the trace last reported,
//! each time the owner drains it ([`Connection::drain_trace`], called by the stack after
//! every call into the connection).

use std::time::{Duration, Instant};

use super::{AckState, Connection, Recovery, State};
use crate::trace::event::{
    AckDecision, AckWhy, CcCause, Dir, Phase, Probe, Rexmit, RexmitCounts, Role, SegFlags, Segment,
    TraceEvent, WindowSide,
};
use crate::wire::{ChecksumStatus, Control, SeqNum, TcpRepr};

/// What limits our sending, for the `*_limited_ms` of the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    /// Not sending yet (handshake) or any more (closed).
    Nothing,
    Cwnd,
    Rwnd,
    App,
}

/// What the receive path looked like before a segment, to explain the ACK decision after it.
#[derive(Debug, Clone, Copy)]
struct Before {
    ack: AckState,
    out_of_order: u64,
    duplicates: u64,
    challenges: u64,
    rejected: u64,
    rcv_nxt: SeqNum,
    holes: bool,
    carries: bool,
    fin: bool,
    syn: bool,
}

/// What `poll_transmit` started from, to say why the segment it built went out.
#[derive(Debug, Clone, Copy)]
pub(super) struct TxBefore {
    snd_max: SeqNum,
    recovery: Option<Recovery>,
    keepalive: bool,
    tlp: bool,
    probe: bool,
    ack: AckState,
}

/// A connection's trace state: the events not yet drained and what was last reported.
#[derive(Debug)]
pub(super) struct ConnTrace {
    events: Vec<(Instant, TraceEvent)>,
    /// The latest `now` an entry point was given: the time of decisions made without one
    /// (`close`, `abort`).
    pub(super) now: Instant,
    pub(super) created: Instant,
    role: Option<Role>,
    state: State,
    irs_known: bool,
    closed: bool,
    cc: Option<(usize, usize)>,
    rtt_samples: u64,
    backoffs: u32,
    pub(super) min_rtt: Option<Duration>,
    /// Set by a retransmission path for the segment being built.
    cause: Option<Rexmit>,
    /// Highest relative sequence numbers seen, ours and the peer's, for unwrapping.
    pub(super) snd_ref: u64,
    pub(super) rcv_ref: u64,
    /// The window in the last segment we sent, and the receive buffer's size then.
    pub(super) adv: Option<(u64, u64)>,
    pub(super) zero_ours_since: Option<Instant>,
    pub(super) zero_ours_total: Duration,
    zero_peer: bool,
    limit: (Instant, Limit),
    pub(super) limited: [Duration; 3],
    pub(super) rexmits: RexmitCounts,
    pub(super) bytes_retrans: u64,
    pub(super) sack_blocks_in: u64,
    pub(super) sack_blocks_out: u64,
    pub(super) dsack_in: u64,
    pub(super) dsack_out: u64,
    syn_sent: bool,
    before: Option<Before>,
    timer_ack: Option<AckState>,
}

impl ConnTrace {
    pub(super) fn new(now: Instant) -> Box<Self> {
        Box::new(ConnTrace {
            events: Vec::new(),
            now,
            created: now,
            role: None,
            state: State::Closed,
            irs_known: false,
            closed: false,
            cc: None,
            rtt_samples: 0,
            backoffs: 0,
            min_rtt: None,
            cause: None,
            snd_ref: 0,
            rcv_ref: 0,
            adv: None,
            zero_ours_since: None,
            zero_ours_total: Duration::ZERO,
            zero_peer: false,
            limit: (now, Limit::Nothing),
            limited: [Duration::ZERO; 3],
            rexmits: RexmitCounts::default(),
            bytes_retrans: 0,
            sack_blocks_in: 0,
            sack_blocks_out: 0,
            dsack_in: 0,
            dsack_out: 0,
            syn_sent: false,
            before: None,
            timer_ack: None,
        })
    }

    fn push(&mut self, event: TraceEvent) {
        self.events.push((self.now, event));
    }

    /// Accounts the time since the last change to what limited sending, then switches.
    fn limit_to(&mut self, now: Instant, limit: Limit) {
        let (since, old) = self.limit;
        let spent = now.saturating_duration_since(since);
        match old {
            Limit::Cwnd => self.limited[0] += spent,
            Limit::Rwnd => self.limited[1] += spent,
            Limit::App => self.limited[2] += spent,
            Limit::Nothing => {}
        }
        self.limit = (now.max(since), limit);
    }
}

/// `rel` (a 32-bit offset from an initial sequence number) as the 64-bit value nearest to
/// `reference`: sequence numbers unwrapped, as long as consecutive ones are within 2 GiB.
pub(super) fn unwrap_near(reference: u64, rel: u32) -> u64 {
    let candidate = (reference & !0xffff_ffff) | u64::from(rel);
    if candidate + (1 << 31) < reference {
        candidate + (1 << 32)
    } else if candidate > reference + (1 << 31) && candidate >= 1 << 32 {
        candidate - (1 << 32)
    } else {
        candidate
    }
}

/// Like [`unwrap_near`], moving the reference forward to the value.
fn unwrap(reference: &mut u64, rel: u32) -> u64 {
    let value = unwrap_near(*reference, rel);
    *reference = (*reference).max(value);
    value
}

pub(super) fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

fn flags_of(seg: &TcpRepr) -> SegFlags {
    let mut flags = match seg.control {
        Control::Syn => SegFlags::SYN,
        Control::Fin => SegFlags::FIN,
        Control::Rst => SegFlags::RST,
        Control::Psh => SegFlags::PSH,
        Control::None => 0,
    };
    if seg.ack.is_some() {
        flags |= SegFlags::ACK;
    }
    SegFlags(flags)
}

/// RFC 9293's name of a state.
pub(super) fn state_name(state: State) -> &'static str {
    match state {
        State::SynSent => "SYN-SENT",
        State::SynReceived => "SYN-RECEIVED",
        State::Established => "ESTABLISHED",
        State::FinWait1 => "FIN-WAIT-1",
        State::FinWait2 => "FIN-WAIT-2",
        State::CloseWait => "CLOSE-WAIT",
        State::Closing => "CLOSING",
        State::LastAck => "LAST-ACK",
        State::TimeWait => "TIME-WAIT",
        State::Closed => "CLOSED",
    }
}

impl Connection {
    /// The connection was created as `role`: the `open` event and the first `cc`.
    pub(super) fn trace_open(&mut self, role: Role) {
        let Some(t) = self.trace.as_mut() else {
            return;
        };
        t.role = Some(role);
        t.push(TraceEvent::Open {
            local: self.tuple.local,
            remote: self.tuple.remote,
            role,
            iss: self.snd.iss.0,
        });
        self.note_cc(CcCause::Init);
    }

    /// Sets the cause of the retransmission being built (a path `poll_transmit` cannot tell
    /// from the outside).
    pub(super) fn trace_cause(&mut self, cause: Rexmit) {
        if let Some(t) = self.trace.as_mut() {
            t.cause = Some(cause);
        }
    }

    /// After a call into the congestion controller: a `cc` event if cwnd or ssthresh moved.
    pub(super) fn note_cc(&mut self, cause: CcCause) {
        let Some(t) = self.trace.as_ref() else {
            return;
        };
        let now = (self.loss.cc.window(), self.loss.cc.ssthresh());
        if t.cc == Some(now) {
            return;
        }
        let inflight = self.pipe() as u64;
        let infinite = now.1 >= usize::MAX / 4;
        let Some(t) = self.trace.as_mut() else {
            return;
        };
        t.cc = Some(now);
        t.push(TraceEvent::Cc {
            cwnd: now.0 as u64,
            ssthresh: (!infinite).then_some(now.1 as u64),
            inflight,
            cause,
        });
    }

    /// After `on_ack`: slow start or avoidance, as cwnd stood against ssthresh before.
    pub(super) fn note_cc_ack(&mut self) {
        let cause = match self.trace.as_ref().and_then(|t| t.cc) {
            Some((cwnd, ssthresh)) if cwnd >= ssthresh => CcCause::Avoidance,
            _ => CcCause::SlowStart,
        };
        self.note_cc(cause);
    }

    /// `handle_segment` begins: the `seg` in event, and what the ACK decision starts from.
    pub(super) fn trace_segment_in(&mut self, now: Instant, seg: &TcpRepr) {
        let Some(t) = self.trace.as_mut() else {
            return;
        };
        t.now = now;
        let irs = if seg.control == Control::Syn {
            seg.seq
        } else {
            self.rcv.irs
        };
        let seq = unwrap(&mut t.rcv_ref, seg.seq.0.wrapping_sub(irs.0));
        let iss = self.snd.iss;
        let ack = seg
            .ack
            .map(|a| unwrap_near(t.snd_ref, a.0.wrapping_sub(iss.0)));
        let mut sack = Vec::new();
        for block in seg.options.sack_blocks() {
            sack.push([
                unwrap_near(t.snd_ref, block.left.0.wrapping_sub(iss.0)),
                unwrap_near(t.snd_ref, block.right.0.wrapping_sub(iss.0)),
            ]);
        }
        let dsack = match (sack.first(), sack.get(1), ack) {
            (Some(first), second, Some(ack)) => {
                first[1] <= ack || second.is_some_and(|s| s[0] <= first[0] && first[1] <= s[1])
            }
            _ => false,
        };
        t.sack_blocks_in += sack.len() as u64;
        t.dsack_in += u64::from(dsack);
        let win = if seg.control == Control::Syn {
            u64::from(seg.window)
        } else {
            self.opts.snd_scale.apply(seg.window).get() as u64
        };
        t.push(TraceEvent::Seg(Segment {
            dir: Dir::In,
            seq,
            ack,
            len: seg.payload.len() as u32,
            flags: flags_of(seg),
            win,
            sack,
            dsack,
            rexmit: None,
            probe: None,
            segs: None,
        }));
        t.before = Some(Before {
            ack: self.rcv.ack,
            out_of_order: self.stats.out_of_order_in,
            duplicates: self.stats.duplicate_segments_in,
            challenges: self.stats.challenge_acks,
            rejected: self.stats.rejected_in,
            rcv_nxt: self.rcv.nxt,
            holes: self.rcv.buffer.has_out_of_order(),
            carries: !seg.payload.is_empty() || seg.control == Control::Fin,
            fin: seg.control == Control::Fin,
            syn: seg.control == Control::Syn,
        });
    }

    /// `handle_segment` ends: the receiver's ACK decision about it, if it made one.
    pub(super) fn trace_segment_done(&mut self) {
        let Some(t) = self.trace.as_mut() else {
            return;
        };
        let Some(b) = t.before.take() else {
            return;
        };
        let after = self.rcv.ack;
        let raised = after > b.ack;
        if !(raised || (b.carries && after >= AckState::Delayed)) {
            return;
        }
        let s = &self.stats;
        let (decision, why) = if after == AckState::Delayed {
            (AckDecision::Delay, AckWhy::FirstSegment)
        } else if s.challenge_acks > b.challenges {
            (AckDecision::Send, AckWhy::Challenge)
        } else if s.duplicate_segments_in > b.duplicates {
            (AckDecision::Send, AckWhy::Duplicate)
        } else if s.rejected_in > b.rejected {
            (AckDecision::Send, AckWhy::Unacceptable)
        } else if s.out_of_order_in > b.out_of_order {
            (AckDecision::Send, AckWhy::OutOfOrder)
        } else if b.holes && self.rcv.nxt != b.rcv_nxt {
            (AckDecision::Send, AckWhy::FillHole)
        } else if b.fin {
            (AckDecision::Send, AckWhy::Fin)
        } else if b.syn {
            (AckDecision::Send, AckWhy::Syn)
        } else if after == AckState::Now {
            (AckDecision::Send, AckWhy::Stretch)
        } else {
            (AckDecision::Send, AckWhy::SecondSegment)
        };
        t.push(TraceEvent::AckDecision { decision, why });
    }

    /// `handle_timeout` begins.
    pub(super) fn trace_timeout_start(&mut self, now: Instant) {
        if let Some(t) = self.trace.as_mut() {
            t.now = now;
            t.timer_ack = Some(self.rcv.ack);
        }
    }

    /// `handle_timeout` ends: the delayed-ACK timer's decision, if it fired.
    pub(super) fn trace_timeout_end(&mut self) {
        let Some(t) = self.trace.as_mut() else {
            return;
        };
        if t.timer_ack.take() == Some(AckState::Delayed) && self.rcv.ack == AckState::Now {
            t.push(TraceEvent::AckDecision {
                decision: AckDecision::Send,
                why: AckWhy::Timer,
            });
        }
    }

    /// What `poll_transmit` starts from, when tracing.
    pub(super) fn trace_transmit_start(&mut self, now: Instant) -> Option<TxBefore> {
        let t = self.trace.as_mut()?;
        t.now = now;
        t.cause = None;
        Some(TxBefore {
            snd_max: self.snd.max,
            recovery: self.loss.recovery,
            keepalive: self.keepalive_due,
            tlp: self.loss.tlp_due,
            probe: self.snd.probe_due,
            ack: self.rcv.ack,
        })
    }

    /// `poll_transmit` built `segment` (or nothing): the `seg` out event, its ACK decision,
    /// the advertised window, and what limits sending when nothing more goes.
    pub(super) fn trace_transmit_end(
        &mut self,
        now: Instant,
        before: TxBefore,
        segment: Option<&[u8]>,
    ) {
        let Some(bytes) = segment else {
            let limit = self.sending_limit();
            if let Some(t) = self.trace.as_mut() {
                t.limit_to(now, limit);
            }
            return;
        };
        let (local, remote) = (*self.tuple.local.ip(), *self.tuple.remote.ip());
        let Ok(seg) = TcpRepr::parse_with(local, remote, bytes, ChecksumStatus::Trusted) else {
            return;
        };
        let pure_ack = seg.payload.is_empty() && matches!(seg.control, Control::None);
        let window = if seg.control == Control::Syn {
            u64::from(seg.window)
        } else {
            self.opts.rcv_scale.apply(seg.window).get() as u64
        };
        let capacity = self.rcv.buffer.capacity() as u64;
        let buffered = (self.rcv.buffer.readable() + self.rcv.buffer.out_of_order_bytes()) as u64;
        let burst = self.snd.burst;
        let rescued = matches!(
            (before.recovery, self.loss.recovery),
            (Some(b), Some(a)) if a.rescued && !b.rescued
        );
        let sack_on = self.opts.sack;
        let Some(t) = self.trace.as_mut() else {
            return;
        };
        let (iss, irs) = (self.snd.iss, self.rcv.irs);
        let seq = unwrap(&mut t.snd_ref, seg.seq.0.wrapping_sub(iss.0));
        let ack = seg
            .ack
            .map(|a| unwrap(&mut t.rcv_ref, a.0.wrapping_sub(irs.0)));
        let mut sack = Vec::new();
        for block in seg.options.sack_blocks() {
            sack.push([
                unwrap_near(t.rcv_ref, block.left.0.wrapping_sub(irs.0)),
                unwrap_near(t.rcv_ref, block.right.0.wrapping_sub(irs.0)),
            ]);
        }
        // Our D-SACK block goes first and lies at or below the cumulative ACK (or inside the
        // next block): `base_repr` puts it there.
        let dsack = match (sack.first(), sack.get(1), ack) {
            (Some(first), second, Some(ack)) => {
                first[1] <= ack || second.is_some_and(|s| s[0] <= first[0] && first[1] <= s[1])
            }
            _ => false,
        };
        t.sack_blocks_out += sack.len() as u64;
        t.dsack_out += u64::from(dsack);
        let takes_space =
            !seg.payload.is_empty() || matches!(seg.control, Control::Syn | Control::Fin);
        let again = takes_space && seg.seq.before(before.snd_max);
        let probe = if before.keepalive && !self.keepalive_due && pure_ack {
            Some(Probe::Keepalive)
        } else if before.tlp && self.loss.rack.tlp.is_some() {
            Some(Probe::Tlp)
        } else if before.probe && !self.snd.probe_due && seg.payload.len() == 1 {
            Some(Probe::Zwp)
        } else {
            None
        };
        let rexmit = again.then(|| {
            if seg.control == Control::Syn {
                return Rexmit::Syn;
            }
            if probe == Some(Probe::Tlp) {
                return Rexmit::Tlp;
            }
            match before.recovery {
                _ if rescued => Rexmit::Rescue,
                Some(rec) if rec.forced && rec.prr_out == 0 => Rexmit::Fast,
                Some(rec) if rec.forced && !sack_on => Rexmit::Newreno,
                Some(_) => t.cause.unwrap_or(if sack_on {
                    Rexmit::Sack
                } else {
                    Rexmit::Newreno
                }),
                None => Rexmit::Rto,
            }
        });
        if let Some(cause) = rexmit {
            t.rexmits.add(cause);
            t.bytes_retrans += seg.payload.len() as u64;
        }
        t.syn_sent |= seg.control == Control::Syn;
        let segs = burst
            .filter(|&piece| piece > 0)
            .map(|piece| seg.payload.len().div_ceil(usize::from(piece)) as u32)
            .filter(|&n| n > 1);
        t.push(TraceEvent::Seg(Segment {
            dir: Dir::Out,
            seq,
            ack,
            len: seg.payload.len() as u32,
            flags: flags_of(&seg),
            win: window,
            sack,
            dsack,
            rexmit,
            probe,
            segs,
        }));
        if pure_ack && before.ack < AckState::Batched && probe.is_none() {
            t.push(TraceEvent::AckDecision {
                decision: AckDecision::Send,
                why: AckWhy::WindowUpdate,
            });
        }
        if seg.ack.is_some() && t.adv != Some((window, capacity)) {
            t.adv = Some((window, capacity));
            t.push(TraceEvent::Rwnd {
                win: window,
                buffered,
                capacity,
            });
            match (window == 0, t.zero_ours_since) {
                (true, None) => {
                    t.zero_ours_since = Some(now);
                    t.push(TraceEvent::ZeroWindow {
                        side: WindowSide::Ours,
                        phase: Phase::Start,
                    });
                }
                (false, Some(since)) => {
                    t.zero_ours_total += now.saturating_duration_since(since);
                    t.zero_ours_since = None;
                    t.push(TraceEvent::ZeroWindow {
                        side: WindowSide::Ours,
                        phase: Phase::End,
                    });
                }
                _ => {}
            }
        }
    }

    /// What holds our sending back once `poll_transmit` has nothing more.
    fn sending_limit(&self) -> Limit {
        if !self.state.is_synchronized() {
            return Limit::Nothing;
        }
        let unsent = self.data_end_seq().distance_from(self.snd.nxt);
        if unsent == 0 {
            return Limit::App;
        }
        let wnd_room = (self.snd.una + self.snd.wnd).distance_from(self.snd.nxt);
        if wnd_room == 0 {
            Limit::Rwnd
        } else if self.send_allowance() < unsent.min(self.snd.mss) {
            Limit::Cwnd
        } else {
            Limit::App
        }
    }

    /// Hands out the trace events recorded since the last call, after comparing the state,
    /// the RTT estimator, cwnd and the peer's window with what was last reported (so
    /// changes made by any call, `close` and `abort` included, are reported here). The stack
    /// calls it after every call into the connection; nothing happens when tracing is off.
    pub fn drain_trace(&mut self, mut take: impl FnMut(Instant, TraceEvent)) {
        if self.trace.is_none() {
            return;
        }
        self.trace_compare();
        if let Some(t) = self.trace.as_mut() {
            for (at, event) in t.events.drain(..) {
                take(at, event);
            }
        }
    }

    fn trace_compare(&mut self) {
        // Changes no hook named: the handshake's (the initial window follows the peer's MSS),
        // recovery's, or a controller's own.
        let handshake = self
            .trace
            .as_ref()
            .is_some_and(|t| !t.state.is_synchronized());
        let cause = if handshake {
            CcCause::Init
        } else if self.loss.recovery.is_some() {
            CcCause::Recovery
        } else {
            CcCause::Other
        };
        self.note_cc(cause);
        let (sample, samples) = self.loss.rtt.last_sample();
        let backoffs = self.loss.rtt.backoffs();
        let rtt = &self.loss.rtt;
        let (srtt, rttvar, rto) = (rtt.srtt(), rtt.rttvar(), rtt.rto());
        let synchronized = self.state.is_synchronized();
        let unsent = self.data_end_seq().distance_from(self.snd.nxt);
        let peer_zero = synchronized
            && self.state != State::TimeWait
            && self.snd.wnd.is_zero()
            && (unsent > 0 || self.snd.una != self.snd.max);
        let state = self.state;
        let irs = self.rcv.irs.0;
        let error = self.error.as_ref().map(|e| e.to_string());
        let closing = state == State::Closed && !self.trace.as_ref().is_some_and(|t| t.closed);
        let summary = closing.then(|| self.summary());
        let Some(t) = self.trace.as_mut() else {
            return;
        };
        let rtt_event = |sample: Option<Duration>| TraceEvent::Rtt {
            sample_ms: sample.map(millis),
            srtt_ms: srtt.map(millis),
            rttvar_ms: millis(rttvar),
            rto_ms: millis(rto),
            backoff: backoffs,
        };
        if samples != t.rtt_samples {
            t.rtt_samples = samples;
            if let Some(s) = sample {
                t.min_rtt = Some(t.min_rtt.map_or(s, |m| m.min(s)));
            }
            t.push(rtt_event(sample));
        } else if backoffs > t.backoffs {
            t.push(rtt_event(None));
        }
        t.backoffs = backoffs;
        if peer_zero != t.zero_peer {
            t.zero_peer = peer_zero;
            let phase = if peer_zero { Phase::Start } else { Phase::End };
            t.push(TraceEvent::ZeroWindow {
                side: WindowSide::Peer,
                phase,
            });
        }
        if state != t.state {
            if state == State::SynReceived || state.is_synchronized() {
                t.irs_known = true;
            }
            if t.state != State::Closed || t.role.is_some() {
                t.push(TraceEvent::State {
                    from: state_name(t.state),
                    to: state_name(state),
                    irs: t.irs_known.then_some(irs),
                });
            }
            t.state = state;
        }
        if let Some(stats) = summary {
            t.closed = true;
            let now = t.now;
            t.limit_to(now, Limit::Nothing);
            t.push(TraceEvent::Close {
                error,
                stats: Box::new(stats),
            });
        }
    }

    /// The process is ending with this connection still open: its `close` event now, with the
    /// counters as they stand (once; a later real close adds nothing).
    pub fn trace_finish(&mut self, now: Instant) {
        if self.trace.as_ref().is_none_or(|t| t.closed) {
            return;
        }
        self.trace_compare();
        let error = self.error.as_ref().map(|e| e.to_string());
        if let Some(t) = self.trace.as_mut() {
            t.now = t.now.max(now);
            t.limit_to(now, Limit::Nothing);
        }
        let stats = self.summary();
        if let Some(t) = self.trace.as_mut() {
            if !t.closed {
                t.closed = true;
                t.push(TraceEvent::Close {
                    error,
                    stats: Box::new(stats),
                });
            }
        }
    }

    /// True when this connection records trace events (`TcpConfig::trace`).
    pub fn is_traced(&self) -> bool {
        self.trace.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwrapping_crosses_the_wrap_both_ways() {
        let mut r = 0;
        assert_eq!(unwrap(&mut r, 10), 10);
        // Just below the ISS (a keep-alive's SEG.SEQ before any data) stays below 2^32.
        assert_eq!(unwrap(&mut r, u32::MAX - 5), u64::from(u32::MAX - 5));
        let mut r = u64::from(u32::MAX) - 100;
        assert_eq!(unwrap(&mut r, 50), (1 << 32) + 50);
        assert_eq!(r, (1 << 32) + 50);
        // A retransmission just below the wrap after it.
        assert_eq!(unwrap(&mut r, u32::MAX - 10), u64::from(u32::MAX) - 10);
        assert_eq!(unwrap_near(5 << 32, 3), (5 << 32) + 3);
    }
}
