//! End-to-end tests of a slow output (issue 12): a reader of standard output or a FIFO that
//! takes its time must close the TCP window we advertise, never make the stack drop what that
//! window invited, and never hold up another download.
//!
//! The slow reader is a small python process reading 64 KiB every 50 ms (about 1.3 MB/s) into
//! a file, so the test can see how far it got. Every wait is bounded: the processes run under
//! the watchdog of tests/e2e/process.rs. They need root (`sudo just test`); without it they
//! print "skipped". Tools: nginx, python3, tshark.

// Shared with tests/e2e.rs: each test crate uses only part of it.
#[allow(dead_code)]
mod e2e {
    pub mod capture;
    pub mod files;
    pub mod lab;
    pub mod process;
}

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use e2e::capture::tshark_rows;
use e2e::files::{file_len, sha256_of_file, MIB};
use e2e::lab::{can_run, server_url, Lab, FETCH_LIMIT, NGINX_PORT, STACK_IP};
use e2e::process::{assert_fails_with_sole_line, Outcome, Running};

/// Reads its input (`-` for standard input, else a path) in pieces of at most CHUNK bytes with
/// a pause after each, appending them unbuffered to OUT, until end of file.
const SLOW_READER: &str = "\
import os, sys, time
source, out, chunk, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
fd = 0 if source == '-' else os.open(source, os.O_RDONLY)
with open(out, 'wb', buffering=0) as sink:
    while True:
        data = os.read(fd, chunk)
        if not data:
            break
        sink.write(data)
        time.sleep(pause)
";
/// Reads one piece from standard input, says "read" on its standard output, then holds the
/// pipe open without reading until it is killed: a consumer that stalled.
const STALLED_READER: &str = "\
import os, sys, time
os.read(0, 65536)
print('read', flush=True)
time.sleep(120)
";
const SLOW_CHUNK: &str = "65536";
const SLOW_PAUSE: &str = "0.05";

/// Starts the slow reader on `source`, writing what it read to `out`; its standard input is a
/// pipe when `source` is `-`.
fn slow_reader(source: &str, out: &Path) -> Child {
    Command::new("python3")
        .args(["-c", SLOW_READER, source, out.to_str().unwrap()])
        .args([SLOW_CHUNK, SLOW_PAUSE])
        .stdin(if source == "-" {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 must be installed")
}

/// tun0's queue towards the stack, in datagrams: room for every datagram our windows can
/// invite at once (two downloads, each window at most `recv_buffer_max`, 4 MiB, in segments of
/// at least 1448 bytes: 5794), where the default is 500.
///
/// With the default a drop measured the machine's load, not the stack: one 1 MiB window is 724
/// segments, so whenever the process was not scheduled for the ~5 ms the server needs to send
/// 500 of them, tun0 dropped datagrams the window rightly invited (seen with three CPU hogs on
/// two cores: 66 and 112 drops in 2 of 4 runs before the lazy receive ring, 25 and 284 in 2 of
/// 4 with it). With room for all of them, a drop means a sender was invited beyond what our
/// windows say we hold; a loop that stops reading while output is slow is caught by the window
/// closing (the pipe) and the other download finishing first (the FIFO).
const TUN0_QUEUE: u32 = 8192;

/// Gives tun0 room for every datagram our windows can invite ([`TUN0_QUEUE`]); the stack
/// attaches later and sizes its ring from this.
fn fit_tun0_queue_to_windows(lab: &Lab) {
    let status = Command::new("ip")
        .args(["netns", "exec", &lab.client_ns()])
        .args(["ip", "link", "set", "dev", "tun0", "txqueuelen"])
        .arg(TUN0_QUEUE.to_string())
        .status()
        .expect("run ip");
    assert!(status.success(), "ip link set tun0 txqueuelen failed");
}

/// Datagrams the kernel dropped on their way out through tun0 towards the stack: a full TUN
/// ring counts as the link's TX dropped (tun_net_xmit), and tun0's qdisc (pfifo_fast, 500
/// packets) counts its own drops; both are summed.
fn tun0_tx_dropped(lab: &Lab) -> u64 {
    lab.device_counter("tx_dropped") + tun0_qdisc_dropped(lab)
}

/// "dropped N" of every qdisc on tun0, as `tc -s qdisc` prints them.
fn tun0_qdisc_dropped(lab: &Lab) -> u64 {
    let output = Command::new("ip")
        .args(["netns", "exec", &lab.client_ns()])
        .args(["tc", "-s", "qdisc", "show", "dev", "tun0"])
        .output()
        .expect("run tc");
    assert!(output.status.success(), "tc -s qdisc show dev tun0 failed");
    let text = String::from_utf8_lossy(&output.stdout);
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .windows(2)
        .filter(|pair| pair[0] == "(dropped")
        .map(|pair| {
            let number = pair[1].trim_end_matches(',');
            number
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("qdisc stats:\n{text}"))
        })
        .sum()
}

/// The receive windows our segments advertised (scaled, as the server saw them), read with
/// tshark from the capture; and how many of them tshark calls a zero window.
fn advertised_windows(pcap: &Path) -> (Vec<u64>, usize) {
    let rows = tshark_rows(
        pcap,
        &["--disable-protocol", "http"],
        &format!("ip.src=={STACK_IP} && tcp.flags.syn==0"),
        &["tcp.window_size", "tcp.analysis.zero_window"],
    );
    let mut windows = Vec::new();
    let mut zero = 0;
    for row in &rows {
        let mut fields = row.iter();
        let window = fields.next().map(String::as_str).unwrap_or_default();
        windows.push(window.parse().unwrap_or_else(|_| panic!("row {row:?}")));
        if fields.next().is_some_and(|f| !f.is_empty()) {
            zero += 1;
        }
    }
    (windows, zero)
}

/// `-o -` into a pipe read at ~1.3 MB/s: the body arrives byte for byte, nothing that our own
/// window invited is dropped on tun0, and the window we advertise closes instead.
#[test]
fn slo_a_slow_pipe_closes_the_window_and_nothing_is_dropped() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("slopipe");
    let want = lab.serve_file("big.bin", 32 * MIB, 12);
    lab.start_nginx();
    let received = lab.scratch_dir().join("received.bin");
    let pcap = lab.scratch_dir().join("slopipe.pcap");
    fit_tun0_queue_to_windows(&lab);
    let dropped_before = tun0_tx_dropped(&lab);

    let mut reader = slow_reader("-", &received);
    let pipe = reader.stdin.take().unwrap();
    let reader = Running::new(reader);
    let fetch = lab.spawn_fetch_child(
        &[
            "-o",
            "-",
            "--pcap",
            pcap.to_str().unwrap(),
            &server_url(NGINX_PORT, "/big.bin"),
        ],
        Stdio::from(pipe),
    );
    let outcome = Running::new(fetch).finish(FETCH_LIMIT);
    let read = reader.finish(FETCH_LIMIT);
    assert_eq!(outcome.code(), Some(0), "{}", outcome.describe());
    assert_eq!(read.code(), Some(0), "{}", read.describe());

    let dropped = tun0_tx_dropped(&lab) - dropped_before;
    let (windows, zero_windows) = advertised_windows(&pcap);
    let largest = windows.iter().copied().max().unwrap_or_default();
    let smallest = windows.iter().copied().min().unwrap_or_default();
    eprintln!(
        "slow pipe: {} in {:.1?}; tun0 TX dropped {dropped}; our window {smallest}..{largest} \
         bytes, {zero_windows} zero-window segments of {}",
        outcome.stderr.lines().last().unwrap_or_default(),
        outcome.elapsed,
        windows.len()
    );
    assert_eq!(
        sha256_of_file(&received),
        want,
        "the pipe got the body intact"
    );
    assert_eq!(
        dropped, 0,
        "tun0 dropped {dropped} datagrams though its queue holds all our window invites"
    );
    assert!(
        largest >= 256 << 10,
        "the window opened wide at first: {largest}"
    );
    assert!(
        smallest < 64 << 10,
        "the unread body must close the window (smallest advertised {smallest} of {largest})"
    );
}

/// Two downloads at once, one into a FIFO read at ~1.3 MB/s: the other one is not held up by
/// it and finishes while the slow one has most of its way still to go.
#[test]
fn slo_a_slow_fifo_does_not_hold_up_another_download() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("slofifo");
    let slow_len = 16 * MIB;
    let want_slow = lab.serve_file("slow.bin", slow_len, 21);
    let want_fast = lab.serve_file("fast.bin", 32 * MIB, 22);
    lab.start_nginx();
    // Saved under the URL's name: an existing FIFO is written in place.
    let fifo = lab.out_dir().join("slow.bin");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success(), "mkfifo failed");
    let received = lab.scratch_dir().join("received.bin");
    let reader = Running::new(slow_reader(fifo.to_str().unwrap(), &received));
    fit_tun0_queue_to_windows(&lab);
    let dropped_before = tun0_tx_dropped(&lab);

    let mut fetch = lab.spawn_fetch_child(
        &[
            "--parallel",
            "2",
            &server_url(NGINX_PORT, "/slow.bin"),
            &server_url(NGINX_PORT, "/fast.bin"),
        ],
        Stdio::null(),
    );
    let stderr = fetch.stderr.take().unwrap();
    let running = Running::new(fetch);
    let (lines_tx, lines) = mpsc::channel();
    let collector = thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            all.push_str(&line);
            all.push('\n');
            let _ = lines_tx.send(line);
        }
        all
    });
    // Wait (bounded) for the fast download's summary, then see how far the slow reader got.
    let mut slow_read_then = None;
    while let Ok(line) = lines.recv_timeout(FETCH_LIMIT) {
        if line.contains("tunstack: saved ") && line.contains("fast.bin") {
            slow_read_then = Some(file_len(&received));
            break;
        }
        if line.contains("tunstack: saved ") && line.contains("slow.bin") {
            break;
        }
    }
    let outcome: Outcome = running.finish(FETCH_LIMIT);
    let stderr = collector.join().unwrap();
    let read = reader.finish(FETCH_LIMIT);
    assert_eq!(outcome.code(), Some(0), "{}\n{stderr}", outcome.describe());
    assert_eq!(read.code(), Some(0), "{}", read.describe());
    let slow_read_then = slow_read_then
        .unwrap_or_else(|| panic!("the fast download must finish before the slow one:\n{stderr}"));
    let dropped = tun0_tx_dropped(&lab) - dropped_before;
    eprintln!(
        "slow FIFO: the slow reader had {slow_read_then} of {slow_len} bytes when fast.bin \
         was saved; all done in {:.1?}; tun0 TX dropped {dropped}",
        outcome.elapsed
    );
    assert!(
        slow_read_then < (slow_len / 4) as u64,
        "fast.bin waited for the slow FIFO: {slow_read_then} of {slow_len} bytes were read \
         by then\n{stderr}"
    );
    assert_eq!(sha256_of_file(&lab.out_dir().join("fast.bin")), want_fast);
    assert_eq!(
        dropped, 0,
        "tun0 dropped {dropped} datagrams though its queue holds all our windows invite"
    );
    assert_eq!(sha256_of_file(&received), want_slow);
    // The FIFO is still a FIFO, and no temporary file was left next to it.
    let mut names: Vec<String> = fs::read_dir(lab.out_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["fast.bin", "slow.bin"]);
}

/// A full disk (here /dev/full, written in place as a device) ends the download with one line
/// naming the output, and status 1.
#[test]
fn slo_a_full_device_fails_with_one_line() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("slofull");
    lab.serve_file("four.bin", 4 * MIB, 31);
    lab.start_nginx();
    let fetch = lab.spawn_fetch_child(
        &["-o", "/dev/full", &server_url(NGINX_PORT, "/four.bin")],
        Stdio::piped(),
    );
    let outcome = Running::new(fetch).finish(FETCH_LIMIT);
    assert_fails_with_sole_line(
        &outcome,
        1,
        "cannot write /dev/full: No space left on device (os error 28)",
    );
}

/// Ctrl-C while the output is a pipe nobody reads any more: the writer is stuck in write(2),
/// the loop is not, so tunstack still stops at once with status 130.
#[test]
fn slo_ctrl_c_with_a_stalled_pipe_still_stops() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("slostall");
    lab.serve_file("big.bin", 16 * MIB, 41);
    lab.start_nginx();
    let mut reader = Command::new("python3")
        .args(["-c", STALLED_READER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 must be installed");
    let pipe = reader.stdin.take().unwrap();
    let said = reader.stdout.take().unwrap();
    let reader = Running::new(reader);
    let fetch = Running::new(lab.spawn_fetch_child(
        &["-o", "-", &server_url(NGINX_PORT, "/big.bin")],
        Stdio::from(pipe),
    ));
    // Wait (bounded by the fetch's own watchdog below) until the body is flowing and the reader
    // has stopped reading.
    let (read_tx, read_rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(said).read_line(&mut line);
        let _ = read_tx.send(line);
    });
    let line = read_rx
        .recv_timeout(FETCH_LIMIT)
        .expect("the reader got data");
    assert_eq!(line.trim(), "read");
    fetch.signal(libc::SIGINT);
    let outcome = fetch.finish(Duration::from_secs(10));
    drop(reader);
    assert_eq!(outcome.code(), Some(130), "{}", outcome.describe());
    assert!(
        outcome.stderr.contains("tunstack: interrupted"),
        "{}",
        outcome.describe()
    );
}
