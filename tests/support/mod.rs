//! A deterministic network simulator for whole-stack tests.
//!
//! Two [`Stack`]s talk over a pair of simulated links under a virtual clock: time only moves
//! when the driver jumps it to the next event (a datagram arriving or a stack deadline), so a
//! run of minutes of virtual time takes milliseconds and is reproducible bit for bit from its
//! seed. Nothing here sleeps or reads the real clock for protocol time.
//!
//! * [`Clock`]: a base `Instant` taken once plus a virtual offset.
//! * [`Link`]: one direction of a path with latency, a bandwidth bottleneck with a bounded
//!   drop-tail queue, an MTU check and seeded impairments (loss, duplication, reordering, bit
//!   corruption).
//! * [`Pair`]: a client and a server stack joined by two links, and the driver loop.
//! * [`Endpoint`]: the application on either side (bulk sender or verifying receiver).
//! * [`Pattern`]: the deterministic byte stream, so misordered or corrupted data is caught at
//!   the exact offset without keeping a copy of the transfer.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tunstack::stack::{ConnId, Event, Stack, StackConfig, StackError};
use tunstack::tcp::{ConnStats, IoError, State, TcpConfig};

/// The client's address.
pub const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// The server's address.
pub const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 2);
/// The port the server listens on.
pub const SERVER_PORT: u16 = 80;
/// The MTU of both stacks and of the links.
pub const MTU: usize = 1500;

// ------------------------------------------------------------------------------- clock

/// Virtual time: a fixed base `Instant` and an offset that only the driver moves.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Instant,
    offset: Duration,
}

impl Clock {
    /// A clock at virtual time zero. The base is the only real clock reading ever taken.
    pub fn new() -> Self {
        Clock {
            base: Instant::now(),
            offset: Duration::ZERO,
        }
    }

    /// The current virtual instant.
    pub fn now(&self) -> Instant {
        self.base + self.offset
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.offset
    }

    /// Virtual time of `at` since the start.
    pub fn since_start(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.base)
    }

    /// Jumps forward to `at`; never moves backwards.
    pub fn advance_to(&mut self, at: Instant) {
        let offset = at.saturating_duration_since(self.base);
        if offset > self.offset {
            self.offset = offset;
        }
    }
}

// ------------------------------------------------------------------------------- link

/// How one direction of the path behaves. Probabilities are in `[0, 1]`.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// One-way propagation delay.
    pub latency: Duration,
    /// Bottleneck rate in bits per second; 0 means infinitely fast.
    pub bandwidth_bps: u64,
    /// Bytes the bottleneck queue holds (waiting or being serialized); a datagram that would
    /// overflow it is dropped (drop tail).
    pub queue_bytes: usize,
    /// Largest datagram the link carries; a bigger one is a stack bug and panics.
    pub mtu: usize,
    /// Chance a datagram is lost on the wire (after the bottleneck).
    pub loss: f64,
    /// Chance a datagram arrives twice.
    pub duplicate: f64,
    /// Chance a datagram is held back by about `reorder_delay`, letting later ones overtake it.
    pub reorder: f64,
    /// Mean extra delay of a reordered datagram (uniform in 0.5x..1.5x).
    pub reorder_delay: Duration,
    /// Chance one random bit of the datagram is flipped.
    pub corrupt: f64,
}

impl LinkConfig {
    /// A clean link with this rate and one-way delay, and a queue of `queue_bytes`.
    pub fn clean(bandwidth_bps: u64, latency: Duration, queue_bytes: usize) -> Self {
        LinkConfig {
            latency,
            bandwidth_bps,
            queue_bytes,
            mtu: MTU,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(2),
            corrupt: 0.0,
        }
    }
}

/// What a link did to the traffic offered to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Datagrams handed to the link.
    pub offered: u64,
    /// Datagrams handed to the receiving stack (duplicates included).
    pub delivered: u64,
    /// Dropped at random on the wire.
    pub lost: u64,
    /// Dropped because the bottleneck queue was full.
    pub queue_drops: u64,
    /// Extra copies delivered.
    pub duplicated: u64,
    /// Datagrams held back to be overtaken.
    pub reordered: u64,
    /// Datagrams delivered with a flipped bit (counted on delivery).
    pub corrupted: u64,
}

impl LinkStats {
    fn add(&mut self, other: &LinkStats) {
        self.offered += other.offered;
        self.delivered += other.delivered;
        self.lost += other.lost;
        self.queue_drops += other.queue_drops;
        self.duplicated += other.duplicated;
        self.reordered += other.reordered;
        self.corrupted += other.corrupted;
    }
}

/// A datagram on its way, ordered by arrival time and then by the order it was sent in.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    arrival: Instant,
    order: u64,
    bytes: Vec<u8>,
    corrupted: bool,
}

/// One direction of the simulated path.
pub struct Link {
    config: LinkConfig,
    rng: SmallRng,
    /// When the bottleneck finishes serializing what it already holds.
    busy_until: Option<Instant>,
    in_flight: BinaryHeap<Reverse<InFlight>>,
    next_order: u64,
    stats: LinkStats,
    /// Traffic copies, when capturing for pcap files.
    capture: Option<Capture>,
}

/// Copies of the traffic for pcap files: what the stack sent (lost datagrams included, before
/// any impairment) and what the far stack was handed (duplicates and corruption included).
#[derive(Default)]
struct Capture {
    sent: Vec<(Instant, Vec<u8>)>,
    delivered: Vec<(Instant, Vec<u8>)>,
}

impl Link {
    /// A link whose impairments are drawn from `seed`.
    pub fn new(config: LinkConfig, seed: u64) -> Self {
        Link {
            config,
            rng: SmallRng::seed_from_u64(seed),
            busy_until: None,
            in_flight: BinaryHeap::new(),
            next_order: 0,
            stats: LinkStats::default(),
            capture: None,
        }
    }

    /// Keeps a copy of every datagram sent and delivered, for [`write_pcaps`].
    pub fn start_capture(&mut self) {
        self.capture = Some(Capture::default());
    }

    /// What the link has done so far.
    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    /// Takes a datagram sent at `now`.
    pub fn send(&mut self, now: Instant, datagram: &[u8]) {
        assert!(
            datagram.len() <= self.config.mtu,
            "stack sent a {}-byte datagram over a {}-byte MTU link",
            datagram.len(),
            self.config.mtu
        );
        self.stats.offered += 1;
        if let Some(capture) = &mut self.capture {
            capture.sent.push((now, datagram.to_vec()));
        }
        let departure = match self.serialize(now, datagram.len()) {
            Some(at) => at,
            None => {
                self.stats.queue_drops += 1;
                return;
            }
        };
        if self.chance(self.config.loss) {
            self.stats.lost += 1;
            return;
        }
        let mut arrival = departure + self.config.latency;
        if self.chance(self.config.reorder) {
            self.stats.reordered += 1;
            let factor = self.rng.gen_range(0.5..1.5);
            arrival += self.config.reorder_delay.mul_f64(factor);
        }
        let first = self.maybe_corrupted(datagram);
        self.push(arrival, first);
        if self.chance(self.config.duplicate) {
            self.stats.duplicated += 1;
            // The copy trails the original by up to a millisecond.
            let lag = Duration::from_micros(self.rng.gen_range(0..1000));
            let copy = self.maybe_corrupted(datagram);
            self.push(arrival + lag, copy);
        }
    }

    /// The bottleneck: when a datagram of `len` bytes offered at `now` finishes serializing,
    /// or `None` when the queue has no room for it.
    fn serialize(&mut self, now: Instant, len: usize) -> Option<Instant> {
        let bps = self.config.bandwidth_bps;
        if bps == 0 {
            return Some(now);
        }
        let start = self.busy_until.map_or(now, |busy| busy.max(now));
        let backlog_secs = start.saturating_duration_since(now).as_secs_f64();
        let backlog_bytes = (backlog_secs * bps as f64 / 8.0).round() as usize;
        if backlog_bytes + len > self.config.queue_bytes {
            return None;
        }
        let tx_time = Duration::from_nanos((len as u64 * 8 * 1_000_000_000).div_ceil(bps));
        let done = start + tx_time;
        self.busy_until = Some(done);
        Some(done)
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.gen_bool(p.min(1.0))
    }

    fn maybe_corrupted(&mut self, datagram: &[u8]) -> (Vec<u8>, bool) {
        let mut bytes = datagram.to_vec();
        let corrupted = !bytes.is_empty() && self.chance(self.config.corrupt);
        if corrupted {
            let bit = self.rng.gen_range(0..bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
        }
        (bytes, corrupted)
    }

    fn push(&mut self, arrival: Instant, (bytes, corrupted): (Vec<u8>, bool)) {
        self.next_order += 1;
        self.in_flight.push(Reverse(InFlight {
            arrival,
            order: self.next_order,
            bytes,
            corrupted,
        }));
    }

    /// When the next datagram arrives.
    pub fn next_arrival(&self) -> Option<Instant> {
        self.in_flight.peek().map(|Reverse(d)| d.arrival)
    }

    /// The next datagram due at `now`, if any.
    pub fn pop_due(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.next_arrival()? > now {
            return None;
        }
        let Reverse(datagram) = self.in_flight.pop()?;
        self.stats.delivered += 1;
        self.stats.corrupted += u64::from(datagram.corrupted);
        if let Some(capture) = &mut self.capture {
            capture
                .delivered
                .push((datagram.arrival, datagram.bytes.clone()));
        }
        Some(datagram.bytes)
    }
}

/// Writes both links' captures, merged by time, as two pcap files of raw IPv4 (LINKTYPE_RAW):
/// `<base>-sent.pcap` (what the stacks sent, at send time) and `<base>-delivered.pcap` (what
/// they were handed, at arrival time). Returns the two paths.
pub fn write_pcaps(
    base: &Path,
    clock: &Clock,
    links: [&Link; 2],
) -> std::io::Result<[std::path::PathBuf; 2]> {
    let captures: Vec<&Capture> = links.iter().filter_map(|l| l.capture.as_ref()).collect();
    let sent: Vec<_> = captures.iter().flat_map(|c| &c.sent).collect();
    let delivered: Vec<_> = captures.iter().flat_map(|c| &c.delivered).collect();
    let name = |suffix: &str| {
        let mut name = base.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name)
    };
    let paths = [name("-sent.pcap"), name("-delivered.pcap")];
    write_pcap(&paths[0], clock, sent)?;
    write_pcap(&paths[1], clock, delivered)?;
    Ok(paths)
}

fn write_pcap(
    path: &Path,
    clock: &Clock,
    mut records: Vec<&(Instant, Vec<u8>)>,
) -> std::io::Result<()> {
    records.sort_by_key(|(at, _)| *at);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    // Global header: magic, version 2.4, UTC offset, accuracy, snap length, LINKTYPE_RAW.
    out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    out.write_all(&2u16.to_le_bytes())?;
    out.write_all(&4u16.to_le_bytes())?;
    out.write_all(&0i32.to_le_bytes())?;
    out.write_all(&0u32.to_le_bytes())?;
    out.write_all(&65535u32.to_le_bytes())?;
    out.write_all(&101u32.to_le_bytes())?;
    for (at, bytes) in records {
        let t = clock.since_start(*at);
        out.write_all(&(t.as_secs() as u32).to_le_bytes())?;
        out.write_all(&t.subsec_micros().to_le_bytes())?;
        out.write_all(&(bytes.len() as u32).to_le_bytes())?;
        out.write_all(&(bytes.len() as u32).to_le_bytes())?;
        out.write_all(bytes)?;
    }
    out.flush()
}

// ------------------------------------------------------------------------------- data

/// A deterministic pseudo-random byte stream: byte `i` depends only on the seed and `i`.
#[derive(Debug, Clone, Copy)]
pub struct Pattern {
    seed: u64,
}

impl Pattern {
    /// The stream for `seed`.
    pub fn new(seed: u64) -> Self {
        Pattern { seed }
    }

    fn word(&self, index: u64) -> [u8; 8] {
        // splitmix64 of (seed, word index)
        let mut z = self
            .seed
            .wrapping_add(index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)).to_le_bytes()
    }

    /// Fills `out` with the stream's bytes from `offset`.
    pub fn fill(&self, offset: u64, out: &mut [u8]) {
        let mut done = 0;
        while done < out.len() {
            let at = offset + done as u64;
            let skip = (at % 8) as usize;
            let n = (8 - skip).min(out.len() - done);
            out[done..done + n].copy_from_slice(&self.word(at / 8)[skip..skip + n]);
            done += n;
        }
    }

    /// Checks `data` against the stream from `offset`; the offset of the first wrong byte.
    pub fn check(&self, offset: u64, data: &[u8]) -> Result<(), u64> {
        let mut done = 0;
        while done < data.len() {
            let at = offset + done as u64;
            let skip = (at % 8) as usize;
            let n = (8 - skip).min(data.len() - done);
            let expected = self.word(at / 8);
            // Whole words compare as integers; this runs over every byte of every test.
            let matches = if n == 8 {
                let got: [u8; 8] = data[done..done + 8].try_into().unwrap_or_default();
                u64::from_ne_bytes(got) == u64::from_ne_bytes(expected)
            } else {
                data[done..done + n] == expected[skip..skip + n]
            };
            if !matches {
                let wrong = (0..n)
                    .find(|&i| data[done + i] != expected[skip + i])
                    .unwrap_or(0);
                return Err(at + wrong as u64);
            }
            done += n;
        }
        Ok(())
    }
}

// ------------------------------------------------------------------------------- apps

/// Which end of the connection an endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Connects to the server.
    Client,
    /// Listens on [`SERVER_PORT`] and accepts one connection.
    Server,
}

/// What an endpoint does with the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sends `total` pattern bytes, then closes.
    Sender,
    /// Reads and verifies `total` pattern bytes, expects end of stream, then closes.
    Receiver,
}

/// An application on one stack: a bulk sender or a verifying receiver, over one connection.
pub struct Endpoint {
    side: Side,
    role: Role,
    total: u64,
    pattern: Pattern,
    conn: Option<ConnId>,
    /// Bytes sent (sender) or received and verified (receiver).
    pos: u64,
    chunk: Vec<u8>,
    /// Stream offset of `chunk[0]`, and how many bytes of it are valid.
    chunk_at: u64,
    chunk_len: usize,
    close_called: bool,
    /// When the receiver saw end of stream after every byte.
    pub eof_at: Option<Instant>,
    /// When the `Closed` event arrived.
    pub closed_at: Option<Instant>,
    /// The connection's counters, as last seen before the stack forgot it (so without the
    /// very last segment it handled).
    pub stats: Option<ConnStats>,
    /// The connection's state, as last seen.
    pub state: Option<State>,
}

const CHUNK: usize = 64 << 10;

impl Endpoint {
    /// An endpoint moving `total` bytes of `pattern`.
    pub fn new(side: Side, role: Role, total: u64, pattern: Pattern) -> Self {
        Endpoint {
            side,
            role,
            total,
            pattern,
            conn: None,
            pos: 0,
            chunk: vec![0; CHUNK],
            chunk_at: 0,
            chunk_len: 0,
            close_called: false,
            eof_at: None,
            closed_at: None,
            stats: None,
            state: None,
        }
    }

    /// True once the connection closed cleanly after doing its job.
    pub fn is_done(&self) -> bool {
        self.closed_at.is_some() && self.close_called
    }

    /// Bytes sent or verified so far.
    pub fn progress(&self) -> u64 {
        self.pos
    }

    /// Lets the application act at `now`: react to events, open, send, read, close. Returns
    /// whether anything happened (so the driver flushes and asks again), or a failure.
    pub fn poll(&mut self, stack: &mut Stack, now: Instant) -> Result<bool, String> {
        let mut progress = false;
        if self.side == Side::Client && self.conn.is_none() {
            let remote = SocketAddrV4::new(SERVER_ADDR, SERVER_PORT);
            self.conn = Some(stack.connect(now, remote).map_err(|e| e.to_string())?);
            progress = true;
        }
        while let Some(event) = stack.poll_event() {
            progress = true;
            self.on_event(stack, now, event)?;
        }
        if let Some(id) = self.conn {
            if self.closed_at.is_none() {
                progress |= match self.role {
                    Role::Sender => self.pump_send(stack, id)?,
                    Role::Receiver => self.pump_recv(stack, id, now)?,
                };
            }
            if let Some(conn) = stack.connection(id) {
                self.stats = Some(conn.stats());
                self.state = Some(conn.state());
            }
        }
        Ok(progress)
    }

    fn on_event(&mut self, stack: &mut Stack, now: Instant, event: Event) -> Result<(), String> {
        match event {
            Event::Incoming { port } => {
                let id = stack
                    .accept(port)
                    .ok_or("Incoming event but nothing to accept")?;
                if self.conn.replace(id).is_some() {
                    return Err(format!("a second connection {id} was accepted"));
                }
            }
            Event::Closed(id) if Some(id) == self.conn => {
                if !self.close_called {
                    return Err(format!(
                        "{:?} {id} closed before the application did",
                        self.side
                    ));
                }
                self.closed_at = Some(now);
                // The stack may forget the connection before the next poll looks at it.
                self.state = Some(State::Closed);
            }
            Event::Failed(id, err) => {
                return Err(format!(
                    "{:?} connection {id} failed: {err} (moved {} of {} bytes)",
                    self.side, self.pos, self.total
                ));
            }
            Event::Connected(_)
            | Event::Readable(_)
            | Event::Writable(_)
            | Event::PeerFinished(_)
            | Event::Closed(_) => {}
        }
        Ok(())
    }

    fn pump_send(&mut self, stack: &mut Stack, id: ConnId) -> Result<bool, String> {
        let mut progress = false;
        while self.pos < self.total {
            if self.pos >= self.chunk_at + self.chunk_len as u64 {
                let len = (self.total - self.pos).min(CHUNK as u64) as usize;
                self.pattern.fill(self.pos, &mut self.chunk[..len]);
                self.chunk_at = self.pos;
                self.chunk_len = len;
            }
            let from = (self.pos - self.chunk_at) as usize;
            match stack.send(id, &self.chunk[from..self.chunk_len]) {
                Ok(0) | Err(StackError::Io(IoError::WouldBlock)) => break,
                Ok(n) => {
                    self.pos += n as u64;
                    progress = true;
                }
                Err(err) => return Err(format!("send failed at byte {}: {err}", self.pos)),
            }
        }
        if self.pos == self.total && !self.close_called {
            stack.close(id).map_err(|e| e.to_string())?;
            self.close_called = true;
            progress = true;
        }
        Ok(progress)
    }

    fn pump_recv(&mut self, stack: &mut Stack, id: ConnId, now: Instant) -> Result<bool, String> {
        let mut progress = false;
        loop {
            let pattern = self.pattern;
            let start = self.pos;
            let mut bad = None;
            let read = stack.recv_with(id, |a, b| {
                let checked = pattern
                    .check(start, a)
                    .and_then(|()| pattern.check(start + a.len() as u64, b));
                bad = checked.err();
                a.len() + b.len()
            });
            match read {
                Ok(0) => {
                    if self.pos != self.total {
                        return Err(format!(
                            "end of stream after {} of {} bytes",
                            self.pos, self.total
                        ));
                    }
                    if !self.close_called {
                        self.eof_at = Some(now);
                        stack.close(id).map_err(|e| e.to_string())?;
                        self.close_called = true;
                        progress = true;
                    }
                    return Ok(progress);
                }
                Ok(n) => {
                    if let Some(offset) = bad {
                        return Err(format!("wrong byte at stream offset {offset}"));
                    }
                    self.pos += n as u64;
                    if self.pos > self.total {
                        return Err(format!(
                            "received {} bytes, expected {}",
                            self.pos, self.total
                        ));
                    }
                    progress = true;
                }
                Err(StackError::Io(IoError::WouldBlock)) => return Ok(progress),
                Err(err) => return Err(format!("recv failed at byte {}: {err}", self.pos)),
            }
        }
    }
}

// ------------------------------------------------------------------------------- driver

/// Bounds on one run, so a bug cannot hang the test.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most virtual time the run may take.
    pub virtual_time: Duration,
    /// Most driver steps (clock jumps) the run may take.
    pub steps: u64,
}

/// A client stack and a server stack joined by two links, under one virtual clock.
pub struct Pair {
    /// The virtual clock.
    pub clock: Clock,
    /// The stack at [`CLIENT_ADDR`].
    pub client: Stack,
    /// The stack at [`SERVER_ADDR`].
    pub server: Stack,
    /// Client to server.
    pub up: Link,
    /// Server to client.
    pub down: Link,
    /// Driver steps taken.
    pub steps: u64,
    buf: Vec<u8>,
}

/// What a failed run reports: where it stood when it went wrong.
#[derive(Debug)]
pub struct RunError {
    /// What went wrong.
    pub reason: String,
    /// Virtual time of the failure.
    pub at: Duration,
    /// Driver steps taken.
    pub steps: u64,
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (at virtual {:?}, step {})",
            self.reason, self.at, self.steps
        )
    }
}

impl Pair {
    /// Two stacks seeded from `seed` (ports, ISNs, impairments), with `tcp` on both, the server
    /// listening on [`SERVER_PORT`].
    pub fn new(seed: u64, up: LinkConfig, down: LinkConfig, tcp: &TcpConfig) -> Self {
        let clock = Clock::new();
        let make = |addr: Ipv4Addr, salt: u64| {
            let mut secret = [0u8; 16];
            Pattern::new(seed ^ salt).fill(0, &mut secret);
            let mut config = StackConfig::new(addr, MTU, secret, seed.wrapping_mul(31) ^ salt);
            config.tcp = TcpConfig {
                mss: config.tcp.mss,
                ..tcp.clone()
            };
            Stack::new(clock.now(), config)
        };
        let client = make(CLIENT_ADDR, 0xc1);
        let mut server = make(SERVER_ADDR, 0x5e);
        server.listen(SERVER_PORT).expect("fresh stack listens");
        Pair {
            clock,
            client,
            server,
            up: Link::new(up, seed ^ 0x00a1_1ce0),
            down: Link::new(down, seed ^ 0x0000_b0b0),
            steps: 0,
            buf: vec![0; 65535],
        }
    }

    /// Runs until both endpoints are done, or fails within `limits`.
    pub fn run(
        &mut self,
        client_app: &mut Endpoint,
        server_app: &mut Endpoint,
        limits: Limits,
    ) -> Result<(), RunError> {
        loop {
            self.steps += 1;
            let now = self.clock.now();
            if self.clock.elapsed() > limits.virtual_time {
                return Err(self.error(format!(
                    "virtual time limit {:?} exceeded (client moved {} bytes, server {})",
                    limits.virtual_time,
                    client_app.progress(),
                    server_app.progress()
                )));
            }
            if self.steps > limits.steps {
                return Err(self.error(format!(
                    "step limit {} exceeded (client moved {} bytes, server {})",
                    limits.steps,
                    client_app.progress(),
                    server_app.progress()
                )));
            }
            // Like the event loop: everything due is one batch, and an ACK the stack wants out
            // before more is read (a loss signal) goes at once; other ACKs wait for the end.
            while let Some(datagram) = self.up.pop_due(now) {
                self.server.handle_datagram(now, &datagram);
                if self.server.take_transmit_due() {
                    self.flush_server(now);
                }
            }
            while let Some(datagram) = self.down.pop_due(now) {
                self.client.handle_datagram(now, &datagram);
                if self.client.take_transmit_due() {
                    self.flush_client(now);
                }
            }
            for stack in [&mut self.client, &mut self.server] {
                if stack.poll_timeout().is_some_and(|at| at <= now) {
                    stack.handle_timeout(now);
                }
            }
            // The applications act, and whatever they caused goes out, until they are idle.
            let mut rounds = 0;
            loop {
                let client_busy = client_app
                    .poll(&mut self.client, now)
                    .map_err(|e| self.error(format!("client: {e}")))?;
                let server_busy = server_app
                    .poll(&mut self.server, now)
                    .map_err(|e| self.error(format!("server: {e}")))?;
                self.flush(now);
                if !(client_busy || server_busy) {
                    break;
                }
                rounds += 1;
                if rounds > 1000 {
                    return Err(self.error("applications never settle".to_string()));
                }
            }
            if client_app.is_done() && server_app.is_done() {
                return Ok(());
            }
            let next = [
                self.up.next_arrival(),
                self.down.next_arrival(),
                self.client.poll_timeout(),
                self.server.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(at) => self.clock.advance_to(at),
                None => {
                    return Err(self.error(format!(
                        "stalled: nothing in flight and no timer armed (client moved {} bytes \
                         in state {:?}, server {} in state {:?})",
                        client_app.progress(),
                        client_app.state,
                        server_app.progress(),
                        server_app.state
                    )))
                }
            }
        }
    }

    fn flush(&mut self, now: Instant) {
        self.flush_client(now);
        self.flush_server(now);
    }

    fn flush_client(&mut self, now: Instant) {
        while let Some(len) = self.client.poll_transmit(now, &mut self.buf) {
            self.up.send(now, &self.buf[..len]);
        }
    }

    fn flush_server(&mut self, now: Instant) {
        while let Some(len) = self.server.poll_transmit(now, &mut self.buf) {
            self.down.send(now, &self.buf[..len]);
        }
    }

    fn error(&self, reason: String) -> RunError {
        RunError {
            reason,
            at: self.clock.elapsed(),
            steps: self.steps,
        }
    }

    /// Both links' counters added up.
    pub fn link_stats(&self) -> LinkStats {
        let mut total = self.up.stats().clone();
        total.add(self.down.stats());
        total
    }
}
