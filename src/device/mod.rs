//! Devices: the only code that reads and writes datagrams.
//!
//! A device moves whole IPv4 datagrams between the kernel and the stack and never looks inside
//! them, so the protocol code stays testable without a kernel.

pub mod ethernet;
pub mod fault;
pub mod gso;
pub mod pcap;
pub mod tun;

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

pub use crate::link::LinkEvent;
use crate::trace::{ImpairRecord, TraceRecord};
use crate::wire::{checksum, ChecksumStatus};

/// A source and sink of whole IPv4 datagrams.
///
/// Wrappers compose (`Fault<Pcap<Tun>>`): each forwards to the device inside it and may hold
/// datagrams back, which is why a device has deadlines of its own. Waiting is not part of it:
/// the event loop waits on a descriptor ([`FdDevice`]), the simulator in the tests on virtual
/// time, so a device without a descriptor need not pretend to have one.
pub trait Device {
    /// Reads one datagram into `buf`; `WouldBlock` when none is ready now.
    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Received>;
    /// Writes one datagram (or takes it to write later); `WouldBlock` when it cannot now.
    fn send(&mut self, now: Instant, datagram: &[u8]) -> io::Result<()>;
    /// Writes a datagram that may be a TCP super-segment standing for wire segments of
    /// `segment_size` payload bytes (`Stack::poll_transmit_segmented`). A device that cannot
    /// hand it on whole (this default) cuts it with [`gso::split_tcp`] and sends each piece,
    /// as GSO would; only the first piece's `WouldBlock` refuses the datagram, a later one is
    /// a piece lost on the way.
    fn send_segmented(
        &mut self,
        now: Instant,
        datagram: &[u8],
        segment_size: Option<u16>,
    ) -> io::Result<()> {
        match segment_size {
            Some(size) => send_pieces(datagram, size, |piece| self.send(now, piece)),
            None => self.send(now, datagram),
        }
    }
    /// Whether [`Device::send_gathered`] writes without assembling the datagram first (a TUN
    /// with offloads). Only then does the driver leave payloads in the send buffers; a
    /// wrapper that looks into datagrams (pcap, `--impair`, Ethernet) keeps this default.
    fn gathers(&self) -> bool {
        false
    }
    /// Writes a TCP super-segment given as its headers and its payload (`payload`'s two
    /// slices, in order), as `send_segmented` would write them back to back. This default
    /// assembles it; a device that [`Device::gathers`] writes the pieces as they are.
    fn send_gathered(
        &mut self,
        now: Instant,
        headers: &[u8],
        payload: (&[u8], &[u8]),
        segment_size: Option<u16>,
    ) -> io::Result<()> {
        self.send_segmented(now, &assemble(headers, payload), segment_size)
    }
    /// Moves held datagrams whose time has come; called every turn of the loop.
    fn poll(&mut self, _now: Instant) -> io::Result<()> {
        Ok(())
    }
    /// When `poll` or `recv` will have something without the descriptor becoming readable.
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    /// What the link layer found out that the stack must hear (TAP mode: a next hop that never
    /// answered ARP); wrappers pass it on. A device without a link layer has nothing.
    fn poll_link_event(&mut self) -> Option<LinkEvent> {
        None
    }
    /// `--trace`: start recording what this device (or a wrapper inside it) does to datagrams
    /// on purpose; only `--impair`'s fault injector does anything. Wrappers forward it.
    fn trace_impairments(&mut self) {}
    /// Hands over the impairments recorded since the last call (see `trace_impairments`).
    fn drain_impairments(&mut self, _take: &mut dyn FnMut(ImpairRecord)) {}
    /// Hands over the link layer's trace records (TAP mode: ARP) since the last call; they
    /// are recorded once `trace_impairments` asked for recording. Wrappers forward it.
    fn drain_link_trace(&mut self, _take: &mut dyn FnMut(TraceRecord)) {}
}

/// A device with a descriptor the event loop can wait on (its `as_raw_fd`); wrappers have
/// one when the device inside them does.
pub trait FdDevice: Device + AsRawFd {}

impl<D: Device + AsRawFd + ?Sized> FdDevice for D {}

/// A boxed device chosen at run time keeps its descriptor (std's impl covers sized boxes only).
impl AsRawFd for Box<dyn FdDevice> {
    fn as_raw_fd(&self) -> RawFd {
        (**self).as_raw_fd()
    }
}

/// Cuts a super-segment into the `segment_size`-byte segments it stands for
/// ([`gso::split_tcp`]) and sends each: only the first piece's `WouldBlock` refuses the whole
/// (to be written again later), a later one is one piece lost on the way.
pub fn send_pieces(
    datagram: &[u8],
    segment_size: u16,
    mut send: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut result = Ok(());
    let mut first = true;
    gso::split_tcp(datagram, usize::from(segment_size), |piece| {
        if result.is_err() {
            return;
        }
        match send(piece) {
            Err(err) if !first && err.kind() == io::ErrorKind::WouldBlock => {}
            other => result = other,
        }
        first = false;
    });
    result
}

/// One datagram read into the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Its length, from the start of the buffer.
    pub len: usize,
    /// What the device knows about its transport checksum.
    pub checksum: RxChecksum,
    /// A TCP super-segment (offloads) stands for wire segments of this many payload bytes;
    /// the fault injector cuts it up so that each wire packet meets its own fate.
    pub segment_size: Option<u16>,
}

impl Received {
    /// A datagram the device knows nothing about: the stack checks everything.
    pub fn unverified(len: usize) -> Self {
        Received {
            len,
            checksum: RxChecksum::Unknown,
            segment_size: None,
        }
    }
}

/// What a device (the kernel, through the virtio-net header) says about a received datagram's
/// transport checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxChecksum {
    /// Nothing: the stack verifies it.
    Unknown,
    /// The kernel verified it already; the field is correct.
    Verified,
    /// The datagram never left this host. The field holds only the pseudo-header sum; the sum of
    /// the bytes from `start` belongs at `start + offset`.
    Partial { start: u16, offset: u16 },
}

impl RxChecksum {
    /// What the stack needs to know: whether it must check the sum itself.
    pub fn status(self) -> ChecksumStatus {
        match self {
            RxChecksum::Unknown => ChecksumStatus::Unverified,
            RxChecksum::Verified | RxChecksum::Partial { .. } => ChecksumStatus::Trusted,
        }
    }
}

/// Fills in a partial checksum, so that the datagram reads as it would on a wire: for captures,
/// and before a fault injector corrupts it (the stack must then catch the corruption).
pub fn complete_checksum(datagram: &mut [u8], checksum: &mut RxChecksum) {
    let RxChecksum::Partial { start, offset } = *checksum else {
        return;
    };
    let start = usize::from(start);
    let field = start + usize::from(offset);
    if field + 2 <= datagram.len() {
        let value = checksum::finish(checksum::accumulate(0, &datagram[start..]));
        datagram[field..field + 2].copy_from_slice(&value.to_be_bytes());
    }
    *checksum = RxChecksum::Verified;
}

/// Why a device could not be opened; every variant tells the user how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The interface name cannot name a Linux interface (empty, too long or with a `/`).
    #[error("'{name}' is not a valid interface name (1 to 15 bytes, no '/' or whitespace)")]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// There is no interface of that name, so there is nothing to attach to.
    #[error("interface {name} does not exist: run `sudo setup/up` first (or `sudo just setup`)")]
    Missing {
        /// The interface that was asked for.
        name: String,
    },
    /// TAP mode: there is no interface of that name.
    #[error("interface {name} does not exist: run `sudo setup/up --tap` first (or give --iface)")]
    MissingTap {
        /// The interface that was asked for.
        name: String,
    },
    /// The kernel has no TUN driver loaded, or `/dev/net/tun` is absent.
    #[error("/dev/net/tun is missing: load the TUN driver with `sudo modprobe tun`")]
    NoTunDriver,
    /// `/dev/net/tun` itself may not be opened by this user (some systems ship it as 0600).
    #[error(
        "permission denied opening /dev/net/tun: `sudo setup/up` makes it usable by everyone \
         (mode 0666, the usual one), or run as root"
    )]
    TunDriverNotAccessible,
    /// The interface belongs to another user.
    #[error(
        "permission denied attaching to {name}: the interface belongs to another user; \
         recreate it for yourself with `sudo setup/down && sudo setup/up` (or run as root)"
    )]
    PermissionDenied {
        /// The interface that was asked for.
        name: String,
    },
    /// Another program is already attached to the interface.
    #[error("interface {name} is busy: another program (an earlier tunstack?) is attached to it")]
    Busy {
        /// The interface that was asked for.
        name: String,
    },
    /// The interface exists but is not a TUN device (or was created multi-queue).
    #[error("interface {name} is not a single-queue TUN device: recreate it with `sudo setup/down && sudo setup/up`")]
    NotTun {
        /// The interface that was asked for.
        name: String,
    },
    /// TAP mode: the interface exists but is not a TAP device (a TUN, say).
    #[error("interface {name} is not a single-queue TAP device: create one with `sudo setup/up --tap` (and use --mode tap only with it)")]
    NotTap {
        /// The interface that was asked for.
        name: String,
    },
    /// Any other failure from the operating system while setting the device up.
    #[error("cannot open interface {name}: {source}")]
    Io {
        /// The interface that was asked for.
        name: String,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
}

/// A datagram given as headers and a payload in two slices ([`Device::send_gathered`]), put
/// together for a device that needs it whole.
pub fn assemble(headers: &[u8], payload: (&[u8], &[u8])) -> Vec<u8> {
    let mut datagram = Vec::with_capacity(headers.len() + payload.0.len() + payload.1.len());
    datagram.extend_from_slice(headers);
    datagram.extend_from_slice(payload.0);
    datagram.extend_from_slice(payload.1);
    // The stack left the TCP checksum to the device (it did not read the payload); a
    // super-segment's pieces get theirs when it is cut, a plain segment gets it here.
    gso::fill_tcp_checksum(&mut datagram);
    datagram
}

/// Boxed devices compose like the concrete ones, so wrappers can be chosen at run time.
impl<D: Device + ?Sized> Device for Box<D> {
    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Received> {
        (**self).recv(now, buf)
    }
    fn send(&mut self, now: Instant, datagram: &[u8]) -> io::Result<()> {
        (**self).send(now, datagram)
    }
    fn send_segmented(
        &mut self,
        now: Instant,
        datagram: &[u8],
        segment_size: Option<u16>,
    ) -> io::Result<()> {
        (**self).send_segmented(now, datagram, segment_size)
    }
    fn gathers(&self) -> bool {
        (**self).gathers()
    }
    fn send_gathered(
        &mut self,
        now: Instant,
        headers: &[u8],
        payload: (&[u8], &[u8]),
        segment_size: Option<u16>,
    ) -> io::Result<()> {
        (**self).send_gathered(now, headers, payload, segment_size)
    }
    fn poll(&mut self, now: Instant) -> io::Result<()> {
        (**self).poll(now)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        (**self).poll_timeout()
    }
    fn poll_link_event(&mut self) -> Option<LinkEvent> {
        (**self).poll_link_event()
    }
    fn trace_impairments(&mut self) {
        (**self).trace_impairments()
    }
    fn drain_impairments(&mut self, take: &mut dyn FnMut(ImpairRecord)) {
        (**self).drain_impairments(take)
    }
    fn drain_link_trace(&mut self, take: &mut dyn FnMut(TraceRecord)) {
        (**self).drain_link_trace(take)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::fault::{Fault, ImpairSpec, Impairer};
    use super::*;
    use crate::wire::{Control, SeqNum, TcpOptions, TcpRepr};

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 2);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
    /// Where the TCP checksum sits in a datagram with a 20-byte IPv4 header.
    const FIELD: usize = 20 + 16;

    /// A 20-byte IPv4 header's worth of filler, then a TCP segment with a correct checksum.
    fn datagram() -> Vec<u8> {
        let payload: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
        let segment = TcpRepr {
            src_port: 8081,
            dst_port: 40000,
            control: Control::Psh,
            seq: SeqNum(1),
            ack: Some(SeqNum(2)),
            window: 512,
            options: TcpOptions::default(),
            payload: &payload,
        };
        let mut bytes = vec![0x45; 20];
        let mut tcp = vec![0; 20 + payload.len()];
        let len = segment.emit(SRC, DST, &mut tcp);
        bytes.extend_from_slice(&tcp[..len]);
        bytes
    }

    /// The datagram as the kernel hands it over with checksum offload: only the pseudo-header
    /// sum, not complemented, in the field.
    fn offloaded(mut bytes: Vec<u8>) -> (Vec<u8>, RxChecksum) {
        let tcp_len = (bytes.len() - 20) as u16;
        let pseudo = !checksum::finish(checksum::pseudo_header(SRC, DST, 6, tcp_len));
        bytes[FIELD..FIELD + 2].copy_from_slice(&pseudo.to_be_bytes());
        (
            bytes,
            RxChecksum::Partial {
                start: 20,
                offset: 16,
            },
        )
    }

    #[test]
    fn a_partial_checksum_is_completed_as_it_would_be_on_a_wire() {
        let wire = datagram();
        let (mut bytes, mut status) = offloaded(wire.clone());
        assert_ne!(bytes, wire);
        assert_eq!(status.status(), ChecksumStatus::Trusted);
        complete_checksum(&mut bytes, &mut status);
        assert_eq!(bytes, wire);
        assert_eq!(status, RxChecksum::Verified);
    }

    #[test]
    fn only_a_partial_checksum_is_touched() {
        for mut status in [RxChecksum::Unknown, RxChecksum::Verified] {
            let mut bytes = datagram();
            bytes[FIELD] ^= 0xff;
            let before = bytes.clone();
            complete_checksum(&mut bytes, &mut status);
            assert_eq!(bytes, before);
        }
        let mut status = RxChecksum::Partial {
            start: 20,
            offset: 16,
        };
        let mut short = vec![0u8; FIELD + 1];
        complete_checksum(&mut short, &mut status);
        assert_eq!(
            short,
            vec![0u8; FIELD + 1],
            "a field past the end is left alone"
        );
    }

    /// Hands out one offloaded datagram, then nothing.
    struct OffloadingDevice(Option<(Vec<u8>, RxChecksum)>);

    impl Device for OffloadingDevice {
        fn recv(&mut self, _now: Instant, buf: &mut [u8]) -> io::Result<Received> {
            let (bytes, checksum) = self.0.take().ok_or(io::ErrorKind::WouldBlock)?;
            buf[..bytes.len()].copy_from_slice(&bytes);
            Ok(Received {
                len: bytes.len(),
                checksum,
                segment_size: None,
            })
        }
        fn send(&mut self, _now: Instant, _datagram: &[u8]) -> io::Result<()> {
            Ok(())
        }
    }

    /// `--impair` acts on wire packets: a super-segment is cut into the segments it stands
    /// for before loss, duplication or corruption is decided for each.
    #[test]
    fn a_fault_injector_impairs_each_wire_segment_of_a_super_segment() {
        let mut whole = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0];
        whole.extend_from_slice(&SRC.octets());
        whole.extend_from_slice(&DST.octets());
        whole.extend_from_slice(&datagram()[20..40]);
        whole.extend((0..4000u32).map(|i| i as u8));
        let total = whole.len() as u16;
        whole[2..4].copy_from_slice(&total.to_be_bytes());
        let inner = OffloadingDevice(Some((whole, RxChecksum::Verified)));
        let mut fault = Fault::new(
            SuperSegments(inner, 1000),
            Some(Impairer::new("delay=1ms".parse().unwrap(), 1)),
            None,
        );
        let t0 = Instant::now();
        let mut buf = vec![0u8; 65535];
        assert!(fault.recv(t0, &mut buf).is_err(), "held for the delay");
        let later = t0 + Duration::from_millis(1);
        let sizes: Vec<usize> = std::iter::from_fn(|| fault.recv(later, &mut buf).ok())
            .map(|r| r.len)
            .collect();
        assert_eq!(sizes, [1040; 4]);
        assert_eq!(fault.stats().0.unwrap().seen, 4);
    }

    /// Marks what the inner device hands out as a super-segment of `.1`-byte segments.
    struct SuperSegments(OffloadingDevice, u16);

    impl Device for SuperSegments {
        fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Received> {
            let received = self.0.recv(now, buf)?;
            Ok(Received {
                segment_size: Some(self.1),
                ..received
            })
        }
        fn send(&mut self, now: Instant, datagram: &[u8]) -> io::Result<()> {
            self.0.send(now, datagram)
        }
    }

    #[test]
    fn a_fault_injector_completes_the_checksum_and_leaves_the_check_to_the_stack() {
        let wire = datagram();
        let inner = OffloadingDevice(Some(offloaded(wire.clone())));
        let spec: ImpairSpec = "delay=1ms".parse().unwrap();
        let mut fault = Fault::new(inner, Some(Impairer::new(spec, 1)), None);
        let t0 = Instant::now();
        let mut buf = vec![0u8; 65535];
        let held = fault.recv(t0, &mut buf).unwrap_err();
        assert_eq!(held.kind(), io::ErrorKind::WouldBlock);
        let received = fault.recv(t0 + Duration::from_millis(1), &mut buf).unwrap();
        assert_eq!(&buf[..received.len], &wire[..]);
        assert_eq!(received.checksum, RxChecksum::Unknown);
    }
}
