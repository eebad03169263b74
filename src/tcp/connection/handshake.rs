//! Opening: SYN-SENT, learning the peer's options from its SYN, and sending our SYN.

use std::time::Instant;

use super::{
    AckState, ConnError, ConnEvent, Connection, State, DEFAULT_PEER_MSS, TIMESTAMP_OPTION_LEN,
};
use crate::tcp::timers::Timer;
use crate::tcp::window::{WindowScale, WindowSize};
use crate::wire::tcp::{self, MAX_SACK_BLOCKS};
use crate::wire::{Control, TcpOptions, TcpRepr, Timestamps};

impl Connection {
    pub(super) fn handle_syn_sent(&mut self, now: Instant, seg: &TcpRepr) {
        if let Some(ack) = seg.ack {
            // First check: the ACK must cover our SYN and nothing we did not send; otherwise
            // RFC 9293 §3.10.7.3 answers <SEQ=SEG.ACK><CTL=RST> (unless it is a reset).
            if ack.before_eq(self.snd.iss) || ack.after(self.snd.max) {
                if seg.control != Control::Rst {
                    self.stray_rst = Some(ack);
                }
                return;
            }
        }
        if seg.control == Control::Rst {
            if seg.ack.is_some() {
                self.enter_closed(Some(ConnError::Refused));
            }
            return;
        }
        if seg.control != Control::Syn {
            return;
        }
        self.learn_syn(seg);
        // RFC 7323 §2.2: the window in a SYN is never scaled.
        self.snd.wnd = WindowScale::NONE.apply(seg.window);
        self.snd.max_wnd = self.snd.wnd;
        self.snd.wl1 = seg.seq;
        match seg.ack {
            Some(ack) => {
                self.snd.wl2 = ack;
                // Karn: after a lost SYN only a timestamp echo says which SYN this answers
                // (the sampler refuses an echo from before the timeout).
                let unambiguous = self.opts.timestamps
                    || (self.loss.rtt.backoffs() == 0 && self.loss.retries == 0);
                if self.snd.una == self.snd.iss && unambiguous {
                    self.sample_rtt_from(now, seg, Some(self.snd.iss));
                }
                // The SYN's linear timeouts end with it: data timeouts double from the first.
                self.loss.rtt.set_linear_backoffs(0);
                if self.loss.rtt.backoffs() > 0 {
                    // RFC 6298 §5.7: no sample after a SYN timed out; data starts with a fresh
                    // 3 s RTO, not the handshake's backoff doubled again.
                    self.loss.rtt.restart_after_syn_loss();
                }
                self.loss.rtt_probe = None;
                self.snd.una = ack;
                self.snd.nxt = self.snd.nxt.max(ack);
                self.loss.retries = 0;
                self.timers.stop(Timer::Retransmit);
                self.state = State::Established;
                self.events.push_back(ConnEvent::Connected);
                self.rcv.ack = AckState::Now;
                // RFC 9293 §3.10.7.3: data on a SYN-ACK starts one after the SYN's own number.
                let after_syn = TcpRepr {
                    control: Control::None,
                    seq: seg.seq + 1,
                    ..*seg
                };
                self.process_payload(now, &after_syn);
            }
            None => {
                // Simultaneous open (RFC 9293 §3.5): answer with SYN-ACK from SYN-RECEIVED.
                self.state = State::SynReceived;
                self.snd.nxt = self.snd.iss;
            }
        }
    }

    /// Reads the SYN's options and sets up the receive side.
    pub(super) fn learn_syn(&mut self, syn: &TcpRepr) {
        self.rcv.irs = syn.seq;
        self.rcv.nxt = syn.seq + 1;
        self.rcv.last_ack_sent = self.rcv.nxt;
        let peer = syn.options;
        self.opts.sack = self.config.sack && peer.sack_permitted;
        self.opts.timestamps = self.config.timestamps && peer.timestamps.is_some();
        match (self.config.window_scaling, peer.window_scale) {
            (true, Some(shift)) => {
                self.opts.scaling = true;
                self.opts.snd_scale = WindowScale::new(shift);
                self.opts.rcv_scale = self.wanted_rcv_scale();
            }
            _ => {
                self.opts.scaling = false;
                self.opts.snd_scale = WindowScale::NONE;
                self.opts.rcv_scale = WindowScale::NONE;
            }
        }
        if let Some(ts) = peer.timestamps {
            self.rcv.ts_recent = ts.value;
        }
        let peer_mss = peer.mss.map_or(DEFAULT_PEER_MSS, usize::from);
        let mut mss = peer_mss.min(usize::from(self.config.mss)).max(64);
        if self.opts.timestamps {
            mss -= TIMESTAMP_OPTION_LEN;
        }
        self.snd.mss = mss;
        self.loss.cc = self.config.congestion.build(mss);
        self.rcv.adv = self.rcv.nxt;
        self.rcv.adv = self.rcv.nxt + self.advertised_window_bytes();
    }

    /// The scale we offer: the smallest that lets the whole receive buffer be advertised.
    pub(super) fn wanted_rcv_scale(&self) -> WindowScale {
        WindowScale::for_window(self.config.recv_buffer.max(self.config.recv_buffer_max))
    }

    pub(super) fn emit_syn(&mut self, now: Instant, buf: &mut [u8]) -> usize {
        let synack = self.state == State::SynReceived;
        let ts = self.opts.timestamps || (!synack && self.config.timestamps);
        let mut options = TcpOptions {
            mss: Some(self.config.mss),
            window_scale: None,
            sack_permitted: if synack {
                self.opts.sack
            } else {
                self.config.sack
            },
            timestamps: ts.then(|| Timestamps {
                value: self.ts_now(now),
                echo: if synack { self.rcv.ts_recent } else { 0 },
            }),
            sack_blocks: [None; MAX_SACK_BLOCKS],
        };
        if self.opts.scaling {
            options.window_scale = Some(self.opts.rcv_scale.shift());
        }
        // RFC 7323 §2.2: the window in a SYN is never scaled.
        let window = WindowSize::new(self.rcv.buffer.window()).to_field(WindowScale::NONE);
        let repr = TcpRepr {
            src_port: self.tuple.local.port(),
            dst_port: self.tuple.remote.port(),
            control: Control::Syn,
            seq: self.snd.iss,
            ack: synack.then_some(self.rcv.nxt),
            window,
            options,
            payload: &[],
        };
        let retransmission = self.snd.max != self.snd.iss;
        if retransmission {
            self.stats.retransmits_timeout += 1;
        } else if !(synack && self.opts.timestamps) {
            // Time the SYN even when we offer timestamps: the peer may decline them.
            self.loss.rtt_probe = Some((self.snd.iss, now));
        }
        self.snd.nxt = self.snd.iss + 1;
        self.snd.max = self.snd.max.max(self.snd.nxt);
        if !self.timers.is_set(Timer::Retransmit) {
            self.timers
                .set(Timer::Retransmit, now + self.loss.rtt.rto());
        }
        if synack {
            self.rcv.last_ack_sent = self.rcv.nxt;
            self.rcv.adv = self.rcv.nxt + usize::from(window);
        }
        let len = repr.emit_header(buf);
        tcp::fill_checksum(
            *self.tuple.local.ip(),
            *self.tuple.remote.ip(),
            &mut buf[..len],
        );
        self.stats.segments_out += 1;
        len
    }
}
