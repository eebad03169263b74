//! Segments as raw header fields, built and read by hand rather than through `TcpRepr`.
//!
//! Scripts must be able to say what `TcpRepr` cannot: option order, NOP padding, unknown
//! kinds and lying lengths on the way in, and the exact option bytes the stack wrote on the
//! way out. So this module writes and reads IPv4 and TCP headers itself; the stack's own parser
//! is what is under test.

use std::net::Ipv4Addr;

use tunstack::wire::checksum;

/// One TCP option as it sits on the wire (NOP and EOL included, with no data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawOpt {
    pub kind: u8,
    /// The length byte as written (`None` for NOP and EOL).
    pub len: Option<u8>,
    pub data: Vec<u8>,
}

/// A TCP segment's fields in absolute numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wire {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub options: Vec<RawOpt>,
    pub payload: Vec<u8>,
}

pub const OPT_EOL: u8 = 0;
pub const OPT_NOP: u8 = 1;
pub const OPT_MSS: u8 = 2;
pub const OPT_WSCALE: u8 = 3;
pub const OPT_SACK_OK: u8 = 4;
pub const OPT_SACK: u8 = 5;
pub const OPT_TS: u8 = 8;

/// The byte at `offset` of either side's stream: a 251-periodic ramp, so a byte from the
/// wrong offset (a shifted retransmission, a lost byte) shows up.
pub fn pattern_byte(offset: u64) -> u8 {
    (offset % 251) as u8
}

pub fn pattern(offset: u64, len: usize) -> Vec<u8> {
    (0..len as u64).map(|i| pattern_byte(offset + i)).collect()
}

impl Wire {
    /// Builds the IPv4 datagram carrying this segment, with correct checksums.
    pub fn to_datagram(&self, src: Ipv4Addr, dst: Ipv4Addr, ident: u16) -> Vec<u8> {
        let mut opts = Vec::new();
        for o in &self.options {
            opts.push(o.kind);
            if let Some(len) = o.len {
                opts.push(len);
                opts.extend_from_slice(&o.data);
            }
        }
        // Pad to a 4-byte boundary with EOL (zero), as the RFC says.
        while opts.len() % 4 != 0 {
            opts.push(OPT_EOL);
        }
        let tcp_len = 20 + opts.len() + self.payload.len();
        let total = 20 + tcp_len;
        let mut d = vec![0u8; total];
        d[0] = 0x45;
        d[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        d[4..6].copy_from_slice(&ident.to_be_bytes());
        d[6] = 0x40; // DF
        d[8] = 64;
        d[9] = 6;
        d[12..16].copy_from_slice(&src.octets());
        d[16..20].copy_from_slice(&dst.octets());
        let sum = checksum::checksum(&d[..20]);
        d[10..12].copy_from_slice(&sum.to_be_bytes());
        let t = &mut d[20..];
        t[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        t[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        t[4..8].copy_from_slice(&self.seq.to_be_bytes());
        t[8..12].copy_from_slice(&self.ack.to_be_bytes());
        t[12] = (((20 + opts.len()) / 4) as u8) << 4;
        t[13] = self.flags;
        t[14..16].copy_from_slice(&self.window.to_be_bytes());
        t[20..20 + opts.len()].copy_from_slice(&opts);
        t[20 + opts.len()..].copy_from_slice(&self.payload);
        let sum = checksum::pseudo_header(src, dst, 6, tcp_len as u16);
        let sum = checksum::finish(checksum::accumulate(sum, t));
        t[16..18].copy_from_slice(&sum.to_be_bytes());
        d
    }

    /// Reads a datagram the stack sent, checking what a receiver would (IP and TCP checksums,
    /// lengths); an error is a sentence.
    pub fn from_datagram(d: &[u8]) -> Result<(Ipv4Addr, Ipv4Addr, Wire), String> {
        if d.len() < 20 || d[0] >> 4 != 4 {
            return Err(format!("not an IPv4 datagram ({} bytes)", d.len()));
        }
        let ihl = usize::from(d[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([d[2], d[3]]));
        if ihl < 20 || total != d.len() || total < ihl + 20 {
            return Err(format!(
                "bad IPv4 lengths (header {ihl}, total {total}, datagram {})",
                d.len()
            ));
        }
        if checksum::checksum(&d[..ihl]) != 0 {
            return Err("bad IPv4 header checksum".into());
        }
        if d[9] != 6 {
            return Err(format!("IP protocol {} is not TCP", d[9]));
        }
        let src = Ipv4Addr::new(d[12], d[13], d[14], d[15]);
        let dst = Ipv4Addr::new(d[16], d[17], d[18], d[19]);
        let t = &d[ihl..];
        let sum = checksum::pseudo_header(src, dst, 6, t.len() as u16);
        if checksum::finish(checksum::accumulate(sum, t)) != 0 {
            return Err("bad TCP checksum".into());
        }
        let off = usize::from(t[12] >> 4) * 4;
        if off < 20 || off > t.len() {
            return Err(format!("bad TCP data offset {off}"));
        }
        let be16 = |at: usize| u16::from_be_bytes([t[at], t[at + 1]]);
        let be32 = |at: usize| u32::from_be_bytes([t[at], t[at + 1], t[at + 2], t[at + 3]]);
        Ok((
            src,
            dst,
            Wire {
                src_port: be16(0),
                dst_port: be16(2),
                seq: be32(4),
                ack: be32(8),
                flags: t[13] & 0x3f,
                window: be16(14),
                options: read_options(&t[20..off])?,
                payload: t[off..].to_vec(),
            },
        ))
    }
}

/// Splits option bytes into options; trailing EOL padding is dropped, as tcpdump does.
fn read_options(mut bytes: &[u8]) -> Result<Vec<RawOpt>, String> {
    let mut out = Vec::new();
    while let Some((&kind, rest)) = bytes.split_first() {
        match kind {
            OPT_EOL => {
                if rest.iter().any(|&b| b != 0) {
                    out.push(RawOpt {
                        kind,
                        len: None,
                        data: Vec::new(),
                    });
                    // Bytes after EOL are not options; show them as they are.
                    out.push(RawOpt {
                        kind: OPT_EOL,
                        len: None,
                        data: rest.to_vec(),
                    });
                }
                break;
            }
            OPT_NOP => {
                out.push(RawOpt {
                    kind,
                    len: None,
                    data: Vec::new(),
                });
                bytes = rest;
            }
            _ => {
                let len = *rest
                    .first()
                    .ok_or_else(|| format!("option kind {kind} lacks its length"))?;
                if len < 2 || usize::from(len) > bytes.len() {
                    return Err(format!("option kind {kind} has impossible length {len}"));
                }
                out.push(RawOpt {
                    kind,
                    len: Some(len),
                    data: bytes[2..usize::from(len)].to_vec(),
                });
                bytes = &bytes[usize::from(len)..];
            }
        }
    }
    Ok(out)
}

/// An ICMP destination unreachable datagram from `router` to `to`, quoting the first 8 bytes
/// of a TCP segment `quoted_src` sent to `quoted_dst` (RFC 792: the IP header and 64 bits).
#[allow(clippy::too_many_arguments)]
pub fn icmp_unreachable(
    router: Ipv4Addr,
    to: Ipv4Addr,
    code: u8,
    mtu: u16,
    quoted_src: (Ipv4Addr, u16),
    quoted_dst: (Ipv4Addr, u16),
    seq: u32,
) -> Vec<u8> {
    let mut quoted = [0u8; 28];
    quoted[0] = 0x45;
    quoted[2..4].copy_from_slice(&40u16.to_be_bytes());
    quoted[6] = 0x40;
    quoted[8] = 64;
    quoted[9] = 6;
    quoted[12..16].copy_from_slice(&quoted_src.0.octets());
    quoted[16..20].copy_from_slice(&quoted_dst.0.octets());
    let sum = checksum::checksum(&quoted[..20]);
    quoted[10..12].copy_from_slice(&sum.to_be_bytes());
    quoted[20..22].copy_from_slice(&quoted_src.1.to_be_bytes());
    quoted[22..24].copy_from_slice(&quoted_dst.1.to_be_bytes());
    quoted[24..28].copy_from_slice(&seq.to_be_bytes());

    let total = 20 + 8 + quoted.len();
    let mut d = vec![0u8; total];
    d[0] = 0x45;
    d[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    d[8] = 64;
    d[9] = 1;
    d[12..16].copy_from_slice(&router.octets());
    d[16..20].copy_from_slice(&to.octets());
    let sum = checksum::checksum(&d[..20]);
    d[10..12].copy_from_slice(&sum.to_be_bytes());
    let icmp = &mut d[20..];
    icmp[0] = 3;
    icmp[1] = code;
    icmp[6..8].copy_from_slice(&mtu.to_be_bytes());
    icmp[8..].copy_from_slice(&quoted);
    let sum = checksum::checksum(icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    d
}
