//! The server loop: the device and stack from [`crate::host`], one listener, a [`Session`] per
//! accepted connection, driven by the stack's events; timers checked about once a second; a
//! clean stop on SIGINT/SIGTERM.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use super::options::{ServeOptions, SHUTDOWN_GRACE};
use super::session::{Context, Session};
use super::target::Site;
use crate::event_loop::EventLoop;
use crate::fetch::interrupted;
use crate::host::{self, HostError};
use crate::stack::{ConnId, Event, Stack, StackError};

/// Connections the server holds at once (idle keep-alive ones included); past it, SYNs are
/// answered with cookies and the handshake completes only when there is room.
pub const MAX_CONNECTIONS: usize = 20_000;
/// Established connections waiting for the loop to accept them (nginx's default is 511).
pub const BACKLOG: usize = 1024;
/// A server reads requests, not bulk data: a small receive buffer keeps a connection cheap.
const RECV_BUFFER: usize = 64 << 10;
/// How often idle and header timeouts are looked at, and the longest the loop sleeps (so a
/// signal that lands just before a wait is noticed promptly).
const SWEEP: Duration = Duration::from_millis(500);
/// After the grace period, how long closing connections get to exchange their FINs.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// After resetting connections, how long the stack keeps answering: a peer whose RCV.NXT was
/// not exactly our reset's sequence number answers with a challenge ACK (RFC 5961 §3.2), and
/// the reset sent back at its acknowledgement number is the one it accepts.
const RESET_LINGER: Duration = Duration::from_millis(300);

/// Why the server could not run.
#[derive(Debug, Error)]
pub enum ServeError {
    /// The directory to serve is missing or is not a directory.
    #[error("cannot serve {}: {source}", path.display())]
    Root {
        /// The directory asked for.
        path: PathBuf,
        /// Why it cannot be served.
        source: io::Error,
    },
    /// The device could not be set up.
    #[error(transparent)]
    Host(#[from] HostError),
    /// The port is taken (cannot happen on a fresh stack, kept for completeness).
    #[error("cannot listen: {0}")]
    Listen(#[from] StackError),
    /// Reading or writing the device failed.
    #[error("device error: {0}")]
    Io(#[from] io::Error),
}

/// What a run did, for the closing line.
#[derive(Debug, Default, Clone, Copy)]
pub struct ServeSummary {
    /// Connections accepted.
    pub connections: u64,
}

/// Serves `options.root` until SIGINT/SIGTERM, then closes every connection and returns.
/// The caller installs the signal handlers (`fetch::install_signal_handlers`).
pub fn run(options: &ServeOptions) -> Result<ServeSummary, ServeError> {
    let site = Site::new(&options.root).map_err(|source| ServeError::Root {
        path: options.root.clone(),
        source,
    })?;
    let (device, mut config) = host::open(&options.device, options.quiet)?;
    config.max_connections = MAX_CONNECTIONS;
    config.backlog = BACKLOG;
    config.tcp.recv_buffer = RECV_BUFFER;
    let mut lp = EventLoop::new(device, |now| Stack::new(now, config), options.verbose)?;
    if let Some(sink) = host::open_trace(&options.device, lp.now(), "serve")? {
        lp.set_trace(sink);
    }
    lp.stack().listen(options.port)?;
    if !options.quiet {
        eprintln!(
            "tunstack: serving {} on http://{}:{}/ (Ctrl-C stops)",
            site.root().display(),
            options.device.local_ip,
            options.port
        );
    }
    let mut server = Server {
        sessions: HashMap::new(),
        summary: ServeSummary::default(),
        // Flushed once per loop turn: one write for a burst of requests, not one per line.
        log: io::BufWriter::with_capacity(64 << 10, io::stdout()),
        quiet: options.quiet,
    };
    let mut next_sweep = lp.now() + SWEEP;
    while !interrupted() {
        lp.turn(Some(next_sweep))?;
        server.handle_events(&mut lp, &site, options.port);
        let now = lp.now();
        if now >= next_sweep {
            let (timeout, header) = (options.timeout, options.header_timeout());
            server.each(&mut lp, &site, |s, cx| {
                s.check_timeouts(cx, timeout, header)
            });
            next_sweep = now + SWEEP;
        }
    }
    server.shut_down(&mut lp, &site, options.port)?;
    lp.finish_trace()?;
    Ok(server.summary)
}

struct Server {
    sessions: HashMap<ConnId, Session>,
    summary: ServeSummary,
    log: io::BufWriter<io::Stdout>,
    quiet: bool,
}

impl Server {
    /// Hands the stack's events to the sessions they concern.
    fn handle_events(&mut self, lp: &mut EventLoop, site: &Site, port: u16) {
        let log = &mut self.log;
        let (now, wall) = (lp.now(), lp.wall_clock());
        let zero_copy = lp.gathers();
        let stack = lp.stack();
        while let Some(event) = stack.poll_event() {
            let mut cx = Context {
                stack,
                site,
                now,
                wall,
                log: (!self.quiet).then_some(&mut *log as &mut dyn Write),
                zero_copy,
            };
            match event {
                Event::Incoming { port: p } if p == port => {
                    while let Some(id) = cx.stack.accept(port) {
                        let Some(peer) = cx.stack.connection(id).map(|c| *c.remote().ip()) else {
                            continue;
                        };
                        self.summary.connections += 1;
                        let mut session = Session::new(id, peer, now);
                        // Data may have come with the handshake's last ACK.
                        session.step(&mut cx);
                        self.sessions.insert(id, session);
                    }
                }
                Event::Readable(id) | Event::Writable(id) | Event::PeerFinished(id) => {
                    if let Some(session) = self.sessions.get_mut(&id) {
                        session.step(&mut cx);
                    }
                }
                Event::Closed(id) | Event::Failed(id, _) => {
                    if let Some(mut session) = self.sessions.remove(&id) {
                        session.ended(&mut cx);
                    }
                    // Releases the connection so the stack forgets it (a no-op on the wire).
                    let _ = cx.stack.close(id);
                }
                Event::Incoming { .. } | Event::Connected(_) => {}
            }
        }
        let _ = log.flush();
    }

    /// Runs `f` on every session, then forgets those that ended.
    fn each(
        &mut self,
        lp: &mut EventLoop,
        site: &Site,
        mut f: impl FnMut(&mut Session, &mut Context),
    ) {
        let log = &mut self.log;
        let (now, wall) = (lp.now(), lp.wall_clock());
        let zero_copy = lp.gathers();
        let stack = lp.stack();
        for session in self.sessions.values_mut() {
            let mut cx = Context {
                stack,
                site,
                now,
                wall,
                log: (!self.quiet).then_some(&mut *log as &mut dyn Write),
                zero_copy,
            };
            f(session, &mut cx);
        }
        let _ = log.flush();
    }

    /// Stops accepting, closes idle connections, lets replies in progress finish for
    /// [`SHUTDOWN_GRACE`] (then resets them), and waits up to [`CLOSE_WAIT`] more for the
    /// closes to be acknowledged.
    fn shut_down(&mut self, lp: &mut EventLoop, site: &Site, port: u16) -> Result<(), ServeError> {
        lp.stack().unlisten(port);
        self.each(lp, site, |s, cx| s.shutdown(cx));
        let grace_end = lp.now() + SHUTDOWN_GRACE;
        while lp.now() < grace_end && self.sessions.values().any(Session::is_sending) {
            lp.turn(Some(grace_end))?;
            self.handle_events(lp, site, port);
        }
        let resetting = self.sessions.values().any(Session::is_sending);
        self.each(lp, site, |s, cx| s.abort_for_shutdown(cx));
        let end = lp.now() + CLOSE_WAIT;
        let linger = lp.now()
            + if resetting {
                RESET_LINGER
            } else {
                Duration::ZERO
            };
        lp.flush()?;
        loop {
            let closing = lp.stack().closing_connections() > 0;
            let until = if closing { end } else { linger };
            if lp.now() >= until {
                break;
            }
            lp.turn(Some(until))?;
            self.handle_events(lp, site, port);
        }
        Ok(())
    }
}

/// The exit line for a run, e.g. "stopped after 12 connections".
pub fn describe(summary: &ServeSummary) -> String {
    let s = if summary.connections == 1 { "" } else { "s" };
    format!("stopped after {} connection{s}", summary.connections)
}
