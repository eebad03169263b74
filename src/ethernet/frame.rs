//! Ethernet II framing (IEEE 802.3 with a type field, RFC 894): parse and emit via etherparse.

use etherparse::{EtherType, Ethernet2Header, Ethernet2Slice};
use thiserror::Error;

use super::MacAddr;

/// Length of the Ethernet II header: destination, source, ethertype.
pub const HEADER_LEN: usize = Ethernet2Header::LEN;
/// Shortest frame on the wire, without the 4-byte FCS (IEEE 802.3 §4.2.3.3): shorter payloads
/// are padded, so a received 60-byte frame may carry a 40-byte TCP/IPv4 datagram plus padding.
pub const MIN_FRAME_LEN: usize = 60;
/// Type fields below this are 802.3 length fields (LLC frames such as STP), not ethertypes.
const MIN_ETHERTYPE: u16 = 0x0600;

/// The header of an Ethernet II frame, parsed or to be written. `parse` and `emit` are exact
/// inverses on the header bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetRepr {
    /// Where the frame goes: one station, broadcast or a group.
    pub dst: MacAddr,
    /// Who sent it; always one station.
    pub src: MacAddr,
    /// What the payload is (IPv4 0x0800, ARP 0x0806, ...).
    pub ethertype: EtherType,
}

/// Why bytes are not an Ethernet II frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ParseError {
    /// Fewer than 14 bytes.
    #[error("shorter than an Ethernet header")]
    Truncated,
    /// The type field is an IEEE 802.3 length (below 0x0600): an LLC frame, not Ethernet II.
    #[error("802.3 length-framed (LLC) frame")]
    LengthFramed,
}

/// Why a frame could not be written; both are caller bugs, reported rather than panicking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum EmitError {
    /// The buffer cannot hold the header, the payload and the padding to 60 bytes.
    #[error("buffer of {have} bytes cannot hold a {need}-byte frame")]
    BufferTooSmall {
        /// Bytes in the buffer.
        have: usize,
        /// Bytes the frame needs.
        need: usize,
    },
}

impl EthernetRepr {
    /// Splits a received frame (no FCS: TAP devices strip it) into its header and payload.
    /// The payload still holds any link padding; the layer above trims it.
    pub fn parse(frame: &[u8]) -> Result<(EthernetRepr, &[u8]), ParseError> {
        let slice =
            Ethernet2Slice::from_slice_without_fcs(frame).map_err(|_| ParseError::Truncated)?;
        let ethertype = slice.ether_type();
        if ethertype.0 < MIN_ETHERTYPE {
            return Err(ParseError::LengthFramed);
        }
        let repr = EthernetRepr {
            dst: MacAddr(slice.destination()),
            src: MacAddr(slice.source()),
            ethertype,
        };
        Ok((repr, slice.payload_slice()))
    }

    /// Writes the 14-byte header into `buf[..14]`; the caller puts the payload after it and
    /// calls [`pad`]. Returns the header length.
    pub fn emit_header(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let have = buf.len();
        let out = buf.get_mut(..HEADER_LEN).ok_or(EmitError::BufferTooSmall {
            have,
            need: HEADER_LEN,
        })?;
        let header = Ethernet2Header {
            source: self.src.0,
            destination: self.dst.0,
            ether_type: self.ethertype,
        };
        out.copy_from_slice(&header.to_bytes());
        Ok(HEADER_LEN)
    }

    /// Writes a whole frame, header then `payload`, padded to 60 bytes; returns its length.
    pub fn emit(&self, buf: &mut [u8], payload: &[u8]) -> Result<usize, EmitError> {
        let len = HEADER_LEN + payload.len();
        let have = buf.len();
        let need = len.max(MIN_FRAME_LEN);
        if have < need {
            return Err(EmitError::BufferTooSmall { have, need });
        }
        self.emit_header(buf)?;
        buf.get_mut(HEADER_LEN..len)
            .ok_or(EmitError::BufferTooSmall { have, need })?
            .copy_from_slice(payload);
        pad(buf, len)
    }
}

/// Zero-fills `buf[frame_len..60]` when a frame is shorter than Ethernet's minimum, so the
/// padding never leaks old buffer contents (the "Etherleak" bug), and returns the length to
/// send: `max(frame_len, 60)`.
pub fn pad(buf: &mut [u8], frame_len: usize) -> Result<usize, EmitError> {
    if frame_len >= MIN_FRAME_LEN {
        return Ok(frame_len);
    }
    let have = buf.len();
    buf.get_mut(frame_len..MIN_FRAME_LEN)
        .ok_or(EmitError::BufferTooSmall {
            have,
            need: MIN_FRAME_LEN,
        })?
        .fill(0);
    Ok(MIN_FRAME_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ARP request (who has 10.77.0.2? tell 10.77.0.1) laid out as Linux sends one on a
    /// bridge or TAP: 42 bytes, unpadded, because such frames never cross a physical wire.
    const KERNEL_ARP_REQUEST: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x6a, 0x3d, 0x95, 0x1c, 0x40, 0x07, 0x08, 0x06, //
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x6a, 0x3d, 0x95, 0x1c, 0x40, 0x07, 0x0a,
        0x4d, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x4d, 0x00, 0x02,
    ];

    fn request_repr() -> EthernetRepr {
        EthernetRepr {
            dst: MacAddr::BROADCAST,
            src: MacAddr([0x6a, 0x3d, 0x95, 0x1c, 0x40, 0x07]),
            ethertype: EtherType::ARP,
        }
    }

    #[test]
    fn parse_captured_frame() {
        let (repr, payload) = EthernetRepr::parse(&KERNEL_ARP_REQUEST).expect("valid frame");
        assert_eq!(repr, request_repr());
        assert_eq!(payload, &KERNEL_ARP_REQUEST[14..]);
    }

    #[test]
    fn emit_pads_to_60_bytes_over_junk() {
        let mut buf = [0xa5u8; 64];
        let len = request_repr()
            .emit(&mut buf, &KERNEL_ARP_REQUEST[14..])
            .expect("fits");
        assert_eq!(len, 60);
        assert_eq!(&buf[..42], &KERNEL_ARP_REQUEST[..]);
        assert!(buf[42..60].iter().all(|&b| b == 0), "padding is zeroed");
        assert_eq!(buf[60], 0xa5, "nothing written past the frame");
        // The padded frame parses back to the same header.
        let (repr, payload) = EthernetRepr::parse(&buf[..len]).expect("valid frame");
        assert_eq!(repr, request_repr());
        assert_eq!(&payload[..28], &KERNEL_ARP_REQUEST[14..]);
    }

    #[test]
    fn long_frames_are_not_padded() {
        let payload = [7u8; 100];
        let mut buf = [0u8; 200];
        assert_eq!(request_repr().emit(&mut buf, &payload), Ok(114));
        assert_eq!(pad(&mut buf, 60), Ok(60));
        assert_eq!(pad(&mut buf, 61), Ok(61));
    }

    #[test]
    fn short_input_and_buffers() {
        assert_eq!(
            EthernetRepr::parse(&KERNEL_ARP_REQUEST[..13]),
            Err(ParseError::Truncated)
        );
        let (_, empty) = EthernetRepr::parse(&KERNEL_ARP_REQUEST[..14]).expect("header only");
        assert!(empty.is_empty());
        let mut small = [0u8; 59];
        assert_eq!(
            request_repr().emit(&mut small, &[1, 2, 3]),
            Err(EmitError::BufferTooSmall { have: 59, need: 60 })
        );
        assert_eq!(
            request_repr().emit_header(&mut small[..13]),
            Err(EmitError::BufferTooSmall { have: 13, need: 14 })
        );
        assert_eq!(
            pad(&mut small, 20),
            Err(EmitError::BufferTooSmall { have: 59, need: 60 })
        );
    }

    #[test]
    fn length_framed_llc_is_refused() {
        let mut stp = KERNEL_ARP_REQUEST;
        stp[12] = 0x00;
        stp[13] = 0x26; // an 802.3 length of 38
        assert_eq!(EthernetRepr::parse(&stp), Err(ParseError::LengthFramed));
        stp[12] = 0x06;
        stp[13] = 0x00;
        assert!(EthernetRepr::parse(&stp).is_ok());
    }
}
