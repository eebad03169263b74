//! One HTTP request and its response on one connection: sends the request, moves received
//! bytes through the response reader into the output, and enforces the idle and connect
//! timeouts. It never waits: the engine calls `pump` whenever something may have changed.

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use url::Url;

use super::transport::{Received, Transport, TransportError};
use super::FetchError;
use crate::http::{
    content_range, redirect_target, ContentRange, HttpError, Output, OutputTarget, Progress,
    ResponseHead, ResponseReader, ResumePlan,
};
use crate::stack::{ConnId, Event, Stack, StackError};
use crate::tcp::{ConnError, ConnStats, IoError};

/// The user's deadlines for one exchange.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Nothing from the server for this long fails the exchange.
    pub idle: Duration,
    /// The handshake (TCP, and TLS if any) must finish within this long.
    pub connect: Option<Duration>,
}

/// How an exchange ended well.
pub enum Outcome {
    /// The server pointed elsewhere; nothing was written.
    Redirect(Url),
    /// The body was saved; `reusable` when the connection may carry another request.
    Done { bytes: u64, reusable: bool },
    /// `-c` found the file already complete (416 with the size we have).
    AlreadyComplete,
}

/// What the body looks like so far, for progress reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct BodyProgress {
    pub received: u64,
    pub expected: Option<u64>,
}

/// One request/response.
pub struct Exchange {
    pub conn: ConnId,
    pub addr: SocketAddrV4,
    url: Url,
    pub transport: Transport,
    request: Vec<u8>,
    sent: usize,
    connected: bool,
    /// The connection carried an earlier response (keep-alive).
    pub reused: bool,
    reader: ResponseReader,
    head: Option<ResponseHead>,
    /// A response head (of any status) arrived.
    got_head: bool,
    target: OutputTarget,
    /// `-c`: where the partial file is and how much of it there is.
    resume: Option<ResumePlan>,
    output: Option<Output>,
    started: Instant,
    last_heard: Instant,
    segments_seen: u64,
    failure: Option<FetchError>,
    /// The connection's counters when last seen (the stack forgets closed connections).
    pub stats: ConnStats,
}

impl Exchange {
    /// An exchange on `conn`, which is connecting (or, if `reused`, already open).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        now: Instant,
        conn: ConnId,
        addr: SocketAddrV4,
        url: Url,
        transport: Transport,
        request: Vec<u8>,
        target: OutputTarget,
        resume: Option<ResumePlan>,
        reused: bool,
    ) -> Self {
        Exchange {
            conn,
            addr,
            url,
            transport,
            request,
            sent: 0,
            connected: reused,
            reused,
            reader: ResponseReader::new(false),
            head: None,
            got_head: false,
            target,
            resume,
            output: None,
            started: now,
            last_heard: now,
            segments_seen: 0,
            failure: None,
            stats: ConnStats::default(),
        }
    }

    /// Takes a stack event for this exchange's connection.
    pub fn on_event(&mut self, event: &Event) {
        match event {
            Event::Connected(_) => self.connected = true,
            Event::Failed(_, error) if self.failure.is_none() => {
                self.failure = Some(self.connection_error(error.clone()));
            }
            _ => {}
        }
    }

    fn connection_error(&self, error: ConnError) -> FetchError {
        match error {
            ConnError::Refused => FetchError::Refused(self.addr),
            ConnError::Reset => FetchError::Reset(self.addr),
            error => FetchError::Connection {
                addr: self.addr,
                error,
            },
        }
    }

    /// True when this exchange reused a kept-alive connection that the server had closed
    /// before answering (it may do so at any time, RFC 9112 §9.5): the request is safe to
    /// repeat on a fresh connection.
    pub fn stale_connection(&self, error: &FetchError) -> bool {
        let dropped = matches!(
            error,
            FetchError::Reset(_)
                | FetchError::Connection { .. }
                | FetchError::Http(HttpError::ClosedBeforeHead)
        );
        self.reused && !self.got_head && dropped
    }

    /// Body progress, for the progress display.
    pub fn body(&self) -> BodyProgress {
        BodyProgress {
            received: self.reader.body_received(),
            expected: self.reader.expected_body_len(),
        }
    }

    /// The next moment a timeout of this exchange could fire.
    pub fn deadline(&self, limits: &Limits) -> Instant {
        let mut at = self.last_heard + limits.idle;
        if let (false, Some(connect)) = (self.handshake_done(), limits.connect) {
            at = at.min(self.started + connect);
        }
        at
    }

    fn handshake_done(&self) -> bool {
        self.connected && !self.transport.handshaking()
    }

    /// Does whatever can be done now. `Ok(None)`: not finished yet.
    pub fn pump(
        &mut self,
        stack: &mut Stack,
        now: Instant,
        limits: &Limits,
    ) -> Result<Option<Outcome>, FetchError> {
        if let Some(conn) = stack.connection(self.conn) {
            self.stats = conn.stats();
            if self.stats.segments_in != self.segments_seen {
                self.segments_seen = self.stats.segments_in;
                self.last_heard = now;
            }
        }
        if let Some(failure) = self.failure.take() {
            return Err(failure);
        }
        if self.connected {
            self.send_request(stack)?;
            if let Some(outcome) = self.receive(stack)? {
                return Ok(Some(outcome));
            }
        }
        self.check_timeouts(now, limits)?;
        Ok(None)
    }

    fn check_timeouts(&self, now: Instant, limits: &Limits) -> Result<(), FetchError> {
        if let (false, Some(limit)) = (self.handshake_done(), limits.connect) {
            if now.duration_since(self.started) >= limit {
                return Err(FetchError::ConnectTimeout {
                    addr: self.addr,
                    after: limit,
                });
            }
        }
        if now.duration_since(self.last_heard) >= limits.idle {
            return Err(FetchError::Idle(limits.idle));
        }
        Ok(())
    }

    fn send_request(&mut self, stack: &mut Stack) -> Result<(), FetchError> {
        while self.sent < self.request.len() {
            let n = self
                .transport
                .send(stack, self.conn, &self.request[self.sent..])
                .map_err(|e| self.transport_error(e))?;
            if n == 0 {
                break;
            }
            self.sent += n;
        }
        self.transport
            .flush(stack, self.conn)
            .map_err(|e| self.transport_error(e))
    }

    fn transport_error(&self, error: TransportError) -> FetchError {
        match error {
            TransportError::Tls(e) => FetchError::Tls(e),
            TransportError::Tcp(StackError::Io(IoError::Failed(e))) => self.connection_error(e),
            TransportError::Tcp(e) => FetchError::Stack(e),
        }
    }

    /// Feeds received bytes through the reader; returns the outcome once there is one.
    fn receive(&mut self, stack: &mut Stack) -> Result<Option<Outcome>, FetchError> {
        loop {
            let mut found: Result<Option<Found>, FetchError> = Ok(None);
            let reader = &mut self.reader;
            let output = &mut self.output;
            let mut consume = |input: &[u8]| -> (usize, bool) {
                match feed(reader, output, input) {
                    Ok((taken, None)) => (taken, false),
                    Ok((taken, Some(hit))) => {
                        found = Ok(Some(hit));
                        (taken, true)
                    }
                    Err(e) => {
                        found = Err(e);
                        (0, true)
                    }
                }
            };
            let received = self.transport.receive(stack, self.conn, &mut consume);
            match found? {
                Some(Found::Head(head)) => {
                    if let Some(outcome) = self.on_head(head)? {
                        return Ok(Some(outcome));
                    }
                    continue;
                }
                Some(Found::Complete) => return self.complete().map(Some),
                None => {}
            }
            match received.map_err(|e| self.transport_error(e))? {
                Received::Progress | Received::Done => continue,
                Received::WouldBlock => return Ok(None),
                Received::Eof => {
                    self.reader.finish_eof()?;
                    return self.complete().map(Some);
                }
            }
        }
    }

    fn on_head(&mut self, head: ResponseHead) -> Result<Option<Outcome>, FetchError> {
        self.got_head = true;
        if let Some(next) = redirect_target(&self.url, &head)? {
            return Ok(Some(Outcome::Redirect(next)));
        }
        if let Some(plan) = self.resume.clone() {
            return self.on_resumed_head(head, &plan);
        }
        if !head.is_success() {
            return Err(head.status_error().into());
        }
        self.output = Some(Output::create(&self.target)?);
        self.head = Some(head);
        Ok(None)
    }

    /// `-c`: 206 appends to the partial file, 416 means it is already complete, any other
    /// 2xx means the server sent the whole entity, so start over without losing the old copy
    /// until the new one is complete.
    fn on_resumed_head(
        &mut self,
        head: ResponseHead,
        plan: &ResumePlan,
    ) -> Result<Option<Outcome>, FetchError> {
        match head.status {
            206 => {
                match content_range(&head) {
                    Some(ContentRange::Bytes { first, .. }) if first == plan.offset => {}
                    _ => {
                        return Err(FetchError::Resume(format!(
                            "server answered the range request from byte {} with {:?}",
                            plan.offset,
                            head.header_str("content-range")
                                .unwrap_or("no Content-Range")
                        )))
                    }
                }
                self.output = Some(Output::resume(&plan.working, &plan.target)?);
            }
            416 => {
                return match content_range(&head) {
                    Some(ContentRange::Unsatisfied { total }) if total == plan.offset => {
                        Output::resume(&plan.working, &plan.target)?.commit()?;
                        Ok(Some(Outcome::AlreadyComplete))
                    }
                    _ => Err(head.status_error().into()),
                };
            }
            _ if head.is_success() && plan.working != plan.target => {
                // The partial bytes are of no use: the new entity starts from zero.
                let _ = std::fs::remove_file(&plan.working);
                self.output = Some(Output::resume(&plan.working, &plan.target)?);
            }
            _ if head.is_success() => self.output = Some(Output::create(&self.target)?),
            _ => return Err(head.status_error().into()),
        }
        plan.store_validator(&head);
        self.head = Some(head);
        Ok(None)
    }

    fn complete(&mut self) -> Result<Outcome, FetchError> {
        let output = match self.output.take() {
            Some(output) => output,
            // A 2xx whose empty body completed with the head (204, Content-Length: 0).
            None => Output::create(&self.target)?,
        };
        output.commit()?;
        // Reusable when the server keeps it open and the body had its own framing (so the
        // stream is positioned at the next response).
        let reusable = self.head.as_ref().is_some_and(|head| {
            head.keeps_connection_open() && self.reader.expected_body_len().is_some()
        });
        Ok(Outcome::Done {
            bytes: self.reader.body_received(),
            reusable,
        })
    }

    /// The temporary file being written, if any (for the interrupt path).
    pub fn discard_output(&mut self) {
        self.output = None;
    }
}

enum Found {
    Head(ResponseHead),
    Complete,
}

/// Feeds one slice to the reader, writing body bytes to the output; returns the bytes taken
/// and what was reached, if anything.
fn feed(
    reader: &mut ResponseReader,
    output: &mut Option<Output>,
    input: &[u8],
) -> Result<(usize, Option<Found>), FetchError> {
    let mut sink = |bytes: &[u8]| -> std::io::Result<()> {
        match output.as_mut() {
            Some(out) => std::io::Write::write_all(out, bytes),
            None => Ok(()),
        }
    };
    Ok(match reader.feed(input, &mut sink)? {
        Progress::NeedMore => (input.len(), None),
        Progress::Head { head, consumed } => (consumed, Some(Found::Head(head))),
        Progress::Complete => (input.len(), Some(Found::Complete)),
    })
}

/// Maps a redirect to a scheme we cannot fetch into the user's error.
pub fn unsupported(url: &Url) -> FetchError {
    FetchError::Http(HttpError::UnsupportedScheme {
        scheme: url.scheme().to_string(),
        url: url.clone(),
    })
}
