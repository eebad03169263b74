//! `--verbose`: one line per datagram on stderr, like a tiny tcpdump of what the stack sees,
//! with the sender's state beside each TCP segment: the RTT sample an ACK produced (once),
//! SRTT, RTO, cwnd and ssthresh — the segment log a loss-recovery investigation starts from.
//! A line after which RACK marked segments lost says `rack-lost N`, and a tail loss probe's
//! line says `tlp` (RFC 8985).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use etherparse::TcpHeaderSlice;

use crate::stack::Stack;

/// Prints datagrams relative to the time tracing started.
pub struct Tracer {
    start: Instant,
    line: String,
    /// RTT samples, RACK losses and loss probes already shown, per connection, so each is
    /// printed once: on the line of the datagram that produced it (or the first one after).
    samples_seen: HashMap<(u16, SocketAddrV4), Seen>,
}

/// Counters of one connection already reported in the trace.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    rtt_samples: u64,
    rack_marked_lost: u64,
    loss_probes: u64,
}

impl Tracer {
    /// Starts the trace clock at `start`.
    pub fn new(start: Instant) -> Self {
        Tracer {
            start,
            line: String::with_capacity(160),
            samples_seen: HashMap::new(),
        }
    }

    /// Describes one datagram: time, direction, flags, seq, ack, window, length, RTT estimate.
    pub fn datagram(&mut self, now: Instant, direction: &str, datagram: &[u8], stack: &Stack) {
        self.line.clear();
        let t = now.saturating_duration_since(self.start).as_secs_f64();
        let _ = write!(self.line, "{t:10.6} {direction:>3} ");
        describe(
            &mut self.line,
            datagram,
            stack,
            direction == "in",
            &mut self.samples_seen,
        );
        eprintln!("{}", self.line);
    }
}

fn describe(
    out: &mut String,
    datagram: &[u8],
    stack: &Stack,
    inbound: bool,
    samples_seen: &mut HashMap<(u16, SocketAddrV4), Seen>,
) {
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
    let Some(stats) = stack
        .connection_by_ports(local_port, remote)
        .map(|c| c.stats())
    else {
        return;
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let seen = samples_seen.entry((local_port, remote)).or_default();
    if let (Some(sample), true) = (stats.rtt_sample, stats.rtt_samples > seen.rtt_samples) {
        seen.rtt_samples = stats.rtt_samples;
        let _ = write!(out, " rtt {:.1}ms", ms(sample));
    }
    if stats.rack_marked_lost > seen.rack_marked_lost {
        let n = stats.rack_marked_lost - seen.rack_marked_lost;
        seen.rack_marked_lost = stats.rack_marked_lost;
        let _ = write!(out, " rack-lost {n}");
    }
    if stats.loss_probes > seen.loss_probes {
        seen.loss_probes = stats.loss_probes;
        out.push_str(" tlp");
    }
    if let Some(srtt) = stats.srtt {
        let _ = write!(out, " srtt {:.1}ms", ms(srtt));
    }
    let _ = write!(out, " rto {:.0}ms cwnd {}", ms(stats.rto), stats.cwnd);
    if stats.ssthresh != usize::MAX {
        let _ = write!(out, " ssthresh {}", stats.ssthresh);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::StackConfig;

    #[test]
    fn a_segment_line_carries_the_sender_state() {
        let now = Instant::now();
        let config = StackConfig::new(Ipv4Addr::new(10, 77, 0, 2), 1500, [1; 16], 1);
        let mut stack = Stack::new(now, config);
        stack
            .connect(now, SocketAddrV4::new(Ipv4Addr::new(10, 77, 1, 2), 80))
            .unwrap();
        let mut buf = vec![0; 2048];
        let len = stack.poll_transmit(now, &mut buf).expect("the SYN");
        let mut line = String::new();
        describe(&mut line, &buf[..len], &stack, false, &mut HashMap::new());
        assert!(line.starts_with("10.77.0.2:"), "{line}");
        assert!(line.contains("> 10.77.1.2:80 [S] seq "), "{line}");
        // Before the handshake: the default MSS (536) sizes the window, RTO is the initial 1 s.
        assert!(line.ends_with(" rto 1000ms cwnd 2144"), "{line}");
    }
}
