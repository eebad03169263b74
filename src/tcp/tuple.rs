//! The 4-tuple that names a TCP connection.

use std::net::SocketAddrV4;

/// A connection's two endpoints as seen from this host (RFC 9293 §3.1: the pair of sockets
/// identifies the connection); the stack demultiplexes segments by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourTuple {
    /// Our address and port.
    pub local: SocketAddrV4,
    /// The peer's address and port.
    pub remote: SocketAddrV4,
}
