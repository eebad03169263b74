//! The applications on either end of the simulated path, and the byte stream they move.

use std::net::SocketAddrV4;
use std::time::Instant;

use tunstack::stack::{ConnId, Event, Stack, StackError};
use tunstack::tcp::{ConnStats, IoError, State};

use super::{SERVER_ADDR, SERVER_PORT};

/// A deterministic pseudo-random byte stream: byte `i` depends only on the seed and `i`.
#[derive(Debug, Clone, Copy)]
pub struct Pattern {
    seed: u64,
}

impl Pattern {
    /// The stream for `seed`.
    pub fn new(seed: u64) -> Self {
        Pattern { seed }
    }

    fn word(&self, index: u64) -> [u8; 8] {
        // splitmix64 of (seed, word index)
        let mut z = self
            .seed
            .wrapping_add(index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)).to_le_bytes()
    }

    /// Fills `out` with the stream's bytes from `offset`.
    pub fn fill(&self, offset: u64, out: &mut [u8]) {
        let mut done = 0;
        while done < out.len() {
            let at = offset + done as u64;
            let skip = (at % 8) as usize;
            let n = (8 - skip).min(out.len() - done);
            out[done..done + n].copy_from_slice(&self.word(at / 8)[skip..skip + n]);
            done += n;
        }
    }

    /// Checks `data` against the stream from `offset`; the offset of the first wrong byte.
    pub fn check(&self, offset: u64, data: &[u8]) -> Result<(), u64> {
        let mut done = 0;
        while done < data.len() {
            let at = offset + done as u64;
            let skip = (at % 8) as usize;
            let n = (8 - skip).min(data.len() - done);
            let expected = self.word(at / 8);
            // Whole words compare as integers; this runs over every byte of every test.
            let matches = if n == 8 {
                let got: [u8; 8] = data[done..done + 8].try_into().unwrap_or_default();
                u64::from_ne_bytes(got) == u64::from_ne_bytes(expected)
            } else {
                data[done..done + n] == expected[skip..skip + n]
            };
            if !matches {
                let wrong = (0..n)
                    .find(|&i| data[done + i] != expected[skip + i])
                    .unwrap_or(0);
                return Err(at + wrong as u64);
            }
            done += n;
        }
        Ok(())
    }
}

/// Which end of the connection an endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Connects to the server.
    Client,
    /// Listens on [`SERVER_PORT`] and accepts one connection.
    Server,
}

/// What an endpoint does with the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sends `total` pattern bytes, then closes.
    Sender,
    /// Reads and verifies `total` pattern bytes, expects end of stream, then closes.
    Receiver,
}

/// An application on one stack: a bulk sender or a verifying receiver, over one connection.
pub struct Endpoint {
    side: Side,
    role: Role,
    total: u64,
    pattern: Pattern,
    conn: Option<ConnId>,
    /// Bytes sent (sender) or received and verified (receiver).
    pos: u64,
    chunk: Vec<u8>,
    /// Stream offset of `chunk[0]`, and how many bytes of it are valid.
    chunk_at: u64,
    chunk_len: usize,
    /// Queue every other chunk as shared bytes (`Stack::send_shared`), the rest copied, so
    /// the send buffer holds both kinds side by side.
    pub share: bool,
    /// The current chunk as shared bytes, when it is queued that way.
    shared_chunk: Option<bytes::Bytes>,
    close_called: bool,
    /// When the receiver saw end of stream after every byte.
    pub eof_at: Option<Instant>,
    /// When the `Closed` event arrived.
    pub closed_at: Option<Instant>,
    /// The connection's counters, as last seen before the stack forgot it (so without the
    /// very last segment it handled).
    pub stats: Option<ConnStats>,
    /// The connection's state, as last seen.
    pub state: Option<State>,
}

const CHUNK: usize = 64 << 10;

impl Endpoint {
    /// An endpoint moving `total` bytes of `pattern`.
    pub fn new(side: Side, role: Role, total: u64, pattern: Pattern) -> Self {
        Endpoint {
            side,
            role,
            total,
            pattern,
            conn: None,
            pos: 0,
            chunk: vec![0; CHUNK],
            chunk_at: 0,
            chunk_len: 0,
            share: false,
            shared_chunk: None,
            close_called: false,
            eof_at: None,
            closed_at: None,
            stats: None,
            state: None,
        }
    }

    /// True once the connection closed cleanly after doing its job.
    pub fn is_done(&self) -> bool {
        self.closed_at.is_some() && self.close_called
    }

    /// Bytes sent or verified so far.
    pub fn progress(&self) -> u64 {
        self.pos
    }

    /// Lets the application act at `now`: react to events, open, send, read, close. Returns
    /// whether anything happened (so the driver flushes and asks again), or a failure.
    pub fn poll(&mut self, stack: &mut Stack, now: Instant) -> Result<bool, String> {
        let mut progress = false;
        if self.side == Side::Client && self.conn.is_none() {
            let remote = SocketAddrV4::new(SERVER_ADDR, SERVER_PORT);
            self.conn = Some(stack.connect(now, remote).map_err(|e| e.to_string())?);
            progress = true;
        }
        while let Some(event) = stack.poll_event() {
            progress = true;
            self.on_event(stack, now, event)?;
        }
        if let Some(id) = self.conn {
            if self.closed_at.is_none() {
                progress |= match self.role {
                    Role::Sender => self.pump_send(stack, id)?,
                    Role::Receiver => self.pump_recv(stack, id, now)?,
                };
            }
            if let Some(conn) = stack.connection(id) {
                self.stats = Some(conn.stats());
                self.state = Some(conn.state());
            }
        }
        Ok(progress)
    }

    fn on_event(&mut self, stack: &mut Stack, now: Instant, event: Event) -> Result<(), String> {
        match event {
            Event::Incoming { port } => {
                let id = stack
                    .accept(port)
                    .ok_or("Incoming event but nothing to accept")?;
                if self.conn.replace(id).is_some() {
                    return Err(format!("a second connection {id} was accepted"));
                }
            }
            Event::Closed(id) if Some(id) == self.conn => {
                if !self.close_called {
                    return Err(format!(
                        "{:?} {id} closed before the application did",
                        self.side
                    ));
                }
                self.closed_at = Some(now);
                // The stack may forget the connection before the next poll looks at it.
                self.state = Some(State::Closed);
            }
            Event::Failed(id, err) => {
                return Err(format!(
                    "{:?} connection {id} failed: {err} (moved {} of {} bytes)",
                    self.side, self.pos, self.total
                ));
            }
            Event::Connected(_)
            | Event::Readable(_)
            | Event::Writable(_)
            | Event::PeerFinished(_)
            | Event::Closed(_) => {}
        }
        Ok(())
    }

    fn pump_send(&mut self, stack: &mut Stack, id: ConnId) -> Result<bool, String> {
        let mut progress = false;
        while self.pos < self.total {
            if self.pos >= self.chunk_at + self.chunk_len as u64 {
                let len = (self.total - self.pos).min(CHUNK as u64) as usize;
                self.pattern.fill(self.pos, &mut self.chunk[..len]);
                self.chunk_at = self.pos;
                self.chunk_len = len;
                let nth = self.chunk_at / CHUNK as u64;
                self.shared_chunk = (self.share && nth % 2 == 0)
                    .then(|| bytes::Bytes::copy_from_slice(&self.chunk[..len]));
            }
            let from = (self.pos - self.chunk_at) as usize;
            let sent = match &self.shared_chunk {
                Some(shared) => stack.send_shared(id, shared.slice(from..)),
                None => stack.send(id, &self.chunk[from..self.chunk_len]),
            };
            match sent {
                Ok(0) | Err(StackError::Io(IoError::WouldBlock)) => break,
                Ok(n) => {
                    self.pos += n as u64;
                    progress = true;
                }
                Err(err) => return Err(format!("send failed at byte {}: {err}", self.pos)),
            }
        }
        if self.pos == self.total && !self.close_called {
            stack.close(id).map_err(|e| e.to_string())?;
            self.close_called = true;
            progress = true;
        }
        Ok(progress)
    }

    fn pump_recv(&mut self, stack: &mut Stack, id: ConnId, now: Instant) -> Result<bool, String> {
        let mut progress = false;
        loop {
            let pattern = self.pattern;
            let start = self.pos;
            let mut bad = None;
            let read = stack.recv_with(id, |a, b| {
                let checked = pattern
                    .check(start, a)
                    .and_then(|()| pattern.check(start + a.len() as u64, b));
                bad = checked.err();
                a.len() + b.len()
            });
            match read {
                Ok(0) => {
                    if self.pos != self.total {
                        return Err(format!(
                            "end of stream after {} of {} bytes",
                            self.pos, self.total
                        ));
                    }
                    if !self.close_called {
                        self.eof_at = Some(now);
                        stack.close(id).map_err(|e| e.to_string())?;
                        self.close_called = true;
                        progress = true;
                    }
                    return Ok(progress);
                }
                Ok(n) => {
                    if let Some(offset) = bad {
                        return Err(format!("wrong byte at stream offset {offset}"));
                    }
                    self.pos += n as u64;
                    if self.pos > self.total {
                        return Err(format!(
                            "received {} bytes, expected {}",
                            self.pos, self.total
                        ));
                    }
                    progress = true;
                }
                Err(StackError::Io(IoError::WouldBlock)) => return Ok(progress),
                Err(err) => return Err(format!("recv failed at byte {}: {err}", self.pos)),
            }
        }
    }
}
