//! End-to-end tests of what `tunstack fetch` does beyond one plain HTTP download: HTTPS
//! (certificates made at test time, nginx with TLS), many URLs at once (`--parallel`, `-i`,
//! keep-alive reuse), resuming with `-c`, and progress output (a real terminal through tmux,
//! plain lines otherwise, nothing with `-q`).
//!
//! Each test builds its own sandbox (tests/e2e/lab.rs), which is removed whatever happens, and
//! every wait is bounded. They need root (`sudo just test`); without it they print "skipped".
//! Tools: nginx (with the ssl module), openssl, python3, tmux.

// Shared with tests/e2e.rs: each test crate uses only part of it.
#[allow(dead_code)]
mod e2e {
    pub mod files;
    pub mod lab;
    pub mod process;
    pub mod terminal;
    pub mod tls;
}

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use e2e::files::{assert_dir_holds, assert_saved, file_len, seeded_bytes, sha256_hex, MIB};
use e2e::lab::{
    can_run, resolve_to_server, server_url, tunstack_bin, Lab, NGINX_PORT, PARTIAL_LIMIT,
    PYTHON_PORT, SERVER_IP,
};
use e2e::process::{assert_exit, assert_fails_with, tunstack_lines, Outcome, Running};
use e2e::terminal::{have_tmux, Terminal};
use e2e::tls::{Pki, CERT_HOST};

/// nginx with the valid certificate; also redirects `/to-http/NAME` to plain HTTP.
const HTTPS_PORT: u16 = 8443;
/// nginx with the expired certificate.
const EXPIRED_PORT: u16 = 8444;
/// nginx with the certificate that is not valid yet.
const FUTURE_PORT: u16 = 8445;

fn https_url(host: &str, port: u16, path: &str) -> String {
    format!("https://{host}:{port}{path}")
}

/// The bytes a summary line reports for `name` ("saved N bytes to NAME in ..."), if there is one.
fn saved_bytes(outcome: &Outcome, name: &str) -> Option<u64> {
    let tail = format!(" bytes to {name} in ");
    tunstack_lines(outcome).iter().find_map(|line| {
        let (count, _) = line.strip_prefix("saved ")?.split_once(&tail)?;
        count.parse().ok()
    })
}

fn summary_count(outcome: &Outcome) -> usize {
    tunstack_lines(outcome)
        .iter()
        .filter(|l| l.starts_with("saved "))
        .count()
}

/// A lab whose nginx serves `served/` over HTTPS on three ports (valid, expired and
/// not-yet-valid certificates) and over plain HTTP, with redirects between the two:
/// `http://10.77.1.2:8081/to-https/NAME` -> `https://files.test:8443/NAME` and
/// `https://files.test:8443/to-http/NAME` -> `http://10.77.1.2:8081/NAME`.
fn tls_lab(name: &str) -> (Lab, Pki) {
    let mut lab = Lab::new(name);
    let pki = Pki::create(&lab.scratch_dir().join("pki"));
    let root = lab.served_dir();
    let root = root.display();
    let tls_server = |port: u16, pair: &e2e::tls::KeyPair, extra: &str| {
        format!(
            "server {{\n\
             \x20       listen {SERVER_IP}:{port} ssl;\n\
             \x20       ssl_certificate {};\n\
             \x20       ssl_certificate_key {};\n\
             \x20       root {root};\n\
             \x20       {extra}\n\
             \x20   }}\n",
            pair.cert.display(),
            pair.key.display()
        )
    };
    let to_http = format!(
        "location /to-http/ {{ rewrite ^/to-http/(.*)$ http://{SERVER_IP}:{NGINX_PORT}/$1 permanent; }}"
    );
    let to_https = format!(
        "location /to-https/ {{ rewrite ^/to-https/(.*)$ https://{CERT_HOST}:{HTTPS_PORT}/$1 permanent; }}"
    );
    let servers = [
        tls_server(HTTPS_PORT, &pki.valid, &to_http),
        tls_server(EXPIRED_PORT, &pki.expired, ""),
        tls_server(FUTURE_PORT, &pki.not_yet_valid, ""),
        format!(
            "server {{\n\
             \x20       listen {SERVER_IP}:{NGINX_PORT};\n\
             \x20       root {root};\n\
             \x20       {to_https}\n\
             \x20   }}\n"
        ),
    ]
    .concat();
    lab.start_nginx_servers(&servers, HTTPS_PORT);
    (lab, pki)
}

// ---------------------------------------------------------------------------------------------
// HTTPS

#[test]
fn https_with_cacert_saves_files_intact() {
    if !can_run() {
        return;
    }
    let (lab, pki) = tls_lab("dl6t1");
    let cacert = pki.ca_cert.to_str().unwrap();
    let sixteen = lab.serve_file("sixteen.bin", 16 * MIB, 101);
    let big = lab.serve_file("big.bin", 64 * MIB, 102);

    let by_name = lab.fetch(&[
        "--cacert",
        cacert,
        "--resolve",
        &resolve_to_server(CERT_HOST, HTTPS_PORT),
        &https_url(CERT_HOST, HTTPS_PORT, "/sixteen.bin"),
    ]);
    assert_exit(&by_name, 0);
    assert_eq!(
        saved_bytes(&by_name, "sixteen.bin"),
        Some(16 * MIB as u64),
        "{}",
        by_name.describe()
    );
    assert_saved(&lab.out_dir(), "sixteen.bin", &sixteen);

    // The certificate names the IP address too (subjectAltName IP:10.77.1.2).
    let by_ip = lab.fetch(&[
        "--cacert",
        cacert,
        &https_url(&SERVER_IP.to_string(), HTTPS_PORT, "/big.bin"),
    ]);
    assert_exit(&by_ip, 0);
    assert_saved(&lab.out_dir(), "big.bin", &big);
    assert_dir_holds(&lab.out_dir(), &["big.bin", "sixteen.bin"]);
    lab.assert_no_client_rst();
}

#[test]
fn https_keep_alive_reuses_the_tls_session() {
    if !can_run() {
        return;
    }
    let (lab, pki) = tls_lab("dl6t5");
    let names = ["k1.bin", "k2.bin", "k3.bin", "k4.bin"];
    let digests: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| lab.serve_file(n, 256 * 1024 + i, 150 + i as u64))
        .collect();
    let urls: Vec<String> = names
        .iter()
        .map(|n| https_url(CERT_HOST, HTTPS_PORT, &format!("/{n}")))
        .collect();
    let resolve = resolve_to_server(CERT_HOST, HTTPS_PORT);
    let mut args = vec![
        "-v",
        "--parallel",
        "1",
        "--cacert",
        pki.ca_cert.to_str().unwrap(),
        "--resolve",
        &resolve,
    ];
    args.extend(urls.iter().map(String::as_str));

    let outcome = lab.fetch(&args);

    assert_exit(&outcome, 0);
    for (name, digest) in names.iter().zip(&digests) {
        assert_saved(&lab.out_dir(), name, digest);
    }
    let (connects, reuses) = connection_lines(&outcome, &format!("{SERVER_IP}:{HTTPS_PORT}"));
    assert_eq!(
        (connects, reuses),
        (1, 3),
        "four sequential HTTPS downloads from one server should share one connection\n{}",
        outcome.describe()
    );
    lab.assert_no_client_rst();
}

#[test]
fn https_certificate_problems_fail_with_one_line_and_no_file() {
    if !can_run() {
        return;
    }
    let (lab, pki) = tls_lab("dl6t2");
    let cacert = pki.ca_cert.to_str().unwrap();
    let want = lab.serve_file("c.bin", MIB, 103);

    let untrusted = lab.fetch(&[
        "--resolve",
        &resolve_to_server(CERT_HOST, HTTPS_PORT),
        &https_url(CERT_HOST, HTTPS_PORT, "/c.bin"),
    ]);
    assert_fails_with(
        &untrusted,
        1,
        "certificate for files.test is not trusted (unknown issuer); use --cacert FILE to \
         trust its CA, or -k",
    );

    let wrong_name_args = [
        "--cacert",
        cacert,
        "--resolve",
        &resolve_to_server("other.test", HTTPS_PORT),
        &https_url("other.test", HTTPS_PORT, "/c.bin"),
    ];
    let wrong_name = lab.fetch(&wrong_name_args);
    assert_fails_with(
        &wrong_name,
        1,
        &format!("certificate is for {CERT_HOST}, {SERVER_IP}, not other.test"),
    );

    let expired = lab.fetch(&[
        "--cacert",
        cacert,
        "--resolve",
        &resolve_to_server(CERT_HOST, EXPIRED_PORT),
        &https_url(CERT_HOST, EXPIRED_PORT, "/c.bin"),
    ]);
    assert_fails_with(
        &expired,
        1,
        "certificate for files.test expired on 2021-01-01",
    );

    let future = lab.fetch(&[
        "--cacert",
        cacert,
        "--resolve",
        &resolve_to_server(CERT_HOST, FUTURE_PORT),
        &https_url(CERT_HOST, FUTURE_PORT, "/c.bin"),
    ]);
    assert_fails_with(
        &future,
        1,
        "certificate for files.test is not valid before 2090-01-01",
    );
    assert_dir_holds(&lab.out_dir(), &[]);

    // -k accepts the same certificate under the wrong name, and an expired one.
    let mut insecure_args = vec!["-k"];
    insecure_args.extend(wrong_name_args);
    let insecure = lab.fetch(&insecure_args);
    assert_exit(&insecure, 0);
    assert_saved(&lab.out_dir(), "c.bin", &want);
    let insecure_expired = lab.fetch(&[
        "-k",
        "-o",
        "expired.bin",
        &https_url(&SERVER_IP.to_string(), EXPIRED_PORT, "/c.bin"),
    ]);
    assert_exit(&insecure_expired, 0);
    assert_saved(&lab.out_dir(), "expired.bin", &want);
    lab.assert_no_client_rst();
}

#[test]
fn https_download_survives_5_percent_loss() {
    if !can_run() {
        return;
    }
    let (lab, pki) = tls_lab("dl6t3");
    let want = lab.serve_file("lossy.bin", 16 * MIB, 104);

    let outcome = lab.fetch(&[
        "--impair",
        "loss=5%",
        "--seed",
        "104",
        "--cacert",
        pki.ca_cert.to_str().unwrap(),
        &https_url(&SERVER_IP.to_string(), HTTPS_PORT, "/lossy.bin"),
    ]);

    assert_exit(&outcome, 0);
    assert_saved(&lab.out_dir(), "lossy.bin", &want);
    // The loss really happened: segments after each lost one arrived out of order.
    let out_of_order = tunstack_lines(&outcome).iter().find_map(|l| {
        let (_, rest) = l.split_once(" duplicate and ")?;
        rest.split_once(" out-of-order")?.0.parse::<u64>().ok()
    });
    assert!(
        out_of_order.is_some_and(|n| n > 0),
        "no out-of-order segments reported under 5% loss\n{}",
        outcome.describe()
    );
    lab.assert_no_client_rst();
}

#[test]
fn redirects_between_http_and_https() {
    if !can_run() {
        return;
    }
    let (lab, pki) = tls_lab("dl6t4");
    let cacert = pki.ca_cert.to_str().unwrap();
    let up = lab.serve_file("up.bin", 2 * MIB, 105);
    let down = lab.serve_file("down.bin", 2 * MIB, 106);
    let resolve = resolve_to_server(CERT_HOST, HTTPS_PORT);

    let to_https = lab.fetch(&[
        "--cacert",
        cacert,
        "--resolve",
        &resolve,
        &server_url(NGINX_PORT, "/to-https/up.bin"),
    ]);
    assert_exit(&to_https, 0);
    assert_saved(&lab.out_dir(), "up.bin", &up);

    let to_http = lab.fetch(&[
        "--cacert",
        cacert,
        "--resolve",
        &resolve,
        &https_url(CERT_HOST, HTTPS_PORT, "/to-http/down.bin"),
    ]);
    assert_exit(&to_http, 0);
    assert_saved(&lab.out_dir(), "down.bin", &down);

    // The certificate is checked after a redirect too.
    let untrusted = lab.fetch(&[
        "--resolve",
        &resolve,
        "-o",
        "never.bin",
        &server_url(NGINX_PORT, "/to-https/up.bin"),
    ]);
    assert_fails_with(
        &untrusted,
        1,
        "certificate for files.test is not trusted (unknown issuer); use --cacert FILE to \
         trust its CA, or -k",
    );
    assert_dir_holds(&lab.out_dir(), &["down.bin", "up.bin"]);
    lab.assert_no_client_rst();
}

// ---------------------------------------------------------------------------------------------
// Many URLs

/// How many "* connecting to ADDR" and "* reusing the connection to ADDR" lines `-v` printed.
fn connection_lines(outcome: &Outcome, addr: &str) -> (usize, usize) {
    let connecting = format!("* connecting to {addr} for ");
    let reusing = format!("* reusing the connection to {addr} for ");
    let count = |prefix: &str| {
        outcome
            .stderr
            .lines()
            .filter(|l| l.starts_with(prefix))
            .count()
    };
    (count(&connecting), count(&reusing))
}

#[test]
fn six_urls_two_at_a_time() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("dl6m1");
    let names = ["f1.bin", "f2.bin", "f3.bin", "f4.bin", "f5.bin", "f6.bin"];
    let digests: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| lab.serve_file(n, (i + 1) * MIB + i, 200 + i as u64))
        .collect();
    lab.start_nginx();
    let urls: Vec<String> = names
        .iter()
        .map(|n| server_url(NGINX_PORT, &format!("/{n}")))
        .collect();
    let mut args = vec!["--parallel", "2"];
    args.extend(urls.iter().map(String::as_str));

    let outcome = lab.fetch(&args);

    assert_exit(&outcome, 0);
    assert_eq!(summary_count(&outcome), 6, "{}", outcome.describe());
    for (i, (name, digest)) in names.iter().zip(&digests).enumerate() {
        assert_eq!(
            saved_bytes(&outcome, name),
            Some(((i + 1) * MIB + i) as u64),
            "{}",
            outcome.describe()
        );
        assert_saved(&lab.out_dir(), name, digest);
    }
    assert_dir_holds(&lab.out_dir(), &names);
    lab.assert_no_client_rst();
}

#[test]
fn one_failure_among_many_urls() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("dl6m2");
    let a = lab.serve_file("a.bin", MIB, 210);
    let b = lab.serve_file("b.bin", 2 * MIB, 211);
    let c = lab.serve_file("c.bin", 3 * MIB, 212);
    lab.start_nginx();
    let missing = server_url(NGINX_PORT, "/missing.bin");

    let outcome = lab.fetch(&[
        &server_url(NGINX_PORT, "/a.bin"),
        &server_url(NGINX_PORT, "/b.bin"),
        &missing,
        &server_url(NGINX_PORT, "/c.bin"),
    ]);

    assert_exit(&outcome, 1);
    let lines = tunstack_lines(&outcome);
    let failures: Vec<&&str> = lines.iter().filter(|l| !l.starts_with("saved ")).collect();
    assert_eq!(
        failures,
        [
            &format!("{missing}: HTTP 404 Not Found").as_str(),
            &"1 of 4 downloads failed"
        ],
        "{}",
        outcome.describe()
    );
    assert_eq!(
        lines.last(),
        Some(&"1 of 4 downloads failed"),
        "the tally comes last\n{}",
        outcome.describe()
    );
    assert_eq!(summary_count(&outcome), 3, "{}", outcome.describe());
    assert_saved(&lab.out_dir(), "a.bin", &a);
    assert_saved(&lab.out_dir(), "b.bin", &b);
    assert_saved(&lab.out_dir(), "c.bin", &c);
    assert_dir_holds(&lab.out_dir(), &["a.bin", "b.bin", "c.bin"]);
    lab.assert_no_client_rst();
}

#[test]
fn input_file_lists_urls_with_comments_and_blank_lines() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("dl6m3");
    let names = ["i1.bin", "i2.bin", "i3.bin", "cli.bin"];
    let digests: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| lab.serve_file(n, MIB / 2 + i, 220 + i as u64))
        .collect();
    lab.start_nginx();
    let list = lab.scratch_dir().join("urls.txt");
    fs::write(
        &list,
        format!(
            "# downloads for the test\n\n{}\n   {}  \n# {}\n\n{}\n",
            server_url(NGINX_PORT, "/i1.bin"),
            server_url(NGINX_PORT, "/i2.bin"),
            server_url(NGINX_PORT, "/commented-out.bin"),
            server_url(NGINX_PORT, "/i3.bin")
        ),
    )
    .unwrap();

    let outcome = lab.fetch(&[
        "-i",
        list.to_str().unwrap(),
        &server_url(NGINX_PORT, "/cli.bin"),
    ]);

    assert_exit(&outcome, 0);
    assert_eq!(summary_count(&outcome), 4, "{}", outcome.describe());
    for (name, digest) in names.iter().zip(&digests) {
        assert_saved(&lab.out_dir(), name, digest);
    }
    assert_dir_holds(&lab.out_dir(), &["cli.bin", "i1.bin", "i2.bin", "i3.bin"]);
    lab.assert_no_client_rst();
}

#[test]
fn keep_alive_reuses_connections_to_the_same_server() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("dl6m4");
    let names = ["r1.bin", "r2.bin", "r3.bin", "r4.bin", "r5.bin", "r6.bin"];
    let digests: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| lab.serve_file(n, 64 * 1024 + i, 230 + i as u64))
        .collect();
    lab.start_nginx();
    let urls: Vec<String> = names
        .iter()
        .map(|n| server_url(NGINX_PORT, &format!("/{n}")))
        .collect();
    let mut args = vec!["-v", "--parallel", "2"];
    args.extend(urls.iter().map(String::as_str));

    let outcome = lab.fetch(&args);

    assert_exit(&outcome, 0);
    for (name, digest) in names.iter().zip(&digests) {
        assert_saved(&lab.out_dir(), name, digest);
    }
    let (connects, reuses) = connection_lines(&outcome, &format!("{SERVER_IP}:{NGINX_PORT}"));
    assert_eq!(
        connects + reuses,
        6,
        "every download connects or reuses once\n{}",
        outcome.describe()
    );
    assert!(
        reuses >= 1 && connects <= 5,
        "six downloads two at a time never reused a connection\n{}",
        outcome.describe()
    );
    lab.assert_no_client_rst();
}

/// Usage errors are found before any device is opened: the interface named here does not
/// exist, so touching the network would fail differently (and with status 1).
#[test]
fn conflicting_targets_are_usage_errors() {
    let run = |args: &[&str]| {
        let child = Command::new(tunstack_bin())
            .args(["fetch", "--iface", "tsnope0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Running::new(child).finish(Duration::from_secs(10))
    };

    let same_name = run(&[
        &server_url(NGINX_PORT, "/one/x.bin"),
        &server_url(NGINX_PORT, "/two/x.bin"),
    ]);
    assert_exit(&same_name, 2);
    assert_eq!(
        tunstack_lines(&same_name),
        ["two URLs would be saved as x.bin; download them separately with -o"],
        "{}",
        same_name.describe()
    );

    let one_output = run(&[
        "-o",
        "both.bin",
        &server_url(NGINX_PORT, "/a.bin"),
        &server_url(NGINX_PORT, "/b.bin"),
    ]);
    assert_exit(&one_output, 2);
    let lines = tunstack_lines(&one_output);
    assert!(
        lines.len() == 1 && lines[0].contains("-o"),
        "{}",
        one_output.describe()
    );

    let missing_list = run(&["-i", "/nonexistent/tunstack-urls.txt"]);
    assert_exit(&missing_list, 2);
    let lines = tunstack_lines(&missing_list);
    assert!(
        lines.len() == 1 && lines[0].starts_with("cannot read /nonexistent/tunstack-urls.txt"),
        "{}",
        missing_list.describe()
    );
}

// ---------------------------------------------------------------------------------------------
// Resuming with -c

#[test]
fn interrupted_continue_resumes_to_an_identical_file() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("dl6r1");
    let original = seeded_bytes(64 * MIB, 300);
    fs::write(lab.served_dir().join("big.bin"), &original).unwrap();
    lab.start_nginx();
    let url = server_url(NGINX_PORT, "/big.bin");
    let part = lab.out_dir().join("big.bin.part");

    // 100 Mbit/s makes the 64 MiB take over 5 s; interrupt once a quarter is there.
    let running = lab.spawn_fetch(&["-c", "--impair-in", "rate=100mbit", "--seed", "300", &url]);
    let part_name = part.display().to_string();
    lab.wait_for_bytes(
        &running,
        "tunstack",
        PARTIAL_LIMIT,
        &part_name,
        16 * MIB as u64,
        || file_len(&part),
    );
    running.signal(libc::SIGINT);
    let interrupted = running.finish(Duration::from_secs(15));

    assert_exit(&interrupted, 130);
    assert!(
        tunstack_lines(&interrupted)
            .contains(&"interrupted; partial downloads kept as NAME.part for the next -c"),
        "{}",
        interrupted.describe()
    );
    assert_dir_holds(&lab.out_dir(), &["big.bin.part"]);
    let kept = fs::read(&part).unwrap();
    assert!(
        kept.len() >= 16 * MIB && kept.len() < 64 * MIB,
        "big.bin.part holds {} bytes",
        kept.len()
    );
    assert!(
        kept[..] == original[..kept.len()],
        "big.bin.part is not a prefix of the served file"
    );

    let resumed = lab.fetch(&["-c", &url]);

    assert_exit(&resumed, 0);
    assert_eq!(
        saved_bytes(&resumed, "big.bin"),
        Some((64 * MIB - kept.len()) as u64),
        "the resumed run should fetch only the missing bytes\n{}",
        resumed.describe()
    );
    assert_dir_holds(&lab.out_dir(), &["big.bin"]);
    assert_saved(&lab.out_dir(), "big.bin", &sha256_hex(&original));

    let again = lab.fetch(&["-c", &url]);

    assert_exit(&again, 0);
    assert_eq!(
        tunstack_lines(&again),
        ["big.bin is already complete"],
        "{}",
        again.describe()
    );
    assert_dir_holds(&lab.out_dir(), &["big.bin"]);
    assert_saved(&lab.out_dir(), "big.bin", &sha256_hex(&original));
    lab.assert_no_client_rst();
}

#[test]
fn continue_appends_to_an_existing_file_like_wget() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("dl6r4");
    let original = seeded_bytes(8 * MIB + 123, 330);
    fs::write(lab.served_dir().join("grown.bin"), &original).unwrap();
    lab.start_nginx();
    // A file another tool saved part of, under the final name.
    fs::write(lab.out_dir().join("grown.bin"), &original[..3 * MIB]).unwrap();

    let outcome = lab.fetch(&["-c", &server_url(NGINX_PORT, "/grown.bin")]);

    assert_exit(&outcome, 0);
    assert_eq!(
        saved_bytes(&outcome, "grown.bin"),
        Some((original.len() - 3 * MIB) as u64),
        "{}",
        outcome.describe()
    );
    assert_dir_holds(&lab.out_dir(), &["grown.bin"]);
    assert_saved(&lab.out_dir(), "grown.bin", &sha256_hex(&original));
    lab.assert_no_client_rst();
}

#[test]
fn continue_starts_over_when_the_server_ignores_range() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("dl6r2");
    let want = lab.serve_file("whole.bin", 4 * MIB, 310);
    lab.start_python();
    // Bytes that are not the file's: appending to them, or skipping their length of a 200
    // body, would both give a wrong result.
    fs::write(lab.out_dir().join("whole.bin.part"), vec![0xaa; MIB]).unwrap();

    let outcome = lab.fetch(&["-c", &server_url(PYTHON_PORT, "/whole.bin")]);

    assert_exit(&outcome, 0);
    assert_eq!(
        saved_bytes(&outcome, "whole.bin"),
        Some(4 * MIB as u64),
        "{}",
        outcome.describe()
    );
    assert_dir_holds(&lab.out_dir(), &["whole.bin"]);
    assert_saved(&lab.out_dir(), "whole.bin", &want);
    lab.assert_no_client_rst();
}

#[test]
fn continue_after_the_file_changed_gets_the_new_file() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("dl6r3");
    let served = lab.served_dir().join("moving.bin");
    lab.serve_file("moving.bin", 32 * MIB, 320);
    lab.start_nginx();
    let url = server_url(NGINX_PORT, "/moving.bin");
    let part = lab.out_dir().join("moving.bin.part");

    let running = lab.spawn_fetch(&["-c", "--impair-in", "rate=100mbit", "--seed", "320", &url]);
    let part_name = part.display().to_string();
    lab.wait_for_bytes(
        &running,
        "tunstack",
        PARTIAL_LIMIT,
        &part_name,
        4 * MIB as u64,
        || file_len(&part),
    );
    running.signal(libc::SIGINT);
    let interrupted = running.finish(Duration::from_secs(15));
    assert_exit(&interrupted, 130);
    assert_dir_holds(&lab.out_dir(), &["moving.bin.part"]);

    // Same size, other bytes, a later modification time: nginx's ETag changes, so the If-Range
    // of the resumed request no longer matches and nginx answers 200 with the whole new file.
    let old_mtime = fs::metadata(&served).unwrap().modified().unwrap();
    let new = lab.serve_file("moving.bin", 32 * MIB, 321);
    fs::File::options()
        .write(true)
        .open(&served)
        .unwrap()
        .set_modified(old_mtime.max(SystemTime::now()) + Duration::from_secs(100))
        .unwrap();

    let resumed = lab.fetch(&["-c", &url]);

    assert_exit(&resumed, 0);
    assert_eq!(
        saved_bytes(&resumed, "moving.bin"),
        Some(32 * MIB as u64),
        "a changed file must be fetched whole\n{}",
        resumed.describe()
    );
    assert_dir_holds(&lab.out_dir(), &["moving.bin"]);
    assert_saved(&lab.out_dir(), "moving.bin", &new);
    lab.assert_no_client_rst();
}

// ---------------------------------------------------------------------------------------------
// Progress output

/// A progress bar row for `name` of `total` ("NAME [===>   ] 9.59 MiB/24.00 MiB 10.48 MiB/s
/// eta 1s 0 rtx"): what it says has been received, in bytes.
fn bar_received(row: &str, name: &str, total: &str) -> Option<f64> {
    let rest = row.strip_prefix(name)?.trim_start().strip_prefix('[')?;
    let (_, numbers) = rest.split_once(']')?;
    let (received, after) = numbers.trim_start().split_once(&format!("/{total} "))?;
    if !after.contains("/s") || !after.ends_with("rtx") {
        return None;
    }
    parse_size(received)
}

/// "9.59 MiB" -> bytes (indicatif's binary units).
fn parse_size(text: &str) -> Option<f64> {
    let (number, unit) = text.trim().split_once(' ')?;
    let scale = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => MIB as f64,
        "GiB" => 1024.0 * MIB as f64,
        _ => return None,
    };
    Some(number.parse::<f64>().ok()? * scale)
}

/// Any row that looks like a progress bar ("[", "]" and a byte count after it).
fn looks_like_a_bar(row: &str) -> bool {
    row.split_once('[')
        .and_then(|(_, rest)| rest.split_once(']'))
        .is_some_and(|(_, after)| after.contains("B/"))
}

#[test]
fn progress_bar_on_a_terminal() {
    if !can_run() || !have_tmux() {
        return;
    }
    let mut lab = Lab::new("dl6p1");
    let want = lab.serve_file("bar.bin", 24 * MIB, 400);
    lab.start_nginx();
    let mut argv: Vec<String> = [
        "ip",
        "netns",
        "exec",
        &lab.client_ns(),
        &tunstack_bin(),
        "fetch",
        "--iface",
        "tun0",
        "--local-ip",
        "10.77.0.2",
        "--impair-in",
        "rate=64mbit",
        "--seed",
        "400",
    ]
    .map(String::from)
    .to_vec();
    argv.push(server_url(NGINX_PORT, "/bar.bin"));
    // 24 MiB at 64 Mbit/s: about 3 s on screen.
    let terminal = Terminal::run("dl6p1", lab.scratch_dir(), &lab.out_dir(), &argv);

    let first = terminal
        .wait_for_row(Duration::from_secs(10), |row| {
            bar_received(row, "bar.bin", "24.00 MiB").is_some_and(|b| b > 0.0)
        })
        .unwrap_or_else(|| {
            panic!(
                "no progress bar on the screen:\n{}",
                terminal.screen().join("\n")
            )
        });
    let first_bytes = first
        .iter()
        .find_map(|row| bar_received(row, "bar.bin", "24.00 MiB"))
        .unwrap();
    let later = terminal
        .wait_for_row(Duration::from_secs(10), |row| {
            bar_received(row, "bar.bin", "24.00 MiB")
                .is_some_and(|b| b > first_bytes + 6.0 * MIB as f64)
        })
        .unwrap_or_else(|| {
            panic!(
                "the progress bar did not move 6 MiB past {first_bytes} bytes:\n{}",
                terminal.screen().join("\n")
            )
        });
    eprintln!("screen during the download:\n{}", later.join("\n"));
    // Beside the numbers, the connection: the window we advertise and what came out of order.
    assert!(
        later.iter().any(|row| row.starts_with("bar.bin")
            && row.contains(" rwnd ")
            && row.contains(" out of order, ")),
        "the bar shows no receive window or out-of-order count:\n{}",
        later.join("\n")
    );

    let status = terminal.wait_for_exit(Duration::from_secs(30));
    let last = terminal.screen();
    eprintln!("screen at the end:\n{}", last.join("\n"));
    assert_eq!(status, Some(0), "screen:\n{}", last.join("\n"));
    assert!(
        last.iter()
            .any(|row| row == "* impairing with seed 400 (replay with --seed 400)"),
        "the line printed before the bar is gone:\n{}",
        last.join("\n")
    );
    assert!(
        last.iter()
            .any(|row| row.starts_with("tunstack: saved 25165824 bytes to bar.bin in ")),
        "no summary line on the screen:\n{}",
        last.join("\n")
    );
    let leftovers: Vec<&String> = last.iter().filter(|row| looks_like_a_bar(row)).collect();
    assert!(
        leftovers.is_empty(),
        "progress bars left on the screen after the download: {leftovers:?}\n{}",
        last.join("\n")
    );
    assert_saved(&lab.out_dir(), "bar.bin", &want);
}

/// A plain progress line: "  NAME: 12.3 MiB of 48.0 MiB at 45.2 Mbit/s, 0 retransmissions";
/// the MiB received and the rate.
fn progress_line(line: &str, name: &str, total: &str) -> Option<(f64, f64)> {
    let rest = line.strip_prefix(&format!("  {name}: "))?;
    let (received, rest) = rest.split_once(&format!(" MiB of {total} at "))?;
    let (rate, rest) = rest.split_once(" Mbit/s, ")?;
    rest.strip_suffix(" retransmissions")?.parse::<u64>().ok()?;
    Some((received.parse().ok()?, rate.parse().ok()?))
}

#[test]
fn plain_progress_lines_when_stderr_is_not_a_terminal() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("dl6p2");
    let want = lab.serve_file("lines.bin", 48 * MIB, 410);
    lab.start_nginx();

    // 48 MiB at 40 Mbit/s takes about 10 s: a line every 5 s. stderr is a pipe here.
    let outcome = lab.fetch(&[
        "--impair-in",
        "rate=40mbit",
        "--seed",
        "410",
        &server_url(NGINX_PORT, "/lines.bin"),
    ]);

    assert_exit(&outcome, 0);
    assert_saved(&lab.out_dir(), "lines.bin", &want);
    let lines: Vec<(f64, f64)> = outcome
        .stderr
        .lines()
        .filter_map(|l| progress_line(l, "lines.bin", "48.0 MiB"))
        .collect();
    assert!(
        !lines.is_empty(),
        "no progress line in a 10 s download\n{}",
        outcome.describe()
    );
    assert!(
        lines.windows(2).all(|w| w[0].0 < w[1].0),
        "progress went backwards\n{}",
        outcome.describe()
    );
    for (received, rate) in &lines {
        assert!(
            *received > 0.0 && *received < 48.0,
            "{received} MiB is not a count in progress\n{}",
            outcome.describe()
        );
        // The link is limited to 40 Mbit/s; allow for bursts, not for nonsense.
        assert!(
            *rate > 0.0 && *rate < 80.0,
            "implausible rate {rate} Mbit/s on a 40 Mbit/s link\n{}",
            outcome.describe()
        );
    }
    let unexpected: Vec<&str> = outcome
        .stderr
        .lines()
        .filter(|l| {
            progress_line(l, "lines.bin", "48.0 MiB").is_none()
                && !l.starts_with("* impairing with seed 410")
                && !l.starts_with("tunstack: saved 50331648 bytes to lines.bin in ")
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "unexpected stderr lines {unexpected:?}\n{}",
        outcome.describe()
    );
    lab.assert_no_client_rst();
}

#[test]
fn quiet_prints_nothing_but_errors() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("dl6p3");
    let want = lab.serve_file("hush.bin", 32 * MIB, 420);
    lab.start_nginx();
    let missing = server_url(NGINX_PORT, "/nope.bin");

    // About 7 s at 40 Mbit/s: long enough that a progress line would be due without -q.
    let outcome = lab.fetch(&[
        "-q",
        "--impair-in",
        "rate=40mbit",
        &server_url(NGINX_PORT, "/hush.bin"),
        &missing,
    ]);

    assert_exit(&outcome, 1);
    assert_eq!(
        outcome.stderr.lines().collect::<Vec<_>>(),
        [
            format!("tunstack: {missing}: HTTP 404 Not Found"),
            "tunstack: 1 of 2 downloads failed".to_string()
        ],
        "{}",
        outcome.describe()
    );
    assert!(
        outcome.elapsed > Duration::from_secs(5),
        "the download was too quick for a progress line to be due ({:?})",
        outcome.elapsed
    );
    assert_dir_holds(&lab.out_dir(), &["hush.bin"]);
    assert_saved(&lab.out_dir(), "hush.bin", &want);
    lab.assert_no_client_rst();
}
