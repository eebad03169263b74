//! TCP segments: a small parsed representation over etherparse, and its exact inverse, `emit`.

use std::net::Ipv4Addr;

use etherparse::TcpHeaderSlice;
use thiserror::Error;

use super::checksum;
use super::seq::SeqNum;
use super::ChecksumStatus;

/// IANA protocol number of TCP in the IPv4 header.
pub const PROTOCOL: u8 = 6;
/// Length of a TCP header without options.
pub const HEADER_LEN: usize = 20;
/// The most option bytes a TCP header can carry (data offset is 4 bits of 32-bit words).
pub const MAX_OPTIONS_LEN: usize = 40;
/// How many SACK blocks we keep in a representation; with timestamps only 3 fit in a segment.
pub const MAX_SACK_BLOCKS: usize = 4;

/// The one control function a segment carries, so illegal flag combinations cannot be built.
///
/// ACK is not here: it is `TcpRepr::ack`. PSH only survives parsing on plain data segments; it
/// has no meaning to this stack beyond being echoed for the peer's benefit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    None,
    Psh,
    Syn,
    Fin,
    Rst,
}

/// RFC 7323 timestamps option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamps {
    /// TSval: the sender's clock.
    pub value: u32,
    /// TSecr: the latest TSval the sender received from us.
    pub echo: u32,
}

/// One SACK block (RFC 2018): `[left, right)` received out of order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SackBlock {
    pub left: SeqNum,
    pub right: SeqNum,
}

/// The options this stack understands; unknown ones are skipped on parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpOptions {
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    pub timestamps: Option<Timestamps>,
    pub sack_blocks: [Option<SackBlock>; MAX_SACK_BLOCKS],
}

impl TcpOptions {
    /// The SACK blocks present, in the order they were received or will be sent.
    pub fn sack_blocks(&self) -> impl Iterator<Item = SackBlock> + '_ {
        self.sack_blocks.iter().flatten().copied()
    }

    /// Bytes these options take on the wire, padded to a multiple of 4.
    pub fn wire_len(&self) -> usize {
        let mut len = 0;
        if self.mss.is_some() {
            len += 4;
        }
        if self.sack_permitted || self.timestamps.is_some() {
            // SACK-permitted (2) + timestamps (10) share one 12-byte slot, padded with NOPs.
            len += if self.timestamps.is_some() { 12 } else { 4 };
        }
        if self.window_scale.is_some() {
            len += 4;
        }
        let blocks = self.sack_blocks().count();
        if blocks > 0 {
            len += 4 + 8 * blocks;
        }
        len
    }
}

/// A parsed TCP segment, borrowing its payload from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRepr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub control: Control,
    pub seq: SeqNum,
    pub ack: Option<SeqNum>,
    pub window: u16,
    pub options: TcpOptions,
    pub payload: &'a [u8],
}

/// Why an inbound TCP segment was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TcpParseError {
    #[error("segment shorter than its header")]
    Truncated,
    #[error("bad TCP checksum")]
    BadChecksum,
    #[error("illegal combination of control flags")]
    BadFlags,
    #[error("port 0")]
    ZeroPort,
}

impl<'a> TcpRepr<'a> {
    /// Parses and validates a segment carried from `src` to `dst`; checks the checksum with the
    /// pseudo-header first, so corruption never reaches the state machine.
    pub fn parse(src: Ipv4Addr, dst: Ipv4Addr, segment: &'a [u8]) -> Result<Self, TcpParseError> {
        Self::parse_with(src, dst, segment, ChecksumStatus::Unverified)
    }

    /// Like `parse`, but skips the checksum when the device vouches for it.
    pub fn parse_with(
        src: Ipv4Addr,
        dst: Ipv4Addr,
        segment: &'a [u8],
        status: ChecksumStatus,
    ) -> Result<Self, TcpParseError> {
        if segment.len() > usize::from(u16::MAX) {
            return Err(TcpParseError::Truncated);
        }
        let header = TcpHeaderSlice::from_slice(segment).map_err(|_| TcpParseError::Truncated)?;
        if status == ChecksumStatus::Unverified {
            let sum = checksum::pseudo_header(src, dst, PROTOCOL, segment.len() as u16);
            if checksum::finish(checksum::accumulate(sum, segment)) != 0 {
                return Err(TcpParseError::BadChecksum);
            }
        }
        if header.source_port() == 0 || header.destination_port() == 0 {
            return Err(TcpParseError::ZeroPort);
        }
        let control = match (header.syn(), header.fin(), header.rst(), header.psh()) {
            (false, false, false, false) => Control::None,
            (false, false, false, true) => Control::Psh,
            (true, false, false, _) => Control::Syn,
            (false, true, false, _) => Control::Fin,
            (false, false, true, _) => Control::Rst,
            _ => return Err(TcpParseError::BadFlags),
        };
        let ack = header.ack().then(|| SeqNum(header.acknowledgment_number()));
        let options = parse_options(header.options());
        let payload = &segment[header.slice().len()..];
        Ok(TcpRepr {
            src_port: header.source_port(),
            dst_port: header.destination_port(),
            control,
            seq: SeqNum(header.sequence_number()),
            ack,
            window: header.window_size(),
            options,
            payload,
        })
    }

    /// Sequence space the segment occupies: its payload plus one for SYN and for FIN.
    pub fn segment_len(&self) -> usize {
        self.payload.len() + usize::from(matches!(self.control, Control::Syn | Control::Fin))
    }

    /// Bytes the header takes on the wire, options included.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options.wire_len().min(MAX_OPTIONS_LEN)
    }

    /// Writes the header (checksum zero) to the start of `buf` and returns its length; the caller
    /// writes `payload_len` bytes after it and calls [`fill_checksum`].
    ///
    /// Splitting header and payload lets a sender copy payload straight from its send buffer
    /// into the datagram, with no intermediate copy.
    pub fn emit_header(&self, buf: &mut [u8]) -> usize {
        let header_len = self.header_len();
        let header = &mut buf[..header_len];
        header[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        header[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        header[4..8].copy_from_slice(&self.seq.0.to_be_bytes());
        header[8..12].copy_from_slice(&self.ack.unwrap_or_default().0.to_be_bytes());
        header[12] = ((header_len / 4) as u8) << 4;
        let mut flags = 0u8;
        if self.ack.is_some() {
            flags |= 0x10;
        }
        flags |= match self.control {
            Control::None => 0,
            Control::Psh => 0x08,
            Control::Syn => 0x02,
            Control::Fin => 0x01 | 0x08,
            Control::Rst => 0x04,
        };
        header[13] = flags;
        header[14..16].copy_from_slice(&self.window.to_be_bytes());
        header[16..20].fill(0);
        emit_options(&self.options, &mut header[HEADER_LEN..]);
        header_len
    }

    /// Writes header and payload, with checksum, and returns the segment length.
    pub fn emit(&self, src: Ipv4Addr, dst: Ipv4Addr, buf: &mut [u8]) -> usize {
        let header_len = self.emit_header(buf);
        let total = header_len + self.payload.len();
        buf[header_len..total].copy_from_slice(self.payload);
        fill_checksum(src, dst, &mut buf[..total]);
        total
    }
}

/// Computes and stores the checksum of a complete segment whose checksum field is zero.
pub fn fill_checksum(src: Ipv4Addr, dst: Ipv4Addr, segment: &mut [u8]) {
    let sum = checksum::pseudo_header(src, dst, PROTOCOL, segment.len() as u16);
    let value = checksum::finish(checksum::accumulate(sum, segment));
    segment[16..18].copy_from_slice(&value.to_be_bytes());
}

/// Writes only the pseudo-header sum, not complemented, into the checksum field: what a
/// segment handed to checksum offload carries (the kernel's `CHECKSUM_PARTIAL`; the device or
/// `device::gso::split_tcp` completes it, per piece for a super-segment). Summing 64 KiB of
/// payload that the offload sums again per piece would be wasted work.
pub fn fill_partial_checksum(src: Ipv4Addr, dst: Ipv4Addr, segment: &mut [u8]) {
    let value = partial_checksum(src, dst, segment.len() as u16);
    segment[16..18].copy_from_slice(&value.to_be_bytes());
}

/// The checksum field of a `len`-byte TCP segment handed to checksum offload: the pseudo-header
/// sum, folded and not complemented (the offload adds the segment's bytes and complements).
pub fn partial_checksum(src: Ipv4Addr, dst: Ipv4Addr, len: u16) -> u16 {
    !checksum::finish(checksum::pseudo_header(src, dst, PROTOCOL, len))
}

/// Reads the options we use and steps over every other kind by its length (RFC 9293 §3.1,
/// MUST-6/MUST-7: an option we do not know, such as experimental kinds 253/254, TCP-AO or
/// MPTCP, is ignored, not the end of the list). A known kind with the wrong length is ignored
/// likewise. A length that cannot be right (below 2, or past the header) ends parsing: what
/// came before it still counts. etherparse's iterator stops at the first kind it does not
/// know, which lost the options after it, so this walks the bytes itself.
fn parse_options(bytes: &[u8]) -> TcpOptions {
    const EOL: u8 = 0;
    const NOP: u8 = 1;
    const MSS: u8 = 2;
    const WINDOW_SCALE: u8 = 3;
    const SACK_PERMITTED: u8 = 4;
    const SACK: u8 = 5;
    const TIMESTAMPS: u8 = 8;
    let mut options = TcpOptions::default();
    let mut rest = bytes;
    while let Some((&kind, after_kind)) = rest.split_first() {
        match kind {
            EOL => break,
            NOP => {
                rest = after_kind;
                continue;
            }
            _ => {}
        }
        let Some(&len) = after_kind.first() else {
            break;
        };
        let len = usize::from(len);
        if len < 2 || len > rest.len() {
            break;
        }
        let data = &rest[2..len];
        let be32 =
            |at: usize| u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
        match (kind, data.len()) {
            (MSS, 2) => options.mss = Some(u16::from_be_bytes([data[0], data[1]])),
            (WINDOW_SCALE, 1) => options.window_scale = Some(data[0]),
            (SACK_PERMITTED, 0) => options.sack_permitted = true,
            (TIMESTAMPS, 8) => {
                options.timestamps = Some(Timestamps {
                    value: be32(0),
                    echo: be32(4),
                })
            }
            (SACK, n) if n > 0 && n % 8 == 0 => {
                let blocks = (0..n / 8).map(|i| SackBlock {
                    left: SeqNum(be32(i * 8)),
                    right: SeqNum(be32(i * 8 + 4)),
                });
                options.sack_blocks = [None; MAX_SACK_BLOCKS];
                for (slot, block) in options.sack_blocks.iter_mut().zip(blocks) {
                    *slot = Some(block);
                }
            }
            _ => {}
        }
        rest = &rest[len..];
    }
    options
}

/// Writes options in the order Linux uses (MSS, SACK-permitted, timestamps, window scale, SACK)
/// so captures look familiar; blocks that do not fit in 40 bytes are left out.
fn emit_options(options: &TcpOptions, out: &mut [u8]) {
    const NOP: u8 = 1;
    let mut at = 0;
    if let Some(mss) = options.mss {
        out[at..at + 4].copy_from_slice(&[2, 4, (mss >> 8) as u8, mss as u8]);
        at += 4;
    }
    match (options.sack_permitted, options.timestamps) {
        (true, Some(ts)) => {
            out[at..at + 2].copy_from_slice(&[4, 2]);
            write_timestamps(&mut out[at + 2..at + 12], ts);
            at += 12;
        }
        (false, Some(ts)) => {
            out[at..at + 2].copy_from_slice(&[NOP, NOP]);
            write_timestamps(&mut out[at + 2..at + 12], ts);
            at += 12;
        }
        (true, None) => {
            out[at..at + 4].copy_from_slice(&[NOP, NOP, 4, 2]);
            at += 4;
        }
        (false, None) => {}
    }
    if let Some(shift) = options.window_scale {
        out[at..at + 4].copy_from_slice(&[NOP, 3, 3, shift]);
        at += 4;
    }
    let room = (out.len().saturating_sub(at + 4)) / 8;
    let blocks = options.sack_blocks().take(room).count();
    if blocks > 0 {
        out[at..at + 4].copy_from_slice(&[NOP, NOP, 5, (2 + 8 * blocks) as u8]);
        at += 4;
        for block in options.sack_blocks().take(blocks) {
            out[at..at + 4].copy_from_slice(&block.left.0.to_be_bytes());
            out[at + 4..at + 8].copy_from_slice(&block.right.0.to_be_bytes());
            at += 8;
        }
    }
}

fn write_timestamps(out: &mut [u8], ts: Timestamps) {
    out[0] = 8;
    out[1] = 10;
    out[2..6].copy_from_slice(&ts.value.to_be_bytes());
    out[6..10].copy_from_slice(&ts.echo.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 2);

    /// A SYN-ACK captured with tcpdump on tun0 in the test sandbox: Linux 6.18 at
    /// 10.77.1.2:8080 answering tunstack's SYN from 10.77.0.2:60143 (MSS 1460, SACK-permitted,
    /// timestamps, window scale 10), checksum as the kernel computed it.
    const KERNEL_SYN_ACK: [u8; 40] = [
        0x1f, 0x90, 0xea, 0xef, 0xb9, 0x95, 0x28, 0x2e, 0xaf, 0x01, 0x2c, 0xb0, 0xa0, 0x12, 0xfe,
        0x88, 0xa6, 0xd9, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0xf7, 0x6b,
        0x7f, 0xa7, 0x56, 0x20, 0xf7, 0xc3, 0x01, 0x03, 0x03, 0x0a,
    ];

    fn kernel_syn_ack_repr() -> TcpRepr<'static> {
        TcpRepr {
            src_port: 8080,
            dst_port: 60143,
            control: Control::Syn,
            seq: SeqNum(0xb995_282e),
            ack: Some(SeqNum(0xaf01_2cb0)),
            window: 65160,
            options: TcpOptions {
                mss: Some(1460),
                window_scale: Some(10),
                sack_permitted: true,
                timestamps: Some(Timestamps {
                    value: 0xf76b_7fa7,
                    echo: 0x5620_f7c3,
                }),
                sack_blocks: [None; MAX_SACK_BLOCKS],
            },
            payload: &[],
        }
    }

    fn with_checksum(mut bytes: Vec<u8>, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
        bytes[16] = 0;
        bytes[17] = 0;
        fill_checksum(src, dst, &mut bytes);
        bytes
    }

    #[test]
    fn parse_kernel_syn_ack() {
        let repr = TcpRepr::parse(SERVER, CLIENT, &KERNEL_SYN_ACK).unwrap();
        assert_eq!(repr, kernel_syn_ack_repr());
        assert_eq!(repr.segment_len(), 1);
    }

    /// RFC 9293 §3.1 (MUST-6, MUST-7): an option kind we do not know, with a sound length, is
    /// stepped over; the options after it still count. A known kind with a wrong length is
    /// ignored the same way; an impossible length ends the list.
    #[test]
    fn rfc9293_3_1_unknown_options_are_skipped_by_their_length() {
        let bytes = [
            253, 4, 0xab, 0xcd, // experimental (RFC 6994)
            30, 3, 0x10, // MPTCP-like, odd length
            2, 4, 0x05, 0xb4, // MSS 1460
            19, 18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // MD5 signature
            4, 2, // SACK permitted
            8, 10, 0, 0, 0, 7, 0, 0, 0, 9, // timestamps
            34, 2, // TFO cookie request
            3, 3, 7, // window scale 7
            2, 3, 1, // MSS with a wrong length: ignored
            1, 0, // NOP, EOL
        ];
        let options = parse_options(&bytes);
        assert_eq!(options.mss, Some(1460));
        assert_eq!(options.window_scale, Some(7));
        assert!(options.sack_permitted);
        assert_eq!(options.timestamps, Some(Timestamps { value: 7, echo: 9 }));
        // A length of 1 or one running past the header: parsing stops, earlier options stay.
        let broken = [2, 4, 0x05, 0xb4, 253, 1, 3, 3, 7];
        let options = parse_options(&broken);
        assert_eq!((options.mss, options.window_scale), (Some(1460), None));
        let past_end = [3, 3, 7, 253, 9, 0];
        assert_eq!(parse_options(&past_end).window_scale, Some(7));
    }

    #[test]
    fn emit_kernel_syn_ack_is_byte_exact() {
        let mut buf = [0xa5u8; 64];
        let len = kernel_syn_ack_repr().emit(SERVER, CLIENT, &mut buf);
        assert_eq!(&buf[..len], &KERNEL_SYN_ACK[..]);
        assert_eq!(buf[len], 0xa5, "emit wrote past the segment");
    }

    #[test]
    fn a_segment_the_device_vouches_for_is_not_summed_again() {
        let mut bytes = with_checksum(KERNEL_SYN_ACK.to_vec(), SERVER, CLIENT);
        // As with checksum offload: the field holds something else entirely.
        bytes[16] ^= 0x5a;
        assert_eq!(
            TcpRepr::parse_with(SERVER, CLIENT, &bytes, ChecksumStatus::Unverified),
            Err(TcpParseError::BadChecksum)
        );
        let parsed = TcpRepr::parse_with(SERVER, CLIENT, &bytes, ChecksumStatus::Trusted)
            .expect("trusted segment parses");
        assert_eq!(parsed.control, Control::Syn);
    }

    #[test]
    fn corrupted_segment_fails_checksum() {
        let mut bytes = with_checksum(KERNEL_SYN_ACK.to_vec(), SERVER, CLIENT);
        bytes[5] ^= 0x04;
        assert_eq!(
            TcpRepr::parse(SERVER, CLIENT, &bytes),
            Err(TcpParseError::BadChecksum)
        );
        // The pseudo-header counts: the right bytes from the wrong address fail too.
        let bytes = with_checksum(KERNEL_SYN_ACK.to_vec(), SERVER, CLIENT);
        let other = Ipv4Addr::new(10, 77, 1, 3);
        assert_eq!(
            TcpRepr::parse(other, CLIENT, &bytes),
            Err(TcpParseError::BadChecksum)
        );
    }

    #[test]
    fn data_segment_with_sack_round_trips() {
        let payload = b"hello, world";
        let mut repr = TcpRepr {
            src_port: 40000,
            dst_port: 80,
            control: Control::Psh,
            seq: SeqNum(u32::MAX - 3),
            ack: Some(SeqNum(77)),
            window: 1024,
            options: TcpOptions {
                timestamps: Some(Timestamps { value: 1, echo: 2 }),
                ..TcpOptions::default()
            },
            payload,
        };
        repr.options.sack_blocks[0] = Some(SackBlock {
            left: SeqNum(100),
            right: SeqNum(200),
        });
        repr.options.sack_blocks[1] = Some(SackBlock {
            left: SeqNum(300),
            right: SeqNum(400),
        });
        repr.options.sack_blocks[2] = Some(SackBlock {
            left: SeqNum(500),
            right: SeqNum(600),
        });
        let mut buf = [0u8; 128];
        let len = repr.emit(CLIENT, SERVER, &mut buf);
        assert_eq!(len, HEADER_LEN + 40 + payload.len());
        assert_eq!(TcpRepr::parse(CLIENT, SERVER, &buf[..len]).unwrap(), repr);
    }

    #[test]
    fn sack_blocks_beyond_forty_bytes_are_dropped() {
        let mut options = TcpOptions {
            timestamps: Some(Timestamps { value: 1, echo: 2 }),
            ..TcpOptions::default()
        };
        for (i, slot) in options.sack_blocks.iter_mut().enumerate() {
            let left = SeqNum(1000 * i as u32);
            *slot = Some(SackBlock {
                left,
                right: left + 10,
            });
        }
        let repr = TcpRepr {
            src_port: 1,
            dst_port: 2,
            control: Control::None,
            seq: SeqNum(0),
            ack: Some(SeqNum(0)),
            window: 0,
            options,
            payload: &[],
        };
        let mut buf = [0u8; 60];
        let len = repr.emit(CLIENT, SERVER, &mut buf);
        assert_eq!(len, 60);
        let parsed = TcpRepr::parse(CLIENT, SERVER, &buf[..len]).unwrap();
        assert_eq!(parsed.options.sack_blocks().count(), 3);
    }

    #[test]
    fn illegal_flags_and_short_segments_are_rejected() {
        let mut bytes = KERNEL_SYN_ACK.to_vec();
        bytes[13] = 0x03; // SYN + FIN
        let bytes = with_checksum(bytes, SERVER, CLIENT);
        assert_eq!(
            TcpRepr::parse(SERVER, CLIENT, &bytes),
            Err(TcpParseError::BadFlags)
        );
        assert_eq!(
            TcpRepr::parse(SERVER, CLIENT, &bytes[..19]),
            Err(TcpParseError::Truncated)
        );
    }

    #[test]
    fn malformed_options_keep_what_came_before() {
        let mut bytes = KERNEL_SYN_ACK.to_vec();
        bytes[37] = 0; // window scale option claims length 0
        let bytes = with_checksum(bytes, SERVER, CLIENT);
        let repr = TcpRepr::parse(SERVER, CLIENT, &bytes).unwrap();
        assert_eq!(repr.options.mss, Some(1460));
        assert_eq!(repr.options.window_scale, None);
    }
}
