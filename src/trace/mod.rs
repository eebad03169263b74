//! Tracing: what the stack decided, for people looking at a flow.
//!
//! - [`verbose`]: `--verbose`, one human line per datagram on stderr.
//! - [`event`]: `--trace FILE`'s typed events (docs/trace-format.md, version 1). The sans-IO
//!   core records them only when `TcpConfig::trace` is on, each with the `Instant` of the
//!   decision; the stack hands them out with [`crate::stack::Stack::poll_trace`].
//! - [`writer`]: the edge that turns them into JSON Lines.

pub mod event;
pub mod verbose;
pub mod writer;

pub use event::{
    AckDecision, CcCause, ConnSummary, Dir, ImpairAction, ImpairRecord, Probe, Rexmit, Role,
    SegFlags, TraceEvent, TraceRecord,
};
pub use verbose::Tracer;
pub use writer::{TraceSink, TraceWriter};

/// The trace format's version (docs/trace-format.md): bumped by any change that is not an
/// addition of keys or event types.
pub const FORMAT_VERSION: u32 = 1;
