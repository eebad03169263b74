//! Control: resets, challenge ACKs (RFC 5961), the FIN handshake's ending, TIME-WAIT and CLOSED.

use std::time::{Duration, Instant};

use super::{AckState, ConnError, ConnEvent, Connection, State, OUT_OF_WINDOW_ACK_INTERVAL};
use crate::tcp::timers::Timer;
use crate::wire::{Control, SeqNum, TcpOptions, TcpRepr};

impl Connection {
    pub(super) fn handle_rst(&mut self, now: Instant, seg: &TcpRepr) {
        // RFC 5961 §3.2: only an exact match resets; anything else in window is challenged.
        if seg.seq != self.rcv.nxt {
            self.challenge_ack(now);
            return;
        }
        let err = match self.state {
            State::SynReceived => ConnError::Refused,
            State::Closing | State::LastAck | State::TimeWait => {
                self.enter_closed(None);
                return;
            }
            _ => ConnError::Reset,
        };
        self.enter_closed(Some(err));
    }

    /// Whether the ACK owed to an unacceptable segment is skipped: segments without data (pure
    /// ACKs) are answered at most once per `OUT_OF_WINDOW_ACK_INTERVAL`, so two stacks that
    /// disagree about the window cannot ping-pong ACKs forever (RFC 5961 §7, as Linux's
    /// tcp_oow_rate_limited); data segments are always answered, they are no loop.
    pub(super) fn out_of_window_ack_limited(&mut self, now: Instant, seg: &TcpRepr) -> bool {
        if !seg.payload.is_empty() {
            return false;
        }
        if let Some(last) = self.last_out_of_window_ack {
            if now.saturating_duration_since(last) < OUT_OF_WINDOW_ACK_INTERVAL {
                return true;
            }
        }
        self.last_out_of_window_ack = Some(now);
        false
    }

    pub(super) fn challenge_ack(&mut self, now: Instant) {
        let (start, count) = &mut self.challenge_window;
        if now.duration_since(*start) >= Duration::from_secs(1) {
            *start = now;
            *count = 0;
        }
        if *count < self.config.challenge_acks_per_second {
            *count += 1;
            self.stats.challenge_acks += 1;
            self.rcv.ack = AckState::Now;
        }
    }

    /// State changes when our FIN gets acknowledged.
    pub(super) fn fin_acknowledged_transitions(&mut self, now: Instant) {
        if !self.snd.fin_queued || self.snd.una != self.data_end_seq() + 1 {
            return;
        }
        match self.state {
            State::FinWait1 => {
                self.state = State::FinWait2;
                // Not in the RFC, but every real stack bounds FIN-WAIT-2 once the app closed.
                self.timers
                    .set(Timer::TimeWait, now + self.config.time_wait);
            }
            State::Closing => self.enter_time_wait(now),
            State::LastAck => self.enter_closed(None),
            _ => {}
        }
    }

    pub(super) fn enter_time_wait(&mut self, now: Instant) {
        self.state = State::TimeWait;
        // Nothing more is sent or (unless unread) kept: TIME-WAIT needs only the sequence
        // numbers, as Linux's minisocks do.
        self.rcv.buffer.shed();
        self.snd.buffer.shed();
        self.timers.clear();
        self.timers
            .set(Timer::TimeWait, now + self.config.time_wait);
    }

    pub(super) fn enter_closed(&mut self, error: Option<ConnError>) {
        if self.state == State::Closed {
            return;
        }
        self.state = State::Closed;
        self.timers.clear();
        match error {
            Some(err) => {
                self.error = Some(err.clone());
                self.events.push_back(ConnEvent::Failed(err));
            }
            None => self.events.push_back(ConnEvent::Closed),
        }
    }

    pub(super) fn emit_rst(&mut self, seq: SeqNum, buf: &mut [u8]) -> usize {
        let repr = TcpRepr {
            src_port: self.tuple.local.port(),
            dst_port: self.tuple.remote.port(),
            control: Control::Rst,
            seq,
            ack: None,
            window: 0,
            options: TcpOptions::default(),
            payload: &[],
        };
        self.stats.segments_out += 1;
        repr.emit(*self.tuple.local.ip(), *self.tuple.remote.ip(), buf)
    }

    /// The peer was heard from: a connection with keep-alive on waits a full idle time again
    /// before probing (RFC 9293 §3.8.4: probe only when nothing was received for the interval).
    pub(super) fn heard_from_peer(&mut self, now: Instant) {
        let Some(idle) = self.config.keepalive else {
            return;
        };
        self.keepalive_probes = 0;
        if matches!(
            self.state,
            State::Established | State::CloseWait | State::FinWait2
        ) {
            self.timers.set(Timer::KeepAlive, now + idle);
        } else {
            self.timers.stop(Timer::KeepAlive);
        }
    }

    /// Idle for the keep-alive time: probe, or give up after `keepalive_probes` unanswered.
    /// A connection with data in flight or waiting is not idle: retransmissions and zero-window
    /// probes already test the peer, so the keep-alive only waits again.
    pub(super) fn on_keepalive_timer(&mut self, now: Instant) {
        let Some(idle) = self.config.keepalive else {
            return;
        };
        if !matches!(
            self.state,
            State::Established | State::CloseWait | State::FinWait2
        ) {
            return;
        }
        let busy = self.snd.una != self.snd.max || self.data_end_seq() != self.snd.nxt;
        if busy {
            self.timers.set(Timer::KeepAlive, now + idle);
            return;
        }
        if self.keepalive_probes >= self.config.keepalive_probes {
            self.enter_closed(Some(self.timeout_error()));
            self.rst_due = true;
            return;
        }
        self.keepalive_probes += 1;
        self.stats.keepalive_probes += 1;
        self.keepalive_due = true;
        self.timers.set(Timer::KeepAlive, now + idle);
    }

    /// A keep-alive probe: an ACK with SEG.SEQ = SND.NXT - 1 and no data, which the peer must
    /// answer with an ACK because it is outside its window (RFC 9293 §3.8.4, as Linux sends
    /// it; RFC 1122 §4.2.3.6 allows one garbage byte instead for old peers).
    pub(super) fn emit_keepalive(&mut self, now: Instant, buf: &mut [u8]) -> usize {
        self.keepalive_due = false;
        let repr = self.base_repr(now, self.snd.nxt - 1, Control::None, true);
        repr.emit_header(buf);
        self.finish_segment(repr, 0, buf)
    }
}

impl Connection {
    /// Whether a SYN for this connection's 4-tuple, arriving while it sits in TIME-WAIT, may
    /// start a new incarnation at once (RFC 9293 §3.10.7.4's allowance, as Linux and the BSDs
    /// do): a client that reuses a port within 2 MSL would otherwise wait out our TIME-WAIT
    /// (a server that closes first keeps one per request). The SYN must be provably newer:
    /// its timestamp after TS.Recent when the old connection used timestamps (RFC 6191 §2),
    /// else its sequence number beyond RCV.NXT (RFC 1122 §4.2.2.13).
    pub fn time_wait_accepts_syn(&self, syn: &TcpRepr) -> bool {
        if self.state != State::TimeWait || syn.control != Control::Syn || syn.ack.is_some() {
            return false;
        }
        match (self.opts.timestamps, syn.options.timestamps) {
            (true, Some(ts)) => (ts.value.wrapping_sub(self.rcv.ts_recent) as i32) > 0,
            (true, None) => false,
            (false, _) => syn.seq.after(self.rcv.nxt),
        }
    }

    /// Ends TIME-WAIT early, quietly (no segment), because a new incarnation takes the tuple.
    pub fn end_time_wait(&mut self) {
        if self.state == State::TimeWait {
            self.enter_closed(None);
        }
    }
}
