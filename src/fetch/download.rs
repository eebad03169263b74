//! One URL to download (from the command line or `-i`): its redirect chain, its retries, the
//! exchange in progress, and the counters that end up in its summary line.

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use url::Url;

use super::exchange::{BodyProgress, Exchange, Limits, Mode, Outcome};
use super::resolve::{resolve, ResolveEntry};
use super::retry::{self, RetryPolicy};
use super::transport::{TlsSettings, Transport};
use super::writer::Wake;
use super::{FetchError, Summary, TcpTotals};
use crate::http::encoding::ACCEPT_ENCODING;
use crate::http::headers;
use crate::http::{
    build_request, Credentials, HeaderEdit, Method, OutputTarget, RedirectChain, RequestOptions,
    ResumePlan,
};
use crate::stack::{ConnId, Event, Stack};

/// Everything the downloads share, derived once from [`super::Options`] by [`super::run`].
pub struct Settings {
    pub limits: Limits,
    pub resolve: Vec<ResolveEntry>,
    pub tls: Option<TlsSettings>,
    pub verbose: bool,
    pub max_redirects: usize,
    /// `-c`: continue partial files.
    pub resume: bool,
    /// `-A`: the User-Agent to send instead of ours.
    pub user_agent: Option<String>,
    /// `-H`: the user's header edits.
    pub headers: Vec<HeaderEdit>,
    /// `-u`: Basic credentials, sent only to the origin of the URL they came with.
    pub credentials: Option<Credentials>,
    /// `-I`, `--compressed`, `--limit-rate`.
    pub mode: Mode,
    /// `--retry`, `--retry-delay`.
    pub retry: RetryPolicy,
    /// `-q`: no retry notices.
    pub quiet: bool,
    /// Wakes the event loop for the output writers.
    pub wake: Wake,
}

/// Where a connection goes: scheme, host and port (what keep-alive may share).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// The origin of `url`.
    pub fn of(url: &Url) -> Origin {
        Origin {
            scheme: url.scheme().to_string(),
            host: url.host_str().unwrap_or_default().to_string(),
            port: url.port_or_known_default().unwrap_or(80),
        }
    }
}

/// An open connection with nothing in flight, kept for the next download to its origin.
pub struct IdleConnection {
    pub conn: ConnId,
    pub addr: SocketAddrV4,
    pub transport: Transport,
}

/// The state of one URL's download.
pub struct Download {
    pub url: Url,
    chain: RedirectChain,
    target: OutputTarget,
    exchange: Option<Exchange>,
    tcp: TcpTotals,
    started: Option<Instant>,
    /// A reused connection failed before answering: retried once on a fresh one.
    retried: bool,
    /// `--retry`: retries used so far.
    attempts: u32,
    /// `--retry`: when the next attempt starts (no exchange until then).
    retry_at: Option<Instant>,
    /// A line for the user (a retry notice), printed by the engine above any progress bars.
    notice: Option<String>,
}

/// What `pump` says about a download.
// Built once per finished download, never stored in bulk: the size difference is harmless.
#[allow(clippy::large_enum_variant)]
pub enum Step {
    Running,
    /// Finished; if the connection may serve another request it is handed back.
    Finished(
        Result<Summary, FetchError>,
        Option<(Origin, IdleConnection)>,
    ),
}

impl Download {
    /// A download of `url` into `target`, not started yet.
    pub fn new(url: Url, target: OutputTarget, max_redirects: usize) -> Self {
        Download {
            chain: RedirectChain::new(url.clone(), max_redirects),
            url,
            target,
            exchange: None,
            tcp: TcpTotals::default(),
            started: None,
            retried: false,
            attempts: 0,
            retry_at: None,
            notice: None,
        }
    }

    /// The origin its next request goes to.
    pub fn origin(&self) -> Origin {
        Origin::of(self.chain.current())
    }

    /// The connection of the exchange in progress.
    pub fn conn(&self) -> Option<ConnId> {
        self.exchange.as_ref().map(|e| e.conn)
    }

    /// Where the body goes, for messages.
    pub fn destination(&self) -> String {
        match &self.target {
            OutputTarget::Stdout => "standard output".to_string(),
            OutputTarget::Path(p) => p.display().to_string(),
        }
    }

    /// A short name for progress displays: the output file's name.
    pub fn name(&self) -> String {
        match &self.target {
            OutputTarget::Stdout => "stdout".to_string(),
            OutputTarget::Path(p) => p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
        }
    }

    /// Body progress of the exchange in progress.
    pub fn body(&self) -> BodyProgress {
        self.exchange
            .as_ref()
            .map(Exchange::body)
            .unwrap_or_default()
    }

    /// Retransmissions so far (finished exchanges and the one in progress).
    pub fn retransmissions(&self) -> u64 {
        let current = self.exchange.as_ref().map_or(0, |e| {
            e.stats.retransmits_fast + e.stats.retransmits_timeout
        });
        self.tcp.retransmits_fast + self.tcp.retransmits_timeout + current
    }

    /// Starts the next exchange of the chain, on `idle` if given (keep-alive) or a new
    /// connection. `keep_alive` asks the server to keep the connection for a later download.
    pub fn start(
        &mut self,
        stack: &mut Stack,
        settings: &Settings,
        now: Instant,
        idle: Option<IdleConnection>,
        keep_alive: bool,
    ) -> Result<(), FetchError> {
        self.started.get_or_insert(now);
        let url = self.chain.current().clone();
        let resume = match (&self.target, settings.resume) {
            (OutputTarget::Path(path), true) => Some(ResumePlan::for_target(path)),
            _ => None,
        };
        if let (Some(plan), true) = (&resume, settings.verbose) {
            eprintln!(
                "* resuming {} at byte {}",
                plan.working.display(),
                plan.offset
            );
        }
        let extra_headers = resume
            .as_ref()
            .map(ResumePlan::request_headers)
            .unwrap_or_default();
        // Credentials go only where the user sent them, as curl: a redirect to another
        // scheme, host or port must not learn them, nor -H Authorization or Cookie.
        let same_origin = Origin::of(&url) == Origin::of(&self.url);
        let authorization = settings
            .credentials
            .as_ref()
            .filter(|_| same_origin)
            .map(Credentials::basic_authorization);
        let edits = if same_origin {
            settings.headers.clone()
        } else {
            headers::for_another_origin(&settings.headers)
        };
        let options = RequestOptions {
            method: if settings.mode.head_only {
                Method::Head
            } else {
                Method::Get
            },
            keep_alive,
            extra_headers,
            user_agent: settings.user_agent.clone(),
            accept_encoding: settings.mode.decode.then(|| ACCEPT_ENCODING.to_owned()),
            authorization,
            edits,
        };
        let request = build_request(&url, &options)?;
        let exchange = match idle {
            Some(idle) => {
                if settings.verbose {
                    eprintln!("* reusing the connection to {} for {url}", idle.addr);
                }
                Exchange::new(
                    now,
                    idle.conn,
                    idle.addr,
                    url,
                    idle.transport,
                    request,
                    self.target.clone(),
                    resume,
                    true,
                    settings.mode,
                    settings.wake.clone(),
                )
            }
            None => {
                let addr = resolve(&settings.resolve, &url)?;
                let transport = match url.scheme() {
                    "https" => {
                        let tls = settings
                            .tls
                            .as_ref()
                            .ok_or_else(|| super::exchange::unsupported(&url))?;
                        Transport::tls(tls, url.host_str().unwrap_or_default())?
                    }
                    _ => Transport::Plain,
                };
                if settings.verbose {
                    eprintln!("* connecting to {addr} for {url}");
                }
                let conn = stack.connect(now, addr)?;
                Exchange::new(
                    now,
                    conn,
                    addr,
                    url,
                    transport,
                    request,
                    self.target.clone(),
                    resume,
                    false,
                    settings.mode,
                    settings.wake.clone(),
                )
            }
        };
        self.exchange = Some(exchange);
        Ok(())
    }

    /// A line to show the user, if one is waiting (a retry notice).
    pub fn take_notice(&mut self) -> Option<String> {
        self.notice.take()
    }

    /// Routes a stack event for this download's connection.
    pub fn on_event(&mut self, event: &Event) {
        if let Some(exchange) = &mut self.exchange {
            exchange.on_event(event);
        }
    }

    /// The next moment a timeout could fire.
    pub fn deadline(&self, limits: &Limits) -> Option<Instant> {
        match &self.exchange {
            Some(exchange) => Some(exchange.deadline(limits)),
            None => self.retry_at,
        }
    }

    /// Advances the download; follows redirects, retries a dead reused connection, and under
    /// `--retry` starts again after a transient failure once its wait is over. `wall` is the
    /// time since the Unix epoch, for a Retry-After date when the response had no Date.
    pub fn pump(
        &mut self,
        stack: &mut Stack,
        settings: &Settings,
        now: Instant,
        wall: Duration,
        keep_alive: bool,
    ) -> Step {
        let Some(exchange) = &mut self.exchange else {
            if self.retry_at.is_some_and(|at| at <= now) {
                self.retry_at = None;
                if let Err(e) = self.start(stack, settings, now, None, keep_alive) {
                    return self.finish(Err(e), None);
                }
            }
            return Step::Running;
        };
        let outcome = exchange.pump(stack, now, &settings.limits);
        match outcome {
            Ok(None) => Step::Running,
            Ok(Some(Outcome::Redirect(next))) => {
                let exchange = self.exchange.take().expect("exchange in progress");
                self.tcp.add(&exchange.stats);
                let _ = stack.abort(exchange.conn);
                if settings.verbose {
                    eprintln!("* redirected to {next}");
                }
                if let Err(e) = self.chain.follow(next) {
                    return self.finish(Err(e.into()), None);
                }
                match self.start(stack, settings, now, None, keep_alive) {
                    Ok(()) => Step::Running,
                    Err(e) => self.finish(Err(e), None),
                }
            }
            Ok(Some(done @ (Outcome::Done { .. } | Outcome::AlreadyComplete))) => {
                let (bytes, reusable) = match done {
                    Outcome::Done { bytes, reusable } => (bytes, reusable),
                    _ => (0, false),
                };
                let already_complete = matches!(done, Outcome::AlreadyComplete);
                let exchange = self.exchange.take().expect("exchange in progress");
                self.tcp.add(&exchange.stats);
                let idle = if reusable && keep_alive {
                    let origin = Origin::of(self.chain.current());
                    Some((
                        origin,
                        IdleConnection {
                            conn: exchange.conn,
                            addr: exchange.addr,
                            transport: exchange.transport,
                        },
                    ))
                } else {
                    let _ = stack.close(exchange.conn);
                    None
                };
                let summary = Summary {
                    url: self.url.clone(),
                    bytes,
                    elapsed: now.saturating_duration_since(self.started.unwrap_or(now)),
                    tcp: self.tcp.clone(),
                    destination: self.destination(),
                    already_complete,
                    head_only: settings.mode.head_only,
                };
                self.finish(Ok(summary), idle)
            }
            Err(error) => {
                let exchange = self.exchange.take().expect("exchange in progress");
                self.tcp.add(&exchange.stats);
                let _ = stack.abort(exchange.conn);
                if exchange.stale_connection(&error) && !self.retried {
                    // The server closed the idle connection as we reused it: try a fresh one.
                    self.retried = true;
                    if let Err(e) = self.start(stack, settings, now, None, keep_alive) {
                        return self.finish(Err(e), None);
                    }
                    return Step::Running;
                }
                if retry::is_transient(&error) && self.attempts < settings.retry.retries {
                    self.attempts += 1;
                    let asked = exchange
                        .error_head
                        .as_ref()
                        .and_then(|head| retry::retry_after(head, wall));
                    let wait = settings.retry.wait(self.attempts, asked);
                    if !settings.quiet {
                        let left = settings.retry.retries - self.attempts;
                        self.notice = Some(format!(
                            "{error}; retrying in {} ({left} {} left)",
                            humantime::format_duration(wait),
                            if left == 1 { "retry" } else { "retries" }
                        ));
                    }
                    self.retry_at = Some(now + wait);
                    return Step::Running;
                }
                self.finish(Err(error), None)
            }
        }
    }

    fn finish(
        &mut self,
        result: Result<Summary, FetchError>,
        idle: Option<(Origin, IdleConnection)>,
    ) -> Step {
        Step::Finished(result, idle)
    }

    /// Gives up at once (interrupt, device failure): reset the connection, drop the temporary
    /// file.
    pub fn abort(&mut self, stack: &mut Stack) {
        if let Some(mut exchange) = self.exchange.take() {
            exchange.discard_output();
            let _ = stack.abort(exchange.conn);
        }
    }
}
