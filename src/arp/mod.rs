//! ARP (RFC 826): the IPv4-to-Ethernet neighbour cache of TAP mode.
//!
//! A host's share of RFC 826, RFC 1122 §2.3.2 and RFC 5227's announcements, as a sans-IO state
//! machine in the shape of the rest of the stack: `resolve` and `handle_arp` take the time and
//! bytes, `poll_transmit` hands back what to send (requests, replies, announcements and the
//! datagrams that waited for an answer, each with its destination MAC), `poll_timeout` says
//! when to call `handle_timeout`, and `poll_event` reports neighbours that never answered so
//! the stack can fail their connections. No clock, no device, no randomness.
//!
//! Call order, as for the stack: after `resolve`, `handle_arp`, `announce` or `handle_timeout`,
//! flush `poll_transmit` until `None`, then drain `poll_event`.

mod neighbors;
mod packet;
mod stats;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use etherparse::EtherType;

use crate::ethernet::{EmitError, EthernetRepr, MacAddr};

pub use neighbors::{NeighborState, Neighbors};
pub use packet::{ArpPacket, ArpParseError, Operation, PACKET_LEN};
pub use stats::{ArpStats, DropReason};

/// How the neighbour cache behaves; `Default` follows Linux's defaults where RFCs leave a
/// choice, so the stack looks like any other host to its neighbours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpConfig {
    /// How many broadcast requests one resolution sends before giving up (Linux
    /// `mcast_solicit`, 3). Also how many unicast requests revalidate an entry in use.
    pub max_requests: u32,
    /// Time between requests of one resolution (Linux `retrans_time`, 1 s); RFC 1122
    /// §2.3.2.1 asks for at most one request per second per destination.
    pub retrans_time: Duration,
    /// How long an answer is trusted (RFC 1122 §2.3.2.1: entries must time out; Linux's
    /// `base_reachable_time` is 30 s). An entry in use is revalidated before this runs out.
    pub reachable_time: Duration,
    /// Longest wait before a neighbour that failed to answer is asked again. After each
    /// consecutive failure, datagrams for it are dropped at once for `retrans_time`, then
    /// twice that, and so on up to this cap, so an absent host is not flooded with requests.
    pub max_backoff: Duration,
    /// How long after an entry was confirmed a different MAC for it is ignored (Linux
    /// `locktime`, 1 s): with a proxy and the real host both answering, the first one wins.
    pub lock_time: Duration,
    /// Datagrams held per neighbour while it is resolved; more are dropped.
    pub queue_per_neighbor: usize,
    /// Datagrams held for all neighbours together, including resolved ones not yet polled.
    pub queue_total: usize,
    /// Most neighbours remembered; the least useful entry makes room for a new one.
    pub max_entries: usize,
    /// Most replies waiting for `poll_transmit`; a request flood cannot make us buffer more.
    pub max_pending_replies: usize,
    /// Gratuitous announcements sent by `announce` (RFC 5227 §2.3 `ANNOUNCE_NUM`, 2).
    pub announcements: u32,
    /// Time between announcements (RFC 5227 `ANNOUNCE_INTERVAL`, 2 s).
    pub announce_interval: Duration,
    /// Most events waiting for `poll_event`; later ones are counted and dropped.
    pub max_events: usize,
}

impl Default for ArpConfig {
    fn default() -> Self {
        ArpConfig {
            max_requests: 3,
            retrans_time: Duration::from_secs(1),
            reachable_time: Duration::from_secs(30),
            max_backoff: Duration::from_secs(60),
            lock_time: Duration::from_secs(1),
            queue_per_neighbor: 16,
            queue_total: 256,
            max_entries: 256,
            max_pending_replies: 16,
            announcements: 2,
            announce_interval: Duration::from_secs(2),
            max_events: 64,
        }
    }
}

/// What `resolve` did with a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The next hop is at this MAC: send the datagram now. Nothing was copied.
    Resolved(MacAddr),
    /// The datagram was copied into the neighbour's queue; `poll_transmit` hands it back with
    /// the MAC once the neighbour answers, or it is dropped (and counted) if it never does.
    Queued,
    /// The datagram was not kept, for this reason (counted in the stats).
    Dropped(DropReason),
}

/// What the stack should learn about, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Nobody answered `max_requests` requests for this address: connections through it
    /// should fail now rather than retransmit into the void.
    Unreachable(Ipv4Addr),
    /// Another station (this MAC) claims our address (RFC 5227 §2.4): a misconfiguration
    /// the user should hear about, since replies may go to it instead of us.
    AddressConflict(MacAddr),
}

impl fmt::Display for Event {
    /// The message a user sees, e.g. "no ARP reply from 10.77.0.1".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Unreachable(ip) => write!(f, "no ARP reply from {ip}"),
            Event::AddressConflict(mac) => write!(f, "{mac} also uses our IPv4 address"),
        }
    }
}

/// One frame's worth of output: an ARP packet or an IPv4 datagram that waited for its
/// neighbour, with the MAC to send it to. `emit` writes the whole Ethernet frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// A request, reply or announcement.
    Arp {
        /// Broadcast for requests and announcements, the asker for replies, the cached MAC
        /// for revalidation.
        dst: MacAddr,
        /// The packet.
        packet: ArpPacket,
    },
    /// A datagram released from a resolution queue.
    Ipv4 {
        /// The next hop's MAC, just learned.
        dst: MacAddr,
        /// The datagram as `resolve` was given it.
        datagram: Vec<u8>,
    },
}

impl Transmit {
    /// The destination MAC.
    pub fn dst(&self) -> MacAddr {
        match self {
            Transmit::Arp { dst, .. } | Transmit::Ipv4 { dst, .. } => *dst,
        }
    }

    /// The ethertype of the frame.
    pub fn ethertype(&self) -> EtherType {
        match self {
            Transmit::Arp { .. } => EtherType::ARP,
            Transmit::Ipv4 { .. } => EtherType::IPV4,
        }
    }

    /// Writes the frame from `src` into `buf`, padded to 60 bytes; returns its length.
    pub fn emit(&self, src: MacAddr, buf: &mut [u8]) -> Result<usize, EmitError> {
        let repr = EthernetRepr {
            dst: self.dst(),
            src,
            ethertype: self.ethertype(),
        };
        match self {
            Transmit::Arp { packet, .. } => repr.emit(buf, &packet.to_bytes()),
            Transmit::Ipv4 { datagram, .. } => repr.emit(buf, datagram),
        }
    }
}
