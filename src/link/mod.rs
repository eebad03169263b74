//! The layer-2 link of TAP mode: Ethernet framing, ARP and the choice of next hop, between a
//! device that moves Ethernet frames and the IPv4 layer.
//!
//! Sans-IO like the rest of the core: [`Link::handle_frame`] takes a received frame and the
//! time and says where the IPv4 datagram in it is (ARP packets are consumed), [`Link::route`]
//! takes an outgoing datagram and gives the Ethernet header to put in front of it, or keeps
//! it until its next hop answers ARP; [`Link::poll_transmit`] hands out the frames the link
//! itself wants sent (ARP requests, replies, announcements, datagrams released by an answer),
//! [`Link::poll_timeout`] / [`Link::handle_timeout`] drive ARP's timers, and
//! [`Link::poll_event`] reports next hops that never answered, with the destinations whose
//! datagrams were waiting, so the stack can fail their connections ("no ARP reply from ...").
//!
//! Call order: after `handle_frame`, `route` or `handle_timeout`, flush `poll_transmit` until
//! `None`, then drain `poll_event`. [`crate::device::ethernet::EthernetDevice`] does this
//! around a frame device, so the driver and the stack above see IPv4 datagrams as in TUN mode.

mod addr;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::Ipv4Addr;
use std::ops::Range;
use std::time::Instant;

use etherparse::EtherType;

use crate::arp::{self, ArpConfig, ArpPacket, Neighbors, Resolution, Transmit};
use crate::ethernet::{EthernetLayer, EthernetRepr, EthernetStats, Ingress, MacAddr, HEADER_LEN};

pub use addr::{default_gateway, InterfaceAddr, ParseInterfaceAddrError, DEFAULT_TAP_PREFIX};

/// Destinations remembered per unresolved next hop; a failure fails connections to these.
/// More would only be reached by a server talking to many on-link hosts at once.
const MAX_WAITING_DESTINATIONS: usize = 64;

/// How a link is set up: who we are on the segment and where datagrams for other subnets go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkConfig {
    /// Our MAC address: the source of every frame, the destination we accept.
    pub mac: MacAddr,
    /// Our IPv4 address, which ARP answers for.
    pub addr: Ipv4Addr,
    /// The length of the on-link prefix: destinations inside it are resolved directly.
    pub prefix_len: u8,
    /// The router for every destination outside the prefix.
    pub gateway: Ipv4Addr,
    /// The neighbour cache's timers and bounds.
    pub arp: ArpConfig,
}

impl LinkConfig {
    /// Whether `dst` is on our segment (in our prefix), so ARP resolves it rather than the
    /// gateway (RFC 1122 §3.3.1.1).
    pub fn is_on_link(&self, dst: Ipv4Addr) -> bool {
        let mask = prefix_mask(self.prefix_len);
        u32::from(dst) & mask == u32::from(self.addr) & mask
    }

    /// The next hop for a datagram to `dst`: `dst` itself when it is on link (or a broadcast
    /// or multicast address, which map to group MACs), otherwise the gateway.
    pub fn next_hop(&self, dst: Ipv4Addr) -> Ipv4Addr {
        let directed_broadcast =
            u32::from(dst) | prefix_mask(self.prefix_len) == u32::MAX && self.is_on_link(dst);
        if dst.is_broadcast() || dst.is_multicast() || directed_broadcast || self.is_on_link(dst) {
            dst
        } else {
            self.gateway
        }
    }
}

/// The network mask of a prefix length (0 to 32).
fn prefix_mask(prefix_len: u8) -> u32 {
    match prefix_len {
        0 => 0,
        n => u32::MAX << (32 - u32::from(n.min(32))),
    }
}

/// What a received frame held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// An IPv4 datagram for the stack, at this range of the frame (link padding cut off).
    Ipv4(Range<usize>),
    /// An ARP packet, taken by the neighbour cache (what it said, for `-v`; `None` if it did
    /// not parse).
    Arp(Option<ArpPacket>),
    /// Nothing for us; counted in [`Link::ethernet_stats`].
    Dropped,
}

/// What to do with an outgoing datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outbound {
    /// Send it now behind this Ethernet header.
    Send([u8; HEADER_LEN]),
    /// Kept until its next hop answers; [`Link::poll_transmit`] hands it out then.
    Queued,
    /// Not sent, for this reason (counted in [`Link::arp_stats`]).
    Dropped(arp::DropReason),
}

/// What the stack must learn from the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// `next_hop` did not answer ARP: the datagrams for `destinations` were dropped, and
    /// their connections should fail with "no ARP reply from `next_hop`".
    Unreachable {
        /// The neighbour that never answered (the gateway, or an on-link host).
        next_hop: Ipv4Addr,
        /// The destinations whose datagrams waited for it.
        destinations: Vec<Ipv4Addr>,
    },
    /// Another station (this MAC) claims our address: worth telling the user.
    AddressConflict(MacAddr),
}

/// One frame the link itself sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkTransmit {
    /// The frame's length at the start of the buffer given to `poll_transmit`.
    pub len: usize,
    /// The ARP packet it carries, for `-v`; `None` for a released datagram.
    pub arp: Option<ArpPacket>,
}

/// Ethernet, ARP and routing for one interface with one address. See the module docs.
pub struct Link {
    config: LinkConfig,
    ethernet: EthernetLayer,
    neighbors: Neighbors,
    /// For each next hop being resolved: the destinations whose datagrams wait for it.
    waiting: BTreeMap<Ipv4Addr, BTreeSet<Ipv4Addr>>,
    events: VecDeque<LinkEvent>,
}

impl Link {
    /// A link for `config`; it announces our address (gratuitous ARP, RFC 5227 §2.3) at
    /// `now`, so neighbours holding a stale MAC for it update, and the first frames to send
    /// are those announcements.
    pub fn new(now: Instant, config: LinkConfig) -> Self {
        let mut neighbors = Neighbors::new(config.arp.clone(), config.mac, config.addr);
        neighbors.announce(now);
        Link {
            ethernet: EthernetLayer::new(config.mac),
            neighbors,
            waiting: BTreeMap::new(),
            events: VecDeque::new(),
            config,
        }
    }

    /// How the link is set up.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// Classifies one received frame: an IPv4 datagram's place in it, or an ARP packet taken
    /// by the cache (which may answer, or release queued datagrams: flush `poll_transmit`).
    pub fn handle_frame(&mut self, now: Instant, frame: &[u8]) -> Inbound {
        match self.ethernet.handle_frame(frame) {
            Ingress::Ipv4 { datagram, .. } => {
                let start = datagram.as_ptr() as usize - frame.as_ptr() as usize;
                Inbound::Ipv4(start..start + datagram.len())
            }
            Ingress::Arp { packet, .. } => {
                let parsed = ArpPacket::parse(packet).ok();
                // A refused packet is counted by the cache; nothing else to do with it.
                let _ = self.neighbors.handle_arp(now, packet);
                self.collect_events();
                Inbound::Arp(parsed)
            }
            Ingress::Dropped(_) => Inbound::Dropped,
        }
    }

    /// Whether a datagram to `dst` could be sent at once (its next hop's MAC is known).
    pub fn is_resolved(&self, now: Instant, dst: Ipv4Addr) -> bool {
        let hop = self.config.next_hop(dst);
        hop.is_broadcast()
            || hop.is_multicast()
            || matches!(
                self.neighbors.state(now, hop),
                Some(arp::NeighborState::Reachable(_))
            )
    }

    /// Finds the next hop of `datagram` (an IPv4 datagram from the stack) and its MAC: send
    /// it now behind the returned header, or it waits in the cache's bounded queue while a
    /// request goes out (flush `poll_transmit`), or it is dropped. A datagram for a
    /// neighbour that just failed to answer is dropped and its connection told at once.
    pub fn route(&mut self, now: Instant, datagram: &[u8]) -> Outbound {
        let Some(dst) = datagram
            .get(16..20)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
        else {
            return Outbound::Dropped(arp::DropReason::InvalidNextHop);
        };
        let dst = Ipv4Addr::from(dst);
        let hop = self.config.next_hop(dst);
        match self.neighbors.resolve(now, hop, datagram) {
            Resolution::Resolved(mac) => Outbound::Send(self.header(mac, EtherType::IPV4)),
            Resolution::Queued => {
                let waiting = self.waiting.entry(hop).or_default();
                if waiting.len() < MAX_WAITING_DESTINATIONS {
                    waiting.insert(dst);
                }
                Outbound::Queued
            }
            Resolution::Dropped(arp::DropReason::Unreachable) => {
                // Backing off after a failed resolution: the connection learns why now
                // rather than after its own retransmissions run out.
                self.push_event(LinkEvent::Unreachable {
                    next_hop: hop,
                    destinations: vec![dst],
                });
                Outbound::Dropped(arp::DropReason::Unreachable)
            }
            Resolution::Dropped(reason) => Outbound::Dropped(reason),
        }
    }

    /// Writes the next frame the link sends by itself into `buf` (at least 60 bytes, and
    /// room for a datagram released from a queue).
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<LinkTransmit> {
        loop {
            let transmit = self.neighbors.poll_transmit()?;
            let arp = match &transmit {
                Transmit::Arp { packet, .. } => Some(*packet),
                Transmit::Ipv4 { .. } => None,
            };
            // A frame that does not fit the buffer is dropped; nothing else can be done.
            if let Ok(len) = transmit.emit(self.config.mac, buf) {
                return Some(LinkTransmit { len, arp });
            }
        }
    }

    /// When `handle_timeout` is next due (an ARP retransmission, give-up, revalidation or
    /// expiry, or the next announcement).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.neighbors.poll_timeout()
    }

    /// Fires ARP's due timers; flush `poll_transmit` and drain `poll_event` after.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.neighbors.handle_timeout(now);
        self.collect_events();
        // Next hops that resolved (or were forgotten) need no list of waiting destinations.
        let neighbors = &self.neighbors;
        self.waiting.retain(|hop, _| {
            matches!(
                neighbors.state(now, *hop),
                Some(arp::NeighborState::Incomplete)
            )
        });
    }

    /// The next event for the stack.
    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    /// What the Ethernet layer received and dropped.
    pub fn ethernet_stats(&self) -> &EthernetStats {
        self.ethernet.stats()
    }

    /// What the neighbour cache did.
    pub fn arp_stats(&self) -> &arp::ArpStats {
        self.neighbors.stats()
    }

    /// What the cache knows about `ip`, for diagnostics and tests.
    pub fn neighbor(&self, now: Instant, ip: Ipv4Addr) -> Option<arp::NeighborState> {
        self.neighbors.state(now, ip)
    }

    fn header(&self, dst: MacAddr, ethertype: EtherType) -> [u8; HEADER_LEN] {
        let mut header = [0u8; HEADER_LEN];
        let repr = EthernetRepr {
            dst,
            src: self.config.mac,
            ethertype,
        };
        // A 14-byte buffer always holds the header.
        let _ = repr.emit_header(&mut header);
        header
    }

    fn collect_events(&mut self) {
        while let Some(event) = self.neighbors.poll_event() {
            let event = match event {
                arp::Event::Unreachable(hop) => LinkEvent::Unreachable {
                    next_hop: hop,
                    destinations: self
                        .waiting
                        .remove(&hop)
                        .map(|set| set.into_iter().collect())
                        .unwrap_or_default(),
                },
                arp::Event::AddressConflict(mac) => LinkEvent::AddressConflict(mac),
            };
            self.push_event(event);
        }
    }

    fn push_event(&mut self, event: LinkEvent) {
        // Bounded like the cache's own events: a flood of drops cannot grow it.
        if self.events.len() < self.config.arp.max_events {
            self.events.push_back(event);
        }
    }
}

#[cfg(test)]
mod tests;
