//! Two stacks joined by two links, each fed by the production [`Driver`], and the loop that
//! moves virtual time.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use tunstack::driver::Driver;
use tunstack::stack::{Stack, StackConfig};
use tunstack::tcp::TcpConfig;
use tunstack::trace::TraceSink;

use super::{
    Clock, Endpoint, Link, LinkConfig, LinkStats, Pattern, Port, CLIENT_ADDR, MTU, SERVER_ADDR,
    SERVER_PORT,
};

/// Bounds on one run, so a bug cannot hang the test.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most virtual time the run may take.
    pub virtual_time: Duration,
    /// Most loop steps (clock jumps, or repeats for a read backlog) the run may take.
    pub steps: u64,
}

/// A client stack and a server stack joined by two links, under one virtual clock.
pub struct Pair {
    /// The virtual clock.
    pub clock: Clock,
    /// The stack at [`CLIENT_ADDR`], with the event loop's policy around it.
    pub client: Driver,
    /// The stack at [`SERVER_ADDR`], with the event loop's policy around it.
    pub server: Driver,
    /// Client to server.
    pub up: Link,
    /// Server to client.
    pub down: Link,
    /// Loop steps taken.
    pub steps: u64,
}

/// What a failed run reports: where it stood when it went wrong.
#[derive(Debug)]
pub struct RunError {
    /// What went wrong.
    pub reason: String,
    /// Virtual time of the failure.
    pub at: Duration,
    /// Loop steps taken.
    pub steps: u64,
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (at virtual {:?}, step {})",
            self.reason, self.at, self.steps
        )
    }
}

impl Pair {
    /// Two stacks seeded from `seed` (ports, ISNs, impairments), with `tcp` on both, the server
    /// listening on [`SERVER_PORT`].
    pub fn new(seed: u64, up: LinkConfig, down: LinkConfig, tcp: &TcpConfig) -> Self {
        let clock = Clock::new();
        let make = |addr: Ipv4Addr, salt: u64| {
            let mut secret = [0u8; 16];
            Pattern::new(seed ^ salt).fill(0, &mut secret);
            let mut config = StackConfig::new(addr, MTU, secret, seed.wrapping_mul(31) ^ salt);
            config.tcp = TcpConfig {
                mss: config.tcp.mss,
                ..tcp.clone()
            };
            Stack::new(clock.now(), config)
        };
        let client = make(CLIENT_ADDR, 0xc1);
        let mut server = make(SERVER_ADDR, 0x5e);
        server.listen(SERVER_PORT).expect("fresh stack listens");
        Pair {
            clock,
            client: Driver::new(client, None),
            server: Driver::new(server, None),
            up: Link::new(up, seed ^ 0x00a1_1ce0),
            down: Link::new(down, seed ^ 0x0000_b0b0),
            steps: 0,
        }
    }

    /// Runs until both endpoints are done, or fails within `limits`.
    ///
    /// Each step is one turn of the event loop for each stack at the current virtual time
    /// (what arrived is read in batches, due timers fire, replies go out), then the
    /// applications act until idle, then the clock jumps to the earliest deadline.
    pub fn run(
        &mut self,
        client_app: &mut Endpoint,
        server_app: &mut Endpoint,
        limits: Limits,
    ) -> Result<(), RunError> {
        loop {
            self.steps += 1;
            let now = self.clock.now();
            if self.clock.elapsed() > limits.virtual_time {
                return Err(self.error(format!(
                    "virtual time limit {:?} exceeded (client moved {} bytes, server {})",
                    limits.virtual_time,
                    client_app.progress(),
                    server_app.progress()
                )));
            }
            if self.steps > limits.steps {
                return Err(self.error(format!(
                    "step limit {} exceeded (client moved {} bytes, server {})",
                    limits.steps,
                    client_app.progress(),
                    server_app.progress()
                )));
            }
            // No descriptor: the ports' deadlines tell the drivers what is due.
            let clock = || now;
            let polled = self
                .server
                .poll(
                    &mut server_port(&mut self.up, &mut self.down),
                    false,
                    &clock,
                )
                .and_then(|()| {
                    let mut port = client_port(&mut self.up, &mut self.down);
                    self.client.poll(&mut port, false, &clock)
                });
            polled.map_err(|e| self.error(format!("device: {e}")))?;
            // The applications act, and whatever they caused goes out, until they are idle.
            let mut rounds = 0;
            loop {
                let client_busy = client_app
                    .poll(self.client.stack_mut(), now)
                    .map_err(|e| self.error(format!("client: {e}")))?;
                let server_busy = server_app
                    .poll(self.server.stack_mut(), now)
                    .map_err(|e| self.error(format!("server: {e}")))?;
                let flushed = self
                    .client
                    .flush(&mut client_port(&mut self.up, &mut self.down), &clock)
                    .and_then(|()| {
                        let mut port = server_port(&mut self.up, &mut self.down);
                        self.server.flush(&mut port, &clock)
                    });
                flushed.map_err(|e| self.error(format!("device: {e}")))?;
                if !(client_busy || server_busy) {
                    break;
                }
                rounds += 1;
                if rounds > 1000 {
                    return Err(self.error("applications never settle".to_string()));
                }
            }
            // Both stacks flushed: their schedules (ready set, timer heap, reap list) must
            // agree with a scan of every connection.
            let mut audit = Ok(());
            for (name, driver) in [("client", &mut self.client), ("server", &mut self.server)] {
                if audit.is_ok() && !driver.wants_writable() {
                    audit = (driver.stack_mut().audit_schedule(now))
                        .map_err(|e| format!("{name} schedule: {e}"));
                }
            }
            audit.map_err(|e| self.error(e))?;
            if client_app.is_done() && server_app.is_done() {
                return Ok(());
            }
            let next = [
                self.client
                    .poll_timeout(&client_port(&mut self.up, &mut self.down), now),
                self.server
                    .poll_timeout(&server_port(&mut self.up, &mut self.down), now),
            ]
            .into_iter()
            .flatten()
            // A device that refused a write (`LinkConfig::refuse_every`) is writable again
            // at once: the next turn retries it.
            .chain((self.client.wants_writable() || self.server.wants_writable()).then_some(now))
            .min();
            match next {
                Some(at) => self.clock.advance_to(at),
                None => {
                    return Err(self.error(format!(
                        "stalled: nothing in flight and no timer armed (client moved {} bytes \
                         in state {:?}, server {} in state {:?})",
                        client_app.progress(),
                        client_app.state,
                        server_app.progress(),
                        server_app.state
                    )))
                }
            }
        }
    }

    fn error(&self, reason: String) -> RunError {
        RunError {
            reason,
            at: self.clock.elapsed(),
            steps: self.steps,
        }
    }

    /// `--trace` for the client: its stack's records (the pair must have been built with
    /// `TcpConfig::trace`) and both links' impairments go to `sink`, through the production
    /// driver, as a real run's do.
    pub fn trace_client(&mut self, sink: Box<dyn TraceSink>) {
        let mut port = client_port(&mut self.up, &mut self.down);
        self.client.set_trace(&mut port, sink);
    }

    /// Ends the client's trace (every connection still open gets its `close`) and flushes it.
    pub fn finish_client_trace(&mut self) -> std::io::Result<()> {
        let now = self.clock.now();
        let mut port = client_port(&mut self.up, &mut self.down);
        self.client.finish_trace(&mut port, now).map(drop)
    }

    /// Both links' counters added up.
    pub fn link_stats(&self) -> LinkStats {
        let mut total = self.up.stats();
        total.add(&self.down.stats());
        total
    }

    /// The client's stack, for inspection.
    pub fn client_stack(&self) -> &Stack {
        self.client.stack()
    }

    /// The server's stack, for inspection.
    pub fn server_stack(&self) -> &Stack {
        self.server.stack()
    }
}

/// The device the client sees: it sends up and reads what comes down.
fn client_port<'a>(up: &'a mut Link, down: &'a mut Link) -> Port<'a> {
    Port {
        out: up,
        into: down,
    }
}

/// The device the server sees: it sends down and reads what comes up.
fn server_port<'a>(up: &'a mut Link, down: &'a mut Link) -> Port<'a> {
    Port {
        out: down,
        into: up,
    }
}
