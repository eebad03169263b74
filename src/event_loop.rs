//! The mio loop: the only place that reads the clock and waits for the device.
//!
//! Each turn flushes what the stack wants to send, sleeps until the device is readable or the
//! stack's next deadline (never a fixed tick), drains the device until `WouldBlock`, fires due
//! timers, and flushes again. Protocol decisions stay in the stack.

use std::io;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::device::Device;
use crate::stack::Stack;
use crate::trace::Tracer;

const DEVICE: Token = Token(0);
/// Datagrams read per turn before the application gets to consume data (and so reopen the
/// receive window); the rest are read on the next turn without sleeping.
const READ_BATCH: usize = 256;
/// Largest datagram we read or write.
pub const MAX_DATAGRAM: usize = 65535;

/// A stack attached to a TUN device, driven by readiness and deadlines.
pub struct EventLoop {
    poll: Poll,
    events: Events,
    device: Box<dyn Device>,
    stack: Stack,
    rx: Vec<u8>,
    tx: Vec<u8>,
    /// A datagram the device refused with `WouldBlock`, kept until it is writable.
    tx_pending: Option<usize>,
    /// The last drain stopped at the batch limit, so more may be queued.
    rx_backlog: bool,
    writable_interest: bool,
    tracer: Option<Tracer>,
}

impl EventLoop {
    /// Registers `device` with a new mio poller; `make_stack` gets the clock's current reading
    /// to anchor the stack's clocks. `trace` prints every datagram to stderr.
    pub fn new(
        device: Box<dyn Device>,
        make_stack: impl FnOnce(Instant) -> Stack,
        trace: bool,
    ) -> io::Result<Self> {
        let now = Instant::now();
        let stack = make_stack(now);
        let tracer = trace.then(|| Tracer::new(now));
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut SourceFd(&device.raw_fd()), DEVICE, Interest::READABLE)?;
        Ok(EventLoop {
            poll,
            events: Events::with_capacity(8),
            device,
            stack,
            rx: vec![0; MAX_DATAGRAM],
            tx: vec![0; MAX_DATAGRAM],
            tx_pending: None,
            rx_backlog: false,
            writable_interest: false,
            tracer,
        })
    }

    /// The wall clock, for the application's own deadlines.
    pub fn now(&self) -> Instant {
        Instant::now()
    }

    /// The stack, for application calls (connect, send, recv, close) and events.
    pub fn stack(&mut self) -> &mut Stack {
        &mut self.stack
    }

    /// One turn: flush, wait until readiness, the stack's next deadline or `until` (whichever
    /// is first), read, fire timers, flush. Returns on any of those; spurious returns are fine.
    pub fn turn(&mut self, until: Option<Instant>) -> io::Result<()> {
        self.flush()?;
        let now = Instant::now();
        let deadline = [self.stack.poll_timeout(), self.device.poll_timeout(), until]
            .into_iter()
            .flatten()
            .min();
        let timeout = if self.rx_backlog {
            Some(Duration::ZERO)
        } else {
            deadline.map(|at| at.saturating_duration_since(now))
        };
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            // A signal (Ctrl-C) interrupted the wait: let the caller look at its flags.
            Err(err) if err.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(err) => return Err(err),
        }
        let now = Instant::now();
        self.device.poll(now)?;
        // A wrapper (fault injection) may hold datagrams that are due now.
        let device_due = self.device.poll_timeout().is_some_and(|at| at <= now);
        let mut readable = self.rx_backlog || device_due;
        for event in self.events.iter() {
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                readable = true;
            }
        }
        if readable {
            self.drain()?;
        }
        let now = Instant::now();
        if self.stack.poll_timeout().is_some_and(|at| at <= now) {
            self.stack.handle_timeout(now);
        }
        self.flush()
    }

    /// Reads datagrams until the device has none (or a batch is done) and feeds the stack.
    fn drain(&mut self) -> io::Result<()> {
        self.rx_backlog = false;
        // One clock reading per batch: everything in it was already queued when we woke.
        let now = Instant::now();
        for _ in 0..READ_BATCH {
            match self.device.recv(now, &mut self.rx) {
                Ok(received) => {
                    let datagram = &self.rx[..received.len];
                    if let Some(tracer) = &mut self.tracer {
                        tracer.datagram(now, "in", datagram, &self.stack);
                    }
                    self.stack
                        .handle_datagram_with(now, datagram, received.checksum.status());
                    // Loss signals (out-of-order ACKs with SACK) and every second segment's
                    // ACK go out at once; only delayable ACKs wait for the end of the batch.
                    if self.stack.take_transmit_due() {
                        self.flush()?;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
        }
        self.rx_backlog = true;
        Ok(())
    }

    /// Sends everything the stack has, keeping a refused datagram for when the device is writable.
    pub fn flush(&mut self) -> io::Result<()> {
        loop {
            let len = match self.tx_pending.take() {
                Some(len) => len,
                None => {
                    let now = Instant::now();
                    match self.stack.poll_transmit(now, &mut self.tx) {
                        Some(len) => {
                            if let Some(tracer) = &mut self.tracer {
                                tracer.datagram(now, "out", &self.tx[..len], &self.stack);
                            }
                            len
                        }
                        None => break,
                    }
                }
            };
            match self.device.send(Instant::now(), &self.tx[..len]) {
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    self.tx_pending = Some(len);
                    break;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => self.tx_pending = Some(len),
                Err(err) => return Err(err),
            }
        }
        self.set_writable_interest(self.tx_pending.is_some())
    }

    fn set_writable_interest(&mut self, wanted: bool) -> io::Result<()> {
        if wanted == self.writable_interest {
            return Ok(());
        }
        let interest = if wanted {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        self.poll
            .registry()
            .reregister(&mut SourceFd(&self.device.raw_fd()), DEVICE, interest)?;
        self.writable_interest = wanted;
        Ok(())
    }
}
