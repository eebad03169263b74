//! tunstack: a userspace IPv4/TCP stack for Linux TUN devices.
//!
//! The protocol core (`wire`, `ethernet`, `arp`, `link`, `ipv4`, `tcp`, `stack`, `http`) is sans-IO: it
//! takes bytes and an explicit `Instant` and hands back datagrams to send and the next deadline. `driver` holds the
//! batch and flush policy between a device and the stack, again without I/O of its own. Only
//! `device` and `event_loop` touch file descriptors and the clock.

pub mod arp;
pub mod cli;
pub mod device;
pub mod driver;
pub mod ethernet;
pub mod event_loop;
pub mod fetch;
pub mod host;
pub mod http;
pub mod ipv4;
pub mod link;
pub mod plot;
pub mod serve;
pub mod stack;
pub mod tcp;
/// Datagram builders for tests and fuzz harnesses (the `testing` feature).
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod trace;
pub mod wire;
