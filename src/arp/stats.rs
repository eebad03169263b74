//! Why ARP packets or datagrams were dropped, and counters of what the neighbour cache did.

use thiserror::Error;

use super::ArpParseError;

/// Why an ARP packet was ignored or a datagram waiting for resolution was dropped, so both
/// can be counted and explained instead of vanishing silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum DropReason {
    /// Fewer than 28 bytes.
    #[error("shorter than an Ethernet/IPv4 ARP packet")]
    Truncated,
    /// Not Ethernet hardware addresses (RFC 826: "Do I have the hardware type?").
    #[error("ARP for a hardware type other than Ethernet")]
    UnsupportedHardware,
    /// Not IPv4 protocol addresses ("Do I speak the protocol?").
    #[error("ARP for a protocol other than IPv4")]
    UnsupportedProtocol,
    /// Neither request nor reply.
    #[error("ARP opcode other than request or reply")]
    UnknownOperation,
    /// A sender MAC that is a group or zero, or a sender IP that no single host can have
    /// (broadcast, multicast, loopback): learning it would let anyone redirect our traffic.
    #[error("impossible ARP sender")]
    BadSender,
    /// Our own MAC as sender: our announcement or request reflected back to us.
    #[error("our own ARP packet looped back")]
    LoopedBack,
    /// Another station claims our IPv4 address (RFC 5227 §2.4); nothing is learned from it.
    #[error("another station claims our address")]
    AddressConflict,
    /// A request or announcement about another address, from a host we have no entry for:
    /// RFC 826's merge rule learns nothing from it.
    #[error("ARP request for another host")]
    NotForUs,
    /// A reply about an address we never asked about. RFC 826 would learn it when it targets
    /// us; we do not, because an unsolicited reply is the classic cache-poisoning move.
    #[error("unsolicited ARP reply")]
    Unsolicited,
    /// A different MAC for an entry confirmed less than `lock_time` ago: when a proxy and the
    /// host both answer, the first answer wins (Linux `locktime`).
    #[error("ARP update within the lock time")]
    Locked,
    /// The queue of replies we owe is full: a request flood cannot make us buffer more.
    #[error("ARP reply queue full")]
    ReplyQueueFull,
    /// A datagram for a neighbour whose queue already holds `queue_per_neighbor` datagrams.
    #[error("neighbour's resolution queue full")]
    QueueFull,
    /// A datagram while all neighbours together hold `queue_total` datagrams.
    #[error("resolution queues full")]
    QueueTotalFull,
    /// No room for a new neighbour: the table holds `max_entries`, all resolving.
    #[error("neighbour table full")]
    TableFull,
    /// A datagram that waited for a neighbour that never answered: dropped when its
    /// resolution gave up.
    #[error("no ARP reply")]
    ResolutionFailed,
    /// A datagram for a neighbour that failed to answer recently: dropped at once, without
    /// asking again until the failure's back-off has passed (RFC 1122 §2.3.2.1: no ARP floods).
    #[error("neighbour unreachable")]
    Unreachable,
    /// A next hop that cannot be resolved: unspecified, loopback or our own address.
    #[error("invalid next hop")]
    InvalidNextHop,
    // New reasons go last, and into `ALL`; the assertion below checks `COUNT` follows.
}

const _: () = assert!(DropReason::InvalidNextHop as usize + 1 == DropReason::COUNT);

impl DropReason {
    /// How many reasons there are, to size the per-reason counters.
    pub const COUNT: usize = 17;

    /// Every reason, in counter order, so callers can report all counters.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Truncated,
        DropReason::UnsupportedHardware,
        DropReason::UnsupportedProtocol,
        DropReason::UnknownOperation,
        DropReason::BadSender,
        DropReason::LoopedBack,
        DropReason::AddressConflict,
        DropReason::NotForUs,
        DropReason::Unsolicited,
        DropReason::Locked,
        DropReason::ReplyQueueFull,
        DropReason::QueueFull,
        DropReason::QueueTotalFull,
        DropReason::TableFull,
        DropReason::ResolutionFailed,
        DropReason::Unreachable,
        DropReason::InvalidNextHop,
    ];

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl From<ArpParseError> for DropReason {
    fn from(error: ArpParseError) -> Self {
        match error {
            ArpParseError::Truncated => DropReason::Truncated,
            ArpParseError::UnsupportedHardware => DropReason::UnsupportedHardware,
            ArpParseError::UnsupportedProtocol => DropReason::UnsupportedProtocol,
            ArpParseError::UnknownOperation => DropReason::UnknownOperation,
        }
    }
}

/// Counters of the neighbour cache, for diagnostics and for tests that check a path was taken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArpStats {
    /// ARP requests received.
    pub requests_received: u64,
    /// ARP replies received.
    pub replies_received: u64,
    /// Broadcast requests sent to resolve an address.
    pub requests_sent: u64,
    /// Unicast requests sent to revalidate an entry in use before it expires.
    pub refreshes_sent: u64,
    /// Replies sent to requests for our address.
    pub replies_sent: u64,
    /// Gratuitous announcements of our own mapping sent.
    pub announcements_sent: u64,
    /// Resolutions completed (incomplete or failed entry answered).
    pub resolved: u64,
    /// Entries confirmed again before they expired.
    pub revalidated: u64,
    /// Entries whose MAC changed (RFC 826 merge with a new address).
    pub updated: u64,
    /// Entries created from a request for our address.
    pub learned: u64,
    /// Entries that expired unconfirmed.
    pub expired: u64,
    /// Resolutions that gave up after every request went unanswered.
    pub failed: u64,
    /// Entries removed to make room for a new neighbour.
    pub evicted: u64,
    /// Datagrams queued while their neighbour was resolved.
    pub datagrams_queued: u64,
    /// Queued datagrams handed back with their neighbour's MAC.
    pub datagrams_released: u64,
    /// Events discarded because the application did not drain `poll_event`.
    pub events_dropped: u64,
    dropped: [u64; DropReason::COUNT],
}

impl ArpStats {
    /// How many packets or datagrams were dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped
            .get(reason.index())
            .copied()
            .unwrap_or_default()
    }

    /// How many were dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    pub(crate) fn count_drop(&mut self, reason: DropReason) {
        if let Some(counter) = self.dropped.get_mut(reason.index()) {
            *counter += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_reason_at_its_own_index() {
        for (position, reason) in DropReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), position, "{reason:?}");
        }
    }

    #[test]
    fn drops_are_counted_per_reason() {
        let mut stats = ArpStats::default();
        stats.count_drop(DropReason::Unsolicited);
        stats.count_drop(DropReason::Unsolicited);
        stats.count_drop(DropReason::QueueFull);
        assert_eq!(stats.dropped(DropReason::Unsolicited), 2);
        assert_eq!(stats.dropped(DropReason::QueueFull), 1);
        assert_eq!(stats.dropped(DropReason::Locked), 0);
        assert_eq!(stats.dropped_total(), 3);
    }
}
