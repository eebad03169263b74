//! `--impair SPEC`: seeded loss, duplication, reordering, corruption, delay, jitter and a rate
//! limit between the TUN device and the stack, in each direction, so a bad network can be made
//! on a kernel without netem, and a failing run replays exactly with the same `--seed`.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::str::FromStr;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::gso::split_tcp;
use super::{complete_checksum, Device, Received};
use crate::trace::event::RawSegment;
use crate::trace::{Dir, ImpairAction, ImpairRecord};

/// What to do to datagrams in one direction, e.g.
/// `loss=5%,dup=1%,reorder=10%,corrupt=1%,delay=20ms,jitter=5ms,rate=50mbit`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImpairSpec {
    /// Probability a datagram is dropped.
    pub loss: f64,
    /// Probability a datagram is delivered twice.
    pub duplicate: f64,
    /// Probability a datagram is held back so later ones overtake it.
    pub reorder: f64,
    /// Probability one random bit of a datagram is flipped (checksums must catch it).
    pub corrupt: f64,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Uniform random extra delay in `[0, jitter]`.
    pub jitter: Duration,
    /// Bottleneck rate in bits per second, if limited.
    pub rate_bps: Option<u64>,
    /// Mean extra hold of a reordered datagram, drawn uniformly from 0.5x to 1.5x of it, for
    /// reordering finer than a whole path delay (the simulator in the tests sets it). `None`
    /// holds it `max(5 ms, delay + jitter)`, which is what `reorder=` on the command line does
    /// (there is no key for this field).
    pub reorder_delay: Option<Duration>,
}

/// A malformed `--impair` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid impairment '{item}': {reason} (example: loss=5%,dup=1%,reorder=10%,corrupt=1%,delay=20ms,jitter=5ms,rate=50mbit)")]
pub struct ImpairParseError {
    item: String,
    reason: String,
}

impl ImpairSpec {
    /// True when the spec changes nothing, so no wrapper is needed.
    pub fn is_noop(&self) -> bool {
        *self == ImpairSpec::default()
    }
}

impl FromStr for ImpairSpec {
    type Err = ImpairParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut spec = ImpairSpec::default();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let fail = |reason: &str| ImpairParseError {
                item: item.to_string(),
                reason: reason.to_string(),
            };
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| fail("expected key=value"))?;
            match key.trim() {
                "loss" => spec.loss = parse_percent(value).map_err(|r| fail(&r))?,
                "dup" | "duplicate" => {
                    spec.duplicate = parse_percent(value).map_err(|r| fail(&r))?
                }
                "reorder" => spec.reorder = parse_percent(value).map_err(|r| fail(&r))?,
                "corrupt" => spec.corrupt = parse_percent(value).map_err(|r| fail(&r))?,
                "delay" => {
                    spec.delay =
                        humantime::parse_duration(value).map_err(|e| fail(&e.to_string()))?
                }
                "jitter" => {
                    spec.jitter =
                        humantime::parse_duration(value).map_err(|e| fail(&e.to_string()))?
                }
                "rate" => spec.rate_bps = Some(parse_rate(value).map_err(|r| fail(&r))?),
                _ => {
                    return Err(fail(
                        "unknown key (loss, dup, reorder, corrupt, delay, jitter, rate)",
                    ))
                }
            }
        }
        Ok(spec)
    }
}

impl fmt::Display for ImpairSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "loss={}%,dup={}%,reorder={}%,corrupt={}%,delay={:?},jitter={:?}",
            self.loss * 100.0,
            self.duplicate * 100.0,
            self.reorder * 100.0,
            self.corrupt * 100.0,
            self.delay,
            self.jitter
        )?;
        if let Some(rate) = self.rate_bps {
            write!(f, ",rate={rate}bit")?;
        }
        Ok(())
    }
}

fn parse_percent(value: &str) -> Result<f64, String> {
    let number = value
        .trim()
        .strip_suffix('%')
        .ok_or("percentages end in %")?;
    let p: f64 = number.trim().parse().map_err(|_| "not a number")?;
    if !(0.0..=100.0).contains(&p) {
        return Err("must be between 0% and 100%".into());
    }
    Ok(p / 100.0)
}

fn parse_rate(value: &str) -> Result<u64, String> {
    let v = value.trim().to_ascii_lowercase();
    let units = [("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0)];
    for (unit, scale) in units {
        if let Some(number) = v.strip_suffix(unit) {
            let n: f64 = number.trim().parse().map_err(|_| "not a number")?;
            if n <= 0.0 {
                return Err("the rate must be positive".into());
            }
            return Ok((n * scale) as u64);
        }
    }
    Err("rates end in bit, kbit, mbit or gbit".into())
}

/// Counters of what an impairer did, for the summary and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultStats {
    pub seen: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub corrupted: u64,
    /// Dropped because the rate-limited queue was full.
    pub overflowed: u64,
}

struct Held {
    due: Instant,
    order: u64,
    bytes: Vec<u8>,
    /// A bit was flipped: the kernel may refuse it outright (e.g. a broken version nibble).
    corrupted: bool,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    /// Reversed, so the `BinaryHeap` pops the earliest (then first-offered) datagram.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.due, other.order).cmp(&(self.due, self.order))
    }
}

/// Most bytes held in one direction; beyond it datagrams are dropped like a full router queue.
const QUEUE_LIMIT_BYTES: usize = 8 << 20;
/// Extra hold for a reordered datagram when no delay is configured.
const REORDER_HOLD: Duration = Duration::from_millis(5);

/// The impairment engine of one direction: sans-IO, seeded, given `now` explicitly.
pub struct Impairer {
    spec: ImpairSpec,
    rng: SmallRng,
    held: BinaryHeap<Held>,
    held_bytes: usize,
    next_order: u64,
    /// When the rate-limited link is free again.
    link_free_at: Option<Instant>,
    stats: FaultStats,
    /// `--trace`: what was done to which datagram, until drained (`None`: not recording).
    trace: Option<Vec<Done>>,
}

/// One thing the impairer did, before a direction is known.
#[derive(Debug, Clone, Copy)]
struct Done {
    at: Instant,
    action: ImpairAction,
    delay: Option<Duration>,
    tcp: Option<RawSegment>,
}

impl Impairer {
    /// An engine applying `spec` with a deterministic random sequence from `seed`.
    pub fn new(spec: ImpairSpec, seed: u64) -> Self {
        Impairer {
            spec,
            rng: SmallRng::seed_from_u64(seed),
            held: BinaryHeap::new(),
            held_bytes: 0,
            next_order: 0,
            link_free_at: None,
            stats: FaultStats::default(),
            trace: None,
        }
    }

    /// Starts recording what is done to each datagram, for `--trace`
    /// ([`Impairer::drain_trace`]).
    pub fn record_trace(&mut self) {
        self.trace.get_or_insert_with(Vec::new);
    }

    /// Hands over what was recorded since the last call, as impairments in direction `dir`.
    pub fn drain_trace(&mut self, dir: Dir, take: &mut dyn FnMut(ImpairRecord)) {
        for done in self.trace.iter_mut().flat_map(|t| t.drain(..)) {
            take(ImpairRecord {
                at: done.at,
                dir,
                action: done.action,
                delay: done.delay,
                tcp: done.tcp,
            });
        }
    }

    fn note(
        &mut self,
        at: Instant,
        action: ImpairAction,
        delay: Option<Duration>,
        datagram: &[u8],
    ) {
        if let Some(trace) = &mut self.trace {
            trace.push(Done {
                at,
                action,
                delay,
                tcp: RawSegment::parse(datagram),
            });
        }
    }

    /// What it did so far.
    pub fn stats(&self) -> &FaultStats {
        &self.stats
    }

    /// Takes a datagram that entered the impaired path at `now`.
    pub fn offer(&mut self, now: Instant, datagram: &[u8]) {
        self.stats.seen += 1;
        if self.chance(self.spec.loss) {
            self.stats.dropped += 1;
            self.note(now, ImpairAction::Drop, None, datagram);
            return;
        }
        let copies = if self.chance(self.spec.duplicate) {
            self.stats.duplicated += 1;
            self.note(now, ImpairAction::Duplicate, None, datagram);
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut bytes = datagram.to_vec();
            let corrupted = !bytes.is_empty() && self.chance(self.spec.corrupt);
            if corrupted {
                let bit = self.rng.gen_range(0..bytes.len() * 8);
                bytes[bit / 8] ^= 1 << (bit % 8);
                self.stats.corrupted += 1;
                self.note(now, ImpairAction::Corrupt, None, datagram);
            }
            let Some((due, reordered)) = self.departure(now, bytes.len()) else {
                self.stats.overflowed += 1;
                self.note(now, ImpairAction::Drop, None, datagram);
                continue;
            };
            // A constant `delay=` is the path's latency, the same for every datagram: only a
            // hold beyond it (jitter, the rate limit's queue, reordering) is an event.
            let hold = due.saturating_duration_since(now);
            if reordered {
                self.note(now, ImpairAction::Reorder, Some(hold), datagram);
            } else if hold > self.spec.delay {
                self.note(now, ImpairAction::Delay, Some(hold), datagram);
            }
            self.held_bytes += bytes.len();
            self.held.push(Held {
                due,
                order: self.next_order,
                bytes,
                corrupted,
            });
            self.next_order += 1;
        }
    }

    /// When a datagram of `len` bytes offered at `now` leaves, and whether it was reordered.
    fn departure(&mut self, now: Instant, len: usize) -> Option<(Instant, bool)> {
        if self.held_bytes + len > QUEUE_LIMIT_BYTES {
            return None;
        }
        let mut at = now;
        if let Some(rate) = self.spec.rate_bps {
            let start = self.link_free_at.map_or(now, |free| free.max(now));
            let serialization = Duration::from_secs_f64(len as f64 * 8.0 / rate as f64);
            at = start + serialization;
            self.link_free_at = Some(at);
        }
        at += self.spec.delay;
        if !self.spec.jitter.is_zero() {
            at += self.spec.jitter.mul_f64(self.rng.gen::<f64>());
        }
        let reordered = self.chance(self.spec.reorder);
        if reordered {
            self.stats.reordered += 1;
            at += match self.spec.reorder_delay {
                Some(mean) => mean.mul_f64(self.rng.gen_range(0.5..1.5)),
                None => REORDER_HOLD.max(self.spec.delay + self.spec.jitter),
            };
        }
        Some((at, reordered))
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.gen::<f64>() < p
    }

    /// The next datagram whose time has come.
    pub fn pop_due(&mut self, now: Instant) -> Option<Vec<u8>> {
        self.pop_due_marked(now).map(|(bytes, _)| bytes)
    }

    /// Like `pop_due`, also saying whether the datagram was corrupted: the kernel may refuse
    /// it, and the simulator counts corruption on delivery (what the far stack must catch).
    pub fn pop_due_marked(&mut self, now: Instant) -> Option<(Vec<u8>, bool)> {
        if self.held.peek()?.due > now {
            return None;
        }
        let held = self.held.pop()?;
        self.held_bytes -= held.bytes.len();
        Some((held.bytes, held.corrupted))
    }

    /// When the next held datagram is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.held.peek().map(|h| h.due)
    }
}

/// Impairs what `inner` reads (inbound) and what we write to it (outbound).
pub struct Fault<D> {
    inner: D,
    inbound: Option<Impairer>,
    outbound: Option<Impairer>,
    scratch: Vec<u8>,
}

impl<D: Device> Fault<D> {
    /// Wraps `inner`; a direction with `None` passes through untouched.
    pub fn new(inner: D, inbound: Option<Impairer>, outbound: Option<Impairer>) -> Self {
        Fault {
            inner,
            inbound,
            outbound,
            scratch: vec![0; 65535],
        }
    }

    /// Counters per direction (inbound, outbound).
    pub fn stats(&self) -> (Option<&FaultStats>, Option<&FaultStats>) {
        (
            self.inbound.as_ref().map(Impairer::stats),
            self.outbound.as_ref().map(Impairer::stats),
        )
    }
}

impl<D: Device> Device for Fault<D> {
    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Received> {
        let Some(inbound) = &mut self.inbound else {
            return self.inner.recv(now, buf);
        };
        loop {
            if let Some(datagram) = inbound.pop_due(now) {
                let len = datagram.len().min(buf.len());
                buf[..len].copy_from_slice(&datagram[..len]);
                // Corruption must be caught by the stack's own check, as on a wire.
                return Ok(Received::unverified(len));
            }
            let mut received = self.inner.recv(now, &mut self.scratch)?;
            let datagram = &mut self.scratch[..received.len];
            complete_checksum(datagram, &mut received.checksum);
            // Loss, corruption and the rest act on wire packets, not on offload bursts.
            match received.segment_size {
                Some(mss) => split_tcp(datagram, usize::from(mss), |piece| {
                    inbound.offer(now, piece)
                }),
                None => inbound.offer(now, datagram),
            }
        }
    }

    fn send(&mut self, now: Instant, datagram: &[u8]) -> io::Result<()> {
        match &mut self.outbound {
            None => self.inner.send(now, datagram),
            Some(outbound) => {
                outbound.offer(now, datagram);
                self.poll(now)
            }
        }
    }

    /// Loss and the rest act on wire packets: an impaired super-segment is cut into the
    /// segments it stands for first. Unimpaired, it goes on whole.
    fn send_segmented(
        &mut self,
        now: Instant,
        datagram: &[u8],
        segment_size: Option<u16>,
    ) -> io::Result<()> {
        match (&mut self.outbound, segment_size) {
            (None, _) => self.inner.send_segmented(now, datagram, segment_size),
            (Some(_), None) => self.send(now, datagram),
            (Some(outbound), Some(size)) => {
                split_tcp(datagram, usize::from(size), |piece| {
                    outbound.offer(now, piece)
                });
                self.poll(now)
            }
        }
    }

    fn poll(&mut self, now: Instant) -> io::Result<()> {
        if let Some(outbound) = &mut self.outbound {
            while let Some((datagram, corrupted)) = outbound.pop_due_marked(now) {
                match self.inner.send(now, &datagram) {
                    // A full device queue is one more loss on an impaired path, and so is a
                    // corrupted datagram the kernel refuses to take at all.
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                    Err(err) if corrupted && err.kind() == io::ErrorKind::InvalidInput => {}
                    other => other?,
                }
            }
        }
        self.inner.poll(now)
    }

    fn trace_impairments(&mut self) {
        for impairer in [&mut self.inbound, &mut self.outbound]
            .into_iter()
            .flatten()
        {
            impairer.record_trace();
        }
        self.inner.trace_impairments();
    }

    fn drain_link_trace(&mut self, take: &mut dyn FnMut(crate::trace::TraceRecord)) {
        self.inner.drain_link_trace(take);
    }

    fn drain_impairments(&mut self, take: &mut dyn FnMut(ImpairRecord)) {
        self.inner.drain_impairments(take);
        if let Some(inbound) = &mut self.inbound {
            inbound.drain_trace(Dir::In, take);
        }
        if let Some(outbound) = &mut self.outbound {
            outbound.drain_trace(Dir::Out, take);
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let held = [&self.inbound, &self.outbound]
            .into_iter()
            .flatten()
            .filter_map(Impairer::next_due);
        held.chain(self.inner.poll_timeout()).min()
    }
    fn poll_link_event(&mut self) -> Option<super::LinkEvent> {
        self.inner.poll_link_event()
    }
}

/// The injector waits on the device it impairs; its own held datagrams are deadlines.
impl<D: AsRawFd> AsRawFd for Fault<D> {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_parses_every_key() {
        let spec: ImpairSpec =
            "loss=5%,dup=1%,reorder=10%,corrupt=1%,delay=20ms,jitter=5ms,rate=50mbit"
                .parse()
                .unwrap();
        assert_eq!(
            spec,
            ImpairSpec {
                loss: 0.05,
                duplicate: 0.01,
                reorder: 0.10,
                corrupt: 0.01,
                delay: Duration::from_millis(20),
                jitter: Duration::from_millis(5),
                rate_bps: Some(50_000_000),
                reorder_delay: None,
            }
        );
        assert!("".parse::<ImpairSpec>().unwrap().is_noop());
    }

    #[test]
    fn bad_specs_are_rejected_with_the_item() {
        let err = "loss=5".parse::<ImpairSpec>().unwrap_err();
        assert!(err.to_string().contains("'loss=5'"), "{err}");
        assert!("loss=150%".parse::<ImpairSpec>().is_err());
        assert!("speed=1mbit".parse::<ImpairSpec>().is_err());
        assert!("rate=fast".parse::<ImpairSpec>().is_err());
    }

    #[test]
    fn same_seed_same_fate() {
        let spec: ImpairSpec = "loss=30%,dup=10%,corrupt=10%,jitter=3ms".parse().unwrap();
        let t0 = Instant::now();
        let run = |seed| {
            let mut imp = Impairer::new(spec.clone(), seed);
            let mut out = Vec::new();
            for i in 0..200u32 {
                imp.offer(t0, &i.to_be_bytes());
            }
            while let Some(d) = imp.pop_due(t0 + Duration::from_secs(1)) {
                out.push(d);
            }
            out
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn loss_rate_is_roughly_right_and_delay_holds_back() {
        let spec: ImpairSpec = "loss=10%,delay=20ms".parse().unwrap();
        let t0 = Instant::now();
        let mut imp = Impairer::new(spec, 1);
        for _ in 0..10_000 {
            imp.offer(t0, b"x");
        }
        assert!(
            (800..1200).contains(&imp.stats().dropped),
            "{:?}",
            imp.stats()
        );
        assert!(imp.pop_due(t0 + Duration::from_millis(19)).is_none());
        assert_eq!(imp.next_due(), Some(t0 + Duration::from_millis(20)));
        assert!(imp.pop_due(t0 + Duration::from_millis(20)).is_some());
    }

    #[test]
    fn rate_limit_spaces_datagrams_and_keeps_order() {
        let spec: ImpairSpec = "rate=8mbit".parse().unwrap();
        let t0 = Instant::now();
        let mut imp = Impairer::new(spec, 1);
        for i in 0..3u8 {
            imp.offer(t0, &[i; 1000]);
        }
        // 1000 bytes at 8 Mbit/s take 1 ms each.
        assert_eq!(imp.next_due(), Some(t0 + Duration::from_millis(1)));
        assert!(imp
            .pop_due(t0 + Duration::from_micros(1999))
            .is_some_and(|d| d[0] == 0));
        assert!(imp.pop_due(t0 + Duration::from_micros(1999)).is_none());
        assert!(imp
            .pop_due(t0 + Duration::from_millis(3))
            .is_some_and(|d| d[0] == 1));
    }

    #[test]
    fn corruption_flips_exactly_one_bit() {
        let spec: ImpairSpec = "corrupt=100%".parse().unwrap();
        let t0 = Instant::now();
        let mut imp = Impairer::new(spec, 3);
        let original = [0u8; 64];
        imp.offer(t0, &original);
        let got = imp.pop_due(t0).unwrap();
        let flipped: u32 = got.iter().map(|b| b.count_ones()).sum();
        assert_eq!(flipped, 1);
    }
}
