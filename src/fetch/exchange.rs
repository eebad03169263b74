//! One HTTP request and its response on one connection: sends the request, moves received
//! bytes through the response reader into the output, and enforces the idle and connect
//! timeouts. It never waits: the engine calls `pump` whenever something may have changed.

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use url::Url;

use super::rate::TokenBucket;
use super::transport::{Received, Transport, TransportError};
use super::writer::{Wake, WriteFailure, Writer};
use super::FetchError;
use crate::http::encoding::Coding;
use crate::http::{
    content_range, redirect_target, ContentRange, HttpError, Output, OutputError, OutputTarget,
    Progress, ResponseHead, ResponseReader, ResumePlan,
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

/// What the user asked of every exchange beyond the request itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mode {
    /// `-I`: the request is HEAD; print the response head to stdout and save nothing.
    pub head_only: bool,
    /// `--compressed`: undo the response's Content-Encoding before saving.
    pub decode: bool,
    /// `--limit-rate`: bytes per second this exchange may read from its connection.
    pub rate: Option<u64>,
}

/// The body is complete and its writer is saving it; the outcome waits for the writer.
#[derive(Debug, Clone, Copy)]
enum Finishing {
    Done { reusable: bool },
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
    /// The body's writer thread, once there is a body to write.
    output: Option<Writer>,
    /// Wakes the event loop for the writer.
    wake: Wake,
    /// Set once the body is complete: waiting for the writer to sync and rename.
    finishing: Option<Finishing>,
    mode: Mode,
    /// The body's Content-Encoding, once the head arrived (identity unless `--compressed`).
    coding: Coding,
    /// `--limit-rate`: how many received bytes may be taken now.
    rate: Option<TokenBucket>,
    /// The head of a response refused for its status, for `--retry` (Retry-After).
    pub error_head: Option<ResponseHead>,
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
        mode: Mode,
        wake: Wake,
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
            reader: ResponseReader::new(mode.head_only),
            head: None,
            got_head: false,
            target,
            resume,
            output: None,
            wake,
            finishing: None,
            mode,
            coding: Coding::Identity,
            rate: mode.rate.map(|rate| TokenBucket::new(rate, now)),
            error_head: None,
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
        // Wake when the rate limit lets us read again: unread bytes wait in the receive buffer.
        if let Some(refill) = self.rate.as_ref().and_then(TokenBucket::deadline) {
            at = at.min(refill);
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
        if let Some(result) = self.output.as_mut().and_then(Writer::poll_done) {
            self.output = None;
            let bytes = result.map_err(|e| self.write_failure(e))?;
            return Ok(Some(match self.finishing {
                Some(Finishing::Done { reusable }) => Outcome::Done { bytes, reusable },
                Some(Finishing::AlreadyComplete) => Outcome::AlreadyComplete,
                // A writer succeeds only after `finish`.
                None => unreachable!("the writer finished before the body was complete"),
            }));
        }
        if let Some(finishing) = &mut self.finishing {
            // The server has said everything; only the writer's fsync and rename are left,
            // however long they take. A connection failing now costs only its reuse.
            if self.failure.take().is_some() {
                if let Finishing::Done { reusable } = finishing {
                    *reusable = false;
                }
            }
            return Ok(None);
        }
        if let Some(failure) = self.failure.take() {
            return Err(failure);
        }
        if self.connected {
            self.send_request(stack)?;
            if let Some(outcome) = self.receive(stack, now)? {
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
    ///
    /// Under `--limit-rate` it takes only what the token bucket allows; the rest stays in the
    /// TCP receive buffer, which keeps the advertised window closed until it is read.
    fn receive(&mut self, stack: &mut Stack, now: Instant) -> Result<Option<Outcome>, FetchError> {
        loop {
            let allowed = self.rate.as_mut().map_or(usize::MAX, |b| b.available(now));
            // Body bytes never outnumber the input bytes they come in (framing only adds), so
            // reading at most `room` cannot overfill the writer's queue.
            let room = self.output.as_mut().map_or(usize::MAX, Writer::room);
            if room == 0 {
                // Waiting for our own output, not for the server: the window is closed
                // because of us, so the idle timer does not run (the writer wakes us).
                self.last_heard = now;
            }
            let budget = allowed.min(room);
            if budget == 0 {
                return Ok(None);
            }
            let mut used = 0;
            let mut found: Result<Option<Found>, FetchError> = Ok(None);
            let reader = &mut self.reader;
            let output = &mut self.output;
            let mut consume = |input: &[u8]| -> (usize, bool) {
                let input = &input[..input.len().min(budget - used)];
                match feed(reader, output, input) {
                    Ok((taken, None)) => {
                        used += taken;
                        (taken, false)
                    }
                    Ok((taken, Some(hit))) => {
                        used += taken;
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
            if let Some(bucket) = &mut self.rate {
                bucket.take(used);
            }
            if let Some(writer) = &mut self.output {
                writer.send();
            }
            match found? {
                Some(Found::Head(head)) => {
                    if let Some(outcome) = self.on_head(head)? {
                        return Ok(Some(outcome));
                    }
                    if self.finishing.is_some() {
                        return Ok(None);
                    }
                    continue;
                }
                Some(Found::Complete) => return self.complete().map(|()| None),
                None => {}
            }
            match received.map_err(|e| self.transport_error(e))? {
                Received::Progress | Received::Done => continue,
                Received::WouldBlock => return Ok(None),
                Received::Eof => {
                    self.reader.finish_eof()?;
                    return self.complete().map(|()| None);
                }
            }
        }
    }

    /// The writer's failure (a decoder's complaint about the body, a full disk, a closed
    /// pipe) as the one-line error the user sees.
    fn write_failure(&self, failure: WriteFailure) -> FetchError {
        match failure {
            WriteFailure::Write(e)
                // Decoders report bad input as InvalidData (brotli, ours) or InvalidInput
                // (flate2); a failing disk reports anything else.
                if self.coding != Coding::Identity
                    && matches!(
                        e.kind(),
                        std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput
                    ) =>
            {
                FetchError::Decode {
                    coding: self.coding.name(),
                    source: e,
                }
            }
            WriteFailure::Write(e) => OutputError::writing(&self.target, e).into(),
            WriteFailure::Commit(e) => e.into(),
        }
    }

    /// Starts the writer thread for `output`.
    fn spawn_writer(&mut self, output: Output, coding: Coding) -> Result<(), FetchError> {
        self.output = Some(Writer::spawn(output, coding, self.wake.clone())?);
        Ok(())
    }

    fn on_head(&mut self, head: ResponseHead) -> Result<Option<Outcome>, FetchError> {
        self.got_head = true;
        if let Some(next) = redirect_target(&self.url, &head)? {
            return Ok(Some(Outcome::Redirect(next)));
        }
        if !head.is_success() {
            self.error_head = Some(head.clone());
        }
        if self.mode.head_only {
            return self.print_head(head);
        }
        if let Some(plan) = self.resume.clone() {
            return self.on_resumed_head(head, &plan);
        }
        if !head.is_success() {
            return Err(head.status_error().into());
        }
        // An empty body holds no coded stream to check (some servers label one anyway).
        if self.mode.decode && self.reader.expected_body_len() != Some(0) {
            self.coding = Coding::from_header(head.header_str("content-encoding"))?;
        }
        self.spawn_writer(Output::create(&self.target)?, self.coding)?;
        self.head = Some(head);
        Ok(None)
    }

    /// `-I`: the head goes to standard output as it came (status line and fields), whatever
    /// the status; only a 2xx counts as success.
    fn print_head(&mut self, head: ResponseHead) -> Result<Option<Outcome>, FetchError> {
        let mut text = format!("HTTP/1.{} {}", head.minor_version, head.status).into_bytes();
        if !head.reason.is_empty() {
            text.push(b' ');
            text.extend_from_slice(head.reason.as_bytes());
        }
        text.extend_from_slice(b"\r\n");
        for (name, value) in &head.headers {
            text.extend_from_slice(name.as_bytes());
            text.extend_from_slice(b": ");
            text.extend_from_slice(value);
            text.extend_from_slice(b"\r\n");
        }
        text.extend_from_slice(b"\r\n");
        let mut stdout = std::io::stdout().lock();
        std::io::Write::write_all(&mut stdout, &text)?;
        std::io::Write::flush(&mut stdout)?;
        if !head.is_success() {
            return Err(head.status_error().into());
        }
        Ok(Some(Outcome::Done {
            bytes: 0,
            reusable: head.keeps_connection_open(),
        }))
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
                        return Err(FetchError::RangeMismatch {
                            offset: plan.offset,
                            content_range: head.header_str("content-range").map(str::to_owned),
                        })
                    }
                }
                self.spawn_writer(
                    Output::resume(&plan.working, &plan.target)?,
                    Coding::Identity,
                )?;
            }
            416 => {
                return match content_range(&head) {
                    Some(ContentRange::Unsatisfied { total }) if total == plan.offset => {
                        // Syncing and renaming the complete file is the writer's job too.
                        self.spawn_writer(
                            Output::resume(&plan.working, &plan.target)?,
                            Coding::Identity,
                        )?;
                        self.finish_output(Finishing::AlreadyComplete);
                        Ok(None)
                    }
                    _ => Err(head.status_error().into()),
                };
            }
            _ if head.is_success() && plan.working != plan.target => {
                // The partial bytes are of no use: the new entity starts from zero.
                let _ = std::fs::remove_file(&plan.working);
                self.spawn_writer(
                    Output::resume(&plan.working, &plan.target)?,
                    Coding::Identity,
                )?;
            }
            _ if head.is_success() => {
                self.spawn_writer(Output::create(&self.target)?, Coding::Identity)?
            }
            _ => return Err(head.status_error().into()),
        }
        plan.store_validator(&head);
        self.head = Some(head);
        Ok(None)
    }

    /// The body is complete: the writer finishes decoding, syncs and renames, and `pump`
    /// reports the outcome once it has.
    fn complete(&mut self) -> Result<(), FetchError> {
        if self.output.is_none() {
            // A 2xx whose empty body completed with the head (204, Content-Length: 0).
            self.spawn_writer(Output::create(&self.target)?, Coding::Identity)?;
        }
        // Reusable when the server keeps it open and the body had its own framing (so the
        // stream is positioned at the next response).
        let reusable = self.head.as_ref().is_some_and(|head| {
            head.keeps_connection_open() && self.reader.expected_body_len().is_some()
        });
        self.finish_output(Finishing::Done { reusable });
        Ok(())
    }

    fn finish_output(&mut self, finishing: Finishing) {
        if let Some(writer) = &mut self.output {
            writer.finish();
        }
        self.finishing = Some(finishing);
    }

    /// Abandons the output (interrupt, failure): the writer stops and the temporary file goes.
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
    output: &mut Option<Writer>,
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
