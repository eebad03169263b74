//! Devices: the only code that reads and writes datagrams.
//!
//! A device moves whole IPv4 datagrams between the kernel and the stack and never looks inside
//! them, so the protocol code stays testable without a kernel.

pub mod fault;
pub mod pcap;
pub mod tun;

use std::io;
use std::os::fd::RawFd;
use std::time::Instant;

/// A source and sink of whole IPv4 datagrams that the event loop can wait on.
///
/// Wrappers compose (`Fault<Pcap<Tun>>`): each forwards to the device inside it and may hold
/// datagrams back, which is why a device has deadlines of its own.
pub trait Device {
    /// Reads one datagram into `buf`; `WouldBlock` when none is ready now.
    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes one datagram (or takes it to write later); `WouldBlock` when it cannot now.
    fn send(&mut self, now: Instant, datagram: &[u8]) -> io::Result<()>;
    /// Moves held datagrams whose time has come; called every turn of the loop.
    fn poll(&mut self, _now: Instant) -> io::Result<()> {
        Ok(())
    }
    /// When `poll` or `recv` will have something without the descriptor becoming readable.
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    /// The descriptor to wait on.
    fn raw_fd(&self) -> RawFd;
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

/// Boxed devices compose like the concrete ones, so wrappers can be chosen at run time.
impl<D: Device + ?Sized> Device for Box<D> {
    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<usize> {
        (**self).recv(now, buf)
    }
    fn send(&mut self, now: Instant, datagram: &[u8]) -> io::Result<()> {
        (**self).send(now, datagram)
    }
    fn poll(&mut self, now: Instant) -> io::Result<()> {
        (**self).poll(now)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        (**self).poll_timeout()
    }
    fn raw_fd(&self) -> RawFd {
        (**self).raw_fd()
    }
}
