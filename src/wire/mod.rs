//! Bytes on the wire: checksums, sequence numbers and TCP segment views.

pub mod checksum;
pub mod seq;
pub mod tcp;

pub use seq::SeqNum;
pub use tcp::{Control, SackBlock, TcpOptions, TcpRepr, Timestamps};
