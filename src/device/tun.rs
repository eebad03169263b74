//! A Linux TUN interface carrying bare IPv4 datagrams (no packet-info prefix).

use std::io;
use std::os::unix::io::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use tun_tap::{Iface, Mode};

use super::DeviceError;

/// Longest interface name Linux accepts (IFNAMSIZ minus the terminating NUL).
const MAX_NAME_LEN: usize = 15;

/// An attached, non-blocking TUN interface, so the event loop can poll it with the socket set.
///
/// The interface must exist already (see `setup/up`): attaching to a persistent TUN owned by the
/// current user needs no privileges, creating one does.
#[derive(Debug)]
pub struct TunDevice {
    iface: Iface,
    name: String,
}

impl TunDevice {
    /// Attaches to the existing TUN interface `name`, with offloads off so every read is one
    /// plain IPv4 datagram.
    pub fn open(name: &str) -> Result<TunDevice, DeviceError> {
        check_name(name)?;
        if !interface_dir(name).exists() {
            return Err(DeviceError::Missing {
                name: name.to_owned(),
            });
        }
        let iface = Iface::without_packet_info(name, Mode::Tun)
            .map_err(|source| classify_attach_error(name, source))?;
        let io_error = |source| DeviceError::Io {
            name: name.to_owned(),
            source,
        };
        iface.set_non_blocking().map_err(io_error)?;
        clear_offloads(iface.as_raw_fd()).map_err(io_error)?;
        Ok(TunDevice {
            name: iface.name().to_owned(),
            iface,
        })
    }

    /// Reads one datagram into `buf`; `WouldBlock` when none is queued.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.iface.recv(buf)
    }

    /// Writes one whole datagram; `WouldBlock` when the kernel queue is full.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.iface.send(buf)
    }

    /// The interface name the kernel reports, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface MTU, so the stack can size its segments to fit.
    pub fn mtu(&self) -> io::Result<usize> {
        read_mtu(&interface_dir(&self.name))
    }
}

impl AsRawFd for TunDevice {
    fn as_raw_fd(&self) -> RawFd {
        self.iface.as_raw_fd()
    }
}

impl super::Device for TunDevice {
    fn recv(&mut self, _now: std::time::Instant, buf: &mut [u8]) -> io::Result<usize> {
        TunDevice::recv(self, buf)
    }

    fn send(&mut self, _now: std::time::Instant, datagram: &[u8]) -> io::Result<()> {
        TunDevice::send(self, datagram).map(|_| ())
    }

    fn raw_fd(&self) -> RawFd {
        self.as_raw_fd()
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

fn classify_attach_error(name: &str, source: io::Error) -> DeviceError {
    let name = name.to_owned();
    match source.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::ENXIO) => DeviceError::NoTunDriver,
        Some(libc::EACCES) => DeviceError::TunDriverNotAccessible,
        Some(libc::EPERM) => DeviceError::PermissionDenied { name },
        Some(libc::EBUSY) => DeviceError::Busy { name },
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
    fn missing_interface_says_how_to_create_it() {
        let error = TunDevice::open("tsnosuch0").unwrap_err();
        assert!(matches!(error, DeviceError::Missing { .. }));
        assert_eq!(
            error.to_string(),
            "interface tsnosuch0 does not exist: run `sudo setup/up` first (or `sudo just setup`)"
        );
    }

    #[test]
    fn names_that_cannot_be_interfaces_are_rejected_before_any_system_call() {
        for name in ["", "a/b", "sixteen-chars-xx", "..", "tun 0"] {
            let error = TunDevice::open(name).unwrap_err();
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
            let message =
                classify_attach_error("tun0", io::Error::from_raw_os_error(errno)).to_string();
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
