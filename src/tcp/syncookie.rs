//! SYN cookies (RFC 4987 §3.6): answering a SYN without keeping state, when a listener's
//! backlog is full, so a flood of spoofed SYNs cannot lock real clients out.
//!
//! The SYN-ACK's ISS is the cookie:
//!
//! ```text
//!  31      27 26  24 23                                  0
//! | minute  | mss  |  24-bit keyed hash                     |
//! ```
//!
//! `minute` counts minutes since the stack started (mod 32), `mss` indexes [`MSS_TABLE`] (the
//! largest entry not above the peer's MSS), and the hash (SipHash-2-4 under a secret) covers
//! the 4-tuple, the peer's ISN, the full minute count, the MSS index and the option bits. A
//! completing ACK acknowledges ISS + 1, so the cookie comes back and is checked against the
//! current and the two previous minutes: valid for two to three minutes, unforgeable without
//! the secret except by a 2^-24 guess per ACK.
//!
//! Window scale and SACK do not fit in the sequence number; as Linux does, they ride in the
//! low [`TS_OPTION_BITS`] bits of our SYN-ACK's TSval when the peer offered timestamps, and the
//! ACK's TSecr returns them. Without timestamps a cookie connection has neither.

use std::hash::Hasher;
use std::net::SocketAddrV4;
use std::time::Duration;

use siphasher::sip::SipHasher24;

use crate::wire::SeqNum;

/// The MSS values a cookie can carry, ascending (8 entries: 3 bits).
pub const MSS_TABLE: [u16; 8] = [536, 1200, 1300, 1400, 1440, 1460, 4312, 8960];
/// Low TSval bits that carry the window scale (4 bits, 15 = none) and SACK (1 bit).
pub const TS_OPTION_BITS: u32 = 5;
const TS_OPTION_MASK: u32 = (1 << TS_OPTION_BITS) - 1;
/// How many minutes back a cookie is still accepted (RFC 4987: short-lived).
const MINUTES_VALID: u32 = 2;

/// What a cookie remembers of the SYN it answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieOptions {
    /// The MSS from [`MSS_TABLE`] to assume for the peer.
    pub mss: u16,
    /// The peer's window scale, if it offered one (and timestamps to carry it).
    pub window_scale: Option<u8>,
    /// The peer offered SACK (and timestamps to carry it).
    pub sack: bool,
}

/// Makes and checks cookies under one secret.
#[derive(Debug, Clone)]
pub struct SynCookies {
    key: [u8; 16],
}

impl SynCookies {
    /// `secret` must be random and private (it is the stack's secret, re-keyed so the
    /// cookies and the ISNs of RFC 6528 are independent functions).
    pub fn new(secret: [u8; 16]) -> Self {
        let mut key = secret;
        for (byte, salt) in key.iter_mut().zip(b"tunstack-cookies") {
            *byte ^= salt;
        }
        SynCookies { key }
    }

    /// The ISS answering a SYN with sequence number `peer_isn` on `local`/`remote`, offering
    /// `options`, at `elapsed` since the stack started; and the option bits to put in the low
    /// bits of the SYN-ACK's TSval (meaningful only if timestamps are used).
    pub fn make(
        &self,
        elapsed: Duration,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        peer_isn: SeqNum,
        options: CookieOptions,
        timestamps: bool,
    ) -> (SeqNum, u32) {
        let minute = minutes(elapsed);
        let mss_index = MSS_TABLE
            .iter()
            .rposition(|&m| m <= options.mss)
            .unwrap_or(0) as u32;
        let ts_bits = if timestamps {
            encode_ts_bits(options)
        } else {
            encode_ts_bits(CookieOptions {
                window_scale: None,
                sack: false,
                ..options
            })
        };
        let hash = self.hash(local, remote, peer_isn, minute, mss_index, ts_bits);
        let cookie = ((minute & 31) << 27) | (mss_index << 24) | hash;
        (SeqNum(cookie), ts_bits)
    }

    /// Checks the cookie an ACK returns (`ack - 1`) for the SYN `ack_seq - 1`; `ts_echo` is
    /// the ACK's TSecr if it carries timestamps. `None` if it is not a cookie we made in the
    /// last few minutes.
    pub fn check(
        &self,
        elapsed: Duration,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        peer_isn: SeqNum,
        cookie: SeqNum,
        ts_echo: Option<u32>,
    ) -> Option<CookieOptions> {
        let cookie = cookie.0;
        let now = minutes(elapsed);
        let mss_index = (cookie >> 24) & 7;
        let ts_bits = ts_echo.map_or(
            encode_ts_bits(CookieOptions {
                mss: 0,
                window_scale: None,
                sack: false,
            }),
            |echo| echo & TS_OPTION_MASK,
        );
        let minute = (0..=MINUTES_VALID)
            .filter_map(|back| now.checked_sub(back))
            .find(|m| m & 31 == cookie >> 27)?;
        let hash = self.hash(local, remote, peer_isn, minute, mss_index, ts_bits);
        if hash != cookie & 0x00ff_ffff {
            return None;
        }
        let scale = ts_bits >> 1;
        Some(CookieOptions {
            mss: MSS_TABLE[mss_index as usize],
            window_scale: (scale <= 14).then_some(scale as u8),
            sack: ts_bits & 1 == 1,
        })
    }

    fn hash(
        &self,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        peer_isn: SeqNum,
        minute: u32,
        mss_index: u32,
        ts_bits: u32,
    ) -> u32 {
        let mut hasher = SipHasher24::new_with_key(&self.key);
        hasher.write(&local.ip().octets());
        hasher.write(&local.port().to_be_bytes());
        hasher.write(&remote.ip().octets());
        hasher.write(&remote.port().to_be_bytes());
        hasher.write(&peer_isn.0.to_be_bytes());
        hasher.write(&minute.to_be_bytes());
        hasher.write(&[mss_index as u8, ts_bits as u8]);
        hasher.finish() as u32 & 0x00ff_ffff
    }
}

fn minutes(elapsed: Duration) -> u32 {
    (elapsed.as_secs() / 60) as u32
}

fn encode_ts_bits(options: CookieOptions) -> u32 {
    let scale = options.window_scale.map_or(15, |s| u32::from(s.min(14)));
    (scale << 1) | u32::from(options.sack)
}

/// Puts the option bits into the low bits of a TSval.
pub fn tsval_with_bits(tsval: u32, bits: u32) -> u32 {
    (tsval & !TS_OPTION_MASK) | (bits & TS_OPTION_MASK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddrV4 {
        s.parse().unwrap()
    }

    const OPTS: CookieOptions = CookieOptions {
        mss: 1460,
        window_scale: Some(7),
        sack: true,
    };

    #[test]
    fn a_cookie_comes_back_with_its_options_for_two_minutes() {
        let c = SynCookies::new([3; 16]);
        let (l, r) = (addr("10.77.1.2:80"), addr("10.77.0.2:40000"));
        let isn = SeqNum(123_456);
        let t = Duration::from_secs(600);
        let (cookie, bits) = c.make(t, l, r, isn, OPTS, true);
        let echo = tsval_with_bits(0xdead_beef, bits);
        for later in [0, 59, 119, 179] {
            let at = t + Duration::from_secs(later);
            assert_eq!(
                c.check(at, l, r, isn, cookie, Some(echo)),
                Some(OPTS),
                "{later}"
            );
        }
        assert_eq!(
            c.check(t + Duration::from_secs(181), l, r, isn, cookie, Some(echo)),
            None
        );
    }

    #[test]
    fn without_timestamps_only_the_mss_survives() {
        let c = SynCookies::new([3; 16]);
        let (l, r) = (addr("10.77.1.2:80"), addr("10.77.0.2:40000"));
        let isn = SeqNum(9);
        let peer = CookieOptions { mss: 1400, ..OPTS };
        let (cookie, _) = c.make(Duration::ZERO, l, r, isn, peer, false);
        assert_eq!(
            c.check(Duration::ZERO, l, r, isn, cookie, None),
            Some(CookieOptions {
                mss: 1400,
                window_scale: None,
                sack: false
            })
        );
        let odd = CookieOptions { mss: 1000, ..OPTS };
        let (cookie, _) = c.make(Duration::ZERO, l, r, isn, odd, false);
        assert_eq!(
            c.check(Duration::ZERO, l, r, isn, cookie, None)
                .unwrap()
                .mss,
            536
        );
    }

    #[test]
    fn forged_or_misdirected_cookies_fail() {
        let c = SynCookies::new([3; 16]);
        let (l, r) = (addr("10.77.1.2:80"), addr("10.77.0.2:40000"));
        let isn = SeqNum(77);
        let (cookie, bits) = c.make(Duration::ZERO, l, r, isn, OPTS, true);
        let echo = Some(bits);
        let at = Duration::ZERO;
        assert!(c.check(at, l, r, isn, cookie, echo).is_some());
        assert!(
            c.check(at, l, r, SeqNum(78), cookie, echo).is_none(),
            "other SYN"
        );
        assert!(c
            .check(at, l, addr("10.77.0.2:40001"), isn, cookie, echo)
            .is_none());
        assert!(c.check(at, l, r, isn, cookie + 1, echo).is_none());
        assert!(
            c.check(at, l, r, isn, cookie, Some(bits ^ 1)).is_none(),
            "options forged"
        );
        assert!(SynCookies::new([4; 16])
            .check(at, l, r, isn, cookie, echo)
            .is_none());
    }
}
