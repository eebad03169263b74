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
//! `snd_max` is the highest sequence number sent so far: after a timeout `snd_nxt` goes back to
//! `snd_una` and walks forward again (go-back-N), while SACK recovery retransmits holes without
//! moving `snd_nxt` at all.

use std::collections::VecDeque;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use thiserror::Error;

use super::congestion::{CongestionControl, NewReno};
use super::reassembly::ReceiveBuffer;
use super::rto::{RtoBounds, RttEstimator};
use super::scoreboard::Scoreboard;
use super::send_buffer::SendBuffer;
use super::timers::{Timer, TimerTable};
use crate::wire::tcp::{self, MAX_SACK_BLOCKS};
use crate::wire::{Control, SackBlock, SeqNum, TcpOptions, TcpRepr, Timestamps};

/// Tunables of one connection; the defaults suit a bulk download over a LAN or the Internet.
#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// The MSS we announce: the device MTU minus 40.
    pub mss: u16,
    /// Receive buffer, which is also the largest window we advertise.
    pub recv_buffer: usize,
    /// Send buffer: application bytes not yet acknowledged.
    pub send_buffer: usize,
    pub window_scaling: bool,
    pub timestamps: bool,
    pub sack: bool,
    /// Nagle's algorithm (RFC 9293 §3.7.4). Off by default: request/response traffic.
    pub nagle: bool,
    pub rto: RtoBounds,
    /// Longest an ACK for in-order data may wait (RFC 9293 §3.8.6.3 allows up to 500 ms).
    pub delayed_ack: Duration,
    /// Most full-sized segments' worth of data one ACK may cover while a batch of queued
    /// datagrams is read.
    /// Every ACK written to a TUN runs the forwarding path and the sender's ACK processing
    /// inside that write, so one per queued segment pair costs more than the data; like a
    /// kernel receiver behind GRO (64 KB) or SACK compression (`tcp_comp_sack_nr`, 44), we
    /// stretch ACKs across the batch up to this many segments.
    pub ack_stretch: u32,
    /// TIME-WAIT length (2*MSL), also the FIN-WAIT-2 limit once the application closed.
    pub time_wait: Duration,
    /// Abort when sent data stays unacknowledged this long (RFC 5482 user timeout).
    pub user_timeout: Duration,
    /// Retransmissions of SYN or SYN-ACK before giving up.
    pub syn_retries: u32,
    /// Consecutive retransmission timeouts of data before giving up.
    pub data_retries: u32,
    /// RFC 5961 §7: most challenge ACKs per second.
    pub challenge_acks_per_second: u32,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            mss: 1460,
            recv_buffer: 1 << 20,
            send_buffer: 256 << 10,
            window_scaling: true,
            timestamps: true,
            sack: true,
            nagle: false,
            rto: RtoBounds::default(),
            delayed_ack: Duration::from_millis(40),
            ack_stretch: 44,
            time_wait: Duration::from_secs(60),
            user_timeout: Duration::from_secs(300),
            syn_retries: 6,
            data_retries: 15,
            challenge_acks_per_second: 10,
        }
    }
}

/// The RFC 9293 states a connection can be in (LISTEN belongs to the stack's listeners).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
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
    #[error("connection refused")]
    Refused,
    #[error("connection reset by peer")]
    Reset,
    #[error("connection timed out")]
    TimedOut,
    #[error("{0}")]
    Unreachable(String),
    #[error("connection aborted")]
    Aborted,
}

/// Why `send`/`recv` could not do anything now.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IoError {
    #[error("operation would block")]
    WouldBlock,
    #[error("connection is closing for sending")]
    SendClosed,
    #[error("connection is not yet established")]
    NotConnected,
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
    pub segments_in: u64,
    pub segments_out: u64,
    /// Payload bytes delivered in order to the receive buffer.
    pub bytes_in: u64,
    /// Payload bytes sent, retransmissions included.
    pub bytes_out: u64,
    /// Segments retransmitted after a timeout (go-back-N after RTO, SYN, FIN).
    pub retransmits_timeout: u64,
    /// Segments retransmitted by fast retransmit / SACK recovery.
    pub retransmits_fast: u64,
    /// Retransmission timer expirations.
    pub timeouts: u64,
    /// Loss recovery episodes entered.
    pub recoveries: u64,
    pub dup_acks_in: u64,
    /// ACKs we sent that repeated the previous acknowledgement because data was missing.
    pub dup_acks_out: u64,
    pub out_of_order_in: u64,
    pub duplicate_segments_in: u64,
    /// Segments for this 4-tuple dropped for a bad checksum (counted by the stack).
    pub checksum_failures: u64,
    pub challenge_acks: u64,
    /// Segments dropped by PAWS or as unacceptable.
    pub rejected_in: u64,
    pub srtt: Option<Duration>,
    pub cwnd: usize,
    pub ssthresh: usize,
}

#[derive(Debug, Clone, Copy)]
struct Recovery {
    /// RFC 6582 `recover` / RFC 6675 RecoveryPoint: SND.MAX when loss was detected.
    point: SeqNum,
    /// RFC 6675 HighRxt: everything lost below this was retransmitted once.
    high_rxt: SeqNum,
    /// Retransmit the first lost segment even if the window is full (fast retransmit and the
    /// NewReno partial-ACK retransmission).
    forced: bool,
}

/// How soon an ACK is owed, in rising urgency (so `max` combines two reasons).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum AckState {
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
struct Negotiated {
    sack: bool,
    timestamps: bool,
    /// Both sides sent the window scale option.
    scaling: bool,
    /// Shift applied to windows the peer advertises.
    snd_shift: u8,
    /// Shift applied to windows we advertise.
    rcv_shift: u8,
}

/// One TCP connection; see the module documentation for how to drive it.
#[derive(Debug)]
pub struct Connection {
    config: TcpConfig,
    state: State,
    local: SocketAddrV4,
    remote: SocketAddrV4,
    /// Timestamp clock origin: TSval = ms since `epoch` + `ts_offset` (RFC 7323 §5.4).
    epoch: Instant,
    ts_offset: u32,
    opts: Negotiated,

    iss: SeqNum,
    snd_una: SeqNum,
    snd_nxt: SeqNum,
    snd_max: SeqNum,
    snd_wnd: usize,
    max_snd_wnd: usize,
    snd_wl1: SeqNum,
    snd_wl2: SeqNum,
    /// Bytes of payload per full-sized segment we send (peer MSS minus our options).
    send_mss: usize,
    /// Sequence number of the send buffer's first byte; stops at our FIN's sequence number.
    send_start: SeqNum,
    send: SendBuffer,
    /// Application asked to close: FIN follows the last queued byte.
    fin_queued: bool,

    irs: SeqNum,
    rcv_nxt: SeqNum,
    /// Right edge of the window we last advertised; never moves left (RFC 9293 §3.8.6.2.1).
    rcv_adv: SeqNum,
    recv: ReceiveBuffer,
    /// A FIN that arrived beyond a hole, as a stream offset.
    pending_fin: Option<u64>,
    fin_received: bool,
    ts_recent: u32,
    last_ack_sent: SeqNum,
    ack: AckState,
    /// Payload bytes received since our last ACK.
    unacked_bytes: usize,
    /// Out-of-order segments since RCV.NXT last moved: the first few are acknowledged at once
    /// whatever else happens, so a sender counting duplicate ACKs sees its threshold.
    out_of_order_since_advance: u32,
    /// Data that arrived again (left, right), to report as the first SACK block of the next ACK
    /// (D-SACK, RFC 2883 §4), so the sender can tell a spurious retransmission from a loss.
    dsack: Option<(SeqNum, SeqNum)>,

    rtt: RttEstimator,
    /// Karn-safe RTT timing of one segment when timestamps are off: (seq, sent at).
    rtt_probe: Option<(SeqNum, Instant)>,
    /// Our TSval at the last retransmission timeout. An ACK echoing an older TSval answers a
    /// segment sent before the timeout, so its "RTT" would include the whole backoff.
    timeout_ts: Option<u32>,
    cc: Box<dyn CongestionControl>,
    scoreboard: Scoreboard,
    recovery: Option<Recovery>,
    /// SND.MAX at the last retransmission timeout, until the cumulative ACK passes it: the
    /// duplicate ACKs the old flight still brings back must not start a fast recovery
    /// (RFC 6582 §3.2 steps 2 and 6, RFC 6675 §5.1).
    rto_recover: Option<SeqNum>,
    dup_acks: u32,
    retries: u32,
    /// A zero-window probe is due.
    probe_due: bool,
    /// Send an RST on the next transmission (abort).
    rst_due: bool,
    /// A reset answering one stray segment, with the sequence number its ACK asked for; the
    /// connection is unaffected.
    stray_rst: Option<SeqNum>,
    challenge_window: (Instant, u32),
    /// When we last answered an unacceptable segment without data (rate limit).
    last_out_of_window_ack: Option<Instant>,
    /// The application hit a full send buffer and waits for `Writable`.
    writable_wanted: bool,
    readable_signalled: bool,

    timers: TimerTable,
    events: VecDeque<ConnEvent>,
    error: Option<ConnError>,
    stats: ConnStats,
}

/// Least time between two ACKs answering unacceptable segments without data (Linux's
/// tcp_invalid_ratelimit default).
const OUT_OF_WINDOW_ACK_INTERVAL: Duration = Duration::from_millis(500);

/// RFC 5681 §3.2: fast retransmit after this many duplicate ACKs.
const DUP_THRESH: u32 = 3;
/// The MSS assumed when the peer sends none (RFC 9293 §3.7.1).
const DEFAULT_PEER_MSS: usize = 536;
/// Largest window field value.
const MAX_WINDOW_FIELD: usize = 65535;
/// RFC 7323 §2.3: shifts above 14 are treated as 14.
const MAX_WINDOW_SHIFT: u8 = 14;
/// Bytes of the timestamps option as we lay it out.
const TIMESTAMP_OPTION_LEN: usize = 12;
/// Duplicate ACKs a sender waits for before it retransmits (RFC 5681 §3.2, DupThresh).
const DUPLICATE_ACK_THRESHOLD: u32 = 3;

impl Connection {
    /// Active open: a connection in SYN-SENT whose SYN goes out on the first `poll_transmit`.
    pub fn connect(
        now: Instant,
        config: TcpConfig,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        iss: SeqNum,
        ts_offset: u32,
    ) -> Self {
        let mut conn = Connection::new(now, config, local, remote, iss, ts_offset);
        conn.state = State::SynSent;
        conn.opts = Negotiated {
            sack: conn.config.sack,
            timestamps: conn.config.timestamps,
            scaling: conn.config.window_scaling,
            snd_shift: 0,
            rcv_shift: conn.wanted_rcv_shift(),
        };
        conn
    }

    /// Passive open: a connection in SYN-RECEIVED answering `syn`.
    pub fn accept(
        now: Instant,
        config: TcpConfig,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        syn: &TcpRepr,
        iss: SeqNum,
        ts_offset: u32,
    ) -> Self {
        let mut conn = Connection::new(now, config, local, remote, iss, ts_offset);
        conn.state = State::SynReceived;
        conn.learn_syn(syn);
        conn.snd_wnd = usize::from(syn.window);
        conn.max_snd_wnd = conn.snd_wnd;
        conn.snd_wl1 = syn.seq;
        conn
    }

    fn new(
        now: Instant,
        config: TcpConfig,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        iss: SeqNum,
        ts_offset: u32,
    ) -> Self {
        let send_mss = DEFAULT_PEER_MSS;
        let mut timers = TimerTable::default();
        timers.set(Timer::User, now + config.user_timeout);
        Connection {
            state: State::Closed,
            local,
            remote,
            epoch: now,
            ts_offset,
            opts: Negotiated::default(),
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            snd_wnd: 0,
            max_snd_wnd: 0,
            snd_wl1: SeqNum(0),
            snd_wl2: iss,
            send_mss,
            send_start: iss + 1,
            send: SendBuffer::new(config.send_buffer),
            fin_queued: false,
            irs: SeqNum(0),
            rcv_nxt: SeqNum(0),
            rcv_adv: SeqNum(0),
            recv: ReceiveBuffer::new(config.recv_buffer),
            pending_fin: None,
            fin_received: false,
            ts_recent: 0,
            last_ack_sent: SeqNum(0),
            ack: AckState::Idle,
            unacked_bytes: 0,
            out_of_order_since_advance: 0,
            dsack: None,
            rtt: RttEstimator::new(config.rto),
            rtt_probe: None,
            timeout_ts: None,
            cc: Box::new(NewReno::new(send_mss)),
            scoreboard: Scoreboard::default(),
            recovery: None,
            rto_recover: None,
            dup_acks: 0,
            retries: 0,
            probe_due: false,
            rst_due: false,
            stray_rst: None,
            challenge_window: (now, 0),
            last_out_of_window_ack: None,
            writable_wanted: false,
            readable_signalled: false,
            timers,
            events: VecDeque::new(),
            error: None,
            stats: ConnStats::default(),
            config,
        }
    }

    /// Replaces the congestion controller (tests swap in `Unlimited`).
    pub fn set_congestion_control(&mut self, cc: Box<dyn CongestionControl>) {
        self.cc = cc;
    }

    // ---------------------------------------------------------------- accessors

    pub fn state(&self) -> State {
        self.state
    }

    pub fn local(&self) -> SocketAddrV4 {
        self.local
    }

    pub fn remote(&self) -> SocketAddrV4 {
        self.remote
    }

    /// The error that ended the connection, if one did.
    pub fn error(&self) -> Option<&ConnError> {
        self.error.as_ref()
    }

    /// Counters, with the current RTT and window filled in.
    pub fn stats(&self) -> ConnStats {
        ConnStats {
            srtt: self.rtt.srtt(),
            cwnd: self.cc.window(),
            ssthresh: self.cc.ssthresh(),
            ..self.stats.clone()
        }
    }

    /// True when an ACK should go out now rather than at the end of the receive batch: a new
    /// hole, one of the first three out-of-order segments since RCV.NXT moved, any out-of-order
    /// segment without SACK, a duplicate segment, a filled hole, a challenge, or `ack_stretch`
    /// segments' worth unacknowledged. The event loop flushes on it, so batching never hides
    /// loss signals; ACKs for the second segment onwards (RFC 5681 §4.2) go out when the batch
    /// ends. Whatever it says, an owed ACK goes out with the next `poll_transmit`.
    pub fn ack_due(&self) -> bool {
        self.ack == AckState::Now
    }

    /// Lets the stack attribute checksum failures to this connection.
    pub fn count_checksum_failure(&mut self) {
        self.stats.checksum_failures += 1;
    }

    /// Current retransmission timeout, for diagnostics.
    pub fn rto(&self) -> Duration {
        self.rtt.rto()
    }

    /// True once nothing more will happen: the owner may forget the connection.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed && !self.rst_due
    }

    /// Bytes waiting to be read.
    pub fn recv_queue(&self) -> usize {
        self.recv.readable()
    }

    /// Bytes queued for sending and not yet acknowledged.
    pub fn send_queue(&self) -> usize {
        self.send.len()
    }

    // ---------------------------------------------------------------- application side

    /// Queues bytes for sending; returns how many fit in the send buffer.
    pub fn send(&mut self, data: &[u8]) -> Result<usize, IoError> {
        if let Some(err) = &self.error {
            return Err(err.clone().into());
        }
        match self.state {
            State::SynSent | State::SynReceived | State::Established | State::CloseWait => {}
            State::Closed => return Err(IoError::NotConnected),
            _ => return Err(IoError::SendClosed),
        }
        if self.fin_queued {
            return Err(IoError::SendClosed);
        }
        let n = self.send.push(data);
        if n < data.len() {
            self.writable_wanted = true;
        }
        if n == 0 && !data.is_empty() {
            return Err(IoError::WouldBlock);
        }
        Ok(n)
    }

    /// Reads in-order bytes. `Ok(0)` means end of stream (the peer's FIN, all data read).
    pub fn recv(&mut self, out: &mut [u8]) -> Result<usize, IoError> {
        let n = self.recv.read(out);
        self.after_read(n)
    }

    /// Hands readable bytes to `consume` without copying; it returns how many it took.
    pub fn recv_with(
        &mut self,
        consume: impl FnOnce(&[u8], &[u8]) -> usize,
    ) -> Result<usize, IoError> {
        let (a, b) = self.recv.readable_slices();
        let n = consume(a, b).min(a.len() + b.len());
        self.recv.consume(n);
        self.after_read(n)
    }

    fn after_read(&mut self, n: usize) -> Result<usize, IoError> {
        if n > 0 {
            self.readable_signalled = false;
            return Ok(n);
        }
        // End of stream only once every byte before the FIN was taken: a reader that took
        // nothing this time (its own buffer was full) must not mistake that for EOF.
        if self.recv.readable() > 0 {
            return Err(IoError::WouldBlock);
        }
        if self.fin_received {
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
            State::SynReceived => self.fin_queued = true,
            State::Established => {
                self.fin_queued = true;
                self.state = State::FinWait1;
            }
            State::CloseWait => {
                self.fin_queued = true;
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

    /// An ICMP error quoting one of our segments with sequence number `seq` (RFC 5927: only
    /// believed when `seq` is in flight). Hard errors abort; soft ones abort a handshake only.
    pub fn handle_icmp_error(&mut self, seq: SeqNum, hard: bool, reason: &str) {
        if !seq.in_range(self.snd_una, self.snd_max.max(self.snd_una + 1)) {
            return;
        }
        if hard || self.state == State::SynSent {
            self.enter_closed(Some(ConnError::Unreachable(reason.to_string())));
        }
    }

    /// Path MTU discovery (RFC 1191): the path cannot carry segments above `mtu` bytes of IP.
    pub fn handle_path_mtu(&mut self, seq: SeqNum, mtu: u16) {
        if !seq.in_range(self.snd_una, self.snd_max.max(self.snd_una + 1)) {
            return;
        }
        let overhead = 40
            + if self.opts.timestamps {
                TIMESTAMP_OPTION_LEN
            } else {
                0
            };
        let mss = usize::from(mtu).saturating_sub(overhead).max(64);
        if mss < self.send_mss {
            self.send_mss = mss;
            // Resend what is in flight in smaller segments now.
            if self.snd_una != self.snd_max && self.state.is_synchronized() {
                self.snd_nxt = self.snd_una;
            }
        }
    }

    // ---------------------------------------------------------------- events and timers

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
        while let Some(timer) = self.timers.expire(now) {
            match timer {
                Timer::Retransmit => self.on_retransmit_timeout(now),
                Timer::DelayedAck => {
                    if self.ack == AckState::Delayed {
                        self.ack = AckState::Now;
                    }
                }
                Timer::Persist => self.probe_due = true,
                Timer::TimeWait => self.enter_closed(None),
                Timer::User => {
                    let stuck = self.snd_una != self.snd_max || !self.state.is_synchronized();
                    if stuck && self.state != State::TimeWait {
                        let rst = self.state.is_synchronized();
                        self.enter_closed(Some(ConnError::TimedOut));
                        self.rst_due = rst;
                    }
                }
            }
        }
    }

    fn on_retransmit_timeout(&mut self, now: Instant) {
        let limit = if self.state.is_synchronized() {
            self.config.data_retries
        } else {
            self.config.syn_retries
        };
        if self.retries >= limit {
            let err = ConnError::TimedOut;
            let rst = self.state.is_synchronized();
            self.enter_closed(Some(err));
            self.rst_due = rst;
            return;
        }
        self.retries += 1;
        if self.state.is_synchronized() && self.snd_wnd == 0 && self.snd_una != self.snd_max {
            // The peer's window is closed: what timed out is a zero-window probe, which says
            // nothing about congestion (RFC 9293 §3.8.6.1, RFC 1122 §4.2.2.17). Probe again
            // after a backed-off interval; cwnd, ssthresh and the SACK record stay, and
            // `retries` counts only probes the peer left unanswered.
            // The interval backs off, but stays within half the user timeout so that a peer
            // that answers is heard from before that timer runs out (as Linux clamps probe0).
            self.rtt.on_timeout();
            self.rtt_probe = None;
            self.snd_nxt = self.snd_una;
            self.probe_due = true;
            let interval = self.rtt.rto().min(self.config.user_timeout / 2);
            self.timers.set(Timer::Retransmit, now + interval);
            return;
        }
        self.stats.timeouts += 1;
        let flight = self.snd_max.distance_from(self.snd_una);
        if self.state.is_synchronized() && flight > 0 {
            self.cc.on_timeout(flight, self.send_mss);
        }
        self.rtt.on_timeout();
        self.rtt_probe = None;
        self.timeout_ts = Some(self.ts_now(now));
        self.recovery = None;
        if self.state.is_synchronized() {
            self.rto_recover = Some(self.snd_max);
        }
        self.dup_acks = 0;
        self.scoreboard.clear();
        // Go back N: everything from SND.UNA is sent again as the window allows.
        self.snd_nxt = self.snd_una;
        if self.snd_wnd == 0 && self.snd_una != self.snd_max {
            self.probe_due = true;
        }
        self.timers.set(Timer::Retransmit, now + self.rtt.rto());
    }

    // ---------------------------------------------------------------- inbound

    /// Processes one segment addressed to this connection (RFC 9293 §3.10.7).
    pub fn handle_segment(&mut self, now: Instant, seg: &TcpRepr) {
        self.stats.segments_in += 1;
        match self.state {
            State::Closed => {}
            State::SynSent => self.handle_syn_sent(now, seg),
            _ => self.handle_synchronized(now, seg),
        }
    }

    fn handle_syn_sent(&mut self, now: Instant, seg: &TcpRepr) {
        if let Some(ack) = seg.ack {
            // First check: the ACK must cover our SYN and nothing we did not send; otherwise
            // RFC 9293 §3.10.7.3 answers <SEQ=SEG.ACK><CTL=RST> (unless it is a reset).
            if ack.before_eq(self.iss) || ack.after(self.snd_max) {
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
        self.snd_wnd = usize::from(seg.window);
        self.max_snd_wnd = self.snd_wnd;
        self.snd_wl1 = seg.seq;
        match seg.ack {
            Some(ack) => {
                self.snd_wl2 = ack;
                // Karn: after a lost SYN only a timestamp echo says which SYN this answers
                // (the sampler refuses an echo from before the timeout).
                let unambiguous =
                    self.opts.timestamps || (self.rtt.backoffs() == 0 && self.retries == 0);
                if self.snd_una == self.iss && unambiguous {
                    self.sample_rtt_from(now, seg, Some(self.iss));
                }
                if self.rtt.backoffs() > 0 {
                    // RFC 6298 §5.7: no sample after a SYN timed out; data starts with a fresh
                    // 3 s RTO, not the handshake's backoff doubled again.
                    self.rtt.restart_after_syn_loss();
                }
                self.rtt_probe = None;
                self.snd_una = ack;
                self.snd_nxt = self.snd_nxt.max(ack);
                self.retries = 0;
                self.timers.stop(Timer::Retransmit);
                self.state = State::Established;
                self.events.push_back(ConnEvent::Connected);
                self.ack = AckState::Now;
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
                self.snd_nxt = self.iss;
            }
        }
    }

    /// Reads the SYN's options and sets up the receive side.
    fn learn_syn(&mut self, syn: &TcpRepr) {
        self.irs = syn.seq;
        self.rcv_nxt = syn.seq + 1;
        self.last_ack_sent = self.rcv_nxt;
        let peer = syn.options;
        self.opts.sack = self.config.sack && peer.sack_permitted;
        self.opts.timestamps = self.config.timestamps && peer.timestamps.is_some();
        match (self.config.window_scaling, peer.window_scale) {
            (true, Some(shift)) => {
                self.opts.scaling = true;
                self.opts.snd_shift = shift.min(MAX_WINDOW_SHIFT);
                self.opts.rcv_shift = self.wanted_rcv_shift();
            }
            _ => {
                self.opts.scaling = false;
                self.opts.snd_shift = 0;
                self.opts.rcv_shift = 0;
            }
        }
        if let Some(ts) = peer.timestamps {
            self.ts_recent = ts.value;
        }
        let peer_mss = peer.mss.map_or(DEFAULT_PEER_MSS, usize::from);
        let mut mss = peer_mss.min(usize::from(self.config.mss)).max(64);
        if self.opts.timestamps {
            mss -= TIMESTAMP_OPTION_LEN;
        }
        self.send_mss = mss;
        self.cc = Box::new(NewReno::new(mss));
        self.rcv_adv = self.rcv_nxt;
        self.rcv_adv = self.rcv_nxt + self.advertised_window_bytes();
    }

    fn wanted_rcv_shift(&self) -> u8 {
        let mut shift = 0;
        while shift < MAX_WINDOW_SHIFT && (self.config.recv_buffer >> shift) > MAX_WINDOW_FIELD {
            shift += 1;
        }
        shift
    }

    fn handle_synchronized(&mut self, now: Instant, seg: &TcpRepr) {
        // RFC 7323 §5.3: PAWS, before anything else. RSTs are exempt.
        if self.opts.timestamps && seg.control != Control::Rst {
            if let Some(ts) = seg.options.timestamps {
                if (ts.value.wrapping_sub(self.ts_recent) as i32) < 0 {
                    self.stats.rejected_in += 1;
                    self.ack = AckState::Now;
                    return;
                }
            }
        }
        if self.state == State::SynReceived && seg.control == Control::Syn && seg.seq == self.irs {
            // The peer's SYN again. It lies before RCV.NXT, so the acceptability test below
            // would only answer it with a bare ACK.
            if seg.ack.is_none() {
                // Our SYN-ACK was lost and the peer retransmitted its SYN.
                self.update_ts_recent(seg);
                self.snd_nxt = self.iss;
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
            if self.rcv_adv == self.rcv_nxt
                && seg.seq == self.rcv_nxt
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
                self.ack = AckState::Now;
                return;
            }
            self.stats.rejected_in += 1;
            if seg.segment_len() > 0 && (seg.seq + seg.segment_len()).before_eq(self.rcv_nxt) {
                // Entirely old: a retransmission or duplicate of what we already have.
                self.stats.duplicate_segments_in += 1;
                if self.state == State::TimeWait && seg.control == Control::Fin {
                    // RFC 9293 §3.10.7.4: a retransmitted FIN in TIME-WAIT is acknowledged
                    // and restarts the 2 MSL timeout (our ACK of it was lost).
                    self.enter_time_wait(now);
                }
                if !seg.payload.is_empty() {
                    self.report_duplicate(seg.seq, seg.seq + seg.payload.len());
                }
            }
            if seg.control != Control::Rst && !self.out_of_window_ack_limited(now, seg) {
                // RFC 9293 §3.10.7.4 first check: answer an unacceptable segment with an ACK.
                self.ack = AckState::Now;
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
            if ack.after(self.snd_una) && ack.before_eq(self.snd_max) {
                self.state = State::Established;
                self.snd_wnd = usize::from(seg.window) << self.opts.snd_shift;
                self.max_snd_wnd = self.snd_wnd;
                self.snd_wl1 = seg.seq;
                self.snd_wl2 = ack;
                self.events.push_back(ConnEvent::Connected);
                if self.fin_queued {
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
        if ack.after(self.snd_max) {
            self.ack = AckState::Now;
            return;
        }
        if ack.before(self.snd_una - self.max_snd_wnd) {
            self.ack = AckState::Now;
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
    fn acceptable(&self, seg: &TcpRepr) -> bool {
        let wnd = self.rcv_adv.distance_from(self.rcv_nxt);
        let len = seg.segment_len();
        let end = self.rcv_nxt + wnd;
        match (len, wnd) {
            (0, 0) => seg.seq == self.rcv_nxt,
            (0, _) => seg.seq.in_range(self.rcv_nxt, end),
            (_, 0) => false,
            (_, _) => {
                seg.seq.in_range(self.rcv_nxt, end)
                    || (seg.seq + (len - 1)).in_range(self.rcv_nxt, end)
            }
        }
    }

    fn handle_rst(&mut self, now: Instant, seg: &TcpRepr) {
        // RFC 5961 §3.2: only an exact match resets; anything else in window is challenged.
        if seg.seq != self.rcv_nxt {
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
    fn out_of_window_ack_limited(&mut self, now: Instant, seg: &TcpRepr) -> bool {
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

    fn challenge_ack(&mut self, now: Instant) {
        let (start, count) = &mut self.challenge_window;
        if now.duration_since(*start) >= Duration::from_secs(1) {
            *start = now;
            *count = 0;
        }
        if *count < self.config.challenge_acks_per_second {
            *count += 1;
            self.stats.challenge_acks += 1;
            self.ack = AckState::Now;
        }
    }

    /// RFC 7323 §4.3: remember TSval when the segment covers the last ACK we sent.
    fn update_ts_recent(&mut self, seg: &TcpRepr) {
        if let Some(ts) = seg.options.timestamps {
            if seg.seq.before_eq(self.last_ack_sent) {
                self.ts_recent = ts.value;
            }
        }
    }

    fn sample_rtt_from(&mut self, now: Instant, seg: &TcpRepr, timed: Option<SeqNum>) {
        if self.opts.timestamps {
            if let Some(ts) = seg.options.timestamps {
                if ts.echo != 0 {
                    // RFC 7323 §4.2 makes a TSecr sample a MAY. After a timeout, an echo older
                    // than the timeout comes from a segment whose ACK was lost and that the
                    // peer saw again as a duplicate: it measures our backoff, not the path.
                    if let Some(at) = self.timeout_ts {
                        if (ts.echo.wrapping_sub(at) as i32) < 0 {
                            return;
                        }
                        self.timeout_ts = None;
                    }
                    let elapsed = self.ts_now(now).wrapping_sub(ts.echo);
                    // Ignore nonsense echoes (RFC 7323 §4.2 sanity: not from the future, < 1 h).
                    if (elapsed as i32) >= 0 && elapsed < 3_600_000 {
                        self.rtt
                            .on_sample(Duration::from_millis(u64::from(elapsed.max(1))));
                        return;
                    }
                }
            }
        }
        if let (Some((seq, sent)), Some(ack)) = (self.rtt_probe, seg.ack) {
            if timed.is_some() || ack.after(seq) {
                self.rtt.on_sample(now.duration_since(sent));
                self.rtt_probe = None;
            }
        }
    }

    fn process_ack(&mut self, now: Instant, seg: &TcpRepr, ack: SeqNum) {
        let newly_sacked = if self.opts.sack {
            self.scoreboard
                .update(seg.options.sack_blocks(), self.snd_una, self.snd_max)
        } else {
            0
        };
        let window = usize::from(seg.window) << self.opts.snd_shift;
        let window_changed = window != self.snd_wnd;
        // RFC 9293 §3.10.7.4: update the send window only from newer segments.
        if self.snd_wl1.before(seg.seq) || (self.snd_wl1 == seg.seq && self.snd_wl2.before_eq(ack))
        {
            self.snd_wnd = window;
            self.max_snd_wnd = self.max_snd_wnd.max(window);
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = ack;
            if window > 0 {
                self.timers.stop(Timer::Persist);
            }
        }

        if window == 0 {
            // The peer answers while its window is closed, typically our zero-window probes:
            // it is alive, so the probes must not run out the retries nor the user timeout
            // (RFC 9293 §3.8.6.1; RFC 1122 §4.2.2.17: the connection MUST stay open).
            self.retries = 0;
            if self.timers.is_set(Timer::User) {
                self.timers.set(Timer::User, now + self.config.user_timeout);
            }
        }
        if ack.after(self.snd_una) {
            self.on_new_ack(now, seg, ack);
        } else if ack == self.snd_una
            && seg.payload.is_empty()
            && seg.control == Control::None
            && self.snd_una != self.snd_max
            && window > 0
            && (!window_changed || newly_sacked > 0)
        {
            // A closed window answering a probe says nothing about loss: only ACKs that leave
            // room for the outstanding data count as duplicates (RFC 5681 §2).
            self.on_duplicate_ack(newly_sacked);
        }
        self.fin_acknowledged_transitions(now);
    }

    fn on_new_ack(&mut self, now: Instant, seg: &TcpRepr, ack: SeqNum) {
        let acked = ack.distance_from(self.snd_una);
        self.sample_rtt_from(now, seg, None);
        // Drop acknowledged payload: sequence space also counts our SYN and FIN.
        let data_acked = ack.min(self.data_end_seq()).distance_from(self.send_start);
        self.send.acknowledge(data_acked);
        self.send_start += data_acked;
        self.snd_una = ack;
        if self.snd_nxt.before(ack) {
            self.snd_nxt = ack;
        }
        self.scoreboard.advance(ack);
        self.retries = 0;
        self.probe_due = false;
        if self.rto_recover.is_some_and(|point| ack.after_eq(point)) {
            self.rto_recover = None;
        }

        let flight = self.snd_max.distance_from(self.snd_una);
        match self.recovery {
            Some(rec) if ack.after_eq(rec.point) => {
                self.cc.on_exit_recovery(flight, self.send_mss);
                self.recovery = None;
                self.dup_acks = 0;
            }
            Some(mut rec) => {
                // Partial ACK (RFC 6582 §3.2 step 5): the next hole is lost too.
                if !self.opts.sack {
                    rec.high_rxt = ack;
                    rec.forced = true;
                    self.dup_acks = self
                        .dup_acks
                        .saturating_sub((acked / self.send_mss.max(1)) as u32);
                }
                rec.high_rxt = rec.high_rxt.max(ack);
                self.recovery = Some(rec);
            }
            None => {
                self.dup_acks = 0;
                self.cc.on_ack(acked, self.send_mss);
            }
        }

        // RFC 6298 §5.2/5.3: stop the timer when all is acknowledged, else restart it.
        if self.snd_una == self.snd_max {
            self.timers.stop(Timer::Retransmit);
            self.timers.set(Timer::User, now + self.config.user_timeout);
        } else {
            self.timers.set(Timer::Retransmit, now + self.rtt.rto());
            self.timers.set(Timer::User, now + self.config.user_timeout);
        }
        if self.writable_wanted && self.send.free() > 0 {
            self.writable_wanted = false;
            self.events.push_back(ConnEvent::Writable);
        }
    }

    fn on_duplicate_ack(&mut self, newly_sacked: usize) {
        self.dup_acks += 1;
        self.stats.dup_acks_in += 1;
        if self.recovery.is_some() {
            return;
        }
        if self
            .rto_recover
            .is_some_and(|point| self.snd_una.before(point))
        {
            // Echoes of the flight sent before the timeout: the go-back-N after it repairs
            // those losses, at the slow-start rate.
            return;
        }
        let sack_says_lost = self.opts.sack
            && newly_sacked > 0
            && self
                .scoreboard
                .loss_edge(self.loss_threshold())
                .is_some_and(|edge| edge.after(self.snd_una));
        if self.dup_acks >= DUP_THRESH || sack_says_lost {
            // RFC 5681 §3.2 / RFC 6675 §5: fast retransmit and enter recovery.
            let flight = self.snd_max.distance_from(self.snd_una);
            self.cc.on_enter_recovery(flight, self.send_mss);
            self.stats.recoveries += 1;
            self.rtt_probe = None;
            self.recovery = Some(Recovery {
                point: self.snd_max,
                high_rxt: self.snd_una,
                forced: true,
            });
        }
    }

    fn loss_threshold(&self) -> usize {
        (DUP_THRESH as usize - 1) * self.send_mss
    }

    /// State changes when our FIN gets acknowledged.
    fn fin_acknowledged_transitions(&mut self, now: Instant) {
        if !self.fin_queued || self.snd_una != self.data_end_seq() + 1 {
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

    fn process_payload(&mut self, now: Instant, seg: &TcpRepr) {
        let receiving = matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2
        );
        if !seg.payload.is_empty() && receiving {
            self.receive_data(seg);
        } else if !seg.payload.is_empty() {
            // Data after the peer's FIN cannot be delivered; just acknowledge.
            self.ack = AckState::Now;
        }
        if seg.control == Control::Fin && receiving {
            let offset = self.stream_offset(seg.seq) + seg.payload.len() as i64;
            // An acceptable FIN never lies before the stream's first byte.
            if let Ok(offset) = u64::try_from(offset) {
                self.pending_fin = Some(offset);
            }
            self.ack = AckState::Now;
        }
        if self.fin_received && seg.control == Control::Fin {
            // A retransmitted FIN: our ACK was lost.
            self.ack = AckState::Now;
            if self.state == State::TimeWait {
                self.enter_time_wait(now);
            }
        }
        self.accept_pending_fin(now);
    }

    /// Remembers duplicate data for the next ACK's D-SACK block (RFC 2883 §4: one block, the
    /// latest duplicate) when SACK was agreed.
    fn report_duplicate(&mut self, left: SeqNum, right: SeqNum) {
        if self.opts.sack && left != right {
            self.dsack = Some((left, right));
        }
    }

    fn receive_data(&mut self, seg: &TcpRepr) {
        let offset = self.stream_offset(seg.seq);
        // Bytes before the stream's first byte (at or before the peer's SYN) are not data: trim
        // them, or the rest would be stored that many places early.
        let skip = usize::try_from(offset.min(0).unsigned_abs()).unwrap_or(usize::MAX);
        let payload = seg.payload.get(skip..).unwrap_or_default();
        let start = offset.max(0) as u64;
        let before = self.recv.next_offset();
        let result = self.recv.insert(start, payload);
        if let Some(held) = &result.already_held {
            let to_seq = |offset: u64| seg.seq + skip + (offset - start) as usize;
            self.report_duplicate(to_seq(held.start), to_seq(held.end));
        }
        if result.duplicate {
            self.stats.duplicate_segments_in += 1;
            self.ack = AckState::Now;
            return;
        }
        // Counted in bytes, so a super-segment from a TUN with offloads counts as the
        // segments it merged.
        self.unacked_bytes += payload.len();
        if result.out_of_order {
            self.stats.out_of_order_in += 1;
            self.out_of_order_since_advance += 1;
            // RFC 5681 §4.2 asks for an immediate duplicate ACK per out-of-order segment, and
            // without SACK the sender counts them, so each one goes at once. With SACK, as
            // Linux does (tcp_comp_sack, deferred until after DupThresh), the first three per
            // RCV.NXT and every new hole still go at once; after that a segment that only
            // lengthens a reported block waits for the batch's ACK.
            let urgent = !self.opts.sack
                || result.new_island
                || self.out_of_order_since_advance <= DUPLICATE_ACK_THRESHOLD
                || self.stretch_reached();
            self.ack = if urgent {
                AckState::Now
            } else {
                self.ack.max(AckState::Batched)
            };
            return;
        }
        if result.advanced == 0 {
            return;
        }
        self.rcv_nxt += result.advanced;
        self.out_of_order_since_advance = 0;
        self.stats.bytes_in += result.advanced as u64;
        if !self.readable_signalled {
            self.readable_signalled = true;
            self.events.push_back(ConnEvent::Readable);
        }
        let filled_hole = self.recv.next_offset() > before + payload.len() as u64 || start < before;
        if filled_hole || self.recv.has_out_of_order() {
            // RFC 5681 §4.2: ACK at once when a segment fills (part of) a hole.
            self.ack = AckState::Now;
            return;
        }
        // RFC 9293 §3.8.6.3 / RFC 5681 §4.2: ACK at least every second full-sized segment,
        // that is once more than one segment's worth is unacknowledged (as Linux does).
        self.ack = if self.stretch_reached() {
            AckState::Now
        } else if self.unacked_bytes > self.receive_mss() {
            self.ack.max(AckState::Batched)
        } else {
            self.ack.max(AckState::Delayed)
        };
    }

    /// The payload of a full-sized segment from the peer: our MSS less the timestamp option
    /// every segment carries when timestamps are on.
    fn receive_mss(&self) -> usize {
        let options = if self.opts.timestamps {
            TIMESTAMP_OPTION_LEN
        } else {
            0
        };
        usize::from(self.config.mss).saturating_sub(options).max(1)
    }

    /// One ACK already covers as many full-sized segments as it should.
    fn stretch_reached(&self) -> bool {
        let segments = self.config.ack_stretch.max(2) as usize;
        self.unacked_bytes >= segments * self.receive_mss()
    }

    fn accept_pending_fin(&mut self, now: Instant) {
        let Some(offset) = self.pending_fin else {
            return;
        };
        if self.fin_received || offset != self.recv.next_offset() {
            return;
        }
        self.pending_fin = None;
        self.fin_received = true;
        self.rcv_nxt += 1;
        self.ack = AckState::Now;
        self.events.push_back(ConnEvent::PeerFinished);
        match self.state {
            State::Established => self.state = State::CloseWait,
            State::FinWait1 => self.state = State::Closing,
            State::FinWait2 => self.enter_time_wait(now),
            _ => {}
        }
    }

    fn enter_time_wait(&mut self, now: Instant) {
        self.state = State::TimeWait;
        self.timers.clear();
        self.timers
            .set(Timer::TimeWait, now + self.config.time_wait);
    }

    fn enter_closed(&mut self, error: Option<ConnError>) {
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

    /// Receive-stream offset of sequence number `seq` (offset 0 = first data byte); negative for
    /// the peer's SYN and anything before it.
    fn stream_offset(&self, seq: SeqNum) -> i64 {
        let delta = i64::from(seq - self.rcv_nxt);
        self.recv.next_offset() as i64 + delta
    }

    // ---------------------------------------------------------------- outbound

    fn data_end_seq(&self) -> SeqNum {
        self.send_start + self.send.len()
    }

    fn ts_now(&self, now: Instant) -> u32 {
        let ms = now.saturating_duration_since(self.epoch).as_millis() as u32;
        ms.wrapping_add(self.ts_offset)
    }

    /// Window value for the header, in bytes before scaling.
    ///
    /// Receiver-side SWS avoidance (RFC 9293 §3.8.6.2.2): the right edge moves only by at
    /// least min(buffer / 2, MSS); otherwise the edge already promised stands. The value is
    /// rounded *down* to the scale unit and never exceeds the free buffer: rounding up, as this
    /// once did to keep the edge from moving left, let the remembered edge creep a unit past the
    /// buffer with every ACK while the application did not read, and data inside a window we had
    /// offered was then cut off (RFC 7323 §2.3 and App. F). Rounding down may show the peer an
    /// edge up to a unit short of the promise; `rcv_adv` keeps the promise itself (it never
    /// moves left), so a segment that reaches it is still accepted. A full buffer gives a true
    /// zero window.
    fn advertised_window_bytes(&self) -> usize {
        let shift = self.opts.rcv_shift;
        let max = MAX_WINDOW_FIELD << shift;
        let free = self.recv.window().min(max);
        let promised = self.rcv_adv.distance_from(self.rcv_nxt);
        // Eff.snd.MSS: the connection's effective send MSS (RFC 1122 §4.2.3.3).
        let step = (self.recv.capacity() / 2).min(self.send_mss);
        let wanted = if free < promised + step {
            promised
        } else {
            free
        };
        (wanted.min(free) >> shift) << shift
    }

    /// Bytes we may still send under cwnd; RFC 6675 "pipe" during recovery.
    fn pipe(&self) -> usize {
        let outstanding = self.snd_nxt.distance_from(self.snd_una);
        let sacked = self.scoreboard.sacked_in(self.snd_una, self.snd_nxt);
        let Some(rec) = self.recovery else {
            return outstanding.saturating_sub(sacked);
        };
        let (edge, dup_credit) = self.lost_edge(rec);
        // Lost and not yet retransmitted bytes are not in the network.
        let lost_from = rec.high_rxt.max(self.snd_una);
        let lost = if lost_from.before(edge) {
            edge.distance_from(lost_from) - self.scoreboard.sacked_in(lost_from, edge)
        } else {
            0
        };
        outstanding.saturating_sub(sacked + lost + dup_credit)
    }

    /// Where un-SACKed bytes stop counting as lost, and (without SACK) the bytes the duplicate
    /// ACKs say have left the network, as Linux estimates them.
    fn lost_edge(&self, rec: Recovery) -> (SeqNum, usize) {
        if self.opts.sack {
            let edge = self
                .scoreboard
                .loss_edge(self.loss_threshold())
                .unwrap_or(self.snd_una);
            // Fast retransmit always resends the first segment (RFC 6675 §5 step 4.3); later
            // on, only SACK evidence (IsLost) marks a segment lost.
            let first = (self.snd_una + self.send_mss).min(self.snd_max);
            (edge.max(if rec.forced { first } else { self.snd_una }), 0)
        } else {
            let first = (self.snd_una + self.send_mss).min(self.snd_max);
            (first, self.dup_acks as usize * self.send_mss)
        }
    }

    /// The next segment to send, written as a complete TCP segment (checksum included) into
    /// `buf`, which must hold a full segment (MSS plus 60 bytes). Returns its length.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if self.rst_due {
            self.rst_due = false;
            return Some(self.emit_rst(self.snd_nxt, buf));
        }
        if let Some(seq) = self.stray_rst.take() {
            return Some(self.emit_rst(seq, buf));
        }
        match self.state {
            State::Closed => return None,
            State::SynSent | State::SynReceived if self.snd_nxt == self.iss => {
                return Some(self.emit_syn(now, buf));
            }
            State::SynSent => return None,
            State::TimeWait => return self.emit_ack_if_due(now, buf),
            _ => {}
        }
        if let Some(len) = self.emit_recovery_retransmission(now, buf) {
            return Some(len);
        }
        if let Some(len) = self.emit_new_segment(now, buf) {
            return Some(len);
        }
        self.arm_persist(now);
        if self.window_update_due() {
            self.ack = AckState::Now;
        }
        let len = self.emit_ack_if_due(now, buf);
        self.arm_delayed_ack(now);
        len
    }

    fn arm_delayed_ack(&mut self, now: Instant) {
        if self.ack == AckState::Delayed && !self.timers.is_set(Timer::DelayedAck) {
            self.timers
                .set(Timer::DelayedAck, now + self.config.delayed_ack);
        }
    }

    fn arm_persist(&mut self, now: Instant) {
        let unsent = self.data_end_seq().distance_from(self.snd_nxt);
        let waiting = unsent > 0 && self.snd_wnd == 0 && self.snd_una == self.snd_max;
        if waiting && !self.timers.is_set(Timer::Persist) && !self.probe_due {
            self.timers.set(Timer::Persist, now + self.rtt.rto());
        }
    }

    /// RFC 9293 §3.8.6.2.2: announce a window that opened by at least min(buffer/2, 2 MSS),
    /// or any opening of a window we had closed.
    fn window_update_due(&self) -> bool {
        if !self.state.is_synchronized() || self.fin_received {
            return false;
        }
        let promised = self.rcv_adv.distance_from(self.rcv_nxt);
        let offered = self.advertised_window_bytes();
        let small = 2 * usize::from(self.config.mss);
        offered > promised && (promised < small || offered - promised >= self.recv.capacity() / 2)
    }

    fn emit_ack_if_due(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if self.ack < AckState::Batched {
            return None;
        }
        let repr = self.base_repr(now, self.snd_nxt, Control::None, true);
        repr.emit_header(buf);
        Some(self.finish_segment(repr, 0, buf))
    }

    fn emit_syn(&mut self, now: Instant, buf: &mut [u8]) -> usize {
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
                echo: if synack { self.ts_recent } else { 0 },
            }),
            sack_blocks: [None; MAX_SACK_BLOCKS],
        };
        if self.opts.scaling {
            options.window_scale = Some(self.opts.rcv_shift);
        }
        // RFC 7323 §2.2: the window in a SYN is never scaled.
        let window = self.recv.window().min(MAX_WINDOW_FIELD) as u16;
        let repr = TcpRepr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            control: Control::Syn,
            seq: self.iss,
            ack: synack.then_some(self.rcv_nxt),
            window,
            options,
            payload: &[],
        };
        let retransmission = self.snd_max != self.iss;
        if retransmission {
            self.stats.retransmits_timeout += 1;
        } else if !(synack && self.opts.timestamps) {
            // Time the SYN even when we offer timestamps: the peer may decline them.
            self.rtt_probe = Some((self.iss, now));
        }
        self.snd_nxt = self.iss + 1;
        self.snd_max = self.snd_max.max(self.snd_nxt);
        if !self.timers.is_set(Timer::Retransmit) {
            self.timers.set(Timer::Retransmit, now + self.rtt.rto());
        }
        if synack {
            self.last_ack_sent = self.rcv_nxt;
            self.rcv_adv = self.rcv_nxt + usize::from(window);
        }
        let len = repr.emit_header(buf);
        tcp::fill_checksum(*self.local.ip(), *self.remote.ip(), &mut buf[..len]);
        self.stats.segments_out += 1;
        len
    }

    fn emit_rst(&mut self, seq: SeqNum, buf: &mut [u8]) -> usize {
        let repr = TcpRepr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            control: Control::Rst,
            seq,
            ack: None,
            window: 0,
            options: TcpOptions::default(),
            payload: &[],
        };
        self.stats.segments_out += 1;
        repr.emit(*self.local.ip(), *self.remote.ip(), buf)
    }

    /// SACK/NewReno recovery: retransmit the next lost hole if the pipe allows (RFC 6675 §5
    /// NextSeg rule 1, or RFC 6582's retransmission on a partial ACK).
    fn emit_recovery_retransmission(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let mut rec = self.recovery?;
        let (edge, _) = self.lost_edge(rec);
        let from = rec.high_rxt.max(self.snd_una);
        let (start, hole_end) = self.scoreboard.next_hole(from, edge.min(self.snd_max))?;
        if !rec.forced && self.pipe() + self.send_mss > self.cc.window() {
            return None;
        }
        let options_len = self.data_options_len();
        let max_payload = self
            .send_mss
            .saturating_sub(self.sack_option_len(options_len));
        // The hole may end with (or be only) our FIN, which has a sequence number but no byte
        // in the send buffer: send it as a FIN.
        let data_end = self.data_end_seq();
        let len = hole_end
            .distance_from(start)
            .min(max_payload)
            .min(data_end.distance_from(start));
        let fin = self.fin_queued && start + len == data_end && hole_end.after(data_end);
        if len == 0 && !fin {
            return None;
        }
        rec.forced = false;
        rec.high_rxt = start + len + usize::from(fin);
        self.recovery = Some(rec);
        self.stats.retransmits_fast += 1;
        Some(self.emit_data_fin(now, start, len, fin, buf))
    }

    /// New data from SND.NXT (or go-back-N retransmission after a timeout), within the peer's
    /// window and cwnd, with the FIN when the last byte goes.
    fn emit_new_segment(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
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
        let fin_pending = self.fin_queued && self.snd_nxt.before_eq(data_end);
        let unsent = data_end.distance_from(self.snd_nxt);
        if unsent == 0 && !fin_pending {
            return None;
        }
        let mut start = self.snd_nxt;
        // Skip data the peer already SACKed when going back after a timeout.
        if let Some((hole_start, _)) = self.scoreboard.next_hole(start, self.snd_max) {
            if hole_start.after(start) && self.snd_nxt.before(self.snd_max) {
                start = hole_start;
                self.snd_nxt = start;
            }
        }
        let unsent = data_end.distance_from(start);
        let wnd_edge = self.snd_una + self.snd_wnd;
        let wnd_room = wnd_edge.distance_from(start);
        let cwnd_room = self.cc.window().saturating_sub(self.pipe());
        let max_payload = self
            .send_mss
            .saturating_sub(self.sack_option_len(self.data_options_len()));
        let mut len = unsent.min(wnd_room).min(cwnd_room).min(max_payload);
        let nothing_in_flight = self.snd_nxt == self.snd_una;
        if self.probe_due && wnd_room == 0 && unsent > 0 {
            // RFC 9293 §3.8.6.1: a zero-window probe carries one byte beyond the window.
            len = 1;
        } else if len < unsent.min(max_payload) {
            // Sender-side SWS avoidance (RFC 9293 §3.8.6.2.1): a short segment only when it is
            // at least half the largest window seen, or when nothing else is in flight.
            let big_enough = len >= self.max_snd_wnd / 2;
            if len == 0 || !(big_enough || nothing_in_flight) {
                return None;
            }
        } else if self.config.nagle && len < max_payload && !nothing_in_flight {
            return None;
        }
        let with_fin = fin_pending && start + len == data_end;
        if len == 0 && !with_fin {
            return None;
        }
        self.probe_due = false;
        if start.before(self.snd_max) {
            self.stats.retransmits_timeout += 1;
        }
        Some(self.emit_data_fin(now, start, len, with_fin, buf))
    }

    fn data_options_len(&self) -> usize {
        if self.opts.timestamps {
            TIMESTAMP_OPTION_LEN
        } else {
            0
        }
    }

    /// Bytes our SACK blocks would take on a segment that already has `other` option bytes.
    fn sack_option_len(&self, other: usize) -> usize {
        if !self.opts.sack || (!self.recv.has_out_of_order() && self.dsack.is_none()) {
            return 0;
        }
        let room = (tcp::MAX_OPTIONS_LEN - other).saturating_sub(4) / 8;
        let blocks =
            (self.recv.sack_ranges().count() + usize::from(self.dsack.is_some())).min(room);
        if blocks == 0 {
            0
        } else {
            4 + 8 * blocks
        }
    }

    fn emit_data_fin(
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
        let offset = start.distance_from(self.send_start);
        let copied = self
            .send
            .copy_out(offset, &mut buf[header_len..header_len + len]);
        debug_assert_eq!(copied, len);
        self.stats.bytes_out += copied as u64;
        let end = start + copied + usize::from(fin);
        if self.rtt_probe.is_none()
            && !self.opts.timestamps
            && end.after(self.snd_max)
            && start == self.snd_max
        {
            self.rtt_probe = Some((start, now));
        }
        if start.before(self.snd_max)
            && self
                .rtt_probe
                .is_some_and(|(seq, _)| seq.in_range(start, end))
        {
            // Karn's rule: a retransmitted segment's ACK is ambiguous.
            self.rtt_probe = None;
        }
        if end.after(self.snd_nxt) && start.before_eq(self.snd_nxt) {
            self.snd_nxt = end;
        }
        // The user timeout measures how long data stays unacknowledged, so it starts afresh
        // when this segment ends an idle period (nothing was in flight).
        let was_idle = self.snd_una == self.snd_max;
        self.snd_max = self.snd_max.max(end);
        if !self.timers.is_set(Timer::Retransmit) {
            self.timers.set(Timer::Retransmit, now + self.rtt.rto());
        }
        self.timers.stop(Timer::Persist);
        if was_idle || !self.timers.is_set(Timer::User) {
            self.timers.set(Timer::User, now + self.config.user_timeout);
        }
        self.finish_segment(repr, copied, buf)
    }

    /// A header template with ACK, window and options filled in.
    fn base_repr(
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
                echo: self.ts_recent,
            });
        }
        if self.opts.sack {
            let to_seq = |offset: u64| self.rcv_nxt + (offset - self.recv.next_offset()) as usize;
            // RFC 2883 §4: a D-SACK block goes first; the SACK blocks follow as usual.
            let dsack = self.dsack.map(|(left, right)| SackBlock { left, right });
            let islands = self.recv.sack_ranges().map(|range| SackBlock {
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
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            control,
            seq,
            ack: with_ack.then_some(self.rcv_nxt),
            window: (window_bytes >> self.opts.rcv_shift).min(MAX_WINDOW_FIELD) as u16,
            options,
            payload: &[],
        }
    }

    /// Bookkeeping common to every segment carrying an ACK: what we advertised and acknowledged.
    fn finish_segment(&mut self, repr: TcpRepr, payload_len: usize, buf: &mut [u8]) -> usize {
        let header_len = repr.header_len();
        let total = header_len + payload_len;
        tcp::fill_checksum(*self.local.ip(), *self.remote.ip(), &mut buf[..total]);
        if let Some(ack) = repr.ack {
            if ack == self.last_ack_sent && payload_len == 0 && self.recv.has_out_of_order() {
                self.stats.dup_acks_out += 1;
            }
            self.last_ack_sent = ack;
            let edge = ack + (usize::from(repr.window) << self.opts.rcv_shift);
            if edge.after(self.rcv_adv) {
                self.rcv_adv = edge;
            }
            self.ack = AckState::Idle;
            self.dsack = None;
            self.unacked_bytes = 0;
            self.timers.stop(Timer::DelayedAck);
        }
        self.stats.segments_out += 1;
        total
    }
}
