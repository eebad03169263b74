//! A Linux TUN interface carrying bare IPv4 datagrams (no packet-info prefix), or a TAP
//! interface carrying Ethernet frames (TAP mode), optionally with the kernel's segmentation
//! offloads.
//!
//! A TAP is the same driver with `IFF_TAP`: the virtio-net header then precedes the Ethernet
//! frame, its checksum and header offsets count from the frame's start, and a super-segment
//! is one Ethernet header in front of a 64 KiB IPv4 TCP segment.
//!
//! With offloads the device is opened with `IFF_VNET_HDR` and `TUNSETOFFLOAD`: the kernel may
//! then hand us TCP super-segments of up to 64 KiB (what GRO merged on the way in) behind a
//! small virtio-net header, so one read carries what would otherwise take ~45. tun-tap cannot
//! open a device that way, so the device is opened here with the same three ioctls it uses.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{complete_checksum, DeviceError, Received, RxChecksum};
use crate::wire::tcp as tcp_wire;

/// Longest interface name Linux accepts (IFNAMSIZ minus the terminating NUL).
const MAX_NAME_LEN: usize = 15;
/// `struct virtio_net_hdr` (without the mergeable-buffers field), the kernel's default size.
const VNET_HDR_LEN: usize = 10;
/// virtio-net header flag: the transport checksum still has to be completed by the receiver.
const VIRTIO_NET_HDR_F_NEEDS_CSUM: u8 = 1;
/// virtio-net header flag: the kernel verified the transport checksum.
const VIRTIO_NET_HDR_F_DATA_VALID: u8 = 2;
/// virtio-net header `gso_type`: not a super-segment.
const VIRTIO_NET_HDR_GSO_NONE: u8 = 0;
/// virtio-net header `gso_type`: a TCP over IPv4 super-segment, to be cut at `gso_size`.
const VIRTIO_NET_HDR_GSO_TCPV4: u8 = 1;
/// Where a TCP header keeps its checksum.
const TCP_CHECKSUM_OFFSET: usize = 16;
/// Longest Ethernet, IPv4 and TCP header (14 + 60 + 60 bytes).
const MAX_HEADERS_LEN: usize = 134;
/// Ethernet II header length: where IPv4 starts in a TAP frame.
const ETHERNET_HEADER_LEN: usize = 14;
/// virtio-net header `gso_type` bit: the super-segment carries ECN (CWR on its first piece).
const VIRTIO_NET_HDR_GSO_ECN: u8 = 0x80;
/// Where an IPv4 header keeps its protocol number.
const IPV4_PROTOCOL_OFFSET: usize = 9;

/// An attached, non-blocking TUN interface, so the event loop can poll it with the socket set.
///
/// The interface must exist already (see `setup/up`): attaching to a persistent TUN owned by the
/// current user needs no privileges, creating one does.
#[derive(Debug)]
pub struct TunDevice {
    file: File,
    name: String,
    /// Datagrams carry a virtio-net header (offloads on).
    vnet: bool,
    /// A TAP: reads and writes are Ethernet frames.
    tap: bool,
}

/// Which layer the interface carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// TUN: bare IPv4 datagrams.
    Ip,
    /// TAP: Ethernet frames.
    Ethernet,
}

/// `struct ifreq` as TUNSETIFF reads it: the name and the flags, padded to the union's size.
#[repr(C)]
struct InterfaceRequest {
    name: [u8; 16],
    flags: libc::c_short,
    _pad: [u8; 22],
}

impl TunDevice {
    /// Attaches to the existing TUN interface `name`. With `offload`, asks for checksum and TCP
    /// segmentation offloads; without, clears any an earlier program left on the device so
    /// every read is one plain IPv4 datagram.
    pub fn open(name: &str, offload: bool) -> Result<TunDevice, DeviceError> {
        TunDevice::open_layer(name, Layer::Ip, offload)
    }

    /// Attaches to the existing TUN (`Layer::Ip`) or TAP (`Layer::Ethernet`) interface
    /// `name`, with or without offloads as [`TunDevice::open`] explains.
    pub fn open_layer(name: &str, layer: Layer, offload: bool) -> Result<TunDevice, DeviceError> {
        let tap = layer == Layer::Ethernet;
        check_name(name)?;
        if !interface_dir(name).exists() {
            let name = name.to_owned();
            return Err(if tap {
                DeviceError::MissingTap { name }
            } else {
                DeviceError::Missing { name }
            });
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(|source| classify_attach_error(name, tap, source))?;
        let mut request = InterfaceRequest {
            name: [0; 16],
            flags: 0,
            _pad: [0; 22],
        };
        request.name[..name.len()].copy_from_slice(name.as_bytes());
        let mut flags = if tap { libc::IFF_TAP } else { libc::IFF_TUN } | libc::IFF_NO_PI;
        if offload {
            flags |= libc::IFF_VNET_HDR;
        }
        request.flags = flags as libc::c_short;
        // SAFETY: TUNSETIFF reads a `struct ifreq`, which `InterfaceRequest` lays out exactly.
        let result = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &request) };
        if result == -1 {
            return Err(classify_attach_error(name, tap, io::Error::last_os_error()));
        }
        let io_error = |source| DeviceError::Io {
            name: name.to_owned(),
            source,
        };
        let vnet = offload && enable_offloads(file.as_raw_fd()).map_err(io_error)?;
        if !offload {
            clear_offloads(file.as_raw_fd()).map_err(io_error)?;
        }
        Ok(TunDevice {
            file,
            name: name.to_owned(),
            vnet,
            tap,
        })
    }

    /// Reads one datagram into `buf`; `WouldBlock` when none is queued. With offloads, the
    /// kernel's checksum flags come with it.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        if !self.vnet {
            return (&self.file).read(buf).map(Received::unverified);
        }
        let mut header = [0u8; VNET_HDR_LEN];
        let read = (&self.file)
            .read_vectored(&mut [IoSliceMut::new(&mut header), IoSliceMut::new(buf)])?;
        let len = read.saturating_sub(VNET_HDR_LEN);
        let checksum = received_checksum(&header, &mut buf[..len], self.l3_offset());
        Ok(Received {
            len,
            checksum,
            segment_size: segment_size(&header),
        })
    }

    /// Writes one whole datagram; `WouldBlock` when the kernel queue is full.
    pub fn send(&self, datagram: &[u8]) -> io::Result<usize> {
        if !self.vnet {
            return (&self.file).write(datagram);
        }
        // A zeroed header: no segmentation, checksum complete.
        let header = [0u8; VNET_HDR_LEN];
        let written =
            (&self.file).write_vectored(&[IoSlice::new(&header), IoSlice::new(datagram)])?;
        Ok(written.saturating_sub(VNET_HDR_LEN))
    }

    /// Writes a datagram that may be a TCP super-segment of `segment_size`-byte wire segments:
    /// with offloads the kernel cuts it up (TSO, as for a virtio-net guest), otherwise it is
    /// cut here ([`super::gso::split_tcp`]). `WouldBlock` when the kernel queue is full.
    pub fn send_segmented(&self, datagram: &[u8], segment_size: Option<u16>) -> io::Result<()> {
        let tso = match segment_size {
            Some(size) if self.vnet => tso_headers(datagram, self.l3_offset(), size),
            _ => None,
        };
        let Some(tso) = tso else {
            return match segment_size {
                Some(size) => {
                    super::send_pieces(datagram, size, |piece| self.send(piece).map(|_| ()))
                }
                None => self.send(datagram).map(|_| ()),
            };
        };
        let headers = &tso.headers[..tso.len];
        // A TUN write takes the whole datagram or fails; the count says nothing more.
        let _written = (&self.file).write_vectored(&[
            IoSlice::new(&tso.vnet),
            IoSlice::new(headers),
            IoSlice::new(&datagram[tso.len..]),
        ])?;
        Ok(())
    }

    /// Writes a TCP super-segment given as its headers (IPv4 and TCP, on a TUN) and its
    /// payload in two slices, with one gathering write and no copy of the payload here. On a
    /// device without TSO, or for anything TSO does not take, the pieces are put together
    /// and sent as [`TunDevice::send_segmented`] would.
    pub fn send_gathered(
        &self,
        headers: &[u8],
        payload: (&[u8], &[u8]),
        segment_size: Option<u16>,
    ) -> io::Result<()> {
        let total = headers.len() + payload.0.len() + payload.1.len();
        // A super-segment is cut by the kernel; a plain segment (one whose payload is shared
        // bytes, see `Stack::send_shared`) only has its checksum completed there.
        let size =
            segment_size.filter(|&size| total.saturating_sub(headers.len()) > usize::from(size));
        let tso = if self.vnet {
            tso_headers_for(headers, total, self.l3_offset(), size)
        } else {
            None
        };
        let Some(tso) = tso else {
            return self.send_segmented(&super::assemble(headers, payload), segment_size);
        };
        // A TUN write takes the whole datagram or fails; the count says nothing more.
        let _written = (&self.file).write_vectored(&[
            IoSlice::new(&tso.vnet),
            IoSlice::new(&tso.headers[..tso.len]),
            IoSlice::new(payload.0),
            IoSlice::new(payload.1),
        ])?;
        Ok(())
    }

    /// Where the IPv4 header starts in what this device carries: 0 on a TUN, after the
    /// Ethernet header on a TAP.
    fn l3_offset(&self) -> usize {
        if self.tap {
            ETHERNET_HEADER_LEN
        } else {
            0
        }
    }

    /// True for a TAP (Ethernet frames), false for a TUN (IPv4 datagrams).
    pub fn is_tap(&self) -> bool {
        self.tap
    }

    /// The interface name the kernel reports, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True when the kernel may hand us super-segments (offloads negotiated).
    pub fn offloads(&self) -> bool {
        self.vnet
    }

    /// The interface MTU, so the stack can size its segments to fit.
    pub fn mtu(&self) -> io::Result<usize> {
        read_mtu(&interface_dir(&self.name))
    }
}

/// What the stack may assume about a datagram's checksum. Only TCP segments may skip the sum;
/// anything else (ICMP, and on a TAP anything but IPv4) is checked as usual, so a half-done
/// checksum is finished here first. `l3` is where the IPv4 header starts (after the Ethernet
/// header on a TAP); the header's offsets count from the start of what was read.
fn received_checksum(header: &[u8; VNET_HDR_LEN], datagram: &mut [u8], l3: usize) -> RxChecksum {
    let mut checksum = checksum_flags(header);
    let ipv4 = l3 == 0 || datagram.get(12..14) == Some(&[0x08, 0x00]);
    if !ipv4 || datagram.get(l3 + IPV4_PROTOCOL_OFFSET) != Some(&tcp_wire::PROTOCOL) {
        complete_checksum(datagram, &mut checksum);
        checksum = RxChecksum::Unknown;
    }
    checksum
}

/// What the virtio-net header says about the transport checksum: left for us to complete
/// (`NEEDS_CSUM`, a datagram that never left this host), already verified (`DATA_VALID`), or
/// nothing.
fn checksum_flags(header: &[u8; VNET_HDR_LEN]) -> RxChecksum {
    if header[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM != 0 {
        RxChecksum::Partial {
            // Legacy virtio-net headers (no TUNSETVNETLE/BE) are in the host's byte order.
            start: u16::from_ne_bytes([header[6], header[7]]),
            offset: u16::from_ne_bytes([header[8], header[9]]),
        }
    } else if header[0] & VIRTIO_NET_HDR_F_DATA_VALID != 0 {
        RxChecksum::Verified
    } else {
        RxChecksum::Unknown
    }
}

/// The wire segment size a super-segment stands for (`gso_size`), when the header says it is
/// one (`gso_type` other than none).
fn segment_size(header: &[u8; VNET_HDR_LEN]) -> Option<u16> {
    let gso_size = u16::from_ne_bytes([header[4], header[5]]);
    (header[1] & !VIRTIO_NET_HDR_GSO_ECN != VIRTIO_NET_HDR_GSO_NONE && gso_size > 0)
        .then_some(gso_size)
}

/// What goes before a super-segment's payload on a TUN with TSO: the virtio-net header and
/// the (Ethernet,) IPv4 and TCP headers with the checksum left for the kernel to finish.
#[derive(Debug)]
struct TsoHeaders {
    vnet: [u8; VNET_HDR_LEN],
    headers: [u8; MAX_HEADERS_LEN],
    /// Ethernet (on a TAP), IPv4 and TCP header bytes in `headers`.
    len: usize,
}

/// The virtio-net header asking the kernel to segment `datagram` (an IPv4 TCP segment with
/// more than `segment_size` payload bytes) at `segment_size` and to complete each piece's
/// checksum: `NEEDS_CSUM` with `csum_start` at the TCP header and `csum_offset` at its checksum
/// field, `GSO_TCPV4`, `hdr_len` the headers. As for `CHECKSUM_PARTIAL` (the kernel's
/// `virtio_net_hdr_to_skb`, then `tcp4_gso_segment`), the checksum field holds the
/// pseudo-header sum of the whole super-segment, not complemented. `None` for anything else.
/// On a TAP, `frame` starts with an Ethernet header and the IPv4 header at `l3`; the offsets
/// in the virtio-net header count from the frame's start.
fn tso_headers(frame: &[u8], l3: usize, segment_size: u16) -> Option<TsoHeaders> {
    tso_headers_for(frame, frame.len(), l3, Some(segment_size))
}

/// [`tso_headers`] for a frame of `frame_len` bytes of which `frame` holds at least the
/// headers (the payload may be elsewhere: `TunDevice::send_gathered`). Without a
/// `segment_size`, the virtio-net header asks only for the checksum (`NEEDS_CSUM`, no GSO):
/// for a single segment whose payload was not read here.
fn tso_headers_for(
    frame: &[u8],
    frame_len: usize,
    l3: usize,
    segment_size: Option<u16>,
) -> Option<TsoHeaders> {
    let link_header = frame.get(..l3)?;
    let datagram = &frame[l3..];
    let datagram_len = frame_len.checked_sub(l3)?;
    let first = *datagram.first()?;
    let ip_len = usize::from(first & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*datagram.get(2)?, *datagram.get(3)?]));
    let tcp_len = usize::from(datagram.get(ip_len + 12)? >> 4) * 4;
    let len = ip_len + tcp_len;
    let valid = first >> 4 == 4
        && ip_len >= 20
        && tcp_len >= 20
        && datagram.get(IPV4_PROTOCOL_OFFSET) == Some(&tcp_wire::PROTOCOL)
        && total == datagram_len
        && datagram.len() >= ip_len + tcp_len
        && segment_size.is_none_or(|size| size > 0 && total > len + usize::from(size));
    if !valid {
        return None;
    }
    let mut headers = [0u8; MAX_HEADERS_LEN];
    headers[..l3].copy_from_slice(link_header);
    headers[l3..l3 + len].copy_from_slice(&datagram[..len]);
    let address = |at: usize| {
        std::net::Ipv4Addr::from(<[u8; 4]>::try_from(&datagram[at..at + 4]).unwrap_or_default())
    };
    let segment_len = u16::try_from(total - ip_len).ok()?;
    let partial = tcp_wire::partial_checksum(address(12), address(16), segment_len);
    let field = l3 + ip_len + TCP_CHECKSUM_OFFSET;
    headers[field..field + 2].copy_from_slice(&partial.to_be_bytes());
    let mut vnet = [0u8; VNET_HDR_LEN];
    vnet[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    // Legacy virtio-net headers are in the host's byte order.
    vnet[2..4].copy_from_slice(&((l3 + len) as u16).to_ne_bytes());
    if let Some(size) = segment_size {
        vnet[1] = VIRTIO_NET_HDR_GSO_TCPV4;
        vnet[4..6].copy_from_slice(&size.to_ne_bytes());
    }
    vnet[6..8].copy_from_slice(&((l3 + ip_len) as u16).to_ne_bytes());
    vnet[8..10].copy_from_slice(&(TCP_CHECKSUM_OFFSET as u16).to_ne_bytes());
    Some(TsoHeaders {
        vnet,
        headers,
        len: l3 + len,
    })
}

/// Turns on checksum and TCP segmentation offloads; false when the kernel refuses them (then the
/// header is still there but never asks for anything).
fn enable_offloads(fd: RawFd) -> io::Result<bool> {
    let size: libc::c_int = VNET_HDR_LEN as libc::c_int;
    // SAFETY: TUNSETVNETHDRSZ reads an int through the pointer; `fd` is our TUN descriptor.
    if unsafe { libc::ioctl(fd, libc::TUNSETVNETHDRSZ, &size) } == -1 {
        return Err(io::Error::last_os_error());
    }
    let offloads = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6;
    // SAFETY: TUNSETOFFLOAD takes its argument by value.
    let result = unsafe { libc::ioctl(fd, libc::TUNSETOFFLOAD, libc::c_ulong::from(offloads)) };
    Ok(result != -1)
}

impl Drop for TunDevice {
    /// Offload flags outlive the program that set them on a persistent TUN; the next program
    /// to attach (smoltcp, an older tool) may not expect 64 KiB super-segments, so leave the
    /// device as plain as we found it.
    fn drop(&mut self) {
        if self.vnet {
            let _ = clear_offloads(self.file.as_raw_fd());
        }
    }
}

impl AsRawFd for TunDevice {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl super::Device for TunDevice {
    fn recv(&mut self, _now: Instant, buf: &mut [u8]) -> io::Result<Received> {
        TunDevice::recv(self, buf)
    }

    fn send(&mut self, _now: Instant, datagram: &[u8]) -> io::Result<()> {
        TunDevice::send(self, datagram).map(|_| ())
    }

    fn send_segmented(
        &mut self,
        _now: Instant,
        datagram: &[u8],
        segment_size: Option<u16>,
    ) -> io::Result<()> {
        TunDevice::send_segmented(self, datagram, segment_size)
    }

    fn gathers(&self) -> bool {
        self.vnet && !self.tap
    }

    fn send_gathered(
        &mut self,
        _now: Instant,
        headers: &[u8],
        payload: (&[u8], &[u8]),
        segment_size: Option<u16>,
    ) -> io::Result<()> {
        TunDevice::send_gathered(self, headers, payload, segment_size)
    }
}

fn interface_dir(name: &str) -> PathBuf {
    Path::new("/sys/class/net").join(name)
}

fn check_name(name: &str) -> Result<(), DeviceError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name != "."
        && name != ".."
        && !name.contains(|c: char| c == '/' || c.is_whitespace() || c == '\0');
    if valid {
        Ok(())
    } else {
        Err(DeviceError::InvalidName {
            name: name.to_owned(),
        })
    }
}

fn classify_attach_error(name: &str, tap: bool, source: io::Error) -> DeviceError {
    let name = name.to_owned();
    match source.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::ENXIO) => DeviceError::NoTunDriver,
        Some(libc::EACCES) => DeviceError::TunDriverNotAccessible,
        Some(libc::EPERM) => DeviceError::PermissionDenied { name },
        Some(libc::EBUSY) => DeviceError::Busy { name },
        Some(libc::EINVAL) if tap => DeviceError::NotTap { name },
        Some(libc::EINVAL) => DeviceError::NotTun { name },
        _ => DeviceError::Io { name, source },
    }
}

/// Turns off checksum and segmentation offloads that an earlier program may have left enabled on
/// a persistent interface; kernels without the ioctl (EINVAL) have none to clear.
fn clear_offloads(fd: RawFd) -> io::Result<()> {
    let no_offloads: libc::c_uint = 0;
    // SAFETY: TUNSETOFFLOAD takes its argument by value; `fd` is a TUN descriptor we own.
    let result = unsafe { libc::ioctl(fd, libc::TUNSETOFFLOAD, libc::c_ulong::from(no_offloads)) };
    if result == -1 {
        let error = io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EINVAL) {
            return Err(error);
        }
    }
    Ok(())
}

fn read_mtu(interface_dir: &Path) -> io::Result<usize> {
    let text = std::fs::read_to_string(interface_dir.join("mtu"))?;
    text.trim().parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "unexpected MTU {:?} in {}",
                text.trim(),
                interface_dir.display()
            ),
        )
    })
}

impl TunDevice {
    /// Waits (bounded) until the kernel reports the link up after we attached.
    ///
    /// Attaching turns the carrier on, but the kernel activates the queue only when its
    /// link-watch work runs, a few milliseconds later; until then it drops what it routes to
    /// the device, so a SYN-ACK arriving in that gap would cost a whole initial RTO.
    pub fn wait_until_up(&self, limit: std::time::Duration) -> bool {
        let path = interface_dir(&self.name).join("operstate");
        let deadline = std::time::Instant::now() + limit;
        loop {
            let state = std::fs::read_to_string(&path).unwrap_or_default();
            if state.trim() == "up" || state.trim() == "unknown" {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_virtio_header_says_what_is_known_of_the_checksum() {
        let mut header = [0u8; VNET_HDR_LEN];
        assert_eq!(checksum_flags(&header), RxChecksum::Unknown);
        header[0] = VIRTIO_NET_HDR_F_DATA_VALID;
        assert_eq!(checksum_flags(&header), RxChecksum::Verified);
        // csum_start 20 and csum_offset 16, in the host's byte order as the kernel writes them.
        header = [VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        header[6..8].copy_from_slice(&20u16.to_ne_bytes());
        header[8..10].copy_from_slice(&16u16.to_ne_bytes());
        assert_eq!(
            checksum_flags(&header),
            RxChecksum::Partial {
                start: 20,
                offset: 16
            }
        );
    }

    #[test]
    fn only_tcp_keeps_the_kernels_word_and_anything_else_is_completed() {
        // An ICMP echo request whose checksum the kernel left half done (just zero here: ICMP
        // has no pseudo-header).
        let mut icmp = vec![
            0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 1, 0, 0, 10, 77, 1, 2, 10, 77, 0, 2,
        ];
        icmp.extend_from_slice(&[8, 0, 0, 0, 0x12, 0x34, 0, 1]);
        let mut header = [VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        header[6..8].copy_from_slice(&20u16.to_ne_bytes());
        header[8..10].copy_from_slice(&2u16.to_ne_bytes());
        assert_eq!(
            received_checksum(&header, &mut icmp, 0),
            RxChecksum::Unknown
        );
        assert_eq!(
            crate::wire::checksum::checksum(&icmp[20..]),
            0,
            "now a valid ICMP sum"
        );

        let mut tcp = vec![0u8; 40];
        tcp[IPV4_PROTOCOL_OFFSET] = tcp_wire::PROTOCOL;
        let before = tcp.clone();
        header[8..10].copy_from_slice(&16u16.to_ne_bytes());
        assert!(matches!(
            received_checksum(&header, &mut tcp, 0),
            RxChecksum::Partial {
                start: 20,
                offset: 16
            }
        ));
        assert_eq!(
            tcp, before,
            "a TCP segment is left for the stack, untouched"
        );
    }

    /// A 20-byte IPv4 header, a 32-byte TCP header and `payload` bytes, checksums correct.
    fn tcp_datagram(payload: usize) -> Vec<u8> {
        let total = (20 + 32 + payload) as u16;
        let mut d = vec![
            0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 77, 0, 2, 10, 77, 1, 2,
        ];
        d[2..4].copy_from_slice(&total.to_be_bytes());
        d.extend_from_slice(&[0, 80, 0x9c, 0x40, 0, 0, 0, 1, 0, 0, 0, 7, 0x80, 0x18, 1, 0]);
        d.extend_from_slice(&[0; 16]);
        d.extend((0..payload).map(|i| i as u8));
        let (src, dst) = (
            std::net::Ipv4Addr::new(10, 77, 0, 2),
            std::net::Ipv4Addr::new(10, 77, 1, 2),
        );
        tcp_wire::fill_checksum(src, dst, &mut d[20..]);
        d
    }

    #[test]
    fn a_super_segment_asks_the_kernel_for_tso_and_a_partial_checksum() {
        let datagram = tcp_datagram(3 * 1448);
        let tso = tso_headers(&datagram, 0, 1448).expect("a super-segment");
        let field = |at: usize| u16::from_ne_bytes([tso.vnet[at], tso.vnet[at + 1]]);
        assert_eq!(tso.vnet[0], VIRTIO_NET_HDR_F_NEEDS_CSUM);
        assert_eq!(tso.vnet[1], VIRTIO_NET_HDR_GSO_TCPV4);
        assert_eq!(field(2), 52, "hdr_len: IPv4 and TCP headers");
        assert_eq!(field(4), 1448, "gso_size");
        assert_eq!(field(6), 20, "csum_start: the TCP header");
        assert_eq!(field(8), 16, "csum_offset: its checksum field");
        assert_eq!(tso.len, 52);
        assert_eq!(tso.headers[..36], datagram[..36], "headers as they were");
        assert_eq!(tso.headers[38..52], datagram[38..52]);
        assert_completes_to(&tso, &datagram);
    }

    /// What the kernel does with CHECKSUM_PARTIAL: sum from csum_start over the segment with
    /// the pseudo-header sum in the field, and store the complement there. That must give
    /// `datagram`'s correct checksum back.
    fn assert_completes_to(headers: &TsoHeaders, datagram: &[u8]) {
        let mut whole = headers.headers[..headers.len].to_vec();
        whole.extend_from_slice(&datagram[headers.len..]);
        let mut status = RxChecksum::Partial {
            start: 20,
            offset: 16,
        };
        complete_checksum(&mut whole, &mut status);
        assert_eq!(whole, datagram);
    }

    /// `send_gathered` has only the headers at hand: the TSO header made from them and the
    /// datagram's length is the one made from the whole datagram.
    #[test]
    fn tso_headers_from_the_headers_alone_match_the_whole_datagram() {
        let datagram = tcp_datagram(3 * 1448);
        let whole = tso_headers(&datagram, 0, 1448).expect("a super-segment");
        let alone =
            tso_headers_for(&datagram[..52], datagram.len(), 0, Some(1448)).expect("headers");
        assert_eq!(alone.vnet, whole.vnet);
        assert_eq!(alone.headers[..alone.len], whole.headers[..whole.len]);
        assert!(
            tso_headers_for(&datagram[..40], datagram.len(), 0, Some(1448)).is_none(),
            "the TCP header cut short"
        );
        assert!(
            tso_headers_for(&datagram[..52], datagram.len() - 1, 0, Some(1448)).is_none(),
            "length disagrees with the header"
        );
    }

    /// A plain segment whose payload the stack did not read (shared bytes) asks the kernel for
    /// its checksum only: `NEEDS_CSUM` without GSO, the pseudo-header sum in the field, which
    /// completed over the payload is the datagram's correct checksum.
    #[test]
    fn a_plain_segment_with_its_payload_elsewhere_asks_for_the_checksum_only() {
        let datagram = tcp_datagram(700);
        let alone = tso_headers_for(&datagram[..52], datagram.len(), 0, None).expect("headers");
        assert_eq!(alone.vnet[0], VIRTIO_NET_HDR_F_NEEDS_CSUM);
        assert_eq!(alone.vnet[1], 0, "no segmentation");
        assert_eq!(alone.vnet[4..6], [0, 0], "no segment size");
        assert_eq!(u16::from_ne_bytes([alone.vnet[6], alone.vnet[7]]), 20);
        assert_eq!(u16::from_ne_bytes([alone.vnet[8], alone.vnet[9]]), 16);
        assert_completes_to(&alone, &datagram);
    }

    /// On a TAP the virtio-net header's offsets count from the frame: the Ethernet header
    /// is part of `hdr_len` and `csum_start`, and goes before the IPv4 header unchanged.
    #[test]
    fn a_tap_super_segment_counts_the_ethernet_header_in_its_offsets() {
        let datagram = tcp_datagram(3 * 1448);
        let mut frame = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
        frame.extend_from_slice(&datagram);
        let tso = tso_headers(&frame, ETHERNET_HEADER_LEN, 1448).expect("a super-segment");
        let field = |at: usize| u16::from_ne_bytes([tso.vnet[at], tso.vnet[at + 1]]);
        assert_eq!(field(2), 14 + 52, "hdr_len");
        assert_eq!(field(6), 14 + 20, "csum_start");
        assert_eq!(field(8), 16, "csum_offset");
        assert_eq!(tso.len, 14 + 52);
        assert_eq!(tso.headers[..14], frame[..14]);
        let mut whole = tso.headers[..tso.len].to_vec();
        whole.extend_from_slice(&frame[tso.len..]);
        let mut status = RxChecksum::Partial {
            start: 34,
            offset: 16,
        };
        complete_checksum(&mut whole, &mut status);
        assert_eq!(whole, frame);
    }

    #[test]
    fn anything_but_a_tcp_super_segment_gets_no_tso_header() {
        assert!(
            tso_headers(&tcp_datagram(1448), 0, 1448).is_none(),
            "one segment"
        );
        assert!(tso_headers(&tcp_datagram(3000), 0, 0).is_none(), "no size");
        let mut udp = tcp_datagram(3000);
        udp[IPV4_PROTOCOL_OFFSET] = 17;
        assert!(tso_headers(&udp, 0, 1000).is_none());
        let mut short = tcp_datagram(3000);
        short.truncate(2000);
        assert!(
            tso_headers(&short, 0, 1000).is_none(),
            "length disagrees with the header"
        );
        assert!(tso_headers(&[0x45, 0, 0], 0, 1000).is_none());
    }

    #[test]
    fn missing_interface_says_how_to_create_it() {
        let error = TunDevice::open("tsnosuch0", false).unwrap_err();
        assert!(matches!(error, DeviceError::Missing { .. }));
        assert_eq!(
            error.to_string(),
            "interface tsnosuch0 does not exist: run `sudo setup/up` first (or `sudo just setup`)"
        );
    }

    #[test]
    fn names_that_cannot_be_interfaces_are_rejected_before_any_system_call() {
        for name in ["", "a/b", "sixteen-chars-xx", "..", "tun 0"] {
            let error = TunDevice::open(name, false).unwrap_err();
            assert!(
                matches!(error, DeviceError::InvalidName { .. }),
                "{name:?} gave {error}"
            );
        }
    }

    #[test]
    fn attach_errors_map_to_actionable_messages() {
        let cases = [
            (libc::EPERM, "sudo setup/down && sudo setup/up"),
            (libc::EACCES, "/dev/net/tun"),
            (libc::EBUSY, "busy"),
            (libc::EINVAL, "not a single-queue TUN device"),
            (libc::ENOENT, "modprobe tun"),
            (libc::EIO, "cannot open interface tun0"),
        ];
        for (errno, expected) in cases {
            let message = classify_attach_error("tun0", false, io::Error::from_raw_os_error(errno))
                .to_string();
            assert!(message.contains(expected), "errno {errno}: {message}");
        }
    }

    #[test]
    fn mtu_is_read_from_sysfs_text() {
        let dir = std::env::temp_dir().join(format!("tunstack-mtu-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("mtu"), "1500\n").unwrap();
        assert_eq!(read_mtu(&dir).unwrap(), 1500);
        std::fs::write(dir.join("mtu"), "garbage\n").unwrap();
        assert_eq!(
            read_mtu(&dir).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn loopback_mtu_is_readable() {
        assert!(read_mtu(&interface_dir("lo")).unwrap() > 0);
    }
}
