//! The final counters and estimates of a connection (`--stats`, and the `stats` of the trace's
//! `close` event), and a datagram's numbers relative to a connection (for `--impair`'s trace
//! events): what the trace keeps, read from outside `trace.rs` to keep that file small.

use std::time::Duration;

use super::trace::{millis, state_name, unwrap_near};
use super::{Connection, State};
use crate::trace::event::ConnSummary;

impl Connection {
    /// The final counters and estimates (`--stats`, and the `close` event's `stats`). The
    /// counts only a trace keeps (retransmissions by cause, SACK blocks, time limited) are
    /// zero unless `TcpConfig::trace` is on.
    pub fn summary(&self) -> ConnSummary {
        let rtt = &self.loss.rtt;
        let stats = &self.stats;
        let ssthresh = self.loss.cc.ssthresh();
        let t = self.trace.as_deref();
        let snd_ref = t.map_or(0, |t| t.snd_ref);
        let start = unwrap_near(snd_ref, self.snd.start.0.wrapping_sub(self.snd.iss.0));
        let limited = t.map_or([Duration::ZERO; 3], |t| t.limited);
        let zero = t.map_or(Duration::ZERO, |t| {
            t.zero_ours_total
                + t.zero_ours_since
                    .map_or(Duration::ZERO, |s| t.now.saturating_duration_since(s))
        });
        let rexmits = t.map(|t| t.rexmits.clone()).unwrap_or_default();
        ConnSummary {
            local: Some(self.tuple.local),
            remote: Some(self.tuple.remote),
            state: state_name(self.state),
            duration_s: t.map_or(0.0, |t| {
                t.now.saturating_duration_since(t.created).as_micros() as f64 / 1e6
            }),
            rtt_ms: rtt.srtt().map(millis),
            rttvar_ms: rtt.srtt().map(|_| millis(rtt.rttvar())),
            min_rtt_ms: t.and_then(|t| t.min_rtt).map(millis),
            rtt_samples: rtt.last_sample().1,
            rto_ms: millis(rtt.rto()),
            backoff: rtt.backoffs(),
            mss: self.snd.mss as u64,
            cwnd: self.loss.cc.window() as u64,
            ssthresh: (ssthresh < usize::MAX / 4).then_some(ssthresh as u64),
            inflight: self.pipe() as u64,
            snd_wnd: self.snd.wnd.get() as u64,
            rcv_wnd: t.and_then(|t| t.adv).map_or(0, |(w, _)| w),
            rcv_buffer: self.rcv.buffer.capacity() as u64,
            bytes_sent: stats.bytes_out,
            bytes_retrans: t.map_or(0, |t| t.bytes_retrans),
            bytes_acked: start.saturating_sub(1),
            bytes_received: stats.bytes_in,
            segs_out: stats.segments_out,
            segs_in: stats.segments_in,
            retrans_total: rexmits.total(),
            retrans: rexmits,
            timeouts: stats.timeouts,
            recoveries: stats.recoveries,
            loss_probes: stats.loss_probes,
            undos_dsack: stats.undos_dsack,
            undos_timestamp: stats.undos_timestamp,
            undos_frto: stats.undos_frto,
            spurious_rtos: stats.spurious_rtos,
            rack_marked_lost: stats.rack_marked_lost,
            dup_acks_in: stats.dup_acks_in,
            dup_acks_out: stats.dup_acks_out,
            reordering_seen: self.loss.rack.reordering_seen(),
            out_of_order_in: stats.out_of_order_in,
            duplicate_segments_in: stats.duplicate_segments_in,
            sack_blocks_in: t.map_or(0, |t| t.sack_blocks_in),
            sack_blocks_out: t.map_or(0, |t| t.sack_blocks_out),
            dsack_in: t.map_or(0, |t| t.dsack_in),
            dsack_out: t.map_or(0, |t| t.dsack_out),
            checksum_failures: stats.checksum_failures,
            cwnd_limited_ms: millis(limited[0]),
            rwnd_limited_ms: millis(limited[1]),
            app_limited_ms: millis(limited[2]),
            rcv_zero_window_ms: millis(zero),
        }
    }

    /// A datagram's TCP numbers relative to this connection (for `--impair`'s events): `seq`
    /// in the sender's space, `ack` in the other, the window scaled as negotiated.
    pub fn trace_relative(
        &self,
        outbound: bool,
        seq: u32,
        ack: Option<u32>,
        window: u16,
        syn: bool,
    ) -> (u64, Option<u64>, u64) {
        let (snd_ref, rcv_ref) = self
            .trace
            .as_ref()
            .map_or((0, 0), |t| (t.snd_ref, t.rcv_ref));
        let (iss, irs) = (self.snd.iss.0, self.rcv.irs.0);
        let near = |reference: u64, value: u32, base: u32| {
            unwrap_near(reference, value.wrapping_sub(base))
        };
        if outbound {
            let win = if syn {
                u64::from(window)
            } else {
                self.opts.rcv_scale.apply(window).get() as u64
            };
            (
                near(snd_ref, seq, iss),
                ack.map(|a| near(rcv_ref, a, irs)),
                win,
            )
        } else {
            let win = if syn {
                u64::from(window)
            } else {
                self.opts.snd_scale.apply(window).get() as u64
            };
            let base = if syn && ack.is_none() { seq } else { irs };
            let base = if syn && self.state == State::SynSent {
                seq
            } else {
                base
            };
            (
                near(rcv_ref, seq, base),
                ack.map(|a| near(snd_ref, a, iss)),
                win,
            )
        }
    }
}
