//! Whole-stack scenarios over the deterministic network simulator in `tests/sim/`.
//!
//! Every scenario moves a pattern stream through two real [`tunstack::stack::Stack`]s joined by
//! simulated links, in both directions, over many seeds, and checks every byte, a clean close
//! on both sides, and that every corrupted datagram was caught by a checksum. Each scenario
//! prints a summary line (virtual completion time, retransmissions, RTOs) to stderr, so it
//! shows even without `--nocapture`.

// The simulator's directory shares this test's name (so `cargo test --test sim` keeps working),
// which makes a plain `mod sim;` ambiguous between this file and `sim/mod.rs`.
#[path = "sim/mod.rs"]
mod sim;
// Scenarios kept in files of their own (they use this file's harness).
#[path = "sim_cases/undo.rs"]
mod undo;

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sim::{Endpoint, LinkConfig, LinkStats, Pair, Pattern, Role, Side};
use tunstack::ipv4::DropReason;
use tunstack::tcp::{ConnStats, State, TcpConfig};

const MB: u64 = 1_000_000;

/// Which way the bulk data flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Server sends, client receives (like a download).
    Download,
    /// Client sends, server receives.
    Upload,
}

/// The outcome of one transfer.
#[derive(Debug, Clone)]
struct Transfer {
    /// Virtual time from the connect call to the receiver seeing end of stream.
    completion: Duration,
    sender: ConnStats,
    receiver: ConnStats,
    link: LinkStats,
    /// Datagrams the stacks discarded for a bad checksum or a malformed header.
    caught: u64,
}

/// The stacks' configuration: the defaults, except that giving up takes longer. At 20% loss in
/// both directions a retransmission and its ACK both survive only 64% of the time, so about one
/// 10 MB run in a hundred meets a stall that backs the timer off past the default 5-minute
/// user timeout (seen in soak runs: eight ACKs in a row lost). That abort is correct
/// behaviour, but not what these scenarios measure.
fn sim_tcp_config() -> TcpConfig {
    TcpConfig {
        user_timeout: Duration::from_secs(1800),
        data_retries: 20,
        ..TcpConfig::default()
    }
}

/// Runs one transfer of `bytes` and checks everything a clean run must satisfy.
fn transfer(
    seed: u64,
    link: &LinkConfig,
    tcp: &TcpConfig,
    bytes: u64,
    direction: Direction,
    capture: bool,
) -> Result<Transfer, String> {
    transfer_sharing(seed, link, tcp, bytes, direction, capture, false)
}

/// [`transfer`], the sender queueing every other 64 KiB chunk as shared bytes when `share`.
fn transfer_sharing(
    seed: u64,
    link: &LinkConfig,
    tcp: &TcpConfig,
    bytes: u64,
    direction: Direction,
    capture: bool,
    share: bool,
) -> Result<Transfer, String> {
    let mut pair = Pair::new(seed, link.clone(), link.clone(), tcp);
    if capture {
        pair.up.start_capture();
        pair.down.start_capture();
    }
    let pattern = Pattern::new(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ bytes);
    let (client_role, server_role) = match direction {
        Direction::Download => (Role::Receiver, Role::Sender),
        Direction::Upload => (Role::Sender, Role::Receiver),
    };
    let mut client = Endpoint::new(Side::Client, client_role, bytes, pattern);
    let mut server = Endpoint::new(Side::Server, server_role, bytes, pattern);
    client.share = share;
    server.share = share;
    // Generous: the slowest scenario (20% loss both ways) needs a few minutes at most.
    let limits = sim::Limits {
        virtual_time: Duration::from_secs(3600),
        steps: 5_000_000 + bytes / 100,
    };
    // A panic inside the stack (a debug assertion, say) becomes an ordinary failure, so the
    // seed gets reported and the capture written.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pair.run(&mut client, &mut server, limits)
    }))
    .unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        Err(sim::RunError {
            reason: format!("the stack panicked: {message}"),
            at: pair.clock.elapsed(),
            steps: pair.steps,
        })
    });
    if capture {
        let base = pcap_base(seed, direction);
        match sim::write_pcaps(&base, &pair.clock, [&pair.up, &pair.down]) {
            Ok([sent, delivered]) => {
                eprintln!("[sim] wrote {} and {}", sent.display(), delivered.display())
            }
            Err(err) => eprintln!("[sim] could not write {}: {err}", base.display()),
        }
    }
    outcome.map_err(|e| e.to_string())?;

    let (sender, receiver) = match direction {
        Direction::Download => (&server, &client),
        Direction::Upload => (&client, &server),
    };
    for (name, end) in [("client", &client), ("server", &server)] {
        let state = end.state.ok_or(format!("{name} never had a connection"))?;
        if !matches!(state, State::Closed | State::TimeWait) {
            return Err(format!("{name} ended in {state:?}"));
        }
    }
    for (name, stack) in [
        ("client", pair.client_stack()),
        ("server", pair.server_stack()),
    ] {
        if stack.connection_count() != 0 {
            return Err(format!(
                "{name} stack still holds {} connections after both closed",
                stack.connection_count()
            ));
        }
    }
    let eof = receiver.eof_at.ok_or("receiver never saw end of stream")?;
    let caught: u64 = [pair.client_stack(), pair.server_stack()]
        .iter()
        .map(|s| {
            let ip = s.ip_stats();
            DropReason::ALL.iter().map(|r| ip.dropped(*r)).sum::<u64>()
                + s.stats().tcp_checksum_failures
                + s.stats().tcp_malformed
        })
        .sum();
    let link = pair.link_stats();
    if caught != link.corrupted {
        return Err(format!(
            "{} datagrams were corrupted but the stacks discarded {caught}",
            link.corrupted
        ));
    }
    Ok(Transfer {
        completion: pair.clock.since_start(eof),
        sender: sender.stats.clone().ok_or("sender has no statistics")?,
        receiver: receiver.stats.clone().ok_or("receiver has no statistics")?,
        link,
        caught,
    })
}

fn pcap_base(seed: u64, direction: Direction) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    dir.join(format!("sim-{direction:?}-seed{seed}").to_lowercase())
}

/// Runs `transfer`, and on failure runs the same seed again with capture on (the simulation is
/// deterministic, so it fails the same way) and panics with the reason and the pcaps' paths.
fn transfer_or_panic(
    scenario: &str,
    seed: u64,
    link: &LinkConfig,
    tcp: &TcpConfig,
    bytes: u64,
    direction: Direction,
) -> Transfer {
    match transfer(seed, link, tcp, bytes, direction, false) {
        Ok(t) => t,
        Err(reason) => {
            let _ = transfer(seed, link, tcp, bytes, direction, true);
            panic!(
                "scenario {scenario:?}, {direction:?}, seed {seed}, {bytes} bytes: {reason}; \
                 pcaps in {}-{{sent,delivered}}.pcap",
                pcap_base(seed, direction).display()
            );
        }
    }
}

/// Prints a summary where it shows even without `--nocapture`: the test harness captures
/// the print macros and the `stderr()` handle, but not a separate handle on the terminal's
/// stderr.
fn report(text: &str) {
    let tty = std::fs::OpenOptions::new().append(true).open("/dev/stderr");
    match tty {
        Ok(mut err) => {
            let _ = writeln!(err, "{text}");
        }
        Err(_) => eprintln!("{text}"),
    }
}

/// Figures over many runs of one scenario and direction.
#[derive(Debug, Default)]
struct Summary {
    times: Vec<Duration>,
    fast: u64,
    timeout: u64,
    rtos: u64,
    recoveries: u64,
    /// Reductions undone as spurious (D-SACK, timestamps, F-RTO).
    undos: u64,
    dup_acks: u64,
    /// Segments the receiving end sent (almost all pure ACKs: it sends only its SYN or FIN
    /// besides), and how many of them were duplicate ACKs.
    receiver_out: u64,
    receiver_dup_acks: u64,
    link: LinkStats,
    caught: u64,
    bytes: u64,
}

impl Summary {
    fn add(&mut self, t: &Transfer, bytes: u64) {
        self.times.push(t.completion);
        // Retransmissions of both ends: the receiver retransmits only its SYN or FIN.
        for s in [&t.sender, &t.receiver] {
            self.fast += s.retransmits_fast;
            self.timeout += s.retransmits_timeout;
            self.rtos += s.timeouts;
            self.recoveries += s.recoveries;
            self.undos += s.undos_dsack + s.undos_timestamp + s.undos_frto;
            self.dup_acks += s.dup_acks_in;
        }
        self.receiver_out += t.receiver.segments_out;
        self.receiver_dup_acks += t.receiver.dup_acks_out;
        self.link.offered += t.link.offered;
        self.link.lost += t.link.lost;
        self.link.queue_drops += t.link.queue_drops;
        self.link.duplicated += t.link.duplicated;
        self.link.reordered += t.link.reordered;
        self.link.corrupted += t.link.corrupted;
        self.caught += t.caught;
        self.bytes += bytes;
    }

    fn median(&self) -> Duration {
        let mut sorted = self.times.clone();
        sorted.sort();
        sorted.get(sorted.len() / 2).copied().unwrap_or_default()
    }

    fn line(&self, scenario: &str, direction: Direction, bytes: u64) -> String {
        let runs = self.times.len().max(1) as f64;
        let min = self.times.iter().min().copied().unwrap_or_default();
        let max = self.times.iter().max().copied().unwrap_or_default();
        let median = self.median();
        let goodput = bytes as f64 * 8.0 / median.as_secs_f64().max(1e-9) / 1e6;
        format!(
            "[sim] {scenario:<18} {direction:<8?} {runs} seeds x {mb} MB: virtual time median \
             {median:.3?} (min {min:.3?}, max {max:.3?}, {goodput:.1} Mbit/s at median); \
             retransmits fast {fast} / timeout {timeout} ({fpr:.1} / {tpr:.1} per run); \
             RTOs {rtos}; recoveries {rec} (undone {undos}); dup ACKs {dup}; receiver sent {rout} \
             ({rdup} dup ACKs); link: {offered} datagrams, \
             lost {lost}, queue drops {qd}, duplicated {dupd}, reordered {reo}, \
             corrupted {cor} (all {caught} caught)",
            runs = self.times.len(),
            mb = bytes as f64 / MB as f64,
            fast = self.fast,
            timeout = self.timeout,
            fpr = self.fast as f64 / runs,
            tpr = self.timeout as f64 / runs,
            rtos = self.rtos,
            rec = self.recoveries,
            undos = self.undos,
            dup = self.dup_acks,
            rout = self.receiver_out,
            rdup = self.receiver_dup_acks,
            offered = self.link.offered,
            lost = self.link.lost,
            qd = self.link.queue_drops,
            dupd = self.link.duplicated,
            reo = self.link.reordered,
            cor = self.link.corrupted,
            caught = self.caught,
        )
    }
}

/// The fast link of the seed sweeps: 100 Mbit/s, 10 ms RTT, and a queue deeper than the
/// sender's buffer can fill, so only the scenario's impairments drop anything.
fn fast_link() -> LinkConfig {
    LinkConfig::clean(100_000_000, Duration::from_millis(5), 512 << 10)
}

/// Shifts every seed by `SIM_SEED_OFFSET` (default 0), to soak the scenarios on fresh seeds
/// without changing the code; the default run is always the same.
fn seed_offset() -> u64 {
    std::env::var("SIM_SEED_OFFSET")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// How many seeds and bytes a scenario sweeps in each direction: big transfers, and as many
/// small ones (which add handshakes and closes for little time).
struct Sweep {
    big_seeds: u64,
    big_bytes: u64,
    many_seeds: u64,
    many_bytes: u64,
}

const SWEEP: Sweep = Sweep {
    big_seeds: 50,
    big_bytes: 10 * MB,
    many_seeds: 50,
    many_bytes: MB,
};

/// For scenarios without random impairments, where seeds change only ports and ISNs.
const FEW_SEEDS: Sweep = Sweep {
    big_seeds: 5,
    big_bytes: 10 * MB,
    many_seeds: 5,
    many_bytes: MB,
};

/// Runs a scenario in both directions over the sweep, printing a summary per direction and
/// size. Returns the summaries of the big transfers, download then upload.
fn scenario(name: &str, link: LinkConfig) -> [Summary; 2] {
    sweep(name, link, &SWEEP)
}

/// [`scenario`] over a chosen sweep.
fn sweep(name: &str, link: LinkConfig, sweep: &Sweep) -> [Summary; 2] {
    let started = Instant::now();
    let mut lines = Vec::new();
    let mut big = [Summary::default(), Summary::default()];
    for (seeds, bytes, first_seed) in [
        (sweep.big_seeds, sweep.big_bytes, 1000),
        (sweep.many_seeds, sweep.many_bytes, 1),
    ] {
        for (i, direction) in [Direction::Download, Direction::Upload]
            .into_iter()
            .enumerate()
        {
            let mut summary = Summary::default();
            let first_seed = first_seed + seed_offset();
            for seed in first_seed..first_seed + seeds {
                let t = transfer_or_panic(name, seed, &link, &sim_tcp_config(), bytes, direction);
                summary.add(&t, bytes);
            }
            lines.push(summary.line(name, direction, bytes));
            if bytes == sweep.big_bytes {
                big[i] = summary;
            }
        }
    }
    let real = started.elapsed();
    report(&format!(
        "{}\n[sim] {name}: real time {real:.2?}",
        lines.join("\n")
    ));
    big
}

#[test]
fn loss_0() {
    // The queue holds the whole receive window (1 MiB) on top of the path's 125 KB: the send
    // buffer grows while it limits the sender (`send_buffer_max`), so only the window bounds
    // the flight, and a slow start that overflows a shorter queue loses segments even on a
    // clean link.
    let link = LinkConfig::clean(100_000_000, Duration::from_millis(5), 2 << 20);
    let [down, up] = scenario("loss 0%", link);
    for s in [&down, &up] {
        assert_eq!(
            s.fast + s.timeout,
            0,
            "a clean link needs no retransmission"
        );
    }
}

#[test]
fn loss_1() {
    scenario(
        "loss 1%",
        LinkConfig {
            loss: 0.01,
            ..fast_link()
        },
    );
}

#[test]
fn loss_5() {
    scenario(
        "loss 5%",
        LinkConfig {
            loss: 0.05,
            ..fast_link()
        },
    );
}

#[test]
fn loss_10() {
    scenario(
        "loss 10%",
        LinkConfig {
            loss: 0.10,
            ..fast_link()
        },
    );
}

#[test]
fn loss_20() {
    scenario(
        "loss 20%",
        LinkConfig {
            loss: 0.20,
            ..fast_link()
        },
    );
}

/// 20% loss where each flight arrives at once, so the receiving driver reads it in one batch
/// (an infinitely fast link): what a receiver sees when the TUN's queue fills while it is busy.
/// The ACKs a batch owes are where batching could hide loss signals from the sender.
#[test]
fn loss_20_batched() {
    scenario(
        "loss 20% batched",
        LinkConfig {
            loss: 0.20,
            bandwidth_bps: 0,
            ..fast_link()
        },
    );
}

#[test]
fn reorder_10() {
    scenario(
        "reorder 10%",
        LinkConfig {
            reorder: 0.10,
            reorder_delay: Duration::from_millis(1),
            ..fast_link()
        },
    );
}

#[test]
fn duplicate_5() {
    scenario(
        "duplicate 5%",
        LinkConfig {
            duplicate: 0.05,
            ..fast_link()
        },
    );
}

#[test]
fn corrupt_5() {
    let [down, up] = scenario(
        "corrupt 5%",
        LinkConfig {
            corrupt: 0.05,
            ..fast_link()
        },
    );
    for s in [&down, &up] {
        assert!(s.link.corrupted > 0, "the scenario corrupted nothing");
    }
}

#[test]
fn mixed_impairments() {
    scenario(
        "mixed 2% each",
        LinkConfig {
            loss: 0.02,
            reorder: 0.02,
            reorder_delay: Duration::from_millis(1),
            duplicate: 0.02,
            corrupt: 0.02,
            ..fast_link()
        },
    );
}

/// Congestion instead of random loss: a 10 Mbit/s bottleneck whose queue holds only half the
/// path's bandwidth-delay product, so every slow start and every window growth ends in
/// tail drops.
#[test]
fn shallow_bottleneck_queue() {
    let [down, up] = sweep(
        "shallow queue",
        LinkConfig::clean(10_000_000, Duration::from_millis(10), 12_500),
        &FEW_SEEDS,
    );
    for s in [&down, &up] {
        assert!(s.link.queue_drops > 0, "the queue never overflowed");
        // Drop-tail loses bursts; recovery must still be mostly SACK-driven.
        assert!(
            s.fast > s.timeout,
            "fast {} / timeout {}",
            s.fast,
            s.timeout
        );
        // Each recovery must really reduce the window: when ssthresh came from the span
        // SND.MAX - SND.UNA (SACKed data included) a recovery soon after another "reduced"
        // above cwnd, the queue never drained, and 10 MB cost ~4,200 drops and fast
        // retransmissions per run (now ~45).
        let per_run = s.fast / s.times.len().max(1) as u64;
        assert!(per_run < 200, "{per_run} fast retransmissions per run");
    }
}

/// The performance requirement: on a 10 Mbit/s path with a 20 ms RTT, 1% random loss (both
/// ways) costs less than doubling the loss-free time, and SACK recovery, not the
/// retransmission timer, repairs most losses.
#[test]
fn one_percent_loss_on_10_mbit_costs_less_than_twice_the_clean_time() {
    let started = Instant::now();
    let clean = LinkConfig::clean(10_000_000, Duration::from_millis(10), 64 << 10);
    let lossy = LinkConfig {
        loss: 0.01,
        ..clean.clone()
    };
    let bytes = 10 * MB;
    let seeds = 10;
    let tcp = sim_tcp_config();
    let mut lines = Vec::new();
    for direction in [Direction::Download, Direction::Upload] {
        let mut base = Summary::default();
        let mut lossy_sum = Summary::default();
        for seed in (1..=seeds).map(|s| s + seed_offset()) {
            let t0 = transfer_or_panic("10 Mbit/s clean", seed, &clean, &tcp, bytes, direction);
            let t1 = transfer_or_panic("10 Mbit/s 1% loss", seed, &lossy, &tcp, bytes, direction);
            assert!(
                t1.completion <= t0.completion * 2,
                "{direction:?} seed {seed}: 1% loss took {:?}, more than twice the clean {:?}",
                t1.completion,
                t0.completion
            );
            base.add(&t0, bytes);
            lossy_sum.add(&t1, bytes);
        }
        assert!(
            lossy_sum.fast > lossy_sum.timeout,
            "{direction:?}: {} fast retransmissions but {} after timeouts",
            lossy_sum.fast,
            lossy_sum.timeout
        );
        let ratio = lossy_sum.median().as_secs_f64() / base.median().as_secs_f64();
        lines.push(base.line("10M/20ms clean", direction, bytes));
        lines.push(lossy_sum.line("10M/20ms 1% loss", direction, bytes));
        lines.push(format!(
            "[sim] 10M/20ms 1% loss {direction:?}: median {ratio:.2}x the clean time (limit 2x)"
        ));
    }
    report(&format!(
        "{}\n[sim] 10M/20ms: real time {:.2?}",
        lines.join("\n"),
        started.elapsed()
    ));
}

/// Super-segments (`max_burst_segments`, as on a TUN with offloads) go out as their headers
/// plus a payload taken straight from the send buffer (`Device::send_gathered`); the device
/// refuses every seventh write (`WouldBlock`: the datagram is made whole and retried), under
/// loss and reordering. Every byte must arrive in order (the endpoints check the pattern).
#[test]
fn gathered_super_segments_arrive_intact_through_refused_writes() {
    let links = gathered_transfers(8, false);
    report(&format!(
        "[sim] gathered super-segments: {} written gathered, {} writes refused",
        links.gathered, links.refused
    ));
}

/// 4 MB each way for `seeds` seeds over a link that loses and reorders 2% and refuses every
/// seventh write, with super-segments of up to 44 segments written gathered; the sender
/// queues every other chunk shared when `share`. Checks that both kinds of write happened.
fn gathered_transfers(seeds: u64, share: bool) -> LinkStats {
    let link = LinkConfig {
        loss: 0.02,
        reorder: 0.02,
        refuse_every: 7,
        ..fast_link()
    };
    let tcp = TcpConfig {
        max_burst_segments: 44,
        ..sim_tcp_config()
    };
    let mut links = LinkStats::default();
    for seed in (1..=seeds).map(|s| s + seed_offset()) {
        for direction in [Direction::Download, Direction::Upload] {
            let t = transfer_sharing(seed, &link, &tcp, 4 * MB, direction, false, share)
                .unwrap_or_else(|err| panic!("gathered, seed {seed}, {direction:?}: {err}"));
            links.add(&t.link);
        }
    }
    assert!(links.gathered > 1000, "{links:?}");
    assert!(links.refused > 100, "{links:?}");
    links
}

/// Bytes queued shared (`Stack::send_shared`, a mapped file's pages in `serve`) next to copied
/// ones: every other 64 KiB chunk is shared, so segments are cut where the two meet, and a
/// shared payload always leaves deferred, plain segments included (their checksum completed by
/// the device). Under loss, reordering and refused writes (a refused shared payload is kept by
/// reference for the retry), every byte must arrive in order.
#[test]
fn shared_and_copied_bytes_arrive_intact_through_loss_and_refused_writes() {
    gathered_transfers(6, true);
}

/// A long fat path: 100 Mbit/s with 100 ms of round trip holds 1.25 MB, more than the 256 KiB
/// the send buffer starts with (which alone would cap the rate at 21 Mbit/s). The buffer grows
/// with the window (`TcpConfig::send_buffer_max`), so the 1 MiB receive window is what bounds
/// the rate, as it would be with Linux at both ends: twice the fixed buffer's cap at least
/// (55 Mbit/s measured; 19 with the buffer fixed).
#[test]
fn the_send_buffer_does_not_cap_a_long_fat_path() {
    let link = LinkConfig::clean(100_000_000, Duration::from_millis(50), 4 << 20);
    let bytes = 20 * MB;
    let tcp = sim_tcp_config();
    for direction in [Direction::Download, Direction::Upload] {
        let t = transfer_or_panic("100M/100ms", 1, &link, &tcp, bytes, direction);
        let rate = bytes as f64 * 8.0 / t.completion.as_secs_f64() / 1e6;
        report(&format!(
            "[sim] 100M/100ms {direction:?}: {bytes} bytes in {:?} of virtual time, {rate:.1} Mbit/s",
            t.completion
        ));
        assert!(rate > 42.0, "{direction:?}: {rate:.1} Mbit/s");
    }
}

/// RFC 8985 §7: a short transfer that loses its last segments gets no SACK to show it, so
/// without a tail loss probe only the retransmission timer (at least 200 ms) repairs it. With
/// TLP a probe goes out after about two round trips and RACK or the probe itself repairs the
/// tail: over many seeds of short lossy downloads the sender has fewer RTOs, more seeds finish
/// sooner than later, and the total time is less.
#[test]
fn tail_loss_probes_repair_lost_tails_sooner_than_the_rto() {
    let started = Instant::now();
    // 50 ms RTT, so the PTO (100 ms) is well under the RTO's 200 ms floor.
    let link = LinkConfig {
        loss: 0.05,
        ..LinkConfig::clean(10_000_000, Duration::from_millis(25), 64 << 10)
    };
    let bytes = 20_000;
    let with_tlp = sim_tcp_config();
    let without_tlp = TcpConfig {
        tlp: false,
        ..sim_tcp_config()
    };
    let mut runs: [Vec<Transfer>; 2] = Default::default();
    let mut summaries: [Summary; 2] = Default::default();
    for (i, tcp) in [&with_tlp, &without_tlp].into_iter().enumerate() {
        for seed in (1..=300).map(|s| s + seed_offset()) {
            let scenario = "short, 5% loss";
            let t = transfer_or_panic(scenario, seed, &link, tcp, bytes, Direction::Download);
            summaries[i].add(&t, bytes);
            runs[i].push(t);
        }
    }
    let total = |runs: &[Transfer]| runs.iter().map(|t| t.completion).sum::<Duration>();
    let rtos = |runs: &[Transfer]| runs.iter().map(|t| t.sender.timeouts).sum::<u64>();
    let probes: u64 = runs[0].iter().map(|t| t.sender.loss_probes).sum();
    let pairs = || runs[0].iter().zip(&runs[1]);
    let sooner = pairs().filter(|(a, b)| a.completion < b.completion).count();
    let later = pairs().filter(|(a, b)| a.completion > b.completion).count();
    let (on_total, off_total) = (total(&runs[0]), total(&runs[1]));
    let (on_rtos, off_rtos) = (rtos(&runs[0]), rtos(&runs[1]));
    report(&format!(
        "{}\n{}\n[sim] short, 5% loss: with TLP {probes} probes, sender RTOs {on_rtos} \
         (without {off_rtos}), {sooner} seeds sooner and {later} later, total virtual time \
         {on_total:.2?} (without {off_total:.2?}); real time {:.2?}",
        summaries[0].line("short, TLP", Direction::Download, bytes),
        summaries[1].line("short, no TLP", Direction::Download, bytes),
        started.elapsed()
    ));
    assert!(
        on_rtos < off_rtos,
        "TLP should save timeouts: {on_rtos} with it, {off_rtos} without"
    );
    assert!(
        sooner > later,
        "TLP should make more runs sooner ({sooner}) than later ({later})"
    );
    assert!(
        on_total < off_total,
        "TLP should save time: {on_total:?} with it, {off_total:?} without"
    );
}

/// Seeds that once failed in a soak run (`SIM_SEED_OFFSET`): (scenario, link, direction,
/// seed). Since the links draw their fates from the production impairer
/// (`tunstack::device::fault::Impairer`) the random sequence differs, so these seeds no longer
/// replay the runs that found the bugs; they stay as extra 20%-loss runs, and the bug that
/// needed the default configuration has a deterministic test of its own
/// (`the_user_timeout_restarts_while_data_moves`).
#[test]
fn regression_seeds() {
    let loss_20 = LinkConfig {
        loss: 0.20,
        ..fast_link()
    };
    // Found with the default configuration: the receiver's FIN lost its ACKs five times; the
    // user timeout, armed at connection setup and never restarted, aborted it at 300 s. With
    // the default 5-minute user timeout a run at 20% loss may meet a legitimate stall (see
    // `sim_tcp_config`), which seed 101_033 does with the current random sequence.
    // Eight (and, with some retransmissions lost too, twelve) exchanges in a row lost during a
    // retransmission backoff: 5-minute stalls (see `sim_tcp_config`).
    let tcp = sim_tcp_config();
    for (seed, direction) in [
        (101_033, Direction::Download),
        (201_009, Direction::Download),
        (501_019, Direction::Download),
        (801_031, Direction::Upload),
    ] {
        transfer_or_panic("loss 20%", seed, &loss_20, &tcp, 10 * MB, direction);
    }
}

/// The user timeout bounds a stall, not a connection's life: a clean transfer that takes
/// longer than the default five minutes completes (it was once armed at setup and never
/// restarted).
#[test]
fn the_user_timeout_restarts_while_data_moves() {
    // 2 MB at 40 kbit/s: about 400 s of virtual time.
    let slow = LinkConfig::clean(40_000, Duration::from_millis(10), 32 << 10);
    let tcp = TcpConfig::default();
    assert!(tcp.user_timeout < Duration::from_secs(400));
    for direction in [Direction::Download, Direction::Upload] {
        let t = transfer_or_panic("40 kbit/s clean", 1, &slow, &tcp, 2 * MB, direction);
        assert!(
            t.completion > tcp.user_timeout,
            "{direction:?} took only {:?}",
            t.completion
        );
    }
}

// ------------------------------------------------------------------- the simulator itself

#[test]
fn link_serializes_delays_and_drops_tail() {
    let clock = sim::Clock::new();
    let t0 = clock.now();
    // 8 Mbit/s: one byte per microsecond; 1 ms latency; room for three 1000-byte datagrams.
    let mut link = sim::Link::new(
        LinkConfig::clean(8_000_000, Duration::from_millis(1), 3000),
        7,
    );
    for _ in 0..4 {
        link.send(t0, &[0u8; 1000]);
    }
    assert_eq!(
        link.stats().queue_drops,
        1,
        "the fourth datagram overflows the queue"
    );
    for k in 1..=3u64 {
        let due = t0 + Duration::from_millis(1 + k);
        assert_eq!(link.next_arrival(), Some(due));
        assert!(link.pop_due(due - Duration::from_nanos(1)).is_none());
        assert_eq!(link.pop_due(due).map(|d| d.len()), Some(1000));
    }
    assert_eq!(link.next_arrival(), None);
    // Once drained, the queue accepts again and a datagram waits only for its own bits.
    let later = t0 + Duration::from_millis(10);
    link.send(later, &[0u8; 500]);
    assert_eq!(
        link.next_arrival(),
        Some(later + Duration::from_micros(500) + Duration::from_millis(1))
    );
}

#[test]
fn link_impairments_follow_their_rates() {
    let clock = sim::Clock::new();
    let config = LinkConfig {
        loss: 0.1,
        duplicate: 0.05,
        reorder: 0.1,
        corrupt: 0.05,
        ..LinkConfig::clean(0, Duration::from_millis(1), usize::MAX)
    };
    let mut link = sim::Link::new(config, 42);
    let n = 20_000;
    let original = [0x5au8; 100];
    for i in 0..n {
        link.send(clock.now() + Duration::from_micros(i), &original);
    }
    let mut flipped_bits = 0;
    while let Some(d) = link.pop_due(clock.now() + Duration::from_secs(1)) {
        let bits: u32 = d
            .iter()
            .zip(original.iter())
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        assert!(bits <= 1, "corruption flips exactly one bit");
        flipped_bits += bits;
    }
    let s = link.stats();
    let near =
        |count: u64, rate: f64| (count as f64 - rate * n as f64).abs() < 0.15 * rate * n as f64;
    assert!(near(s.lost, 0.1), "{s:?}");
    assert!(near(s.duplicated, 0.9 * 0.05), "{s:?}");
    // Each copy (duplicates included) meets its own reordering chance.
    assert!(near(s.reordered, 0.9 * 1.05 * 0.1), "{s:?}");
    assert!(near(s.corrupted, 0.9 * 1.05 * 0.05), "{s:?}");
    assert_eq!(u64::from(flipped_bits), s.corrupted);
    assert_eq!(s.delivered, n - s.lost + s.duplicated);
}

#[test]
fn pattern_check_finds_the_first_wrong_byte() {
    let pattern = Pattern::new(99);
    let mut data = vec![0u8; 1000];
    pattern.fill(13, &mut data);
    assert_eq!(pattern.check(13, &data), Ok(()));
    assert_eq!(pattern.check(13, &data[..7]), Ok(()));
    assert_eq!(pattern.check(20, &data[7..]), Ok(()));
    assert!(
        pattern.check(14, &data).is_err(),
        "a shifted stream is caught"
    );
    data[500] ^= 0x10;
    assert_eq!(pattern.check(13, &data), Err(513));
    assert!(Pattern::new(98).check(13, &data[..8]).is_err());
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let link = LinkConfig {
        loss: 0.05,
        reorder: 0.05,
        ..fast_link()
    };
    let tcp = sim_tcp_config();
    let a = transfer(5, &link, &tcp, MB, Direction::Download, false).expect("first run");
    let b = transfer(5, &link, &tcp, MB, Direction::Download, false).expect("second run");
    assert_eq!(a.completion, b.completion);
    assert_eq!(a.sender, b.sender);
    assert_eq!(a.link, b.link);
    let c = transfer(6, &link, &tcp, MB, Direction::Download, false).expect("other seed");
    assert_ne!(a.link, c.link, "another seed draws other impairments");
}

#[test]
fn a_dead_link_fails_with_a_timeout_instead_of_hanging() {
    let dead = LinkConfig {
        loss: 1.0,
        ..fast_link()
    };
    let tcp = TcpConfig::default();
    let err =
        transfer(1, &dead, &tcp, MB, Direction::Download, false).expect_err("nothing gets through");
    assert!(err.contains("timed out"), "{err}");
}
