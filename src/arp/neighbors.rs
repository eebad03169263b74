//! The neighbour cache: one state machine per IPv4 neighbour, and the queues around them.
//!
//! ```text
//!            resolve (new)                  reply / request naming it
//!   (none) ---------------> Incomplete ----------------------------> Reachable
//!                             |  every retrans_time: request (broadcast), max_requests
//!                             |  times; then drop its queue, Event::Unreachable
//!                             v                                        |  in use: unicast
//!                           Failed  <--- (back-off; then resolve       |  requests before
//!                             |          starts a new round)           |  reachable_time ends
//!                             v  forgotten a reachable_time later      v  unconfirmed: removed
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::{ArpConfig, ArpPacket, ArpStats, DropReason, Event, Operation, Resolution, Transmit};
use crate::ethernet::MacAddr;

/// What the cache knows about one address, for diagnostics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighborState {
    /// Requests are out; datagrams wait.
    Incomplete,
    /// Answered recently: at this MAC.
    Reachable(MacAddr),
    /// Did not answer; datagrams are dropped until the back-off passes.
    Failed,
}

enum State {
    Incomplete {
        /// Requests sent so far in this round.
        requests: u32,
        /// When to send the next request, or give up.
        next: Instant,
        queue: VecDeque<Vec<u8>>,
        /// Consecutive failed rounds before this one.
        failures: u32,
    },
    Reachable {
        mac: MacAddr,
        confirmed: Instant,
        /// Resolved a datagram since it was confirmed: worth revalidating.
        used: bool,
        /// Unicast revalidation requests sent since it was confirmed.
        probes: u32,
        next_probe: Instant,
    },
    Failed {
        failures: u32,
        retry_at: Instant,
        forget_at: Instant,
    },
}

/// The neighbour cache of one interface with one IPv4 address. See the module documentation
/// of [`crate::arp`] for the call order.
pub struct Neighbors {
    config: ArpConfig,
    mac: MacAddr,
    ip: Ipv4Addr,
    /// Ordered so timers fire, and frames leave, in the same order on every run.
    entries: BTreeMap<Ipv4Addr, State>,
    transmits: VecDeque<Transmit>,
    /// Replies in `transmits`, bounded by `max_pending_replies`.
    pending_replies: usize,
    /// Datagrams held in queues or in `transmits`, bounded by `queue_total`.
    held: usize,
    /// Announcements still to send, and when the next one is due.
    announce: Option<(u32, Instant)>,
    events: VecDeque<Event>,
    stats: ArpStats,
}

impl Neighbors {
    /// An empty cache for the station `mac` owning `ip`.
    pub fn new(config: ArpConfig, mac: MacAddr, ip: Ipv4Addr) -> Self {
        Neighbors {
            config,
            mac,
            ip,
            entries: BTreeMap::new(),
            transmits: VecDeque::new(),
            pending_replies: 0,
            held: 0,
            announce: None,
            events: VecDeque::new(),
            stats: ArpStats::default(),
        }
    }

    /// Announces our mapping to the segment (RFC 5227 §2.3 "ARP Announcement", the
    /// gratuitous ARP of RFC 5944): `announcements` broadcast requests with our address as
    /// both sender and target, so neighbours that knew an old MAC for it update their caches.
    /// Call it when the interface comes up.
    pub fn announce(&mut self, now: Instant) {
        if self.config.announcements > 0 {
            self.announce = Some((self.config.announcements, now));
            self.send_announcement(now);
        }
    }

    /// Finds the MAC of `next_hop` for `datagram`. Resolved: send it now. Otherwise the
    /// datagram is copied into a bounded queue and a broadcast request goes out, or it is
    /// dropped with the reason. Broadcast and multicast next hops map without ARP.
    pub fn resolve(&mut self, now: Instant, next_hop: Ipv4Addr, datagram: &[u8]) -> Resolution {
        if next_hop.is_broadcast() {
            return Resolution::Resolved(MacAddr::BROADCAST);
        }
        if next_hop.is_multicast() {
            return Resolution::Resolved(MacAddr::ipv4_multicast(next_hop));
        }
        if next_hop.is_unspecified() || next_hop.is_loopback() || next_hop == self.ip {
            return self.dropped(DropReason::InvalidNextHop);
        }
        let reachable_time = self.config.reachable_time;
        let failures = match self.entries.get_mut(&next_hop) {
            Some(State::Reachable {
                mac,
                confirmed,
                used,
                ..
            }) if now < *confirmed + reachable_time => {
                *used = true;
                return Resolution::Resolved(*mac);
            }
            // Expired, and `handle_timeout` has not run yet: as if it had.
            Some(State::Reachable { .. }) => {
                self.stats.expired += 1;
                0
            }
            Some(State::Incomplete { .. }) => return self.enqueue(next_hop, datagram),
            Some(State::Failed { retry_at, .. }) if now < *retry_at => {
                return self.dropped(DropReason::Unreachable);
            }
            Some(State::Failed { failures, .. }) => *failures,
            None => {
                if let Err(reason) = self.make_room() {
                    return self.dropped(reason);
                }
                0
            }
        };
        self.entries.insert(
            next_hop,
            State::Incomplete {
                requests: 1,
                next: now + self.config.retrans_time,
                queue: VecDeque::new(),
                failures,
            },
        );
        self.send_request(MacAddr::BROADCAST, next_hop);
        self.stats.requests_sent += 1;
        self.enqueue(next_hop, datagram)
    }

    /// What the cache holds for `ip` at `now`, without touching it.
    pub fn state(&self, now: Instant, ip: Ipv4Addr) -> Option<NeighborState> {
        match self.entries.get(&ip)? {
            State::Incomplete { .. } => Some(NeighborState::Incomplete),
            State::Reachable { mac, confirmed, .. }
                if now < *confirmed + self.config.reachable_time =>
            {
                Some(NeighborState::Reachable(*mac))
            }
            State::Reachable { .. } => None,
            State::Failed { .. } => Some(NeighborState::Failed),
        }
    }

    /// Handles one received ARP packet (the Ethernet payload, padding allowed). `Err` says why
    /// it was ignored, or why part of it was (a request for us is answered even when its
    /// sender could not be learned); every such reason is counted.
    pub fn handle_arp(&mut self, now: Instant, bytes: &[u8]) -> Result<(), DropReason> {
        let result = ArpPacket::parse(bytes)
            .map_err(DropReason::from)
            .and_then(|packet| self.handle_packet(now, &packet));
        if let Err(reason) = result {
            self.stats.count_drop(reason);
        }
        result
    }

    /// RFC 826's reception algorithm, hardened: merge the sender into an entry we already
    /// have; if the packet targets us and is a request, learn the sender and reply. A reply
    /// only ever completes or refreshes an entry we created by asking.
    fn handle_packet(&mut self, now: Instant, packet: &ArpPacket) -> Result<(), DropReason> {
        match packet.operation {
            Operation::Request => self.stats.requests_received += 1,
            Operation::Reply => self.stats.replies_received += 1,
        }
        if packet.sender_mac == self.mac {
            return Err(DropReason::LoopedBack);
        }
        if !packet.sender_mac.is_unicast() {
            return Err(DropReason::BadSender);
        }
        if packet.sender_ip == self.ip {
            self.push_event(Event::AddressConflict(packet.sender_mac));
            return Err(DropReason::AddressConflict);
        }
        let sender = packet.sender_ip;
        // RFC 5227 §2.1.1: a probe's sender address is 0.0.0.0; it is answered, not learned.
        let probe = sender.is_unspecified();
        if !probe && (sender.is_broadcast() || sender.is_multicast() || sender.is_loopback()) {
            return Err(DropReason::BadSender);
        }
        let merged = if probe {
            Ok(false)
        } else {
            self.merge(now, sender, packet.sender_mac)
        };
        if packet.target_ip != self.ip {
            return match (merged?, packet.operation) {
                (true, _) => Ok(()),
                (false, Operation::Request) => Err(DropReason::NotForUs),
                (false, Operation::Reply) => Err(DropReason::Unsolicited),
            };
        }
        if packet.operation == Operation::Reply {
            return match merged? {
                true => Ok(()),
                false => Err(DropReason::Unsolicited),
            };
        }
        // A request for us: the asker is about to talk to us, so learn it (RFC 826: "add the
        // triplet" when it was not merged) and answer to its MAC.
        let learned = match merged {
            Ok(false) if !probe => self.learn(now, sender, packet.sender_mac),
            other => other.map(|_| ()),
        };
        if self.pending_replies >= self.config.max_pending_replies {
            return Err(DropReason::ReplyQueueFull);
        }
        self.pending_replies += 1;
        self.stats.replies_sent += 1;
        self.transmits.push_back(Transmit::Arp {
            dst: packet.sender_mac,
            packet: ArpPacket {
                operation: Operation::Reply,
                sender_mac: self.mac,
                sender_ip: self.ip,
                target_mac: packet.sender_mac,
                target_ip: sender,
            },
        });
        learned
    }

    /// The next frame to send, if any. Requests and replies come out in the order they were
    /// made; released datagrams follow the reply that released them, in their queue order.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let transmit = self.transmits.pop_front()?;
        match &transmit {
            Transmit::Ipv4 { .. } => self.held = self.held.saturating_sub(1),
            Transmit::Arp { packet, .. } if packet.operation == Operation::Reply => {
                self.pending_replies = self.pending_replies.saturating_sub(1);
            }
            Transmit::Arp { .. } => {}
        }
        Some(transmit)
    }

    /// When `handle_timeout` must next be called, if anything is waiting.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let entries = self.entries.values().map(|state| self.deadline(state));
        entries.chain(self.announce.map(|(_, at)| at)).min()
    }

    /// Fires whatever is due: announcements, requests, revalidations, give-ups and expiries.
    /// Calling it early is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        if matches!(self.announce, Some((_, at)) if now >= at) {
            self.send_announcement(now);
        }
        let Neighbors {
            config,
            mac: our_mac,
            ip: our_ip,
            entries,
            transmits,
            held,
            events,
            stats,
            ..
        } = self;
        let request = |dst: MacAddr, target: Ipv4Addr| Transmit::Arp {
            dst,
            packet: ArpPacket {
                operation: Operation::Request,
                sender_mac: *our_mac,
                sender_ip: *our_ip,
                target_mac: MacAddr::UNSPECIFIED,
                target_ip: target,
            },
        };
        entries.retain(|&ip, state| match state {
            State::Incomplete {
                requests,
                next,
                queue,
                failures,
            } => {
                if now < *next {
                    return true;
                }
                if *requests < config.max_requests {
                    *requests += 1;
                    *next = now + config.retrans_time;
                    transmits.push_back(request(MacAddr::BROADCAST, ip));
                    stats.requests_sent += 1;
                    return true;
                }
                // RFC 1122 §2.3.2.2: datagrams queued for an address that cannot be resolved
                // are discarded; the event lets the stack fail their connections at once.
                for _ in queue.drain(..) {
                    stats.count_drop(DropReason::ResolutionFailed);
                    *held = held.saturating_sub(1);
                }
                stats.failed += 1;
                if events.len() < config.max_events {
                    events.push_back(Event::Unreachable(ip));
                } else {
                    stats.events_dropped += 1;
                }
                let failures = failures.saturating_add(1);
                let retry_at = now + backoff(config, failures);
                *state = State::Failed {
                    failures,
                    retry_at,
                    forget_at: retry_at + config.reachable_time,
                };
                true
            }
            State::Reachable {
                mac,
                confirmed,
                used,
                probes,
                next_probe,
            } => {
                if now >= *confirmed + config.reachable_time {
                    stats.expired += 1;
                    return false;
                }
                if *used && *probes < config.max_requests && now >= *next_probe {
                    // RFC 1122 §2.3.2.1 (2): revalidate with a unicast request to the cached
                    // address before the entry times out, so traffic never stalls on a
                    // broadcast round while the neighbour is still there.
                    *probes += 1;
                    *next_probe = now + config.retrans_time;
                    transmits.push_back(request(*mac, ip));
                    stats.refreshes_sent += 1;
                }
                true
            }
            State::Failed { forget_at, .. } => now < *forget_at,
        });
    }

    /// The next event for the stack.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// What the cache has done so far.
    pub fn stats(&self) -> &ArpStats {
        &self.stats
    }

    /// Datagrams held for resolution or waiting in `poll_transmit`; never above `queue_total`.
    pub fn held_datagrams(&self) -> usize {
        self.held
    }

    /// How many addresses the cache holds (any state); never above `max_entries`.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache holds no address.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Merges what a packet says about `ip` into an entry we already have (RFC 826's
    /// Merge_flag). `Ok(false)`: no entry, nothing learned.
    fn merge(&mut self, now: Instant, ip: Ipv4Addr, mac: MacAddr) -> Result<bool, DropReason> {
        let Some(state) = self.entries.get_mut(&ip) else {
            return Ok(false);
        };
        match state {
            State::Reachable {
                mac: known,
                confirmed,
                ..
            } => {
                if *known != mac {
                    if now < *confirmed + self.config.lock_time {
                        return Err(DropReason::Locked);
                    }
                    self.stats.updated += 1;
                } else {
                    self.stats.revalidated += 1;
                }
            }
            State::Incomplete { queue, .. } => {
                self.stats.resolved += 1;
                for datagram in queue.drain(..) {
                    self.stats.datagrams_released += 1;
                    self.transmits
                        .push_back(Transmit::Ipv4 { dst: mac, datagram });
                }
            }
            // A late answer after we gave up: the neighbour is there after all.
            State::Failed { .. } => self.stats.resolved += 1,
        }
        *state = reachable(&self.config, now, mac);
        Ok(true)
    }

    /// Creates an entry for a neighbour that asked for us.
    fn learn(&mut self, now: Instant, ip: Ipv4Addr, mac: MacAddr) -> Result<(), DropReason> {
        self.make_room()?;
        self.entries.insert(ip, reachable(&self.config, now, mac));
        self.stats.learned += 1;
        Ok(())
    }

    /// Frees one entry when the table is full: a failed one first, else the reachable one
    /// confirmed longest ago (unused ones before used ones). Resolving entries hold queued
    /// datagrams and are never evicted.
    fn make_room(&mut self) -> Result<(), DropReason> {
        if self.entries.len() < self.config.max_entries {
            return Ok(());
        }
        let victim = self
            .entries
            .iter()
            .filter_map(|(ip, state)| match state {
                State::Failed { .. } => Some(((0, None), *ip)),
                State::Reachable {
                    confirmed, used, ..
                } => Some(((1 + u8::from(*used), Some(*confirmed)), *ip)),
                State::Incomplete { .. } => None,
            })
            .min()
            .map(|(_, ip)| ip)
            .ok_or(DropReason::TableFull)?;
        self.entries.remove(&victim);
        self.stats.evicted += 1;
        Ok(())
    }

    fn enqueue(&mut self, ip: Ipv4Addr, datagram: &[u8]) -> Resolution {
        let Some(State::Incomplete { queue, .. }) = self.entries.get_mut(&ip) else {
            return self.dropped(DropReason::InvalidNextHop);
        };
        let reason = if queue.len() >= self.config.queue_per_neighbor {
            DropReason::QueueFull
        } else if self.held >= self.config.queue_total {
            DropReason::QueueTotalFull
        } else {
            queue.push_back(datagram.to_vec());
            self.held += 1;
            self.stats.datagrams_queued += 1;
            return Resolution::Queued;
        };
        self.dropped(reason)
    }

    fn deadline(&self, state: &State) -> Instant {
        match state {
            State::Incomplete { next, .. } => *next,
            State::Reachable {
                confirmed,
                used,
                probes,
                next_probe,
                ..
            } => {
                let expiry = *confirmed + self.config.reachable_time;
                if *used && *probes < self.config.max_requests {
                    expiry.min(*next_probe)
                } else {
                    expiry
                }
            }
            State::Failed { forget_at, .. } => *forget_at,
        }
    }

    fn send_request(&mut self, dst: MacAddr, target: Ipv4Addr) {
        self.transmits.push_back(Transmit::Arp {
            dst,
            packet: ArpPacket {
                operation: Operation::Request,
                sender_mac: self.mac,
                sender_ip: self.ip,
                target_mac: MacAddr::UNSPECIFIED,
                target_ip: target,
            },
        });
    }

    fn send_announcement(&mut self, now: Instant) {
        let Some((remaining, _)) = self.announce else {
            return;
        };
        self.send_request(MacAddr::BROADCAST, self.ip);
        self.stats.announcements_sent += 1;
        self.announce =
            (remaining > 1).then(|| (remaining - 1, now + self.config.announce_interval));
    }

    fn push_event(&mut self, event: Event) {
        if self.events.len() < self.config.max_events {
            self.events.push_back(event);
        } else {
            self.stats.events_dropped += 1;
        }
    }

    fn dropped(&mut self, reason: DropReason) -> Resolution {
        self.stats.count_drop(reason);
        Resolution::Dropped(reason)
    }
}

/// How long a neighbour that failed `failures` rounds in a row is left alone: `retrans_time`
/// doubled per extra failure, capped at `max_backoff`.
pub(super) fn backoff(config: &ArpConfig, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    config
        .retrans_time
        .saturating_mul(1 << doublings)
        .min(config.max_backoff)
}

/// A freshly confirmed entry: trusted for `reachable_time`, revalidated (if used) in the last
/// `max_requests` retransmission intervals before that.
fn reachable(config: &ArpConfig, now: Instant, mac: MacAddr) -> State {
    let probing = config.retrans_time.saturating_mul(config.max_requests);
    State::Reachable {
        mac,
        confirmed: now,
        used: false,
        probes: 0,
        next_probe: now + config.reachable_time.saturating_sub(probing),
    }
}
