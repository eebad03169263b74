//! Everything TCP in the stack: connections keyed by id and 4-tuple, listeners, pending
//! resets and cookie SYN-ACKs, events; and the [`Schedule`] that keeps the hot paths
//! proportional to the connections doing something.
//!
//! Every call that hands a connection something (a segment, an ICMP error, an application
//! call, a timer) ends in [`Sockets::after`], which drains its events, puts it in the ready set
//! when it may want to send, records its new deadline in the timer heap and notes it for reaping
//! once it is closed and nobody holds it. `Connection` has no other way to start wanting to send
//! or to move its deadline: it reads no clock, so anything that depends on time alone is a
//! timer.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::Rng;

use super::schedule::{Schedule, Slot};
use super::{ConnId, Deferred, Event, StackConfig, StackError, StackStats};
use crate::ipv4;
use crate::tcp::connection::cookie;
use crate::tcp::isn::IsnGenerator;
use crate::tcp::syncookie::{self, SynCookies};
use crate::tcp::{ConnError, ConnEvent, Connection, FourTuple, Initial};
use crate::trace::TraceRecord;
use crate::wire::tcp::TcpParseError;
use crate::wire::{ChecksumStatus, Control, SeqNum, TcpOptions, TcpRepr};

pub(super) struct Entry {
    pub(super) conn: Connection,
    tuple: FourTuple,
    /// The listener port it came from, until accepted.
    listener: Option<u16>,
    /// The application let go of it (closed, aborted or never accepted and listener gone).
    pub(super) released: bool,
    /// Its place in the schedule.
    slot: Slot,
}

impl Entry {
    /// Nothing more will happen and nobody will ask: the stack forgets it.
    fn is_dead(&self) -> bool {
        self.conn.is_closed() && (self.released || self.listener.is_some())
    }
}

#[derive(Default)]
pub(super) struct Listener {
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

/// Everything TCP: connections, listeners, pending resets, events.
pub(super) struct Sockets {
    pub(super) config: StackConfig,
    epoch: Instant,
    isn: IsnGenerator,
    rng: SmallRng,
    next_id: u64,
    /// Ordered by id: transmission round-robin goes in this order.
    pub(super) conns: BTreeMap<ConnId, Entry>,
    pub(super) by_tuple: HashMap<FourTuple, ConnId>,
    listeners: HashMap<u16, Listener>,
    /// Connections per listener port not yet accepted (those with `listener` set), so a SYN
    /// checks the backlog without counting.
    backlog_used: HashMap<u16, usize>,
    schedule: Schedule,
    /// Connections handed out by `connection_mut`: their deadline is read again on the next
    /// call, and `next_deadline` asks them directly until then.
    unsynced: Vec<ConnId>,
    rsts: VecDeque<PendingRst>,
    pending_cookies: VecDeque<PendingCookie>,
    cookies: SynCookies,
    pub(super) events: VecDeque<Event>,
    pub(super) stats: StackStats,
    /// A connection wants an ACK out before the receive batch ends.
    ack_due: bool,
    /// `--trace` records drained from the connections, when `TcpConfig::trace` is on.
    pub(super) trace: Option<VecDeque<TraceRecord>>,
}

impl Sockets {
    pub(super) fn new(now: Instant, config: StackConfig, rng: SmallRng) -> Self {
        Sockets {
            isn: IsnGenerator::new(config.secret),
            epoch: now,
            rng,
            next_id: 1,
            conns: BTreeMap::new(),
            by_tuple: HashMap::new(),
            listeners: HashMap::new(),
            backlog_used: HashMap::new(),
            schedule: Schedule::default(),
            unsynced: Vec::new(),
            rsts: VecDeque::new(),
            cookies: SynCookies::new(config.secret),
            pending_cookies: VecDeque::new(),
            events: VecDeque::new(),
            stats: StackStats::default(),
            ack_due: false,
            trace: config.tcp.trace.then(VecDeque::new),
            config,
        }
    }

    fn entry(&mut self, id: ConnId) -> Result<&mut Entry, StackError> {
        self.conns
            .get_mut(&id)
            .ok_or(StackError::UnknownConnection(id))
    }

    /// Bookkeeping after anything was done to connection `id`: its events go to the
    /// application, it joins the ready set if `wake`, its deadline is recorded, and it is noted
    /// for reaping once it is closed and nobody holds it.
    fn after(&mut self, id: ConnId, wake: bool) {
        let Some(entry) = self.conns.get_mut(&id) else {
            return;
        };
        drain_events(&mut self.events, &mut self.listeners, id, entry);
        if let Some(trace) = &mut self.trace {
            drain_trace(trace, id, &mut entry.conn);
        }
        let schedule = &mut self.schedule;
        if wake {
            schedule.wake(id, &mut entry.slot);
        }
        schedule.set_deadline(id, &mut entry.slot, entry.conn.poll_timeout());
        if entry.is_dead() {
            schedule.doom(id, &mut entry.slot);
        }
        self.settle_timers();
    }

    /// Keeps the heap's top current (so `next_deadline` can peek) and its size bounded.
    fn settle_timers(&mut self) {
        let conns = &self.conns;
        if self.schedule.needs_rebuild(conns.len()) {
            let live = conns
                .iter()
                .filter_map(|(id, e)| e.slot.deadline().map(|at| (*id, at)));
            self.schedule.rebuild(live);
        }
        self.schedule
            .clean(|id| conns.get(&id).and_then(|e| e.slot.deadline()));
    }

    /// Re-reads the deadlines of connections handed out by `connection_mut`.
    fn sync(&mut self) {
        for id in std::mem::take(&mut self.unsynced) {
            self.after(id, false);
        }
    }

    /// Mutable access to a connection: it is treated as woken, and its deadline is re-read on
    /// the next call that needs it.
    pub(super) fn connection_mut(&mut self, id: ConnId) -> Option<&mut Connection> {
        let entry = self.conns.get_mut(&id)?;
        self.schedule.wake(id, &mut entry.slot);
        if !self.unsynced.contains(&id) {
            self.unsynced.push(id);
        }
        Some(&mut entry.conn)
    }

    /// The earliest deadline of any connection.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let unsynced = self
            .unsynced
            .iter()
            .filter_map(|id| self.conns.get(id)?.conn.poll_timeout());
        unsynced.chain(self.schedule.next_deadline()).min()
    }

    /// Runs an application call on connection `id` and wakes it.
    pub(super) fn with_conn<T>(
        &mut self,
        id: ConnId,
        call: impl FnOnce(&mut Connection) -> T,
    ) -> Result<T, StackError> {
        let out = call(&mut self.entry(id)?.conn);
        self.after(id, true);
        Ok(out)
    }

    pub(super) fn connect(
        &mut self,
        now: Instant,
        remote: SocketAddrV4,
    ) -> Result<ConnId, StackError> {
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
                slot: Slot::default(),
            },
        );
        self.by_tuple.insert(tuple, id);
        if let Some(port) = listener {
            *self.backlog_used.entry(port).or_default() += 1;
        }
        self.after(id, true);
        id
    }

    pub(super) fn listen(&mut self, port: u16) -> Result<(), StackError> {
        if self.listeners.contains_key(&port) {
            return Err(StackError::PortInUse(port));
        }
        self.listeners.insert(port, Listener::default());
        Ok(())
    }

    pub(super) fn unlisten(&mut self, port: u16) {
        if self.listeners.remove(&port).is_none() {
            return;
        }
        let pending: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, e)| e.listener == Some(port))
            .map(|(id, _)| *id)
            .collect();
        for id in pending {
            let _ = self.release(id, Connection::abort);
        }
    }

    pub(super) fn accept(&mut self, port: u16) -> Option<ConnId> {
        let id = self.listeners.get_mut(&port)?.ready.pop_front()?;
        if let Some(entry) = self.conns.get_mut(&id) {
            if let Some(port) = entry.listener.take() {
                self.unclaim_backlog(port);
            }
        }
        Some(id)
    }

    fn unclaim_backlog(&mut self, port: u16) {
        if let Some(used) = self.backlog_used.get_mut(&port) {
            *used -= 1;
            if *used == 0 {
                self.backlog_used.remove(&port);
            }
        }
    }

    pub(super) fn release(
        &mut self,
        id: ConnId,
        how: impl FnOnce(&mut Connection),
    ) -> Result<(), StackError> {
        let entry = self.entry(id)?;
        how(&mut entry.conn);
        entry.released = true;
        self.after(id, true);
        Ok(())
    }

    pub(super) fn handle_segment(
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
        let port = tuple.local.port();
        if let Some(&id) = self.by_tuple.get(&tuple) {
            if let Some(entry) = self.conns.get_mut(&id) {
                if self.listeners.contains_key(&port) && entry.conn.time_wait_accepts_syn(&seg) {
                    // The old incarnation ends here; the SYN opens the new one below.
                    self.stats.time_wait_reopened += 1;
                    entry.conn.end_time_wait();
                    self.by_tuple.remove(&tuple);
                    self.after(id, false);
                    self.accept_syn(now, tuple, &seg);
                    return;
                }
                entry.conn.handle_segment(now, &seg);
                self.ack_due |= entry.conn.ack_due();
                self.after(id, true);
                return;
            }
        }
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
        let pending = self.backlog_used.get(&port).copied().unwrap_or(0);
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
            self.after(id, true);
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

    /// True (once) when the segments handled since the last call left something that should
    /// be sent before more are read: an immediate ACK, a reset, or many cookie SYN-ACKs.
    pub(super) fn take_transmit_due(&mut self) -> bool {
        let due = self.ack_due
            || !self.rsts.is_empty()
            || self.pending_cookies.len() >= COOKIE_QUEUE_LIMIT / 2;
        self.ack_due = false;
        due
    }

    pub(super) fn handle_icmp_error(&mut self, err: ipv4::IcmpError) {
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
        self.after(id, true);
    }

    /// Fails every open connection to one of `remotes` with `error` (the link layer could
    /// not reach their next hop), reporting `Failed` to the application.
    pub(super) fn fail_remotes(&mut self, remotes: &[Ipv4Addr], error: &ConnError) {
        let ids: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, e)| remotes.contains(e.tuple.remote.ip()))
            .filter(|(_, e)| e.conn.state() != crate::tcp::State::Closed)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(entry) = self.conns.get_mut(&id) {
                entry.conn.fail(error.clone());
            }
            self.after(id, true);
        }
    }

    /// Fires the timers that are due, in connection order: only the connections whose
    /// deadline passed are visited.
    pub(super) fn handle_timeout(&mut self, now: Instant) {
        self.sync();
        let conns = &self.conns;
        let due = self
            .schedule
            .due(now, |id| conns.get(&id).and_then(|e| e.slot.deadline()));
        for id in due {
            let Some(entry) = self.conns.get_mut(&id) else {
                continue;
            };
            self.schedule.fired(&mut entry.slot);
            let fire = entry.conn.poll_timeout().is_some_and(|at| at <= now);
            if fire {
                entry.conn.handle_timeout(now);
                self.stats.timer_expirations += 1;
            }
            self.after(id, fire);
        }
        self.reap();
    }

    /// The next TCP segment from any connection (or a queued reset), round-robin so one bulk
    /// sender cannot starve the others. Returns its destination and length. Only connections
    /// in the ready set are asked. A super-segment comes with the payload size of the wire
    /// segments it stands for (`Connection::segment_size`).
    ///
    /// With `defer`, a super-segment's payload is left in its connection's send buffer
    /// (`Connection::poll_transmit_deferred`): the last value says where.
    pub(super) fn poll_segment(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        defer: bool,
    ) -> Option<(Ipv4Addr, usize, Option<u16>, Option<Deferred>)> {
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
                None,
                None,
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
            return Some((*p.tuple.remote.ip(), len, None, None));
        }
        self.sync();
        while let Some(id) = self.schedule.next_ready() {
            let Some(entry) = self.conns.get_mut(&id) else {
                // Not reachable: reaping takes connections out of the ready set.
                let mut gone = Slot::default();
                self.schedule.idle(id, &mut gone);
                continue;
            };
            let (sent, deferred) = if defer {
                match entry.conn.poll_transmit_deferred(now, buf) {
                    Some((len, payload)) => (Some(len), payload),
                    None => (None, None),
                }
            } else {
                (entry.conn.poll_transmit(now, buf), None)
            };
            let deferred = deferred.map(|(offset, len)| Deferred { id, offset, len });
            let segment_size = entry.conn.segment_size();
            self.stats.transmit_polls += 1;
            let remote = *entry.tuple.remote.ip();
            self.after(id, false);
            match sent {
                Some(len) => {
                    let last = self.conns.last_key_value().map(|(k, _)| *k) == Some(id);
                    self.schedule.sent(id, last);
                    return Some((remote, len, segment_size, deferred));
                }
                None => {
                    if let Some(entry) = self.conns.get_mut(&id) {
                        self.schedule.idle(id, &mut entry.slot);
                    }
                }
            }
        }
        self.reap();
        None
    }

    /// Forgets connections that are closed and that the application released (or never
    /// accepted). Only those seen closed since the last time are looked at.
    fn reap(&mut self) {
        let mut removed = false;
        for id in self.schedule.take_doomed() {
            let Some(entry) = self.conns.get_mut(&id) else {
                continue;
            };
            self.schedule.undoom(&mut entry.slot);
            if !entry.is_dead() {
                continue;
            }
            let Some(entry) = self.conns.remove(&id) else {
                continue;
            };
            removed = true;
            self.schedule.forget(id, &entry.slot);
            // A TIME-WAIT connection reopened by a new SYN gave its tuple to the new one.
            if self.by_tuple.get(&entry.tuple) == Some(&id) {
                self.by_tuple.remove(&entry.tuple);
            }
            if let Some(port) = entry.listener {
                self.unclaim_backlog(port);
                if let Some(l) = self.listeners.get_mut(&port) {
                    l.ready.retain(|r| *r != id);
                }
            }
        }
        if removed {
            self.schedule.rewind();
        }
        self.settle_timers();
    }

    /// Checks the schedule against a full scan, for tests: every deadline is recorded and the
    /// heap's top is the earliest, every connection that is dead is on the doomed list, and
    /// (after a flush) no connection outside the ready set has anything to send or moves its
    /// deadline when asked. Returns what is wrong.
    #[cfg(any(test, feature = "testing"))]
    pub(super) fn audit(&mut self, now: Instant) -> Result<(), String> {
        self.sync();
        let mut buf = vec![0u8; usize::from(self.config.tcp.mss) + 120];
        for (id, entry) in self.conns.iter_mut() {
            let deadline = entry.conn.poll_timeout();
            if entry.slot.deadline() != deadline {
                return Err(format!(
                    "{id}: recorded deadline {:?}, connection's {deadline:?}",
                    entry.slot.deadline()
                ));
            }
            if entry.is_dead() && !self.schedule.is_doomed(&entry.slot) {
                return Err(format!("{id} is dead but not on the doomed list"));
            }
            if !entry.slot.is_queued() {
                if let Some(len) = entry.conn.poll_transmit(now, &mut buf) {
                    return Err(format!("{id} is not ready but sent {len} bytes"));
                }
                if entry.conn.poll_timeout() != deadline {
                    return Err(format!("{id} is not ready but polling moved its deadline"));
                }
            }
        }
        let earliest = self.conns.values().filter_map(|e| e.slot.deadline()).min();
        if self.schedule.next_deadline() != earliest {
            return Err(format!(
                "heap top {:?}, earliest deadline {earliest:?}",
                self.schedule.next_deadline()
            ));
        }
        if self.schedule.needs_rebuild(self.conns.len()) {
            return Err(format!("{} heap entries", self.schedule.heap_len()));
        }
        Ok(())
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

/// Moves connection `id`'s trace events to the stack's queue.
pub(super) fn drain_trace(trace: &mut VecDeque<TraceRecord>, id: ConnId, conn: &mut Connection) {
    conn.drain_trace(|at, event| {
        trace.push_back(TraceRecord {
            at,
            conn: Some(id.0),
            event,
        })
    });
}

/// The 4-tuple of a segment whose checksum failed, read without trusting anything else.
fn tuple_of_raw(src: Ipv4Addr, dst: Ipv4Addr, segment: &[u8]) -> Option<FourTuple> {
    let ports = segment.get(..4)?;
    Some(FourTuple {
        local: SocketAddrV4::new(dst, u16::from_be_bytes([ports[2], ports[3]])),
        remote: SocketAddrV4::new(src, u16::from_be_bytes([ports[0], ports[1]])),
    })
}
