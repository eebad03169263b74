//! One client connection of `tunstack serve`: request bytes read off it, the reply being sent,
//! and its timers.
//!
//! A session answers its requests strictly in order (RFC 9112 §9.3.2): while a reply is being
//! sent, the next pipelined request is left in the connection's receive buffer, so a client
//! that sends faster than it reads is held back by TCP's own window rather than by our memory.
//! File bodies are read straight into the connection's send buffer as it drains, or, when
//! the driver gathers, mapped and queued by reference ([`super::mapped`]), so a download holds
//! no file bytes of its own.

use std::fs::File;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant, SystemTime};

use super::mapped::{self, MapError, Mapped};
use super::request::{self, HEAD_LIMIT};
use super::response::{answer, refuse, Body, Reply};
use super::target::Site;
use crate::stack::{ConnId, Stack, StackError};
use crate::tcp::IoError;

/// What a session needs from around it for one step.
pub struct Context<'a> {
    /// The stack the connection lives on.
    pub stack: &'a mut Stack,
    /// The directory served.
    pub site: &'a Site,
    /// The loop's clock, for timeouts.
    pub now: Instant,
    /// The wall clock, for the Date field and the access log.
    pub wall: SystemTime,
    /// Where access-log lines go (`None` with `-q`).
    pub log: Option<&'a mut dyn Write>,
    /// Whether large file bodies may be queued mapped rather than read (see
    /// [`super::mapped`]): the driver gathers.
    pub zero_copy: bool,
}

/// How a session stands after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Still open: waiting for a request, or for room to send.
    Open,
    /// We closed or reset it; the stack finishes the close and reports it.
    Closing,
}

/// A reply on its way out.
struct Sending {
    reply: Reply,
    /// Bytes of the head already queued.
    head_sent: usize,
    /// Bytes of the body already queued.
    body_sent: u64,
    /// The mapped window of a file body queued by reference.
    mapped: Mapped,
    /// For the access log.
    request_line: String,
    received: SystemTime,
}

/// Why a reply could not be sent to the end.
enum SendError {
    /// The connection failed or was closed under us.
    Connection,
    /// The file ended early or could not be read: the promised Content-Length cannot be
    /// kept, so the connection must be reset rather than left to look complete.
    File,
}

/// One accepted connection.
pub struct Session {
    id: ConnId,
    peer: Ipv4Addr,
    /// Bytes read and not yet taken by a request.
    inbuf: Vec<u8>,
    /// Request-body bytes still to be skipped.
    skip: u64,
    sending: Option<Sending>,
    /// Every byte the client sent has been read (its FIN, or the connection failed).
    eof: bool,
    /// Answer no further request: the last one could not be framed, or the server stops.
    last_request: bool,
    status: Status,
    /// The last time a byte moved either way (or the connection was accepted).
    last_progress: Instant,
    /// When the first byte of the request head now being read arrived.
    head_started: Option<Instant>,
}

impl Session {
    /// A session for connection `id` from `peer`, accepted at `now`.
    pub fn new(id: ConnId, peer: Ipv4Addr, now: Instant) -> Self {
        Session {
            id,
            peer,
            inbuf: Vec::new(),
            skip: 0,
            sending: None,
            eof: false,
            last_request: false,
            status: Status::Open,
            last_progress: now,
            head_started: None,
        }
    }

    /// Whether we closed it already.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Whether a reply is on its way out.
    pub fn is_sending(&self) -> bool {
        self.sending.is_some()
    }

    /// Does all that can be done now: queue reply bytes while the send buffer takes them,
    /// read and answer the next request once a reply is out, close when asked to.
    pub fn step(&mut self, cx: &mut Context) {
        while self.status == Status::Open {
            if self.sending.is_some() {
                match self.pump(cx) {
                    Ok(false) => return,
                    Ok(true) => {
                        let sending = self.sending.take().expect("checked above");
                        self.log(cx, &sending);
                        if sending.reply.close || self.last_request {
                            self.close(cx);
                            return;
                        }
                    }
                    Err(err) => {
                        let sending = self.sending.take().expect("checked above");
                        self.log(cx, &sending);
                        match err {
                            SendError::File => self.abort(cx),
                            SendError::Connection => self.close(cx),
                        }
                        return;
                    }
                }
            }
            if self.last_request {
                return;
            }
            if !self.read(cx) {
                return;
            }
            match request::parse(&self.inbuf) {
                Ok(Some((req, used))) => {
                    self.inbuf.drain(..used);
                    self.skip = req.body_len;
                    self.skip_buffered();
                    self.head_started = (!self.inbuf.is_empty()).then_some(cx.now);
                    let reply = answer(cx.site, &req, cx.wall);
                    self.start(reply, req.line(), cx.wall);
                }
                Ok(None) => {
                    if self.eof {
                        // A request cut short by the client's FIN cannot be answered.
                        self.close(cx);
                    }
                    return;
                }
                Err(bad) => {
                    // What follows cannot be framed: answer, then close (and read no more).
                    let line = String::from_utf8_lossy(first_line(&self.inbuf)).into_owned();
                    self.inbuf.clear();
                    self.last_request = true;
                    self.start(refuse(&bad, cx.wall), line, cx.wall);
                }
            }
        }
    }

    /// Checks the timers at `cx.now`: a reply making no progress and an idle connection get
    /// `timeout`, a request head `header_timeout` from its first byte.
    pub fn check_timeouts(
        &mut self,
        cx: &mut Context,
        timeout: Duration,
        header_timeout: Duration,
    ) {
        if self.status != Status::Open {
            return;
        }
        let idle = cx.now.saturating_duration_since(self.last_progress);
        if self.sending.is_some() {
            if idle >= timeout {
                // The client stopped reading: give its memory back, as nginx's send_timeout.
                let sending = self.sending.take().expect("checked above");
                self.log(cx, &sending);
                self.abort(cx);
            }
        } else if let Some(started) = self.head_started {
            if cx.now.saturating_duration_since(started) >= header_timeout {
                self.close(cx);
            }
        } else if idle >= timeout {
            self.close(cx);
        }
    }

    /// The server is stopping: an idle connection is closed now; one sending a reply is left
    /// to finish it (and is then closed), see [`Session::abort_for_shutdown`].
    pub fn shutdown(&mut self, cx: &mut Context) {
        if self.status != Status::Open {
            return;
        }
        if self.sending.is_some() {
            self.last_request = true;
        } else {
            self.close(cx);
        }
    }

    /// The grace period is over: reset a connection still sending.
    pub fn abort_for_shutdown(&mut self, cx: &mut Context) {
        if self.status != Status::Open {
            return;
        }
        if let Some(sending) = self.sending.take() {
            self.log(cx, &sending);
        }
        self.abort(cx);
    }

    /// The connection ended under us (reset, timed out): log a reply cut short.
    pub fn ended(&mut self, cx: &mut Context) {
        if let Some(sending) = self.sending.take() {
            self.log(cx, &sending);
        }
        self.status = Status::Closing;
    }

    fn start(&mut self, reply: Reply, request_line: String, received: SystemTime) {
        self.sending = Some(Sending {
            reply,
            head_sent: 0,
            body_sent: 0,
            mapped: Mapped::default(),
            request_line,
            received,
        });
    }

    /// Queues reply bytes until the send buffer is full (`Ok(false)`) or the reply is all
    /// queued (`Ok(true)`).
    fn pump(&mut self, cx: &mut Context) -> Result<bool, SendError> {
        let id = self.id;
        let sending = self.sending.as_mut().expect("pump runs while sending");
        let before = (sending.head_sent, sending.body_sent);
        let done = pump_reply(cx.stack, id, sending, cx.zero_copy);
        if before != (sending.head_sent, sending.body_sent) {
            self.last_progress = cx.now;
        }
        done
    }

    /// Moves request bytes from the stack into `inbuf` (skipping request bodies), up to what
    /// one head may take (one byte more, so an overlong head is seen as such). Returns whether
    /// there is anything to parse or the stream ended.
    fn read(&mut self, cx: &mut Context) -> bool {
        const CAP: usize = HEAD_LIMIT + 1;
        if !self.eof && (self.inbuf.len() < CAP || self.skip > 0) {
            loop {
                let (inbuf, skip) = (&mut self.inbuf, &mut self.skip);
                let taken = cx.stack.recv_with(self.id, |a, b| {
                    let mut taken = 0;
                    for part in [a, b] {
                        let drop = (*skip).min(part.len() as u64) as usize;
                        *skip -= drop as u64;
                        let keep = CAP.saturating_sub(inbuf.len()).min(part.len() - drop);
                        inbuf.extend_from_slice(&part[drop..drop + keep]);
                        taken += drop + keep;
                        if drop + keep < part.len() {
                            break;
                        }
                    }
                    taken
                });
                match taken {
                    Ok(0) => {
                        self.eof = true;
                        break;
                    }
                    Ok(_) => {
                        self.last_progress = cx.now;
                        if self.head_started.is_none() && !self.inbuf.is_empty() {
                            self.head_started = Some(cx.now);
                        }
                        if self.skip == 0 && self.inbuf.len() >= CAP {
                            break;
                        }
                    }
                    Err(StackError::Io(IoError::WouldBlock)) => break,
                    Err(_) => {
                        self.eof = true;
                        break;
                    }
                }
            }
        }
        !self.inbuf.is_empty() || self.eof
    }

    /// Drops request-body bytes already in `inbuf`.
    fn skip_buffered(&mut self) {
        let drop = self.skip.min(self.inbuf.len() as u64) as usize;
        self.inbuf.drain(..drop);
        self.skip -= drop as u64;
    }

    fn log(&self, cx: &mut Context, sending: &Sending) {
        if let Some(out) = cx.log.as_mut() {
            let line = super::log::line(
                self.peer,
                sending.received,
                &sending.request_line,
                sending.reply.status,
                sending.body_sent,
            );
            // A closed standard output must not stop the server.
            let _ = writeln!(out, "{line}");
        }
    }

    fn close(&mut self, cx: &mut Context) {
        let _ = cx.stack.close(self.id);
        self.status = Status::Closing;
    }

    fn abort(&mut self, cx: &mut Context) {
        let _ = cx.stack.abort(self.id);
        self.status = Status::Closing;
    }
}

/// Queues what fits of `sending` on connection `id`.
fn pump_reply(
    stack: &mut Stack,
    id: ConnId,
    sending: &mut Sending,
    zero_copy: bool,
) -> Result<bool, SendError> {
    let head = &sending.reply.head;
    while sending.head_sent < head.len() {
        let n = queue(stack, id, &head[sending.head_sent..])?;
        if n == 0 {
            return Ok(false);
        }
        sending.head_sent += n;
    }
    match &sending.reply.body {
        Body::Empty => Ok(true),
        Body::Text(text) => {
            let text = text.as_bytes();
            while (sending.body_sent as usize) < text.len() {
                let n = queue(stack, id, &text[sending.body_sent as usize..])?;
                if n == 0 {
                    return Ok(false);
                }
                sending.body_sent += n as u64;
            }
            Ok(true)
        }
        Body::File { file, offset, len } => {
            if zero_copy && *len >= mapped::MIN_LEN && !sending.mapped.unavailable {
                let body = (file, *offset, *len);
                match pump_mapped(stack, id, body, &mut sending.mapped, &mut sending.body_sent) {
                    Err(MapError::Unavailable) => sending.mapped.unavailable = true,
                    Err(MapError::Short) => return Err(SendError::File),
                    Ok(done) => return done,
                }
            }
            while sending.body_sent < *len {
                let at = offset + sending.body_sent;
                let n = read_into_send_buffer(stack, id, file, at, len - sending.body_sent)?;
                if n == 0 {
                    return Ok(false);
                }
                sending.body_sent += n as u64;
            }
            Ok(true)
        }
    }
}

/// Queues what fits of a file body (`file`, its `offset` and `len`) mapped, by reference,
/// from `body_sent` on; the outer result is the mapping's, the inner one [`pump_reply`]'s.
fn pump_mapped(
    stack: &mut Stack,
    id: ConnId,
    (file, offset, len): (&File, u64, u64),
    mapped: &mut Mapped,
    body_sent: &mut u64,
) -> Result<Result<bool, SendError>, MapError> {
    while *body_sent < len {
        let bytes = mapped.next(file, offset + *body_sent, len - *body_sent)?;
        let n = match stack.send_shared(id, bytes) {
            Ok(n) => n,
            Err(StackError::Io(IoError::WouldBlock)) => 0,
            Err(_) => return Ok(Err(SendError::Connection)),
        };
        if n == 0 {
            return Ok(Ok(false));
        }
        mapped.advance(n);
        *body_sent += n as u64;
    }
    Ok(Ok(true))
}

/// Reads up to `left` bytes of `file` from `at` straight into connection `id`'s send buffer;
/// returns how many were queued, 0 when the buffer is full.
fn read_into_send_buffer(
    stack: &mut Stack,
    id: ConnId,
    file: &File,
    at: u64,
    left: u64,
) -> Result<usize, SendError> {
    // Reading less than asked means the file ended before the length we promised (or could
    // not be read): the reply cannot be kept.
    let mut short = false;
    let max = usize::try_from(left).unwrap_or(usize::MAX);
    let queued = stack.send_with(id, max, |first, second| {
        let mut got = 0;
        for piece in [first, second] {
            let n = read_fully(file, piece, at + got as u64);
            got += n;
            if n < piece.len() {
                short = true;
                break;
            }
        }
        got
    });
    let queued = match queued {
        Ok(n) => n,
        Err(StackError::Io(IoError::WouldBlock)) => 0,
        Err(_) => return Err(SendError::Connection),
    };
    if short {
        return Err(SendError::File);
    }
    Ok(queued)
}

/// Reads `buf.len()` bytes of `file` from `at`, or fewer if it ends or cannot be read.
fn read_fully(file: &File, buf: &mut [u8], at: u64) -> usize {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], at + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    got
}

/// Queues bytes on the connection; 0 when its send buffer is full.
fn queue(stack: &mut Stack, id: ConnId, bytes: &[u8]) -> Result<usize, SendError> {
    match stack.send(id, bytes) {
        Ok(n) => Ok(n),
        Err(StackError::Io(IoError::WouldBlock)) => Ok(0),
        Err(_) => Err(SendError::Connection),
    }
}

/// The first line of a request that could not be parsed, for the access log.
fn first_line(buf: &[u8]) -> &[u8] {
    let end = buf
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(buf.len());
    &buf[..end.min(256)]
}
