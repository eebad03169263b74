//! Initial sequence numbers (RFC 6528): ISN = M + F(4-tuple, secret).

use std::hash::Hasher;
use std::net::SocketAddrV4;
use std::time::Duration;

use siphasher::sip::SipHasher24;

use crate::wire::SeqNum;

/// Makes ISNs that an off-path attacker cannot predict, yet that grow with time for one
/// 4-tuple so a new incarnation's segments are not confused with an old one's.
#[derive(Debug, Clone)]
pub struct IsnGenerator {
    key: [u8; 16],
}

impl IsnGenerator {
    /// `secret` is the stack's random key (RFC 6528 §3: at least 128 bits).
    pub fn new(secret: [u8; 16]) -> Self {
        IsnGenerator { key: secret }
    }

    /// The ISN for a connection from `local` to `remote`, `elapsed` after the stack started.
    pub fn isn(&self, elapsed: Duration, local: SocketAddrV4, remote: SocketAddrV4) -> SeqNum {
        // M: a timer ticking every 4 microseconds (RFC 6528 §3, as RFC 9293 §3.4.1 describes).
        let ticks = (elapsed.as_micros() / 4) as u32;
        SeqNum(ticks.wrapping_add(self.keyed_hash(local, remote)))
    }

    /// F of RFC 6528: a keyed pseudorandom function of the 4-tuple.
    pub fn keyed_hash(&self, local: SocketAddrV4, remote: SocketAddrV4) -> u32 {
        let mut hasher = SipHasher24::new_with_key(&self.key);
        hasher.write(&local.ip().octets());
        hasher.write(&local.port().to_be_bytes());
        hasher.write(&remote.ip().octets());
        hasher.write(&remote.port().to_be_bytes());
        hasher.finish() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddrV4 {
        s.parse().unwrap()
    }

    #[test]
    fn same_tuple_advances_with_time() {
        let gen = IsnGenerator::new([7; 16]);
        let (l, r) = (addr("10.77.0.2:40000"), addr("10.77.1.2:80"));
        let a = gen.isn(Duration::ZERO, l, r);
        let b = gen.isn(Duration::from_millis(1), l, r);
        assert_eq!(b - a, 250);
    }

    #[test]
    fn tuples_and_secrets_change_the_isn() {
        let (l, r) = (addr("10.77.0.2:40000"), addr("10.77.1.2:80"));
        let gen = IsnGenerator::new([7; 16]);
        let other_port = gen.isn(Duration::ZERO, addr("10.77.0.2:40001"), r);
        assert_ne!(gen.isn(Duration::ZERO, l, r), other_port);
        let other_secret = IsnGenerator::new([8; 16]).isn(Duration::ZERO, l, r);
        assert_ne!(gen.isn(Duration::ZERO, l, r), other_secret);
    }
}
