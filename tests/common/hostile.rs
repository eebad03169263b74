//! What the hostile-input suites share (tests/hostile.rs, tests/hostile_memory.rs,
//! tests/hostile_unpredictable.rs): their proptest configuration and a datagram builder that
//! takes any protocol, TTL and IP options.

use std::net::Ipv4Addr;

use proptest::test_runner::{Config, RngSeed};
use tunstack::testing::{ipv4_datagram, Ipv4Fields};

pub const TCP: u8 = 6;

/// Fixed seeds: a failure reproduces, and the tiny chance that a random guess is right (which
/// RFC 5961 accepts) cannot make the suite flaky.
pub fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(0x7475_6e73),
        failure_persistence: None,
        ..Config::default()
    }
}

/// An IPv4 datagram with a correct header checksum (DF set, identification 0), from the
/// library's test builder.
pub fn ipv4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    ttl: u8,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let fields = Ipv4Fields {
        ttl,
        options,
        ..Ipv4Fields::plain(src, dst, protocol)
    };
    ipv4_datagram(&fields, payload)
}
