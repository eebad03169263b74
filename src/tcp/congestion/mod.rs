//! Congestion control behind a small trait: NewReno (RFC 5681, RFC 6582) and CUBIC (RFC 9438).
//!
//! The connection decides *when* loss happened (three duplicate ACKs, SACK evidence, a timeout)
//! and owns the recovery bookkeeping; a controller only sizes the congestion window.

mod cubic;

use std::time::{Duration, Instant};

pub use cubic::Cubic;

/// Which controller a connection starts with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Algorithm {
    /// RFC 5681/6582: halve on loss, one segment per RTT. The core's default, because its
    /// arithmetic is what the segment-level tests spell out.
    #[default]
    NewReno,
    /// RFC 9438: a cubic function of the time since the last loss, so a long fat path refills
    /// in seconds, not minutes; what Linux uses, and what `fetch` and `serve` run.
    Cubic,
}

impl Algorithm {
    /// A fresh controller for a connection whose segments carry `mss` bytes.
    pub fn build(self, mss: usize) -> Box<dyn CongestionControl> {
        match self {
            Algorithm::NewReno => Box::new(NewReno::new(mss)),
            Algorithm::Cubic => Box::new(Cubic::new(mss)),
        }
    }
}

/// Sizes the congestion window from the events the connection reports.
pub trait CongestionControl: std::fmt::Debug + Send {
    /// Bytes the sender may have in flight.
    fn window(&self) -> usize;
    /// New data was cumulatively acknowledged outside loss recovery, at `now`, with the
    /// smoothed RTT if there is one (time-based controllers need both).
    fn on_ack(&mut self, bytes_acked: usize, mss: usize, now: Instant, srtt: Option<Duration>);
    /// Loss was detected by duplicate ACKs or SACK; `flight` is what was outstanding.
    fn on_enter_recovery(&mut self, flight: usize, mss: usize);
    /// The recovery point was acknowledged: recovery is over.
    fn on_exit_recovery(&mut self, flight: usize, mss: usize);
    /// The retransmission timer expired.
    fn on_timeout(&mut self, flight: usize, mss: usize);
    /// Slow-start threshold, for statistics and tests.
    fn ssthresh(&self) -> usize;
    /// Sending resumes after an idle period longer than the RTO (RFC 5681 §4.1): the window
    /// measured before no longer describes the path, so restart from at most the initial
    /// window (ssthresh stays, so slow start climbs back fast).
    fn on_idle_restart(&mut self, mss: usize);
    /// The state a reduction is about to replace, saved by the connection before each
    /// congestion event so that one later shown spurious (RFC 2883 D-SACK, RFC 3522
    /// timestamps, RFC 5682 F-RTO) can be undone.
    fn save(&self) -> Prior;
    /// Undoes a reduction shown spurious (RFC 4015 §3, Linux's `tcp_undo_cwnd_reduction`):
    /// cwnd and ssthresh go back to at least what `prior` saved (never below what they grew
    /// to since), and a controller with more state restores it (RFC 9438 §4.9).
    fn restore(&mut self, prior: &Prior);
}

/// What a controller saved before a reduction ([`CongestionControl::save`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prior {
    /// cwnd before the reduction, in bytes.
    pub cwnd: usize,
    /// ssthresh before the reduction, in bytes.
    pub ssthresh: usize,
    /// CUBIC's own variables (RFC 9438 §4.9), `None` for other controllers.
    cubic: Option<cubic::Saved>,
}

impl Prior {
    /// A prior of just a window and a threshold (NewReno's whole state).
    pub fn new(cwnd: usize, ssthresh: usize) -> Self {
        Prior {
            cwnd,
            ssthresh,
            cubic: None,
        }
    }
}

/// NewReno: slow start with appropriate byte counting (RFC 3465, L = 2), congestion avoidance
/// of about one MSS per RTT, halving on loss, one MSS after a timeout.
#[derive(Debug, Clone)]
pub struct NewReno {
    cwnd: usize,
    ssthresh: usize,
    /// Bytes acknowledged in congestion avoidance since cwnd last grew.
    bytes_acked: usize,
}

impl NewReno {
    /// Starts with the initial window of RFC 5681 §3.1 for this MSS.
    pub fn new(mss: usize) -> Self {
        NewReno {
            cwnd: initial_window(mss),
            ssthresh: usize::MAX,
            bytes_acked: 0,
        }
    }
}

/// RFC 5681 §3.1: IW = 2, 3 or 4 segments depending on the MSS.
pub fn initial_window(mss: usize) -> usize {
    if mss > 2190 {
        2 * mss
    } else if mss > 1095 {
        3 * mss
    } else {
        4 * mss
    }
}

impl CongestionControl for NewReno {
    fn window(&self) -> usize {
        self.cwnd
    }

    fn on_ack(&mut self, bytes_acked: usize, mss: usize, _: Instant, _: Option<Duration>) {
        if self.cwnd < self.ssthresh {
            // Slow start, RFC 5681 §3.1 with RFC 3465's limit of 2*SMSS per ACK.
            self.cwnd += bytes_acked.min(2 * mss);
        } else {
            // Congestion avoidance by byte counting: one SMSS per cwnd acknowledged.
            self.bytes_acked += bytes_acked;
            if self.bytes_acked >= self.cwnd {
                self.bytes_acked -= self.cwnd;
                self.cwnd += mss;
            }
        }
    }

    fn on_enter_recovery(&mut self, flight: usize, mss: usize) {
        // RFC 5681 §3.2 equation (4); RFC 6675 sets cwnd = ssthresh at the start of recovery.
        self.ssthresh = (flight / 2).max(2 * mss);
        self.cwnd = self.ssthresh;
        self.bytes_acked = 0;
    }

    fn on_exit_recovery(&mut self, flight: usize, mss: usize) {
        // RFC 6582 §3.2 step 3, option 1: min(ssthresh, max(FlightSize, SMSS) + SMSS).
        self.cwnd = self.ssthresh.min(flight.max(mss) + mss);
    }

    fn on_timeout(&mut self, flight: usize, mss: usize) {
        // RFC 5681 §3.1 equation (4) and the loss window of one segment.
        self.ssthresh = (flight / 2).max(2 * mss);
        self.cwnd = mss;
        self.bytes_acked = 0;
    }

    fn ssthresh(&self) -> usize {
        self.ssthresh
    }

    fn on_idle_restart(&mut self, mss: usize) {
        self.cwnd = self.cwnd.min(initial_window(mss));
        self.bytes_acked = 0;
    }

    fn save(&self) -> Prior {
        Prior::new(self.cwnd, self.ssthresh)
    }

    fn restore(&mut self, prior: &Prior) {
        self.cwnd = self.cwnd.max(prior.cwnd);
        self.ssthresh = self.ssthresh.max(prior.ssthresh);
        self.bytes_acked = 0;
    }
}

/// No congestion control at all: a fixed, huge window. For tests that isolate other machinery.
#[derive(Debug, Clone, Default)]
pub struct Unlimited;

impl CongestionControl for Unlimited {
    fn window(&self) -> usize {
        usize::MAX / 2
    }
    fn on_ack(&mut self, _: usize, _: usize, _: Instant, _: Option<Duration>) {}
    fn on_enter_recovery(&mut self, _: usize, _: usize) {}
    fn on_exit_recovery(&mut self, _: usize, _: usize) {}
    fn on_timeout(&mut self, _: usize, _: usize) {}
    fn ssthresh(&self) -> usize {
        usize::MAX
    }
    fn on_idle_restart(&mut self, _: usize) {}
    fn save(&self) -> Prior {
        Prior::new(self.window(), self.ssthresh())
    }
    fn restore(&mut self, _: &Prior) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1000;

    fn now() -> Instant {
        Instant::now()
    }

    #[test]
    fn initial_window_follows_rfc5681() {
        assert_eq!(initial_window(1460), 4380);
        assert_eq!(initial_window(536), 2144);
        assert_eq!(initial_window(8960), 17920);
    }

    #[test]
    fn slow_start_then_avoidance() {
        let mut cc = NewReno::new(MSS);
        let start = cc.window();
        cc.on_ack(10 * MSS, MSS, now(), None);
        assert_eq!(cc.window(), start + 2 * MSS, "ABC limits growth per ACK");
        cc.on_enter_recovery(20 * MSS, MSS);
        assert_eq!(cc.window(), 10 * MSS);
        assert_eq!(cc.ssthresh(), 10 * MSS);
        cc.on_exit_recovery(12 * MSS, MSS);
        assert_eq!(cc.window(), 10 * MSS);
        // In avoidance it takes a whole window of ACKs to grow by one MSS.
        for _ in 0..9 {
            cc.on_ack(MSS, MSS, now(), None);
        }
        assert_eq!(cc.window(), 10 * MSS);
        cc.on_ack(MSS, MSS, now(), None);
        assert_eq!(cc.window(), 11 * MSS);
    }

    #[test]
    fn timeout_collapses_to_one_segment() {
        let mut cc = NewReno::new(MSS);
        cc.on_timeout(8 * MSS, MSS);
        assert_eq!(cc.window(), MSS);
        assert_eq!(cc.ssthresh(), 4 * MSS);
        cc.on_timeout(MSS, MSS);
        assert_eq!(cc.ssthresh(), 2 * MSS, "ssthresh never below two segments");
    }

    #[test]
    fn restore_undoes_a_reduction_but_never_shrinks() {
        let mut cc = NewReno::new(MSS);
        cc.cwnd = 20 * MSS;
        cc.ssthresh = 30 * MSS;
        let prior = cc.save();
        cc.on_enter_recovery(20 * MSS, MSS);
        assert_eq!(cc.window(), 10 * MSS);
        cc.restore(&prior);
        assert_eq!((cc.window(), cc.ssthresh()), (20 * MSS, 30 * MSS));
        // A window that grew past the prior since stays.
        cc.cwnd = 25 * MSS;
        cc.restore(&prior);
        assert_eq!(cc.window(), 25 * MSS);
    }

    #[test]
    fn exit_recovery_deflates_to_flight_plus_one_segment() {
        let mut cc = NewReno::new(MSS);
        cc.on_enter_recovery(40 * MSS, MSS);
        cc.on_exit_recovery(2 * MSS, MSS);
        assert_eq!(cc.window(), 3 * MSS);
        // Nothing left in flight still leaves two segments, not one.
        cc.on_enter_recovery(40 * MSS, MSS);
        cc.on_exit_recovery(0, MSS);
        assert_eq!(cc.window(), 2 * MSS);
    }
}
