//! The stack: one IPv4 address, its TCP connections keyed by 4-tuple, listeners, ephemeral
//! ports and ISNs. Sans-IO like its parts: datagrams and `now` in, datagrams and deadlines out.
//!
//! Drive it the same way as a [`Connection`]: after `handle_datagram`, `handle_timeout` (once
//! `poll_timeout` has passed) or any application call, flush `poll_transmit` until `None`, then
//! drain `poll_event`.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use thiserror::Error;

use crate::ipv4::{self, Ingress, Ipv4Config, Ipv4Layer, Ipv4Stats};
use crate::tcp::connection::cookie;
use crate::tcp::isn::IsnGenerator;
use crate::tcp::syncookie::{self, SynCookies};
use crate::tcp::{ConnError, ConnEvent, Connection, FourTuple, Initial, IoError, TcpConfig};
use crate::wire::tcp::{self as tcp_wire, TcpParseError};
use crate::wire::{ChecksumStatus, Control, SeqNum, TcpOptions, TcpRepr};

/// Identifies a connection for the application; never reused within one stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What the application should learn about, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An active open completed.
    Connected(ConnId),
    /// A listener has an established connection to `accept`.
    Incoming {
        port: u16,
    },
    Readable(ConnId),
    Writable(ConnId),
    /// The peer will send nothing more.
    PeerFinished(ConnId),
    /// Ended cleanly.
    Closed(ConnId),
    /// Ended with an error.
    Failed(ConnId, ConnError),
}

/// How to build a stack.
#[derive(Debug, Clone)]
pub struct StackConfig {
    pub local_addr: Ipv4Addr,
    /// Largest datagram the device carries; sets our MSS.
    pub mtu: usize,
    pub tcp: TcpConfig,
    /// Key for ISNs (RFC 6528); random in production, fixed in simulations.
    pub secret: [u8; 16],
    /// Seed for ephemeral ports, timestamp offsets and IP identifications.
    pub seed: u64,
    /// Most connections at once, listeners' pending ones included.
    pub max_connections: usize,
    /// Most connections a listener holds before `accept` (handshaking or established).
    pub backlog: usize,
    /// Answer SYNs with SYN cookies (RFC 4987 §3.6) once a listener's backlog is full,
    /// instead of dropping them: a SYN flood then costs no memory and real clients still
    /// get in.
    pub syn_cookies: bool,
}

impl StackConfig {
    /// A configuration for `local_addr` on a device with this MTU, with random secrets.
    pub fn new(local_addr: Ipv4Addr, mtu: usize, secret: [u8; 16], seed: u64) -> Self {
        let mss = mtu.saturating_sub(40).clamp(536, usize::from(u16::MAX)) as u16;
        StackConfig {
            local_addr,
            mtu,
            tcp: TcpConfig {
                mss,
                ..TcpConfig::default()
            },
            secret,
            seed,
            max_connections: 1024,
            backlog: 128,
            syn_cookies: true,
        }
    }
}

/// Errors of stack-level calls.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StackError {
    #[error("no such connection {0}")]
    UnknownConnection(ConnId),
    #[error("no free local port for {0}")]
    NoFreePort(SocketAddrV4),
    #[error("too many connections")]
    TooManyConnections,
    #[error("port {0} is already listening")]
    PortInUse(u16),
    #[error(transparent)]
    Io(#[from] IoError),
}

/// Stack-wide counters (per-connection ones live on each connection).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackStats {
    pub tcp_checksum_failures: u64,
    pub tcp_malformed: u64,
    /// Segments for no connection and no listener.
    pub tcp_no_connection: u64,
    pub rsts_sent: u64,
    pub rsts_suppressed: u64,
    pub icmp_errors: u64,
    pub icmp_errors_ignored: u64,
    /// SYN-ACKs sent with a cookie because a backlog was full.
    pub syn_cookies_sent: u64,
    /// Connections opened by an ACK returning a valid cookie.
    pub syn_cookies_accepted: u64,
    /// SYNs dropped: backlog full and cookies off, or too many cookie SYN-ACKs queued.
    pub syns_dropped: u64,
}

struct Entry {
    conn: Connection,
    tuple: FourTuple,
    /// The listener port it came from, until accepted.
    listener: Option<u16>,
    /// The application let go of it (closed, aborted or never accepted and listener gone).
    released: bool,
}

#[derive(Default)]
struct Listener {
    ready: VecDeque<ConnId>,
    /// When this listener last answered with a cookie: returning cookies are only checked
    /// for a while after (a blind ACK otherwise gets 2^-24 guesses for nothing).
    cookie_sent: Option<Instant>,
}

/// A SYN-ACK owed with a cookie: no connection exists for it.
struct PendingCookie {
    tuple: FourTuple,
    syn_seq: SeqNum,
    options: TcpOptions,
    iss: SeqNum,
    tsval: u32,
}

/// A reset owed to a segment that matched no connection (RFC 9293 §3.10.7.1).
struct PendingRst {
    to: SocketAddrV4,
    from_port: u16,
    seq: SeqNum,
    ack: Option<SeqNum>,
}

/// Most resets queued at once; a flood of stray segments cannot make us buffer more.
const RST_QUEUE_LIMIT: usize = 64;
/// Most cookie SYN-ACKs queued at once; beyond, SYNs are dropped (and retried by real peers).
const COOKIE_QUEUE_LIMIT: usize = 256;
/// How long after answering with a cookie its return is accepted (the cookie's own life).
const COOKIE_LIFETIME: Duration = Duration::from_secs(180);
/// RFC 6056 §2.1: the dynamic port range.
const EPHEMERAL_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;

/// The whole sans-IO stack: the IP layer and the TCP sockets, kept apart so a segment borrowed
/// from the IP layer's reassembly buffer can be handed straight to TCP.
pub struct Stack {
    ip: Ipv4Layer,
    sockets: Sockets,
}

/// Everything TCP: connections, listeners, pending resets, events.
struct Sockets {
    config: StackConfig,
    epoch: Instant,
    isn: IsnGenerator,
    rng: SmallRng,
    next_id: u64,
    conns: HashMap<ConnId, Entry>,
    by_tuple: HashMap<FourTuple, ConnId>,
    /// Round-robin order for transmission fairness.
    order: Vec<ConnId>,
    cursor: usize,
    listeners: HashMap<u16, Listener>,
    rsts: VecDeque<PendingRst>,
    cookies: SynCookies,
    pending_cookies: VecDeque<PendingCookie>,
    events: VecDeque<Event>,
    stats: StackStats,
    /// A connection wants an ACK out before the receive batch ends.
    ack_due: bool,
}

impl Stack {
    /// Creates a stack; `now` anchors its ISN clock and timestamp clocks.
    pub fn new(now: Instant, config: StackConfig) -> Self {
        let mut rng = SmallRng::seed_from_u64(config.seed);
        let ip = Ipv4Layer::new(Ipv4Config {
            local_addr: config.local_addr,
            first_identification: rng.gen(),
            ..Ipv4Config::default()
        });
        let sockets = Sockets {
            isn: IsnGenerator::new(config.secret),
            epoch: now,
            rng,
            next_id: 1,
            conns: HashMap::new(),
            by_tuple: HashMap::new(),
            order: Vec::new(),
            cursor: 0,
            listeners: HashMap::new(),
            rsts: VecDeque::new(),
            cookies: SynCookies::new(config.secret),
            pending_cookies: VecDeque::new(),
            events: VecDeque::new(),
            stats: StackStats::default(),
            ack_due: false,
            config,
        };
        Stack { ip, sockets }
    }

    /// Our address.
    pub fn local_addr(&self) -> Ipv4Addr {
        self.sockets.config.local_addr
    }

    /// Stack-wide counters.
    pub fn stats(&self) -> &StackStats {
        &self.sockets.stats
    }

    /// IPv4 counters.
    pub fn ip_stats(&self) -> &Ipv4Stats {
        self.ip.stats()
    }

    /// A connection, for its state and statistics.
    pub fn connection(&self, id: ConnId) -> Option<&Connection> {
        self.sockets.conns.get(&id).map(|e| &e.conn)
    }

    /// The connection from our `local_port` to `remote`, for tracing.
    pub fn connection_by_ports(
        &self,
        local_port: u16,
        remote: SocketAddrV4,
    ) -> Option<&Connection> {
        let local = SocketAddrV4::new(self.sockets.config.local_addr, local_port);
        let id = self.sockets.by_tuple.get(&FourTuple { local, remote })?;
        self.connection(*id)
    }

    /// Mutable access, for tests and tuning (e.g. swapping the congestion controller).
    pub fn connection_mut(&mut self, id: ConnId) -> Option<&mut Connection> {
        self.sockets.conns.get_mut(&id).map(|e| &mut e.conn)
    }

    /// Connections the application closed that still have a FIN (or data) to get across:
    /// what is worth a short wait before exiting, so servers see an orderly close.
    pub fn closing_connections(&self) -> usize {
        use crate::tcp::State;
        let closing = |e: &&Entry| {
            e.released
                && matches!(
                    e.conn.state(),
                    State::FinWait1 | State::Closing | State::LastAck
                )
        };
        self.sockets.conns.values().filter(closing).count()
    }

    /// How many connections the stack holds (TIME-WAIT and unreleased closed ones included).
    pub fn connection_count(&self) -> usize {
        self.sockets.conns.len()
    }

    /// Active open to `remote` from a random ephemeral port (RFC 6056).
    pub fn connect(&mut self, now: Instant, remote: SocketAddrV4) -> Result<ConnId, StackError> {
        self.sockets.connect(now, remote)
    }

    /// Accepts connections to `port`.
    pub fn listen(&mut self, port: u16) -> Result<(), StackError> {
        let listeners = &mut self.sockets.listeners;
        if listeners.contains_key(&port) {
            return Err(StackError::PortInUse(port));
        }
        listeners.insert(port, Listener::default());
        Ok(())
    }

    /// Stops accepting on `port`: later SYNs are answered with a reset, and connections not
    /// yet accepted (handshaking or waiting in the backlog) are aborted. A server shutting
    /// down calls this first, so nobody connects only to be cut off.
    pub fn unlisten(&mut self, port: u16) {
        let sockets = &mut self.sockets;
        if sockets.listeners.remove(&port).is_none() {
            return;
        }
        let pending: Vec<ConnId> = sockets
            .conns
            .iter()
            .filter(|(_, e)| e.listener == Some(port))
            .map(|(id, _)| *id)
            .collect();
        for id in pending {
            let _ = sockets.release(id, Connection::abort);
        }
    }

    /// The next established connection waiting on `port`.
    pub fn accept(&mut self, port: u16) -> Option<ConnId> {
        let id = self.sockets.listeners.get_mut(&port)?.ready.pop_front()?;
        if let Some(entry) = self.sockets.conns.get_mut(&id) {
            entry.listener = None;
        }
        Some(id)
    }

    /// Queues bytes; returns how many fit.
    pub fn send(&mut self, id: ConnId, data: &[u8]) -> Result<usize, StackError> {
        Ok(self.sockets.entry(id)?.conn.send(data)?)
    }

    /// Reads bytes; `Ok(0)` is end of stream.
    pub fn recv(&mut self, id: ConnId, out: &mut [u8]) -> Result<usize, StackError> {
        Ok(self.sockets.entry(id)?.conn.recv(out)?)
    }

    /// Reads without copying: `consume` gets the readable bytes and returns how many it took.
    pub fn recv_with(
        &mut self,
        id: ConnId,
        consume: impl FnOnce(&[u8], &[u8]) -> usize,
    ) -> Result<usize, StackError> {
        Ok(self.sockets.entry(id)?.conn.recv_with(consume)?)
    }

    /// Graceful close; the stack forgets the connection once it is fully closed.
    pub fn close(&mut self, id: ConnId) -> Result<(), StackError> {
        self.sockets.release(id, Connection::close)
    }

    /// Abortive close (RST).
    pub fn abort(&mut self, id: ConnId) -> Result<(), StackError> {
        self.sockets.release(id, Connection::abort)
    }

    /// Processes one datagram read from the device.
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) {
        self.handle_datagram_with(now, datagram, ChecksumStatus::Unverified);
    }

    /// Like `handle_datagram`, with what the device said about the transport checksum.
    pub fn handle_datagram_with(
        &mut self,
        now: Instant,
        datagram: &[u8],
        checksum: ChecksumStatus,
    ) {
        match self.ip.handle_datagram_with(now, datagram, checksum) {
            Ingress::Tcp {
                src,
                dst,
                segment,
                checksum,
            } => self
                .sockets
                .handle_segment(now, src, dst, segment, checksum),
            Ingress::IcmpError(err) => self.sockets.handle_icmp_error(err),
            Ingress::Consumed | Ingress::Dropped(_) => {}
        }
    }

    /// True (once) when the datagrams handled since the last call left something that should
    /// be sent before more are read: an immediate ACK or a reset.
    pub fn take_transmit_due(&mut self) -> bool {
        let sockets = &self.sockets;
        let due = sockets.ack_due
            || !sockets.rsts.is_empty()
            || sockets.pending_cookies.len() >= COOKIE_QUEUE_LIMIT / 2;
        self.sockets.ack_due = false;
        due
    }

    /// Fires expired timers everywhere.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.ip.handle_timeout(now);
        self.sockets.handle_timeout(now);
    }

    /// The earliest deadline of any timer in the stack.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let conns = self
            .sockets
            .conns
            .values()
            .filter_map(|e| e.conn.poll_timeout());
        conns.chain(self.ip.poll_timeout()).min()
    }

    /// Writes the next datagram to send into `buf` (at least MTU bytes) and returns its length.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if let Some(len) = self.ip.poll_transmit(buf) {
            return Some(len);
        }
        let (dst, len) = self
            .sockets
            .poll_segment(now, &mut buf[ipv4::HEADER_LEN..])?;
        let header = self
            .ip
            .write_header(buf, dst, tcp_wire::PROTOCOL, len)
            .ok()?;
        Some(header + len)
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.sockets.events.pop_front()
    }
}

impl Sockets {
    fn entry(&mut self, id: ConnId) -> Result<&mut Entry, StackError> {
        self.conns
            .get_mut(&id)
            .ok_or(StackError::UnknownConnection(id))
    }

    fn connect(&mut self, now: Instant, remote: SocketAddrV4) -> Result<ConnId, StackError> {
        if self.conns.len() >= self.config.max_connections {
            return Err(StackError::TooManyConnections);
        }
        let local = self.pick_local_port(remote)?;
        let tuple = FourTuple { local, remote };
        let initial = self.initial(now, tuple);
        let conn = Connection::connect(now, self.config.tcp.clone(), tuple, initial);
        Ok(self.insert(tuple, conn, None))
    }

    /// What a new connection on `tuple` starts from: its ISS (RFC 6528) and a random timestamp
    /// clock offset (RFC 7323 §5.4), drawn in this order for active and passive opens alike.
    fn initial(&mut self, now: Instant, tuple: FourTuple) -> Initial {
        let iss = self.isn.isn(
            now.saturating_duration_since(self.epoch),
            tuple.local,
            tuple.remote,
        );
        let ts_offset = self.rng.gen();
        Initial { iss, ts_offset }
    }

    fn pick_local_port(&mut self, remote: SocketAddrV4) -> Result<SocketAddrV4, StackError> {
        let span = u32::from(EPHEMERAL_PORTS.end() - EPHEMERAL_PORTS.start()) + 1;
        let start = self.rng.gen_range(0..span);
        for step in 0..span {
            let port = *EPHEMERAL_PORTS.start() + ((start + step) % span) as u16;
            let local = SocketAddrV4::new(self.config.local_addr, port);
            let taken = self.by_tuple.contains_key(&FourTuple { local, remote })
                || self.listeners.contains_key(&port);
            if !taken {
                return Ok(local);
            }
        }
        Err(StackError::NoFreePort(remote))
    }

    fn insert(&mut self, tuple: FourTuple, conn: Connection, listener: Option<u16>) -> ConnId {
        let id = ConnId(self.next_id);
        self.next_id += 1;
        self.conns.insert(
            id,
            Entry {
                conn,
                tuple,
                listener,
                released: false,
            },
        );
        self.by_tuple.insert(tuple, id);
        self.order.push(id);
        id
    }

    fn release(&mut self, id: ConnId, how: impl FnOnce(&mut Connection)) -> Result<(), StackError> {
        let entry = self
            .conns
            .get_mut(&id)
            .ok_or(StackError::UnknownConnection(id))?;
        how(&mut entry.conn);
        entry.released = true;
        drain_events(&mut self.events, &mut self.listeners, id, entry);
        Ok(())
    }

    fn handle_segment(
        &mut self,
        now: Instant,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        segment: &[u8],
        checksum: ChecksumStatus,
    ) {
        let seg = match TcpRepr::parse_with(src, dst, segment, checksum) {
            Ok(seg) => seg,
            Err(TcpParseError::BadChecksum) => {
                self.stats.tcp_checksum_failures += 1;
                let owner =
                    tuple_of_raw(src, dst, segment).and_then(|q| self.by_tuple.get(&q).copied());
                if let Some(entry) = owner.and_then(|id| self.conns.get_mut(&id)) {
                    entry.conn.count_checksum_failure();
                }
                return;
            }
            Err(_) => {
                self.stats.tcp_malformed += 1;
                return;
            }
        };
        let tuple = FourTuple {
            local: SocketAddrV4::new(dst, seg.dst_port),
            remote: SocketAddrV4::new(src, seg.src_port),
        };
        if let Some(&id) = self.by_tuple.get(&tuple) {
            if let Some(entry) = self.conns.get_mut(&id) {
                entry.conn.handle_segment(now, &seg);
                self.ack_due |= entry.conn.ack_due();
                drain_events(&mut self.events, &mut self.listeners, id, entry);
                return;
            }
        }
        let port = tuple.local.port();
        if seg.control == Control::Syn && seg.ack.is_none() && self.listeners.contains_key(&port) {
            self.accept_syn(now, tuple, &seg);
            return;
        }
        if self.accept_cookie(now, tuple, &seg) {
            return;
        }
        self.stats.tcp_no_connection += 1;
        self.queue_rst(tuple, &seg);
    }

    /// Passive open: a SYN for a listener becomes a connection in SYN-RECEIVED, unless the
    /// listener's backlog or the stack is full (then the SYN is dropped and will be retried).
    fn accept_syn(&mut self, now: Instant, tuple: FourTuple, syn: &TcpRepr) {
        let port = tuple.local.port();
        let pending = self
            .conns
            .values()
            .filter(|e| e.listener == Some(port))
            .count();
        let full = pending >= self.config.backlog;
        if self.conns.len() >= self.config.max_connections || full {
            let room = self.pending_cookies.len() < COOKIE_QUEUE_LIMIT;
            if !(full && self.config.syn_cookies && room) {
                self.stats.syns_dropped += 1;
                return;
            }
            let timestamps = self.config.tcp.timestamps && syn.options.timestamps.is_some();
            let elapsed = now.saturating_duration_since(self.epoch);
            let (iss, bits) = self.cookies.make(
                elapsed,
                tuple.local,
                tuple.remote,
                syn.seq,
                cookie::cookie_options(syn),
                timestamps,
            );
            let clock = elapsed.as_millis() as u32;
            self.pending_cookies.push_back(PendingCookie {
                tuple,
                syn_seq: syn.seq,
                options: syn.options,
                iss,
                tsval: syncookie::tsval_with_bits(clock.wrapping_add(self.rng.gen()), bits),
            });
            if let Some(listener) = self.listeners.get_mut(&port) {
                listener.cookie_sent = Some(now);
            }
            return;
        }
        let initial = self.initial(now, tuple);
        let conn = Connection::accept(now, self.config.tcp.clone(), tuple, syn, initial);
        self.insert(tuple, conn, Some(port));
    }

    /// An ACK for a listener's port and no connection may return a cookie we sent: if it
    /// checks out, the connection it stands for is made and handed the ACK. True if taken.
    fn accept_cookie(&mut self, now: Instant, tuple: FourTuple, seg: &TcpRepr) -> bool {
        let port = tuple.local.port();
        let recent = self
            .listeners
            .get(&port)
            .and_then(|l| l.cookie_sent)
            .is_some_and(|at| now.saturating_duration_since(at) < COOKIE_LIFETIME);
        let (true, Some(ack), Control::None | Control::Psh | Control::Fin) =
            (recent, seg.ack, seg.control)
        else {
            return false;
        };
        if self.conns.len() >= self.config.max_connections {
            return false;
        }
        let elapsed = now.saturating_duration_since(self.epoch);
        let echo = seg.options.timestamps.map(|ts| ts.echo);
        let Some(options) = self.cookies.check(
            elapsed,
            tuple.local,
            tuple.remote,
            seg.seq - 1,
            ack - 1,
            echo,
        ) else {
            return false;
        };
        let conn = Connection::accept_cookie(now, self.config.tcp.clone(), tuple, seg, options);
        let id = self.insert(tuple, conn, Some(port));
        self.stats.syn_cookies_accepted += 1;
        if let Some(entry) = self.conns.get_mut(&id) {
            entry.conn.handle_segment(now, seg);
            self.ack_due |= entry.conn.ack_due();
            drain_events(&mut self.events, &mut self.listeners, id, entry);
        }
        true
    }

    /// RFC 9293 §3.10.7.1: a segment for no connection gets a reset, unless it is one.
    fn queue_rst(&mut self, tuple: FourTuple, seg: &TcpRepr) {
        if seg.control == Control::Rst {
            return;
        }
        if self.rsts.len() >= RST_QUEUE_LIMIT {
            self.stats.rsts_suppressed += 1;
            return;
        }
        let (seq, ack) = match seg.ack {
            Some(ack) => (ack, None),
            None => (SeqNum(0), Some(seg.seq + seg.segment_len())),
        };
        self.rsts.push_back(PendingRst {
            to: tuple.remote,
            from_port: tuple.local.port(),
            seq,
            ack,
        });
    }

    fn handle_icmp_error(&mut self, err: ipv4::IcmpError) {
        self.stats.icmp_errors += 1;
        let tuple = FourTuple {
            local: SocketAddrV4::new(self.config.local_addr, err.local_port),
            remote: SocketAddrV4::new(err.remote_addr, err.remote_port),
        };
        let Some(&id) = self.by_tuple.get(&tuple) else {
            self.stats.icmp_errors_ignored += 1;
            return;
        };
        let Some(entry) = self.conns.get_mut(&id) else {
            return;
        };
        match err.kind {
            ipv4::IcmpErrorKind::FragmentationNeeded { next_hop_mtu } => {
                // RFC 1191: an MTU of 0 comes from old routers; never go below 576.
                let mtu = if next_hop_mtu == 0 {
                    576
                } else {
                    next_hop_mtu.max(576)
                };
                entry.conn.handle_path_mtu(SeqNum(err.seq), mtu);
            }
            kind => entry.conn.handle_icmp_error(SeqNum(err.seq), kind),
        }
        drain_events(&mut self.events, &mut self.listeners, id, entry);
    }

    fn handle_timeout(&mut self, now: Instant) {
        for index in 0..self.order.len() {
            let id = self.order[index];
            if let Some(entry) = self.conns.get_mut(&id) {
                if entry.conn.poll_timeout().is_some_and(|at| at <= now) {
                    entry.conn.handle_timeout(now);
                    drain_events(&mut self.events, &mut self.listeners, id, entry);
                }
            }
        }
        self.reap();
    }

    /// The next TCP segment from any connection (or a queued reset), round-robin so one bulk
    /// sender cannot starve the others. Returns its destination and length.
    fn poll_segment(&mut self, now: Instant, buf: &mut [u8]) -> Option<(Ipv4Addr, usize)> {
        if let Some(rst) = self.rsts.pop_front() {
            let repr = TcpRepr {
                src_port: rst.from_port,
                dst_port: rst.to.port(),
                control: Control::Rst,
                seq: rst.seq,
                ack: rst.ack,
                window: 0,
                options: TcpOptions::default(),
                payload: &[],
            };
            self.stats.rsts_sent += 1;
            return Some((
                *rst.to.ip(),
                repr.emit(self.config.local_addr, *rst.to.ip(), buf),
            ));
        }
        if let Some(p) = self.pending_cookies.pop_front() {
            let syn = TcpRepr {
                src_port: p.tuple.remote.port(),
                dst_port: p.tuple.local.port(),
                control: Control::Syn,
                seq: p.syn_seq,
                ack: None,
                window: 0,
                options: p.options,
                payload: &[],
            };
            let len =
                cookie::write_cookie_syn_ack(&self.config.tcp, p.tuple, &syn, p.iss, p.tsval, buf);
            self.stats.syn_cookies_sent += 1;
            return Some((*p.tuple.remote.ip(), len));
        }
        let count = self.order.len();
        for step in 0..count {
            let index = (self.cursor + step) % count;
            let id = self.order[index];
            let Some(entry) = self.conns.get_mut(&id) else {
                continue;
            };
            let sent = entry.conn.poll_transmit(now, buf);
            drain_events(&mut self.events, &mut self.listeners, id, entry);
            if let Some(len) = sent {
                self.cursor = (index + 1) % count;
                return Some((*entry.tuple.remote.ip(), len));
            }
        }
        self.reap();
        None
    }

    /// Forgets connections that are closed and that the application released (or never
    /// accepted).
    fn reap(&mut self) {
        let before = self.conns.len();
        let mut gone = Vec::new();
        self.conns.retain(|id, e| {
            let dead = e.conn.is_closed() && (e.released || e.listener.is_some());
            if dead {
                gone.push((*id, e.tuple, e.listener));
            }
            !dead
        });
        if self.conns.len() == before {
            return;
        }
        for (id, tuple, listener) in gone {
            self.by_tuple.remove(&tuple);
            if let Some(l) = listener.and_then(|port| self.listeners.get_mut(&port)) {
                l.ready.retain(|r| *r != id);
            }
        }
        self.order.retain(|id| self.conns.contains_key(id));
        self.cursor = 0;
    }
}

fn drain_events(
    events: &mut VecDeque<Event>,
    listeners: &mut HashMap<u16, Listener>,
    id: ConnId,
    entry: &mut Entry,
) {
    while let Some(event) = entry.conn.poll_event() {
        let event = match event {
            ConnEvent::Connected => match entry.listener {
                Some(port) => {
                    if let Some(l) = listeners.get_mut(&port) {
                        l.ready.push_back(id);
                    }
                    Event::Incoming { port }
                }
                None => Event::Connected(id),
            },
            ConnEvent::Readable => Event::Readable(id),
            ConnEvent::Writable => Event::Writable(id),
            ConnEvent::PeerFinished => Event::PeerFinished(id),
            ConnEvent::Closed => Event::Closed(id),
            ConnEvent::Failed(err) => Event::Failed(id, err),
        };
        events.push_back(event);
    }
}

/// The 4-tuple of a segment whose checksum failed, read without trusting anything else.
fn tuple_of_raw(src: Ipv4Addr, dst: Ipv4Addr, segment: &[u8]) -> Option<FourTuple> {
    let ports = segment.get(..4)?;
    Some(FourTuple {
        local: SocketAddrV4::new(dst, u16::from_be_bytes([ports[2], ports[3]])),
        remote: SocketAddrV4::new(src, u16::from_be_bytes([ports[0], ports[1]])),
    })
}
