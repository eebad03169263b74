//! `--trace` in the deterministic simulator: the client's trace is written by the production
//! driver and writer, exactly as `tunstack fetch --trace` writes it, so a seeded scenario's
//! trace must be the same bytes every time, and a scenario with injected losses must show
//! exactly those drops (as `impair` events) and their repairs.

// Shared with tests/sim.rs; this file uses only part of what it re-exports.
#[allow(unused_imports)]
#[path = "sim/mod.rs"]
mod sim;

use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;
use std::time::Duration;

use serde_json::Value;
use sim::{Endpoint, LinkConfig, LinkStats, Pair, Pattern, Role, Side};
use tunstack::tcp::TcpConfig;
use tunstack::trace::TraceWriter;

/// A `Write` whose bytes the test can still read after the writer was handed to the driver.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Which way the bulk data flows, seen from the traced client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Download,
    Upload,
}

/// Runs one transfer of `bytes` over links losing `loss` of the datagrams each way, with the
/// client traced; returns the trace and what the links did.
fn traced_transfer(seed: u64, loss: f64, bytes: u64, direction: Direction) -> (Vec<u8>, LinkStats) {
    let link = LinkConfig {
        loss,
        ..LinkConfig::clean(0, Duration::from_millis(5), 4 << 20)
    };
    let tcp = TcpConfig {
        trace: true,
        ..TcpConfig::default()
    };
    let mut pair = Pair::new(seed, link.clone(), link, &tcp);
    let out = Shared::default();
    let start = pair.clock.now();
    pair.trace_client(Box::new(TraceWriter::new(out.clone(), start, "sim")));
    let pattern = Pattern::new(seed ^ bytes);
    let (client_role, server_role) = match direction {
        Direction::Download => (Role::Receiver, Role::Sender),
        Direction::Upload => (Role::Sender, Role::Receiver),
    };
    let mut client = Endpoint::new(Side::Client, client_role, bytes, pattern);
    let mut server = Endpoint::new(Side::Server, server_role, bytes, pattern);
    let limits = sim::Limits {
        virtual_time: Duration::from_secs(600),
        steps: 5_000_000,
    };
    pair.run(&mut client, &mut server, limits)
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    pair.finish_client_trace().expect("trace flushed");
    let link_stats = pair.link_stats();
    let bytes = out.0.borrow().clone();
    (bytes, link_stats)
}

fn lines(trace: &[u8]) -> Vec<Value> {
    std::str::from_utf8(trace)
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn field<'a>(v: &'a Value, key: &str) -> &'a Value {
    &v[key]
}

fn is(v: &Value, ev: &str) -> bool {
    v["ev"] == ev
}

#[test]
fn the_same_seed_gives_the_same_trace_byte_for_byte() {
    let (a, _) = traced_transfer(11, 0.02, 300_000, Direction::Download);
    let (b, _) = traced_transfer(11, 0.02, 300_000, Direction::Download);
    assert!(a.len() > 10_000, "a trace of {} bytes", a.len());
    assert!(a == b, "two runs of seed 11 wrote different traces");
    // Kept for a look (and for `tunstack plot`): target/tmp/trace-sim-seed11.jsonl.
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("trace-sim-seed11.jsonl");
    if std::fs::write(&path, &a).is_ok() {
        eprintln!("[trace] wrote {}", path.display());
    }
    let (c, _) = traced_transfer(12, 0.02, 300_000, Direction::Download);
    assert!(a != c, "another seed should make another trace");
    let events = lines(&a);
    assert_eq!(
        events[0],
        serde_json::json!({"t": 0.0, "ev": "trace", "version": 1, "tool": "tunstack", "cmd": "sim"})
    );
    for ev in [
        "open",
        "state",
        "seg",
        "rtt",
        "cc",
        "rwnd",
        "ack_decision",
        "close",
    ] {
        assert!(events.iter().any(|e| is(e, ev)), "no {ev} event");
    }
    // Times never go backwards.
    let times: Vec<f64> = events.iter().map(|e| e["t"].as_f64().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "time went backwards"
    );
}

/// Every datagram the links dropped on purpose is an `impair` drop, and nothing else is; each
/// dropped data segment is sent again later (by us: a `seg` out marked `rexmit`; by the peer:
/// a `seg` in covering it), and the `close` event's counters agree with the `seg` lines.
#[test]
fn injected_losses_are_exactly_the_impair_drops_and_each_is_repaired() {
    for (seed, direction) in [
        (3, Direction::Download),
        (4, Direction::Upload),
        (5, Direction::Download),
    ] {
        let (trace, links) = traced_transfer(seed, 0.03, 400_000, direction);
        let events = lines(&trace);
        assert_eq!(links.queue_drops, 0, "only injected loss in this scenario");
        let drops: Vec<&Value> = events
            .iter()
            .filter(|e| is(e, "impair") && e["action"] == "drop")
            .collect();
        assert!(links.lost > 5, "seed {seed}: only {} losses", links.lost);
        assert_eq!(
            drops.len() as u64,
            links.lost,
            "seed {seed}: the links lost {} datagrams, the trace shows {} drops",
            links.lost,
            drops.len()
        );
        assert!(
            events.iter().filter(|e| is(e, "impair")).count() == drops.len(),
            "only drops were injected"
        );
        for (i, e) in events.iter().enumerate() {
            if !(is(e, "impair") && e["action"] == "drop") {
                continue;
            }
            assert_eq!(e["conn"], 1, "seed {seed}: a drop of no connection: {e}");
            let len = e["len"].as_u64().unwrap();
            let flags = e["flags"].as_str().unwrap();
            if len == 0 && !flags.contains('F') && !flags.contains('S') {
                continue;
            }
            let seq = e["seq"].as_u64().unwrap();
            let dir = e["dir"].as_str().unwrap();
            // An injected drop of a segment we send follows its `seg` out with the same
            // numbers (docs/trace-format.md).
            if dir == "out" {
                let sent = events[..i]
                    .iter()
                    .rev()
                    .find(|s| is(s, "seg") && s["dir"] == "out");
                let sent = sent.expect("a seg out before the drop");
                assert_eq!(
                    (sent["seq"].as_u64(), sent["len"].as_u64()),
                    (Some(seq), Some(len))
                );
            }
            let repaired = events[i + 1..].iter().any(|s| {
                let s_seq = s["seq"].as_u64().unwrap_or(u64::MAX);
                let s_len = s["len"].as_u64().unwrap_or(0).max(1);
                is(s, "seg")
                    && s["dir"] == dir
                    && s_seq <= seq
                    && seq < s_seq + s_len
                    && (dir == "in" || !s["rexmit"].is_null())
            });
            assert!(repaired, "seed {seed}: the drop {e} was never repaired");
        }
        let rexmits = events
            .iter()
            .filter(|e| is(e, "seg") && e["dir"] == "out" && !e["rexmit"].is_null())
            .count() as u64;
        let close = events
            .iter()
            .rev()
            .find(|e| is(e, "close"))
            .expect("a close event");
        let stats = field(close, "stats");
        assert_eq!(
            stats["retrans_total"].as_u64(),
            Some(rexmits),
            "seed {seed}"
        );
        assert!(close["error"].is_null(), "{close}");
        if direction == Direction::Upload {
            assert!(rexmits > 0, "seed {seed}: an upload under loss retransmits");
            assert_eq!(stats["bytes_acked"].as_u64(), Some(400_000), "{stats}");
        } else {
            assert_eq!(stats["bytes_received"].as_u64(), Some(400_000), "{stats}");
        }
    }
}
