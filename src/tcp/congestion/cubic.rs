//! CUBIC (RFC 9438): after a loss, the window follows a cubic function of the time since
//! that loss, flat around the window where the loss happened (W_max) and steep away from it,
//! so it refills a long fat path quickly and probes carefully near the last known limit; with
//! a Reno-friendly floor (RFC 9438 §4.3) so it never grows slower than NewReno would.
//!
//! Units: windows in bytes, time in seconds (`f64`, as the RFC's formulas are written).

use std::time::{Duration, Instant};

use super::{initial_window, CongestionControl, Prior};

/// RFC 9438 §4.1: C, in segments per second cubed.
const C: f64 = 0.4;
/// RFC 9438 §4.6: the multiplicative decrease factor.
const BETA: f64 = 0.7;
/// RFC 9438 §4.3: the Reno-friendly additive increase that matches NewReno's average rate
/// with this beta: 3 (1 - beta) / (1 + beta).
const ALPHA: f64 = 3.0 * (1.0 - BETA) / (1.0 + BETA);

/// CUBIC's variables besides cwnd and ssthresh that a reduction changes, saved with them
/// (RFC 9438 §4.9: prior W_max, K, epoch start and W_est) so a spurious one can be undone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Saved {
    w_max: f64,
    w_last_max: f64,
    epoch: Option<Instant>,
    k: f64,
    w_est: f64,
}

/// The CUBIC controller of one connection.
#[derive(Debug, Clone)]
pub struct Cubic {
    cwnd: usize,
    ssthresh: usize,
    /// The window just before the last reduction (W_max), in bytes.
    w_max: f64,
    /// The previous W_max, for fast convergence (RFC 9438 §4.7).
    w_last_max: f64,
    /// When the current congestion-avoidance epoch began (the first ACK after a reduction).
    epoch: Option<Instant>,
    /// K (RFC 9438 §4.2): seconds from the epoch until the cubic reaches W_max again.
    k: f64,
    /// The Reno-friendly estimate W_est, in bytes.
    w_est: f64,
    /// Bytes acknowledged but not yet turned into window growth (kept below one MSS of growth).
    credit: f64,
}

impl Cubic {
    /// Starts in slow start with RFC 5681's initial window.
    pub fn new(mss: usize) -> Self {
        Cubic {
            cwnd: initial_window(mss),
            ssthresh: usize::MAX,
            w_max: 0.0,
            w_last_max: 0.0,
            epoch: None,
            k: 0.0,
            w_est: 0.0,
            credit: 0.0,
        }
    }

    /// RFC 9438 §4.6-4.7 on a congestion event: remember W_max (less, with fast convergence,
    /// when the window is still below the previous one: another flow took a share), then
    /// multiply the window by beta.
    fn reduce(&mut self, flight: usize, mss: usize) {
        let cwnd = self.cwnd as f64;
        self.w_max = if cwnd < self.w_last_max {
            cwnd * (1.0 + BETA) / 2.0
        } else {
            cwnd
        };
        self.w_last_max = cwnd;
        // Based on what was in flight, not on a window the application never filled.
        self.ssthresh = ((flight.min(self.cwnd) as f64 * BETA) as usize).max(2 * mss);
        self.epoch = None;
        self.credit = 0.0;
    }

    /// W_cubic(t) of RFC 9438 §4.2, in bytes.
    fn w_cubic(&self, t: f64, mss: usize) -> f64 {
        let segments = C * (t - self.k).powi(3);
        self.w_max + segments * mss as f64
    }
}

impl CongestionControl for Cubic {
    fn window(&self) -> usize {
        self.cwnd
    }

    fn on_ack(&mut self, bytes_acked: usize, mss: usize, now: Instant, srtt: Option<Duration>) {
        if self.cwnd < self.ssthresh {
            // Slow start as in NewReno (RFC 9438 §4.10), with RFC 3465's L = 2.
            self.cwnd += bytes_acked.min(2 * mss);
            return;
        }
        let mss_f = mss as f64;
        let epoch = *self.epoch.get_or_insert_with(|| {
            // RFC 9438 §4.2: K from W_max and the window we restart from.
            self.k = if self.w_max > self.cwnd as f64 {
                ((self.w_max - self.cwnd as f64) / mss_f / C).cbrt()
            } else {
                0.0
            };
            self.w_est = self.cwnd as f64;
            now
        });
        let rtt = srtt.unwrap_or(Duration::from_millis(100)).as_secs_f64();
        let t = now.saturating_duration_since(epoch).as_secs_f64();
        let cwnd = self.cwnd as f64;
        // §4.3: the Reno-friendly estimate grows by alpha segments per window acknowledged.
        self.w_est += ALPHA * mss_f * bytes_acked as f64 / cwnd;
        // §4.4: aim for W_cubic one RTT ahead, between cwnd and 1.5 cwnd.
        let target = self.w_cubic(t + rtt, mss).clamp(cwnd, 1.5 * cwnd);
        let growth = if self.w_cubic(t, mss) < self.w_est {
            // §4.3: the Reno-friendly region.
            (self.w_est - cwnd).max(0.0)
        } else {
            // §4.4-4.5: (target - cwnd) / cwnd segments per segment acknowledged.
            (target - cwnd) / cwnd * bytes_acked as f64
        };
        self.credit += growth;
        if self.credit >= 1.0 {
            let whole = self.credit.floor();
            self.cwnd += whole as usize;
            self.credit -= whole;
        }
    }

    fn on_enter_recovery(&mut self, flight: usize, mss: usize) {
        self.reduce(flight, mss);
        self.cwnd = self.ssthresh;
    }

    fn on_exit_recovery(&mut self, flight: usize, mss: usize) {
        // As NewReno (RFC 6582 §3.2 step 3): no burst beyond what is in flight plus one.
        self.cwnd = self.ssthresh.min(flight.max(mss) + mss);
    }

    fn on_timeout(&mut self, flight: usize, mss: usize) {
        // RFC 9438 §4.8: a timeout is a congestion event too; then one segment.
        self.reduce(flight, mss);
        self.cwnd = mss;
    }

    fn ssthresh(&self) -> usize {
        self.ssthresh
    }

    fn on_idle_restart(&mut self, mss: usize) {
        self.cwnd = self.cwnd.min(initial_window(mss));
        // RFC 9438 §5.8: the cubic's clock must not count the idle time; start a new epoch.
        self.epoch = None;
        self.credit = 0.0;
    }

    fn save(&self) -> Prior {
        Prior {
            cubic: Some(Saved {
                w_max: self.w_max,
                w_last_max: self.w_last_max,
                epoch: self.epoch,
                k: self.k,
                w_est: self.w_est,
            }),
            ..Prior::new(self.cwnd, self.ssthresh)
        }
    }

    fn restore(&mut self, prior: &Prior) {
        // RFC 9438 §4.9: back to the state before the spurious event, so the cubic curve
        // continues where it was instead of starting a new epoch around a false W_max.
        // A window that grew past the prior since the reduction is kept (as Linux does).
        if let Some(saved) = prior.cubic {
            self.w_max = saved.w_max;
            self.w_last_max = saved.w_last_max;
            self.epoch = saved.epoch;
            self.k = saved.k;
            self.w_est = saved.w_est;
        }
        if prior.cwnd > self.cwnd {
            self.cwnd = prior.cwnd;
        } else {
            // The epoch restarts from the window kept (K from W_max and it).
            self.epoch = None;
        }
        self.ssthresh = self.ssthresh.max(prior.ssthresh);
        self.credit = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1000;
    const RTT: Duration = Duration::from_millis(100);

    /// Feeds one window of ACKs (one per segment) per RTT for `rtts` round trips.
    fn run(cc: &mut Cubic, start: Instant, rtts: u32) -> Instant {
        let mut now = start;
        for _ in 0..rtts {
            let segments = cc.window() / MSS;
            for _ in 0..segments {
                cc.on_ack(MSS, MSS, now, Some(RTT));
            }
            now += RTT;
        }
        now
    }

    #[test]
    fn loss_reduces_by_beta_and_remembers_w_max() {
        let mut cc = Cubic::new(MSS);
        cc.cwnd = 100 * MSS;
        cc.on_enter_recovery(100 * MSS, MSS);
        assert_eq!(cc.window(), 70 * MSS);
        assert_eq!(cc.ssthresh(), 70 * MSS);
        assert_eq!(cc.w_max, (100 * MSS) as f64);
        cc.on_timeout(70 * MSS, MSS);
        assert_eq!(cc.window(), MSS);
        // Fast convergence: the second loss came below the first W_max.
        assert_eq!(cc.w_max, 70.0 * MSS as f64 * (1.0 + BETA) / 2.0);
    }

    #[test]
    fn window_climbs_back_to_w_max_in_about_k_seconds_then_plateaus() {
        let mut cc = Cubic::new(MSS);
        cc.cwnd = 100 * MSS;
        cc.on_enter_recovery(100 * MSS, MSS);
        cc.on_exit_recovery(100 * MSS, MSS);
        // K = cbrt(30 / 0.4) = 4.2 s.
        let start = Instant::now();
        let at_k = run(&mut cc, start, 40);
        let near_k = cc.window();
        assert!(
            (95 * MSS..=108 * MSS).contains(&near_k),
            "about W_max after K: {near_k}"
        );
        // Concave then convex: slow near W_max, faster well beyond it.
        run(&mut cc, at_k, 10);
        let plateau_growth = cc.window() - near_k;
        let before = cc.window();
        run(&mut cc, at_k + 10 * RTT, 30);
        assert!(cc.window() - before > 3 * plateau_growth, "convex region");
    }

    #[test]
    fn never_slower_than_reno_on_a_short_path() {
        // At 1 ms RTT, the cubic is far slower than Reno's one segment per RTT: the
        // Reno-friendly estimate drives growth.
        let mut cc = Cubic::new(MSS);
        cc.cwnd = 20 * MSS;
        cc.on_enter_recovery(20 * MSS, MSS);
        let start = Instant::now();
        let mut now = start;
        let low = cc.window();
        for _ in 0..100 {
            for _ in 0..cc.window() / MSS {
                cc.on_ack(MSS, MSS, now, Some(Duration::from_millis(1)));
            }
            now += Duration::from_millis(1);
        }
        // Reno-friendly: about alpha = 0.53 segments per RTT, so ~50 segments in 100 RTTs.
        let grown = (cc.window() - low) / MSS;
        assert!((35..=70).contains(&grown), "{grown}");
    }

    #[test]
    fn restore_brings_back_w_max_and_the_epoch() {
        let mut cc = Cubic::new(MSS);
        cc.cwnd = 100 * MSS;
        cc.on_enter_recovery(100 * MSS, MSS);
        cc.on_exit_recovery(100 * MSS, MSS);
        let start = Instant::now();
        run(&mut cc, start, 5);
        let before = (cc.window(), cc.ssthresh(), cc.w_max, cc.epoch, cc.k);
        let prior = cc.save();
        cc.on_enter_recovery(cc.window(), MSS);
        assert!(cc.window() < before.0);
        cc.restore(&prior);
        assert_eq!(
            (cc.window(), cc.ssthresh(), cc.w_max, cc.epoch, cc.k),
            before,
            "the spurious event left no trace"
        );
        // A timeout (one segment) is undone the same way.
        cc.on_timeout(cc.window(), MSS);
        assert_eq!(cc.window(), MSS);
        cc.restore(&prior);
        assert_eq!(cc.window(), before.0);
    }

    #[test]
    fn slow_start_until_ssthresh() {
        let mut cc = Cubic::new(MSS);
        let start = cc.window();
        cc.on_ack(MSS, MSS, Instant::now(), None);
        assert_eq!(cc.window(), start + MSS);
    }
}
