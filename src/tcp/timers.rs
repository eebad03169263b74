//! A connection's timers as a small table: the next deadline is a `min`, and firing only the
//! expired ones makes a spurious wake-up harmless.

use std::time::Instant;

/// Every timer a connection may arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// Retransmission (RFC 6298), also used for SYN and FIN.
    Retransmit,
    /// Delayed ACK (RFC 9293 §3.8.6.3; at most 40 ms here, well under the 500 ms limit).
    DelayedAck,
    /// Zero-window probe (RFC 9293 §3.8.6.1).
    Persist,
    /// 2*MSL in TIME-WAIT.
    TimeWait,
    /// The user timeout: give up when nothing moves for this long (RFC 9293 §3.8.3, RFC 5482).
    User,
    /// Keep-alive (RFC 9293 §3.8.4): probe an idle connection's peer.
    KeepAlive,
    /// RACK's reordering timer (RFC 8985 §6.3): a segment sent before a delivered one is
    /// lost once its reordering window passes, even if no further ACK comes.
    RackReorder,
    /// TLP's probe timeout (RFC 8985 §7.2): send a probe before the RTO would fire.
    LossProbe,
}

const COUNT: usize = 8;

impl Timer {
    fn index(self) -> usize {
        match self {
            Timer::Retransmit => 0,
            Timer::DelayedAck => 1,
            Timer::Persist => 2,
            Timer::TimeWait => 3,
            Timer::User => 4,
            Timer::KeepAlive => 5,
            Timer::RackReorder => 6,
            Timer::LossProbe => 7,
        }
    }

    /// In the order they fire when due together: a probe capped at the RTO's deadline goes
    /// first, and re-arms the RTO (RFC 8985 §7.2/7.3: the probe replaces that expiry).
    const ALL: [Timer; COUNT] = [
        Timer::LossProbe,
        Timer::Retransmit,
        Timer::DelayedAck,
        Timer::Persist,
        Timer::TimeWait,
        Timer::User,
        Timer::KeepAlive,
        Timer::RackReorder,
    ];
}

/// Deadlines, one slot per timer.
#[derive(Debug, Clone, Default)]
pub struct TimerTable {
    deadlines: [Option<Instant>; COUNT],
}

impl TimerTable {
    /// Arms `timer` for `at`, replacing any earlier deadline.
    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer.index()] = Some(at);
    }

    /// Disarms `timer`.
    pub fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = None;
    }

    /// The deadline of `timer`, if armed.
    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer.index()]
    }

    /// True when `timer` is armed.
    pub fn is_set(&self, timer: Timer) -> bool {
        self.get(timer).is_some()
    }

    /// The earliest armed deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Disarms and returns the first timer whose deadline is at or before `now`.
    pub fn expire(&mut self, now: Instant) -> Option<Timer> {
        let timer = Timer::ALL
            .into_iter()
            .find(|t| self.get(*t).is_some_and(|at| at <= now))?;
        self.stop(timer);
        Some(timer)
    }

    /// Disarms everything.
    pub fn clear(&mut self) {
        self.deadlines = Default::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_expired_timers_fire() {
        let t0 = Instant::now();
        let mut table = TimerTable::default();
        table.set(Timer::Retransmit, t0 + Duration::from_millis(200));
        table.set(Timer::DelayedAck, t0 + Duration::from_millis(40));
        assert_eq!(table.next_deadline(), Some(t0 + Duration::from_millis(40)));
        assert_eq!(table.expire(t0 + Duration::from_millis(10)), None);
        assert_eq!(
            table.expire(t0 + Duration::from_millis(40)),
            Some(Timer::DelayedAck)
        );
        assert_eq!(table.expire(t0 + Duration::from_millis(40)), None);
        assert_eq!(table.next_deadline(), Some(t0 + Duration::from_millis(200)));
    }
}
