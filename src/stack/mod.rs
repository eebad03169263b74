//! The stack: one IPv4 address, its TCP connections keyed by 4-tuple, listeners, ephemeral
//! ports and ISNs. Sans-IO like its parts: datagrams and `now` in, datagrams and deadlines out.
//!
//! Drive it the same way as a [`Connection`]: after `handle_datagram`, `handle_timeout` (once
//! `poll_timeout` has passed) or any application call, flush `poll_transmit` until `None`, then
//! drain `poll_event`.
//!
//! The work per datagram, per flush and per `poll_timeout` grows with the connections that are
//! doing something, not with all the stack holds: the sockets (src/stack/sockets.rs) keep a
//! ready set, a timer heap and a list of closed connections (src/stack/schedule.rs) instead of
//! scanning every connection, so a server with 10,000 idle connections serves its one download
//! as fast as with none.

mod schedule;
mod sockets;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use thiserror::Error;

use crate::ipv4::{self, Ingress, Ipv4Config, Ipv4Layer, Ipv4Stats};
use crate::tcp::{ConnError, Connection, FourTuple, IoError, TcpConfig};
use crate::trace::event::Impairment;
use crate::trace::{Dir, ImpairRecord, SegFlags, TraceEvent, TraceRecord};
use crate::wire::tcp as tcp_wire;
use crate::wire::ChecksumStatus;
use sockets::Sockets;

/// Identifies a connection for the application; never reused within one stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

/// A datagram [`Stack::poll_transmit_deferred`] wrote: its length (payload included) and the
/// wire segments' payload size if it is a super-segment, as `poll_transmit_segmented` gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Bytes of the whole datagram, headers and payload.
    pub len: usize,
    /// Payload bytes per wire segment of a super-segment.
    pub segment_size: Option<u16>,
    /// The payload left out of the buffer, if it was.
    pub payload: Option<Deferred>,
}

/// A super-segment's payload left in its connection's send buffer: the datagram's last `len`
/// bytes are [`Stack::deferred_payload`]'s, to be written after the headers without a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deferred {
    id: ConnId,
    offset: usize,
    /// Payload bytes left out (the datagram's headers are its first `len - this`).
    pub len: usize,
}

impl Deferred {
    /// The connection whose send buffer holds the payload.
    pub fn conn(&self) -> ConnId {
        self.id
    }
}

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
    /// TIME-WAIT connections ended early by a newer SYN for their 4-tuple (RFC 6191).
    pub time_wait_reopened: u64,
    /// Times a connection was asked for a segment (`Connection::poll_transmit`): the work of
    /// finding what to send. It grows with the segments sent and the connections something
    /// happened to, not with idle connections; tests count it to prove that.
    pub transmit_polls: u64,
    /// Times a connection's expired timers were fired: like `transmit_polls`, only the
    /// connections whose deadline passed are visited.
    pub timer_expirations: u64,
}

/// The whole sans-IO stack: the IP layer and the TCP sockets, kept apart so a segment borrowed
/// from the IP layer's reassembly buffer can be handed straight to TCP.
pub struct Stack {
    ip: Ipv4Layer,
    sockets: Sockets,
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
        let sockets = Sockets::new(now, config, rng);
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

    /// Mutable access, for tests and tuning (e.g. swapping the congestion controller). The
    /// connection is asked for segments on the next `poll_transmit` and its deadline is read
    /// again, whatever the caller did to it.
    pub fn connection_mut(&mut self, id: ConnId) -> Option<&mut Connection> {
        self.sockets.connection_mut(id)
    }

    /// Connections the application closed that still have a FIN (or data) to get across:
    /// what is worth a short wait before exiting, so servers see an orderly close.
    pub fn closing_connections(&self) -> usize {
        use crate::tcp::State;
        let closing = |e: &&sockets::Entry| {
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
        self.sockets.listen(port)
    }

    /// Stops accepting on `port`: later SYNs are answered with a reset, and connections not
    /// yet accepted (handshaking or waiting in the backlog) are aborted. A server shutting
    /// down calls this first, so nobody connects only to be cut off.
    pub fn unlisten(&mut self, port: u16) {
        self.sockets.unlisten(port);
    }

    /// The next established connection waiting on `port`.
    pub fn accept(&mut self, port: u16) -> Option<ConnId> {
        self.sockets.accept(port)
    }

    /// Queues bytes; returns how many fit.
    pub fn send(&mut self, id: ConnId, data: &[u8]) -> Result<usize, StackError> {
        Ok(self.sockets.with_conn(id, |c| c.send(data))??)
    }

    /// Queues up to `max` bytes that `fill` writes straight into the connection's send buffer
    /// (see [`Connection::send_with`]); returns how many it wrote.
    pub fn send_with(
        &mut self,
        id: ConnId,
        max: usize,
        fill: impl FnOnce(&mut [u8], &mut [u8]) -> usize,
    ) -> Result<usize, StackError> {
        Ok(self.sockets.with_conn(id, |c| c.send_with(max, fill))??)
    }

    /// Queues bytes shared rather than copied (see [`Connection::send_shared`]); returns how
    /// many fit. Only for a driver whose device gathers ([`Stack::poll_transmit_deferred`]):
    /// nothing else may carry them.
    pub fn send_shared(&mut self, id: ConnId, data: bytes::Bytes) -> Result<usize, StackError> {
        Ok(self.sockets.with_conn(id, |c| c.send_shared(data))??)
    }

    /// Reads bytes; `Ok(0)` is end of stream.
    pub fn recv(&mut self, id: ConnId, out: &mut [u8]) -> Result<usize, StackError> {
        Ok(self.sockets.with_conn(id, |c| c.recv(out))??)
    }

    /// Reads without copying: `consume` gets the readable bytes and returns how many it took.
    pub fn recv_with(
        &mut self,
        id: ConnId,
        consume: impl FnOnce(&[u8], &[u8]) -> usize,
    ) -> Result<usize, StackError> {
        Ok(self.sockets.with_conn(id, |c| c.recv_with(consume))??)
    }

    /// Graceful close; the stack forgets the connection once it is fully closed.
    pub fn close(&mut self, id: ConnId) -> Result<(), StackError> {
        self.sockets.release(id, Connection::close)
    }

    /// Abortive close (RST).
    pub fn abort(&mut self, id: ConnId) -> Result<(), StackError> {
        self.sockets.release(id, Connection::abort)
    }

    /// Resets connection `id` for a failure below the application, which still holds it: the
    /// device could not read the shared bytes it was to send (`Stack::send_shared`, a file cut
    /// short under its mapping). The application gets `Failed` and releases it as usual.
    pub fn reset(&mut self, id: ConnId) -> Result<(), StackError> {
        self.sockets.with_conn(id, Connection::abort)
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

    /// Fails the open connections to `remotes` with `error`: the link layer gave up on their
    /// next hop (TAP mode, no ARP reply), so they learn it now instead of timing out.
    pub fn fail_remotes(&mut self, remotes: &[Ipv4Addr], error: ConnError) {
        self.sockets.fail_remotes(remotes, &error);
    }

    /// True (once) when the datagrams handled since the last call left something that should
    /// be sent before more are read: an immediate ACK or a reset.
    pub fn take_transmit_due(&mut self) -> bool {
        self.sockets.take_transmit_due()
    }

    /// Fires expired timers everywhere; only connections whose deadline passed are visited.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.ip.handle_timeout(now);
        self.sockets.handle_timeout(now);
    }

    /// The earliest deadline of any timer in the stack: the top of a timer heap, so calling
    /// it every loop turn costs nothing however many connections are open.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let conns = self.sockets.next_deadline();
        conns.into_iter().chain(self.ip.poll_timeout()).min()
    }

    /// Writes the next datagram to send into `buf` (at least MTU bytes) and returns its length.
    /// Only connections something happened to since they last had nothing to send are asked.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        self.poll_transmit_segmented(now, buf).map(|(len, _)| len)
    }

    /// Like [`Stack::poll_transmit`], with the TCP payload size of the wire segments when the
    /// datagram is a super-segment (`TcpConfig::max_burst_segments`): a device with TCP
    /// segmentation offload, or `device::gso::split_tcp`, cuts it into those. `buf` bounds
    /// the datagram (up to 64 KiB).
    pub fn poll_transmit_segmented(
        &mut self,
        now: Instant,
        buf: &mut [u8],
    ) -> Option<(usize, Option<u16>)> {
        if let Some(len) = self.ip.poll_transmit(buf) {
            return Some((len, None));
        }
        let (dst, len, segment_size, _) =
            self.sockets
                .poll_segment(now, &mut buf[ipv4::HEADER_LEN..], false)?;
        let header = self
            .ip
            .write_header(buf, dst, tcp_wire::PROTOCOL, len)
            .ok()?;
        Some((header + len, segment_size))
    }

    /// Like [`Stack::poll_transmit_segmented`], except that a super-segment's payload is not
    /// copied into `buf`: `buf` holds its headers, and [`Stack::deferred_payload`] gives the
    /// payload from the connection's send buffer, for a device that writes both in one
    /// gathering call (`Device::send_gathered`). Anything else is written whole, as before.
    pub fn poll_transmit_deferred(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if let Some(len) = self.ip.poll_transmit(buf) {
            return Some(Transmit {
                len,
                segment_size: None,
                payload: None,
            });
        }
        let (dst, len, segment_size, payload) =
            self.sockets
                .poll_segment(now, &mut buf[ipv4::HEADER_LEN..], true)?;
        let header = self
            .ip
            .write_header(buf, dst, tcp_wire::PROTOCOL, len)
            .ok()?;
        Some(Transmit {
            len: header + len,
            segment_size,
            payload,
        })
    }

    /// The payload [`Stack::poll_transmit_deferred`] left out, as one or two slices; valid
    /// until the stack is next driven (input, timers or another poll).
    pub fn deferred_payload(&self, deferred: &Deferred) -> (&[u8], &[u8]) {
        match self.sockets.conns.get(&deferred.id) {
            Some(entry) => entry.conn.send_data(deferred.offset, deferred.len),
            None => (&[], &[]),
        }
    }

    /// The payload [`Stack::poll_transmit_deferred`] left out, when it is shared bytes (see
    /// [`Stack::send_shared`]): a reference a device that must wait to write can keep, as
    /// the send buffer may move on before.
    pub fn deferred_shared(&self, deferred: &Deferred) -> Option<bytes::Bytes> {
        let entry = self.sockets.conns.get(&deferred.id)?;
        entry.conn.shared_data(deferred.offset, deferred.len)
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.sockets.events.pop_front()
    }

    /// The next `--trace` record (`TcpConfig::trace`), in the order the connections made
    /// their decisions; always `None` when tracing is off.
    pub fn poll_trace(&mut self) -> Option<TraceRecord> {
        self.sockets.trace.as_mut()?.pop_front()
    }

    /// Turns what `--impair` did to a datagram into its trace record: the connection with the
    /// datagram's 4-tuple, if the stack has one, and its TCP numbers relative to it (absolute
    /// otherwise), so an injected drop lines up with the `seg` it hit.
    pub fn trace_impairment(&self, record: &ImpairRecord) -> TraceRecord {
        let mut event = Impairment {
            dir: record.dir,
            action: record.action,
            delay_ms: record.delay.map(|d| d.as_micros() as f64 / 1000.0),
            seq: None,
            ack: None,
            len: None,
            flags: None,
            win: None,
        };
        let mut conn = None;
        if let Some(tcp) = &record.tcp {
            let outbound = record.dir == Dir::Out;
            let (local, remote) = if outbound {
                (tcp.src, tcp.dst)
            } else {
                (tcp.dst, tcp.src)
            };
            let syn = tcp.flags.has(SegFlags::SYN);
            let id = self.sockets.by_tuple.get(&FourTuple { local, remote });
            let (seq, ack, win) = match id.and_then(|id| Some((id, self.connection(*id)?))) {
                Some((id, c)) => {
                    conn = Some(id.0);
                    c.trace_relative(outbound, tcp.seq, tcp.ack, tcp.window, syn)
                }
                None => (
                    u64::from(tcp.seq),
                    tcp.ack.map(u64::from),
                    u64::from(tcp.window),
                ),
            };
            event.seq = Some(seq);
            event.ack = ack;
            event.len = Some(tcp.len);
            event.flags = Some(tcp.flags);
            event.win = Some(win);
        }
        TraceRecord {
            at: record.at,
            conn,
            event: TraceEvent::Impair(event),
        }
    }

    /// The process is ending: a `close` record for every connection still open, with its
    /// counters as they stand, so a trace always ends with each connection's statistics.
    pub fn trace_finish(&mut self, now: Instant) {
        let Some(trace) = &mut self.sockets.trace else {
            return;
        };
        for (id, entry) in self.sockets.conns.iter_mut() {
            entry.conn.trace_finish(now);
            sockets::drain_trace(trace, *id, &mut entry.conn);
        }
    }

    /// For tests: checks the stack's schedule against a scan of every connection (deadlines
    /// recorded, heap top earliest, closed connections noted for reaping, and no connection
    /// outside the ready set with something to send). Call it after a flush, i.e. once
    /// `poll_transmit` returned `None`; it asks idle connections for segments, which a correct
    /// schedule makes a no-op. Returns what is wrong.
    #[cfg(any(test, feature = "testing"))]
    pub fn audit_schedule(&mut self, now: Instant) -> Result<(), String> {
        self.sockets.audit(now)
    }
}
