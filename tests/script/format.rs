//! Prints segments in the script dialect, so a failure shows what the stack sent in the very
//! form the script would have to say to expect it.

use std::fmt::Write;
use std::time::Duration;

use super::parse::flag;
use super::wire::{
    RawOpt, Wire, OPT_EOL, OPT_MSS, OPT_NOP, OPT_SACK, OPT_SACK_OK, OPT_TS, OPT_WSCALE,
};

/// How absolute numbers become the relative ones scripts use, as packetdrill prints them:
/// each side's sequence numbers from its ISN, the stack's TSval from the one in its first
/// segment.
#[derive(Debug, Clone, Copy)]
pub struct Numbering {
    /// The stack's ISN, once its SYN or SYN-ACK was seen (before that: absolute numbers).
    pub ours: Option<u32>,
    /// The peer's ISN, which the runner chooses.
    pub peer: u32,
    /// The TSval of the stack's first segment.
    pub our_ts: Option<u32>,
}

/// Who sent a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// `<`: from the peer to the stack.
    In,
    /// `>`: from the stack.
    Out,
}

impl Numbering {
    pub fn ours_rel(&self, abs: u32) -> u32 {
        abs.wrapping_sub(self.ours.unwrap_or(0))
    }
    pub fn peer_rel(&self, abs: u32) -> u32 {
        abs.wrapping_sub(self.peer)
    }
    pub fn our_ts_rel(&self, abs: u32) -> u32 {
        abs.wrapping_sub(self.our_ts.unwrap_or(0))
    }
    /// Sequence numbers of the sender's space, relative.
    pub fn seq_rel(&self, dir: Dir, abs: u32) -> u32 {
        match dir {
            Dir::In => self.peer_rel(abs),
            Dir::Out => self.ours_rel(abs),
        }
    }
    /// Acknowledgment numbers (and SACK edges): the receiver's space, relative.
    pub fn ack_rel(&self, dir: Dir, abs: u32) -> u32 {
        match dir {
            Dir::In => self.ours_rel(abs),
            Dir::Out => self.peer_rel(abs),
        }
    }
}

/// `0.100`: seconds with milliseconds, plus microseconds only when there are any.
pub fn time(t: Duration) -> String {
    let us = t.as_micros();
    if us % 1000 == 0 {
        format!("{}.{:03}", us / 1_000_000, (us / 1000) % 1000)
    } else {
        format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
    }
}

pub fn flags(f: u8) -> String {
    let mut s = String::new();
    for (bit, c) in [
        (flag::SYN, 'S'),
        (flag::FIN, 'F'),
        (flag::RST, 'R'),
        (flag::PSH, 'P'),
        (flag::URG, 'U'),
        (flag::ACK, '.'),
    ] {
        if f & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// `> S. 0:0(0) ack 1 win 65535 <mss 1460,...>`: everything, nothing left out.
pub fn segment(dir: Dir, w: &Wire, n: &Numbering) -> String {
    let start = n.seq_rel(dir, w.seq);
    let len = w.payload.len() as u32;
    let mut s = format!(
        "{} {} {}:{}({})",
        if dir == Dir::In { '<' } else { '>' },
        flags(w.flags),
        start,
        start.wrapping_add(len),
        len
    );
    if w.flags & flag::ACK != 0 {
        let _ = write!(s, " ack {}", n.ack_rel(dir, w.ack));
    }
    let _ = write!(s, " win {}", w.window);
    if !w.options.is_empty() {
        let opts: Vec<String> = w.options.iter().map(|o| option(dir, o, n)).collect();
        let _ = write!(s, " <{}>", opts.join(","));
    }
    s
}

fn be32(d: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]])
}

pub fn option(dir: Dir, o: &RawOpt, n: &Numbering) -> String {
    let d = &o.data;
    let len = o.len.map(usize::from);
    match (o.kind, len) {
        (OPT_NOP, None) => "nop".into(),
        (OPT_EOL, None) if d.is_empty() => "eol".into(),
        (OPT_MSS, Some(4)) => format!("mss {}", u16::from_be_bytes([d[0], d[1]])),
        (OPT_WSCALE, Some(3)) => format!("wscale {}", d[0]),
        (OPT_SACK_OK, Some(2)) => "sackOK".into(),
        (OPT_TS, Some(10)) => {
            let (val, ecr) = (be32(d, 0), be32(d, 4));
            let (val, ecr) = match dir {
                Dir::Out => (n.our_ts_rel(val), ecr),
                Dir::In => (val, n.our_ts_rel(ecr)),
            };
            format!("TS val {val} ecr {ecr}")
        }
        (OPT_SACK, Some(l)) if l > 2 && (l - 2) % 8 == 0 => {
            let blocks: Vec<String> = (0..(l - 2) / 8)
                .map(|i| {
                    let left = n.ack_rel(dir, be32(d, i * 8));
                    let right = n.ack_rel(dir, be32(d, i * 8 + 4));
                    format!("{left}:{right}")
                })
                .collect();
            format!("sack {}", blocks.join(" "))
        }
        _ => raw(o),
    }
}

/// `optKIND [len N] HEX`, with `len` only when it is not what the data implies.
pub fn raw(o: &RawOpt) -> String {
    let mut s = format!("opt{}", o.kind);
    if let Some(len) = o.len {
        if usize::from(len) != o.data.len() + 2 {
            let _ = write!(s, " len {len}");
        }
    }
    if !o.data.is_empty() {
        s.push(' ');
        for b in &o.data {
            let _ = write!(s, "{b:02x}");
        }
    }
    s
}
