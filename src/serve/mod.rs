//! `tunstack serve`: an HTTP/1.1 file server on the stack's own passive opens.
//!
//! The protocol parts are sans-IO and small: [`request`] reads pipelined request heads off
//! a byte stream, [`range`] reads one byte range, [`target`] maps a request target to a file
//! that is provably under the served directory, [`response`] decides each answer (GET, HEAD,
//! 206/416, 301 for a directory without its slash, 404, 405, 400/413/431/505) and builds its
//! head, and [`log`] writes the common log format line.

pub mod log;
pub mod range;
pub mod request;
pub mod response;
pub mod target;

pub use request::{BadRequest, Method, Request};
pub use response::{answer, refuse, Body, Reply};
pub use target::{Site, TargetError};
