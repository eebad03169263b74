//! The batch and flush policy between a device and the stack, without I/O of its own.
//!
//! Both the mio event loop and the deterministic simulator in the tests run this one driver,
//! so what the simulator measures (how many datagrams make one batch, when ACKs go out) is
//! what production does. The driver never reads the clock and never waits: it is handed a
//! clock to read at the points where the policy needs the time, a device to read and write,
//! and whether the device became readable; it answers with the next deadline.
//!
//! One call of [`Driver::poll`] after waking:
//! 1. lets the device move datagrams it holds (a fault injector's delay) whose time has come;
//! 2. reads a batch (at most [`READ_BATCH`] datagrams or [`READ_BATCH_BYTES`] bytes) if the
//!    device is readable, holds datagrams that are due, or the last batch stopped at the limit,
//!    and hands each datagram to the stack; an ACK the stack wants out before more is read (a
//!    loss signal, a stretch ACK, a reset) is sent at once, the others wait for the batch's end
//!    and cover all of it;
//! 3. fires the stack's timers that are due;
//! 4. sends everything the stack has, then hands the stack what the device's link layer (TAP
//!    mode) found out: next hops that never answered ARP fail their connections.
//!
//! With `--trace`, the driver also moves trace records to a [`TraceSink`] as it goes: after
//! each call into the device (what `--impair` did) and into the stack (what the connections
//! decided), so the file lists them in the order they happened, in production and in the
//! simulator alike.

use std::io;
use std::time::Instant;

use crate::device::{Device, LinkEvent};
use crate::stack::{ConnId, Deferred, Stack};
use crate::tcp::ConnError;
use crate::trace::{TraceSink, Tracer};
use bytes::Bytes;

/// Datagrams read per batch before the application gets to consume data (and so reopen the
/// receive window); the rest are read on the next call without sleeping.
pub const READ_BATCH: usize = 256;
/// Bytes read per batch, for the same reason: with offloads 256 datagrams can be 16 MiB, far
/// more than a receive window, so the application would read only after the window had closed.
pub const READ_BATCH_BYTES: usize = 256 << 10;
/// Largest datagram we read or write.
pub const MAX_DATAGRAM: usize = 65535;

/// A stack and the policy that feeds it from a device: batch reads, ACK flushing, timers.
///
/// The device is passed to each call rather than owned, so the event loop can also register
/// it with its poller and the simulator can lend a view of its shared links.
pub struct Driver {
    stack: Stack,
    rx: Vec<u8>,
    tx: Vec<u8>,
    /// A datagram the device refused with `WouldBlock` (its length and segment size), kept
    /// until it is writable.
    tx_pending: Option<(usize, Option<u16>)>,
    /// With `tx_pending`, a refused datagram's payload when it is shared bytes (a mapped
    /// file's, `Stack::send_shared`): `tx` then holds only the headers, as user space must
    /// not read those bytes (only the device's write may: see [`Driver::flush`]).
    tx_pending_shared: Option<(ConnId, Bytes)>,
    /// The last batch stopped at the limit, so more may be queued.
    rx_backlog: bool,
    tracer: Option<Tracer>,
    /// `--trace FILE`: where the stack's and the device's trace records go.
    trace: Option<Box<dyn TraceSink>>,
}

impl Driver {
    /// Drives `stack`; `tracer` (if any) prints every datagram in and out.
    pub fn new(stack: Stack, tracer: Option<Tracer>) -> Self {
        Driver {
            stack,
            rx: vec![0; MAX_DATAGRAM],
            tx: vec![0; MAX_DATAGRAM],
            tx_pending: None,
            tx_pending_shared: None,
            rx_backlog: false,
            tracer,
            trace: None,
        }
    }

    /// `--trace`: from now on, the stack's trace records (`TcpConfig::trace` must be on) and
    /// what the device's fault injector does go to `sink`. The device is asked to record.
    pub fn set_trace<D: Device + ?Sized>(&mut self, device: &mut D, sink: Box<dyn TraceSink>) {
        device.trace_impairments();
        self.trace = Some(sink);
    }

    /// Ends the trace: every connection still open gets its `close` record, everything left
    /// is written and the sink flushed. Returns the sink (tests read it back) and the first
    /// write error, if any.
    pub fn finish_trace<D: Device + ?Sized>(
        &mut self,
        device: &mut D,
        now: Instant,
    ) -> io::Result<Option<Box<dyn TraceSink>>> {
        self.stack.trace_finish(now);
        self.pump_trace(device);
        match self.trace.take() {
            Some(mut sink) => sink.flush().map(|()| Some(sink)),
            None => Ok(None),
        }
    }

    /// Moves what the device and the stack recorded to the sink, in that order (the device's
    /// records are of datagrams on their way in, before the stack saw them, or on their way
    /// out, after it decided). With `--stats` alone the stack's records are dropped here.
    fn pump_trace<D: Device + ?Sized>(&mut self, device: &mut D) {
        if let Some(sink) = &mut self.trace {
            let stack = &self.stack;
            device.drain_impairments(&mut |record| sink.record(&stack.trace_impairment(&record)));
            device.drain_link_trace(&mut |record| sink.record(&record));
        }
        while let Some(record) = self.stack.poll_trace() {
            if let Some(sink) = &mut self.trace {
                sink.record(&record);
            }
        }
    }

    /// The stack, for inspection.
    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    /// The stack, for application calls (connect, send, recv, close) and events.
    pub fn stack_mut(&mut self) -> &mut Stack {
        &mut self.stack
    }

    /// When the driver wants to be called again without the device becoming readable: at once
    /// (`now`) if the last batch left datagrams unread, otherwise the earlier of the stack's
    /// next timer and the device's next held datagram.
    pub fn poll_timeout<D: Device + ?Sized>(&self, device: &D, now: Instant) -> Option<Instant> {
        if self.rx_backlog {
            return Some(now);
        }
        self.deadline(device)
    }

    /// Like [`Driver::poll_timeout`] without the backlog: the stack's and device's deadlines.
    pub fn deadline<D: Device + ?Sized>(&self, device: &D) -> Option<Instant> {
        [self.stack.poll_timeout(), device.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// The last batch stopped at its limit: call [`Driver::poll`] again without waiting.
    pub fn has_backlog(&self) -> bool {
        self.rx_backlog
    }

    /// A datagram waits for the device to become writable.
    pub fn wants_writable(&self) -> bool {
        self.tx_pending.is_some()
    }

    /// One step after waking: device timers, a batch read (if `readable`, or the device holds
    /// due datagrams, or a backlog remains), the stack's due timers, then a flush. `clock` is
    /// read once for the device, once for the batch, once for the timers and per datagram sent.
    pub fn poll<D: Device + ?Sized>(
        &mut self,
        device: &mut D,
        readable: bool,
        clock: &impl Fn() -> Instant,
    ) -> io::Result<()> {
        let now = clock();
        self.pump_trace(device);
        device.poll(now)?;
        self.pump_trace(device);
        // A wrapper (fault injection) may hold datagrams that are due now.
        let device_due = device.poll_timeout().is_some_and(|at| at <= now);
        if self.rx_backlog || device_due || readable {
            self.drain(device, clock)?;
        }
        let now = clock();
        if self.stack.poll_timeout().is_some_and(|at| at <= now) {
            self.stack.handle_timeout(now);
            self.pump_trace(device);
        }
        self.flush(device, clock)
    }

    /// Reads datagrams until the device has none (or a batch is done) and feeds the stack.
    fn drain<D: Device + ?Sized>(
        &mut self,
        device: &mut D,
        clock: &impl Fn() -> Instant,
    ) -> io::Result<()> {
        self.rx_backlog = false;
        // One clock reading per batch: everything in it was already queued when we woke.
        let now = clock();
        let mut bytes = 0;
        for _ in 0..READ_BATCH {
            if bytes >= READ_BATCH_BYTES {
                break;
            }
            let result = device.recv(now, &mut self.rx);
            self.pump_trace(device);
            match result {
                Ok(received) => {
                    bytes += received.len;
                    let datagram = &self.rx[..received.len];
                    if let Some(tracer) = &mut self.tracer {
                        tracer.datagram(now, "in", datagram, &self.stack);
                    }
                    self.stack
                        .handle_datagram_with(now, datagram, received.checksum.status());
                    self.pump_trace(device);
                    // Loss signals (the first duplicate ACKs per RCV.NXT, a new hole, then one
                    // ACK per `sack_compression` out-of-order segments, or every one while
                    // our ACKs are being lost; an ACK for every in-order segment that fills a
                    // hole or arrives while one remains) and an ACK covering `ack_stretch`
                    // segments go out at once, one per datagram (`Connection::ack_due`); the
                    // ACK the rest owes waits for the end of the batch and covers it all.
                    if self.stack.take_transmit_due() {
                        self.flush(device, clock)?;
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

    /// Sends everything the stack has, keeping a refused datagram for when the device is
    /// writable ([`Driver::wants_writable`]). `clock` is read per datagram, so each carries the
    /// time it really left.
    pub fn flush<D: Device + ?Sized>(
        &mut self,
        device: &mut D,
        clock: &impl Fn() -> Instant,
    ) -> io::Result<()> {
        // A device that gathers gets super-segments' payloads straight from the send buffers
        // (`-v` prints whole datagrams, so it keeps the copy).
        let gather = self.gathers(device);
        loop {
            let mut deferred = None;
            let mut shared = self.tx_pending_shared.take();
            let (len, segment_size) = match self.tx_pending.take() {
                Some(pending) => pending,
                None => {
                    let now = clock();
                    let polled = if gather {
                        self.stack
                            .poll_transmit_deferred(now, &mut self.tx)
                            .map(|t| {
                                deferred = t.payload;
                                (t.len, t.segment_size)
                            })
                    } else {
                        self.stack.poll_transmit_segmented(now, &mut self.tx)
                    };
                    if polled.is_none() {
                        self.pump_trace(device);
                    }
                    match polled {
                        Some((len, segment_size)) => {
                            if let Some(tracer) = &mut self.tracer {
                                tracer.datagram(now, "out", &self.tx[..len], &self.stack);
                            }
                            self.pump_trace(device);
                            (len, segment_size)
                        }
                        None => break,
                    }
                }
            };
            if let Some(payload) = &deferred {
                shared = self
                    .stack
                    .deferred_shared(payload)
                    .map(|bytes| (payload.conn(), bytes));
            }
            let sent = match (&shared, &deferred) {
                (Some((_, bytes)), _) => {
                    let headers = &self.tx[..len - bytes.len()];
                    device.send_gathered(clock(), headers, (bytes, &[]), segment_size)
                }
                (None, Some(payload)) => {
                    let headers = &self.tx[..len - payload.len];
                    let pieces = self.stack.deferred_payload(payload);
                    device.send_gathered(clock(), headers, pieces, segment_size)
                }
                (None, None) => device.send_segmented(clock(), &self.tx[..len], segment_size),
            };
            self.pump_trace(device);
            if sent.is_err() && shared.is_none() {
                if let Some(payload) = &deferred {
                    // Kept whole for the retry: the send buffer may move before it.
                    self.gather_into_tx(len, segment_size, payload);
                }
            }
            match sent {
                Ok(_) => {}
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    // Shared bytes are kept by reference, the rest was copied into `tx`.
                    self.tx_pending = Some((len, segment_size));
                    self.tx_pending_shared = shared;
                    if err.kind() == io::ErrorKind::WouldBlock {
                        break;
                    }
                }
                Err(err) if err.raw_os_error() == Some(libc::EFAULT) && shared.is_some() => {
                    // The kernel could not read the shared bytes: the file under them was cut
                    // short since it was mapped. That connection cannot keep its promise; the
                    // others go on.
                    if let Some((id, _)) = shared {
                        let _ = self.stack.reset(id);
                    }
                }
                Err(err) => return Err(err),
            }
        }
        self.take_link_events(device);
        Ok(())
    }

    /// Whether datagrams go to `device` with their payloads gathered from the send buffers:
    /// a device that gathers, and no `-v` (which prints whole datagrams, so keeps the copy).
    /// Only then may the application queue shared bytes (`Stack::send_shared`).
    pub fn gathers<D: Device + ?Sized>(&self, device: &D) -> bool {
        device.gathers() && self.tracer.is_none()
    }

    /// Copies a payload `poll_transmit_deferred` left out into `tx` after its headers, making
    /// the `len`-byte datagram whole.
    fn gather_into_tx(&mut self, len: usize, segment_size: Option<u16>, payload: &Deferred) {
        let start = len - payload.len;
        let (front, back) = self.stack.deferred_payload(payload);
        self.tx[start..start + front.len()].copy_from_slice(front);
        self.tx[start + front.len()..len].copy_from_slice(back);
        // The stack left the checksum to the device; the retry writes the datagram whole. A
        // super-segment's pieces are summed when it is cut (by TSO or `gso::split_tcp`).
        if segment_size.is_none() {
            crate::device::gso::fill_tcp_checksum(&mut self.tx[..len]);
        }
    }

    /// Hands the stack what the link layer found out (TAP mode: a next hop that never
    /// answered ARP fails the connections whose datagrams waited for it).
    fn take_link_events<D: Device + ?Sized>(&mut self, device: &mut D) {
        while let Some(event) = device.poll_link_event() {
            if let LinkEvent::Unreachable {
                next_hop,
                destinations,
            } = event
            {
                self.stack
                    .fail_remotes(&destinations, ConnError::NoArpReply(next_hop));
            }
        }
    }
}
