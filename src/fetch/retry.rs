//! `--retry`: which failures are worth another try, and how long to wait before it.
//!
//! Pure functions of the error, the attempt number and the response head, so the schedule is
//! unit-tested without a clock: the caller adds the wait to its own `now`.

use std::time::{Duration, UNIX_EPOCH};

use super::FetchError;
use crate::http::{HttpError, ResponseHead};
use crate::tcp::ConnError;

/// The longest we wait before a retry, whatever the backoff or the server asks: curl's cap.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(600);
/// The first wait of the exponential backoff (then 2 s, 4 s, ...), as curl.
pub const FIRST_RETRY_WAIT: Duration = Duration::from_secs(1);

/// How many retries the user allows and how to space them.
#[derive(Debug, Clone, Copy, Default)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0: never retry).
    pub retries: u32,
    /// `--retry-delay`: a fixed wait instead of the exponential backoff.
    pub fixed_delay: Option<Duration>,
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (1 for the first retry): the server's
    /// `Retry-After` if it gave one, else the fixed delay, else 1 s doubled per retry; never
    /// more than [`MAX_RETRY_WAIT`].
    pub fn wait(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = || {
            let doublings = attempt.saturating_sub(1).min(20);
            FIRST_RETRY_WAIT.saturating_mul(1 << doublings)
        };
        retry_after
            .or(self.fixed_delay)
            .unwrap_or_else(backoff)
            .min(MAX_RETRY_WAIT)
    }
}

/// True for failures that may well go away by themselves, the ones curl retries: a refused,
/// reset or timed-out connection, and HTTP 408, 429, 500, 502, 503 and 504. Anything else
/// (404, a bad certificate, a malformed response, a full disk) would fail the same way again.
pub fn is_transient(error: &FetchError) -> bool {
    match error {
        FetchError::Refused(_)
        | FetchError::Reset(_)
        | FetchError::ConnectTimeout { .. }
        | FetchError::Idle(_) => true,
        FetchError::Connection { error, .. } => {
            matches!(
                error,
                ConnError::Refused | ConnError::Reset | ConnError::TimedOut
            )
        }
        FetchError::Http(HttpError::Status { status, .. }) => {
            matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
        }
        _ => false,
    }
}

/// The wait a response's `Retry-After` asks for (RFC 9110 §10.2.3): delay-seconds, or an
/// HTTP-date taken relative to the response's own `Date` (the server's clock, so skew does not
/// matter) or, without one, to `wall_now` (time since the Unix epoch, read by the caller). A
/// date in the past means no wait; an unparsable value is ignored.
pub fn retry_after(head: &ResponseHead, wall_now: Duration) -> Option<Duration> {
    let value = head.header_str("retry-after")?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let base = head
        .header_str("date")
        .and_then(|date| httpdate::parse_http_date(date.trim()).ok())
        .unwrap_or(UNIX_EPOCH + wall_now);
    Some(at.duration_since(base).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddrV4};

    use super::*;

    const ADDR: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 77, 1, 2), 80);

    fn status(status: u16) -> FetchError {
        FetchError::Http(HttpError::Status {
            status,
            reason: String::new(),
        })
    }

    fn head(fields: &[(&str, &str)]) -> ResponseHead {
        ResponseHead {
            status: 503,
            reason: "Service Unavailable".into(),
            headers: fields
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
            minor_version: 1,
        }
    }

    #[test]
    fn transient_failures_are_the_ones_curl_retries() {
        for status_code in [408, 429, 500, 502, 503, 504] {
            assert!(is_transient(&status(status_code)), "{status_code}");
        }
        for status_code in [400, 401, 403, 404, 410, 501, 505] {
            assert!(!is_transient(&status(status_code)), "{status_code}");
        }
        assert!(is_transient(&FetchError::Refused(ADDR)));
        assert!(is_transient(&FetchError::Reset(ADDR)));
        assert!(is_transient(&FetchError::Idle(Duration::from_secs(1))));
        assert!(is_transient(&FetchError::ConnectTimeout {
            addr: ADDR,
            after: Duration::from_secs(1)
        }));
        assert!(is_transient(&FetchError::Connection {
            addr: ADDR,
            error: ConnError::TimedOut
        }));
        assert!(!is_transient(&FetchError::Connection {
            addr: ADDR,
            error: ConnError::Unreachable(crate::ipv4::IcmpErrorKind::NetUnreachable)
        }));
        assert!(!is_transient(&FetchError::Http(HttpError::Truncated {
            received: 1,
            expected: Some(2)
        })));
        assert!(!is_transient(&FetchError::Resolve(
            super::super::ResolveError::NoIpv4("h".into())
        )));
    }

    #[test]
    fn backoff_doubles_from_one_second_up_to_ten_minutes() {
        let policy = RetryPolicy {
            retries: 50,
            fixed_delay: None,
        };
        let waits: Vec<u64> = (1..=12).map(|n| policy.wait(n, None).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]);
        assert_eq!(policy.wait(1000, None), MAX_RETRY_WAIT);
    }

    #[test]
    fn a_fixed_delay_replaces_the_backoff_and_retry_after_wins() {
        let policy = RetryPolicy {
            retries: 3,
            fixed_delay: Some(Duration::from_millis(250)),
        };
        assert_eq!(policy.wait(1, None), Duration::from_millis(250));
        assert_eq!(policy.wait(3, None), Duration::from_millis(250));
        let asked = Some(Duration::from_secs(3));
        assert_eq!(policy.wait(1, asked), Duration::from_secs(3));
        assert_eq!(
            policy.wait(1, Some(Duration::from_secs(86_400))),
            MAX_RETRY_WAIT
        );
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            retry_after(&head(&[("Retry-After", " 2 ")]), now),
            Some(Duration::from_secs(2))
        );
        // A date, relative to the response's Date.
        let dated = head(&[
            ("Date", "Sun, 06 Nov 1994 08:49:37 GMT"),
            ("Retry-After", "Sun, 06 Nov 1994 08:50:07 GMT"),
        ]);
        assert_eq!(
            retry_after(&dated, Duration::from_secs(1)),
            Some(Duration::from_secs(30))
        );
        // Without Date, relative to the wall clock given; obsolete date forms parse too.
        let undated = head(&[("Retry-After", "Sunday, 06-Nov-94 08:49:47 GMT")]);
        assert_eq!(retry_after(&undated, now), Some(Duration::from_secs(10)));
        // In the past: no wait. Garbage or negative numbers: ignored.
        let past = head(&[("Retry-After", "Sun, 06 Nov 1994 08:00:00 GMT")]);
        assert_eq!(retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(retry_after(&head(&[("Retry-After", "soon")]), now), None);
        assert_eq!(retry_after(&head(&[("Retry-After", "-5")]), now), None);
        assert_eq!(retry_after(&head(&[]), now), None);
    }
}
