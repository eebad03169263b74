//! IPv4: validation, demux, fragments and ICMP.
//!
//! A destination host's share of RFC 791, RFC 792 and RFC 1122: it checks each received datagram,
//! reassembles fragments, answers pings, turns ICMP errors about our TCP segments into
//! `IcmpError`s, and writes the headers of the datagrams TCP sends. It never fragments: outbound
//! datagrams carry DF, and TCP sizes its segments by path MTU discovery.

mod frag;
mod header;
mod icmp;
mod outbound;
mod stats;
#[cfg(test)]
mod tests;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::wire::ChecksumStatus;

pub use header::{HEADER_LEN, PROTOCOL_ICMP, PROTOCOL_TCP};
pub use icmp::{IcmpError, IcmpErrorKind};
pub use outbound::{WriteHeaderError, MAX_ICMP_DATAGRAM_LEN};
pub use stats::{DropReason, Ipv4Stats};

use frag::{Fragment, FragmentKey, FragmentOutcome, Reassembler, ReassemblyLimits};
use header::ReceivedHeader;
use icmp::IcmpMessage;
use outbound::Outbound;

/// How the IPv4 layer is set up; `Default` matches the addresses the `tunstack` device uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Config {
    /// Our address: the only destination we accept and the source of everything we send.
    pub local_addr: Ipv4Addr,
    /// How long a fragmented datagram may take to arrive whole (RFC 791 suggests at least 15 s).
    pub reassembly_timeout: Duration,
    /// Bytes all reassembly buffers together may hold, so fragments cannot exhaust memory.
    pub reassembly_limit_bytes: usize,
    /// How many datagrams may be reassembled at once.
    pub max_reassemblies: usize,
    /// How many ICMP datagrams (echo replies, time exceeded) may wait for `poll_transmit`; more
    /// are dropped, which also rate-limits what a ping flood can make us send.
    pub icmp_queue_len: usize,
    /// Identification of the first datagram we send; seed it randomly so identifications do not
    /// reveal how much this host has sent (RFC 6864 §4.1 permits any value for atomic datagrams).
    pub first_identification: u16,
}

impl Default for Ipv4Config {
    fn default() -> Self {
        Ipv4Config {
            local_addr: Ipv4Addr::new(10, 77, 0, 2),
            reassembly_timeout: Duration::from_secs(30),
            reassembly_limit_bytes: 256 * 1024,
            max_reassemblies: 16,
            icmp_queue_len: 8,
            first_identification: 0,
        }
    }
}

/// What to do with a received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingress<'a> {
    /// A TCP segment for us. The IP header was valid; the TCP checksum is TCP's to verify.
    /// `segment` borrows the device buffer, or the layer's buffer if it was reassembled.
    Tcp {
        /// The peer.
        src: Ipv4Addr,
        /// Our address.
        dst: Ipv4Addr,
        /// The TCP header and payload.
        segment: &'a [u8],
        /// What the device said about the checksum; a reassembled datagram is always unverified.
        checksum: ChecksumStatus,
    },
    /// An ICMP error quoting a TCP segment we sent.
    IcmpError(IcmpError),
    /// Fully handled here: an echo reply was queued or a fragment stored.
    Consumed,
    /// Discarded and counted in the stats.
    Dropped(DropReason),
}

/// The IPv4 layer of a host with one address. Sans-IO: it is handed datagrams and the time, and
/// hands back what to deliver, what to send and when to be woken.
pub struct Ipv4Layer {
    local_addr: Ipv4Addr,
    reassembler: Reassembler,
    outbound: Outbound,
    stats: Ipv4Stats,
}

/// A datagram ready for protocol dispatch: received whole or reassembled.
struct Datagram<'a> {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    payload: &'a [u8],
    checksum: ChecksumStatus,
}

impl Ipv4Layer {
    /// Creates the layer; the only allocations are the reassembly table and the ICMP queue.
    pub fn new(config: Ipv4Config) -> Self {
        Ipv4Layer {
            local_addr: config.local_addr,
            reassembler: Reassembler::new(ReassemblyLimits {
                timeout: config.reassembly_timeout,
                max_bytes: config.reassembly_limit_bytes,
                max_datagrams: config.max_reassemblies,
            }),
            outbound: Outbound::new(
                config.local_addr,
                config.first_identification,
                config.icmp_queue_len,
            ),
            stats: Ipv4Stats::default(),
        }
    }

    /// Our address.
    pub fn local_addr(&self) -> Ipv4Addr {
        self.local_addr
    }

    /// Validates one datagram read from the device and says what to do with it. Call
    /// `poll_transmit` afterwards: it may have queued a reply.
    pub fn handle_datagram<'a>(&'a mut self, now: Instant, datagram: &'a [u8]) -> Ingress<'a> {
        self.handle_datagram_with(now, datagram, ChecksumStatus::Unverified)
    }

    /// Like `handle_datagram`, passing on what the device said about the transport checksum.
    pub fn handle_datagram_with<'a>(
        &'a mut self,
        now: Instant,
        datagram: &'a [u8],
        checksum: ChecksumStatus,
    ) -> Ingress<'a> {
        self.stats.received += 1;
        self.reassembler.release_completed();
        let header = match self.accept(datagram) {
            Ok(header) => header,
            Err(reason) => return drop_counted(&mut self.stats, reason),
        };
        if !header.is_fragment() {
            let whole = Datagram {
                src: header.src,
                dst: header.dst,
                protocol: header.protocol,
                payload: header.payload(datagram),
                checksum,
            };
            return deliver(self.local_addr, &mut self.outbound, &mut self.stats, whole);
        }
        self.stats.fragments_received += 1;
        self.handle_timeout(now);
        let fragment = Fragment {
            key: FragmentKey {
                src: header.src,
                dst: header.dst,
                protocol: header.protocol,
                identification: header.identification,
            },
            offset: header.fragment_offset,
            more_fragments: header.more_fragments,
            header: header.header(datagram),
            payload: header.payload(datagram),
        };
        let outcome = self.reassembler.insert(now, &fragment);
        for _ in 0..self.reassembler.take_evictions() {
            self.stats.count_drop(DropReason::ReassemblyEvicted);
        }
        match outcome {
            FragmentOutcome::Stored => Ingress::Consumed,
            FragmentOutcome::Rejected(reason) => drop_counted(&mut self.stats, reason),
            FragmentOutcome::Completed => {
                self.stats.reassembled += 1;
                let reassembled = Datagram {
                    src: header.src,
                    dst: header.dst,
                    protocol: header.protocol,
                    payload: self.reassembler.completed(),
                    checksum: ChecksumStatus::Unverified,
                };
                deliver(
                    self.local_addr,
                    &mut self.outbound,
                    &mut self.stats,
                    reassembled,
                )
            }
        }
    }

    /// Expires fragment reassemblies whose timer ran out, queueing an ICMP time exceeded message
    /// for each one whose first fragment arrived (RFC 1122 §3.3.2).
    pub fn handle_timeout(&mut self, now: Instant) {
        let Ipv4Layer {
            reassembler,
            outbound,
            stats,
            ..
        } = self;
        reassembler.expire(now, |expired| {
            stats.count_drop(DropReason::ReassemblyTimeout);
            let Some((quoted_header, quoted_payload)) = expired.quote else {
                return;
            };
            if !icmp::may_report_about(expired.key.protocol, quoted_payload) {
                return;
            }
            match outbound.queue_time_exceeded(expired.key.src, quoted_header, quoted_payload) {
                Ok(()) => stats.time_exceeded_sent += 1,
                Err(reason) => stats.count_drop(reason),
            }
        });
    }

    /// When `handle_timeout` must next be called, if anything is waiting.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.reassembler.next_deadline()
    }

    /// Moves the next queued ICMP datagram into `buf` and returns its length. `buf` should hold
    /// `MAX_ICMP_DATAGRAM_LEN` bytes; a datagram that does not fit is discarded and counted.
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<usize> {
        loop {
            match self.outbound.pop_into(buf)? {
                Ok(len) => return Some(len),
                Err(_) => self.stats.transmit_buffer_too_small += 1,
            }
        }
    }

    /// Writes the 20-byte header of a datagram from us to `dst` carrying `payload_len` bytes of
    /// `protocol` into `buf[..20]`: DF set, TTL 64, a fresh identification, checksum filled in.
    /// Returns the header length.
    pub fn write_header(
        &mut self,
        buf: &mut [u8],
        dst: Ipv4Addr,
        protocol: u8,
        payload_len: usize,
    ) -> Result<usize, WriteHeaderError> {
        self.outbound.write_header(buf, dst, protocol, payload_len)
    }

    /// What the layer has done so far.
    pub fn stats(&self) -> &Ipv4Stats {
        &self.stats
    }

    /// Bytes currently held for fragment reassembly; never above `reassembly_limit_bytes`.
    pub fn reassembly_memory(&self) -> usize {
        self.reassembler.bytes_held()
    }

    /// Reassembly memory recomputed from the allocations, to check `reassembly_memory`.
    #[cfg(test)]
    fn reassembly_memory_recounted(&self) -> usize {
        self.reassembler.bytes_recounted()
    }

    /// Checks the header, then that the datagram is for us, from a plausible host, and of a
    /// protocol we speak.
    fn accept(&self, datagram: &[u8]) -> Result<ReceivedHeader, DropReason> {
        let header = header::parse(datagram)?;
        if header.dst != self.local_addr {
            return Err(DropReason::NotForUs);
        }
        if header::is_martian_source(header.src, self.local_addr) {
            return Err(DropReason::BadSource);
        }
        if header.protocol != PROTOCOL_TCP && header.protocol != PROTOCOL_ICMP {
            return Err(DropReason::UnsupportedProtocol);
        }
        Ok(header)
    }
}

/// Hands a whole datagram to its protocol: TCP goes up, ICMP is answered or turned into an error
/// for TCP.
fn deliver<'a>(
    local_addr: Ipv4Addr,
    outbound: &mut Outbound,
    stats: &mut Ipv4Stats,
    datagram: Datagram<'a>,
) -> Ingress<'a> {
    match datagram.protocol {
        PROTOCOL_TCP => {
            stats.delivered += 1;
            Ingress::Tcp {
                src: datagram.src,
                dst: datagram.dst,
                segment: datagram.payload,
                checksum: datagram.checksum,
            }
        }
        PROTOCOL_ICMP => match icmp::parse(datagram.payload, datagram.src, local_addr) {
            Ok(IcmpMessage::EchoRequest(request)) => {
                match outbound.queue_echo_reply(datagram.src, request) {
                    Ok(()) => {
                        stats.echo_replies += 1;
                        Ingress::Consumed
                    }
                    Err(reason) => drop_counted(stats, reason),
                }
            }
            Ok(IcmpMessage::Error(error)) => {
                stats.icmp_errors += 1;
                Ingress::IcmpError(error)
            }
            Err(reason) => drop_counted(stats, reason),
        },
        _ => drop_counted(stats, DropReason::UnsupportedProtocol),
    }
}

fn drop_counted(stats: &mut Ipv4Stats, reason: DropReason) -> Ingress<'static> {
    stats.count_drop(reason);
    Ingress::Dropped(reason)
}
