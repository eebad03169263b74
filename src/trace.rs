//! `--verbose`: one line per datagram on stderr, like a tiny tcpdump of what the stack sees.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use etherparse::TcpHeaderSlice;

use crate::stack::Stack;

/// Prints datagrams relative to the time tracing started.
pub struct Tracer {
    start: Instant,
    line: String,
}

impl Tracer {
    /// Starts the trace clock at `start`.
    pub fn new(start: Instant) -> Self {
        Tracer {
            start,
            line: String::with_capacity(160),
        }
    }

    /// Describes one datagram: time, direction, flags, seq, ack, window, length, RTT estimate.
    pub fn datagram(&mut self, now: Instant, direction: &str, datagram: &[u8], stack: &Stack) {
        self.line.clear();
        let t = now.saturating_duration_since(self.start).as_secs_f64();
        let _ = write!(self.line, "{t:10.6} {direction:>3} ");
        describe(&mut self.line, datagram, stack, direction == "in");
        eprintln!("{}", self.line);
    }
}

fn describe(out: &mut String, datagram: &[u8], stack: &Stack, inbound: bool) {
    if datagram.first().map(|b| b >> 4) != Some(4) || datagram.len() < 20 {
        let _ = write!(out, "non-IPv4 datagram, {} bytes", datagram.len());
        return;
    }
    let header_len = usize::from(datagram[0] & 0x0f) * 4;
    let src = Ipv4Addr::new(datagram[12], datagram[13], datagram[14], datagram[15]);
    let dst = Ipv4Addr::new(datagram[16], datagram[17], datagram[18], datagram[19]);
    let protocol = datagram[9];
    let payload = datagram.get(header_len..).unwrap_or_default();
    let Some(tcp) = TcpHeaderSlice::from_slice(payload)
        .ok()
        .filter(|_| protocol == 6)
    else {
        let _ = write!(
            out,
            "{src} > {dst} protocol {protocol}, {} bytes",
            datagram.len()
        );
        return;
    };
    let flags: String = [
        (tcp.syn(), 'S'),
        (tcp.fin(), 'F'),
        (tcp.rst(), 'R'),
        (tcp.psh(), 'P'),
        (tcp.ack(), '.'),
    ]
    .iter()
    .filter(|(set, _)| *set)
    .map(|(_, c)| *c)
    .collect();
    let len = payload.len() - tcp.slice().len();
    let _ = write!(
        out,
        "{src}:{} > {dst}:{} [{flags}] seq {} ack {} win {} len {len}",
        tcp.source_port(),
        tcp.destination_port(),
        tcp.sequence_number(),
        tcp.acknowledgment_number(),
        tcp.window_size(),
    );
    let (local_port, remote) = if inbound {
        (
            tcp.destination_port(),
            SocketAddrV4::new(src, tcp.source_port()),
        )
    } else {
        (
            tcp.source_port(),
            SocketAddrV4::new(dst, tcp.destination_port()),
        )
    };
    if let Some(srtt) = stack
        .connection_by_ports(local_port, remote)
        .and_then(|c| c.stats().srtt)
    {
        let _ = write!(out, " srtt {:.1}ms", srtt.as_secs_f64() * 1000.0);
    }
}
