//! Round-trip time estimation and the retransmission timeout (RFC 6298).

use std::time::Duration;

/// Bounds on the retransmission timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtoBounds {
    /// RTO before any RTT sample (RFC 6298 §2.1: 1 s).
    pub initial: Duration,
    /// Lower bound. RFC 6298 §2.4 says 1 s; like Linux we default to 200 ms, which the RFC
    /// permits for implementations with fine-grained clocks and which matters on fast links.
    pub min: Duration,
    /// Upper bound (RFC 6298 §2.5 allows a maximum of at least 60 s).
    pub max: Duration,
}

impl Default for RtoBounds {
    fn default() -> Self {
        RtoBounds {
            initial: Duration::from_secs(1),
            min: Duration::from_millis(200),
            max: Duration::from_secs(60),
        }
    }
}

/// RFC 6298 §5.7: the RTO for data after a SYN was lost and the handshake gave no sample.
const SYN_LOSS_RTO: Duration = Duration::from_secs(3);

/// The RFC 6298 estimator: SRTT, RTTVAR and RTO, plus exponential backoff.
#[derive(Debug, Clone)]
pub struct RttEstimator {
    bounds: RtoBounds,
    srtt: Option<Duration>,
    rttvar: Duration,
    /// RTO computed from the samples, before backoff.
    base_rto: Duration,
    /// How many times the timer has expired without a new sample since (RFC 6298 §5.5).
    backoffs: u32,
    /// The first this many expiries leave the RTO as it was (a SYN's linear timeouts).
    linear_backoffs: u32,
    /// Clock granularity G of RFC 6298 §2.
    granularity: Duration,
    /// The latest measurement and how many were taken, for the segment log.
    last_sample: Option<Duration>,
    samples: u64,
    /// The smallest measurement: the path's round trip without queues, for sizing buffers
    /// to the bandwidth-delay product.
    min: Option<Duration>,
}

impl RttEstimator {
    /// The latest RTT measurement and the number taken so far (a log shows a sample when
    /// the count moves).
    pub fn last_sample(&self) -> (Option<Duration>, u64) {
        (self.last_sample, self.samples)
    }

    /// A fresh estimator: RTO = initial (RFC 6298 §2.1).
    pub fn new(bounds: RtoBounds) -> Self {
        RttEstimator {
            bounds,
            srtt: None,
            rttvar: Duration::ZERO,
            base_rto: bounds.initial,
            backoffs: 0,
            linear_backoffs: 0,
            granularity: Duration::from_millis(1),
            last_sample: None,
            samples: 0,
            min: None,
        }
    }

    /// Takes one RTT measurement. Callers apply Karn's rule (§3): no samples from retransmitted
    /// segments unless timestamps make them unambiguous.
    pub fn on_sample(&mut self, rtt: Duration) {
        self.last_sample = Some(rtt);
        self.samples += 1;
        self.min = Some(self.min.map_or(rtt, |min| min.min(rtt)));
        match self.srtt {
            // §2.2: first measurement.
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            // §2.3: RTTVAR first (with the old SRTT), then SRTT; beta = 1/4, alpha = 1/8.
            Some(srtt) => {
                let delta = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + delta) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
        let srtt = self.srtt.unwrap_or(rtt);
        // §2.2/2.3: RTO = SRTT + max(G, K*RTTVAR), K = 4; then §2.4/2.5 bounds.
        self.base_rto =
            (srtt + self.granularity.max(self.rttvar * 4)).clamp(self.bounds.min, self.bounds.max);
        // A new sample after backoff collapses it (§5.7 allows recomputing from the estimate).
        self.backoffs = 0;
    }

    /// The smallest RTT measured so far (timestamp samples count whole milliseconds, at
    /// least 1).
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min
    }

    /// The timer expired (§5.5): double the RTO, up to the maximum.
    pub fn on_timeout(&mut self) {
        self.backoffs = self.backoffs.saturating_add(1);
    }

    /// The first `n` expiries from now on do not double the RTO; later ones do (from the
    /// RTO they left). 0 ends this (as the handshake's completion does).
    pub fn set_linear_backoffs(&mut self, n: u32) {
        self.linear_backoffs = n;
    }

    /// The retransmission timeout to arm now, backoff included.
    pub fn rto(&self) -> Duration {
        let doublings = self.backoffs.saturating_sub(self.linear_backoffs);
        let factor = 1u32 << doublings.min(16);
        self.base_rto.saturating_mul(factor).min(self.bounds.max)
    }

    /// RTTVAR (RFC 6298 §2), for `--trace` and `--stats`.
    pub fn rttvar(&self) -> Duration {
        self.rttvar
    }

    /// Smoothed RTT, once there is a sample.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// How many consecutive timeouts have backed the timer off.
    /// RFC 6298 §5.7: the SYN timed out and no RTT sample came from the handshake, so data
    /// transmission starts with the RTO re-initialised to 3 seconds (no backoff).
    pub fn restart_after_syn_loss(&mut self) {
        self.backoffs = 0;
        self.base_rto = self
            .base_rto
            .max(SYN_LOSS_RTO)
            .clamp(self.bounds.min, self.bounds.max);
    }

    /// RFC 4015 §3 steps (7)-(8), after a timeout shown spurious: the path's RTT grew past
    /// the estimate, so take the sample that showed it (the original's, from its echoed
    /// timestamp) as SRTT >= sample, RTTVAR >= sample / 2, and drop the backoff, which
    /// answered a loss that did not happen. Without a sample only the backoff goes.
    pub fn adapt_after_spurious_timeout(&mut self, sample: Option<Duration>) {
        self.backoffs = 0;
        let Some(rtt) = sample else {
            return;
        };
        let srtt = self.srtt.map_or(rtt, |s| s.max(rtt));
        self.srtt = Some(srtt);
        self.rttvar = self.rttvar.max(rtt / 2);
        self.base_rto =
            (srtt + self.granularity.max(self.rttvar * 4)).clamp(self.bounds.min, self.bounds.max);
    }

    /// Timeouts since the last sample (for diagnostics and tests).
    pub fn backoffs(&self) -> u32 {
        self.backoffs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn initial_rto_is_one_second() {
        assert_eq!(RttEstimator::new(RtoBounds::default()).rto(), ms(1000));
    }

    #[test]
    fn first_sample_sets_srtt_and_rttvar() {
        let mut est = RttEstimator::new(RtoBounds::default());
        est.on_sample(ms(100));
        assert_eq!(est.srtt(), Some(ms(100)));
        // 100 + 4 * 50
        assert_eq!(est.rto(), ms(300));
    }

    #[test]
    fn later_samples_smooth() {
        let mut est = RttEstimator::new(RtoBounds::default());
        est.on_sample(ms(100));
        est.on_sample(ms(200));
        // rttvar = 3/4*50 + 1/4*100 = 62.5; srtt = 7/8*100 + 1/8*200 = 112.5
        assert_eq!(est.srtt(), Some(Duration::from_micros(112_500)));
        assert_eq!(est.rto(), Duration::from_micros(112_500 + 250_000));
    }

    #[test]
    fn rto_is_bounded_below_and_above() {
        let mut est = RttEstimator::new(RtoBounds::default());
        est.on_sample(ms(1));
        assert_eq!(est.rto(), ms(200));
        est.on_sample(Duration::from_secs(100));
        assert_eq!(est.rto(), Duration::from_secs(60));
    }

    #[test]
    fn backoff_doubles_and_a_sample_resets_it() {
        let mut est = RttEstimator::new(RtoBounds::default());
        est.on_timeout();
        assert_eq!(est.rto(), ms(2000));
        est.on_timeout();
        assert_eq!(est.rto(), ms(4000));
        for _ in 0..40 {
            est.on_timeout();
        }
        assert_eq!(est.rto(), Duration::from_secs(60));
        est.on_sample(ms(100));
        assert_eq!(est.rto(), ms(300));
    }

    #[test]
    fn a_spurious_timeout_raises_the_estimate_to_its_sample_and_ends_the_backoff() {
        let mut est = RttEstimator::new(RtoBounds::default());
        est.on_sample(ms(100));
        est.on_timeout();
        assert_eq!(est.rto(), ms(600));
        est.adapt_after_spurious_timeout(Some(ms(500)));
        // SRTT 500, RTTVAR 250: 500 + 4 * 250.
        assert_eq!(est.srtt(), Some(ms(500)));
        assert_eq!(est.rto(), ms(1500));
        // A smaller sample lowers nothing; no sample only ends the backoff.
        est.on_timeout();
        est.adapt_after_spurious_timeout(Some(ms(10)));
        assert_eq!(est.rto(), ms(1500));
        est.on_timeout();
        est.adapt_after_spurious_timeout(None);
        assert_eq!(est.rto(), ms(1500));
    }

    #[test]
    fn linear_backoffs_hold_the_rto_then_doubling_resumes() {
        let mut est = RttEstimator::new(RtoBounds::default());
        est.set_linear_backoffs(2);
        let mut seen = Vec::new();
        for _ in 0..4 {
            est.on_timeout();
            seen.push(est.rto());
        }
        assert_eq!(seen, [ms(1000), ms(1000), ms(2000), ms(4000)]);
        // Ending them (the handshake completed) makes every expiry count again.
        est.set_linear_backoffs(0);
        assert_eq!(est.rto(), ms(16_000));
    }
}
