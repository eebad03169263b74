//! One TCP connection (RFC 9293) as a sans-IO state machine.
//!
//! # Contract
//! A `Connection` never reads a clock, a file descriptor or an RNG: every call takes `now`.
//! The owner drives it by
//! 1. feeding each inbound segment for its 4-tuple to [`Connection::handle_segment`],
//! 2. calling [`Connection::handle_timeout`] when [`Connection::poll_timeout`] has passed
//!    (spurious calls are harmless),
//! 3. calling [`Connection::poll_transmit`] until it returns `None` after any of the above or
//!    after the application used `send`/`recv`/`close`,
//! 4. draining [`Connection::poll_event`].
//!
//! ```text
//!   Send sequence space (RFC 9293 §3.3.1)       Receive sequence space
//!
//!      1         2          3          4           1          2          3
//!   ----------|----------|----------|----------  ----------|----------|----------
//!          SND.UNA    SND.NXT    SND.UNA               RCV.NXT    RCV.NXT
//!                              +SND.WND                        +RCV.WND
//! ```
//! `snd.max` is the highest sequence number sent so far: after a timeout `snd.nxt` goes back to
//! `snd.una` and walks forward again (go-back-N), while SACK recovery retransmits holes without
//! moving `snd.nxt` at all.
//!
//! # Layout
//! The state is grouped as in netstack3: `SendState` (`self.snd`, the send sequence space and
//! buffer), `RecvState` (`self.rcv`, the receive sequence space, buffer and ACK debt) and
//! `LossState` (`self.loss`, RTT estimation, congestion control and loss recovery). The code
//! is split by concern, each file adding an `impl Connection` block:
//! - this file: public types, constructors, the application's calls and timers;
//! - `state`: the state groups (`SendState`, `RecvState`, `LossState`) and their records;
//! - `handshake`: SYN-SENT, learning the peer's SYN options, sending our SYN;
//! - `receive`: acceptability, payload, FIN, the window to advertise;
//! - `recovery`: RTT samples, ACK processing, duplicate ACKs, SACK loss detection, pipe, what to
//!   retransmit next, the retransmission timeout;
//! - `lossprobe`: RACK-TLP (RFC 8985): feeding the sent log and RACK, the reordering and
//!   probe timers, the loss probe;
//! - `transmit`: `poll_transmit` and segment building;
//! - `undo`: undoing reductions that D-SACK, timestamps or F-RTO show spurious;
//! - `control`: RST, challenge ACKs, TIME-WAIT and CLOSED;
//! - `trace`: `--trace` events (nothing at all when off); `summary`: the `--stats` summary.

mod config;
mod control;
pub(crate) mod cookie;
mod handshake;
mod lossprobe;
mod receive;
mod recovery;
mod state;
mod summary;
mod trace;
mod transmit;
mod undo;

use std::collections::VecDeque;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use thiserror::Error;

pub use state::Initial;
use state::{AckState, LossState, Negotiated, Recovery, RecvState, SendState};

use super::congestion::CongestionControl;
use super::rack::{RackState, SentLog};
use super::reassembly::ReceiveBuffer;
use super::rto::RttEstimator;
use super::scoreboard::Scoreboard;
use super::send_buffer::SendBuffer;
use super::timers::{Timer, TimerTable};
use super::tuple::FourTuple;
use super::undo::UndoState;
use super::window::{WindowScale, WindowSize};
use crate::ipv4::IcmpErrorKind;
use crate::trace::Role;
use crate::wire::{SeqNum, TcpRepr};
pub use config::TcpConfig;

/// The RFC 9293 states a connection can be in (LISTEN belongs to the stack's listeners).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Our SYN was (or is about to be) sent; waiting for the peer's SYN.
    SynSent,
    /// The peer's SYN arrived and our SYN-ACK answers it; waiting for its ACK.
    SynReceived,
    /// Open in both directions.
    Established,
    /// We closed; our FIN is queued or unacknowledged.
    FinWait1,
    /// Our FIN was acknowledged; waiting for the peer's.
    FinWait2,
    /// The peer closed; we may still send.
    CloseWait,
    /// Both sides closed at once; waiting for the ACK of our FIN.
    Closing,
    /// The peer closed first, then we did; waiting for the ACK of our FIN.
    LastAck,
    /// Both FINs acknowledged; waiting 2*MSL so stray segments of this incarnation die out.
    TimeWait,
    /// Nothing left: never opened, ended or aborted.
    Closed,
}

impl State {
    /// True once the handshake completed (RFC 9293 "synchronized states").
    pub fn is_synchronized(self) -> bool {
        !matches!(self, State::SynSent | State::SynReceived | State::Closed)
    }
}

/// Why a connection ended abnormally.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConnError {
    /// The peer answered our SYN with a reset (nobody listens there), or reset a connection
    /// still in SYN-RECEIVED.
    #[error("connection refused")]
    Refused,
    /// The peer reset an established connection.
    #[error("connection reset by peer")]
    Reset,
    /// Retransmissions or the user timeout ran out without an answer.
    #[error("connection timed out")]
    TimedOut,
    /// An ICMP error reported the peer unreachable (RFC 1122 §4.2.3.9, RFC 5927); the message
    /// is the ICMP reason's.
    #[error("{0}")]
    Unreachable(IcmpErrorKind),
    /// The application aborted the connection.
    #[error("connection aborted")]
    Aborted,
    /// TAP mode: the next hop (this address) never answered ARP, so the datagrams for the
    /// peer could not leave (RFC 1122 §2.3.2.2 discards them); failing at once tells the user
    /// why rather than retransmitting into the void until a timeout.
    #[error("no ARP reply from {0}")]
    NoArpReply(std::net::Ipv4Addr),
}

/// Why `send`/`recv` could not do anything now.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IoError {
    /// Nothing to read, or no room in the send buffer; wait for the matching event.
    #[error("operation would block")]
    WouldBlock,
    /// The application already closed the sending direction.
    #[error("connection is closing for sending")]
    SendClosed,
    /// The connection is closed and was never (or is no longer) usable for this.
    #[error("connection is not yet established")]
    NotConnected,
    /// The connection ended with an error.
    #[error(transparent)]
    Failed(#[from] ConnError),
}

/// What happened, for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnEvent {
    /// The handshake completed.
    Connected,
    /// New in-order bytes can be read.
    Readable,
    /// Send buffer space freed up after a short write.
    Writable,
    /// The peer sent FIN: no more bytes will arrive after those buffered.
    PeerFinished,
    /// The connection ended cleanly (both FINs acknowledged, or TIME-WAIT over).
    Closed,
    /// The connection ended with an error.
    Failed(ConnError),
}

/// Counters for diagnostics and the summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnStats {
    /// Segments handed to the connection.
    pub segments_in: u64,
    /// Segments the connection emitted, resets included.
    pub segments_out: u64,
    /// Payload bytes delivered in order to the receive buffer.
    pub bytes_in: u64,
    /// Payload bytes sent, retransmissions included.
    pub bytes_out: u64,
    /// Segments retransmitted after a timeout (go-back-N after RTO, SYN, FIN), and the resends
    /// of data in flight after a path MTU drop.
    pub retransmits_timeout: u64,
    /// Segments retransmitted by fast retransmit / SACK recovery.
    pub retransmits_fast: u64,
    /// Retransmission timer expirations.
    pub timeouts: u64,
    /// Loss recovery episodes entered.
    pub recoveries: u64,
    /// Segments RACK marked lost (RFC 8985 §6.2).
    pub rack_marked_lost: u64,
    /// Tail loss probes sent (RFC 8985 §7.3).
    pub loss_probes: u64,
    /// Tail loss probes that repaired a loss and cost one cwnd reduction (RFC 8985 §7.4).
    pub loss_probe_repairs: u64,
    /// Reductions undone because D-SACKs reported every retransmission as a duplicate
    /// (RFC 2883 §5, RFC 3708).
    pub undos_dsack: u64,
    /// Reductions undone because timestamps showed originals arrived (RFC 3522).
    pub undos_timestamp: u64,
    /// Timeouts F-RTO showed spurious and undid (RFC 5682).
    pub undos_frto: u64,
    /// Retransmission timeouts shown spurious, by any detector (RFC 4015).
    pub spurious_rtos: u64,
    /// Duplicate ACKs received (RFC 5681 §2 definition).
    pub dup_acks_in: u64,
    /// ACKs we sent that repeated the previous acknowledgement because data was missing.
    pub dup_acks_out: u64,
    /// Data segments that arrived beyond a hole.
    pub out_of_order_in: u64,
    /// Segments carrying only data we already had.
    pub duplicate_segments_in: u64,
    /// Segments for this 4-tuple dropped for a bad checksum (counted by the stack).
    pub checksum_failures: u64,
    /// Challenge ACKs sent (RFC 5961).
    pub challenge_acks: u64,
    /// Keep-alive probes sent (RFC 9293 §3.8.4).
    pub keepalive_probes: u64,
    /// Segments dropped by PAWS or as unacceptable.
    pub rejected_in: u64,
    /// Smoothed RTT, once there is a sample.
    pub srtt: Option<Duration>,
    /// The latest RTT sample, and how many have been taken.
    pub rtt_sample: Option<Duration>,
    pub rtt_samples: u64,
    /// The retransmission timeout now (backoff included).
    pub rto: Duration,
    /// Congestion window in bytes.
    pub cwnd: usize,
    /// Slow-start threshold in bytes.
    pub ssthresh: usize,
}

/// One TCP connection; see the module documentation for how to drive it.
#[derive(Debug)]
pub struct Connection {
    config: TcpConfig,
    state: State,
    tuple: FourTuple,
    /// Timestamp clock origin: TSval = ms since `epoch` + `ts_offset` (RFC 7323 §5.4).
    epoch: Instant,
    ts_offset: u32,
    opts: Negotiated,
    snd: SendState,
    rcv: RecvState,
    loss: LossState,

    /// Send an RST on the next transmission (abort).
    rst_due: bool,
    /// A reset answering one stray segment, with the sequence number its ACK asked for; the
    /// connection is unaffected.
    stray_rst: Option<SeqNum>,
    /// RFC 5961 §7 rate limit: (start of the current second, challenge ACKs sent in it).
    challenge_window: (Instant, u32),
    /// When we last answered an unacceptable segment without data (rate limit).
    last_out_of_window_ack: Option<Instant>,
    /// Keep-alive probes sent since the peer was last heard from.
    keepalive_probes: u32,
    /// Send a keep-alive probe on the next transmission.
    keepalive_due: bool,
    /// `poll_transmit_deferred` is asking: leave a super-segment's payload in the send buffer.
    defer_payload: bool,
    /// Where the payload left out of the last segment is: its offset past SND.UNA and length.
    deferred: Option<(usize, usize)>,

    timers: TimerTable,
    events: VecDeque<ConnEvent>,
    error: Option<ConnError>,
    stats: ConnStats,
    /// `--trace` state, when `TcpConfig::trace` is on.
    trace: Option<Box<trace::ConnTrace>>,
}

/// Least time between two ACKs answering unacceptable segments without data (Linux's
/// tcp_invalid_ratelimit default).
const OUT_OF_WINDOW_ACK_INTERVAL: Duration = Duration::from_millis(500);

/// The MSS assumed when the peer sends none (RFC 9293 §3.7.1).
const DEFAULT_PEER_MSS: usize = 536;
/// Bytes of the timestamps option as we lay it out.
const TIMESTAMP_OPTION_LEN: usize = 12;

impl Connection {
    /// Active open: a connection in SYN-SENT whose SYN goes out on the first `poll_transmit`.
    pub fn connect(now: Instant, config: TcpConfig, tuple: FourTuple, initial: Initial) -> Self {
        let mut conn = Connection::new(now, config, tuple, initial);
        conn.state = State::SynSent;
        conn.loss
            .rtt
            .set_linear_backoffs(conn.config.syn_linear_timeouts);
        conn.opts = Negotiated {
            sack: conn.config.sack,
            timestamps: conn.config.timestamps,
            scaling: conn.config.window_scaling,
            snd_scale: WindowScale::NONE,
            rcv_scale: conn.wanted_rcv_scale(),
        };
        conn.trace_open(Role::Client);
        conn
    }

    /// Passive open: a connection in SYN-RECEIVED answering `syn`.
    pub fn accept(
        now: Instant,
        config: TcpConfig,
        tuple: FourTuple,
        syn: &TcpRepr,
        initial: Initial,
    ) -> Self {
        let mut conn = Connection::new(now, config, tuple, initial);
        conn.state = State::SynReceived;
        conn.learn_syn(syn);
        // RFC 7323 §2.2: the window in a SYN is never scaled.
        conn.snd.wnd = WindowScale::NONE.apply(syn.window);
        conn.snd.max_wnd = conn.snd.wnd;
        conn.snd.wl1 = syn.seq;
        conn.trace_open(Role::Server);
        conn
    }

    fn new(now: Instant, config: TcpConfig, tuple: FourTuple, initial: Initial) -> Self {
        let Initial { iss, ts_offset } = initial;
        let send_mss = DEFAULT_PEER_MSS;
        let mut timers = TimerTable::default();
        timers.set(Timer::User, now + config.user_timeout);
        Connection {
            state: State::Closed,
            tuple,
            epoch: now,
            ts_offset,
            opts: Negotiated::default(),
            snd: SendState {
                iss,
                una: iss,
                nxt: iss,
                max: iss,
                wnd: WindowSize::ZERO,
                max_wnd: WindowSize::ZERO,
                wl1: SeqNum(0),
                wl2: iss,
                mss: send_mss,
                start: iss + 1,
                buffer: SendBuffer::new(config.send_buffer),
                fin_queued: false,
                burst: None,
                rate: None,
                writable_wanted: false,
                probe_due: false,
            },
            rcv: RecvState {
                irs: SeqNum(0),
                nxt: SeqNum(0),
                adv: SeqNum(0),
                buffer: ReceiveBuffer::new(config.recv_buffer),
                pending_fin: None,
                fin_received: false,
                ts_recent: 0,
                last_ack_sent: SeqNum(0),
                ack: AckState::Idle,
                unacked_bytes: 0,
                out_of_order_since_advance: 0,
                out_of_order_unacked: 0,
                quick_acks: 0,
                dsack: None,
                readable_signalled: false,
            },
            loss: LossState {
                rtt: RttEstimator::new(config.rto),
                rtt_probe: None,
                timeout_ts: None,
                cc: config.congestion.build(send_mss),
                scoreboard: Scoreboard::default(),
                recovery: None,
                rto_recover: None,
                dup_acks: 0,
                retries: 0,
                last_data_sent: None,
                flight_peak: 0,
                sent: SentLog::default(),
                rack: RackState::default(),
                tlp_due: false,
                soft_error: None,
                undo: UndoState::default(),
            },
            rst_due: false,
            stray_rst: None,
            defer_payload: false,
            deferred: None,
            challenge_window: (now, 0),
            last_out_of_window_ack: None,
            timers,
            events: VecDeque::new(),
            error: None,
            stats: ConnStats::default(),
            trace: config.trace.then(|| trace::ConnTrace::new(now)),
            keepalive_probes: 0,
            keepalive_due: false,
            config,
        }
    }

    /// Replaces the congestion controller (tests swap in `Unlimited`).
    pub fn set_congestion_control(&mut self, cc: Box<dyn CongestionControl>) {
        self.loss.cc = cc;
    }

    /// The RFC 9293 state, for the owner and diagnostics.
    pub fn state(&self) -> State {
        self.state
    }

    /// Our end of the connection.
    pub fn local(&self) -> SocketAddrV4 {
        self.tuple.local
    }

    /// The peer's end of the connection.
    pub fn remote(&self) -> SocketAddrV4 {
        self.tuple.remote
    }

    /// The error that ended the connection, if one did.
    pub fn error(&self) -> Option<&ConnError> {
        self.error.as_ref()
    }

    /// Counters, with the current RTT and window filled in.
    pub fn stats(&self) -> ConnStats {
        let (rtt_sample, rtt_samples) = self.loss.rtt.last_sample();
        ConnStats {
            srtt: self.loss.rtt.srtt(),
            rtt_sample,
            rtt_samples,
            rto: self.loss.rtt.rto(),
            cwnd: self.loss.cc.window(),
            ssthresh: self.loss.cc.ssthresh(),
            ..self.stats.clone()
        }
    }

    /// True when an ACK should go out now rather than at the end of the receive batch: an
    /// out-of-order segment that opens a hole, is one of the first DupThresh per RCV.NXT, is
    /// the `sack_compression`-th since our last ACK, grew the window, or arrives in quick-ACK
    /// mode (each one without SACK); a duplicate segment; an in-order one that fills (part of)
    /// a hole or arrives while one remains; a challenge; or `ack_stretch` segments' worth
    /// unacknowledged. The event loop flushes on it, so batching never hides loss signals; the
    /// rest goes out when the batch ends. Whatever it says, an owed ACK goes out with the next
    /// `poll_transmit`.
    pub fn ack_due(&self) -> bool {
        self.rcv.ack == AckState::Now
    }

    /// Lets the stack attribute checksum failures to this connection.
    pub fn count_checksum_failure(&mut self) {
        self.stats.checksum_failures += 1;
    }

    /// Current retransmission timeout, for diagnostics.
    pub fn rto(&self) -> Duration {
        self.loss.rtt.rto()
    }

    /// True once nothing more will happen: the owner may forget the connection.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed && !self.rst_due && self.stray_rst.is_none()
    }

    /// Bytes waiting to be read.
    pub fn recv_queue(&self) -> usize {
        self.rcv.buffer.readable()
    }

    /// The receive window we last advertised (RCV.NXT to the right edge), in bytes: what the
    /// peer may send now, shown beside a download's progress (0 before the handshake).
    pub fn advertised_window(&self) -> usize {
        if self.state.is_synchronized() {
            self.rcv.adv.distance_from(self.rcv.nxt)
        } else {
            0
        }
    }

    /// Bytes queued for sending and not yet acknowledged.
    pub fn send_queue(&self) -> usize {
        self.snd.buffer.len()
    }

    /// Heap bytes the receive and send buffers hold now (not their sizes): both are allocated
    /// as data needs them, so an idle connection costs a few KiB whatever the windows.
    pub fn buffer_heap_bytes(&self) -> usize {
        self.rcv.buffer.heap_bytes() + self.snd.buffer.heap_bytes()
    }

    /// Queues bytes for sending; returns how many fit in the send buffer.
    pub fn send(&mut self, data: &[u8]) -> Result<usize, IoError> {
        self.sendable(data.len())?;
        Ok(self.snd.buffer.push(data))
    }

    /// Queues bytes the application shares rather than copies (a mapped file's pages), as
    /// many as fit; returns how many. Nothing in the stack reads them: a segment carrying
    /// them leaves as a deferred payload ([`Connection::poll_transmit_deferred`]), for a
    /// device that gathers. The bytes must not change until acknowledged.
    pub fn send_shared(&mut self, data: bytes::Bytes) -> Result<usize, IoError> {
        self.sendable(data.len())?;
        Ok(self.snd.buffer.push_shared(data))
    }

    /// Queues up to `max` bytes written by `fill` straight into the send buffer (two slices,
    /// filled in order; it returns how many bytes it wrote), so a file can be read into it
    /// without a copy of its own. `WouldBlock` when the buffer had no room.
    pub fn send_with(
        &mut self,
        max: usize,
        fill: impl FnOnce(&mut [u8], &mut [u8]) -> usize,
    ) -> Result<usize, IoError> {
        self.sendable(max)?;
        Ok(self.snd.buffer.push_with(max, fill))
    }

    /// Whether `want` more bytes may be queued now: an error if the connection cannot send
    /// (any more), `WouldBlock` if the buffer is full. Asks for a writable event when not all
    /// of `want` fits.
    fn sendable(&mut self, want: usize) -> Result<(), IoError> {
        if let Some(err) = &self.error {
            return Err(err.clone().into());
        }
        match self.state {
            State::SynSent | State::SynReceived | State::Established | State::CloseWait => {}
            State::Closed => return Err(IoError::NotConnected),
            _ => return Err(IoError::SendClosed),
        }
        if self.snd.fin_queued {
            return Err(IoError::SendClosed);
        }
        if self.snd.buffer.free() < want {
            self.snd.writable_wanted = true;
            if self.snd.buffer.free() == 0 {
                return Err(IoError::WouldBlock);
            }
        }
        Ok(())
    }

    /// Reads in-order bytes. `Ok(0)` means end of stream (the peer's FIN, all data read).
    pub fn recv(&mut self, out: &mut [u8]) -> Result<usize, IoError> {
        let n = self.rcv.buffer.read(out);
        self.after_read(n)
    }

    /// Hands readable bytes to `consume` without copying; it returns how many it took.
    pub fn recv_with(
        &mut self,
        consume: impl FnOnce(&[u8], &[u8]) -> usize,
    ) -> Result<usize, IoError> {
        let (a, b) = self.rcv.buffer.readable_slices();
        let n = consume(a, b).min(a.len() + b.len());
        self.rcv.buffer.consume(n);
        self.after_read(n)
    }

    fn after_read(&mut self, n: usize) -> Result<usize, IoError> {
        if n > 0 {
            self.rcv.readable_signalled = false;
            return Ok(n);
        }
        // End of stream only once every byte before the FIN was taken: a reader that took
        // nothing this time (its own buffer was full) must not mistake that for EOF.
        if self.rcv.buffer.readable() > 0 {
            return Err(IoError::WouldBlock);
        }
        if self.rcv.fin_received {
            return Ok(0);
        }
        if let Some(err) = &self.error {
            return Err(err.clone().into());
        }
        if self.state == State::Closed {
            return Ok(0);
        }
        Err(IoError::WouldBlock)
    }

    /// Closes our sending direction: FIN after the queued bytes (RFC 9293 §3.10.4).
    pub fn close(&mut self) {
        match self.state {
            State::SynSent => self.enter_closed(None),
            // The FIN waits for ESTABLISHED, where the ACK of our SYN moves us to FIN-WAIT-1.
            State::SynReceived => self.snd.fin_queued = true,
            State::Established => {
                self.snd.fin_queued = true;
                self.state = State::FinWait1;
            }
            State::CloseWait => {
                self.snd.fin_queued = true;
                self.state = State::LastAck;
            }
            _ => {}
        }
    }

    /// Aborts: RST to the peer if synchronized, then CLOSED (RFC 9293 §3.10.5).
    pub fn abort(&mut self) {
        if self.state == State::Closed {
            return;
        }
        self.rst_due = self.state != State::SynSent;
        self.enter_closed(Some(ConnError::Aborted));
    }

    /// Ends the connection at once with `error`, for a failure found below TCP (the link
    /// layer could not resolve the next hop): nothing more is sent, the application gets
    /// `error`. A connection already closed is left as it is.
    pub fn fail(&mut self, error: ConnError) {
        self.enter_closed(Some(error));
    }

    /// An ICMP error quoting one of our segments with sequence number `seq` (RFC 5927: only
    /// believed when `seq` is in flight). Before the handshake completes, any error ends an
    /// active open and a hard one a passive open (RFC 1122 §4.2.3.9). Once synchronized,
    /// every error is soft (RFC 5927 §4.2, as Linux and the BSDs do): the path has worked, and
    /// a forged or transient ICMP message must not reset the connection; the error is only
    /// remembered, to name the cause if the retransmissions then run out.
    pub fn handle_icmp_error(&mut self, seq: SeqNum, kind: IcmpErrorKind) {
        if !seq.in_range(self.snd.una, self.snd.max.max(self.snd.una + 1)) {
            return;
        }
        if self.state.is_synchronized() {
            self.loss.soft_error = Some(kind);
        } else if kind.is_hard() || self.state == State::SynSent {
            self.enter_closed(Some(ConnError::Unreachable(kind)));
        }
    }

    /// The error for a connection whose retransmissions or user timeout ran out: the last
    /// ICMP error heard about it if there is one (RFC 1122 §4.2.3.9), else a timeout.
    fn timeout_error(&self) -> ConnError {
        match self.loss.soft_error {
            Some(kind) => ConnError::Unreachable(kind),
            None => ConnError::TimedOut,
        }
    }

    /// Path MTU discovery (RFC 1191): the path cannot carry segments above `mtu` bytes of IP.
    pub fn handle_path_mtu(&mut self, seq: SeqNum, mtu: u16) {
        if !seq.in_range(self.snd.una, self.snd.max.max(self.snd.una + 1)) {
            return;
        }
        let overhead = 40
            + if self.opts.timestamps {
                TIMESTAMP_OPTION_LEN
            } else {
                0
            };
        let mss = usize::from(mtu).saturating_sub(overhead).max(64);
        if mss < self.snd.mss {
            self.snd.mss = mss;
            // Resend what is in flight in smaller segments now.
            if self.snd.una != self.snd.max && self.state.is_synchronized() {
                self.snd.nxt = self.snd.una;
            }
        }
    }

    /// The next thing the application should know.
    pub fn poll_event(&mut self) -> Option<ConnEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            return None;
        }
        self.timers.next_deadline()
    }

    /// Fires every expired timer.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.trace_timeout_start(now);
        while let Some(timer) = self.timers.expire(now) {
            match timer {
                Timer::Retransmit => self.on_retransmit_timeout(now),
                Timer::DelayedAck => {
                    if self.rcv.ack == AckState::Delayed {
                        self.rcv.ack = AckState::Now;
                    }
                }
                Timer::Persist => self.snd.probe_due = true,
                Timer::TimeWait => self.enter_closed(None),
                Timer::User => {
                    let stuck = self.snd.una != self.snd.max || !self.state.is_synchronized();
                    if stuck && self.state != State::TimeWait {
                        let rst = self.state.is_synchronized();
                        self.enter_closed(Some(self.timeout_error()));
                        self.rst_due = rst;
                    }
                }
                Timer::KeepAlive => self.on_keepalive_timer(now),
                Timer::RackReorder => self.on_rack_timer(now),
                Timer::LossProbe => self.on_loss_probe_timer(now),
            }
        }
        self.trace_timeout_end();
    }

    /// Our TSval at `now` (RFC 7323 §5.4: a millisecond clock with a random start).
    fn ts_now(&self, now: Instant) -> u32 {
        let ms = now.saturating_duration_since(self.epoch).as_millis() as u32;
        ms.wrapping_add(self.ts_offset)
    }
}
