//! What the IPv4 layer sends: headers for the caller's datagrams and its own queued ICMP replies.

use std::net::Ipv4Addr;

use thiserror::Error;

use super::header::{self, OutboundHeader, HEADER_LEN, MAX_DATAGRAM_LEN, PROTOCOL_ICMP};
use super::icmp;
use super::DropReason;

/// Longest ICMP datagram we queue: one unfragmented datagram on a 1500-byte MTU link.
pub const MAX_ICMP_DATAGRAM_LEN: usize = 1500;

/// Why an outbound header could not be written; both are caller bugs, reported rather than
/// panicking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum WriteHeaderError {
    /// The buffer has room for fewer than 20 bytes.
    #[error("buffer of {0} bytes cannot hold a 20-byte IPv4 header")]
    BufferTooSmall(usize),
    /// Header plus payload would exceed the 65535-byte limit of IPv4.
    #[error("payload of {0} bytes does not fit in one IPv4 datagram")]
    PayloadTooLarge(usize),
}

/// One queued ICMP datagram, stored inline so queueing never allocates.
#[derive(Clone, Copy)]
struct Slot {
    len: usize,
    bytes: [u8; MAX_ICMP_DATAGRAM_LEN],
}

/// Writes outbound headers with unique identifications and holds a bounded queue of ICMP
/// datagrams we owe the network.
pub(crate) struct Outbound {
    local_addr: Ipv4Addr,
    next_identification: u16,
    /// A ring of `queued` datagrams starting at `head`; allocated once at construction.
    slots: Box<[Slot]>,
    head: usize,
    queued: usize,
}

impl Outbound {
    pub fn new(local_addr: Ipv4Addr, first_identification: u16, queue_len: usize) -> Self {
        let empty = Slot {
            len: 0,
            bytes: [0; MAX_ICMP_DATAGRAM_LEN],
        };
        Outbound {
            local_addr,
            next_identification: first_identification,
            slots: vec![empty; queue_len].into_boxed_slice(),
            head: 0,
            queued: 0,
        }
    }

    /// Writes the header of a datagram from us to `dst` carrying `payload_len` bytes of
    /// `protocol`; returns the header length (20).
    pub fn write_header(
        &mut self,
        buf: &mut [u8],
        dst: Ipv4Addr,
        protocol: u8,
        payload_len: usize,
    ) -> Result<usize, WriteHeaderError> {
        let buf_len = buf.len();
        let out: &mut [u8; HEADER_LEN] = buf
            .first_chunk_mut()
            .ok_or(WriteHeaderError::BufferTooSmall(buf_len))?;
        let total_len = payload_len
            .checked_add(HEADER_LEN)
            .filter(|total| *total <= MAX_DATAGRAM_LEN)
            .and_then(|total| u16::try_from(total).ok())
            .ok_or(WriteHeaderError::PayloadTooLarge(payload_len))?;
        let identification = self.next_identification;
        self.next_identification = identification.wrapping_add(1);
        header::write(
            out,
            &OutboundHeader {
                src: self.local_addr,
                dst,
                protocol,
                identification,
                total_len,
            },
        );
        Ok(HEADER_LEN)
    }

    /// Queues the echo reply to `request` (a whole ICMP echo request message) for `dst`.
    pub fn queue_echo_reply(&mut self, dst: Ipv4Addr, request: &[u8]) -> Result<(), DropReason> {
        if HEADER_LEN + request.len() > MAX_ICMP_DATAGRAM_LEN {
            return Err(DropReason::EchoTooLarge);
        }
        self.queue_icmp(dst, |out| icmp::write_echo_reply(out, request))
    }

    /// Queues a "fragment reassembly time exceeded" message to `dst` quoting fragment zero.
    pub fn queue_time_exceeded(
        &mut self,
        dst: Ipv4Addr,
        quoted_header: &[u8],
        quoted_payload: &[u8],
    ) -> Result<(), DropReason> {
        self.queue_icmp(dst, |out| {
            icmp::write_reassembly_time_exceeded(out, quoted_header, quoted_payload)
        })
    }

    /// Moves the oldest queued datagram into `buf`. A datagram that does not fit is discarded
    /// and reported as `Err(len)`, so one small buffer cannot wedge the queue.
    pub fn pop_into(&mut self, buf: &mut [u8]) -> Option<Result<usize, usize>> {
        if self.queued == 0 {
            return None;
        }
        let slot = self.slots.get(self.head)?;
        let datagram = slot.bytes.get(..slot.len)?;
        let result = match buf.get_mut(..datagram.len()) {
            Some(out) => {
                out.copy_from_slice(datagram);
                Ok(datagram.len())
            }
            None => Err(datagram.len()),
        };
        self.head = (self.head + 1) % self.slots.len();
        self.queued -= 1;
        Some(result)
    }

    /// Builds an ICMP datagram to `dst` in the next free slot; `write_message` writes the ICMP
    /// message and returns its length.
    fn queue_icmp(
        &mut self,
        dst: Ipv4Addr,
        write_message: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> Result<(), DropReason> {
        if self.queued >= self.slots.len() {
            return Err(DropReason::IcmpQueueFull);
        }
        let index = (self.head + self.queued) % self.slots.len();
        let local_addr = self.local_addr;
        let identification = self.next_identification;
        let slot = self.slots.get_mut(index).ok_or(DropReason::IcmpQueueFull)?;
        let (ip_header, message) = slot.bytes.split_at_mut(HEADER_LEN);
        let message_len = write_message(message).ok_or(DropReason::EchoTooLarge)?;
        let ip_header: &mut [u8; HEADER_LEN] = ip_header
            .first_chunk_mut()
            .ok_or(DropReason::EchoTooLarge)?;
        header::write(
            ip_header,
            &OutboundHeader {
                src: local_addr,
                dst,
                protocol: PROTOCOL_ICMP,
                identification,
                // The slot holds at most 1500 bytes, so this always fits.
                total_len: (HEADER_LEN + message_len) as u16,
            },
        );
        slot.len = HEADER_LEN + message_len;
        self.next_identification = identification.wrapping_add(1);
        self.queued += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum;

    const PEER: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 2);

    fn echo_request(data_len: usize) -> Vec<u8> {
        let mut request = vec![8, 0, 0, 0, 0, 1, 0, 1];
        request.resize(8 + data_len, 0xab);
        let [hi, lo] = checksum::checksum(&request).to_be_bytes();
        request[2] = hi;
        request[3] = lo;
        request
    }

    #[test]
    fn identifications_increment_and_wrap() {
        let mut outbound = Outbound::new(Ipv4Addr::new(10, 77, 0, 2), 0xfffe, 0);
        let mut buf = [0u8; 20];
        let mut ids = Vec::new();
        for _ in 0..3 {
            assert_eq!(outbound.write_header(&mut buf, PEER, 6, 0), Ok(20));
            ids.push(u16::from_be_bytes([buf[4], buf[5]]));
        }
        assert_eq!(ids, [0xfffe, 0xffff, 0]);
    }

    #[test]
    fn write_header_refuses_bad_sizes() {
        let mut outbound = Outbound::new(Ipv4Addr::new(10, 77, 0, 2), 0, 0);
        let mut small = [0u8; 19];
        assert_eq!(
            outbound.write_header(&mut small, PEER, 6, 0),
            Err(WriteHeaderError::BufferTooSmall(19))
        );
        let mut buf = [0u8; 20];
        assert_eq!(
            outbound.write_header(&mut buf, PEER, 6, 65516),
            Err(WriteHeaderError::PayloadTooLarge(65516))
        );
        assert_eq!(
            outbound.write_header(&mut buf, PEER, 6, usize::MAX),
            Err(WriteHeaderError::PayloadTooLarge(usize::MAX))
        );
        assert_eq!(outbound.write_header(&mut buf, PEER, 6, 65515), Ok(20));
    }

    #[test]
    fn queue_is_bounded_and_fifo() {
        let mut outbound = Outbound::new(Ipv4Addr::new(10, 77, 0, 2), 0, 2);
        assert_eq!(outbound.queue_echo_reply(PEER, &echo_request(1)), Ok(()));
        assert_eq!(outbound.queue_echo_reply(PEER, &echo_request(2)), Ok(()));
        assert_eq!(
            outbound.queue_echo_reply(PEER, &echo_request(3)),
            Err(DropReason::IcmpQueueFull)
        );
        let mut buf = [0u8; 1500];
        assert_eq!(outbound.pop_into(&mut buf), Some(Ok(29)));
        assert_eq!(outbound.queue_echo_reply(PEER, &echo_request(4)), Ok(()));
        assert_eq!(outbound.pop_into(&mut buf[..29]), Some(Err(30)));
        assert_eq!(outbound.pop_into(&mut buf), Some(Ok(32)));
        assert_eq!(outbound.pop_into(&mut buf), None);
    }

    #[test]
    fn echo_replies_fit_one_1500_byte_datagram() {
        let mut outbound = Outbound::new(Ipv4Addr::new(10, 77, 0, 2), 0, 2);
        assert_eq!(outbound.queue_echo_reply(PEER, &echo_request(1472)), Ok(()));
        assert_eq!(
            outbound.queue_echo_reply(PEER, &echo_request(1473)),
            Err(DropReason::EchoTooLarge)
        );
        let mut buf = [0u8; 1500];
        assert_eq!(outbound.pop_into(&mut buf), Some(Ok(1500)));
        assert_eq!(checksum::checksum(&buf[..20]), 0);
        assert_eq!(checksum::checksum(&buf[20..]), 0);
    }

    #[test]
    fn zero_length_queue_refuses_everything() {
        let mut outbound = Outbound::new(Ipv4Addr::new(10, 77, 0, 2), 0, 0);
        assert_eq!(
            outbound.queue_echo_reply(PEER, &echo_request(1)),
            Err(DropReason::IcmpQueueFull)
        );
        assert_eq!(outbound.pop_into(&mut [0u8; 1500]), None);
    }
}
