//! What `fetch` and `serve` share: the device options, opening the TUN with its wrappers
//! (pcap capture, impairment) and the stack configuration built from them.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::device::fault::{Fault, ImpairSpec, Impairer};
use crate::device::pcap::Pcap;
use crate::device::tun::TunDevice;
use crate::device::{DeviceError, FdDevice};
use crate::stack::StackConfig;
use crate::tcp::Algorithm;
use crate::trace::{TraceSink, TraceWriter};

/// TUN interface attached to unless told otherwise; `setup/up` and `setup/sandbox` create it.
pub const DEFAULT_IFACE: &str = "tun0";
/// Address the stack uses on the TUN subnet unless told otherwise (the kernel side is 10.77.0.1).
pub const DEFAULT_LOCAL_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
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
        }
    }
}

impl DeviceOptions {
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
    let tun = TunDevice::open(&options.iface, options.offload)?;
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
    let mut device: Box<dyn FdDevice> = Box::new(tun);
    if let Some(path) = &flags.pcap {
        let pcap = Pcap::create(device, path).map_err(|source| HostError::Capture {
            path: path.clone(),
            source,
        })?;
        device = Box::new(pcap);
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
