//! Fixtures shared by the integration tests (each tests/*.rs that says `mod common;`).
//!
//! * [`segment`]: the one TCP segment builder (`TcpRepr::emit`, wrapped in an IPv4 datagram by
//!   the library's own `tunstack::testing` builder) and its parser counterpart.
//! * [`conn`]: the constants, peers and drivers of the segment-by-segment tests of one
//!   `Connection` (tests/tcp_*.rs, tests/stack.rs).
//! * [`scripted`]: a whole client `Stack` against a peer the test scripts (tests/hostile*.rs,
//!   tests/stack.rs).
//! * [`hostile`]: the proptest configuration and datagram builder of tests/hostile*.rs.

// Every test crate compiles this module and uses only part of it.
#![allow(dead_code)]

pub mod conn;
pub mod hostile;
pub mod scripted;
pub mod segment;
