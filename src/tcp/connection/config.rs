//! A connection's tunables and their defaults.

use std::time::Duration;

use crate::tcp::congestion::Algorithm;
use crate::tcp::rto::RtoBounds;

/// Tunables of one connection; the defaults suit a bulk download over a LAN or the Internet.
#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// The MSS we announce: the device MTU minus 40.
    pub mss: u16,
    /// Receive buffer, which is also the largest window we advertise.
    pub recv_buffer: usize,
    /// The receive buffer may grow, by doubling, up to this many bytes while loss keeps the
    /// window full: when data beyond a hole reaches the window's right edge, the sender can
    /// send nothing new, so a lost retransmission can only be found by its RTO (RACK needs
    /// later data delivered) and a lost ACK of the last segments costs one too. Linux's
    /// receive-buffer autotuning lets its window grow for this. A clean transfer never grows
    /// the buffer (no out-of-order data). 0, or no more than `recv_buffer`: fixed size. The
    /// window scale we offer is chosen for this size, so a larger one changes our SYN.
    pub recv_buffer_max: usize,
    /// Send buffer: application bytes not yet acknowledged. This is where it starts; see
    /// `send_buffer_max`.
    pub send_buffer: usize,
    /// The send buffer may grow up to this many bytes (Linux's `tcp_wmem` maximum, 4 MiB),
    /// towards twice the bandwidth-delay product: the rate data was acknowledged at over a
    /// round trip, times the smallest RTT (`Connection::expand_send_buffer`). It never shrinks
    /// back (Linux shrinks only under memory pressure). A fixed buffer caps the rate at its size per
    /// round trip whatever the path: 256 KiB over 100 ms is 21 Mbit/s (the simulator's
    /// 100 Mbit/s, 100 ms path: 19 Mbit/s fixed, 55 growing). Memory follows use: the ring
    /// grows only as the application fills it. 0, or no more than `send_buffer`: fixed size.
    pub send_buffer_max: usize,
    /// Offer window scaling (RFC 7323 §2): without it no window exceeds 64 KiB, too little for
    /// a bulk download over a long path.
    pub window_scaling: bool,
    /// Offer timestamps (RFC 7323 §3): RTT samples on every ACK and PAWS.
    pub timestamps: bool,
    /// Offer selective acknowledgements (RFC 2018), so recovery repairs several losses per RTT.
    pub sack: bool,
    /// RACK loss detection (RFC 8985 §6) when SACK was agreed: a segment counts as lost once
    /// one sent after it was delivered and a reordering window passed, so losses near the end
    /// of a flight and lost retransmissions are repaired without a timeout. On by default, as
    /// in Linux.
    pub rack: bool,
    /// Tail loss probes (RFC 8985 §7) when SACK was agreed: a probe at about two round trips
    /// after the ACKs stop, so a lost tail is found by RACK instead of the RTO. On by default.
    pub tlp: bool,
    /// Undo congestion reductions shown spurious (RFC 2883 §5 D-SACK, RFC 3522 timestamps,
    /// RFC 4015 response): after reordering or a delay spike, a retransmission the peer did
    /// not need must not leave the window halved. On by default, as in Linux.
    pub undo: bool,
    /// F-RTO (RFC 5682 §3.1): after a timeout, probe with new data before going back N, and
    /// undo the reduction when the ACKs show the timeout spurious. On by default (Linux's
    /// `tcp_frto`).
    pub frto: bool,
    /// Nagle's algorithm (RFC 9293 §3.7.4). Off by default: request/response traffic.
    pub nagle: bool,
    /// Initial, least and greatest retransmission timeout (RFC 6298).
    pub rto: RtoBounds,
    /// Longest an ACK for in-order data may wait (RFC 9293 §3.8.6.3 allows up to 500 ms).
    pub delayed_ack: Duration,
    /// Most full-sized segments' worth of data one ACK may cover while a batch of queued
    /// datagrams is read.
    /// Every ACK written to a TUN runs the forwarding path and the sender's ACK processing
    /// inside that write, so one per queued segment pair costs more than the data; like a
    /// kernel receiver behind GRO (64 KB) or SACK compression (`tcp_comp_sack_nr`, 44), we
    /// stretch ACKs across the batch up to this many segments. In-order data on a clean path
    /// only: one that fills (part of) a hole or arrives while one remains and a duplicate each
    /// get an ACK of their own at once (RFC 5681 §4.2); out-of-order ones follow
    /// `sack_compression`.
    pub ack_stretch: u32,
    /// SACK compression (Linux's `tcp_comp_sack_nr`, 44 there too): once the sender has had
    /// its DupThresh duplicate ACKs for the current RCV.NXT, an out-of-order segment that only
    /// lengthens a block already reported waits for the end of the read batch, or for this
    /// many such segments, whichever is first; a new hole, a filled one and a duplicate still
    /// get their ACK at once, and so does every segment in quick-ACK mode (data arrived twice:
    /// our ACKs are being lost), as in Linux. Each ACK written to a TUN runs the forwarding
    /// path and the sender's ACK processing inside the write: with one ACK per out-of-order
    /// segment a 64 MiB download at 1% loss each way took 1.0-1.2 s against 0.2-0.5 s with 44,
    /// and at 10% the receiver was CPU-bound (47k ACKs for 52k segments; Linux sent 12k).
    /// Without the quick-ACK exception, 1 in 50 downloads of 8 MiB at 20% loss stalled until
    /// the server gave up. 1 acknowledges every out-of-order segment at once (RFC 5681 §4.2's
    /// SHOULD, read literally).
    pub sack_compression: u32,
    /// TIME-WAIT length (2*MSL), also the FIN-WAIT-2 limit once the application closed.
    pub time_wait: Duration,
    /// Abort when sent data stays unacknowledged this long (RFC 5482 user timeout).
    pub user_timeout: Duration,
    /// Retransmissions of SYN or SYN-ACK before giving up.
    pub syn_retries: u32,
    /// The first this many retransmissions of an active open's SYN keep the initial RTO
    /// instead of doubling it (Linux's `tcp_syn_linear_timeouts`, 4 there since 6.7); later
    /// ones back off as RFC 6298 §5.5 says. 0 (the default) backs off from the first. Under
    /// heavy loss this saves a second on a third SYN, three on a fourth. (It does not change
    /// the RTO data starts with: a Linux peer's SYN-ACK to a resent SYN echoes an earlier
    /// SYN's TSval, so there is still no sample and RFC 6298 §5.7's 3 s applies.)
    pub syn_linear_timeouts: u32,
    /// Consecutive retransmission timeouts of data before giving up.
    pub data_retries: u32,
    /// RFC 5961 §7: most challenge ACKs per second.
    pub challenge_acks_per_second: u32,
    /// Keep-alive (RFC 9293 §3.8.4): after this long without hearing from the peer, probe
    /// it, and again each time this long passes; off (`None`) by default, as the RFC asks.
    /// It finds peers that vanished (and keeps middlebox state alive) on idle connections.
    pub keepalive: Option<Duration>,
    /// Unanswered keep-alive probes before the connection is declared dead.
    pub keepalive_probes: u32,
    /// The congestion controller each connection starts with.
    pub congestion: Algorithm,
    /// Transmit segmentation offload: when cwnd, the peer's window and the send buffer allow
    /// this many full segments of new data at once, `poll_transmit` may return them as one
    /// TCP super-segment (what those segments would have been, back to back) for a device
    /// that segments it (a TUN with TSO). 1, the default, sends every segment on its own.
    pub max_burst_segments: u16,
    /// A super-segment carries at most 1/this of the window (cwnd or the peer's, the smaller),
    /// so that a flight is several of them. Their pieces reach the receiver back to back,
    /// faster than its application reads, and a Linux receiver then answers the lot with one
    /// delayed ACK instead of one per two segments: a flight that is one super-segment draws
    /// one ACK (shared with the tail loss probe after it), and losing that ACK leaves only the
    /// retransmission timeout. Measured with 5% loss each way, 16 MiB to curl (busy 2-core
    /// machine): whole-window bursts took 9.9-13.7 s (38 timeouts in one run), quarter-window
    /// ones 3.1-6.4 s (10-13), one segment per datagram 3.8-6.4 s. At high rates the window is hundreds of segments and bursts
    /// stay at `max_burst_segments`. 1 lets one super-segment fill the window.
    pub bursts_per_window: u16,
    /// Record `--trace` events and the counters `--stats` prints (`Connection::drain_trace`,
    /// `Connection::summary`). Off by default: then nothing is recorded or allocated.
    pub trace: bool,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            mss: 1460,
            recv_buffer: 1 << 20,
            recv_buffer_max: 0,
            send_buffer: 256 << 10,
            send_buffer_max: 4 << 20,
            window_scaling: true,
            timestamps: true,
            sack: true,
            rack: true,
            tlp: true,
            undo: true,
            frto: true,
            nagle: false,
            rto: RtoBounds::default(),
            delayed_ack: Duration::from_millis(40),
            ack_stretch: 44,
            sack_compression: 44,
            time_wait: Duration::from_secs(60),
            user_timeout: Duration::from_secs(300),
            syn_retries: 6,
            syn_linear_timeouts: 0,
            data_retries: 15,
            challenge_acks_per_second: 10,
            keepalive: None,
            keepalive_probes: 9,
            congestion: Algorithm::NewReno,
            max_burst_segments: 1,
            bursts_per_window: 4,
            trace: false,
        }
    }
}
