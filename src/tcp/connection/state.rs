//! The connection's state, grouped as in netstack3: the send half, the receive half and loss
//! recovery, plus the small records they hold. Fields are `pub(super)`: every file of
//! `connection` adds an `impl Connection` block working on them.

use std::time::Instant;

use super::super::congestion::CongestionControl;
use super::super::rack::{RackState, SentLog};
use super::super::reassembly::ReceiveBuffer;
use super::super::rto::RttEstimator;
use super::super::scoreboard::Scoreboard;
use super::super::send_buffer::SendBuffer;
use super::super::undo::UndoState;
use super::super::window::{WindowScale, WindowSize};
use crate::ipv4::IcmpErrorKind;
use crate::wire::SeqNum;

/// A fast recovery in progress (RFC 6675 with SACK, RFC 6582 NewReno without).
#[derive(Debug, Clone, Copy)]
pub(super) struct Recovery {
    /// RFC 6582 `recover` / RFC 6675 RecoveryPoint: SND.MAX when loss was detected.
    pub(super) point: SeqNum,
    /// RFC 6675 HighRxt: everything lost below this was retransmitted once.
    pub(super) high_rxt: SeqNum,
    /// Retransmit the first lost segment even if the window is full (fast retransmit and the
    /// NewReno partial-ACK retransmission).
    pub(super) forced: bool,
    /// The rescue retransmission (RFC 6675 §4 rule 4) was sent: RescueRxt is RecoveryPoint,
    /// so there is at most one per recovery.
    pub(super) rescued: bool,
    /// Proportional Rate Reduction (RFC 6937): bytes the peer reported delivered since
    /// recovery began (cumulatively or by SACK) ...
    pub(super) prr_delivered: usize,
    /// ... bytes sent since recovery began ...
    pub(super) prr_out: usize,
    /// ... the flight when it began (RecoverFS) ...
    pub(super) recover_fs: usize,
    /// ... and what the last ACK allows to be sent now (sndcnt).
    pub(super) sndcnt: usize,
}

/// How soon an ACK is owed, in rising urgency (so `max` combines two reasons).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum AckState {
    #[default]
    Idle,
    /// One full segment unacknowledged; the delayed-ACK timer runs.
    Delayed,
    /// Owed with the next transmission, but it may wait until the datagrams already queued
    /// have been read: the ACK then covers them all.
    Batched,
    /// Send an ACK before reading anything more: it carries a loss signal or news the peer
    /// acts on.
    Now,
}

/// The SYN options we negotiated, or learn from the peer.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Negotiated {
    pub(super) sack: bool,
    pub(super) timestamps: bool,
    /// Both sides sent the window scale option.
    pub(super) scaling: bool,
    /// Scale applied to windows the peer advertises.
    pub(super) snd_scale: WindowScale,
    /// Scale applied to windows we advertise.
    pub(super) rcv_scale: WindowScale,
}
/// How a new connection starts: the values the stack draws for it (in one place,
/// `Sockets::initial` in the stack), passed in because a `Connection` has no RNG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Initial {
    /// Our initial sequence number (RFC 6528: unpredictable off-path, rising with time).
    pub iss: SeqNum,
    /// Random offset of our timestamp clock (RFC 7323 §5.4: TSval = ms since start + offset), so
    /// TSvals reveal neither uptime nor how connections relate.
    pub ts_offset: u32,
}

/// The send half (RFC 9293 §3.3.1 send sequence variables, plus the send buffer).
#[derive(Debug)]
pub(super) struct SendState {
    /// ISS, our initial sequence number (the SYN's).
    pub(super) iss: SeqNum,
    /// SND.UNA: oldest unacknowledged sequence number.
    pub(super) una: SeqNum,
    /// SND.NXT: next sequence number to send.
    pub(super) nxt: SeqNum,
    /// Highest sequence number sent so far (see the module documentation).
    pub(super) max: SeqNum,
    /// SND.WND, in bytes (already scaled).
    pub(super) wnd: WindowSize,
    /// Largest window the peer ever offered (RFC 9293 §3.8.6.2.1, RFC 5961 §5.2 MAX.SND.WND).
    pub(super) max_wnd: WindowSize,
    /// SND.WL1: sequence number of the segment that last updated the window.
    pub(super) wl1: SeqNum,
    /// SND.WL2: acknowledgement number of the segment that last updated the window.
    pub(super) wl2: SeqNum,
    /// Bytes of payload per full-sized segment we send (peer MSS minus our options).
    pub(super) mss: usize,
    /// Sequence number of the send buffer's first byte; stops at our FIN's sequence number.
    pub(super) start: SeqNum,
    /// Application bytes not yet acknowledged.
    pub(super) buffer: SendBuffer,
    /// Application asked to close: FIN follows the last queued byte.
    pub(super) fin_queued: bool,
    /// The application hit a full send buffer and waits for `Writable`.
    pub(super) writable_wanted: bool,
    /// A zero-window probe is due.
    pub(super) probe_due: bool,
    /// Payload bytes per wire segment of the super-segment `poll_transmit` last returned.
    pub(super) burst: Option<u16>,
    /// Since when, and how many bytes were acknowledged since: the delivery rate the send
    /// buffer is sized by (`Connection::expand_send_buffer`).
    pub(super) rate: Option<(Instant, usize)>,
}

/// The receive half (RFC 9293 §3.3.1 receive sequence variables, plus the receive buffer and
/// what we owe the peer in ACKs).
#[derive(Debug)]
pub(super) struct RecvState {
    /// IRS, the peer's initial sequence number.
    pub(super) irs: SeqNum,
    /// RCV.NXT: next sequence number expected.
    pub(super) nxt: SeqNum,
    /// Right edge of the window we last advertised; never moves left (RFC 9293 §3.8.6.2.1).
    pub(super) adv: SeqNum,
    /// Received bytes, in order and out of order.
    pub(super) buffer: ReceiveBuffer,
    /// A FIN that arrived beyond a hole, as a stream offset.
    pub(super) pending_fin: Option<u64>,
    /// The peer's FIN was received in order.
    pub(super) fin_received: bool,
    /// TS.Recent (RFC 7323 §4.3): the TSval we echo.
    pub(super) ts_recent: u32,
    /// Last.ACK.sent (RFC 7323 §4.3).
    pub(super) last_ack_sent: SeqNum,
    /// How soon an ACK is owed.
    pub(super) ack: AckState,
    /// Payload bytes received since our last ACK.
    pub(super) unacked_bytes: usize,
    /// Out-of-order segments since RCV.NXT last moved: the first DupThresh are acknowledged
    /// at once whatever else happens, so a sender counting duplicate ACKs sees its threshold.
    pub(super) out_of_order_since_advance: u32,
    /// Out-of-order segments received since our last ACK (SACK compression,
    /// `TcpConfig::sack_compression`).
    pub(super) out_of_order_unacked: u32,
    /// In-order segments still to be acknowledged one by one, at once: data arriving a second
    /// time suggests our ACKs are being lost, and ACKs neither stretched nor batched then
    /// give the sender's recovery more of them to go on (Linux's quick-ACK mode,
    /// `tcp_enter_quickack_mode` on a retransmission it already had).
    pub(super) quick_acks: u32,
    /// Data that arrived again (left, right), to report as the first SACK block of the next ACK
    /// (D-SACK, RFC 2883 §4), so the sender can tell a spurious retransmission from a loss.
    pub(super) dsack: Option<(SeqNum, SeqNum)>,
    /// `Readable` was reported and the application has not read since.
    pub(super) readable_signalled: bool,
}

/// Loss detection and recovery: RTT estimation, congestion control, the SACK scoreboard.
#[derive(Debug)]
pub(super) struct LossState {
    /// SRTT/RTTVAR/RTO (RFC 6298).
    pub(super) rtt: RttEstimator,
    /// Karn-safe RTT timing of one segment when timestamps are off: (seq, sent at).
    pub(super) rtt_probe: Option<(SeqNum, Instant)>,
    /// Our TSval at the last retransmission timeout. An ACK echoing an older TSval answers a
    /// segment sent before the timeout, so its "RTT" would include the whole backoff.
    pub(super) timeout_ts: Option<u32>,
    /// The congestion controller (NewReno unless swapped).
    pub(super) cc: Box<dyn CongestionControl>,
    /// What the peer SACKed beyond SND.UNA (RFC 6675).
    pub(super) scoreboard: Scoreboard,
    /// The fast recovery in progress, if any.
    pub(super) recovery: Option<Recovery>,
    /// SND.MAX at the last retransmission timeout, until the cumulative ACK passes it: the
    /// duplicate ACKs the old flight still brings back must not start a fast recovery
    /// (RFC 6582 §3.2 steps 2 and 6, RFC 6675 §5.1).
    pub(super) rto_recover: Option<SeqNum>,
    /// Duplicate ACKs counted (RFC 5681 §3.2).
    pub(super) dup_acks: u32,
    /// Consecutive retransmission timeouts (or unanswered zero-window probes).
    pub(super) retries: u32,
    /// When data was last sent, to notice an idle period (RFC 5681 §4.1).
    pub(super) last_data_sent: Option<Instant>,
    /// The most sent and unacknowledged since the last congestion event (see `flight_peak`).
    pub(super) flight_peak: usize,
    /// RACK-TLP (RFC 8985): what was sent when, and the state judging it.
    pub(super) sent: SentLog,
    pub(super) rack: RackState,
    /// The probe timeout fired: the next `poll_transmit` sends a loss probe.
    pub(super) tlp_due: bool,
    /// The last ICMP error reported about an established connection, kept (not acted on:
    /// RFC 5927 §4.2) to name the cause if the connection then times out (RFC 1122 §4.2.3.9);
    /// forgotten when an ACK shows the path works again.
    pub(super) soft_error: Option<IcmpErrorKind>,
    /// The reduction that may yet be undone as spurious, and F-RTO (see `undo`).
    pub(super) undo: UndoState,
}
