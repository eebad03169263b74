//! TAP mode's adapter: a device of Ethernet frames (a TAP, or a simulated L2 link) seen as a
//! device of IPv4 datagrams, with the sans-IO [`Link`] (Ethernet, ARP, next hop) in between.
//!
//! Everything above it (the fault injector, the driver, the stack) is the same as in TUN mode:
//! it reads and writes datagrams. Below it go frames, so `--pcap` under it records Ethernet.
//! The link's own frames (ARP requests, replies, announcements, datagrams released by a reply)
//! are written as soon as the call that made them returns to the adapter: after a received
//! ARP packet, after a datagram that started a resolution, and when ARP's timers fire in
//! [`Device::poll`]. Next hops that never answer come out of [`Device::poll_link_event`].

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use super::{gso, Device, LinkEvent, Received, RxChecksum};
use crate::arp::{ArpPacket, Operation};
use crate::driver::MAX_DATAGRAM;
use crate::ethernet::{pad, HEADER_LEN, MIN_FRAME_LEN};
use crate::link::{Inbound, Link, Outbound};
use crate::trace::{Dir, TraceEvent, TraceRecord};

/// Largest frame read or written: a 64 KiB super-segment behind its Ethernet header.
pub const MAX_FRAME: usize = MAX_DATAGRAM + HEADER_LEN;

/// A frame device carrying IPv4 over Ethernet, seen as a datagram device. See the module docs.
pub struct EthernetDevice<D> {
    inner: D,
    link: Link,
    rx: Vec<u8>,
    tx: Vec<u8>,
    /// `-v`: print every ARP packet and link event to standard error.
    verbose: bool,
    /// Frames of the link itself the device refused (full queue): ARP retries cover them.
    tx_refused: u64,
    /// `--trace`: ARP packets and give-ups not yet handed over (`None`: not tracing).
    trace: Option<Vec<TraceRecord>>,
    /// The latest time a call gave us, for stamping the link events that come out of
    /// `poll_link_event` (which takes none).
    latest: Option<Instant>,
}

impl<D: Device> EthernetDevice<D> {
    /// Puts `link` over the frame device `inner`. With `verbose`, ARP traffic and link
    /// events are printed to standard error as they happen.
    pub fn new(inner: D, link: Link, verbose: bool) -> Self {
        EthernetDevice {
            inner,
            link,
            rx: vec![0; MAX_FRAME],
            tx: vec![0; MAX_FRAME],
            verbose,
            tx_refused: 0,
            trace: None,
            latest: None,
        }
    }

    /// Puts a new link for `config` over `inner`, starting now by the wall clock (its
    /// announcements are due at once): for the real device, whose caller may not read the
    /// clock itself.
    pub fn start(inner: D, config: crate::link::LinkConfig, verbose: bool) -> Self {
        EthernetDevice::new(inner, Link::new(Instant::now(), config), verbose)
    }

    /// The link, for its statistics and neighbour cache.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// The frame device inside.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// Frames of the link's own (ARP, released datagrams) the device refused.
    pub fn tx_refused(&self) -> u64 {
        self.tx_refused
    }

    /// Writes every frame the link has; a refused one is counted and dropped (ARP resends
    /// requests, TCP resends data).
    fn flush_link(&mut self, now: Instant) -> io::Result<()> {
        self.latest = Some(now);
        while let Some(transmit) = self.link.poll_transmit(&mut self.tx) {
            if let (true, Some(packet)) = (self.verbose, &transmit.arp) {
                eprintln!("* arp: sent {}", describe(packet));
            }
            if let (Some(trace), Some(packet)) = (&mut self.trace, &transmit.arp) {
                trace.push(arp_record(now, Dir::Out, packet));
            }
            match self.inner.send(now, &self.tx[..transmit.len]) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => self.tx_refused += 1,
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Routes one datagram (not a super-segment) and writes its frame if it can go now.
    fn send_one(
        &mut self,
        now: Instant,
        datagram: &[u8],
        segment_size: Option<u16>,
    ) -> io::Result<()> {
        match self.link.route(now, datagram) {
            Outbound::Send(header) => {
                let len = HEADER_LEN + datagram.len();
                let frame = self.tx.get_mut(..len).ok_or(io::ErrorKind::InvalidInput)?;
                frame[..HEADER_LEN].copy_from_slice(&header);
                frame[HEADER_LEN..].copy_from_slice(datagram);
                let len = if len < MIN_FRAME_LEN {
                    pad(&mut self.tx, len).map_err(|_| io::ErrorKind::InvalidInput)?
                } else {
                    len
                };
                self.inner
                    .send_segmented(now, &self.tx[..len], segment_size)
            }
            Outbound::Queued | Outbound::Dropped(_) => self.flush_link(now),
        }
    }
}

impl<D: Device> Device for EthernetDevice<D> {
    /// Reads frames until one holds an IPv4 datagram for us (ARP packets are taken on the
    /// way, and answered), and hands that datagram up.
    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Received> {
        loop {
            let received = self.inner.recv(now, &mut self.rx)?;
            let frame_len = received.len.min(self.rx.len());
            match self.link.handle_frame(now, &self.rx[..frame_len]) {
                Inbound::Ipv4(range) => {
                    let len = range.len().min(buf.len());
                    buf[..len].copy_from_slice(&self.rx[range.start..range.start + len]);
                    return Ok(Received {
                        len,
                        checksum: shift_checksum(received.checksum, range.start),
                        segment_size: received.segment_size,
                    });
                }
                Inbound::Arp(packet) => {
                    if let (true, Some(packet)) = (self.verbose, &packet) {
                        eprintln!("* arp: received {}", describe(packet));
                    }
                    if let (Some(trace), Some(packet)) = (&mut self.trace, &packet) {
                        trace.push(arp_record(now, Dir::In, packet));
                    }
                    self.flush_link(now)?;
                }
                Inbound::Dropped => {}
            }
        }
    }

    fn send(&mut self, now: Instant, datagram: &[u8]) -> io::Result<()> {
        self.send_one(now, datagram, None)
    }

    /// A super-segment whose next hop is known goes down whole behind one Ethernet header
    /// (the TAP's TSO cuts it); one that must wait for ARP is cut into wire segments first,
    /// since what waits in the cache's queue is later sent as a plain frame.
    fn send_segmented(
        &mut self,
        now: Instant,
        datagram: &[u8],
        segment_size: Option<u16>,
    ) -> io::Result<()> {
        let dst = datagram
            .get(16..20)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(Ipv4Addr::from);
        match (segment_size, dst) {
            (Some(size), Some(dst)) if !self.link.is_resolved(now, dst) => {
                let mut result = Ok(());
                gso::split_tcp(datagram, usize::from(size), |piece| {
                    if result.is_ok() {
                        result = self.send_one(now, piece, None);
                    }
                });
                result
            }
            _ => self.send_one(now, datagram, segment_size),
        }
    }

    /// Fires ARP's timers (retries, give-ups, revalidation, announcements) and writes what
    /// they produced, after the device inside has moved what it holds.
    fn poll(&mut self, now: Instant) -> io::Result<()> {
        self.inner.poll(now)?;
        if self.link.poll_timeout().is_some_and(|at| at <= now) {
            self.link.handle_timeout(now);
        }
        self.flush_link(now)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        [self.inner.poll_timeout(), self.link.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    fn trace_impairments(&mut self) {
        self.trace.get_or_insert_with(Vec::new);
        self.inner.trace_impairments();
    }

    fn drain_impairments(&mut self, take: &mut dyn FnMut(crate::trace::ImpairRecord)) {
        self.inner.drain_impairments(take);
    }

    fn drain_link_trace(&mut self, take: &mut dyn FnMut(TraceRecord)) {
        self.inner.drain_link_trace(take);
        for record in self.trace.iter_mut().flat_map(|t| t.drain(..)) {
            take(record);
        }
    }

    fn poll_link_event(&mut self) -> Option<LinkEvent> {
        let event = self.link.poll_event()?;
        if let (Some(trace), Some(at), LinkEvent::Unreachable { next_hop, .. }) =
            (&mut self.trace, self.latest, &event)
        {
            trace.push(TraceRecord {
                at,
                conn: None,
                event: TraceEvent::Arp {
                    dir: None,
                    what: "unreachable",
                    ip: *next_hop,
                    mac: None,
                },
            });
        }
        if self.verbose {
            match &event {
                LinkEvent::Unreachable { next_hop, .. } => {
                    eprintln!("* arp: no ARP reply from {next_hop}")
                }
                LinkEvent::AddressConflict(mac) => {
                    eprintln!(
                        "* arp: {mac} also uses our address {}",
                        self.link.config().addr
                    )
                }
            }
        }
        Some(event)
    }
}

/// The trace record of one ARP packet: the other host is the target of what we send and the
/// sender of what we receive.
fn arp_record(at: Instant, dir: Dir, packet: &ArpPacket) -> TraceRecord {
    let gratuitous = packet.sender_ip == packet.target_ip;
    let what = match (gratuitous, packet.operation) {
        (true, _) => "gratuitous",
        (false, Operation::Request) => "request",
        (false, _) => "reply",
    };
    let (ip, mac) = match dir {
        Dir::Out if !gratuitous => (packet.target_ip, packet.target_mac),
        _ => (packet.sender_ip, packet.sender_mac),
    };
    TraceRecord {
        at,
        conn: None,
        event: TraceEvent::Arp {
            dir: Some(dir),
            what,
            ip,
            mac: Some(mac.to_string()),
        },
    }
}

/// A checksum offset the device gave from the start of the frame, made relative to the
/// datagram that starts `l3` bytes in.
fn shift_checksum(checksum: RxChecksum, l3: usize) -> RxChecksum {
    match checksum {
        RxChecksum::Partial { start, offset } => match usize::from(start).checked_sub(l3) {
            Some(start) => RxChecksum::Partial {
                start: start as u16,
                offset,
            },
            None => RxChecksum::Unknown,
        },
        other => other,
    }
}

/// One ARP packet as `-v` prints it, in tcpdump's words.
fn describe(packet: &ArpPacket) -> String {
    match packet.operation {
        Operation::Request if packet.sender_ip == packet.target_ip => format!(
            "announcement: {} is-at {}",
            packet.sender_ip, packet.sender_mac
        ),
        Operation::Request => format!(
            "request: who-has {} tell {} ({})",
            packet.target_ip, packet.sender_ip, packet.sender_mac
        ),
        Operation::Reply => format!(
            "reply: {} is-at {} (to {})",
            packet.sender_ip, packet.sender_mac, packet.target_ip
        ),
    }
}

/// The event loop waits on the frame device's descriptor.
impl<D: AsRawFd> AsRawFd for EthernetDevice<D> {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}
