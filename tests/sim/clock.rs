//! Virtual time for the simulator.

use std::time::{Duration, Instant};

/// Virtual time: a fixed base `Instant` and an offset that only the simulation loop moves.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Instant,
    offset: Duration,
}

impl Clock {
    /// A clock at virtual time zero. The base is the only real clock reading ever taken.
    pub fn new() -> Self {
        Clock {
            base: Instant::now(),
            offset: Duration::ZERO,
        }
    }

    /// The current virtual instant.
    pub fn now(&self) -> Instant {
        self.base + self.offset
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.offset
    }

    /// Virtual time of `at` since the start.
    pub fn since_start(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.base)
    }

    /// Jumps forward to `at`; never moves backwards.
    pub fn advance_to(&mut self, at: Instant) {
        let offset = at.saturating_duration_since(self.base);
        if offset > self.offset {
            self.offset = offset;
        }
    }
}
