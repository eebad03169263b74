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
