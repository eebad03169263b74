//! Devices: the only code that reads and writes datagrams.
//!
//! A device moves whole IPv4 datagrams between the kernel and the stack and never looks inside
//! them, so the protocol code stays testable without a kernel.

pub mod tun;

use std::io;

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
