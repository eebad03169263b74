//! The mio loop: the only place that reads the clock and waits for the device.
//!
//! Each turn flushes what the stack wants to send, sleeps until the device is readable or the
//! next deadline (never a fixed tick), and hands the rest to the [`Driver`]: it drains the
//! device in batches, fires due timers and flushes again. The batch and flush policy lives in
//! the driver so that the simulator in the tests runs exactly the same one; protocol decisions
//! stay in the stack.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::device::FdDevice;
use crate::driver::Driver;
pub use crate::driver::MAX_DATAGRAM;
use crate::stack::Stack;
use crate::trace::{TraceSink, Tracer};

const DEVICE: Token = Token(0);
/// Another thread (an output writer) has news: room in its queue, or it finished.
const WAKER: Token = Token(1);

/// A stack attached to a TUN device, driven by readiness and deadlines.
pub struct EventLoop {
    poll: Poll,
    events: Events,
    device: Box<dyn FdDevice>,
    driver: Driver,
    writable_interest: bool,
    waker: Arc<Waker>,
}

impl EventLoop {
    /// Registers `device` (its descriptor) with a new mio poller; `make_stack` gets the clock's current reading
    /// to anchor the stack's clocks. `trace` prints every datagram to stderr.
    pub fn new(
        device: Box<dyn FdDevice>,
        make_stack: impl FnOnce(Instant) -> Stack,
        trace: bool,
    ) -> io::Result<Self> {
        let now = Instant::now();
        let stack = make_stack(now);
        let tracer = trace.then(|| Tracer::new(now));
        let poll = Poll::new()?;
        poll.registry().register(
            &mut SourceFd(&device.as_raw_fd()),
            DEVICE,
            Interest::READABLE,
        )?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        Ok(EventLoop {
            poll,
            events: Events::with_capacity(8),
            device,
            driver: Driver::new(stack, tracer),
            writable_interest: false,
            waker,
        })
    }

    /// Wakes a `turn` from another thread, so the application looks at what that thread did
    /// (output written, its queue has room) without waiting for a packet or a deadline.
    pub fn waker(&self) -> Arc<Waker> {
        Arc::clone(&self.waker)
    }

    /// The wall clock, for the application's own deadlines.
    pub fn now(&self) -> Instant {
        Instant::now()
    }

    /// The wall clock, for dates an application writes (HTTP Date, access logs).
    pub fn wall_clock(&self) -> std::time::SystemTime {
        std::time::SystemTime::now()
    }

    /// The wall clock as time since the Unix epoch, for dates in protocols (Retry-After); zero
    /// if the clock is set before 1970.
    pub fn since_epoch(&self) -> Duration {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
    }

    /// `--trace`: the stack's and the fault injector's records go to `sink` from now on (the
    /// stack must have been built with `TcpConfig::trace`).
    pub fn set_trace(&mut self, sink: Box<dyn TraceSink>) {
        self.driver.set_trace(&mut *self.device, sink);
    }

    /// Ends the trace at exit: `close` records for the connections still open, then
    /// everything written and flushed. A no-op without `--trace`.
    pub fn finish_trace(&mut self) -> io::Result<()> {
        self.driver
            .finish_trace(&mut *self.device, Instant::now())
            .map(drop)
    }

    /// Whether datagrams leave with their payloads gathered from the send buffers, so that
    /// the application may queue shared bytes (`Stack::send_shared`).
    pub fn gathers(&self) -> bool {
        self.driver.gathers(&*self.device)
    }

    /// The stack, for application calls (connect, send, recv, close) and events.
    pub fn stack(&mut self) -> &mut Stack {
        self.driver.stack_mut()
    }

    /// One turn: flush, wait until readiness, a wake-up from another thread, the stack's next
    /// deadline or `until` (whichever is first), read, fire timers, flush. Returns on any of those; spurious returns are fine.
    pub fn turn(&mut self, until: Option<Instant>) -> io::Result<()> {
        self.flush()?;
        let now = Instant::now();
        let deadline = [self.driver.deadline(&*self.device), until]
            .into_iter()
            .flatten()
            .min();
        let timeout = if self.driver.has_backlog() {
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
        let readable = self
            .events
            .iter()
            .filter(|e| e.token() == DEVICE)
            .any(|e| e.is_readable() || e.is_read_closed() || e.is_error());
        self.driver
            .poll(&mut *self.device, readable, &Instant::now)?;
        self.set_writable_interest(self.driver.wants_writable())
    }

    /// Sends everything the stack has, keeping a refused datagram for when the device is writable.
    pub fn flush(&mut self) -> io::Result<()> {
        self.driver.flush(&mut *self.device, &Instant::now)?;
        self.set_writable_interest(self.driver.wants_writable())
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
        self.poll.registry().reregister(
            &mut SourceFd(&self.device.as_raw_fd()),
            DEVICE,
            interest,
        )?;
        self.writable_interest = wanted;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::net::Ipv4Addr;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixDatagram;
    use std::rc::Rc;

    use super::*;
    use crate::device::{Device, Received};
    use crate::stack::StackConfig;

    /// Always has another 64 KiB datagram, like a TUN with offloads behind a fast sender, and
    /// counts the reads. The socket only gives the poller something readable to wait on.
    struct Flood {
        reads: Rc<Cell<usize>>,
        readable: (UnixDatagram, UnixDatagram),
    }

    impl Device for Flood {
        fn recv(&mut self, _now: Instant, buf: &mut [u8]) -> io::Result<Received> {
            self.reads.set(self.reads.get() + 1);
            // From now on the descriptor is quiet: only the loop's own note that datagrams
            // remain can bring it back to read.
            let _ = self.readable.1.recv(&mut [0; 8]);
            buf[..MAX_DATAGRAM].fill(0);
            Ok(Received::unverified(MAX_DATAGRAM))
        }
        fn send(&mut self, _now: Instant, _datagram: &[u8]) -> io::Result<()> {
            Ok(())
        }
    }

    /// The loop waits on the socket.
    impl AsRawFd for Flood {
        fn as_raw_fd(&self) -> std::os::fd::RawFd {
            self.readable.1.as_raw_fd()
        }
    }

    #[test]
    fn a_turn_reads_a_bounded_number_of_bytes_and_the_next_does_not_sleep() {
        let (tx, rx) = UnixDatagram::pair().unwrap();
        rx.set_nonblocking(true).unwrap();
        tx.send(b"ready").unwrap();
        let reads = Rc::new(Cell::new(0));
        let device = Flood {
            reads: reads.clone(),
            readable: (tx, rx),
        };
        let config = StackConfig::new(Ipv4Addr::new(10, 0, 0, 2), 1500, [7; 16], 1);
        let mut lp =
            EventLoop::new(Box::new(device), |now| Stack::new(now, config), false).unwrap();
        lp.turn(Some(Instant::now() + Duration::from_secs(1)))
            .unwrap();
        let first = reads.get();
        assert_eq!(
            first,
            crate::driver::READ_BATCH_BYTES.div_ceil(MAX_DATAGRAM)
        );
        // Nothing is readable now; a turn that slept would wait for the deadline.
        let started = Instant::now();
        lp.turn(Some(started + Duration::from_secs(5))).unwrap();
        assert_eq!(reads.get(), 2 * first);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
