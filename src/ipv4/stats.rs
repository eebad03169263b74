//! Why datagrams were dropped, and counters of what the IPv4 layer did.

use thiserror::Error;

/// Why the IPv4 layer refused a datagram, so drops can be counted and explained instead of
/// vanishing silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum DropReason {
    /// Fewer bytes than a minimal 20-byte IPv4 header.
    #[error("shorter than an IPv4 header")]
    Truncated,
    /// The version field is neither 4 nor 6.
    #[error("not an IP version 4 datagram")]
    BadVersion,
    /// An IPv6 datagram; this stack does not speak IPv6, and the kernel sends some unprompted.
    #[error("IPv6 datagram")]
    Ipv6,
    /// The header length field is below 5 words or longer than the bytes read.
    #[error("bad IPv4 header length")]
    BadHeaderLength,
    /// The total length field is shorter than the header or longer than the bytes read.
    #[error("bad IPv4 total length")]
    BadTotalLength,
    /// The IPv4 header checksum does not verify.
    #[error("bad IPv4 header checksum")]
    BadChecksum,
    /// The destination is not our address (a host never forwards).
    #[error("not addressed to us")]
    NotForUs,
    /// The source cannot be a single remote host (RFC 1122 §3.2.1.3): unspecified, broadcast,
    /// multicast, loopback or our own address.
    #[error("martian source address")]
    BadSource,
    /// Neither TCP nor ICMP.
    #[error("unsupported protocol")]
    UnsupportedProtocol,
    /// A fragment that is empty, not a multiple of 8 bytes although more follow, or that
    /// contradicts the datagram length set by the last fragment; its reassembly is discarded.
    #[error("malformed fragment")]
    FragmentInvalid,
    /// A fragment that repeats one already held, byte range for byte range (networks duplicate
    /// datagrams); the reassembly carries on.
    #[error("duplicate fragment")]
    FragmentDuplicate,
    /// A fragment that partly overlaps one already held; the whole reassembly is discarded
    /// because overlaps are how fragment attacks smuggle data past filters.
    #[error("overlapping fragment")]
    FragmentOverlap,
    /// Fragments that would reassemble into more than 65535 bytes.
    #[error("reassembled datagram would exceed 65535 bytes")]
    OversizedDatagram,
    /// Reassembly memory, the number of concurrent reassemblies, or the number of fragments in
    /// one datagram is at its limit.
    #[error("fragment reassembly limit reached")]
    ReassemblyLimit,
    /// A reassembly did not complete in time; counted once per discarded datagram.
    #[error("fragment reassembly timed out")]
    ReassemblyTimeout,
    /// An ICMP message too short for its type, or an error quoting no usable IPv4 header.
    #[error("malformed ICMP message")]
    IcmpMalformed,
    /// The ICMP checksum does not verify.
    #[error("bad ICMP checksum")]
    IcmpBadChecksum,
    /// An ICMP error quoting a datagram that is not a TCP segment we sent.
    #[error("ICMP error not about our TCP traffic")]
    IcmpNotOurs,
    /// An ICMP type this host does not act on (echo reply, redirect, timestamp, ...).
    #[error("unhandled ICMP type")]
    IcmpUnhandled,
    /// An echo request whose reply would not fit in one unfragmented 1500-byte datagram.
    #[error("echo request too large to answer")]
    EchoTooLarge,
    /// The queue of ICMP datagrams we owe (echo replies, time exceeded) is full.
    #[error("outbound ICMP queue full")]
    IcmpQueueFull,
    /// A reassembly discarded, unfinished, to make room for a newer datagram when the table or
    /// its memory was full; counted once per discarded datagram. Evicting the oldest keeps a
    /// burst of never-completed fragments from shutting out every later datagram until it times
    /// out (Linux evicts the same way).
    #[error("fragment reassembly evicted for a newer datagram")]
    ReassemblyEvicted,
    // New reasons go last, and into `ALL`; the assertion below checks `COUNT` follows.
}

const _: () = assert!(DropReason::ReassemblyEvicted as usize + 1 == DropReason::COUNT);

impl DropReason {
    /// How many reasons there are, to size the per-reason counters.
    pub const COUNT: usize = 22;

    /// Every reason, in counter order, so callers can report all counters.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Truncated,
        DropReason::BadVersion,
        DropReason::Ipv6,
        DropReason::BadHeaderLength,
        DropReason::BadTotalLength,
        DropReason::BadChecksum,
        DropReason::NotForUs,
        DropReason::BadSource,
        DropReason::UnsupportedProtocol,
        DropReason::FragmentInvalid,
        DropReason::FragmentDuplicate,
        DropReason::FragmentOverlap,
        DropReason::OversizedDatagram,
        DropReason::ReassemblyLimit,
        DropReason::ReassemblyTimeout,
        DropReason::IcmpMalformed,
        DropReason::IcmpBadChecksum,
        DropReason::IcmpNotOurs,
        DropReason::IcmpUnhandled,
        DropReason::EchoTooLarge,
        DropReason::IcmpQueueFull,
        DropReason::ReassemblyEvicted,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// Counters of the IPv4 layer, for diagnostics and for tests that check a path was taken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ipv4Stats {
    /// Datagrams handed to `handle_datagram`.
    pub received: u64,
    /// TCP segments delivered to the caller.
    pub delivered: u64,
    /// ICMP errors about our TCP traffic delivered to the caller.
    pub icmp_errors: u64,
    /// Echo replies queued for transmission.
    pub echo_replies: u64,
    /// ICMP time exceeded messages queued after a reassembly timed out (RFC 1122 §3.3.2).
    pub time_exceeded_sent: u64,
    /// Valid fragments received (before reassembly).
    pub fragments_received: u64,
    /// Datagrams completed by reassembly.
    pub reassembled: u64,
    /// Queued ICMP datagrams discarded because `poll_transmit` was given a buffer too small.
    pub transmit_buffer_too_small: u64,
    dropped: [u64; DropReason::COUNT],
}

impl Ipv4Stats {
    /// How many datagrams (or reassemblies, for timeouts) were dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped
            .get(reason.index())
            .copied()
            .unwrap_or_default()
    }

    /// How many datagrams were dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// How many IPv6 datagrams were dropped; kept apart because they are expected noise.
    pub fn ipv6_dropped(&self) -> u64 {
        self.dropped(DropReason::Ipv6)
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
        let mut stats = Ipv4Stats::default();
        stats.count_drop(DropReason::Ipv6);
        stats.count_drop(DropReason::Ipv6);
        stats.count_drop(DropReason::BadChecksum);
        assert_eq!(stats.ipv6_dropped(), 2);
        assert_eq!(stats.dropped(DropReason::BadChecksum), 1);
        assert_eq!(stats.dropped(DropReason::NotForUs), 0);
        assert_eq!(stats.dropped_total(), 3);
    }
}
