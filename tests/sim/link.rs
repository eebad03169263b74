//! One direction of the simulated path, and the device a stack sees at its end of two links.
//!
//! A datagram first meets the bottleneck (bandwidth and a bounded drop-tail queue, which
//! `--impair rate=` does not model: its queue is a fixed 8 MiB), then the production
//! [`Impairer`] for what happens on the wire: random loss, duplication, reordering, bit
//! corruption, and the propagation delay.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tunstack::device::fault::{ImpairSpec, Impairer};
use tunstack::device::pcap::PcapWriter;
use tunstack::device::{assemble, send_pieces, Device, Received};
use tunstack::trace::{Dir, ImpairRecord};

use super::{Clock, MTU};

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
    /// Chance a datagram (or a copy) is held back by about `reorder_delay`, letting later ones
    /// overtake it.
    pub reorder: f64,
    /// Mean extra delay of a reordered datagram (uniform in 0.5x..1.5x).
    pub reorder_delay: Duration,
    /// Chance one random bit of a datagram (or a copy) is flipped.
    pub corrupt: f64,
    /// The sending stack's device refuses every this-many-th write with `WouldBlock`, as a
    /// full TUN queue does, and takes it when asked again; 0: never.
    pub refuse_every: u64,
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
            refuse_every: 0,
        }
    }

    /// What the production impairer does after the bottleneck.
    fn wire(&self) -> ImpairSpec {
        ImpairSpec {
            loss: self.loss,
            duplicate: self.duplicate,
            reorder: self.reorder,
            corrupt: self.corrupt,
            delay: self.latency,
            jitter: Duration::ZERO,
            rate_bps: None,
            reorder_delay: Some(self.reorder_delay),
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
    /// Dropped because the bottleneck queue (or the impairer's own 8 MiB hold) was full.
    pub queue_drops: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Datagrams (or copies) held back to be overtaken.
    pub reordered: u64,
    /// Datagrams delivered with a flipped bit (counted on delivery: what the far stack must
    /// catch).
    pub corrupted: u64,
    /// Super-segments the sending stack wrote as headers plus a payload left in its send
    /// buffer (`Device::send_gathered`).
    pub gathered: u64,
    /// Writes refused with `WouldBlock` (`LinkConfig::refuse_every`).
    pub refused: u64,
}

impl LinkStats {
    /// Adds `other`'s counters to these.
    pub fn add(&mut self, other: &LinkStats) {
        self.offered += other.offered;
        self.delivered += other.delivered;
        self.lost += other.lost;
        self.queue_drops += other.queue_drops;
        self.duplicated += other.duplicated;
        self.reordered += other.reordered;
        self.corrupted += other.corrupted;
        self.gathered += other.gathered;
        self.refused += other.refused;
    }
}

/// One direction of the simulated path.
pub struct Link {
    config: LinkConfig,
    wire: Impairer,
    /// When the bottleneck finishes serializing what it already holds.
    busy_until: Option<Instant>,
    offered: u64,
    queue_drops: u64,
    delivered: u64,
    corrupted: u64,
    /// Traffic copies, when capturing for pcap files.
    capture: Option<Capture>,
    /// Datagram writes asked of the sending device, refused ones included.
    writes: u64,
    gathered: u64,
    refused: u64,
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
            wire: Impairer::new(config.wire(), seed),
            config,
            busy_until: None,
            offered: 0,
            queue_drops: 0,
            delivered: 0,
            corrupted: 0,
            capture: None,
            writes: 0,
            gathered: 0,
            refused: 0,
        }
    }

    /// Keeps a copy of every datagram sent and delivered, for [`write_pcaps`].
    pub fn start_capture(&mut self) {
        self.capture = Some(Capture::default());
    }

    /// What the link has done so far.
    pub fn stats(&self) -> LinkStats {
        let wire = self.wire.stats();
        LinkStats {
            offered: self.offered,
            delivered: self.delivered,
            lost: wire.dropped,
            queue_drops: self.queue_drops + wire.overflowed,
            duplicated: wire.duplicated,
            reordered: wire.reordered,
            corrupted: self.corrupted,
            gathered: self.gathered,
            refused: self.refused,
        }
    }

    /// Whether the device refuses this write (`LinkConfig::refuse_every`); counts writes.
    fn refuses(&mut self) -> bool {
        self.writes += 1;
        let refuse = self.config.refuse_every > 0 && self.writes % self.config.refuse_every == 0;
        self.refused += u64::from(refuse);
        refuse
    }

    /// Takes a datagram sent at `now`.
    pub fn send(&mut self, now: Instant, datagram: &[u8]) {
        assert!(
            datagram.len() <= self.config.mtu,
            "stack sent a {}-byte datagram over a {}-byte MTU link",
            datagram.len(),
            self.config.mtu
        );
        self.offered += 1;
        if let Some(capture) = &mut self.capture {
            capture.sent.push((now, datagram.to_vec()));
        }
        match self.serialize(now, datagram.len()) {
            Some(departure) => self.wire.offer(departure, datagram),
            None => self.queue_drops += 1,
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

    /// `--trace`: the impairer records what it does to each datagram from now on.
    pub fn trace_impairments(&mut self) {
        self.wire.record_trace();
    }

    /// Hands over what the impairer did since the last call, as seen by a stack for which
    /// this link goes `dir`.
    pub fn drain_impairments(&mut self, dir: Dir, take: &mut dyn FnMut(ImpairRecord)) {
        self.wire.drain_trace(dir, take);
    }

    /// When the next datagram arrives.
    pub fn next_arrival(&self) -> Option<Instant> {
        self.wire.next_due()
    }

    /// The next datagram due at `now`, if any.
    pub fn pop_due(&mut self, now: Instant) -> Option<Vec<u8>> {
        let arrival = self.next_arrival()?;
        let (bytes, corrupted) = self.wire.pop_due_marked(now)?;
        self.delivered += 1;
        self.corrupted += u64::from(corrupted);
        if let Some(capture) = &mut self.capture {
            capture.delivered.push((arrival, bytes.clone()));
        }
        Some(bytes)
    }
}

/// A stack's end of the path: it sends into `out` and reads what `into` delivers. Borrowed
/// for one call of the driver, since each link is shared by the two ends.
pub struct Port<'a> {
    /// The link away from this stack.
    pub out: &'a mut Link,
    /// The link towards this stack.
    pub into: &'a mut Link,
}

impl Device for Port<'_> {
    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Received> {
        let datagram = self.into.pop_due(now).ok_or(io::ErrorKind::WouldBlock)?;
        buf[..datagram.len()].copy_from_slice(&datagram);
        // Corruption must be caught by the stack's own check, as on a wire.
        Ok(Received::unverified(datagram.len()))
    }

    fn send(&mut self, now: Instant, datagram: &[u8]) -> io::Result<()> {
        self.out.send(now, datagram);
        Ok(())
    }

    /// A refused write refuses the whole datagram, as a TUN does; a super-segment is cut
    /// into wire segments as `Device`'s default does.
    fn send_segmented(
        &mut self,
        now: Instant,
        datagram: &[u8],
        segment_size: Option<u16>,
    ) -> io::Result<()> {
        if self.out.refuses() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        match segment_size {
            Some(size) => send_pieces(datagram, size, |piece| self.send(now, piece)),
            None => self.send(now, datagram),
        }
    }

    /// Like a TUN with offloads, the simulator takes payloads straight from the send
    /// buffers, so it drives the same path as the event loop does.
    fn gathers(&self) -> bool {
        true
    }

    fn send_gathered(
        &mut self,
        now: Instant,
        headers: &[u8],
        payload: (&[u8], &[u8]),
        segment_size: Option<u16>,
    ) -> io::Result<()> {
        let sent = self.send_segmented(now, &assemble(headers, payload), segment_size);
        if sent.is_ok() {
            self.out.gathered += 1;
        }
        sent
    }

    /// The next arrival: there is no descriptor, so this is how the driver learns that a
    /// datagram is due, exactly as it learns it from `--impair`'s fault injector.
    fn poll_timeout(&self) -> Option<Instant> {
        self.into.next_arrival()
    }

    /// The production trace hook, as `--impair`'s fault injector has it: both links' wire
    /// impairments (the bottleneck's queue drops are the path's, not injected).
    fn trace_impairments(&mut self) {
        self.out.trace_impairments();
        self.into.trace_impairments();
    }

    fn drain_impairments(&mut self, take: &mut dyn FnMut(ImpairRecord)) {
        self.into.drain_impairments(Dir::In, take);
        self.out.drain_impairments(Dir::Out, take);
    }
}

/// Writes both links' captures, merged by time, as two pcap files of raw IPv4 (LINKTYPE_RAW)
/// through the production writer, stamped with virtual time: `<base>-sent.pcap` (what the
/// stacks sent, at send time) and `<base>-delivered.pcap` (what they were handed, at arrival
/// time). Returns the two paths.
pub fn write_pcaps(base: &Path, clock: &Clock, links: [&Link; 2]) -> io::Result<[PathBuf; 2]> {
    let captures: Vec<&Capture> = links.iter().filter_map(|l| l.capture.as_ref()).collect();
    let sent: Vec<_> = captures.iter().flat_map(|c| &c.sent).collect();
    let delivered: Vec<_> = captures.iter().flat_map(|c| &c.delivered).collect();
    let name = |suffix: &str| {
        let mut name = base.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let paths = [name("-sent.pcap"), name("-delivered.pcap")];
    write_pcap(&paths[0], clock, sent)?;
    write_pcap(&paths[1], clock, delivered)?;
    Ok(paths)
}

fn write_pcap(path: &Path, clock: &Clock, mut records: Vec<&(Instant, Vec<u8>)>) -> io::Result<()> {
    records.sort_by_key(|(at, _)| *at);
    let mut out = PcapWriter::create(path)?;
    for (at, bytes) in records {
        out.record(clock.since_start(*at), bytes)?;
    }
    out.flush()
}
