//! The receive path: acceptability (RFC 9293 §3.10.7.4), payload and FIN, and the window we
//! advertise.

use std::time::Instant;

use super::{AckState, ConnEvent, Connection, State, TIMESTAMP_OPTION_LEN};
use crate::tcp::window::WindowSize;
use crate::tcp::DUP_THRESH;
use crate::wire::{Control, SeqNum, TcpRepr};

/// The most in-order segments acknowledged one by one after data arrived twice (Linux:
/// TCP_MAX_QUICKACKS).
const MAX_QUICK_ACKS: u32 = 16;

impl Connection {
    /// Processes one segment addressed to this connection (RFC 9293 §3.10.7).
    pub fn handle_segment(&mut self, now: Instant, seg: &TcpRepr) {
        self.trace_segment_in(now, seg);
        self.stats.segments_in += 1;
        match self.state {
            // RFC 9293 §3.10.7.1: the connection is gone (reset, or given up) while the
            // application still holds it, so a segment other than a reset is answered as a
            // closed port answers it. A peer that our own reset missed (its RCV.NXT short of
            // the sequence number it carried: it sends a challenge ACK, RFC 5961 §3.2) then
            // gets one it accepts.
            State::Closed => {
                if seg.control != Control::Rst {
                    if let Some(ack) = seg.ack {
                        self.stray_rst = Some(ack);
                    }
                }
            }
            State::SynSent => self.handle_syn_sent(now, seg),
            _ => self.handle_synchronized(now, seg),
        }
        self.heard_from_peer(now);
        self.trace_segment_done();
    }

    pub(super) fn handle_synchronized(&mut self, now: Instant, seg: &TcpRepr) {
        // RFC 7323 §5.3: PAWS, before anything else. RSTs are exempt.
        if self.opts.timestamps && seg.control != Control::Rst {
            if let Some(ts) = seg.options.timestamps {
                if (ts.value.wrapping_sub(self.rcv.ts_recent) as i32) < 0 {
                    self.stats.rejected_in += 1;
                    self.rcv.ack = AckState::Now;
                    return;
                }
            }
        }
        if self.state == State::SynReceived
            && seg.control == Control::Syn
            && seg.seq == self.rcv.irs
        {
            // The peer's SYN again. It lies before RCV.NXT, so the acceptability test below
            // would only answer it with a bare ACK.
            if seg.ack.is_none() {
                // Our SYN-ACK was lost and the peer retransmitted its SYN.
                self.update_ts_recent(seg);
                self.snd.nxt = self.snd.iss;
                return;
            }
            // Simultaneous open (RFC 9293 §3.5 figure 8): the peer's SYN-ACK. Its SYN is old,
            // the rest is new: process it as the segment that follows the SYN.
            let rest = TcpRepr {
                control: Control::None,
                seq: seg.seq + 1,
                ..*seg
            };
            self.handle_synchronized(now, &rest);
            return;
        }
        if !self.acceptable(seg) {
            if self.rcv.adv == self.rcv.nxt
                && seg.seq == self.rcv.nxt
                && matches!(seg.control, Control::None | Control::Psh | Control::Fin)
            {
                // RFC 9293 §3.10.7.4: with a zero receive window no data is acceptable, but
                // its ACK field is: the peer may be acknowledging what we sent. The text is
                // dropped (the peer probes again) and answered with our closed window.
                self.stats.rejected_in += 1;
                let header = TcpRepr {
                    control: Control::None,
                    payload: &[],
                    ..*seg
                };
                self.handle_synchronized(now, &header);
                self.rcv.ack = AckState::Now;
                return;
            }
            self.stats.rejected_in += 1;
            if seg.segment_len() > 0 && (seg.seq + seg.segment_len()).before_eq(self.rcv.nxt) {
                // Entirely old: a retransmission or duplicate of what we already have.
                self.stats.duplicate_segments_in += 1;
                if self.state == State::TimeWait && seg.control == Control::Fin {
                    // RFC 9293 §3.10.7.4: a retransmitted FIN in TIME-WAIT is acknowledged
                    // and restarts the 2 MSL timeout (our ACK of it was lost).
                    self.enter_time_wait(now);
                }
                if !seg.payload.is_empty() {
                    self.report_duplicate(seg.seq, seg.seq + seg.payload.len());
                    self.enter_quick_ack_mode();
                }
            }
            if seg.control != Control::Rst && !self.out_of_window_ack_limited(now, seg) {
                // RFC 9293 §3.10.7.4 first check: answer an unacceptable segment with an ACK.
                self.rcv.ack = AckState::Now;
            }
            return;
        }
        if seg.control == Control::Rst {
            self.handle_rst(now, seg);
            return;
        }
        if seg.control == Control::Syn {
            // RFC 5961 §4: any SYN in a synchronized state gets a challenge ACK.
            self.challenge_ack(now);
            return;
        }
        let Some(ack) = seg.ack else {
            return;
        };
        if self.state == State::SynReceived {
            if ack.after(self.snd.una) && ack.before_eq(self.snd.max) {
                self.state = State::Established;
                self.snd.wnd = self.opts.snd_scale.apply(seg.window);
                self.snd.max_wnd = self.snd.wnd;
                self.snd.wl1 = seg.seq;
                self.snd.wl2 = ack;
                self.events.push_back(ConnEvent::Connected);
                if self.snd.fin_queued {
                    self.state = State::FinWait1;
                }
            } else {
                // RFC 9293 §3.10.7.4: an unacceptable ACK in SYN-RECEIVED elicits a reset
                // <SEQ=SEG.ACK><CTL=RST>; the connection itself carries on.
                self.stray_rst = Some(ack);
                return;
            }
        }
        // RFC 5961 §5.2: an ACK outside [SND.UNA - MAX.SND.WND, SND.MAX] is not believed.
        if ack.after(self.snd.max) {
            self.rcv.ack = AckState::Now;
            return;
        }
        if ack.before(self.snd.una - self.snd.max_wnd) {
            self.rcv.ack = AckState::Now;
            return;
        }
        self.update_ts_recent(seg);
        self.process_ack(now, seg, ack);
        if self.state == State::Closed {
            return;
        }
        self.process_payload(now, seg);
    }

    /// RFC 9293 §3.10.7.4 first check, with the window we actually advertised.
    pub(super) fn acceptable(&self, seg: &TcpRepr) -> bool {
        let wnd = self.rcv.adv.distance_from(self.rcv.nxt);
        let len = seg.segment_len();
        let end = self.rcv.nxt + wnd;
        match (len, wnd) {
            (0, 0) => seg.seq == self.rcv.nxt,
            (0, _) => seg.seq.in_range(self.rcv.nxt, end),
            (_, 0) => false,
            (_, _) => {
                seg.seq.in_range(self.rcv.nxt, end)
                    || (seg.seq + (len - 1)).in_range(self.rcv.nxt, end)
            }
        }
    }

    /// RFC 7323 §4.3: remember TSval when the segment covers the last ACK we sent.
    pub(super) fn update_ts_recent(&mut self, seg: &TcpRepr) {
        if let Some(ts) = seg.options.timestamps {
            if seg.seq.before_eq(self.rcv.last_ack_sent) {
                self.rcv.ts_recent = ts.value;
            }
        }
    }

    pub(super) fn process_payload(&mut self, now: Instant, seg: &TcpRepr) {
        let receiving = matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2
        );
        if !seg.payload.is_empty() && receiving {
            self.receive_data(seg);
        } else if !seg.payload.is_empty() {
            // Data after the peer's FIN cannot be delivered; just acknowledge.
            self.rcv.ack = AckState::Now;
        }
        if seg.control == Control::Fin && receiving {
            let offset = self.stream_offset(seg.seq) + seg.payload.len() as i64;
            // An acceptable FIN never lies before the stream's first byte.
            if let Ok(offset) = u64::try_from(offset) {
                self.rcv.pending_fin = Some(offset);
            }
            self.rcv.ack = AckState::Now;
        }
        if self.rcv.fin_received && seg.control == Control::Fin {
            // A retransmitted FIN: our ACK was lost.
            self.rcv.ack = AckState::Now;
            if self.state == State::TimeWait {
                self.enter_time_wait(now);
            }
        }
        self.accept_pending_fin(now);
    }

    /// Receive-buffer growth under loss (see `TcpConfig::recv_buffer_max`): out-of-order data
    /// ending within a segment of the buffer's end means the sender has filled the window past
    /// a hole; double the buffer (up to the maximum) so that new data can keep flowing while
    /// the hole is repaired, and the ACK this segment triggers (at once: true) offers the
    /// larger window.
    fn grow_if_window_bound(&mut self, end_offset: u64) -> bool {
        let capacity = self.rcv.buffer.capacity();
        let max = self.config.recv_buffer_max;
        let edge = self.rcv.buffer.consumed() + capacity as u64;
        let bound = capacity < max && end_offset + u64::from(self.config.mss) >= edge;
        if bound {
            self.rcv.buffer.grow(capacity.saturating_mul(2).min(max));
        }
        bound
    }

    /// Remembers duplicate data for the next ACK's D-SACK block (RFC 2883 §4: one block, the
    /// latest duplicate) when SACK was agreed.
    pub(super) fn report_duplicate(&mut self, left: SeqNum, right: SeqNum) {
        if self.opts.sack && left != right {
            self.rcv.dsack = Some((left, right));
        }
    }

    pub(super) fn receive_data(&mut self, seg: &TcpRepr) {
        let offset = self.stream_offset(seg.seq);
        // Bytes before the stream's first byte (at or before the peer's SYN) are not data: trim
        // them, or the rest would be stored that many places early.
        let skip = usize::try_from(offset.min(0).unsigned_abs()).unwrap_or(usize::MAX);
        let payload = seg.payload.get(skip..).unwrap_or_default();
        let start = offset.max(0) as u64;
        let before = self.rcv.buffer.next_offset();
        let result = self.rcv.buffer.insert(start, payload);
        if let Some(held) = &result.already_held {
            let to_seq = |offset: u64| seg.seq + skip + (offset - start) as usize;
            self.report_duplicate(to_seq(held.start), to_seq(held.end));
        }
        if result.duplicate {
            self.stats.duplicate_segments_in += 1;
            self.rcv.ack = AckState::Now;
            self.enter_quick_ack_mode();
            return;
        }
        // Counted in bytes, so a super-segment from a TUN with offloads counts as the
        // segments it merged.
        self.rcv.unacked_bytes += payload.len();
        if result.out_of_order {
            self.stats.out_of_order_in += 1;
            let grown = self.grow_if_window_bound(start + payload.len() as u64);
            self.rcv.out_of_order_since_advance += 1;
            self.rcv.out_of_order_unacked += 1;
            // RFC 5681 §4.2: an immediate duplicate ACK for an out-of-order segment, its own
            // block first (RFC 2018 §4). Without SACK the sender counts them, so each goes at
            // once; with SACK, as Linux does (tcp_comp_sack), the first DupThresh per RCV.NXT,
            // every new hole and every segment in quick-ACK mode (our ACKs are being lost) go
            // at once, and a segment that only lengthens a reported block waits for the
            // batch's end or `sack_compression` such segments. A window that just grew is
            // offered at once too: the sender stopped at the old edge. Each arriving datagram
            // is one segment here, a super-segment included.
            let quick = self.opts.sack && self.rcv.quick_acks > 0;
            if quick {
                self.rcv.quick_acks -= 1;
            }
            let urgent = !self.opts.sack
                || quick
                || grown
                || result.new_island
                || self.rcv.out_of_order_since_advance <= DUP_THRESH
                || self.rcv.out_of_order_unacked >= self.config.sack_compression;
            self.rcv.ack = if urgent {
                AckState::Now
            } else {
                self.rcv.ack.max(AckState::Batched)
            };
            return;
        }
        if result.advanced == 0 {
            return;
        }
        self.rcv.nxt += result.advanced;
        self.rcv.out_of_order_since_advance = 0;
        self.stats.bytes_in += result.advanced as u64;
        if !self.rcv.readable_signalled {
            self.rcv.readable_signalled = true;
            self.events.push_back(ConnEvent::Readable);
        }
        let filled_hole =
            self.rcv.buffer.next_offset() > before + payload.len() as u64 || start < before;
        if filled_hole || self.rcv.buffer.has_out_of_order() {
            // RFC 5681 §4.2: ACK at once when a segment fills (part of) a hole.
            self.rcv.ack = AckState::Now;
            return;
        }
        // RFC 9293 §3.8.6.3 / RFC 5681 §4.2: ACK at least every second full-sized segment,
        // that is once more than one segment's worth is unacknowledged (as Linux does).
        if self.rcv.quick_acks > 0 {
            self.rcv.quick_acks -= 1;
            self.rcv.ack = AckState::Now;
            return;
        }
        self.rcv.ack = if self.stretch_reached() {
            AckState::Now
        } else if self.rcv.unacked_bytes > self.receive_mss() {
            self.rcv.ack.max(AckState::Batched)
        } else {
            self.rcv.ack.max(AckState::Delayed)
        };
    }

    /// Data came again: acknowledge the next in-order segments one by one (`Recv::quick_acks`),
    /// as many as half the window holds in full segments, at most [`MAX_QUICK_ACKS`].
    pub(super) fn enter_quick_ack_mode(&mut self) {
        let window_segments = self.rcv.buffer.window() / (2 * self.receive_mss());
        let quick = window_segments.clamp(2, MAX_QUICK_ACKS as usize) as u32;
        self.rcv.quick_acks = self.rcv.quick_acks.max(quick);
    }

    /// The payload of a full-sized segment from the peer: our MSS less the timestamp option
    /// every segment carries when timestamps are on.
    pub(super) fn receive_mss(&self) -> usize {
        let options = if self.opts.timestamps {
            TIMESTAMP_OPTION_LEN
        } else {
            0
        };
        usize::from(self.config.mss).saturating_sub(options).max(1)
    }

    /// One ACK already covers as many full-sized segments as it should.
    pub(super) fn stretch_reached(&self) -> bool {
        let segments = self.config.ack_stretch.max(2) as usize;
        self.rcv.unacked_bytes >= segments * self.receive_mss()
    }

    pub(super) fn accept_pending_fin(&mut self, now: Instant) {
        let Some(offset) = self.rcv.pending_fin else {
            return;
        };
        if self.rcv.fin_received || offset != self.rcv.buffer.next_offset() {
            return;
        }
        self.rcv.pending_fin = None;
        self.rcv.out_of_order_since_advance = 0;
        self.rcv.fin_received = true;
        self.rcv.nxt += 1;
        self.rcv.ack = AckState::Now;
        self.events.push_back(ConnEvent::PeerFinished);
        match self.state {
            State::Established => self.state = State::CloseWait,
            State::FinWait1 => self.state = State::Closing,
            State::FinWait2 => self.enter_time_wait(now),
            _ => {}
        }
    }

    /// Receive-stream offset of sequence number `seq` (offset 0 = first data byte); negative for
    /// the peer's SYN and anything before it.
    pub(super) fn stream_offset(&self, seq: SeqNum) -> i64 {
        let delta = i64::from(seq - self.rcv.nxt);
        self.rcv.buffer.next_offset() as i64 + delta
    }

    /// Window value for the header, in bytes before scaling.
    ///
    /// Receiver-side SWS avoidance (RFC 9293 §3.8.6.2.2): the right edge moves only by at
    /// least min(buffer / 2, MSS); otherwise the edge already promised stands. The value is
    /// rounded *down* to the scale unit and never exceeds the free buffer: rounding up, as this
    /// once did to keep the edge from moving left, let the remembered edge creep a unit past the
    /// buffer with every ACK while the application did not read, and data inside a window we had
    /// offered was then cut off (RFC 7323 §2.3 and App. F). Rounding down may show the peer an
    /// edge up to a unit short of the promise; `rcv.adv` keeps the promise itself (it never
    /// moves left), so a segment that reaches it is still accepted. A full buffer gives a true
    /// zero window.
    pub(super) fn advertised_window_bytes(&self) -> usize {
        let scale = self.opts.rcv_scale;
        let free = self.rcv.buffer.window().min(scale.max_window().get());
        let promised = self.rcv.adv.distance_from(self.rcv.nxt);
        // Eff.snd.MSS: the connection's effective send MSS (RFC 1122 §4.2.3.3).
        let step = (self.rcv.buffer.capacity() / 2).min(self.snd.mss);
        let wanted = if free < promised + step {
            promised
        } else {
            free
        };
        WindowSize::new(wanted.min(free)).round_down(scale).get()
    }

    /// Whether a window update is owed (RFC 9293 §3.8.6.2.2): the window we would advertise now
    /// exceeds the one promised, and either the promise was under two of our MSS (a closed or
    /// nearly closed window reopening) or the window grew by at least half the buffer.
    pub(super) fn window_update_due(&self) -> bool {
        if !self.state.is_synchronized() || self.rcv.fin_received {
            return false;
        }
        let promised = self.rcv.adv.distance_from(self.rcv.nxt);
        let offered = self.advertised_window_bytes();
        let small = 2 * usize::from(self.config.mss);
        offered > promised
            && (promised < small || offered - promised >= self.rcv.buffer.capacity() / 2)
    }
}
