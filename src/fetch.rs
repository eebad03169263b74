//! `tunstack fetch`: one HTTP/1.1 download over the userspace stack, redirects included.
//!
//! The HTTP code sees a byte stream, the stack sees segments; this module is the glue that
//! connects, sends the request, moves received bytes from the stack into the response reader
//! and the output file, and enforces the user's deadlines.

use std::net::{Ipv4Addr, SocketAddrV4, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use thiserror::Error;
use url::Url;

use crate::cli::{self, DeviceArgs, FetchArgs};
use crate::device::fault::{Fault, Impairer};
use crate::device::pcap::Pcap;
use crate::device::tun::TunDevice;
use crate::device::{Device, DeviceError};
use crate::event_loop::EventLoop;
use crate::http::{
    build_request, redirect_target, HttpError, Output, OutputError, OutputTarget, Progress,
    RedirectChain, RequestOptions, ResponseHead, ResponseReader,
};
use crate::stack::{ConnId, Event, Stack, StackConfig, StackError};
use crate::tcp::{ConnError, ConnStats};

/// Everything that can end a download early; each Display is the one line the user sees.
#[derive(Debug, Error)]
pub enum FetchError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("{0}")]
    Resolve(String),
    #[error("connection refused by {0}")]
    Refused(SocketAddrV4),
    #[error("connection reset by {0}")]
    Reset(SocketAddrV4),
    #[error("connecting to {addr} timed out after {}", humantime::format_duration(*after))]
    ConnectTimeout { addr: SocketAddrV4, after: Duration },
    #[error("server sent nothing for {}", humantime::format_duration(*.0))]
    Idle(Duration),
    #[error("connection to {addr} failed: {error}")]
    Connection {
        addr: SocketAddrV4,
        error: ConnError,
    },
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("stack error: {0}")]
    Stack(#[from] StackError),
    #[error("{0}")]
    Capture(String),
    #[error("I/O error on the device: {0}")]
    Io(#[from] std::io::Error),
    #[error("interrupted")]
    Interrupted,
}

/// What a successful download reports in its summary line.
#[derive(Debug, Clone)]
pub struct Summary {
    pub bytes: u64,
    pub elapsed: Duration,
    /// TCP counters summed over every connection of the download (redirects included).
    pub tcp: TcpTotals,
    pub destination: String,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-6);
        let mbit = self.bytes as f64 * 8.0 / secs / 1e6;
        write!(
            f,
            "saved {} bytes to {} in {:.2} s ({:.1} Mbit/s); retransmitted {}, received {} duplicate \
             and {} out-of-order segments, sent {} duplicate ACKs",
            self.bytes,
            self.destination,
            secs,
            mbit,
            self.tcp.retransmits_fast + self.tcp.retransmits_timeout,
            self.tcp.duplicate_segments_in,
            self.tcp.out_of_order_in,
            self.tcp.dup_acks_out,
        )
    }
}

/// The per-connection counters that matter to a user, summed over connections.
#[derive(Debug, Clone, Default)]
pub struct TcpTotals {
    pub retransmits_fast: u64,
    pub retransmits_timeout: u64,
    pub duplicate_segments_in: u64,
    pub out_of_order_in: u64,
    pub dup_acks_out: u64,
}

impl TcpTotals {
    fn add(&mut self, stats: &ConnStats) {
        self.retransmits_fast += stats.retransmits_fast;
        self.retransmits_timeout += stats.retransmits_timeout;
        self.duplicate_segments_in += stats.duplicate_segments_in;
        self.out_of_order_in += stats.out_of_order_in;
        self.dup_acks_out += stats.dup_acks_out;
    }
}

/// Set by the SIGINT/SIGTERM handler; the loop notices it after the interrupted wait.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Routes SIGINT and SIGTERM to a flag, so an interrupted download can remove its temporary
/// file and reset its connection before exiting.
pub fn install_signal_handlers() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe; sigaction
        // is given a zeroed, fully initialised struct.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// True once the user asked us to stop.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Runs a whole download as the CLI asked. `url` was validated by the caller.
pub fn run(args: &FetchArgs, url: Url) -> Result<Summary, FetchError> {
    let tun = TunDevice::open(&args.iface, !args.device.no_offload)?;
    let mtu = tun.mtu().unwrap_or(1500).clamp(576, 65535);
    tun.wait_until_up(Duration::from_millis(500));
    let device = build_device(tun, &args.device, args.quiet)?;
    let mut secret = [0u8; 16];
    rand::Rng::fill(&mut rand::thread_rng(), &mut secret);
    let config = StackConfig::new(args.local_ip, mtu, secret, rand::random());
    let mut lp = EventLoop::new(device, |now| Stack::new(now, config), args.verbose)?;
    let start = lp.now();

    let target = match &args.output {
        Some(cli::Output::Stdout) => OutputTarget::Stdout,
        Some(cli::Output::File(path)) => OutputTarget::Path(path.clone()),
        None => OutputTarget::from_url(&url),
    };
    let destination = match &target {
        OutputTarget::Stdout => "standard output".to_string(),
        OutputTarget::Path(p) => p.display().to_string(),
    };
    let mut chain = RedirectChain::new(url, args.max_redirects as usize);
    let mut tcp = TcpTotals::default();
    loop {
        let url = chain.current().clone();
        let addr = resolve(args, &url)?;
        if args.verbose {
            eprintln!("* connecting to {addr} for {url}");
        }
        let mut exchange = Exchange::start(&mut lp, &url, addr, target.clone(), args)?;
        let outcome = exchange.run(&mut lp, args);
        tcp.add(&exchange.stats);
        match outcome? {
            Outcome::Redirect(next) => {
                if args.verbose {
                    eprintln!("* redirected to {next}");
                }
                chain.follow(next)?;
            }
            Outcome::Done(bytes) => {
                return Ok(Summary {
                    bytes,
                    elapsed: lp.now() - start,
                    tcp,
                    destination,
                });
            }
        }
    }
}

/// Wraps the TUN device as the flags ask: `Fault<Pcap<Tun>>`, so the capture shows what really
/// crossed the device and the impairment sits between it and the stack.
fn build_device(
    tun: TunDevice,
    flags: &DeviceArgs,
    quiet: bool,
) -> Result<Box<dyn Device>, FetchError> {
    let mut device: Box<dyn Device> = Box::new(tun);
    if let Some(path) = &flags.pcap {
        let pcap = Pcap::create(device, path)
            .map_err(|e| FetchError::Capture(format!("cannot write {}: {e}", path.display())))?;
        device = Box::new(pcap);
    }
    let (inbound, outbound) = (flags.inbound(), flags.outbound());
    if inbound.is_some() || outbound.is_some() {
        let seed = flags.seed.unwrap_or_else(rand::random);
        if !quiet {
            eprintln!("tunstack: impairing with seed {seed} (replay with --seed {seed})");
        }
        // Distinct streams per direction, both derived from the one seed.
        let inbound = inbound.map(|spec| Impairer::new(spec.clone(), seed));
        let outbound =
            outbound.map(|spec| Impairer::new(spec.clone(), seed ^ 0x9e37_79b9_7f4a_7c15));
        device = Box::new(Fault::new(device, inbound, outbound));
    }
    Ok(device)
}

fn resolve(args: &FetchArgs, url: &Url) -> Result<SocketAddrV4, FetchError> {
    let host = url
        .host_str()
        .ok_or_else(|| FetchError::Resolve(format!("URL has no host: {url}")))?;
    let port = url.port_or_known_default().unwrap_or(80);
    if let Some(addr) = args.resolved_addr(host, port) {
        return Ok(SocketAddrV4::new(addr, port));
    }
    if let Ok(addr) = host.parse::<Ipv4Addr>() {
        return Ok(SocketAddrV4::new(addr, port));
    }
    if host.starts_with('[') {
        return Err(FetchError::Resolve(format!(
            "{host} is an IPv6 address; only IPv4 is supported"
        )));
    }
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| FetchError::Resolve(format!("cannot resolve {host}: {e}")))?
        .collect();
    addrs
        .iter()
        .find_map(|a| match a {
            std::net::SocketAddr::V4(v4) => Some(*v4),
            std::net::SocketAddr::V6(_) => None,
        })
        .ok_or_else(|| {
            FetchError::Resolve(format!(
                "{host} has no IPv4 address (only IPv6); only IPv4 is supported"
            ))
        })
}

enum Outcome {
    Redirect(Url),
    Done(u64),
}

/// One request/response on one connection.
struct Exchange {
    conn: ConnId,
    addr: SocketAddrV4,
    url: Url,
    request: Vec<u8>,
    sent: usize,
    connected: bool,
    peer_finished: bool,
    reader: ResponseReader,
    target: OutputTarget,
    output: Option<Output>,
    started: Instant,
    last_heard: Instant,
    segments_seen: u64,
    /// The connection's counters when the exchange ended (the stack forgets closed connections).
    stats: ConnStats,
}

impl Exchange {
    fn start(
        lp: &mut EventLoop,
        url: &Url,
        addr: SocketAddrV4,
        target: OutputTarget,
        _args: &FetchArgs,
    ) -> Result<Self, FetchError> {
        let request = build_request(url, &RequestOptions::default())?;
        let now = lp.now();
        let conn = lp.stack().connect(now, addr)?;
        Ok(Exchange {
            conn,
            addr,
            url: url.clone(),
            request,
            sent: 0,
            connected: false,
            peer_finished: false,
            reader: ResponseReader::new(false),
            target,
            output: None,
            started: now,
            last_heard: now,
            segments_seen: 0,
            stats: ConnStats::default(),
        })
    }

    /// Drives the exchange to its end; on any error the connection is reset and the temporary
    /// file removed (by dropping the output).
    fn run(&mut self, lp: &mut EventLoop, args: &FetchArgs) -> Result<Outcome, FetchError> {
        let result = self.drive(lp, args);
        if let Some(conn) = lp.stack().connection(self.conn) {
            self.stats = conn.stats();
        }
        match &result {
            Ok(_) => self.close_gracefully(lp),
            Err(_) => {
                let _ = lp.stack().abort(self.conn);
                let _ = lp.flush();
            }
        }
        result
    }

    fn drive(&mut self, lp: &mut EventLoop, args: &FetchArgs) -> Result<Outcome, FetchError> {
        loop {
            if interrupted() {
                return Err(FetchError::Interrupted);
            }
            self.handle_events(lp)?;
            if self.connected {
                self.send_request(lp)?;
                if let Some(outcome) = self.receive(lp)? {
                    return Ok(outcome);
                }
            }
            let now = lp.now();
            let deadline = self.deadline(args, now)?;
            lp.turn(Some(deadline))?;
        }
    }

    /// Checks the user's timeouts and returns the next moment one could fire.
    fn deadline(&mut self, args: &FetchArgs, now: Instant) -> Result<Instant, FetchError> {
        if now.duration_since(self.last_heard) >= args.timeout {
            return Err(FetchError::Idle(args.timeout));
        }
        let mut deadline = self.last_heard + args.timeout;
        if let (false, Some(limit)) = (self.connected, args.connect_timeout) {
            if now.duration_since(self.started) >= limit {
                return Err(FetchError::ConnectTimeout {
                    addr: self.addr,
                    after: limit,
                });
            }
            deadline = deadline.min(self.started + limit);
        }
        Ok(deadline)
    }

    fn handle_events(&mut self, lp: &mut EventLoop) -> Result<(), FetchError> {
        let now = lp.now();
        if let Some(conn) = lp.stack().connection(self.conn) {
            let seen = conn.stats().segments_in;
            if seen != self.segments_seen {
                self.segments_seen = seen;
                self.last_heard = now;
            }
        }
        while let Some(event) = lp.stack().poll_event() {
            match event {
                Event::Connected(id) if id == self.conn => self.connected = true,
                Event::PeerFinished(id) if id == self.conn => self.peer_finished = true,
                Event::Failed(id, error) if id == self.conn => {
                    return Err(match error {
                        ConnError::Refused => FetchError::Refused(self.addr),
                        ConnError::Reset => FetchError::Reset(self.addr),
                        error => FetchError::Connection {
                            addr: self.addr,
                            error,
                        },
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn send_request(&mut self, lp: &mut EventLoop) -> Result<(), FetchError> {
        while self.sent < self.request.len() {
            match lp.stack().send(self.conn, &self.request[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(StackError::Io(crate::tcp::IoError::WouldBlock)) => break,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Moves received bytes through the response reader; returns the outcome when done.
    fn receive(&mut self, lp: &mut EventLoop) -> Result<Option<Outcome>, FetchError> {
        loop {
            let mut step: Result<Option<Step>, FetchError> = Ok(None);
            let reader = &mut self.reader;
            let output = &mut self.output;
            let read = lp.stack().recv_with(self.conn, |a, b| {
                let mut used = 0;
                for part in [a, b] {
                    if part.is_empty() {
                        continue;
                    }
                    match feed(reader, output, part) {
                        Ok((n, found)) => {
                            used += n;
                            if found.is_some() || n < part.len() {
                                step = Ok(found);
                                return used;
                            }
                        }
                        Err(e) => {
                            step = Err(e);
                            return used;
                        }
                    }
                }
                used
            });
            match step? {
                Some(Step::Head(head)) => {
                    if let Some(outcome) = self.on_head(head)? {
                        return Ok(Some(outcome));
                    }
                    continue;
                }
                Some(Step::Complete) => return self.complete().map(Some),
                None => {}
            }
            match read {
                Ok(0) => {
                    // End of stream: the reader decides if that completes the body.
                    self.reader.finish_eof()?;
                    return self.complete().map(Some);
                }
                Ok(_) => continue,
                Err(StackError::Io(crate::tcp::IoError::WouldBlock)) => return Ok(None),
                Err(StackError::Io(crate::tcp::IoError::Failed(error))) => {
                    return Err(match error {
                        ConnError::Reset => FetchError::Reset(self.addr),
                        error => FetchError::Connection {
                            addr: self.addr,
                            error,
                        },
                    })
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn on_head(&mut self, head: ResponseHead) -> Result<Option<Outcome>, FetchError> {
        if let Some(next) = redirect_target(&self.url, &head)? {
            return Ok(Some(Outcome::Redirect(next)));
        }
        if !head.is_success() {
            return Err(head.status_error().into());
        }
        self.output = Some(Output::create(&self.target)?);
        Ok(None)
    }

    fn complete(&mut self) -> Result<Outcome, FetchError> {
        let output = match self.output.take() {
            Some(output) => output,
            // A 2xx with an empty body that completed before we opened the file (204).
            None => Output::create(&self.target)?,
        };
        output.commit()?;
        Ok(Outcome::Done(self.reader.body_received()))
    }

    /// Sends our FIN and waits briefly for the peer to acknowledge it, so the server sees an
    /// orderly close; gives up (with a reset) after a short bound.
    fn close_gracefully(&mut self, lp: &mut EventLoop) {
        if lp.stack().close(self.conn).is_err() {
            return;
        }
        let limit = lp.now() + Duration::from_millis(500);
        loop {
            let done = lp.stack().connection(self.conn).is_none_or(|c| {
                matches!(
                    c.state(),
                    crate::tcp::State::Closed
                        | crate::tcp::State::TimeWait
                        | crate::tcp::State::FinWait2
                )
            });
            if done || lp.now() >= limit || interrupted() {
                break;
            }
            if lp.turn(Some(limit)).is_err() {
                break;
            }
            while lp.stack().poll_event().is_some() {}
        }
    }
}

enum Step {
    Head(ResponseHead),
    Complete,
}

/// Feeds one slice to the reader, writing body bytes to the output; returns bytes consumed and
/// whether a head or the end of the body was reached.
fn feed(
    reader: &mut ResponseReader,
    output: &mut Option<Output>,
    input: &[u8],
) -> Result<(usize, Option<Step>), FetchError> {
    let mut sink = |bytes: &[u8]| -> std::io::Result<()> {
        match output.as_mut() {
            Some(out) => std::io::Write::write_all(out, bytes),
            None => Ok(()),
        }
    };
    let progress = reader.feed(input, &mut sink);
    Ok(match progress? {
        Progress::NeedMore => (input.len(), None),
        Progress::Head { head, consumed } => (consumed, Some(Step::Head(head))),
        Progress::Complete => (input.len(), Some(Step::Complete)),
    })
}

/// The directory part of an output path, for messages.
pub fn output_dir(path: &std::path::Path) -> PathBuf {
    path.parent().map(PathBuf::from).unwrap_or_default()
}
