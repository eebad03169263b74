//! End-to-end tests of the options a curl or wget user reaches for: `-H`, `-A`, `-I`, `-u`,
//! `--retry`, `--compressed` and `--limit-rate`, each against a real server in a sandbox
//! (tests/e2e/lab.rs), with the server's view of the request (tests/servers/odd_server.py's
//! `/echo`) or of the traffic (tcpdump on the server's side of the veth) as the judge.
//!
//! They need root (`sudo just test`); without it they print "skipped". Every wait is bounded.
//! Tools: nginx, python3, tcpdump, tshark.

// Shared with the other end-to-end test files: each uses only part of it.
#[allow(dead_code)]
mod e2e {
    pub mod capture;
    pub mod files;
    pub mod lab;
    pub mod process;
    pub mod tls;
}

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use e2e::capture::tshark_rows;
use e2e::files::{assert_dir_holds, file_len, seeded_bytes, sha256_hex, sha256_of_file, MIB};
use e2e::lab::{
    can_run, resolve_to_server, server_url, tcp_counter, Lab, CLOSED_PORT, NGINX_PORT, ODD_PORT,
    SERVER_IP,
};
use e2e::process::{assert_exit, tunstack_lines, Running};
use e2e::tls::{Pki, CERT_HOST};

/// The request head the odd server echoed into `name`, as text.
fn echoed(lab: &Lab, name: &str) -> String {
    let bytes =
        fs::read(lab.out_dir().join(name)).unwrap_or_else(|e| panic!("{name} was not saved: {e}"));
    String::from_utf8(bytes).expect("the echoed head is text")
}

/// The header fields of an echoed request head as (name, value) pairs, in order.
fn fields(head: &str) -> Vec<(String, String)> {
    head.split("\r\n")
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (name, value) = l.split_once(':').expect("a header field");
            (name.to_owned(), value.trim().to_owned())
        })
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn header_options_replace_remove_and_add_fields() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("opthdr1");
    lab.start_odd();
    let outcome = lab.fetch(&[
        "-A",
        "probe/1.0",
        "-H",
        "accept: text/plain",
        "-H",
        "Connection:",
        "-H",
        "X-Extra: yes, really",
        "-o",
        "edited.txt",
        &server_url(ODD_PORT, "/echo"),
    ]);
    assert_exit(&outcome, 0);
    let head = echoed(&lab, "edited.txt");
    let got = fields(&head);
    assert!(head.starts_with("GET /echo HTTP/1.1\r\n"), "{head}");
    assert_eq!(field(&got, "User-Agent"), ["probe/1.0"], "{head}");
    // Replaced in place, under the user's spelling; the default */* is gone.
    assert_eq!(field(&got, "Accept"), ["text/plain"], "{head}");
    assert!(head.contains("\r\naccept: text/plain\r\n"), "{head}");
    assert!(field(&got, "Connection").is_empty(), "{head}");
    assert_eq!(field(&got, "X-Extra"), ["yes, really"], "{head}");
    assert_eq!(
        field(&got, "Host"),
        [format!("{SERVER_IP}:{ODD_PORT}")],
        "{head}"
    );

    // -H User-Agent wins over -A, and removing Host is the user's call.
    let outcome = lab.fetch(&[
        "-A",
        "probe/1.0",
        "-H",
        "User-Agent: header/2.0",
        "-o",
        "agent.txt",
        &server_url(ODD_PORT, "/echo"),
    ]);
    assert_exit(&outcome, 0);
    let got = fields(&echoed(&lab, "agent.txt"));
    assert_eq!(field(&got, "User-Agent"), ["header/2.0"]);
    lab.assert_no_client_rst();
}

#[test]
fn malformed_headers_are_usage_errors_before_any_network() {
    if !can_run() {
        return;
    }
    // No lab: a usage error must not need one. tun0 does not even exist in this namespace.
    let scratch = e2e::files::ScratchDir::new("optbad1");
    for bad in [
        &["-H", "Bad Name: x"][..],
        &["-H", "X-Split: a\r\nInjected: 1"],
        &["-H", "NoColonHere"],
        &["-H", ": empty name"],
        &["-A", "agent\nwith newline"],
        &["-u", "nopassword"],
        &["--limit-rate", "0"],
        &["--limit-rate", "5x"],
        &["--retry", "-1"],
        &["-I", "-c"],
        &["--compressed", "-c"],
    ] {
        let child = Command::new(e2e::lab::tunstack_bin())
            .args(["fetch", "--iface", "no-such-tun"])
            .args(bad)
            .arg(server_url(ODD_PORT, "/echo"))
            .current_dir(scratch.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let outcome = Running::new(child).finish(Duration::from_secs(10));
        assert_exit(&outcome, 2);
        assert!(
            !outcome.stderr.contains("no-such-tun"),
            "{bad:?} touched the device\n{}",
            outcome.describe()
        );
        assert_dir_holds(scratch.path(), &[]);
    }
}

#[test]
fn head_prints_the_response_head_and_saves_nothing() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("opthead1");
    lab.serve_file("h.bin", 12_345, 7);
    lab.start_nginx();
    let url = server_url(NGINX_PORT, "/h.bin");
    let outcome = lab.fetch(&["-I", &url]);
    assert_exit(&outcome, 0);
    let stdout = String::from_utf8(outcome.stdout.clone()).unwrap();
    assert!(stdout.starts_with("HTTP/1.1 200 OK\r\n"), "{stdout}");
    assert!(stdout.contains("\r\nContent-Length: 12345\r\n"), "{stdout}");
    assert!(stdout.ends_with("\r\n\r\n"), "{stdout}");
    assert_dir_holds(&lab.out_dir(), &[]);

    let missing = server_url(NGINX_PORT, "/missing.bin");
    let outcome = lab.fetch(&["-I", &missing]);
    assert_exit(&outcome, 1);
    let stdout = String::from_utf8(outcome.stdout.clone()).unwrap();
    assert!(stdout.starts_with("HTTP/1.1 404 Not Found\r\n"), "{stdout}");
    assert_eq!(tunstack_lines(&outcome), ["HTTP 404 Not Found"]);
    assert_dir_holds(&lab.out_dir(), &[]);
    lab.assert_no_client_rst();
}

#[test]
fn credentials_go_only_to_the_origin_they_were_given_for() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("optauth1");
    let sha = lab.serve_file("secret.bin", 100_000, 3);
    lab.start_odd();
    let outcome = lab.fetch(&[
        "-u",
        "alice:s3cret",
        &server_url(ODD_PORT, "/auth/secret.bin"),
    ]);
    assert_exit(&outcome, 0);
    assert_eq!(sha256_of_file(&lab.out_dir().join("secret.bin")), sha);

    let outcome = lab.fetch(&[
        "-u",
        "alice:wrong",
        "-o",
        "denied",
        &server_url(ODD_PORT, "/auth/secret.bin"),
    ]);
    assert_exit(&outcome, 1);
    assert_eq!(tunstack_lines(&outcome), ["HTTP 401 Unauthorized"]);

    // Two names for the one server: a redirect to the other name must not carry the password,
    // one to the same name must.
    let (resolve_a, resolve_b) = (
        resolve_to_server("hosta", ODD_PORT),
        resolve_to_server("hostb", ODD_PORT),
    );
    let resolve = ["--resolve", &resolve_a, "--resolve", &resolve_b];
    let mut args = resolve.to_vec();
    args.extend(["-u", "alice:s3cret", "-H", "Cookie: k=v", "-o", "cross.txt"]);
    args.push("http://hosta:8082/goto?http://hostb:8082/echo");
    assert_exit(&lab.fetch(&args), 0);
    let cross = echoed(&lab, "cross.txt");
    // Nor a cookie or authorization given with -H.
    assert!(field(&fields(&cross), "Cookie").is_empty(), "{cross}");
    assert!(cross.contains("\r\nHost: hostb:8082\r\n"), "{cross}");
    assert!(
        field(&fields(&cross), "Authorization").is_empty(),
        "{cross}"
    );

    let mut args = resolve.to_vec();
    args.extend(["-u", "alice:s3cret", "-H", "Cookie: k=v", "-o", "same.txt"]);
    args.push("http://hosta:8082/goto?/echo");
    assert_exit(&lab.fetch(&args), 0);
    let same = echoed(&lab, "same.txt");
    assert_eq!(field(&fields(&same), "Cookie"), ["k=v"], "{same}");
    // base64("alice:s3cret")
    assert_eq!(
        field(&fields(&same), "Authorization"),
        ["Basic YWxpY2U6czNjcmV0"],
        "{same}"
    );
    lab.assert_no_client_rst();
}

#[test]
fn retry_waits_as_the_server_asks_and_then_succeeds() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("optretry1");
    let sha = lab.serve_file("f.bin", 200_000, 5);
    lab.start_odd();
    // Two 503s with Retry-After: 2, then the file: two waits of 2 s (the backoff alone would
    // wait 1 s and 2 s).
    let outcome = lab.fetch(&[
        "--retry",
        "3",
        "-o",
        "after.bin",
        &server_url(ODD_PORT, "/flaky/f.bin?fails=2&key=after&after=2"),
    ]);
    assert_exit(&outcome, 0);
    assert_eq!(sha256_of_file(&lab.out_dir().join("after.bin")), sha);
    let notices: Vec<&str> = tunstack_lines(&outcome)
        .into_iter()
        .filter(|l| l.contains("retrying"))
        .collect();
    assert_eq!(
        notices,
        [
            "HTTP 503 Service Unavailable; retrying in 2s (2 retries left)",
            "HTTP 503 Service Unavailable; retrying in 2s (1 retry left)"
        ],
        "{}",
        outcome.describe()
    );
    assert!(
        outcome.elapsed >= Duration::from_millis(3900),
        "{:?}",
        outcome.elapsed
    );

    // Retry-After as an HTTP-date, two seconds after the response's Date.
    let outcome = lab.fetch(&[
        "--retry",
        "1",
        "-o",
        "date.bin",
        &server_url(ODD_PORT, "/flaky/f.bin?fails=1&key=date&after=%2B2"),
    ]);
    assert_exit(&outcome, 0);
    assert_eq!(sha256_of_file(&lab.out_dir().join("date.bin")), sha);
    assert_eq!(
        tunstack_lines(&outcome)[0],
        "HTTP 503 Service Unavailable; retrying in 2s (0 retries left)",
        "{}",
        outcome.describe()
    );
    assert!(
        outcome.elapsed >= Duration::from_millis(1900),
        "{:?}",
        outcome.elapsed
    );

    // Without Retry-After: 1 s, then 2 s.
    let outcome = lab.fetch(&[
        "--retry",
        "2",
        "-o",
        "backoff.bin",
        &server_url(ODD_PORT, "/flaky/f.bin?fails=2&key=backoff"),
    ]);
    assert_exit(&outcome, 0);
    assert_eq!(sha256_of_file(&lab.out_dir().join("backoff.bin")), sha);
    let waits: Vec<&str> = tunstack_lines(&outcome)
        .into_iter()
        .filter_map(|l| l.split_once("retrying in ").map(|(_, w)| w))
        .collect();
    assert_eq!(waits, ["1s (1 retry left)", "2s (0 retries left)"]);
    assert!(
        outcome.elapsed >= Duration::from_millis(2900),
        "{:?}",
        outcome.elapsed
    );
    lab.assert_no_client_rst();
}

#[test]
fn retry_gives_up_with_the_last_error_and_skips_permanent_ones() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("optretry2");
    lab.serve_file("f.bin", 10_000, 5);
    lab.start_odd();
    let outcome = lab.fetch(&[
        "--retry",
        "2",
        "--retry-delay",
        "100ms",
        &server_url(ODD_PORT, "/flaky/f.bin?fails=99&key=never"),
    ]);
    assert_exit(&outcome, 1);
    assert_eq!(
        tunstack_lines(&outcome),
        [
            "HTTP 503 Service Unavailable; retrying in 100ms (1 retry left)",
            "HTTP 503 Service Unavailable; retrying in 100ms (0 retries left)",
            "HTTP 503 Service Unavailable",
        ]
    );
    assert_dir_holds(&lab.out_dir(), &[]);

    let refused = server_url(CLOSED_PORT, "/f.bin");
    let outcome = lab.fetch(&["--retry", "1", "--retry-delay", "200ms", &refused]);
    assert_exit(&outcome, 1);
    assert_eq!(
        tunstack_lines(&outcome),
        [
            format!("connection refused by {SERVER_IP}:{CLOSED_PORT}; retrying in 200ms (0 retries left)"),
            format!("connection refused by {SERVER_IP}:{CLOSED_PORT}"),
        ]
    );

    // A 404 will not get better: no retry.
    let outcome = lab.fetch(&["--retry", "3", &server_url(ODD_PORT, "/plain/absent.bin")]);
    assert_exit(&outcome, 1);
    assert_eq!(tunstack_lines(&outcome), ["HTTP 404 Not Found"]);
    assert!(
        outcome.elapsed < Duration::from_secs(5),
        "{:?}",
        outcome.elapsed
    );
    assert_dir_holds(&lab.out_dir(), &[]);
}

/// Text-like bytes, so every coding actually compresses them.
fn compressible(len: usize) -> Vec<u8> {
    let noise = seeded_bytes(len, 11);
    let words: [&[u8]; 6] = [
        b"tunstack ",
        b"window ",
        b"segment ",
        b"ack ",
        b"\n",
        b"rfc9293 ",
    ];
    let mut out = Vec::with_capacity(len + 16);
    let mut i = 0;
    while out.len() < len {
        out.extend_from_slice(words[usize::from(noise[i % len]) % words.len()]);
        i += 1;
    }
    out.truncate(len);
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut e = brotli::CompressorWriter::new(&mut out, 4096, 6, 22);
        e.write_all(data).unwrap();
    }
    out
}

#[test]
fn compressed_bodies_are_saved_decoded_and_corrupt_ones_not_at_all() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("optgzip1");
    let original = compressible(3 * MIB);
    let sha = sha256_hex(&original);
    let served = lab.served_dir();
    for (coding, bytes) in [
        ("gzip", gzip(&original)),
        ("deflate", deflate(&original)),
        ("br", brotli(&original)),
    ] {
        assert!(
            bytes.len() < original.len() / 2,
            "{coding} did not compress"
        );
        fs::write(served.join(format!("text.{coding}")), bytes).unwrap();
    }
    let mut corrupt = gzip(&original);
    let middle = corrupt.len() / 2;
    for byte in &mut corrupt[middle..middle + 64] {
        *byte ^= 0xa5;
    }
    fs::write(served.join("bad.gzip"), corrupt).unwrap();
    fs::write(served.join("empty.gzip"), b"").unwrap();
    lab.start_odd();

    let outcome = lab.fetch(&[
        "--compressed",
        "-o",
        "asked.txt",
        &server_url(ODD_PORT, "/echo"),
    ]);
    assert_exit(&outcome, 0);
    let asked = fields(&echoed(&lab, "asked.txt"));
    assert_eq!(field(&asked, "Accept-Encoding"), ["gzip, deflate, br"]);

    for coding in ["gzip", "deflate", "br"] {
        let name = format!("text-{coding}.txt");
        let url = server_url(ODD_PORT, &format!("/encoded/{coding}/text"));
        let outcome = lab.fetch(&["--compressed", "-o", &name, &url]);
        assert_exit(&outcome, 0);
        assert_eq!(
            sha256_of_file(&lab.out_dir().join(&name)),
            sha,
            "{coding}: the saved file is not the original"
        );
        // The summary counts the decoded bytes.
        let saved = format!("saved {} bytes to {name}", original.len());
        assert!(outcome.stderr.contains(&saved), "{}", outcome.describe());
    }

    // An empty body labelled gzip holds no stream to decode: an empty file.
    let outcome = lab.fetch(&[
        "--compressed",
        "-o",
        "empty.txt",
        &server_url(ODD_PORT, "/encoded/gzip/empty"),
    ]);
    assert_exit(&outcome, 0);
    assert_eq!(
        fs::metadata(lab.out_dir().join("empty.txt")).unwrap().len(),
        0
    );

    let before = e2e::files::list_dir(&lab.out_dir());
    let outcome = lab.fetch(&[
        "--compressed",
        "-o",
        "bad.txt",
        &server_url(ODD_PORT, "/encoded/gzip/bad"),
    ]);
    assert_exit(&outcome, 1);
    let lines = tunstack_lines(&outcome);
    assert_eq!(lines.len(), 1, "{}", outcome.describe());
    assert!(lines[0].starts_with("corrupt gzip body: "), "{}", lines[0]);
    assert_eq!(
        e2e::files::list_dir(&lab.out_dir()),
        before,
        "bad.txt or a temporary file left"
    );
    lab.assert_no_client_rst();
}

/// Data segments the server sent, as (seconds since the capture began, payload bytes), and
/// how many tshark flags as retransmissions.
fn server_segments(pcap: &Path) -> (Vec<(f64, u64)>, usize) {
    let rows = tshark_rows(
        pcap,
        &[],
        "tcp.srcport == 8081 && tcp.len > 0",
        &[
            "frame.time_relative",
            "tcp.len",
            "tcp.analysis.retransmission",
        ],
    );
    let mut segments = Vec::new();
    let mut retransmissions = 0;
    for parts in &rows {
        segments.push((parts[0].parse().unwrap(), parts[1].parse().unwrap()));
        if parts.get(2).is_some_and(|flag| !flag.trim().is_empty()) {
            retransmissions += 1;
        }
    }
    (segments, retransmissions)
}

fn server_retrans_segs(lab: &Lab) -> u64 {
    tcp_counter(&lab.server_ns(), "RetransSegs")
}

#[test]
fn limit_rate_slows_the_server_through_the_window() {
    if !can_run() {
        return;
    }
    const LIMIT: u64 = 512 * 1024;
    let mut lab = Lab::new("optrate1");
    // About six seconds at the limit.
    let sha = lab.serve_file("slow.bin", 3 * MIB, 21);
    lab.start_nginx();
    let pcap = lab.scratch_dir().join("server.pcap");
    let capture = Command::new("ip")
        .args(["netns", "exec", &lab.server_ns(), "tcpdump"])
        .args(["-i", "optrate1-s", "-n", "-s", "128", "-U", "-w"])
        .arg(&pcap)
        .args(["tcp", "port", "8081"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump must be installed");
    let capture = Running::new(capture);
    // tcpdump writes the file header once the capture is live.
    lab.wait_for_bytes(
        &capture,
        "tcpdump",
        Duration::from_secs(5),
        "the capture's pcap file header",
        24,
        || file_len(&pcap),
    );
    let retrans_before = server_retrans_segs(&lab);
    let url = server_url(NGINX_PORT, "/slow.bin");
    let outcome = lab.fetch(&["--limit-rate", "512k", &url]);
    let retrans_after = server_retrans_segs(&lab);
    // tcpdump drops what it has not written yet when interrupted: wait for the server's FIN.
    let flushed_by = Instant::now() + Duration::from_secs(5);
    while !server_fin_captured(&pcap, NGINX_PORT) {
        assert!(
            Instant::now() < flushed_by,
            "the capture never showed the server's FIN"
        );
        thread::sleep(Duration::from_millis(20));
    }
    capture.signal(libc::SIGINT);
    let captured = capture.finish(Duration::from_secs(10));
    assert_exit(&outcome, 0);
    assert_eq!(sha256_of_file(&lab.out_dir().join("slow.bin")), sha);

    let (segments, retransmissions) = server_segments(&pcap);
    assert!(
        segments.len() > 100,
        "too few segments\n{}",
        captured.stderr
    );
    let start = segments[0].0;
    let end = segments.last().unwrap().0;
    let total: u64 = segments.iter().map(|s| s.1).sum();
    // The body and a response head of well under a kilobyte, each byte sent once.
    let body = 3 * MIB as u64;
    assert!(
        (body..body + 1024).contains(&total),
        "{total} bytes sent\n{}",
        captured.stderr
    );
    // The rate after the first second (the initial window is a burst by design).
    let steady: u64 = segments
        .iter()
        .filter(|s| s.0 >= start + 1.0)
        .map(|s| s.1)
        .sum();
    let rate = steady as f64 / (end - start - 1.0);
    eprintln!(
        "--limit-rate 512k: server sent {:.0} B/s after the first second ({:.1}% of the limit), \
         {:.2} s in all; {retransmissions} retransmissions in the capture, RetransSegs +{}",
        rate,
        100.0 * rate / LIMIT as f64,
        end - start,
        retrans_after - retrans_before
    );
    let ratio = rate / LIMIT as f64;
    assert!(
        (0.85..=1.15).contains(&ratio),
        "server rate {rate:.0} B/s is {ratio:.2}x the limit"
    );
    // Per second as well: no second far above the limit.
    let seconds = (end - start).floor() as usize;
    for second in 1..seconds {
        let sent: u64 = segments
            .iter()
            .filter(|s| s.0 >= start + second as f64 && s.0 < start + second as f64 + 1.0)
            .map(|s| s.1)
            .sum();
        assert!(
            sent as f64 <= 1.3 * LIMIT as f64,
            "second {second}: the server sent {sent} bytes"
        );
    }
    assert_eq!(retransmissions, 0, "tshark saw retransmissions");
    assert_eq!(retrans_after, retrans_before, "the server retransmitted");
}

#[test]
fn limit_rate_holds_over_https_too() {
    if !can_run() {
        return;
    }
    // TLS adds rustls' own buffer between the window and the reader; the limit must still
    // hold (and nothing may stall): 1 MiB at 256 KiB/s takes about 4 s.
    let mut lab = Lab::new("opttls1");
    let pki = Pki::create(&lab.scratch_dir().join("pki"));
    let sha = lab.serve_file("tls.bin", MIB, 31);
    let server = format!(
        "server {{\n\
         \x20       listen {SERVER_IP}:8443 ssl;\n\
         \x20       ssl_certificate {};\n\
         \x20       ssl_certificate_key {};\n\
         \x20       root {};\n\
         \x20   }}\n",
        pki.valid.cert.display(),
        pki.valid.key.display(),
        lab.served_dir().display()
    );
    lab.start_nginx_servers(&server, 8443);
    let outcome = lab.fetch(&[
        "--limit-rate",
        "256k",
        "--cacert",
        pki.ca_cert.to_str().unwrap(),
        "--resolve",
        &resolve_to_server(CERT_HOST, 8443),
        &format!("https://{CERT_HOST}:8443/tls.bin"),
    ]);
    assert_exit(&outcome, 0);
    assert_eq!(sha256_of_file(&lab.out_dir().join("tls.bin")), sha);
    let seconds = outcome.elapsed.as_secs_f64();
    eprintln!("--limit-rate 256k over HTTPS: 1 MiB in {seconds:.2} s");
    assert!(
        (3.3..6.0).contains(&seconds),
        "1 MiB at 256 KiB/s took {seconds:.2} s"
    );
}

/// Whether the pcap (Ethernet link type, as tcpdump writes for a veth) already holds a FIN
/// sent from `port`: read by hand, since tshark cannot read a file still being written.
fn server_fin_captured(pcap: &Path, port: u16) -> bool {
    let Ok(bytes) = fs::read(pcap) else {
        return false;
    };
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let captured = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &bytes[at + 16..(at + 16 + captured).min(bytes.len())];
        at += 16 + captured;
        // Ethernet (14 bytes, IPv4 type), IPv4 (IHL words), TCP.
        if frame.len() < 34 || frame[12..14] != [0x08, 0x00] || frame[23] != 6 {
            continue;
        }
        let tcp = 14 + usize::from(frame[14] & 0x0f) * 4;
        if frame.len() < tcp + 14 {
            continue;
        }
        let source = u16::from_be_bytes([frame[tcp], frame[tcp + 1]]);
        if source == port && frame[tcp + 13] & 0x01 != 0 {
            return true;
        }
    }
    false
}
