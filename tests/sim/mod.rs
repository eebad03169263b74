//! A deterministic network simulator for whole-stack tests.
//!
//! Two [`Stack`](tunstack::stack::Stack)s talk over a pair of simulated links under a virtual
//! clock: time only moves when the loop jumps it to the next event (a datagram arriving or a
//! stack deadline), so a run of minutes of virtual time takes milliseconds and is
//! reproducible bit for bit from its seed. Nothing here sleeps or reads the real clock for
//! protocol time.
//!
//! The simulator runs production code wherever it can, so what it measures is what ships:
//! each stack is fed by the production [`Driver`](tunstack::driver::Driver) (the event loop's
//! batch and flush policy), each link's loss, duplication, reordering, corruption and delay
//! come from the production `--impair` engine
//! ([`Impairer`](tunstack::device::fault::Impairer)), and captures are written by the
//! production pcap writer. Only what has no production counterpart lives here:
//!
//! * [`clock`]: a base `Instant` taken once plus a virtual offset.
//! * [`link`]: a bandwidth bottleneck with a bounded drop-tail queue and an MTU check in front
//!   of the impairer, and [`Port`], the [`Device`](tunstack::device::Device) a stack sees.
//! * [`endpoint`]: the application on either side (bulk sender or verifying receiver) and the
//!   deterministic byte [`Pattern`] it moves.
//! * [`pair`]: a client and a server joined by two links, and the loop that runs them.

// Each test crate that includes the simulator uses only part of it.
#![allow(dead_code)]

pub mod clock;
pub mod endpoint;
pub mod link;
pub mod pair;

use std::net::Ipv4Addr;

pub use clock::Clock;
pub use endpoint::{Endpoint, Pattern, Role, Side};
pub use link::{write_pcaps, Link, LinkConfig, LinkStats, Port};
pub use pair::{Limits, Pair, RunError};

/// The client's address.
pub const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// The server's address.
pub const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 2);
/// The port the server listens on.
pub const SERVER_PORT: u16 = 80;
/// The MTU of both stacks and of the links.
pub const MTU: usize = 1500;
