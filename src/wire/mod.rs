//! Bytes on the wire: checksums, sequence numbers and TCP segment views.

pub mod checksum;
