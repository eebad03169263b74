//! TCP (RFC 9293) as sans-IO pieces: the connection state machine and the parts it is made of.

pub mod congestion;
pub mod connection;
pub mod isn;
pub mod rack;
pub mod reassembly;
pub mod rto;
pub mod scoreboard;
pub mod send_buffer;
pub mod syncookie;
pub mod timers;
pub mod tuple;
pub mod undo;
pub mod window;

pub use congestion::Algorithm;
pub use connection::{
    ConnError, ConnEvent, ConnStats, Connection, Initial, IoError, State, TcpConfig,
};
pub use tuple::FourTuple;
pub use window::{WindowScale, WindowSize};

/// DupThresh (RFC 5681 §3.2, RFC 6675 §2): duplicate ACKs a sender waits for before it
/// retransmits. The sender enters fast retransmit on this many; the receiver acknowledges this
/// many out-of-order segments per RCV.NXT at once so that a sender counting them gets there;
/// RACK counts this many SACKed segments while no reordering was seen (RFC 8985 §6.2 step 4).
pub(crate) const DUP_THRESH: u32 = 3;
