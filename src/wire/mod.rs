//! Bytes on the wire: checksums, sequence numbers and TCP segment views.

pub mod checksum;
pub mod seq;
pub mod tcp;

pub use seq::SeqNum;

/// Whether a received datagram's transport checksum still has to be checked.
///
/// With offloads the kernel marks datagrams that never crossed a wire (checksum left for the
/// device to fill in) or whose checksum it verified already; summing 64 KB super-segments again
/// would cost more than anything else we do with them, and the kernel's own TCP trusts the same
/// marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumStatus {
    /// Verify it: the datagram came from anywhere (a wire, a test, a fault injector).
    #[default]
    Unverified,
    /// The kernel vouches for the transport payload; the checksum field may hold only the
    /// pseudo-header sum (offload), so it must not be checked either.
    Trusted,
}
pub use tcp::{Control, SackBlock, TcpOptions, TcpRepr, Timestamps};
