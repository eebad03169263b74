//! What `fetch` and `serve` share: the device options, opening the TUN with its wrappers
//! (pcap capture, impairment) and the stack configuration built from them.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::device::ethernet::EthernetDevice;
use crate::device::fault::{Fault, ImpairSpec, Impairer};
use crate::device::pcap::{LinkType, Pcap};
use crate::device::tun::{Layer, TunDevice};
use crate::device::{DeviceError, FdDevice};
use crate::ethernet::MacAddr;
use crate::link::{default_gateway, LinkConfig, DEFAULT_TAP_PREFIX};
use crate::stack::StackConfig;
use crate::tcp::Algorithm;
use crate::trace::{TraceSink, TraceWriter};

/// TUN interface attached to unless told otherwise; `setup/up` and `setup/sandbox` create it.
pub const DEFAULT_IFACE: &str = "tun0";
/// TAP interface attached to in TAP mode unless told otherwise; `setup/up --tap` and
/// `setup/sandbox up-tap` create it.
pub const DEFAULT_TAP_IFACE: &str = "tap0";
/// Address the stack uses on the TUN subnet unless told otherwise (the kernel side is 10.77.0.1).
pub const DEFAULT_LOCAL_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// Which device the stack sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// A TUN: the kernel routes IPv4 datagrams to us (the default).
    #[default]
    Tun,
    /// A TAP: Ethernet frames; we are a host on the segment, with a MAC and ARP.
    Tap,
}

/// Everything that configures the TUN device and the stack on it, apart from what is being
/// downloaded: kept separate so that another command running the stack (`tunstack serve`) can take the same options.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceOptions {
    /// TUN interface to attach to.
    pub iface: String,
    /// IPv4 address the stack uses as its own on the TUN subnet.
    pub local_ip: Ipv4Addr,
    /// Ask the kernel for checksum and segmentation offloads (off: every read is one datagram).
    pub offload: bool,
    /// Impairment of both directions, unless a direction has its own.
    pub impair: Option<ImpairSpec>,
    /// Impairment of datagrams from the device to the stack only.
    pub impair_in: Option<ImpairSpec>,
    /// Impairment of datagrams from the stack to the device only.
    pub impair_out: Option<ImpairSpec>,
    /// Seed of the impairment's random choices, so a failing run replays (random if absent).
    pub seed: Option<u64>,
    /// Capture every datagram crossing the device to this pcap file.
    pub pcap: Option<PathBuf>,
    /// `--trace FILE`: the stack's decisions and `--impair`'s actions as JSON Lines
    /// (docs/trace-format.md); `-` is standard error.
    pub trace: Option<PathBuf>,
    /// The congestion controller every connection starts with (`--cc`).
    pub congestion: Algorithm,
    /// TCP keep-alive probes after this long without hearing from the peer (`--keepalive`).
    pub keepalive: Option<Duration>,
    /// TUN or TAP (`--mode`).
    pub mode: Mode,
    /// TAP mode: the on-link prefix length (`--local-ip ADDR/LEN`; 24 if not given).
    pub prefix_len: Option<u8>,
    /// TAP mode: our MAC (`--mac`; derived from the interface name and address if absent).
    pub mac: Option<MacAddr>,
    /// TAP mode: the router for off-link destinations (`--gateway`; the subnet's `.1`).
    pub gateway: Option<Ipv4Addr>,
    /// TAP mode: print ARP traffic and link events to standard error (`-v`).
    pub verbose: bool,
}

impl Default for DeviceOptions {
    fn default() -> Self {
        DeviceOptions {
            iface: DEFAULT_IFACE.to_owned(),
            local_ip: DEFAULT_LOCAL_IP,
            offload: true,
            impair: None,
            impair_in: None,
            impair_out: None,
            seed: None,
            pcap: None,
            trace: None,
            congestion: Algorithm::Cubic,
            keepalive: None,
            mode: Mode::Tun,
            prefix_len: None,
            mac: None,
            gateway: None,
            verbose: false,
        }
    }
}

impl DeviceOptions {
    /// TAP mode's link: our MAC, address, prefix and gateway, defaults filled in.
    pub fn link_config(&self) -> LinkConfig {
        let prefix_len = self.prefix_len.unwrap_or(DEFAULT_TAP_PREFIX);
        LinkConfig {
            mac: self
                .mac
                .unwrap_or_else(|| MacAddr::derive(&self.iface, self.local_ip)),
            addr: self.local_ip,
            prefix_len,
            gateway: self
                .gateway
                .unwrap_or_else(|| default_gateway(self.local_ip, prefix_len)),
            arp: crate::arp::ArpConfig::default(),
        }
    }

    /// Checks the TAP options against each other, before any device is opened: the one-line
    /// message of a usage error, or `Ok`.
    pub fn check(&self) -> Result<(), String> {
        if self.mode == Mode::Tun {
            return match (self.mac, self.gateway) {
                (None, None) => Ok(()),
                _ => Err("--mac and --gateway need --mode tap (a TUN has no link layer)".into()),
            };
        }
        let link = self.link_config();
        if !link.mac.is_unicast() {
            return Err(format!(
                "--mac {}: not a unicast address (its first byte must be even, and not all bytes zero)",
                link.mac
            ));
        }
        if link.gateway == link.addr {
            return Err(format!("--gateway {} is our own address", link.gateway));
        }
        let host_mask = u32::MAX
            .checked_shr(u32::from(link.prefix_len))
            .unwrap_or(0);
        let host_bits = u32::from(link.gateway) & host_mask;
        if !link.is_on_link(link.gateway) || host_bits == 0 || host_bits == host_mask {
            return Err(format!(
                "--gateway {} is not a host on the local subnet {}/{} (give --local-ip ADDR/LEN)",
                link.gateway, link.addr, link.prefix_len
            ));
        }
        Ok(())
    }

    /// The impairment for datagrams read from the device, if any.
    pub fn inbound(&self) -> Option<&ImpairSpec> {
        self.impair_in
            .as_ref()
            .or(self.impair.as_ref())
            .filter(|s| !s.is_noop())
    }

    /// The impairment for datagrams written to the device, if any.
    pub fn outbound(&self) -> Option<&ImpairSpec> {
        self.impair_out
            .as_ref()
            .or(self.impair.as_ref())
            .filter(|s| !s.is_noop())
    }
}

/// Why the device could not be set up.
#[derive(Debug, Error)]
pub enum HostError {
    /// The TUN device could not be opened or configured.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// `--pcap`: the capture file could not be created.
    #[error("cannot write {}: {source}", path.display())]
    Capture {
        /// The capture file asked for.
        path: PathBuf,
        /// Why it could not be created.
        source: std::io::Error,
    },
}

/// Most segments one TSO super-segment may stand for; the 64 KiB IPv4 limit binds first at
/// ordinary MTUs (44 segments of 1448 bytes).
const TSO_MAX_SEGMENTS: u16 = 64;

/// Opens the TUN device `options` name, wraps it as they ask, and builds the stack
/// configuration for it (our address, MSS from the MTU, congestion control, keep-alive, random
/// secrets). `quiet` silences the impairment seed notice.
pub fn open(
    options: &DeviceOptions,
    quiet: bool,
) -> Result<(Box<dyn FdDevice>, StackConfig), HostError> {
    let layer = match options.mode {
        Mode::Tun => Layer::Ip,
        Mode::Tap => Layer::Ethernet,
    };
    let tun = TunDevice::open_layer(&options.iface, layer, options.offload)?;
    let mtu = tun.mtu().unwrap_or(1500).clamp(576, 65535);
    let tso = tun.offloads();
    tun.wait_until_up(Duration::from_millis(500));
    let device = build_device(tun, options, quiet)?;
    let mut secret = [0u8; 16];
    rand::Rng::fill(&mut rand::thread_rng(), &mut secret);
    let mut config = StackConfig::new(options.local_ip, mtu, secret, rand::random());
    config.tcp.congestion = options.congestion;
    config.tcp.keepalive = options.keepalive;
    config.tcp.trace = options.trace.is_some();
    if tso {
        // The kernel took TSO: hand it up to 64 KiB of full segments at once to cut up.
        config.tcp.max_burst_segments = TSO_MAX_SEGMENTS;
    }
    Ok((device, config))
}

/// `--trace FILE`: creates the file (or takes standard error for `-`) and the writer that
/// starts it with the header line for `cmd`, its clock at `start`. `None` without `--trace`.
/// A file that cannot be created is the same one-line error as a capture file's.
pub fn open_trace(
    options: &DeviceOptions,
    start: Instant,
    cmd: &str,
) -> Result<Option<Box<dyn TraceSink>>, HostError> {
    let Some(path) = &options.trace else {
        return Ok(None);
    };
    if path.as_os_str() == "-" {
        return Ok(Some(Box::new(TraceWriter::new(
            std::io::stderr(),
            start,
            cmd,
        ))));
    }
    let file = std::fs::File::create(path).map_err(|source| HostError::Capture {
        path: path.clone(),
        source,
    })?;
    Ok(Some(Box::new(TraceWriter::new(file, start, cmd))))
}

fn build_device(
    tun: TunDevice,
    flags: &DeviceOptions,
    quiet: bool,
) -> Result<Box<dyn FdDevice>, HostError> {
    let tap = tun.is_tap();
    let mut device: Box<dyn FdDevice> = Box::new(tun);
    if let Some(path) = &flags.pcap {
        let linktype = if tap {
            LinkType::Ethernet
        } else {
            LinkType::RawIp
        };
        let pcap =
            Pcap::create_with(device, path, linktype).map_err(|source| HostError::Capture {
                path: path.clone(),
                source,
            })?;
        device = Box::new(pcap);
    }
    if tap {
        // The link goes above the capture (which then records Ethernet and ARP) and below the
        // impairment (which acts on IPv4 datagrams, as in TUN mode).
        let link = flags.link_config();
        device = Box::new(EthernetDevice::start(device, link, flags.verbose));
    }
    let (inbound, outbound) = (flags.inbound(), flags.outbound());
    if inbound.is_some() || outbound.is_some() {
        let seed = flags.seed.unwrap_or_else(rand::random);
        if !quiet {
            eprintln!("* impairing with seed {seed} (replay with --seed {seed})");
        }
        // Distinct streams per direction, both derived from the one seed.
        let inbound = inbound.map(|spec| Impairer::new(spec.clone(), seed));
        let outbound =
            outbound.map(|spec| Impairer::new(spec.clone(), seed ^ 0x9e37_79b9_7f4a_7c15));
        device = Box::new(Fault::new(device, inbound, outbound));
    }
    Ok(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tap(gateway: Option<Ipv4Addr>, prefix_len: Option<u8>) -> DeviceOptions {
        DeviceOptions {
            mode: Mode::Tap,
            gateway,
            prefix_len,
            ..DeviceOptions::default()
        }
    }

    #[test]
    fn tap_defaults_are_a_derived_mac_a_24_and_the_first_host_as_gateway() {
        let link = tap(None, None).link_config();
        assert_eq!(link.prefix_len, 24);
        assert_eq!(link.gateway, Ipv4Addr::new(10, 77, 0, 1));
        assert_eq!(link.mac, MacAddr::derive("tun0", DEFAULT_LOCAL_IP));
        assert!(link.mac.is_unicast() && link.mac.is_locally_administered());
        assert_eq!(tap(None, None).check(), Ok(()));
    }

    #[test]
    fn inconsistent_tap_options_are_usage_errors_with_one_line_messages() {
        let off_link = tap(Some(Ipv4Addr::new(10, 77, 1, 1)), Some(24));
        assert_eq!(
            off_link.check().unwrap_err(),
            "--gateway 10.77.1.1 is not a host on the local subnet 10.77.0.2/24 (give --local-ip ADDR/LEN)"
        );
        assert!(tap(Some(Ipv4Addr::new(10, 77, 1, 1)), Some(16))
            .check()
            .is_ok());
        assert!(tap(Some(DEFAULT_LOCAL_IP), None)
            .check()
            .unwrap_err()
            .contains("our own"));
        assert!(tap(Some(Ipv4Addr::new(10, 77, 0, 255)), None)
            .check()
            .is_err());
        let multicast_mac = DeviceOptions {
            mac: Some(MacAddr([1, 0, 0, 0, 0, 1])),
            ..tap(None, None)
        };
        assert!(multicast_mac.check().unwrap_err().contains("not a unicast"));
        let tun_with_gateway = DeviceOptions {
            gateway: Some(Ipv4Addr::new(10, 77, 0, 1)),
            ..DeviceOptions::default()
        };
        assert!(tun_with_gateway
            .check()
            .unwrap_err()
            .contains("need --mode tap"));
    }
}
