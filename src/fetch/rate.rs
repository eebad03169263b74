//! `--limit-rate`: a token bucket that decides how many received bytes a download may take
//! from its connection now, and when it may take more.
//!
//! The bytes it does not allow stay in the TCP receive buffer, so the window we advertise
//! shrinks to what the application takes and the *server* slows down: nothing sleeps, and
//! nothing arrives faster than it is read. Sans-IO: the caller passes `now` and wakes the event
//! loop at [`TokenBucket::deadline`].

use std::time::{Duration, Instant};

/// Wake-ups per second while the bucket is the bottleneck: each wake-up takes about
/// 1/`WAKEUPS_PER_SECOND` of a second's worth of bytes, which is also the step by which the
/// advertised window opens. At 20 a second, 512 KiB/s came as 26 KB bursts every 50 ms; at 100
/// the server sends a few segments every 10 ms, and a wake-up costs microseconds.
const WAKEUPS_PER_SECOND: u64 = 100;
/// The smallest amount worth waking up for, so slow rates do not wake for a few bytes.
const MIN_QUANTUM: u64 = 1024;

/// Bytes per second, refilled continuously, holding at most `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u64,
    burst: u64,
    /// Bytes that may be taken as of `last` (refilled lazily by `available`).
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A bucket of `rate` bytes per second, starting full with a burst of one wake-up's worth.
    pub fn new(rate: u64, now: Instant) -> Self {
        let burst = quantum(rate);
        TokenBucket {
            rate,
            burst,
            tokens: burst as f64,
            last: now,
        }
    }

    /// The bytes that may be taken now.
    pub fn available(&mut self, now: Instant) -> usize {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate as f64).min(self.burst as f64);
        self.last = self.last.max(now);
        self.tokens.max(0.0) as usize
    }

    /// Records that `bytes` were taken.
    pub fn take(&mut self, bytes: usize) {
        self.tokens -= bytes as f64;
    }

    /// When the bucket next holds a wake-up's worth, if it does not now; the caller sleeps
    /// until then (or until something else happens).
    pub fn deadline(&self) -> Option<Instant> {
        let wanted = quantum(self.rate) as f64;
        if self.tokens >= wanted {
            return None;
        }
        let missing = wanted - self.tokens;
        Some(self.last + Duration::from_secs_f64(missing / self.rate as f64))
    }
}

/// Bytes one wake-up takes at `rate`.
fn quantum(rate: u64) -> u64 {
    (rate / WAKEUPS_PER_SECOND).max(MIN_QUANTUM)
}

/// The TCP receive buffer (and so the largest window) for downloads limited to `rate`: a
/// quarter of a second's worth, at least 4 segments so the window can open by whole segments,
/// at most `default` (what an unlimited download uses). A larger buffer would let the server
/// send a burst far above the rate before the window closes.
pub fn receive_buffer_for(rate: u64, mss: usize, default: usize) -> usize {
    let quarter = usize::try_from(rate / 4).unwrap_or(usize::MAX);
    quarter.max(4 * mss).min(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_the_rate_over_time_and_no_more() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(100_000, start);
        let mut taken = 0;
        // Take everything allowed every 10 ms for 10 s of virtual time.
        for step in 0..=1000 {
            let now = start + Duration::from_millis(10 * step);
            let n = bucket.available(now);
            bucket.take(n);
            taken += n;
        }
        // 10 s at 100 kB/s, plus the initial burst of one quantum (1000 bytes, at least 1024).
        assert!((1_000_000..=1_001_025).contains(&taken), "{taken}");
    }

    #[test]
    fn an_empty_bucket_names_when_a_quantum_is_back() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2_000_000, start);
        assert_eq!(bucket.deadline(), None);
        let n = bucket.available(start);
        assert_eq!(n, 20_000);
        bucket.take(n);
        assert_eq!(bucket.deadline(), Some(start + Duration::from_millis(10)));
        // Idle time does not build up more than one burst.
        let later = start + Duration::from_secs(60);
        assert_eq!(bucket.available(later), 20_000);
    }

    #[test]
    fn slow_rates_wake_for_at_least_a_kilobyte() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2048, start);
        let n = bucket.available(start);
        assert_eq!(n, 1024);
        bucket.take(n);
        assert_eq!(bucket.deadline(), Some(start + Duration::from_millis(500)));
    }

    #[test]
    fn the_receive_buffer_is_a_quarter_second_within_bounds() {
        assert_eq!(receive_buffer_for(512 << 10, 1460, 1 << 20), 128 << 10);
        assert_eq!(receive_buffer_for(1000, 1460, 1 << 20), 4 * 1460);
        assert_eq!(receive_buffer_for(1 << 30, 1460, 1 << 20), 1 << 20);
    }
}
