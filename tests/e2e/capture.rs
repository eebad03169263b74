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
        // Only flags are needed; TCP analysis and reassembly would take minutes on 64 MiB.
        let options = [
            "-o",
            "tcp.analyze_sequence_numbers:FALSE",
            "-o",
            "tcp.desegment_tcp_streams:FALSE",
            "-o",
            "tcp.calculate_timestamps:FALSE",
            "-o",
            "tcp.track_bytes_in_flight:FALSE",
            "--disable-protocol",
            "http",
        ];
        let rows = tshark_rows(
            path,
            &options,
            "tcp.flags.syn==1 || tcp.flags.reset==1",
            &["frame.number", "ip.src", "ip.dst", "tcp.flags"],
        );
        let control = rows
            .iter()
            .map(|row| parse_row(row).unwrap_or_else(|| panic!("unexpected tshark row {row:?}")))
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

/// `tshark -n -r PCAP OPTIONS -Y FILTER -T fields` with `fields`: a row per frame that matches
/// (blank rows skipped), its fields in the order asked (a field that occurs twice in a frame
/// takes two places). Panics, with tshark's complaint, if tshark cannot read the capture.
pub fn tshark_rows(
    pcap: &Path,
    options: &[&str],
    filter: &str,
    fields: &[&str],
) -> Vec<Vec<String>> {
    let mut command = Command::new("tshark");
    command
        .arg("-n")
        .args(["-r", pcap.to_str().expect("utf-8 path")])
        .args(options)
        .args(["-Y", filter])
        .args(["-T", "fields", "-E", "separator=,"]);
    for field in fields {
        command.args(["-e", field]);
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run tshark (install wireshark's tshark): {e}"));
    assert!(
        output.status.success(),
        "tshark could not read {}: {}\n{}",
        pcap.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.split(',').map(str::to_owned).collect())
        .collect()
}

fn parse_row(row: &[String]) -> Option<ControlSegment> {
    let mut fields = row.iter();
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
