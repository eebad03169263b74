//! Ethernet II: the link layer of TAP mode.
//!
//! A host's share of IEEE 802.3 and RFC 894: it accepts frames addressed to our MAC, to the
//! broadcast address or to a group we joined, hands IPv4 datagrams (trimmed of link padding)
//! and ARP packets up, and drops everything else with a counted reason. On the way out it
//! writes the header and pads short frames to 60 bytes. Sans-IO and clock-free: bytes in,
//! classified slices out. It never interprets IPv4 beyond the total length it trims to.

mod frame;
mod mac;

use etherparse::EtherType;
use thiserror::Error;

pub use frame::{pad, EmitError, EthernetRepr, ParseError, HEADER_LEN, MIN_FRAME_LEN};
pub use mac::{MacAddr, ParseMacError};

/// What to do with a received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingress<'a> {
    /// An IPv4 datagram for the IPv4 layer, cut to its total length when the frame carried
    /// padding after it.
    Ipv4 {
        /// The sending station (not necessarily the datagram's source host: it may be a router).
        src: MacAddr,
        /// The datagram.
        datagram: &'a [u8],
    },
    /// An ARP packet for the neighbour cache; any padding after its 28 bytes is left on.
    Arp {
        /// The sending station.
        src: MacAddr,
        /// The ARP packet.
        packet: &'a [u8],
    },
    /// Discarded and counted in the stats.
    Dropped(DropReason),
}

/// Why the Ethernet layer refused a frame, so drops can be counted and explained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum DropReason {
    /// Fewer than 14 bytes.
    #[error("shorter than an Ethernet header")]
    Truncated,
    /// Addressed to another station or to a group we did not join; a bridge or a promiscuous
    /// TAP delivers these and a host ignores them.
    #[error("not addressed to us")]
    NotForUs,
    /// The source is a group address, which no station can be (IEEE 802.3 §3.2.3); such frames
    /// are forged or corrupt.
    #[error("group source address")]
    BadSource,
    /// Our own MAC as the source: a frame looped back by a bridge or a reflecting peer.
    #[error("our own frame looped back")]
    LoopedBack,
    /// An IEEE 802.3 length-framed (LLC) frame, such as a spanning tree BPDU.
    #[error("802.3 length-framed (LLC) frame")]
    LengthFramed,
    /// An IPv6 frame; this stack does not speak IPv6, and the kernel sends some unprompted
    /// (router solicitations, MLD reports), so they are counted apart as expected noise.
    #[error("IPv6 frame")]
    Ipv6,
    /// A VLAN-tagged frame (802.1Q or 802.1ad); the stack sits on one untagged segment.
    #[error("VLAN-tagged frame")]
    VlanTagged,
    /// Any other ethertype (LLDP, wake-on-LAN, ...).
    #[error("unknown ethertype")]
    UnknownEtherType,
    // New reasons go last, and into `ALL`; the assertion below checks `COUNT` follows.
}

const _: () = assert!(DropReason::UnknownEtherType as usize + 1 == DropReason::COUNT);

impl DropReason {
    /// How many reasons there are, to size the per-reason counters.
    pub const COUNT: usize = 8;

    /// Every reason, in counter order, so callers can report all counters.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Truncated,
        DropReason::NotForUs,
        DropReason::BadSource,
        DropReason::LoopedBack,
        DropReason::LengthFramed,
        DropReason::Ipv6,
        DropReason::VlanTagged,
        DropReason::UnknownEtherType,
    ];
}

/// Counters of the Ethernet layer, for diagnostics and for tests that check a path was taken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EthernetStats {
    /// Frames handed to `handle_frame`.
    pub received: u64,
    /// IPv4 datagrams handed up.
    pub ipv4: u64,
    /// IPv4 datagrams that arrived with link padding after them, which was cut off.
    pub padding_trimmed: u64,
    /// ARP packets handed up.
    pub arp: u64,
    dropped: [u64; DropReason::COUNT],
}

impl EthernetStats {
    /// How many frames were dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped
            .get(reason as usize)
            .copied()
            .unwrap_or_default()
    }

    /// How many frames were dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    fn count_drop(&mut self, reason: DropReason) {
        if let Some(counter) = self.dropped.get_mut(reason as usize) {
            *counter += 1;
        }
    }
}

/// The receive filter and demux of one Ethernet interface: our MAC plus the groups we joined.
#[derive(Debug, Clone)]
pub struct EthernetLayer {
    mac: MacAddr,
    groups: Vec<MacAddr>,
    stats: EthernetStats,
}

impl EthernetLayer {
    /// A layer for the station `mac`, member of no group yet (broadcast is always received).
    pub fn new(mac: MacAddr) -> Self {
        EthernetLayer {
            mac,
            groups: Vec::new(),
            stats: EthernetStats::default(),
        }
    }

    /// Our MAC: the source of every frame we send.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// Receives frames sent to `group` from now on (for IPv4 multicast, see
    /// [`MacAddr::ipv4_multicast`]). Joining twice is harmless; a unicast address is ignored,
    /// since only our own MAC may be a unicast destination.
    pub fn join(&mut self, group: MacAddr) {
        if group.is_multicast() && !group.is_broadcast() && !self.groups.contains(&group) {
            self.groups.push(group);
        }
    }

    /// Stops receiving frames sent to `group`.
    pub fn leave(&mut self, group: MacAddr) {
        self.groups.retain(|joined| *joined != group);
    }

    /// Whether a frame sent to `dst` is for this station.
    pub fn accepts(&self, dst: MacAddr) -> bool {
        dst == self.mac || dst.is_broadcast() || self.groups.contains(&dst)
    }

    /// Classifies one frame read from the device (without FCS).
    pub fn handle_frame<'a>(&mut self, frame: &'a [u8]) -> Ingress<'a> {
        self.stats.received += 1;
        match self.classify(frame) {
            Ok(ingress) => ingress,
            Err(reason) => {
                self.stats.count_drop(reason);
                Ingress::Dropped(reason)
            }
        }
    }

    /// Writes the header of a frame from us to `dst` into `buf[..14]`; the caller writes the
    /// payload after it and calls [`pad`] with the frame's length.
    pub fn write_header(
        &self,
        buf: &mut [u8],
        dst: MacAddr,
        ethertype: EtherType,
    ) -> Result<usize, EmitError> {
        EthernetRepr {
            dst,
            src: self.mac,
            ethertype,
        }
        .emit_header(buf)
    }

    /// What the layer has done so far.
    pub fn stats(&self) -> &EthernetStats {
        &self.stats
    }

    fn classify<'a>(&mut self, frame: &'a [u8]) -> Result<Ingress<'a>, DropReason> {
        let (repr, payload) = EthernetRepr::parse(frame).map_err(|error| match error {
            ParseError::Truncated => DropReason::Truncated,
            ParseError::LengthFramed => DropReason::LengthFramed,
        })?;
        if !self.accepts(repr.dst) {
            return Err(DropReason::NotForUs);
        }
        if repr.src.is_multicast() {
            return Err(DropReason::BadSource);
        }
        if repr.src == self.mac {
            return Err(DropReason::LoopedBack);
        }
        match repr.ethertype {
            EtherType::IPV4 => {
                let datagram = trim_ipv4_padding(payload);
                if datagram.len() < payload.len() {
                    self.stats.padding_trimmed += 1;
                }
                self.stats.ipv4 += 1;
                Ok(Ingress::Ipv4 {
                    src: repr.src,
                    datagram,
                })
            }
            EtherType::ARP => {
                self.stats.arp += 1;
                Ok(Ingress::Arp {
                    src: repr.src,
                    packet: payload,
                })
            }
            EtherType::IPV6 => Err(DropReason::Ipv6),
            EtherType::VLAN_TAGGED_FRAME
            | EtherType::PROVIDER_BRIDGING
            | EtherType::VLAN_DOUBLE_TAGGED_FRAME => Err(DropReason::VlanTagged),
            _ => Err(DropReason::UnknownEtherType),
        }
    }
}

/// Cuts link padding off an IPv4 datagram: a frame carrying fewer than 46 bytes of payload is
/// padded, and the IPv4 total length says where the datagram ends. The IPv4 layer ignores
/// bytes past the total length too, but trimming here means everything above (traces, pcap,
/// checksum of the whole datagram) sees exactly the datagram. A total length that is not
/// plausible is left for the IPv4 layer to judge and count.
fn trim_ipv4_padding(payload: &[u8]) -> &[u8] {
    let Some(&[version_ihl, _, len_hi, len_lo]) = payload.first_chunk::<4>() else {
        return payload;
    };
    let total_len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
    if version_ihl >> 4 != 4 || total_len < 20 {
        return payload;
    }
    payload.get(..total_len).unwrap_or(payload)
}

#[cfg(test)]
mod tests;
