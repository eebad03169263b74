//! Trust under hostile input: ISNs and ephemeral ports are unpredictable across connections
//! (RFC 6528, RFC 6056), and ISNs depend on the host's secret.
//!
//! Everything runs in memory under virtual time: fresh client `Stack`s whose SYNs are read
//! (tests/common/scripted.rs). Shared with the other hostile suites: tests/common/hostile.rs.

use std::collections::HashSet;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

mod common;

use proptest::prelude::*;

use common::hostile::config;
use common::scripted::*;
use tunstack::stack::Stack;
use tunstack::wire::Control;

/// The SYNs of `count` connects from a fresh stack: (local port, ISN) each.
fn syns(secret_seed: u64, rng_seed: u64, count: usize) -> Vec<(u16, u32)> {
    let now = Instant::now();
    let mut config = stack_config(CLIENT, rng_seed, 4096);
    config.secret = {
        let mut secret = [0u8; 16];
        secret[..8].copy_from_slice(&secret_seed.to_be_bytes());
        secret[8..].copy_from_slice(&secret_seed.rotate_left(17).to_le_bytes());
        secret
    };
    let mut stack = Stack::new(now, config);
    let mut buf = vec![0u8; MTU];
    let mut out = Vec::new();
    for i in 0..count {
        let at = now + Duration::from_millis(i as u64);
        stack
            .connect(at, SocketAddrV4::new(SERVER, SERVER_PORT))
            .expect("a free port");
        let len = stack.poll_transmit(at, &mut buf).expect("a SYN");
        let (_, _, syn) = tcp_of(&buf[..len]).expect("TCP");
        assert_eq!(syn.control, Control::Syn);
        out.push((syn.src_port, syn.seq.0));
        while stack.poll_transmit(at, &mut buf).is_some() {}
    }
    out
}

/// Counts per bucket of `values` spread over `buckets` equal buckets of `range` values.
fn histogram(values: impl Iterator<Item = u64>, base: u64, range: u64, buckets: u64) -> Vec<usize> {
    let mut counts = vec![0usize; buckets as usize];
    for value in values {
        counts[((value - base) * buckets / range) as usize] += 1;
    }
    counts
}

proptest! {
    #![proptest_config(config(4))]

    /// 1000 connects to the same server: local ports are distinct, from the whole dynamic range,
    /// and in no sequence pattern; ISNs differ by no constant step and fill the number space.
    #[test]
    fn isns_and_ports_are_unpredictable(secret_seed in any::<u64>(), rng_seed in any::<u64>()) {
        let syns = syns(secret_seed, rng_seed, 1000);
        let ports: Vec<u16> = syns.iter().map(|s| s.0).collect();
        let isns: Vec<u32> = syns.iter().map(|s| s.1).collect();

        let distinct: HashSet<u16> = ports.iter().copied().collect();
        prop_assert_eq!(distinct.len(), ports.len(), "a local port repeated");
        prop_assert!(ports.iter().all(|&p| p >= 49152));
        let port_steps: HashSet<i32> = ports.windows(2).map(|w| i32::from(w[1]) - i32::from(w[0])).collect();
        prop_assert!(port_steps.len() >= 950, "only {} distinct port steps", port_steps.len());
        let rising = ports.windows(2).filter(|w| w[1] > w[0]).count();
        prop_assert!((350..=650).contains(&rising), "{} of 999 steps go up", rising);
        for (bucket, count) in histogram(ports.iter().map(|&p| u64::from(p)), 49152, 16384, 16).into_iter().enumerate() {
            prop_assert!((25..=110).contains(&count), "port bucket {} holds {}", bucket, count);
        }

        let isn_steps: HashSet<u32> = isns.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
        prop_assert!(isn_steps.len() >= 990, "only {} distinct ISN steps", isn_steps.len());
        for (bucket, count) in histogram(isns.iter().map(|&i| u64::from(i)), 0, 1 << 32, 16).into_iter().enumerate() {
            prop_assert!((25..=110).contains(&count), "ISN bucket {} holds {}", bucket, count);
        }
        for bit in 0..32 {
            let set = isns.iter().filter(|&&i| i & (1 << bit) != 0).count();
            prop_assert!((400..=600).contains(&set), "ISN bit {} set in {} of 1000", bit, set);
        }
    }

    /// Two hosts with different secrets that happen to pick the same ports at the same times
    /// still choose unrelated ISNs (RFC 6528: the secret key is what an attacker lacks).
    #[test]
    fn isns_depend_on_the_secret(rng_seed in any::<u64>(), a in any::<u64>(), b in any::<u64>()) {
        prop_assume!(a != b);
        let first = syns(a, rng_seed, 100);
        let second = syns(b, rng_seed, 100);
        // Connections on the same 4-tuple at the same time: only the secret tells them apart.
        let steps: Vec<u32> = first
            .iter()
            .zip(&second)
            .filter(|(x, y)| x.0 == y.0)
            .map(|(x, y)| y.1.wrapping_sub(x.1))
            .collect();
        let distinct: HashSet<u32> = steps.iter().copied().collect();
        prop_assert!(!steps.contains(&0), "two secrets gave the same ISN");
        prop_assert!(
            steps.len() < 2 || distinct.len() * 10 >= steps.len() * 9,
            "ISNs under two secrets differ by a constant"
        );
    }
}
