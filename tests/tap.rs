//! End-to-end tests of TAP mode: the real `tunstack` binary on a real TAP device attached to a
//! bridge, whose other port is a veth into the server namespace, so the server's kernel is the
//! stack's Ethernet neighbour and gateway (`setup/sandbox up-tap`, tests/e2e/lab.rs). Each test
//! creates its own namespaces (named `tapNN-*` or `tqNN-*`) and always removes them.
//!
//! They need root; without it they print "skipped" and pass.

#[allow(dead_code)] // the lab has helpers these tests do not use
mod e2e {
    pub mod capture;
    pub mod files;
    pub mod lab;
    pub mod process;
    pub mod summary;
}

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e::capture::tshark_rows;
use e2e::files::{assert_dir_holds, sha256_of_file, MIB};
use e2e::lab::{
    can_run, server_url, tcp_ext_counter, tunstack_bin, Lab, NGINX_PORT, SERVER_IP, STACK_IP,
};
use e2e::process::{assert_exit, assert_fails_with_sole_line, python, sole_error_line, Running};
use e2e::summary::Summary;
use tunstack::ethernet::MacAddr;

/// The MAC tunstack takes on tap0 as 10.77.0.2 when `--mac` is not given.
fn our_mac() -> MacAddr {
    MacAddr::derive("tap0", STACK_IP)
}

/// `tshark -r FILE -Y FILTER` with the given fields, a row per packet.
fn tshark_fields(capture: &Path, filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
    tshark_rows(capture, &[], filter, fields)
}

/// The server namespace's neighbour entry for our address, as `ip neigh` prints it.
fn server_neighbour_entry(lab: &Lab) -> String {
    let output = Command::new("ip")
        .args([
            "-n",
            &lab.server_ns(),
            "neigh",
            "show",
            &STACK_IP.to_string(),
        ])
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap()
}

/// Sends `count` ICMP echo requests from the server namespace to 10.77.0.2 (no `ping` binary is
/// needed: a raw socket in python), each waited for at most 1 s; returns how many echo replies
/// with our identifier and sequence number came back. `ping_replies` falls back on it.
fn echo_replies(lab: &Lab, count: u32) -> u32 {
    let script = r#"
import socket, struct, sys, time
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
replies = 0
for seq in range(int(sys.argv[2])):
    body = b'tunstack tap echo'
    head = struct.pack('!BBHHH', 8, 0, 0, 0x7a7a, seq)
    packet = head[:2] + struct.pack('!H', csum(head + body)) + head[4:] + body
    sock.sendto(packet, (sys.argv[1], 0))
    deadline = time.time() + 1.0
    while time.time() < deadline:
        sock.settimeout(max(deadline - time.time(), 0.01))
        try:
            data, addr = sock.recvfrom(2048)
        except socket.timeout:
            break
        ihl = (data[0] & 15) * 4
        kind, _, _, ident, got = struct.unpack('!BBHHH', data[ihl:ihl + 8])
        if addr[0] == sys.argv[1] and kind == 0 and ident == 0x7a7a and got == seq:
            if data[ihl + 8:] == body and csum(data[ihl:]) == 0:
                replies += 1
            break
print(replies)
"#;
    let output = Command::new("ip")
        .args(["netns", "exec", &lab.server_ns(), python(), "-c", script])
        .args([STACK_IP.to_string(), count.to_string()])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "echo script failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Pings 10.77.0.2 `count` times from the server namespace with the real `ping` binary
/// (iputils, `setup/bootstrap` installs it) and returns how many replies its summary line
/// ("N packets transmitted, M received, ...") counts. Without `ping`, a CI run (`CI` set and
/// non-empty) fails; elsewhere the python raw-socket sender `echo_replies` stands in.
fn ping_replies(lab: &Lab, count: u32) -> u32 {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty());
    if Command::new("ping")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        assert!(
            !ci,
            "no `ping` binary on PATH: CI must test with the real one (setup/bootstrap installs iputils-ping)"
        );
        eprintln!("no `ping` binary on PATH: a python raw socket sends the echo requests instead");
        return echo_replies(lab, count);
    }
    // -n: no reverse lookups; -W 1: each reply waited for at most 1 s; -i 0.2: 5 a second.
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.server_ns(),
            "ping",
            "-n",
            "-W",
            "1",
            "-i",
            "0.2",
        ])
        .args(["-c", &count.to_string(), &STACK_IP.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let outcome = Running::new(child).finish(Duration::from_secs(10));
    let stdout = String::from_utf8_lossy(&outcome.stdout).into_owned();
    let (sent, received) = stdout
        .lines()
        .find_map(|line| {
            let (sent, rest) = line.split_once(" packets transmitted, ")?;
            let (received, _) = rest.split_once(" received")?;
            Some((sent.parse::<u32>().ok()?, received.parse::<u32>().ok()?))
        })
        .unwrap_or_else(|| panic!("no ping summary line\n{}", outcome.describe()));
    assert_eq!(sent, count, "ping sent {sent}, not {count}\n{stdout}");
    received
}

/// 1 MiB and 64 MiB from nginx, byte-exact, through tap0 and the bridge; the capture shows the
/// gateway resolved by ARP (RFC 826: our broadcast request, its unicast reply) before the
/// first TCP segment left, and the server kernel learned our MAC from our request.
#[test]
fn rfc826_fetch_from_nginx_over_tap_resolves_the_gateway_and_is_byte_exact() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new_tap("tap01");
    let small = lab.serve_file("one.bin", MIB, 11);
    let big = lab.serve_file("big.bin", 64 * MIB, 12);
    lab.start_nginx();

    let capture = lab.out_dir().join("..").join("tap01.pcap");
    let trace = lab.out_dir().join("..").join("tap01.jsonl");
    let outcome = lab.fetch(&[
        "--pcap",
        capture.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
        "-o",
        "one.bin",
        &server_url(NGINX_PORT, "/one.bin"),
    ]);
    assert_exit(&outcome, 0);
    assert_eq!(sha256_of_file(&lab.out_dir().join("one.bin")), small);

    let mac = our_mac().to_string();
    let requests = tshark_fields(
        &capture,
        "arp.opcode == 1 && arp.dst.proto_ipv4 == 10.77.0.1",
        &["eth.src", "eth.dst", "arp.src.hw_mac", "arp.src.proto_ipv4"],
    );
    let stack_ip = STACK_IP.to_string();
    let broadcast = [
        mac.as_str(),
        "ff:ff:ff:ff:ff:ff",
        mac.as_str(),
        stack_ip.as_str(),
    ];
    assert!(
        requests.iter().any(|row| *row == broadcast),
        "no broadcast ARP request for the gateway from {mac}: {requests:?}"
    );
    let replies = tshark_fields(
        &capture,
        "arp.opcode == 2 && arp.src.proto_ipv4 == 10.77.0.1",
        &[
            "frame.number",
            "eth.dst",
            "arp.dst.hw_mac",
            "arp.src.hw_mac",
        ],
    );
    let reply = replies.first().expect("the gateway's reply");
    assert_eq!(&reply[1..3], [mac.as_str(), mac.as_str()], "a reply to us");
    let gateway_mac = &reply[3];
    let reply_frame: u64 = reply[0].parse().unwrap();
    // The SYN waited for the reply, and every TCP frame of ours goes to the gateway's MAC.
    let tcp_from_us = tshark_fields(
        &capture,
        &format!("tcp && ip.src == {STACK_IP}"),
        &["frame.number", "eth.dst"],
    );
    assert!(!tcp_from_us.is_empty());
    for row in &tcp_from_us {
        let (number, dst) = (&row[0], &row[1]);
        assert!(
            number.parse::<u64>().unwrap() > reply_frame,
            "{row:?} before the reply"
        );
        assert_eq!(dst, gateway_mac, "{row:?}");
    }
    let linktype = tshark_fields(&capture, "frame.number == 1", &["frame.protocols"]);
    assert!(linktype[0][0].starts_with("eth:"), "{linktype:?}");

    // The trace names the same resolution: our request for the gateway, then its reply.
    let arp = arp_events(&trace);
    let request = arp
        .iter()
        .position(|l| l.contains(r#""dir":"out","what":"request","ip":"10.77.0.1""#));
    let reply = arp
        .iter()
        .position(|l| l.contains(r#""dir":"in","what":"reply","ip":"10.77.0.1""#));
    assert!(
        matches!((request, reply), (Some(q), Some(r)) if q < r),
        "no request then reply for 10.77.0.1 in the trace's ARP events: {arp:?}"
    );

    let neighbour = server_neighbour_entry(&lab);
    assert!(
        neighbour.contains(&format!("lladdr {mac}")),
        "the server kernel's ARP cache has no entry for 10.77.0.2 at {mac}: {neighbour:?}"
    );

    let outcome = lab.fetch(&["-q", "-o", "big.bin", &server_url(NGINX_PORT, "/big.bin")]);
    assert_exit(&outcome, 0);
    assert_dir_holds(&lab.out_dir(), &["big.bin", "one.bin"]);
    assert_eq!(sha256_of_file(&lab.out_dir().join("big.bin")), big);
}

/// RFC 1122 §2.3.2.2 / §2.3.2.1: a gateway nobody owns never answers; after the bounded
/// retries (3 requests, 1 s apart) the connection fails with a clear one-line error, well
/// within `--timeout`, and no file (partial or not) is left.
#[test]
fn rfc1122_2_3_2_2_a_gateway_that_never_answers_arp_fails_clearly_and_leaves_no_file() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new_tap("tap02");
    lab.serve_file("one.bin", MIB, 21);
    lab.start_nginx();

    let trace = lab.out_dir().join("..").join("tap02.jsonl");
    let started = Instant::now();
    let outcome = lab.fetch(&[
        "--trace",
        trace.to_str().unwrap(),
        "--gateway",
        "10.77.0.99",
        "--timeout",
        "20s",
        "-o",
        "one.bin",
        &server_url(NGINX_PORT, "/one.bin"),
    ]);
    let elapsed = started.elapsed();
    assert_fails_with_sole_line(
        &outcome,
        1,
        &format!("connection to {SERVER_IP}:{NGINX_PORT} failed: no ARP reply from 10.77.0.99"),
    );
    assert!(
        elapsed < Duration::from_secs(10),
        "took {elapsed:?}, the timeout was 20 s and ARP gives up after 3 s"
    );
    assert_dir_holds(&lab.out_dir(), &[]);
    let arp = arp_events(&trace);
    let requests = arp
        .iter()
        .filter(|l| l.contains(r#""what":"request","ip":"10.77.0.99""#))
        .count();
    assert_eq!(requests, 3, "three requests for 10.77.0.99: {arp:?}");
    assert!(
        arp.iter()
            .any(|l| l.contains(r#""what":"unreachable","ip":"10.77.0.99""#)),
        "the give-up is in the trace: {arp:?}"
    );
}

/// The `arp` lines of a `--trace` file.
fn arp_events(trace: &Path) -> Vec<String> {
    trace_events(trace, "arp")
}

/// RFC 826 from the other side: `tunstack serve` in TAP mode is a host on the segment. The
/// server namespace's kernel resolves 10.77.0.2 (we answer its request), learns our MAC, gets
/// an ICMP echo reply (RFC 792) from the stack for each of `ping`'s five requests, and
/// downloads a file from it.
#[test]
fn rfc826_the_server_kernel_resolves_us_pings_us_and_downloads_from_tunstack_serve() {
    if !can_run() {
        return;
    }
    let lab = Lab::new_tap("tap03");
    let want = lab.serve_file("served.bin", MIB, 31);
    let serve = start_serve(&lab, &[]);

    assert_eq!(ping_replies(&lab, 5), 5, "echo replies from the stack");
    let neighbour = server_neighbour_entry(&lab);
    assert!(
        neighbour.contains(&format!("lladdr {}", our_mac())),
        "{neighbour:?}"
    );

    let saved = lab.out_dir().join("from-serve.bin");
    curl_from_serve(&lab, "served.bin", &saved);
    assert_eq!(sha256_of_file(&saved), want);

    serve.signal(libc::SIGTERM);
    let outcome = serve.finish(Duration::from_secs(10));
    assert_exit(&outcome, 0);
    let _ = fs::remove_file(saved);
}

/// `tunstack serve -q` in TAP mode with `extra` options, serving the lab's served directory
/// from the client namespace; returns once the server namespace's kernel can connect to it
/// (ARP, then TCP), waiting at most 10 s.
fn start_serve(lab: &Lab, extra: &[&str]) -> Running {
    let serve = lab.spawn_serve(&[&["-q"], extra].concat());
    lab.wait_until_serving(&serve, Duration::from_secs(10));
    serve
}

/// curl in the server namespace downloads `/name` from `tunstack serve` at 10.77.0.2 into
/// `saved` (at most 20 s).
fn curl_from_serve(lab: &Lab, name: &str, saved: &Path) {
    let curl = Command::new("ip")
        .args(["netns", "exec", &lab.server_ns()])
        .args(["curl", "-sS", "--max-time", "20", "-o"])
        .arg(saved)
        .arg(format!("http://{STACK_IP}/{name}"))
        .output()
        .unwrap();
    assert!(
        curl.status.success(),
        "{}",
        String::from_utf8_lossy(&curl.stderr)
    );
}

/// The lines of a `--trace` file whose event is `ev` (e.g. "impair", "close").
fn trace_events(trace: &Path, ev: &str) -> Vec<String> {
    let tag = format!(r#""ev":"{ev}""#);
    fs::read_to_string(trace)
        .unwrap_or_else(|e| panic!("read {}: {e}", trace.display()))
        .lines()
        .filter(|l| l.contains(&tag))
        .map(str::to_owned)
        .collect()
}

/// How many `impair` events of the trace held a datagram back for reordering in direction
/// `dir` ("in": towards the stack, "out": away from it).
fn reorders(impairs: &[String], dir: &str) -> usize {
    let tag = format!(r#""dir":"{dir}","action":"reorder""#);
    impairs.iter().filter(|l| l.contains(&tag)).count()
}

/// Reordering both ways over TAP (`--impair reorder=10%`, which acts on the IPv4 datagrams
/// above the link): a 16 MiB download from nginx completes byte-exact. The reordering really
/// happened: the trace shows datagrams held back in each direction, and the summary line
/// counts the data segments that reached the stack out of order.
#[test]
fn reordering_each_way_over_tap_is_byte_exact() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new_tap("tq01");
    let want = lab.serve_file("reordered.bin", 16 * MIB, 141);
    lab.start_nginx();

    let trace = lab.scratch_dir().join("tq01.jsonl");
    let outcome = lab.fetch(&[
        "--impair",
        "reorder=10%",
        "--seed",
        "141",
        "--trace",
        trace.to_str().unwrap(),
        "-o",
        "reordered.bin",
        &server_url(NGINX_PORT, "/reordered.bin"),
    ]);
    assert_exit(&outcome, 0);
    assert_dir_holds(&lab.out_dir(), &["reordered.bin"]);
    assert_eq!(sha256_of_file(&lab.out_dir().join("reordered.bin")), want);

    let summary = Summary::find(&outcome.stderr)
        .unwrap_or_else(|| panic!("no summary line\n{}", outcome.describe()));
    assert_eq!(summary.bytes, 16 * MIB as u64);
    let impairs = trace_events(&trace, "impair");
    let (inbound, outbound) = (reorders(&impairs, "in"), reorders(&impairs, "out"));
    // About one datagram in ten each way: 16 MiB is ~11600 data segments in.
    assert!(
        inbound > 500 && outbound > 50,
        "{inbound} datagrams reordered towards the stack, {outbound} away from it"
    );
    assert!(
        summary.out_of_order_in > 0,
        "{inbound} datagrams were held back, yet no segment arrived out of order\n{}",
        outcome.describe()
    );
    eprintln!(
        "tq01: reordered {inbound} in, {outbound} out; {:?}; {:.2} s",
        summary,
        outcome.elapsed.as_secs_f64()
    );
}

/// Reordering of what the stack sends (`tunstack serve --tap --impair-out reorder=10%`): curl
/// in the server namespace downloads 16 MiB byte-exact. The server kernel queued segments out
/// of order (its TcpExt TCPOFOQueue grew), the trace shows the datagrams held back, and the
/// server's D-SACKs (RFC 2883) told our sender that segments it resent had arrived after all:
/// with no loss configured, only reordering makes a retransmission a duplicate.
#[test]
fn reordering_of_what_tunstack_serve_sends_over_tap_is_byte_exact() {
    if !can_run() {
        return;
    }
    let lab = Lab::new_tap("tq02");
    let want = lab.serve_file("reordered.bin", 16 * MIB, 142);
    let trace = lab.scratch_dir().join("tq02.jsonl");
    let serve = start_serve(
        &lab,
        &[
            "--impair-out",
            "reorder=10%",
            "--seed",
            "142",
            "--trace",
            trace.to_str().unwrap(),
        ],
    );

    let ofo_before = tcp_ext_counter(&lab.server_ns(), "TCPOFOQueue");
    let saved = lab.out_dir().join("reordered.bin");
    curl_from_serve(&lab, "reordered.bin", &saved);
    let ofo = tcp_ext_counter(&lab.server_ns(), "TCPOFOQueue") - ofo_before;
    assert_eq!(sha256_of_file(&saved), want);

    serve.signal(libc::SIGTERM);
    let outcome = serve.finish(Duration::from_secs(10));
    assert_exit(&outcome, 0);

    let impairs = trace_events(&trace, "impair");
    let (inbound, outbound) = (reorders(&impairs, "in"), reorders(&impairs, "out"));
    assert_eq!(inbound, 0, "--impair-out left what reaches the stack alone");
    assert!(
        outbound > 500,
        "only {outbound} datagrams from the stack were reordered"
    );
    assert!(
        ofo > 0,
        "{outbound} datagrams were held back, yet the server kernel queued none out of order"
    );
    // The download's connection (the readiness probes' connections closed with no data).
    let closes = trace_events(&trace, "close");
    let download = closes
        .iter()
        .find(|l| !l.contains(r#""bytes_sent":0,"#))
        .unwrap_or_else(|| panic!("no close event of the download: {closes:?}"));
    let dsacks: u64 = download
        .split_once(r#""dsack_in":"#)
        .and_then(|(_, rest)| rest.split_once(',')?.0.parse().ok())
        .unwrap_or_else(|| panic!("no dsack_in in {download}"));
    assert!(dsacks > 0, "no D-SACK reached the sender: {download}");
    eprintln!("tq02: reordered {outbound} out; server OFO-queued {ofo}; {download}");
}

/// Loss on the IPv4 datagrams above the link (as `--impair` does in TUN mode): the transfer
/// recovers and is byte-exact; ARP itself is not impaired.
#[test]
fn five_percent_loss_each_way_over_tap_is_recovered() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new_tap("tap04");
    let want = lab.serve_file("lossy.bin", 8 * MIB, 41);
    lab.start_nginx();

    let outcome = lab.fetch(&[
        "--impair",
        "loss=5%",
        "--seed",
        "7",
        "-q",
        "-o",
        "lossy.bin",
        &server_url(NGINX_PORT, "/lossy.bin"),
    ]);
    assert_exit(&outcome, 0);
    assert_eq!(sha256_of_file(&lab.out_dir().join("lossy.bin")), want);
}

/// A 512 MiB download over TAP with the offloads on: the super-segments the kernel hands over
/// and the ones we send carry one Ethernet header each; every byte arrives.
#[test]
fn nginx_512mib_over_tap_is_byte_exact() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new_tap("tap05");
    let want = lab.serve_file("huge.bin", 512 * MIB, 51);
    lab.start_nginx();

    let outcome = lab.fetch(&["-q", "-o", "huge.bin", &server_url(NGINX_PORT, "/huge.bin")]);
    assert_exit(&outcome, 0);
    assert_eq!(sha256_of_file(&lab.out_dir().join("huge.bin")), want);
}

/// Bad TAP options are usage errors (status 2, one line) found before any device is opened;
/// a TAP interface that does not exist says how to create one. Needs no root.
#[test]
fn bad_tap_options_are_one_line_usage_errors() {
    let run = |args: &[&str]| {
        let child = Command::new(tunstack_bin())
            .arg("fetch")
            .args(args)
            .arg(format!("http://{SERVER_IP}/x"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Running::new(child).finish(Duration::from_secs(10))
    };
    let gateway = run(&["--iface", "tapnope0", "--tap", "--gateway", "10.77.5.1"]);
    assert_fails_with_sole_line(
        &gateway,
        2,
        "--gateway 10.77.5.1 is not a host on the local subnet 10.77.0.2/24 (give --local-ip ADDR/LEN)",
    );
    let tun_gateway = run(&["--iface", "tapnope0", "--gateway", "10.77.0.1"]);
    assert_exit(&tun_gateway, 2);
    assert!(sole_error_line(&tun_gateway).contains("need --mode tap"));
    for args in [
        &["--mode", "bogus"][..],
        &["--tap", "--mac", "zz:11"],
        &["--tap", "--local-ip", "10.77.0.2/40"],
    ] {
        let outcome = run(args);
        assert_exit(&outcome, 2);
        assert!(
            outcome.stderr.contains("invalid value"),
            "{args:?}: {}",
            outcome.describe()
        );
    }
    let missing = run(&["--iface", "tapnope0", "--tap"]);
    assert_fails_with_sole_line(
        &missing,
        1,
        "interface tapnope0 does not exist: run `sudo setup/up --tap` first (or give --iface)",
    );
}
