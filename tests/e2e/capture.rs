//! Reading a `tunstack --pcap` capture back with tshark, so what really crossed tun0 is judged by
//! an independent dissector rather than by the stack's own counters.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

/// TCP flag bits as tshark prints them in `tcp.flags`.
const SYN: u16 = 0x002;
const RST: u16 = 0x004;
const ACK: u16 = 0x010;

/// One SYN or RST segment of the capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlSegment {
    pub frame: u64,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub flags: u16,
}

/// The SYN and RST segments of a capture, which is all the chaos tests need to look at.
#[derive(Debug)]
pub struct Capture {
    pub control: Vec<ControlSegment>,
}

impl Capture {
    /// Reads `path` with tshark; panics (with tshark's complaint) if it is not a valid capture.
    pub fn read(path: &Path) -> Capture {
        let output = Command::new("tshark")
            .arg("-n")
            .args(["-r", path.to_str().expect("utf-8 path")])
            // Only flags are needed; TCP analysis and reassembly would take minutes on 64 MiB.
            .args(["-o", "tcp.analyze_sequence_numbers:FALSE"])
            .args(["-o", "tcp.desegment_tcp_streams:FALSE"])
            .args(["-o", "tcp.calculate_timestamps:FALSE"])
            .args(["-o", "tcp.track_bytes_in_flight:FALSE"])
            .args(["--disable-protocol", "http"])
            .args(["-Y", "tcp.flags.syn==1 || tcp.flags.reset==1"])
            .args(["-T", "fields", "-E", "separator=,"])
            .args(["-e", "frame.number", "-e", "ip.src", "-e", "ip.dst"])
            .args(["-e", "tcp.flags"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run tshark (install wireshark's tshark): {e}"));
        assert!(
            output.status.success(),
            "tshark could not read {}: {}\n{}",
            path.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8_lossy(&output.stdout);
        let control = text
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| parse_row(line).unwrap_or_else(|| panic!("unexpected tshark row {line:?}")))
            .collect();
        Capture { control }
    }

    /// The longest datagram recorded (its original length), read from the pcap records
    /// themselves: tshark would take long over a 64 MiB capture for one number.
    pub fn largest_datagram(path: &Path) -> usize {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let mut largest = 0;
        let mut at = 24;
        while at + 16 <= bytes.len() {
            let field =
                |i: usize| u32::from_le_bytes(bytes[at + i..at + i + 4].try_into().unwrap());
            largest = largest.max(field(12) as usize);
            at += 16 + field(8) as usize;
        }
        largest
    }

    /// Whether the capture holds `client`'s SYN to `server` and the SYN-ACK answering it.
    pub fn has_handshake(&self, client: Ipv4Addr, server: Ipv4Addr) -> bool {
        let syn = self
            .control
            .iter()
            .any(|s| s.src == client && s.dst == server && s.flags & (SYN | ACK) == SYN);
        let syn_ack = self
            .control
            .iter()
            .any(|s| s.src == server && s.dst == client && s.flags & (SYN | ACK) == SYN | ACK);
        syn && syn_ack
    }

    /// RST segments sent by anyone but `us` (the kernels on the path and the server).
    pub fn resets_not_from(&self, us: Ipv4Addr) -> Vec<&ControlSegment> {
        self.control
            .iter()
            .filter(|s| s.flags & RST != 0 && s.src != us)
            .collect()
    }
}

fn parse_row(line: &str) -> Option<ControlSegment> {
    let mut fields = line.split(',');
    let frame = fields.next()?.trim().parse().ok()?;
    let src = fields.next()?.trim().parse().ok()?;
    let dst = fields.next()?.trim().parse().ok()?;
    let flags = fields.next()?.trim();
    let flags = u16::from_str_radix(flags.trim_start_matches("0x"), 16).ok()?;
    Some(ControlSegment {
        frame,
        src,
        dst,
        flags,
    })
}
