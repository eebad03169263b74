//! The typed events of `--trace FILE` (docs/trace-format.md, version 1).
//!
//! The protocol code builds these values, never strings: a test can match on them, and the
//! only place that knows JSON is the writer at the edge ([`super::writer`]). Field names and
//! enum spellings are the format's, through serde's attributes, so the document and the code
//! cannot drift apart silently (the writer's tests pin them).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use serde::{Serialize, Serializer};

/// One event with the `Instant` of the decision and the connection it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceRecord {
    /// When the stack (or the impairer) made the decision.
    pub at: Instant,
    /// The connection, numbered from 1 in creation order (the stack's `ConnId`); `None` for
    /// events of no known connection.
    pub conn: Option<u64>,
    /// What happened.
    pub event: TraceEvent,
}

/// What happened: one line of the trace (the `ev` key names the variant).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum TraceEvent {
    /// The first line: what wrote the file.
    Trace {
        /// [`super::FORMAT_VERSION`]: readers check it before trusting the keys.
        version: u32,
        /// "tunstack".
        tool: &'static str,
        /// "fetch", "serve" or "sim": which run wrote it.
        cmd: String,
    },
    /// A connection was created.
    Open {
        /// Our end.
        local: SocketAddrV4,
        /// The peer's end.
        remote: SocketAddrV4,
        /// Who opened it.
        role: Role,
        /// Our initial sequence number, absolute.
        iss: u32,
    },
    /// TAP mode: an ARP packet sent or received, or a next hop given up on (RFC 826).
    Arp {
        /// Sent by us (`out`) or received (`in`); absent for `unreachable`.
        #[serde(skip_serializing_if = "Option::is_none")]
        dir: Option<Dir>,
        /// "request", "reply", "gratuitous" (an announcement of an address by its owner) or
        /// "unreachable" (no reply after the retries: its datagrams were dropped).
        what: &'static str,
        /// The other host's address: the one asked about, answered or heard from.
        ip: Ipv4Addr,
        /// Its hardware address as the packet gives it (all zeros in a request we send);
        /// absent for `unreachable`.
        #[serde(skip_serializing_if = "Option::is_none")]
        mac: Option<String>,
    },
    /// An RFC 9293 state change.
    State {
        /// The RFC 9293 name of the state left.
        from: &'static str,
        /// The RFC 9293 name of the state entered.
        to: &'static str,
        /// The peer's initial sequence number, absolute, once known.
        #[serde(skip_serializing_if = "Option::is_none")]
        irs: Option<u32>,
    },
    /// A segment sent or accepted.
    Seg(Segment),
    /// An RTT sample (`sample_ms` set) or a retransmission timeout's backoff (`sample_ms`
    /// null).
    Rtt {
        /// The measurement, or null for a backoff.
        sample_ms: Option<f64>,
        /// Null before the first sample.
        srtt_ms: Option<f64>,
        /// RTTVAR (RFC 6298).
        rttvar_ms: f64,
        /// The RTO to arm now, backoff included.
        rto_ms: f64,
        /// Consecutive timeouts without a new sample.
        backoff: u32,
    },
    /// cwnd or ssthresh changed.
    Cc {
        /// Congestion window, bytes.
        cwnd: u64,
        /// Null while infinite (no loss yet).
        ssthresh: Option<u64>,
        /// RFC 6675 pipe, bytes.
        inflight: u64,
        /// Why it changed.
        cause: CcCause,
    },
    /// The window we advertise, or the receive buffer's size, changed.
    Rwnd {
        /// The window in the segment we sent, bytes.
        win: u64,
        /// Bytes held: unread in order plus out of order.
        buffered: u64,
        /// The receive buffer's size.
        capacity: u64,
    },
    /// A zero-window episode started or ended.
    ZeroWindow {
        /// Whose window is closed.
        side: WindowSide,
        /// Start or end.
        phase: Phase,
    },
    /// The receiver decided about an ACK.
    AckDecision {
        /// Now or later.
        decision: AckDecision,
        /// What made it so.
        why: AckWhy,
    },
    /// `--impair` did something to a datagram.
    Impair(Impairment),
    /// The connection is gone (or the process ends while it is open).
    Close {
        /// The one-line reason it failed, or null for a clean end.
        error: Option<String>,
        /// Boxed: by far the largest event, and one per connection.
        stats: Box<ConnSummary>,
    },
}

/// Which end opened the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Active open (`connect`).
    Client,
    /// Passive open (a listener's SYN).
    Server,
}

/// A segment's direction, or an impaired datagram's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dir {
    /// Towards the stack (read from the device).
    In,
    /// Away from the stack (written to the device).
    Out,
}

/// Why a segment was sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rexmit {
    /// Go-back-N after a retransmission timeout (or a path MTU drop).
    Rto,
    /// The fast retransmission that starts a recovery (RFC 5681 §3.2, RFC 6675 §5 step 4).
    Fast,
    /// SACK recovery: a hole the scoreboard marks lost, or NextSeg rule 3 (RFC 6675).
    Sack,
    /// RACK marked it lost (RFC 8985 §6.2).
    Rack,
    /// NewReno's retransmission after a partial ACK (RFC 6582 §3.2 step 5).
    Newreno,
    /// RFC 6675's rescue retransmission (NextSeg rule 4).
    Rescue,
    /// A tail loss probe resending the last segment (RFC 8985 §7.3).
    Tlp,
    /// Our SYN or SYN-ACK again.
    Syn,
}

/// What a probe segment probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Probe {
    /// A tail loss probe (RFC 8985 §7.3), new data or the last segment again.
    Tlp,
    /// A zero-window probe (RFC 9293 §3.8.6.1).
    Zwp,
    /// A keep-alive (RFC 9293 §3.8.4).
    Keepalive,
}

/// Why cwnd or ssthresh changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CcCause {
    /// The connection's first values.
    Init,
    /// An ACK grew cwnd below ssthresh.
    SlowStart,
    /// An ACK grew cwnd at or above ssthresh.
    Avoidance,
    /// A fast recovery started (or a loss probe repaired a loss, RFC 8985 §7.4).
    RecoveryEnter,
    /// A change during recovery that is none of the others.
    Recovery,
    /// A fast recovery ended.
    RecoveryExit,
    /// A retransmission timeout.
    Rto,
    /// A congestion response was undone (spurious retransmission).
    Undo,
    /// RFC 5681 §4.1: restart after an idle period.
    IdleRestart,
    /// None of the above (a controller changed its window by itself).
    Other,
}

/// Whose window is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowSide {
    /// The peer advertised 0 and we probe.
    Peer,
    /// We advertise 0.
    Ours,
}

/// The start or end of an episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The episode begins.
    Start,
    /// The episode is over.
    End,
}

/// An ACK now or later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AckDecision {
    /// The delayed-ACK timer runs.
    Delay,
    /// An ACK is owed with the next transmission.
    Send,
}

/// Why the receiver decided so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AckWhy {
    /// One segment's worth unacknowledged: wait (RFC 5681 §4.2).
    FirstSegment,
    /// More than a segment's worth unacknowledged (the ACK every second segment).
    SecondSegment,
    /// `ack_stretch` segments' worth unacknowledged.
    Stretch,
    /// The delayed-ACK timer fired.
    Timer,
    /// Data beyond a hole.
    OutOfOrder,
    /// Data that filled (part of) a hole.
    FillHole,
    /// Data we already had.
    Duplicate,
    /// The peer's FIN.
    Fin,
    /// The window opened enough to tell the peer.
    WindowUpdate,
    /// A challenge ACK (RFC 5961).
    Challenge,
    /// An unacceptable segment (out of window, PAWS, bad ACK) answered with an ACK.
    Unacceptable,
    /// The peer's SYN or SYN-ACK.
    Syn,
}

/// A segment of a `seg` event; sequence numbers relative and unwrapped.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segment {
    /// Sent or accepted.
    pub dir: Dir,
    /// Relative to the sender's ISS.
    pub seq: u64,
    /// Relative to the other side's ISS; absent without the ACK flag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack: Option<u64>,
    /// Payload bytes.
    pub len: u32,
    /// The flags present.
    pub flags: SegFlags,
    /// The window, scaled (a SYN's as sent).
    pub win: u64,
    /// SACK blocks `[left, right)`, relative like `ack`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sack: Vec<[u64; 2]>,
    /// The first block is a D-SACK (RFC 2883).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dsack: bool,
    /// Why it was sent again; absent for a first transmission.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rexmit: Option<Rexmit>,
    /// What it probes, if it is a probe.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<Probe>,
    /// Wire segments of an offload super-segment; absent when 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segs: Option<u32>,
}

/// What `--impair` did to one datagram, as the `impair` event shows it: TCP fields relative
/// to the connection when it is known (absolute otherwise).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Impairment {
    /// Towards the stack or away from it.
    pub dir: Dir,
    /// What was done.
    pub action: ImpairAction,
    /// The whole hold of a reordered or delayed datagram.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<f64>,
    /// The TCP sequence number (relative when the connection is known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Addition to version 1: the datagram's acknowledgement number, so a dropped ACK can be
    /// told apart from the next one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack: Option<u64>,
    /// TCP payload bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub len: Option<u32>,
    /// TCP flags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<SegFlags>,
    /// Addition to version 1: the window field, scaled when the connection is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub win: Option<u64>,
}

/// What the impairer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImpairAction {
    /// Lost on purpose (or the rate limit's queue was full).
    Drop,
    /// Delivered twice.
    Duplicate,
    /// Held back so later datagrams overtake it.
    Reorder,
    /// One bit flipped.
    Corrupt,
    /// Held beyond the constant delay (jitter, rate limit).
    Delay,
}

/// An impairment as the device layer saw it (no connection, absolute numbers): the stack
/// turns it into an [`Impairment`] of a connection ([`crate::stack::Stack::trace_impairment`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ImpairRecord {
    /// When it was done.
    pub at: Instant,
    /// Which way the datagram was going.
    pub dir: Dir,
    /// What was done.
    pub action: ImpairAction,
    /// How long it is held (reorder and delay).
    pub delay: Option<Duration>,
    /// The TCP segment inside, when there is one.
    pub tcp: Option<RawSegment>,
}

/// The TCP header fields of a datagram, read without trusting its checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawSegment {
    /// Source address and port.
    pub src: SocketAddrV4,
    /// Destination address and port.
    pub dst: SocketAddrV4,
    /// Absolute sequence number.
    pub seq: u32,
    /// Absolute acknowledgement number, with the ACK flag.
    pub ack: Option<u32>,
    /// Payload bytes.
    pub len: u32,
    /// The flags present.
    pub flags: SegFlags,
    /// The window field, unscaled.
    pub window: u16,
}

impl RawSegment {
    /// Reads an IPv4 datagram's TCP header; `None` for anything else (or a fragment).
    pub fn parse(datagram: &[u8]) -> Option<RawSegment> {
        let version_ihl = *datagram.first()?;
        if version_ihl >> 4 != 4 || datagram.get(9) != Some(&6) {
            return None;
        }
        let ihl = usize::from(version_ihl & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([*datagram.get(2)?, *datagram.get(3)?]));
        let fragment = u16::from_be_bytes([datagram[6], datagram[7]]) & 0x3fff;
        if fragment != 0 {
            return None;
        }
        let ip = |at: usize| -> Option<std::net::Ipv4Addr> {
            let b = datagram.get(at..at + 4)?;
            Some(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]))
        };
        let tcp = datagram.get(ihl..total.min(datagram.len()))?;
        if tcp.len() < 20 {
            return None;
        }
        let word = |at: usize| u32::from_be_bytes([tcp[at], tcp[at + 1], tcp[at + 2], tcp[at + 3]]);
        let port = |at: usize| u16::from_be_bytes([tcp[at], tcp[at + 1]]);
        let data_offset = usize::from(tcp[12] >> 4) * 4;
        let flags = SegFlags::from_header(tcp[13]);
        Some(RawSegment {
            src: SocketAddrV4::new(ip(12)?, port(0)),
            dst: SocketAddrV4::new(ip(16)?, port(2)),
            seq: word(4),
            ack: flags.has(SegFlags::ACK).then(|| word(8)),
            len: tcp.len().saturating_sub(data_offset) as u32,
            flags,
            window: port(14),
        })
    }
}

/// TCP flags of a segment, shown as the letters of "SFRPAU" present, in that order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SegFlags(pub u8);

impl SegFlags {
    /// The bits, in the order of the letters "SFRPAU".
    pub const SYN: u8 = 1;
    /// FIN.
    pub const FIN: u8 = 2;
    /// RST.
    pub const RST: u8 = 4;
    /// PSH.
    pub const PSH: u8 = 8;
    /// ACK.
    pub const ACK: u8 = 16;
    /// URG.
    pub const URG: u8 = 32;

    /// From the flags byte of a TCP header (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10,
    /// URG 0x20).
    pub fn from_header(byte: u8) -> Self {
        let mut flags = 0;
        for (bit, flag) in [
            (0x02, Self::SYN),
            (0x01, Self::FIN),
            (0x04, Self::RST),
            (0x08, Self::PSH),
            (0x10, Self::ACK),
            (0x20, Self::URG),
        ] {
            if byte & bit != 0 {
                flags |= flag;
            }
        }
        SegFlags(flags)
    }

    /// True if `flag` (one of the constants) is set.
    pub fn has(self, flag: u8) -> bool {
        self.0 & flag != 0
    }
}

impl Serialize for SegFlags {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut text = [0u8; 6];
        let mut n = 0;
        for (i, letter) in b"SFRPAU".iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                text[n] = *letter;
                n += 1;
            }
        }
        serializer.serialize_str(std::str::from_utf8(&text[..n]).unwrap_or_default())
    }
}

/// Retransmissions by cause (the `retrans` object of [`ConnSummary`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RexmitCounts {
    pub rto: u64,
    pub fast: u64,
    pub sack: u64,
    pub rack: u64,
    pub newreno: u64,
    pub rescue: u64,
    pub tlp: u64,
    pub syn: u64,
}

impl RexmitCounts {
    /// Counts one retransmission of `cause`.
    pub fn add(&mut self, cause: Rexmit) {
        let slot = match cause {
            Rexmit::Rto => &mut self.rto,
            Rexmit::Fast => &mut self.fast,
            Rexmit::Sack => &mut self.sack,
            Rexmit::Rack => &mut self.rack,
            Rexmit::Newreno => &mut self.newreno,
            Rexmit::Rescue => &mut self.rescue,
            Rexmit::Tlp => &mut self.tlp,
            Rexmit::Syn => &mut self.syn,
        };
        *slot += 1;
    }

    /// All causes together.
    pub fn total(&self) -> u64 {
        self.rto
            + self.fast
            + self.sack
            + self.rack
            + self.newreno
            + self.rescue
            + self.tlp
            + self.syn
    }
}

/// A connection's final counters and estimates, like `ss -i`: what `--stats` prints and the
/// `stats` of the `close` event. Times in milliseconds; windows and counts in bytes unless
/// the name says segments.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ConnSummary {
    pub local: Option<SocketAddrV4>,
    pub remote: Option<SocketAddrV4>,
    pub state: &'static str,
    /// Seconds from the connection's creation to this summary.
    pub duration_s: f64,
    pub rtt_ms: Option<f64>,
    pub rttvar_ms: Option<f64>,
    pub min_rtt_ms: Option<f64>,
    pub rtt_samples: u64,
    pub rto_ms: f64,
    pub backoff: u32,
    /// Our sending MSS (payload bytes per full segment).
    pub mss: u64,
    pub cwnd: u64,
    /// Null while infinite.
    pub ssthresh: Option<u64>,
    /// RFC 6675 pipe at the end.
    pub inflight: u64,
    /// The peer's last window.
    pub snd_wnd: u64,
    /// The window we advertise.
    pub rcv_wnd: u64,
    pub rcv_buffer: u64,
    pub bytes_sent: u64,
    pub bytes_retrans: u64,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub segs_out: u64,
    pub segs_in: u64,
    /// Retransmitted segments, all causes.
    pub retrans_total: u64,
    pub retrans: RexmitCounts,
    pub timeouts: u64,
    pub recoveries: u64,
    pub loss_probes: u64,
    /// Reductions undone because D-SACKs reported every retransmission of the episode as a
    /// duplicate (RFC 2883 §5, RFC 3708).
    pub undos_dsack: u64,
    /// Reductions undone because timestamps showed an original filled the hole (RFC 3522).
    pub undos_timestamp: u64,
    /// Timeouts F-RTO found spurious (RFC 5682).
    pub undos_frto: u64,
    /// Retransmission timeouts shown spurious, by any detector (counted in `timeouts` too).
    pub spurious_rtos: u64,
    pub rack_marked_lost: u64,
    pub dup_acks_in: u64,
    pub dup_acks_out: u64,
    /// RACK saw reordering (RFC 8985 §6.2 step 3): a segment never retransmitted was delivered
    /// after a later one. A D-SACK alone does not set it (it widens RACK's reordering window
    /// instead): when the delay exceeds the round trip, the retransmission arrives first.
    pub reordering_seen: bool,
    pub out_of_order_in: u64,
    pub duplicate_segments_in: u64,
    pub sack_blocks_in: u64,
    pub sack_blocks_out: u64,
    pub dsack_in: u64,
    pub dsack_out: u64,
    pub checksum_failures: u64,
    /// Time our sending was limited by cwnd (unsent data, no room under cwnd).
    pub cwnd_limited_ms: f64,
    /// Time our sending was limited by the peer's window.
    pub rwnd_limited_ms: f64,
    /// Time we had nothing (more) to send: the application's data was all out.
    pub app_limited_ms: f64,
    /// Time we advertised a zero window (our reader was the bottleneck).
    pub rcv_zero_window_ms: f64,
}
