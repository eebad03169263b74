//! The send path: `poll_transmit` and building segments.

use std::time::Instant;

use super::{AckState, Connection, State, TIMESTAMP_OPTION_LEN};
use crate::tcp::congestion::initial_window;
use crate::tcp::timers::Timer;
use crate::tcp::window::WindowSize;
use crate::trace::CcCause;
use crate::wire::tcp;
use crate::wire::{Control, SackBlock, SeqNum, TcpOptions, TcpRepr, Timestamps};

/// Largest TCP segment in an IPv4 datagram (64 KiB less a 20-byte IPv4 header).
const MAX_TCP_SEGMENT: usize = 65535 - 20;

impl Connection {
    /// The next segment to send, written as a complete TCP segment (checksum included) into
    /// `buf`, which must hold a full segment (MSS plus 60 bytes). Returns its length.
    ///
    /// With `TcpConfig::max_burst_segments` above 1 the segment may be a super-segment of
    /// several full segments of new data; [`Connection::segment_size`] then says how to cut it.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let Some(before) = self.trace_transmit_start(now) else {
            return self.next_segment(now, buf);
        };
        let len = self.next_segment(now, buf);
        self.trace_transmit_end(now, before, len.map(|len| &buf[..len]));
        len
    }

    /// Like [`Connection::poll_transmit`], except that a super-segment's payload stays in the
    /// send buffer: `buf` gets only its headers, and the second value says where the payload
    /// is (offset past SND.UNA and length, for [`Connection::send_data`]); the length returned
    /// counts it all the same. A device that writes the headers and the payload in one
    /// gathering call (a TUN with offloads) then spares the copy into `buf`: serving from a
    /// TUN, that copy was 5-6% of the server's CPU.
    pub fn poll_transmit_deferred(
        &mut self,
        now: Instant,
        buf: &mut [u8],
    ) -> Option<(usize, Option<(usize, usize)>)> {
        self.defer_payload = true;
        let len = self.poll_transmit(now, buf);
        self.defer_payload = false;
        let deferred = self.deferred.take();
        len.map(|len| (len, deferred))
    }

    /// The `len` bytes of the send buffer from `offset` past SND.UNA, in the two pieces the
    /// ring may hold them in: a payload [`Connection::poll_transmit_deferred`] left out.
    pub fn send_data(&self, offset: usize, len: usize) -> (&[u8], &[u8]) {
        self.snd.buffer.slices(offset, len)
    }

    /// The shared bytes of a payload [`Connection::poll_transmit_deferred`] left out, if that
    /// is how they are held (see [`Connection::send_shared`]).
    pub fn shared_data(&self, offset: usize, len: usize) -> Option<bytes::Bytes> {
        self.snd.buffer.shared_at(offset, len)
    }

    fn next_segment(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        self.snd.burst = None;
        if self.rst_due {
            self.rst_due = false;
            // RFC 9293 §3.10.4: <SEQ=SND.NXT><CTL=RST>, SND.NXT being the next new sequence
            // number (SND.MAX here: after a timeout `snd.nxt` was rewound to resend), so the
            // reset lands on the peer's RCV.NXT and is not just challenged (RFC 5961 §3) ...
            // but never beyond the window the peer offered (a zero-window probe's byte was not
            // taken): a reset outside it is dropped unanswered (Linux: tcp_acceptable_seq).
            let window_end = self.snd.una + self.snd.wnd;
            let seq = if self.snd.max.after(window_end) {
                window_end
            } else {
                self.snd.max
            };
            return Some(self.emit_rst(seq, buf));
        }
        if let Some(seq) = self.stray_rst.take() {
            return Some(self.emit_rst(seq, buf));
        }
        match self.state {
            State::Closed => return None,
            State::SynSent | State::SynReceived if self.snd.nxt == self.snd.iss => {
                return Some(self.emit_syn(now, buf));
            }
            State::SynSent => return None,
            State::TimeWait => return self.emit_ack_if_due(now, buf),
            _ => {}
        }
        if self.keepalive_due {
            return Some(self.emit_keepalive(now, buf));
        }
        if let Some(len) = self.emit_loss_probe(now, buf) {
            return Some(len);
        }
        if let Some(len) = self.emit_recovery_retransmission(now, buf) {
            return Some(len);
        }
        if let Some(len) = self.emit_new_segment(now, buf) {
            return Some(len);
        }
        if let Some(len) = self.emit_recovery_extra(now, buf) {
            return Some(len);
        }
        self.arm_persist(now);
        if self.window_update_due() {
            self.rcv.ack = AckState::Now;
        }
        let len = self.emit_ack_if_due(now, buf);
        self.arm_delayed_ack(now);
        len
    }

    /// Payload bytes per wire segment when the segment `poll_transmit` last returned is a
    /// super-segment (several full segments of new data back to back), for a device with
    /// segmentation offload (or `device::gso::split_tcp`) to cut it up; `None` for one
    /// segment. A super-segment's checksum field holds only the pseudo-header sum (checksum
    /// offload's convention): whoever cuts it sums each piece.
    pub fn segment_size(&self) -> Option<u16> {
        self.snd.burst
    }

    /// How many bytes of new data to send now when a full segment of `piece` bytes may go:
    /// as many full segments as `room` (unsent data, peer window and cwnd allow), the
    /// configured burst and `buf_len` (headers included, and an IPv4 datagram's 64 KiB) hold.
    /// More than one piece marks the segment as a super-segment ([`Connection::segment_size`]).
    /// Not in loss recovery: retransmissions and PRR's pacing stay one segment at a time; and
    /// at most a share of the window (`TcpConfig::bursts_per_window`), except for the end of
    /// what the application queued when it is no more than an initial window (`unsent`: all
    /// of it fits in `room`): a short reply goes whole, in one write to the device.
    fn burst_len(&mut self, piece: usize, room: usize, unsent: usize, buf_len: usize) -> usize {
        let limit = usize::from(self.config.max_burst_segments);
        if limit <= 1 || self.loss.recovery.is_some() || piece == 0 {
            return piece;
        }
        // A fraction of the window per super-segment, so that a flight is several of them.
        let window = self.loss.cc.window().min(self.snd.wnd.get());
        let share = (window / (usize::from(self.config.bursts_per_window.max(1)) * piece)).max(1);
        let headers = tcp::HEADER_LEN + self.snd.mss - piece + self.data_options_len();
        let space = buf_len.min(MAX_TCP_SEGMENT).saturating_sub(headers);
        // The last of the data, an initial window at most: no ACK clock is left to keep going
        // after it, so splitting it would only cost writes (and the receiver's wake-ups). This
        // is what Linux sends a short reply as (its TSO sizing gives a fresh connection on a
        // short path one buffer for the whole initial window); an ACK of it that is lost is
        // the tail loss probe's to repair. A short last piece is fine: offload and
        // `gso::split_tcp` cut the remainder as a segment of its own.
        let whole = room == unsent
            && room <= initial_window(self.snd.mss)
            && room <= space
            && room.div_ceil(piece) <= limit;
        let (len, pieces) = if whole {
            (room, room.div_ceil(piece))
        } else {
            let pieces = (room / piece).min(space / piece).min(limit).min(share);
            (pieces * piece, pieces)
        };
        match u16::try_from(piece) {
            Ok(size) if pieces > 1 => {
                self.snd.burst = Some(size);
                len
            }
            _ => piece,
        }
    }

    pub(super) fn arm_delayed_ack(&mut self, now: Instant) {
        if self.rcv.ack == AckState::Delayed && !self.timers.is_set(Timer::DelayedAck) {
            self.timers
                .set(Timer::DelayedAck, now + self.config.delayed_ack);
        }
    }

    pub(super) fn arm_persist(&mut self, now: Instant) {
        let unsent = self.data_end_seq().distance_from(self.snd.nxt);
        let waiting = unsent > 0 && self.snd.wnd.is_zero() && self.snd.una == self.snd.max;
        if waiting && !self.timers.is_set(Timer::Persist) && !self.snd.probe_due {
            self.timers.set(Timer::Persist, now + self.loss.rtt.rto());
        }
    }

    pub(super) fn emit_ack_if_due(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if self.rcv.ack < AckState::Batched {
            return None;
        }
        let repr = self.base_repr(now, self.snd.nxt, Control::None, true);
        repr.emit_header(buf);
        Some(self.finish_segment(repr, 0, buf))
    }

    /// New data from SND.NXT (or go-back-N retransmission after a timeout), within the peer's
    /// window and cwnd, with the FIN when the last byte goes.
    pub(super) fn emit_new_segment(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if !matches!(
            self.state,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::Closing
                | State::LastAck
        ) {
            return None;
        }
        let data_end = self.data_end_seq();
        let fin_pending = self.snd.fin_queued && self.snd.nxt.before_eq(data_end);
        let unsent = data_end.distance_from(self.snd.nxt);
        if unsent == 0 && !fin_pending {
            return None;
        }
        let mut start = self.snd.nxt;
        // Skip data the peer already SACKed when going back after a timeout.
        if let Some((hole_start, _)) = self.loss.scoreboard.next_hole(start, self.snd.max) {
            if hole_start.after(start) && self.snd.nxt.before(self.snd.max) {
                start = hole_start;
                self.snd.nxt = start;
            }
        }
        let unsent = data_end.distance_from(start);
        let wnd_edge = self.snd.una + self.snd.wnd;
        let wnd_room = wnd_edge.distance_from(start);
        if wnd_room > 0 {
            // A zero-window probe is no restart: the window it finds closed says nothing new.
            self.restart_if_idle(now);
        }
        let cwnd_room = self.send_allowance();
        let max_payload = self
            .snd
            .mss
            .saturating_sub(self.sack_option_len(self.data_options_len()));
        let mut len = unsent.min(wnd_room).min(cwnd_room).min(max_payload);
        let nothing_in_flight = self.snd.nxt == self.snd.una;
        if self.snd.probe_due && wnd_room == 0 && unsent > 0 {
            // RFC 9293 §3.8.6.1: a zero-window probe carries one byte beyond the window.
            len = 1;
        } else if len < unsent.min(max_payload) {
            // Sender-side SWS avoidance (RFC 9293 §3.8.6.2.1): a short segment only when it is
            // at least half the largest window seen, or when nothing else is in flight.
            let big_enough = len >= self.snd.max_wnd.get() / 2;
            if len == 0 || !(big_enough || nothing_in_flight) {
                return None;
            }
        } else if self.config.nagle && len < max_payload && !nothing_in_flight {
            return None;
        }
        if start == self.snd.max && len == max_payload {
            let room = unsent.min(wnd_room).min(cwnd_room);
            len = self.burst_len(max_payload, room, unsent, buf.len());
        }
        let len = self.within_one_run(start, len);
        let with_fin = fin_pending && start + len == data_end;
        if len == 0 && !with_fin {
            return None;
        }
        self.snd.probe_due = false;
        if start.before(self.snd.max) {
            self.stats.retransmits_timeout += 1;
        }
        Some(self.emit_data_fin(now, start, len, with_fin, buf))
    }

    /// Cuts a segment of `len` bytes from `start` where the send buffer's copied and shared
    /// bytes meet ([`SendBuffer::contiguous`](crate::tcp::send_buffer::SendBuffer::contiguous)),
    /// so its payload is one piece a device can write; a super-segment cut to one piece or
    /// less is sent as a plain segment. More data follows at once: this is no short segment
    /// in the sense of SWS avoidance, which is decided before.
    pub(super) fn within_one_run(&mut self, start: SeqNum, len: usize) -> usize {
        let held = self
            .snd
            .buffer
            .contiguous(start.distance_from(self.snd.start));
        if len <= held {
            return len;
        }
        let len = held;
        if self
            .snd
            .burst
            .is_some_and(|piece| len <= usize::from(piece))
        {
            self.snd.burst = None;
        }
        len
    }

    /// RFC 5681 §4.1: nothing in flight and nothing sent for longer than the RTO means the
    /// window is stale; it restarts from at most the initial window (as Linux does, measured
    /// from the last data sent).
    fn restart_if_idle(&mut self, now: Instant) {
        let idle = self.snd.una == self.snd.max
            && self
                .loss
                .last_data_sent
                .is_some_and(|at| now.saturating_duration_since(at) > self.loss.rtt.rto());
        if idle {
            self.loss.cc.on_idle_restart(self.snd.mss);
            self.loss.undo.clear();
            self.note_cc(CcCause::IdleRestart);
            self.loss.last_data_sent = None;
        }
    }

    pub(super) fn data_end_seq(&self) -> SeqNum {
        self.snd.start + self.snd.buffer.len()
    }

    pub(super) fn data_options_len(&self) -> usize {
        if self.opts.timestamps {
            TIMESTAMP_OPTION_LEN
        } else {
            0
        }
    }

    /// Bytes our SACK blocks would take on a segment that already has `other` option bytes.
    pub(super) fn sack_option_len(&self, other: usize) -> usize {
        if !self.opts.sack || (!self.rcv.buffer.has_out_of_order() && self.rcv.dsack.is_none()) {
            return 0;
        }
        let room = (tcp::MAX_OPTIONS_LEN - other).saturating_sub(4) / 8;
        let blocks = (self.rcv.buffer.sack_ranges().count()
            + usize::from(self.rcv.dsack.is_some()))
        .min(room);
        if blocks == 0 {
            0
        } else {
            4 + 8 * blocks
        }
    }

    pub(super) fn emit_data_fin(
        &mut self,
        now: Instant,
        start: SeqNum,
        len: usize,
        fin: bool,
        buf: &mut [u8],
    ) -> usize {
        let data_end = self.data_end_seq();
        let control = if fin {
            Control::Fin
        } else if start + len == data_end {
            Control::Psh
        } else {
            Control::None
        };
        let repr = self.base_repr(now, start, control, true);
        let header_len = repr.emit_header(buf);
        let offset = start.distance_from(self.snd.start);
        let shared = self.snd.buffer.holds_shared();
        let copied = if self.defer_payload && (self.snd.burst.is_some() || shared) && len > 0 {
            // Checksum offload sums the payload, so nothing here needs to read it (and shared
            // bytes, a mapped file's, must only be read by the device's write).
            let (front, back) = self.snd.buffer.slices(offset, len);
            self.deferred = Some((offset, front.len() + back.len()));
            front.len() + back.len()
        } else {
            self.snd
                .buffer
                .copy_out(offset, &mut buf[header_len..header_len + len])
        };
        debug_assert_eq!(copied, len);
        self.stats.bytes_out += copied as u64;
        let end = start + copied + usize::from(fin);
        let new_data = !start.before(self.snd.max);
        match self.snd.burst {
            // Loss detection and recovery see the wire segments a super-segment stands for.
            Some(piece) => {
                let mut from = start;
                while from.before(end) {
                    let to = (from + usize::from(piece)).min(end);
                    let to = if end.distance_from(to) <= usize::from(fin) {
                        end
                    } else {
                        to
                    };
                    self.record_sent(now, from, to, false);
                    from = to;
                }
                let pieces = copied.div_ceil(usize::from(piece)) as u64;
                self.stats.segments_out += pieces.saturating_sub(1);
            }
            None => self.record_sent(now, start, end, !new_data),
        }
        if self.loss.rtt_probe.is_none()
            && !self.opts.timestamps
            && end.after(self.snd.max)
            && start == self.snd.max
        {
            self.loss.rtt_probe = Some((start, now));
        }
        if start.before(self.snd.max)
            && self
                .loss
                .rtt_probe
                .is_some_and(|(seq, _)| seq.in_range(start, end))
        {
            // Karn's rule: a retransmitted segment's ACK is ambiguous.
            self.loss.rtt_probe = None;
        }
        if end.after(self.snd.nxt) && start.before_eq(self.snd.nxt) {
            self.snd.nxt = end;
        }
        self.loss.last_data_sent = Some(now);
        self.count_recovery_send(copied + usize::from(fin));
        self.undo_on_send(now, start, end, new_data);
        // The user timeout measures how long data stays unacknowledged, so it starts afresh
        // when this segment ends an idle period (nothing was in flight).
        let was_idle = self.snd.una == self.snd.max;
        self.snd.max = self.snd.max.max(end);
        if !self.timers.is_set(Timer::Retransmit) {
            self.timers
                .set(Timer::Retransmit, now + self.loss.rtt.rto());
        }
        self.timers.stop(Timer::Persist);
        if was_idle || !self.timers.is_set(Timer::User) {
            self.timers.set(Timer::User, now + self.config.user_timeout);
        }
        if new_data {
            // RFC 8985 §7.2: restart the probe timeout after sending new data.
            self.schedule_loss_probe(now);
        }
        self.finish_segment(repr, copied, buf)
    }

    /// A header template with ACK, window and options filled in.
    pub(super) fn base_repr(
        &self,
        now: Instant,
        seq: SeqNum,
        control: Control,
        with_ack: bool,
    ) -> TcpRepr<'static> {
        let window_bytes = self.advertised_window_bytes();
        let mut options = TcpOptions::default();
        if self.opts.timestamps {
            options.timestamps = Some(Timestamps {
                value: self.ts_now(now),
                echo: self.rcv.ts_recent,
            });
        }
        if self.opts.sack {
            let to_seq =
                |offset: u64| self.rcv.nxt + (offset - self.rcv.buffer.next_offset()) as usize;
            // RFC 2883 §4: a D-SACK block goes first; the SACK blocks follow as usual.
            let dsack = self
                .rcv
                .dsack
                .map(|(left, right)| SackBlock { left, right });
            let islands = self.rcv.buffer.sack_ranges().map(|range| SackBlock {
                left: to_seq(range.start),
                right: to_seq(range.end),
            });
            for (slot, block) in options
                .sack_blocks
                .iter_mut()
                .zip(dsack.into_iter().chain(islands))
            {
                *slot = Some(block);
            }
        }
        TcpRepr {
            src_port: self.tuple.local.port(),
            dst_port: self.tuple.remote.port(),
            control,
            seq,
            ack: with_ack.then_some(self.rcv.nxt),
            window: WindowSize::new(window_bytes).to_field(self.opts.rcv_scale),
            options,
            payload: &[],
        }
    }

    /// Bookkeeping common to every segment carrying an ACK: what we advertised and acknowledged.
    pub(super) fn finish_segment(
        &mut self,
        repr: TcpRepr,
        payload_len: usize,
        buf: &mut [u8],
    ) -> usize {
        let header_len = repr.header_len();
        let total = header_len + payload_len;
        let (src, dst) = (*self.tuple.local.ip(), *self.tuple.remote.ip());
        if self.snd.burst.is_some() || self.deferred.is_some() {
            // A super-segment only reaches the wire cut into pieces, each summed afresh; a
            // payload left out of `buf` is summed by the device (`buf` does not hold it).
            tcp::fill_partial_checksum(src, dst, &mut buf[..total]);
        } else {
            tcp::fill_checksum(src, dst, &mut buf[..total]);
        }
        if let Some(ack) = repr.ack {
            if ack == self.rcv.last_ack_sent
                && payload_len == 0
                && self.rcv.buffer.has_out_of_order()
            {
                self.stats.dup_acks_out += 1;
            }
            self.rcv.last_ack_sent = ack;
            let edge = ack + self.opts.rcv_scale.apply(repr.window).get();
            if edge.after(self.rcv.adv) {
                self.rcv.adv = edge;
            }
            self.rcv.ack = AckState::Idle;
            self.rcv.dsack = None;
            self.rcv.unacked_bytes = 0;
            self.rcv.out_of_order_unacked = 0;
            self.timers.stop(Timer::DelayedAck);
        }
        self.stats.segments_out += 1;
        total
    }
}
