//! The chaos matrix: `tunstack fetch` of large files from nginx over a real TUN device, through
//! a bad network made by our own seeded injector (`--impair`) or by the kernel (nftables), and
//! through failures mid-transfer (server killed, route removed, TUN removed).
//!
//! Each test builds its own sandbox (tests/e2e/lab.rs) and removes it whatever happens. Every
//! download case asserts a byte-exact file, exit 0 within a bound, nothing else left in the
//! output directory, no RST from the client namespace's kernel (TcpOutRsts) and, in the
//! `--pcap` capture read back with tshark, the handshake and no RST from anyone but the stack.
//! Every failure case asserts exit 1, exactly one error line, no file and a bounded exit.
//!
//! Each case prints one `chaos:` line (time, retransmissions, duplicate ACKs, the server's
//! retransmissions); run with `--nocapture` to see them all. Injected cases use fixed seeds: the
//! printed command replays a failure exactly on the injector's side.

#[allow(dead_code)] // shared with tests/e2e.rs; this file uses only part of them
mod e2e {
    pub mod capture;
    pub mod files;
    pub mod lab;
    pub mod nft;
    pub mod process;
    pub mod summary;
}

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e::capture::Capture;
use e2e::files::{list_dir, sha256_of_file, ScratchDir, MIB};
use e2e::lab::{
    can_run, server_url, tcp_counter, Lab, NGINX_PORT, PARTIAL_LIMIT, SERVER_IP, STACK_IP,
};
use e2e::nft::{Dropped, KernelLoss};
use e2e::process::{sole_error_line, Outcome, Running};
use e2e::summary::Summary;
use tunstack::tcp::TcpConfig;

const SAVED_AS: &str = "chaos.bin";

/// Bound for the mild cases (they take seconds when recovery works).
const MILD_LIMIT: Duration = Duration::from_secs(120);
/// Bound for 10% and 20% loss.
const HEAVY_LIMIT: Duration = Duration::from_secs(240);
/// Bound for a failure case, from start to exit.
const FAILURE_LIMIT: Duration = Duration::from_secs(60);

/// Who damages the traffic.
enum Damage {
    /// `--impair SPEC --seed N`: our injector, both directions.
    Injected { spec: &'static str, seed: u64 },
    /// nftables in the client namespace drops this percentage in each direction.
    Kernel { percent: u32 },
}

/// One download through a damaged network.
struct Case {
    /// Sandbox name, unique among all tests (at most 12 characters).
    lab: &'static str,
    damage: Damage,
    file_len: usize,
    limit: Duration,
    /// Offloads on along the path (GRO on the client's veth, TSO/GSO at the server), so the
    /// kernel hands the stack 64 KiB super-segments as it does outside the sandbox.
    super_segments: bool,
}

/// Captures go here, not in the output directory, which must hold only the download.
fn capture_dir(lab_name: &str) -> ScratchDir {
    ScratchDir::new(&format!("{lab_name}-pcap"))
}

/// Waits for `running` (bounded by `limit`), turning a watchdog kill into a message that names
/// the case and how to replay it.
fn finish_within(running: Running, limit: Duration, what: &str) -> Outcome {
    match panic::catch_unwind(AssertUnwindSafe(|| running.finish(limit))) {
        Ok(outcome) => outcome,
        Err(cause) => {
            let detail = cause
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| cause.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            eprintln!("chaos: {what}: did not finish within {limit:?}");
            panic!("{what}: did not finish within {limit:?}: {detail}");
        }
    }
}

fn run_case(case: Case) {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new(case.lab);
    if case.super_segments {
        lab.enable_path_offloads();
    }
    let want = lab.serve_file("served.bin", case.file_len, case.file_len as u64 ^ 0xc4a0);
    lab.start_nginx();
    let captures = capture_dir(case.lab);
    let pcap = captures.path().join("fetch.pcap");

    let mut args: Vec<String> = Vec::new();
    let mut kernel_loss = None;
    let what = match case.damage {
        Damage::Injected { spec, seed } => {
            args.extend([
                "--impair".into(),
                spec.into(),
                "--seed".into(),
                seed.to_string(),
            ]);
            format!("--impair {spec} --seed {seed}")
        }
        Damage::Kernel { percent } => {
            let veth = format!("{}-c", case.lab);
            kernel_loss = Some(KernelLoss::install(
                &lab.client_ns(),
                "tun0",
                &veth,
                percent,
            ));
            format!("kernel loss {percent}% each way (nftables numgen)")
        }
    };
    let what = format!("{what}, {} MiB", case.file_len / MIB);
    args.extend(["--pcap".into(), pcap.display().to_string()]);
    args.extend([
        "-o".into(),
        SAVED_AS.into(),
        server_url(NGINX_PORT, "/served.bin"),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    eprintln!(
        "chaos: {what}: ip netns exec {} tunstack fetch --iface tun0 --local-ip {STACK_IP} {}",
        lab.client_ns(),
        args.join(" ")
    );

    let server_retrans_before = tcp_counter(&lab.server_ns(), "RetransSegs");
    let outcome = finish_within(lab.spawn_fetch(&args), case.limit, &what);
    let server_retrans = tcp_counter(&lab.server_ns(), "RetransSegs") - server_retrans_before;
    let dropped = kernel_loss.map(|loss| loss.dropped());
    let summary = Summary::find(&outcome.stderr);

    eprintln!(
        "chaos: {what}: {}",
        record(&outcome, summary.as_ref(), server_retrans, dropped)
    );

    assert_eq!(
        outcome.code(),
        Some(0),
        "{what}: expected success\n{}",
        outcome.describe()
    );
    assert_eq!(
        list_dir(&lab.out_dir()),
        [SAVED_AS],
        "{what}: the output directory must hold only the download"
    );
    assert_eq!(
        sha256_of_file(&lab.out_dir().join(SAVED_AS)),
        want,
        "{what}: the saved file differs from the served one"
    );
    let summary = summary
        .unwrap_or_else(|| panic!("{what}: no summary line on stderr\n{}", outcome.describe()));
    assert_eq!(
        summary.bytes, case.file_len as u64,
        "{what}: summary byte count"
    );
    lab.assert_no_client_rst();
    assert_capture_is_clean(&pcap, &what);
    assert_out_of_order_is_acknowledged(&summary, &what);
    if case.super_segments {
        assert_impaired_per_wire_packet(&pcap, &summary, &what);
    }
}

/// The capture (taken where the device hands datagrams over) holds super-segments, yet the
/// injector's loss struck single wire packets: a lost 64 KiB burst would leave one hole per
/// ~45 segments, while per-packet loss leaves about one per lost packet, each answered with
/// a duplicate ACK carrying SACK news.
fn assert_impaired_per_wire_packet(pcap: &Path, summary: &Summary, what: &str) {
    let largest = Capture::largest_datagram(pcap);
    assert!(
        largest > 1500,
        "{what}: no super-segment crossed the device (largest datagram {largest} bytes); the \
         case does not test what it says"
    );
    let segments = summary.bytes / 1448;
    assert!(
        summary.out_of_order_in * 40 >= segments,
        "{what}: {} out-of-order arrivals for {segments} wire segments: loss struck bursts, \
         not packets",
        summary.out_of_order_in
    );
}

/// One line of the chaos table: time, what the stack counted, what the server retransmitted
/// and what the kernel dropped.
fn record(
    outcome: &Outcome,
    summary: Option<&Summary>,
    server_retrans: u64,
    dropped: Option<Dropped>,
) -> String {
    let counters = match summary {
        Some(s) => format!(
            "retransmitted {}, sent {} duplicate ACKs, received {} out-of-order and {} duplicate \
             segments",
            s.retransmitted, s.dup_acks_out, s.out_of_order_in, s.duplicates_in
        ),
        None => "no summary line".to_owned(),
    };
    let kernel = dropped.map_or(String::new(), |d| {
        format!(
            "; kernel dropped {} to the stack, {} to the server",
            d.to_stack, d.to_server
        )
    });
    format!(
        "exit {:?} after {:.2} s; {counters}; server retransmitted {server_retrans}{kernel}",
        outcome.code(),
        outcome.elapsed.as_secs_f64()
    )
}

/// RFC 5681 §4.2: an out-of-order segment SHOULD get an immediate duplicate ACK; that stream of
/// ACKs (and their SACK blocks) is what lets the sender repair a loss without a timeout. With
/// SACK they are compressed as Linux does past DupThresh, one per `sack_compression` (44)
/// segments at most (an ACK that also moves RCV.NXT past in-order data of the same batch is
/// not counted as a duplicate); the bound here is that one, per `ack_stretch` (also 44).
fn assert_out_of_order_is_acknowledged(summary: &Summary, what: &str) {
    if summary.out_of_order_in < 100 {
        return;
    }
    let stretch = u64::from(TcpConfig::default().ack_stretch);
    assert!(
        summary.dup_acks_out * stretch >= summary.out_of_order_in,
        "{what}: {} out-of-order segments arrived but only {} duplicate ACKs went out \
         (at least one per {stretch} expected)",
        summary.out_of_order_in,
        summary.dup_acks_out
    );
}

/// The capture opens, shows the handshake, and holds no RST from a kernel or the server.
fn assert_capture_is_clean(pcap: &Path, what: &str) {
    let capture = Capture::read(pcap);
    assert!(
        capture.has_handshake(STACK_IP, SERVER_IP),
        "{what}: the capture lacks the SYN / SYN-ACK: {:?}",
        capture.control
    );
    let resets = capture.resets_not_from(STACK_IP);
    assert!(
        resets.is_empty(),
        "{what}: RST(s) crossed tun0 towards the stack: {resets:?}"
    );
}

#[test]
fn injected_loss_1_percent() {
    run_case(Case {
        lab: "chaos01",
        damage: Damage::Injected {
            spec: "loss=1%",
            seed: 101,
        },
        file_len: 64 * MIB,
        limit: MILD_LIMIT,
        super_segments: false,
    });
}

#[test]
fn injected_loss_5_percent() {
    run_case(Case {
        lab: "chaos02",
        damage: Damage::Injected {
            spec: "loss=5%",
            seed: 102,
        },
        file_len: 64 * MIB,
        limit: MILD_LIMIT,
        super_segments: false,
    });
}

#[test]
fn injected_loss_10_percent() {
    run_case(Case {
        lab: "chaos03",
        damage: Damage::Injected {
            spec: "loss=10%",
            seed: 103,
        },
        file_len: 64 * MIB,
        limit: HEAVY_LIMIT,
        super_segments: false,
    });
}

#[test]
fn injected_loss_20_percent_8mib() {
    run_case(Case {
        lab: "chaos04",
        damage: Damage::Injected {
            spec: "loss=20%",
            seed: 104,
        },
        file_len: 8 * MIB,
        limit: HEAVY_LIMIT,
        super_segments: false,
    });
}

#[test]
fn injected_reordering_10_percent() {
    run_case(Case {
        lab: "chaos05",
        damage: Damage::Injected {
            spec: "reorder=10%",
            seed: 105,
        },
        file_len: 64 * MIB,
        limit: MILD_LIMIT,
        super_segments: false,
    });
}

#[test]
fn injected_duplication_5_percent() {
    run_case(Case {
        lab: "chaos06",
        damage: Damage::Injected {
            spec: "dup=5%",
            seed: 106,
        },
        file_len: 64 * MIB,
        limit: MILD_LIMIT,
        super_segments: false,
    });
}

#[test]
fn injected_corruption_5_percent() {
    run_case(Case {
        lab: "chaos07",
        damage: Damage::Injected {
            spec: "corrupt=5%",
            seed: 107,
        },
        file_len: 64 * MIB,
        limit: MILD_LIMIT,
        super_segments: false,
    });
}

#[test]
fn injected_delay_50ms_jitter_10ms() {
    run_case(Case {
        lab: "chaos08",
        damage: Damage::Injected {
            spec: "delay=50ms,jitter=10ms",
            seed: 108,
        },
        file_len: 64 * MIB,
        limit: MILD_LIMIT,
        super_segments: false,
    });
}

#[test]
fn injected_mix() {
    run_case(Case {
        lab: "chaos09",
        damage: Damage::Injected {
            spec: "loss=2%,dup=1%,reorder=5%,corrupt=1%,delay=10ms,jitter=5ms",
            seed: 109,
        },
        file_len: 64 * MIB,
        limit: MILD_LIMIT,
        super_segments: false,
    });
}

/// The same loss with the kernel's offloads on along the path: `--impair` cuts each 64 KiB
/// super-segment into the wire segments it stands for before deciding their fate.
#[test]
fn injected_loss_5_percent_super_segments() {
    run_case(Case {
        lab: "chaos16",
        damage: Damage::Injected {
            spec: "loss=5%",
            seed: 116,
        },
        file_len: 64 * MIB,
        limit: MILD_LIMIT,
        super_segments: true,
    });
}

#[test]
fn kernel_loss_1_percent() {
    run_case(Case {
        lab: "chaos10",
        damage: Damage::Kernel { percent: 1 },
        file_len: 64 * MIB,
        limit: MILD_LIMIT,
        super_segments: false,
    });
}

#[test]
fn kernel_loss_5_percent() {
    run_case(Case {
        lab: "chaos11",
        damage: Damage::Kernel { percent: 5 },
        file_len: 64 * MIB,
        limit: MILD_LIMIT,
        super_segments: false,
    });
}

#[test]
fn kernel_loss_10_percent() {
    run_case(Case {
        lab: "chaos12",
        damage: Damage::Kernel { percent: 10 },
        file_len: 64 * MIB,
        limit: HEAVY_LIMIT,
        super_segments: false,
    });
}

/// The slow download the failure cases break: 64 MiB through a 20 Mbit/s inbound bottleneck
/// (about 27 s), running in `lab` once at least 2 MiB have arrived.
fn start_slow_download(lab: &mut Lab, pcap: &Path, extra: &[&str]) -> Running {
    lab.serve_file("served.bin", 64 * MIB, 0x5107);
    lab.start_nginx();
    let pcap = pcap.display().to_string();
    let mut args = vec!["--impair-in", "rate=20mbit", "--seed", "1", "--pcap", &pcap];
    args.extend_from_slice(extra);
    let url = server_url(NGINX_PORT, "/served.bin");
    args.extend(["-o", SAVED_AS, &url]);
    let running = lab.spawn_fetch(&args);
    lab.wait_for_bytes(
        &running,
        "tunstack",
        PARTIAL_LIMIT,
        "the partial download",
        2 * MIB as u64,
        || lab.out_dir_bytes(),
    );
    running
}

/// Exit 1 with one error line mentioning one of `fragments`, within `bound` of the failure, nothing in
/// the output directory, no RST from the client namespace's kernel.
fn assert_clean_failure(
    lab: &Lab,
    outcome: &Outcome,
    what: &str,
    fragments: &[&str],
    since_failure: Duration,
    bound: Duration,
    pcap: &Path,
) {
    let resets = Capture::read(pcap).resets_not_from(STACK_IP).len();
    eprintln!(
        "chaos: {what}: exit {:?} after {:.2} s, {:.2} s after the failure; RSTs towards the \
         stack in the capture: {resets}; stderr: {}",
        outcome.code(),
        outcome.elapsed.as_secs_f64(),
        since_failure.as_secs_f64(),
        outcome.stderr.trim_end().replace('\n', " | ")
    );
    assert_eq!(
        outcome.code(),
        Some(1),
        "{what}: wrong exit status\n{}",
        outcome.describe()
    );
    let message = sole_error_line(outcome);
    assert!(
        fragments.iter().any(|f| message.contains(f)),
        "{what}: error line {message:?} mentions none of {fragments:?}"
    );
    assert!(
        since_failure <= bound,
        "{what}: took {since_failure:?} after the failure to give up (bound {bound:?})"
    );
    assert_eq!(
        list_dir(&lab.out_dir()),
        Vec::<String>::new(),
        "{what}: a failed download must leave nothing behind"
    );
    lab.assert_no_client_rst();
}

/// The only process in the server namespace: the nginx `Lab` started.
fn server_pid(lab: &Lab) -> libc::pid_t {
    let output = Command::new("ip")
        .args(["netns", "pids", &lab.server_ns()])
        .output()
        .expect("ip netns pids");
    let pids: Vec<libc::pid_t> = String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(|pid| pid.parse().expect("numeric pid"))
        .collect();
    assert_eq!(
        pids.len(),
        1,
        "expected only nginx in the server namespace: {pids:?}"
    );
    let comm = fs::read_to_string(format!("/proc/{}/comm", pids[0])).unwrap_or_default();
    assert_eq!(comm.trim(), "nginx", "pid {} is not nginx", pids[0]);
    pids[0]
}

#[test]
fn server_killed_mid_transfer() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("chaos13");
    let captures = capture_dir("chaos13");
    let pcap = captures.path().join("fetch.pcap");
    let running = start_slow_download(&mut lab, &pcap, &[]);

    let pid = server_pid(&lab);
    // SAFETY: kill(2) on nginx, which this test started and has not reaped (Lab reaps it on drop).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0, "kill nginx");
    let killed_at = Instant::now();
    let outcome = finish_within(running, FAILURE_LIMIT, "server killed");

    assert_clean_failure(
        &lab,
        &outcome,
        "server killed (kill -9 nginx)",
        // The orphaned socket flushes what nginx had queued, then FIN (or RST).
        &["truncated", "reset", "closed"],
        killed_at.elapsed(),
        Duration::from_secs(30),
        &pcap,
    );
}

#[test]
fn route_removed_mid_transfer() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("chaos14");
    let captures = capture_dir("chaos14");
    let pcap = captures.path().join("fetch.pcap");
    let running = start_slow_download(&mut lab, &pcap, &["--timeout", "3s"]);

    let status = Command::new("ip")
        .args(["-n", &lab.server_ns(), "route", "del", "10.77.0.0/24"])
        .status()
        .expect("ip route del");
    assert!(status.success(), "ip route del failed");
    let removed_at = Instant::now();
    let outcome = finish_within(running, FAILURE_LIMIT, "route removed");

    assert_clean_failure(
        &lab,
        &outcome,
        "server's route to the stack removed, --timeout 3s",
        &["server sent nothing for 3s"],
        removed_at.elapsed(),
        Duration::from_secs(15),
        &pcap,
    );
    assert!(
        removed_at.elapsed() >= Duration::from_secs(3),
        "gave up before the 3 s idle timeout"
    );
}

#[test]
fn tun_removed_mid_transfer() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("chaos15");
    let captures = capture_dir("chaos15");
    let pcap = captures.path().join("fetch.pcap");
    let running = start_slow_download(&mut lab, &pcap, &[]);

    let status = Command::new("ip")
        .args(["-n", &lab.client_ns(), "link", "del", "tun0"])
        .status()
        .expect("ip link del");
    assert!(status.success(), "ip link del tun0 failed");
    let removed_at = Instant::now();
    let outcome = finish_within(running, FAILURE_LIMIT, "TUN removed");

    assert_clean_failure(
        &lab,
        &outcome,
        "tun0 deleted",
        &["device", "tun0"],
        removed_at.elapsed(),
        Duration::from_secs(10),
        &pcap,
    );
}
