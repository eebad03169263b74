//! `tunstack serve`: an HTTP/1.1 file server on the stack's own passive opens.
//!
//! Small pieces, the parsers sans-IO: [`request`] reads pipelined request heads off a byte
//! stream, [`range`] reads one byte range, [`log`] writes the common log format line. Only
//! [`target`] and [`response`] touch the file system (never the network or a clock of
//! their own): `target` maps a request target to a file provably under the served directory,
//! `response` decides each answer (GET, HEAD, 206/416, 301 for a directory without its slash,
//! 404, 405, 400/413/431/505) and builds its head. [`session`] is one connection's requests
//! and reply in progress; [`server`] is the loop that accepts, dispatches the stack's events
//! and stops cleanly on SIGINT/SIGTERM.

pub mod log;
pub mod mapped;
pub mod options;
pub mod range;
pub mod request;
pub mod response;
pub mod server;
pub mod session;
pub mod target;

pub use options::ServeOptions;
pub use request::{BadRequest, Method, Request};
pub use response::{answer, refuse, Body, Reply};
pub use server::{describe, run, ServeError, ServeSummary};
pub use target::{Site, TargetError};
