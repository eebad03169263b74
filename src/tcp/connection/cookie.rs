//! Passive opens without state (SYN cookies, RFC 4987 §3.6): the SYN-ACK sent for a SYN the
//! backlog had no room for, and the connection rebuilt from the ACK that returns the cookie.
//! The cookie itself is made and checked in [`crate::tcp::syncookie`].

use std::time::Instant;

use super::{Connection, Initial, TcpConfig};
use crate::tcp::syncookie::CookieOptions;
use crate::tcp::tuple::FourTuple;
use crate::tcp::window::{WindowScale, WindowSize};
use crate::wire::tcp::{self, MAX_SACK_BLOCKS};
use crate::wire::{Control, SeqNum, TcpOptions, TcpRepr, Timestamps};

/// The options a cookie connection can honour: what the peer offered, minus what a cookie
/// cannot carry (window scale and SACK need timestamps to ride in).
pub fn cookie_options(syn: &TcpRepr) -> CookieOptions {
    let ts = syn.options.timestamps.is_some();
    CookieOptions {
        mss: syn.options.mss.unwrap_or(536),
        window_scale: syn.options.window_scale.filter(|_| ts),
        sack: syn.options.sack_permitted && ts,
    }
}

/// Writes the SYN-ACK answering `syn` with the cookie `iss` and our TSval `tsval` (which
/// carries the option bits) into `buf`, as a connection would send it, without making one.
pub fn write_cookie_syn_ack(
    config: &TcpConfig,
    tuple: FourTuple,
    syn: &TcpRepr,
    iss: SeqNum,
    tsval: u32,
    buf: &mut [u8],
) -> usize {
    let offered = cookie_options(syn);
    let timestamps = config.timestamps && syn.options.timestamps.is_some();
    let scaling = config.window_scaling && offered.window_scale.is_some();
    let options = TcpOptions {
        mss: Some(config.mss),
        window_scale: scaling.then(|| WindowScale::for_window(config.recv_buffer).shift()),
        sack_permitted: config.sack && offered.sack,
        timestamps: syn
            .options
            .timestamps
            .filter(|_| timestamps)
            .map(|peer| Timestamps {
                value: tsval,
                echo: peer.value,
            }),
        sack_blocks: [None; MAX_SACK_BLOCKS],
    };
    let repr = TcpRepr {
        src_port: tuple.local.port(),
        dst_port: tuple.remote.port(),
        control: Control::Syn,
        seq: iss,
        ack: Some(syn.seq + 1),
        // RFC 7323 §2.2: the window in a SYN is never scaled.
        window: WindowSize::new(config.recv_buffer).to_field(WindowScale::NONE),
        options,
        payload: &[],
    };
    let len = repr.emit_header(buf);
    tcp::fill_checksum(*tuple.local.ip(), *tuple.remote.ip(), &mut buf[..len]);
    len
}

impl Connection {
    /// The connection a valid cookie stands for, in SYN-RECEIVED as if it had sent its
    /// SYN-ACK (ISS = the cookie, TS clock continuing from the TSval the ACK echoes), ready for
    /// `handle_segment` with that ACK. `ack` is the returning ACK, `options` what the cookie
    /// remembered of the SYN.
    pub fn accept_cookie(
        now: Instant,
        config: TcpConfig,
        tuple: FourTuple,
        ack: &TcpRepr,
        options: CookieOptions,
    ) -> Self {
        let echo = ack.options.timestamps.map(|ts| ts.echo);
        let syn = TcpRepr {
            src_port: ack.src_port,
            dst_port: ack.dst_port,
            control: Control::Syn,
            seq: ack.seq - 1,
            ack: None,
            window: ack.window,
            options: TcpOptions {
                mss: Some(options.mss),
                window_scale: options.window_scale,
                sack_permitted: options.sack,
                timestamps: ack.options.timestamps.map(|ts| Timestamps {
                    value: ts.value,
                    echo: 0,
                }),
                sack_blocks: [None; MAX_SACK_BLOCKS],
            },
            payload: &[],
        };
        let iss = ack.ack.map_or(SeqNum(0), |a| a - 1);
        let initial = Initial {
            iss,
            ts_offset: echo.unwrap_or(0),
        };
        let mut conn = Connection::accept(now, config, tuple, &syn, initial);
        // The peer's window in its ACK is scaled, unlike a SYN's.
        conn.snd.wnd = conn.opts.snd_scale.apply(ack.window);
        conn.snd.max_wnd = conn.snd.wnd;
        // The SYN-ACK went out (statelessly): SYN-RECEIVED with the SYN sent and acknowledged
        // by this ACK; the window it offered is the receive buffer, unscaled.
        conn.snd.nxt = iss + 1;
        conn.snd.max = iss + 1;
        conn.rcv.last_ack_sent = conn.rcv.nxt;
        let offered = WindowSize::new(conn.config.recv_buffer).to_field(WindowScale::NONE);
        conn.rcv.adv = conn.rcv.nxt + usize::from(offered);
        // The echo is of a SYN-ACK sent before this connection existed: no RTT sample from it
        // (the handshake time is unknown), as after a timeout.
        if let Some(echo) = echo {
            conn.loss.timeout_ts = Some(echo.wrapping_add(1));
        }
        conn
    }
}
