//! `tunstack fetch`: HTTP/1.1 (and HTTPS) downloads over the userspace stack.
//!
//! The HTTP code sees a byte stream, the stack sees segments; this module is the glue. The
//! engine here runs every download of one command over one TUN attachment and one stack:
//! it starts up to `--parallel` downloads, routes the stack's events to them, pumps them,
//! hands idle keep-alive connections from finished downloads to later ones to the same
//! server, and sleeps in the event loop until the next packet or deadline.

mod download;
mod exchange;
mod options;
mod progress;
mod rate;
mod resolve;
mod retry;
mod summary;
mod tls_error;
pub mod transport;
mod trust;
mod writer;

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use url::Url;

use crate::device::DeviceError;
use crate::event_loop::EventLoop;
use crate::http::{HttpError, OutputError, OutputTarget};
use crate::stack::{Event, Stack, StackError};
use crate::tcp::ConnError;
use download::{Download, IdleConnection, Origin, Settings, Step};
use exchange::{Limits, Mode};
use progress::{Progress, Snapshot};
use retry::RetryPolicy;
use transport::{TlsError, TlsSettings};

pub use options::{
    DeviceOptions, Options, DEFAULT_IFACE, DEFAULT_LOCAL_IP, DEFAULT_MAX_REDIRECTS,
    DEFAULT_PARALLEL, DEFAULT_RETRY, DEFAULT_TIMEOUT,
};
pub use resolve::{resolve, ResolveEntry, ResolveError, ResolveParseError};
pub use summary::{Summary, TcpTotals};

/// Everything that can end a download early; each Display is the one line the user sees.
/// Variants are typed so that callers can branch on them (retry policy, exit status) and tests
/// can check the cause without matching message text.
#[derive(Debug, Error)]
pub enum FetchError {
    /// The TUN device could not be opened or configured.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The URL's host gave no IPv4 address to connect to.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The server answered the SYN with a RST: nothing listens there (retryable).
    #[error("connection refused by {0}")]
    Refused(SocketAddrV4),
    /// The server reset an established connection (retryable).
    #[error("connection reset by {0}")]
    Reset(SocketAddrV4),
    /// `--connect-timeout` passed before the handshake completed (retryable).
    #[error("connecting to {addr} timed out after {}", humantime::format_duration(*after))]
    ConnectTimeout {
        /// Where the SYNs went.
        addr: SocketAddrV4,
        /// The limit that passed.
        after: Duration,
    },
    /// `--timeout` passed with nothing from the server (retryable).
    #[error("server sent nothing for {}", humantime::format_duration(*.0))]
    Idle(Duration),
    /// The connection failed otherwise (the TCP layer says why).
    #[error("connection to {addr} failed: {error}")]
    Connection {
        /// The server's address.
        addr: SocketAddrV4,
        /// What the TCP layer reported.
        error: ConnError,
    },
    /// The HTTP exchange failed (framing, status, redirects...).
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The TLS handshake or session failed, or the trust settings are unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The output file could not be prepared, written or saved.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// The stack refused an operation (e.g. no free port).
    #[error("stack error: {0}")]
    Stack(#[from] StackError),
    /// `--pcap`: the capture file could not be created.
    #[error("cannot write {}: {source}", path.display())]
    Capture {
        /// The capture file asked for.
        path: PathBuf,
        /// Why it could not be created.
        source: std::io::Error,
    },
    /// A compressed body (`--compressed`) did not decode.
    #[error("corrupt {coding} body: {source}")]
    Decode {
        /// The content coding, e.g. `gzip`.
        coding: &'static str,
        /// The decoder's complaint.
        source: std::io::Error,
    },
    /// The server sent a content coding we cannot decode.
    #[error(transparent)]
    UnsupportedCoding(#[from] crate::http::encoding::UnsupportedCoding),
    /// `-c`: the server's 206 does not start where the partial file ends, so appending it
    /// would corrupt the file.
    #[error(
        "cannot resume: server answered the range request from byte {offset} with {:?}",
        content_range.as_deref().unwrap_or("no Content-Range")
    )]
    RangeMismatch {
        /// The byte the Range request asked to start from (the partial file's length).
        offset: u64,
        /// The `Content-Range` the server sent, if any.
        content_range: Option<String>,
    },
    /// Reading or writing the device failed.
    #[error("I/O error on the device: {0}")]
    Io(#[from] std::io::Error),
    /// The device failed mid-run, most likely because the interface went away.
    #[error("the TUN device {iface} failed ({source}); was the interface removed?")]
    DeviceLost {
        /// The interface name.
        iface: String,
        /// The error from the device.
        source: std::io::Error,
    },
    /// SIGINT or SIGTERM: the user asked to stop (exit status 130).
    #[error("interrupted")]
    Interrupted,
}

impl From<crate::host::HostError> for FetchError {
    fn from(error: crate::host::HostError) -> Self {
        match error {
            crate::host::HostError::Device(e) => FetchError::Device(e),
            crate::host::HostError::Capture { path, source } => {
                FetchError::Capture { path, source }
            }
        }
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

/// One URL to download and where its body goes.
#[derive(Debug, Clone)]
pub struct Job {
    /// The URL as given.
    pub url: Url,
    /// Where its body goes (`-o`, or a name taken from the URL).
    pub target: OutputTarget,
}

/// Runs every job as `options` ask, over one device and one stack. Returns each job's result
/// in order; `Err` only when nothing could run at all (device, TLS settings) or on Ctrl-C.
/// `report` is called as each download finishes and returns the line to show for it.
pub fn run(
    options: &Options,
    jobs: Vec<Job>,
    mut report: impl FnMut(&Job, &Result<Summary, FetchError>) -> Option<String>,
) -> Result<Vec<Result<Summary, FetchError>>, FetchError> {
    let (device, mut config) = crate::host::open(&options.device, options.quiet)?;
    // `--stats` needs the counters only a traced connection keeps.
    config.tcp.trace |= options.stats;
    // A lost SYN is resent after 1 s four times over, as Linux's client does (see TcpConfig).
    config.tcp.syn_linear_timeouts = 4;
    if let Some(rate) = options.limit_rate {
        // The window can never invite more than a fraction of a second at the rate.
        let default = config.tcp.recv_buffer;
        config.tcp.recv_buffer =
            rate::receive_buffer_for(rate, usize::from(config.tcp.mss), default);
    } else {
        // Loss that fills the window past a hole lets the buffer grow (see TcpConfig).
        config.tcp.recv_buffer_max = 4 << 20;
    }
    let mut lp = EventLoop::new(device, |now| Stack::new(now, config), options.verbose)?;
    if let Some(sink) = crate::host::open_trace(&options.device, lp.now(), "fetch")? {
        lp.set_trace(sink);
    }
    let settings = Settings {
        limits: Limits {
            idle: options.timeout,
            connect: options.connect_timeout,
        },
        resolve: options.resolve.clone(),
        tls: Some(TlsSettings::new(
            options.cacert.as_deref(),
            options.insecure,
        )?),
        verbose: options.verbose,
        max_redirects: options.max_redirects as usize,
        resume: options.resume,
        user_agent: options.user_agent.clone(),
        headers: options.headers.clone(),
        credentials: options.user.clone(),
        mode: Mode {
            head_only: options.head,
            decode: options.compressed,
            rate: options.limit_rate,
        },
        retry: RetryPolicy {
            retries: options.retry,
            fixed_delay: options.retry_delay,
        },
        quiet: options.quiet,
        wake: {
            let waker = lp.waker();
            Arc::new(move || {
                // Failing to wake leaves the loop to its next packet or deadline: harmless.
                let _ = waker.wake();
            })
        },
    };
    let mut engine = Engine {
        downloads: jobs
            .iter()
            .map(|j| Download::new(j.url.clone(), j.target.clone(), settings.max_redirects))
            .collect(),
        results: jobs.iter().map(|_| None).collect(),
        active: Vec::new(),
        next: 0,
        idle: HashMap::new(),
        parallel: options.parallel.max(1) as usize,
        settings,
        progress: Progress::new(options.quiet),
        iface: options.device.iface.clone(),
        stats: options.stats,
    };
    let outcome = engine.run(&mut lp, &jobs, &mut report);
    engine.shut_down(&mut lp);
    // Whatever the outcome (an error, a timeout, Ctrl-C), the trace ends with every
    // connection's `close` and reaches the disk.
    let traced = lp.finish_trace();
    outcome?;
    if let (Err(source), Some(path)) = (traced, &options.device.trace) {
        return Err(FetchError::Capture {
            path: path.clone(),
            source,
        });
    }
    Ok(engine
        .results
        .into_iter()
        .map(|r| r.unwrap_or(Err(FetchError::Interrupted)))
        .collect())
}

struct Engine {
    downloads: Vec<Download>,
    results: Vec<Option<Result<Summary, FetchError>>>,
    /// Indices of downloads in progress.
    active: Vec<usize>,
    /// The next job to start.
    next: usize,
    /// Open connections with nothing in flight, by origin.
    idle: HashMap<Origin, Vec<IdleConnection>>,
    parallel: usize,
    settings: Settings,
    progress: Progress,
    iface: String,
    /// `--stats`: print each finished download's connection summary.
    stats: bool,
}

impl Engine {
    fn run(
        &mut self,
        lp: &mut EventLoop,
        jobs: &[Job],
        report: &mut impl FnMut(&Job, &Result<Summary, FetchError>) -> Option<String>,
    ) -> Result<(), FetchError> {
        loop {
            if interrupted() {
                return Err(FetchError::Interrupted);
            }
            self.route_events(lp);
            let now = lp.now();
            let wall = lp.since_epoch();
            for i in self.active.clone() {
                let keep_alive = self.more_for(&self.downloads[i].origin(), i);
                let conn = self.downloads[i].conn();
                let step =
                    self.downloads[i].pump(lp.stack(), &self.settings, now, wall, keep_alive);
                if let Some(notice) = self.downloads[i].take_notice() {
                    self.progress.println(&format!("tunstack: {notice}"));
                }
                if let Step::Finished(result, idle) = step {
                    self.active.retain(|&a| a != i);
                    if let Some((origin, conn)) = idle {
                        self.idle.entry(origin).or_default().push(conn);
                    }
                    self.progress.finish(i);
                    let summary = conn.filter(|_| self.stats).and_then(|id| {
                        let summary = lp.stack().connection(id)?.summary();
                        serde_json::to_string(&summary).ok()
                    });
                    if let Some(json) = summary {
                        self.progress.println(&json);
                    }
                    if let Some(line) = report(&jobs[i], &result) {
                        self.progress.println(&line);
                    }
                    self.results[i] = Some(result);
                }
            }
            self.show_progress(now, lp.stack());
            let started = self.start_more(lp, jobs, report);
            if self.active.is_empty() && self.next >= self.downloads.len() {
                return Ok(());
            }
            if started {
                continue;
            }
            let deadline = self
                .active
                .iter()
                .filter_map(|&i| self.downloads[i].deadline(&self.settings.limits));
            lp.turn(deadline.chain(self.progress.next_update(lp.now())).min())
                .map_err(|source| FetchError::DeviceLost {
                    iface: self.iface.clone(),
                    source,
                })?;
        }
    }

    fn show_progress(&mut self, now: std::time::Instant, stack: &Stack) {
        let names: Vec<String> = self
            .active
            .iter()
            .map(|&i| self.downloads[i].name())
            .collect();
        let snapshots: Vec<Snapshot> = self
            .active
            .iter()
            .zip(&names)
            .map(|(&i, name)| {
                let body = self.downloads[i].body();
                let conn = self.downloads[i].conn().and_then(|id| stack.connection(id));
                Snapshot {
                    index: i,
                    name,
                    received: body.received,
                    expected: body.expected,
                    retransmissions: self.downloads[i].retransmissions(),
                    window: conn.map(|c| c.advertised_window() as u64),
                    out_of_order: conn.map_or(0, |c| c.stats().out_of_order_in),
                }
            })
            .collect();
        self.progress.update(now, &snapshots);
    }

    /// True when a download after `index` (not started yet) goes to `origin`, so keeping the
    /// connection open pays off.
    fn more_for(&self, origin: &Origin, index: usize) -> bool {
        self.downloads
            .iter()
            .enumerate()
            .skip(self.next.max(index + 1))
            .any(|(_, d)| d.origin() == *origin)
    }

    fn start_more(
        &mut self,
        lp: &mut EventLoop,
        jobs: &[Job],
        report: &mut impl FnMut(&Job, &Result<Summary, FetchError>) -> Option<String>,
    ) -> bool {
        let mut started = false;
        while self.active.len() < self.parallel && self.next < self.downloads.len() {
            let i = self.next;
            self.next += 1;
            let origin = self.downloads[i].origin();
            let idle = self.idle.get_mut(&origin).and_then(Vec::pop);
            let keep_alive = self.more_for(&origin, i);
            let now = lp.now();
            match self.downloads[i].start(lp.stack(), &self.settings, now, idle, keep_alive) {
                Ok(()) => {
                    self.active.push(i);
                    started = true;
                }
                Err(error) => {
                    let result = Err(error);
                    if let Some(line) = report(&jobs[i], &result) {
                        self.progress.println(&line);
                    }
                    self.results[i] = Some(result);
                }
            }
        }
        // Idle connections nobody will use any more are closed.
        let wanted: Vec<Origin> = self.downloads[self.next..]
            .iter()
            .map(Download::origin)
            .collect();
        self.idle.retain(|origin, conns| {
            if wanted.contains(origin) {
                return true;
            }
            for conn in conns.drain(..) {
                let _ = lp.stack().close(conn.conn);
            }
            false
        });
        started
    }

    fn route_events(&mut self, lp: &mut EventLoop) {
        while let Some(event) = lp.stack().poll_event() {
            let id = match &event {
                Event::Connected(id)
                | Event::Readable(id)
                | Event::Writable(id)
                | Event::PeerFinished(id)
                | Event::Closed(id) => *id,
                Event::Failed(id, _) => *id,
                Event::Incoming { .. } => continue,
            };
            if let Some(&i) = self
                .active
                .iter()
                .find(|&&i| self.downloads[i].conn() == Some(id))
            {
                self.downloads[i].on_event(&event);
            }
        }
    }

    /// Ends everything: aborts unfinished downloads (removing their temporary files), closes
    /// idle connections, and gives the FINs a short, bounded chance to be acknowledged.
    fn shut_down(&mut self, lp: &mut EventLoop) {
        for &i in &self.active {
            self.downloads[i].abort(lp.stack());
        }
        for conns in self.idle.values_mut() {
            for conn in conns.drain(..) {
                let _ = lp.stack().close(conn.conn);
            }
        }
        let limit = lp.now() + Duration::from_millis(500);
        while lp.stack().closing_connections() > 0 && lp.now() < limit && !interrupted() {
            if lp.turn(Some(limit)).is_err() {
                break;
            }
            while lp.stack().poll_event().is_some() {}
        }
        let _ = lp.flush();
    }
}

/// Wraps the TUN device as the flags ask: `Fault<Pcap<Tun>>`, so the capture shows what really
/// crossed the device and the impairment sits between it and the stack.
#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    /// The typed variants must read exactly as the strings they replaced did.
    #[test]
    fn typed_errors_keep_their_messages() {
        let capture = FetchError::Capture {
            path: PathBuf::from("/nope/c.pcap"),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        assert_eq!(
            capture.to_string(),
            "cannot write /nope/c.pcap: entity not found"
        );
        let decode = FetchError::Decode {
            coding: "gzip",
            source: io::Error::new(io::ErrorKind::InvalidData, "invalid gzip header"),
        };
        assert_eq!(decode.to_string(), "corrupt gzip body: invalid gzip header");
        let mismatch = FetchError::RangeMismatch {
            offset: 100,
            content_range: Some("bytes 0-9/10".into()),
        };
        assert_eq!(
            mismatch.to_string(),
            "cannot resume: server answered the range request from byte 100 with \"bytes 0-9/10\""
        );
        let missing = FetchError::RangeMismatch {
            offset: 5,
            content_range: None,
        };
        assert_eq!(
            missing.to_string(),
            "cannot resume: server answered the range request from byte 5 with \"no Content-Range\""
        );
        let url = Url::parse("http://h/").unwrap();
        for (error, text) in [
            (ResolveError::NoHost(url), "URL has no host: http://h/"),
            (
                ResolveError::Ipv6Literal("[::1]".into()),
                "[::1] is an IPv6 address; only IPv4 is supported",
            ),
            (
                ResolveError::Lookup {
                    host: "nx.example".into(),
                    source: io::Error::other("failed to lookup address information"),
                },
                "cannot resolve nx.example: failed to lookup address information",
            ),
            (
                ResolveError::NoIpv4("v6only".into()),
                "v6only has no IPv4 address; only IPv4 is supported",
            ),
        ] {
            assert_eq!(FetchError::from(error).to_string(), text);
        }
    }
}
