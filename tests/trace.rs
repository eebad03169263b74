//! `--trace` end to end (needs root; without it the tests print "skipped" and pass): a real
//! download under `--impair loss=2%`, captured with `--pcap` and traced with `--trace`, and
//! the trace's retransmissions and duplicate ACKs checked against tshark's analysis of the
//! capture. Sandboxes are named `trc*`.
//!
//! What the capture sees relative to the trace: the device is `Fault<Pcap<Tun>>`, so the
//! capture records datagrams from the kernel *before* `--impair` drops them on the way in, and
//! ours *after* it dropped them on the way out. The capture's view is therefore rebuilt from
//! the trace: inbound, every `impair` drop and every `seg` in, in order; outbound, every `seg`
//! out except those an `impair` drop follows. tshark's rules (Wireshark's
//! `tcp_analyze_sequence_number`) are then applied to that view, and the counts must agree.

#[allow(dead_code)] // shared with tests/e2e.rs; this file uses only part of them
mod e2e {
    pub mod capture;
    pub mod files;
    pub mod lab;
    pub mod process;
}

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use e2e::capture::tshark_rows;
use e2e::files::{sha256_of_file, MIB};
use e2e::lab::{can_run, server_url, Lab, PYTHON_PORT, SERVER_IP, STACK_IP};
use e2e::process::{assert_exit, tunstack_lines, Running};
use serde_json::Value;

/// One segment as the capture saw it, numbers relative as in the trace.
#[derive(Debug, Clone)]
struct Wire {
    seq: u64,
    ack: Option<u64>,
    len: u64,
    flags: String,
    win: u64,
}

impl Wire {
    fn from_event(e: &Value) -> Wire {
        Wire {
            seq: e["seq"].as_u64().expect("seq"),
            ack: e["ack"].as_u64(),
            len: e["len"].as_u64().expect("len"),
            flags: e["flags"].as_str().expect("flags").to_owned(),
            win: e["win"].as_u64().expect("win"),
        }
    }

    fn has(&self, flag: char) -> bool {
        self.flags.contains(flag)
    }
}

/// The capture's view of connection `conn`, rebuilt from the trace: (from us, to us).
fn capture_view(events: &[Value], conn: u64) -> (Vec<Wire>, Vec<Wire>) {
    let mut out: Vec<Option<Wire>> = Vec::new();
    let mut inbound = Vec::new();
    for e in events.iter().filter(|e| e["conn"] == conn) {
        match (e["ev"].as_str(), e["dir"].as_str()) {
            (Some("seg"), Some("out")) => out.push(Some(Wire::from_event(e))),
            (Some("seg"), Some("in")) => inbound.push(Wire::from_event(e)),
            (Some("impair"), Some("in")) if e["action"] == "drop" => {
                inbound.push(Wire::from_event(e))
            }
            (Some("impair"), Some("out")) if e["action"] == "drop" => {
                let dropped = Wire::from_event(e);
                let sent = out.iter_mut().rev().find(|s| {
                    s.as_ref().is_some_and(|s| {
                        (s.seq, s.ack, s.len) == (dropped.seq, dropped.ack, dropped.len)
                    })
                });
                *sent.expect("an impair drop of a segment the trace never sent") = None;
            }
            (Some("impair"), _) => panic!("only drops were asked for: {e}"),
            _ => {}
        }
    }
    (out.into_iter().flatten().collect(), inbound)
}

/// Wireshark's retransmission test: a segment with data (or SYN/FIN) starting below the
/// highest sequence number seen so far in its direction, and not a keep-alive. Returns the
/// relative sequence numbers of those segments.
fn retransmissions(stream: &[Wire]) -> Vec<u64> {
    let mut next: Option<u64> = None;
    let mut found = Vec::new();
    for s in stream {
        let syn_fin = s.has('S') || s.has('F');
        let space = s.len + u64::from(syn_fin);
        let keepalive = s.len <= 1 && !syn_fin && !s.has('R') && next == Some(s.seq + 1);
        if space > 0 && next.is_some_and(|n| s.seq < n) && !keepalive {
            found.push(s.seq);
        }
        if space > 0 {
            next = Some(next.map_or(s.seq + space, |n| n.max(s.seq + space)));
        }
    }
    found
}

/// Wireshark's duplicate-ACK test: no data, a non-zero window equal to the last one, SEQ at
/// the next expected, ACK equal to the last one, no SYN/FIN/RST.
fn duplicate_acks(stream: &[Wire]) -> usize {
    let (mut next, mut last_ack, mut last_win) = (None::<u64>, None::<u64>, None::<u64>);
    let mut count = 0;
    for s in stream {
        let control = s.has('S') || s.has('F') || s.has('R');
        if s.len == 0
            && s.win != 0
            && Some(s.win) == last_win
            && Some(s.seq) == next
            && s.ack.is_some()
            && s.ack == last_ack
            && !control
        {
            count += 1;
        }
        let space = s.len + u64::from(s.has('S') || s.has('F'));
        if space > 0 {
            next = Some(next.map_or(s.seq + space, |n| n.max(s.seq + space)));
        }
        last_win = Some(s.win);
        if s.ack.is_some() {
            last_ack = s.ack;
        }
    }
    count
}

/// tshark's verdicts on the capture: for each frame matching `filter`, its source address and
/// relative sequence number.
fn tshark_sources(pcap: &Path, filter: &str) -> Vec<(String, u64)> {
    let options = [
        "--disable-protocol",
        "http",
        "-o",
        "tcp.desegment_tcp_streams:FALSE",
    ];
    tshark_rows(pcap, &options, filter, &["ip.src", "tcp.seq"])
        .into_iter()
        .map(|row| {
            let [src, seq] = &row[..] else {
                panic!("two fields: {row:?}")
            };
            (src.clone(), seq.parse().expect("a sequence number"))
        })
        .collect()
}

fn read_trace(path: &Path) -> Vec<Value> {
    // Kept after the sandbox goes, for a look (and for `tunstack plot`): target/tmp/.
    let name = path.file_name().expect("a file name");
    let _ = std::fs::copy(path, Path::new(env!("CARGO_TARGET_TMPDIR")).join(name));
    std::fs::read_to_string(path)
        .expect("the trace was written")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn lossy_download_trace_agrees_with_tshark() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("trc01");
    let want = lab.serve_file("lossy.bin", 4 * MIB, 15);
    lab.start_python();
    let trace = lab.scratch_dir().join("lossy.jsonl");
    let pcap = lab.scratch_dir().join("lossy.pcap");

    let outcome = lab.fetch(&[
        "--impair",
        "loss=2%",
        "--seed",
        "15",
        "--no-offload",
        "--pcap",
        pcap.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
        "--stats",
        "-o",
        "saved.bin",
        &server_url(PYTHON_PORT, "/lossy.bin"),
    ]);

    assert_exit(&outcome, 0);
    assert_eq!(sha256_of_file(&lab.out_dir().join("saved.bin")), want);
    let events = read_trace(&trace);
    assert_eq!(events[0]["ev"], "trace", "{}", events[0]);
    assert_eq!(events[0]["cmd"], "fetch");
    let opens = events.iter().filter(|e| e["ev"] == "open").count();
    assert_eq!(opens, 1, "one connection");

    // --stats: one JSON object on stderr, the same as the close event's stats.
    let stats_line = outcome
        .stderr
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no --stats line\n{}", outcome.describe()));
    let stats: Value = serde_json::from_str(stats_line).expect("--stats is JSON");
    // The body and the response head.
    let received = stats["bytes_received"].as_u64().expect("bytes_received");
    let body = 4 * MIB as u64;
    assert!((body..body + 1000).contains(&received), "{stats}");
    assert!(stats["rtt_ms"].as_f64().is_some(), "{stats}");
    let close = events
        .iter()
        .rev()
        .find(|e| e["ev"] == "close")
        .expect("close");
    assert_eq!(close["stats"]["bytes_received"], stats["bytes_received"]);

    let (out, inbound) = capture_view(&events, 1);
    let server = SERVER_IP.to_string();
    let retrans = tshark_sources(
        &pcap,
        "tcp.analysis.retransmission || tcp.analysis.fast_retransmission || \
         tcp.analysis.spurious_retransmission || tcp.analysis.out_of_order",
    );
    let (theirs, ours): (Vec<_>, Vec<_>) = retrans.into_iter().partition(|(src, _)| *src == server);
    let theirs: Vec<u64> = theirs.into_iter().map(|(_, seq)| seq).collect();
    let ours: Vec<u64> = ours.into_iter().map(|(_, seq)| seq).collect();
    let drops_in = events
        .iter()
        .filter(|e| e["ev"] == "impair" && e["dir"] == "in" && e["len"].as_u64() > Some(0))
        .count();
    assert!(
        drops_in >= 20,
        "2% of ~2900 segments: only {drops_in} dropped"
    );
    assert_eq!(
        retransmissions(&inbound),
        theirs,
        "the server's retransmissions: trace (left) and tshark (right) disagree"
    );
    assert_eq!(
        retransmissions(&out),
        ours,
        "our retransmissions: trace (left) and tshark (right) disagree"
    );
    assert!(
        theirs.len() >= drops_in,
        "every injected drop is retransmitted"
    );

    let dup_acks = tshark_sources(&pcap, "tcp.analysis.duplicate_ack");
    let (dup_theirs, dup_ours): (Vec<_>, Vec<_>) =
        dup_acks.into_iter().partition(|(src, _)| *src == server);
    assert_eq!(duplicate_acks(&out), dup_ours.len(), "our duplicate ACKs");
    assert_eq!(
        duplicate_acks(&inbound),
        dup_theirs.len(),
        "the server's duplicate ACKs"
    );
    assert!(!dup_ours.is_empty(), "losses make us send duplicate ACKs");
    eprintln!(
        "[trace] {drops_in} injected drops in, {} server retransmissions, {} of ours, \
         {} duplicate ACKs from us, {} from the server: trace and tshark agree",
        theirs.len(),
        ours.len(),
        dup_ours.len(),
        dup_theirs.len()
    );
}

/// A trace file that cannot be created is one error line and exit status 1, like a capture
/// file's (the device is already open by then).
#[test]
fn an_uncreatable_trace_file_is_one_error_line() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("trc02");
    lab.serve_file("small.bin", 1000, 3);
    lab.start_python();
    let outcome = lab.fetch(&[
        "--trace",
        "/nonexistent-dir/t.jsonl",
        "-o",
        "small.bin",
        &server_url(PYTHON_PORT, "/small.bin"),
    ]);
    assert_exit(&outcome, 1);
    let lines = tunstack_lines(&outcome);
    assert_eq!(
        lines,
        ["cannot write /nonexistent-dir/t.jsonl: No such file or directory (os error 2)"],
        "{}",
        outcome.describe()
    );
}

/// The peer's port of connection `conn` (its `open` event).
fn remote_port(events: &[Value], conn: u64) -> String {
    let open = events
        .iter()
        .find(|e| e["ev"] == "open" && e["conn"] == conn)
        .expect("an open event");
    let remote = open["remote"].as_str().expect("remote");
    remote.rsplit(':').next().expect("a port").to_owned()
}

/// Compares the trace of connection `conn` with tshark's analysis of its stream in `pcap`:
/// retransmissions and duplicate ACKs, each direction. Returns (ours, theirs) retransmissions.
fn agree_with_tshark(events: &[Value], conn: u64, pcap: &Path, peer: &str) -> (usize, usize) {
    let (out, inbound) = capture_view(events, conn);
    let stream = format!("tcp.port == {} && ", remote_port(events, conn));
    let retrans = tshark_sources(
        pcap,
        &format!(
            "{stream}(tcp.analysis.retransmission || tcp.analysis.fast_retransmission || \
             tcp.analysis.spurious_retransmission || tcp.analysis.out_of_order)"
        ),
    );
    let split = |rows: Vec<(String, u64)>| -> (Vec<u64>, Vec<u64>) {
        let (theirs, ours): (Vec<_>, Vec<_>) = rows.into_iter().partition(|(src, _)| src == peer);
        (
            theirs.into_iter().map(|(_, seq)| seq).collect(),
            ours.into_iter().map(|(_, seq)| seq).collect(),
        )
    };
    let (theirs, ours) = split(retrans);
    assert_eq!(
        retransmissions(&out),
        ours,
        "ours: trace (left), tshark (right)"
    );
    assert_eq!(
        retransmissions(&inbound),
        theirs,
        "the peer's: trace (left), tshark (right)"
    );
    let (dup_theirs, dup_ours) = split(tshark_sources(
        pcap,
        &format!("{stream}tcp.analysis.duplicate_ack"),
    ));
    assert_eq!(duplicate_acks(&out), dup_ours.len(), "our duplicate ACKs");
    assert_eq!(
        duplicate_acks(&inbound),
        dup_theirs.len(),
        "the peer's duplicate ACKs"
    );
    (ours.len(), theirs.len())
}

/// The other direction: `tunstack serve --trace` sends a file to curl (the kernel's TCP) under
/// `--impair loss=2%`, so the retransmissions are ours, each labelled with its cause; those the
/// capture sees must be the ones tshark finds.
#[test]
fn lossy_upload_from_serve_agrees_with_tshark() {
    if !can_run() {
        return;
    }
    let lab = Lab::new("trc03");
    let want = lab.serve_file("up.bin", 4 * MIB, 16);
    let trace = lab.scratch_dir().join("serve.jsonl");
    let pcap = lab.scratch_dir().join("serve.pcap");
    let serve = lab.spawn_serve(&[
        "-q",
        "--impair",
        "loss=2%",
        "--seed",
        "16",
        "--no-offload",
        "--pcap",
        pcap.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
    ]);
    // curl retries the connection until the server listens (at most 5 s), then downloads.
    let saved = lab.out_dir().join("up.bin");
    let curl = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.server_ns(),
            "curl",
            "-sS",
            "--max-time",
            "50",
        ])
        .args(["--retry", "25", "--retry-connrefused", "--retry-delay", "0"])
        .args(["--retry-max-time", "5", "-o", saved.to_str().unwrap()])
        .arg(format!("http://{STACK_IP}/up.bin"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn curl");
    let fetched = Running::new(curl).finish(Duration::from_secs(60));
    serve.signal(libc::SIGTERM);
    let served = serve.finish(Duration::from_secs(20));
    assert_exit(&fetched, 0);
    assert_exit(&served, 0);
    assert_eq!(sha256_of_file(&saved), want);

    let events = read_trace(&trace);
    assert_eq!(events[0]["cmd"], "serve", "{}", events[0]);
    // The connection that carried the file: the one whose close says it sent the most.
    let conn = events
        .iter()
        .filter(|e| e["ev"] == "close")
        .max_by_key(|e| e["stats"]["bytes_sent"].as_u64())
        .and_then(|e| e["conn"].as_u64())
        .expect("a closed connection");
    let labelled = events
        .iter()
        .filter(|e| e["conn"] == conn && e["ev"] == "seg" && !e["rexmit"].is_null())
        .count();
    let (ours, _) = agree_with_tshark(&events, conn, &pcap, &SERVER_IP.to_string());
    assert!(
        labelled >= 20,
        "2% of ~2900 segments: only {labelled} retransmitted"
    );
    assert!(ours > 0, "the capture shows our retransmissions");
    eprintln!("[trace] serve: {labelled} retransmissions labelled in the trace, {ours} seen by tshark: they agree");
}
