//! The device flags `fetch` and `serve` share: mode, impairment, capture, trace, congestion
//! control.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::parse::{parse_algorithm, parse_mode, parse_positive_duration};
use crate::device::fault::ImpairSpec;
use crate::ethernet::MacAddr;
use crate::fetch::{DeviceOptions, DEFAULT_IFACE};
use crate::host::{Mode, DEFAULT_TAP_IFACE};
use crate::link::InterfaceAddr;
use crate::tcp::Algorithm;

/// Options that wrap the TUN device: fault injection and packet capture.
#[derive(Debug, Clone, Default, Args)]
pub struct DeviceArgs {
    /// Impair both directions, per wire packet (offload super-segments are cut into the segments
    /// they stand for first), e.g. loss=5%,dup=1%,reorder=10%,corrupt=1%,delay=20ms,jitter=5ms,rate=50mbit
    #[arg(long, value_name = "SPEC")]
    pub impair: Option<ImpairSpec>,

    /// Impair only datagrams from the device to the stack (overrides --impair for that direction).
    #[arg(long, value_name = "SPEC")]
    pub impair_in: Option<ImpairSpec>,

    /// Impair only datagrams from the stack to the device (overrides --impair for that direction).
    #[arg(long, value_name = "SPEC")]
    pub impair_out: Option<ImpairSpec>,

    /// Seed of the impairment's random choices, so a failing run replays (random if absent).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Do not ask the kernel for checksum and segmentation offloads on the TUN (and clear any
    /// an earlier program left), so every read is one MTU-sized datagram.
    #[arg(long)]
    pub no_offload: bool,

    /// Write every datagram crossing the device, both directions, to FILE (pcap, raw IPv4), as
    /// the device hands it over: with offloads, 64 KiB super-segments as tcpdump on the TUN shows
    /// them; before --impair acts
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,

    /// Write the stack's decisions to FILE, one JSON object per line (docs/trace-format.md):
    /// segments with relative sequence numbers and retransmission causes, state changes, RTT,
    /// cwnd and window changes, and what --impair did; `-` writes to standard error
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,

    /// Congestion control of every connection: cubic (as Linux) or newreno.
    #[arg(long = "cc", value_name = "ALGORITHM", default_value = "cubic", value_parser = parse_algorithm)]
    pub congestion: Algorithm,

    /// Probe a connection after this long without hearing from the peer (TCP keep-alive,
    /// e.g. 30s); off unless given.
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    pub keepalive: Option<humantime::Duration>,

    /// The device: tun (IPv4 datagrams, routed by the kernel) or tap (Ethernet frames: the
    /// stack is a host on the segment, with its own MAC and ARP).
    #[arg(long, value_name = "MODE", default_value = "tun", value_parser = parse_mode)]
    pub mode: Mode,

    /// Same as --mode tap.
    #[arg(long, conflicts_with = "mode")]
    pub tap: bool,

    /// TAP mode: our MAC address (default: a locally administered one derived from the
    /// interface name and the local address, stable across runs).
    #[arg(long, value_name = "MAC")]
    pub mac: Option<MacAddr>,

    /// TAP mode: the router for destinations outside the local prefix (default: the
    /// subnet's first address, e.g. 10.77.0.1 for 10.77.0.2/24).
    #[arg(long, value_name = "ADDR")]
    pub gateway: Option<Ipv4Addr>,
}

impl DeviceArgs {
    /// The device options these flags stand for, on interface `iface` as `local_ip` (those two
    /// are top-level flags, listed first in `--help`); `verbose` prints ARP in TAP mode.
    pub fn options(
        &self,
        iface: Option<&str>,
        local_ip: InterfaceAddr,
        verbose: bool,
    ) -> DeviceOptions {
        let mode = if self.tap { Mode::Tap } else { self.mode };
        let default_iface = match mode {
            Mode::Tun => DEFAULT_IFACE,
            Mode::Tap => DEFAULT_TAP_IFACE,
        };
        DeviceOptions {
            iface: iface.unwrap_or(default_iface).to_owned(),
            local_ip: local_ip.addr,
            prefix_len: local_ip.prefix_len,
            mode,
            mac: self.mac,
            gateway: self.gateway,
            verbose,
            offload: !self.no_offload,
            impair: self.impair.clone(),
            impair_in: self.impair_in.clone(),
            impair_out: self.impair_out.clone(),
            seed: self.seed,
            pcap: self.pcap.clone(),
            trace: self.trace.clone(),
            congestion: self.congestion,
            keepalive: self.keepalive.map(Duration::from),
        }
    }
}
