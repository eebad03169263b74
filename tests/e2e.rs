//! End-to-end tests: the real `tunstack` binary over a real TUN device, inside network namespaces
//! each test creates and always removes (see setup/sandbox and tests/e2e/lab.rs).
//!
//! They need root (`sudo just test`); without it they print "skipped" and pass. Contract with the
//! binary, asserted below:
//! * exit status 0 on success, 1 on a network or HTTP failure, 2 on a usage error;
//! * on failure stderr holds exactly one line `error: MESSAGE`;
//! * a failed or interrupted download leaves no file behind and never touches an existing target.

mod e2e {
    pub mod files;
    pub mod lab;
    pub mod process;
}

use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

use e2e::files::{assert_dir_holds, list_dir, sha256_hex, sha256_of_file, MIB};
use e2e::lab::{
    can_run, server_url, tunstack_bin, Lab, CLOSED_PORT, DROPPED_PORT, NGINX_PORT, ODD_PORT,
    PYTHON_PORT, SERVER_IP,
};
use e2e::process::{assert_exit, assert_fails_mentioning, assert_fails_with, Running};

const PRECIOUS: &[u8] = b"an older download that must survive a failed one\n";

/// Puts an older file at `out/name` so a test can check that a failure leaves it alone.
fn place_precious(lab: &Lab, name: &str) {
    fs::write(lab.out_dir().join(name), PRECIOUS).unwrap();
}

fn assert_precious_untouched(lab: &Lab, name: &str) {
    assert_eq!(
        fs::read(lab.out_dir().join(name)).unwrap(),
        PRECIOUS,
        "{name} was modified"
    );
}

/// Usage errors are reported before any device is opened: the interface named here does not
/// exist, so touching the network would fail differently (and with status 1).
#[test]
fn usage_errors_exit_2_without_touching_the_network() {
    let run = |args: &[&str]| {
        let child = Command::new(tunstack_bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Running::new(child).finish(Duration::from_secs(10))
    };

    let ftp = run(&["fetch", "--iface", "tsnope0", "ftp://x"]);
    assert_fails_with(
        &ftp,
        2,
        "unsupported scheme 'ftp' (only http:// and https:// are supported)",
    );

    let missing_url = run(&["fetch", "--iface", "tsnope0"]);
    assert_eq!(missing_url.code(), Some(2), "{}", missing_url.describe());
    assert!(
        missing_url.stderr.contains("URL"),
        "{}",
        missing_url.describe()
    );

    let conflicting = run(&[
        "fetch",
        "--iface",
        "tsnope0",
        "-q",
        "-v",
        &format!("http://{SERVER_IP}/"),
    ]);
    assert_eq!(conflicting.code(), Some(2), "{}", conflicting.describe());
}

#[test]
fn python_http_server_1mib_to_named_output() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("tsE01");
    let want = lab.serve_file("one.bin", MIB, 1);
    lab.start_python();

    let outcome = lab.fetch(&["-o", "saved.bin", &server_url(PYTHON_PORT, "/one.bin")]);

    assert_exit(&outcome, 0);
    assert_dir_holds(&lab.out_dir(), &["saved.bin"]);
    assert_eq!(sha256_of_file(&lab.out_dir().join("saved.bin")), want);
    lab.assert_no_client_rst();
}

#[test]
fn nginx_sendfile_16mib() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("tsE02");
    let want = lab.serve_file("big.bin", 16 * MIB, 2);
    lab.start_nginx();

    let outcome = lab.fetch(&["-o", "big.bin", &server_url(NGINX_PORT, "/big.bin")]);

    assert_exit(&outcome, 0);
    assert_dir_holds(&lab.out_dir(), &["big.bin"]);
    assert_eq!(sha256_of_file(&lab.out_dir().join("big.bin")), want);
    lab.assert_no_client_rst();
}

#[test]
fn output_name_comes_from_the_url_path() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("tsE03");
    let want = lab.serve_file("named.bin", MIB, 3);
    lab.start_python();

    let outcome = lab.fetch(&[&server_url(PYTHON_PORT, "/named.bin")]);

    assert_exit(&outcome, 0);
    assert_dir_holds(&lab.out_dir(), &["named.bin"]);
    assert_eq!(sha256_of_file(&lab.out_dir().join("named.bin")), want);
    lab.assert_no_client_rst();
}

#[test]
fn dash_writes_the_body_to_stdout() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("tsE04");
    let want = lab.serve_file("piped.bin", MIB, 4);
    lab.start_nginx();

    let outcome = lab.fetch(&["-o", "-", &server_url(NGINX_PORT, "/piped.bin")]);

    assert_exit(&outcome, 0);
    assert_eq!(sha256_hex(&outcome.stdout), want);
    assert_dir_holds(&lab.out_dir(), &[]);
    lab.assert_no_client_rst();
}

#[test]
fn chunked_body_with_extensions_and_trailers() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("tsE05");
    let want = lab.serve_file("chunky.bin", MIB, 5);
    lab.start_odd();

    let outcome = lab.fetch(&[
        "-o",
        "chunky.bin",
        &server_url(ODD_PORT, "/chunked/chunky.bin"),
    ]);

    assert_exit(&outcome, 0);
    assert_dir_holds(&lab.out_dir(), &["chunky.bin"]);
    assert_eq!(sha256_of_file(&lab.out_dir().join("chunky.bin")), want);
    lab.assert_no_client_rst();
}

#[test]
fn relative_redirect_is_followed() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("tsE06");
    let want = lab.serve_file("moved.bin", MIB, 6);
    lab.start_odd();

    // /redirect/moved.bin answers 302 with "Location: ../plain/moved.bin".
    let outcome = lab.fetch(&[
        "-o",
        "moved.bin",
        &server_url(ODD_PORT, "/redirect/moved.bin"),
    ]);

    assert_exit(&outcome, 0);
    assert_dir_holds(&lab.out_dir(), &["moved.bin"]);
    assert_eq!(sha256_of_file(&lab.out_dir().join("moved.bin")), want);
    lab.assert_no_client_rst();
}

#[test]
fn redirect_loop_fails() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("tsE07");
    lab.start_odd();

    let outcome = lab.fetch(&["-o", "loop.bin", &server_url(ODD_PORT, "/loop/a")]);

    assert_fails_mentioning(&outcome, 1, "redirect loop");
    assert_dir_holds(&lab.out_dir(), &[]);
    lab.assert_no_client_rst();
}

#[test]
fn http_404_fails_and_keeps_the_existing_file() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("tsE08");
    lab.start_odd();
    place_precious(&lab, "wanted.bin");

    let outcome = lab.fetch(&[
        "-o",
        "wanted.bin",
        &server_url(ODD_PORT, "/plain/absent.bin"),
    ]);

    assert_fails_with(&outcome, 1, "HTTP 404 Not Found");
    assert_dir_holds(&lab.out_dir(), &["wanted.bin"]);
    assert_precious_untouched(&lab, "wanted.bin");
    lab.assert_no_client_rst();
}

#[test]
fn reset_mid_body_fails() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("tsE09");
    lab.serve_file("cut.bin", MIB, 9);
    lab.start_odd();
    place_precious(&lab, "cut.bin");

    let outcome = lab.fetch(&["-o", "cut.bin", &server_url(ODD_PORT, "/reset/cut.bin")]);

    assert_fails_mentioning(&outcome, 1, "reset");
    assert_dir_holds(&lab.out_dir(), &["cut.bin"]);
    assert_precious_untouched(&lab, "cut.bin");
    lab.assert_no_client_rst();
}

#[test]
fn close_before_content_length_is_a_truncated_body() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("tsE10");
    lab.serve_file("short.bin", MIB, 10);
    lab.start_odd();
    place_precious(&lab, "short.bin");

    // The server sends exactly half of the announced body, then closes cleanly.
    let outcome = lab.fetch(&[
        "-o",
        "short.bin",
        &server_url(ODD_PORT, "/truncate/short.bin"),
    ]);

    let message = format!("body truncated: {} of {} bytes", MIB / 2, MIB);
    assert_fails_with(&outcome, 1, &message);
    assert_dir_holds(&lab.out_dir(), &["short.bin"]);
    assert_precious_untouched(&lab, "short.bin");
    lab.assert_no_client_rst();
}

#[test]
fn silence_after_headers_hits_the_idle_timeout() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("tsE11");
    lab.start_odd();

    let outcome = lab.fetch(&[
        "--timeout",
        "2s",
        "-o",
        "quiet.bin",
        &server_url(ODD_PORT, "/silence"),
    ]);

    assert_fails_with(&outcome, 1, "server sent nothing for 2s");
    assert!(
        outcome.elapsed >= Duration::from_secs(2) && outcome.elapsed < Duration::from_secs(20),
        "gave up after {:?}",
        outcome.elapsed
    );
    assert_dir_holds(&lab.out_dir(), &[]);
    lab.assert_no_client_rst();
}

#[test]
fn informational_responses_before_200_are_skipped() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("tsE12");
    let want = lab.serve_file("later.bin", MIB, 12);
    lab.start_odd();

    // 100 Continue and 103 Early Hints come first.
    let outcome = lab.fetch(&[
        "-o",
        "later.bin",
        &server_url(ODD_PORT, "/continue/later.bin"),
    ]);

    assert_exit(&outcome, 0);
    assert_dir_holds(&lab.out_dir(), &["later.bin"]);
    assert_eq!(sha256_of_file(&lab.out_dir().join("later.bin")), want);
    lab.assert_no_client_rst();
}

#[test]
fn no_content_204_saves_an_empty_file() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("tsE13");
    lab.start_odd();

    let outcome = lab.fetch(&["-o", "empty.bin", &server_url(ODD_PORT, "/nocontent")]);

    assert_exit(&outcome, 0);
    assert_dir_holds(&lab.out_dir(), &["empty.bin"]);
    assert_eq!(fs::read(lab.out_dir().join("empty.bin")).unwrap(), b"");
    lab.assert_no_client_rst();
}

#[test]
fn closed_port_is_connection_refused() {
    if !can_run() {
        return;
    }
    let lab = Lab::new("tsE14");

    let outcome = lab.fetch(&["-o", "nothing.bin", &server_url(CLOSED_PORT, "/")]);

    assert_fails_with(
        &outcome,
        1,
        &format!("connection refused by {SERVER_IP}:{CLOSED_PORT}"),
    );
    assert_dir_holds(&lab.out_dir(), &[]);
    lab.assert_no_client_rst();
}

#[test]
fn unanswered_syn_hits_the_connect_timeout() {
    if !can_run() {
        return;
    }
    let lab = Lab::new("tsE15");
    lab.drop_port();

    let outcome = lab.fetch(&[
        "--connect-timeout",
        "1s",
        "-o",
        "never.bin",
        &server_url(DROPPED_PORT, "/"),
    ]);

    assert_fails_mentioning(&outcome, 1, "timed out");
    assert!(
        outcome.elapsed >= Duration::from_secs(1) && outcome.elapsed < Duration::from_secs(15),
        "gave up after {:?}",
        outcome.elapsed
    );
    assert_dir_holds(&lab.out_dir(), &[]);
    lab.assert_no_client_rst();
}

#[test]
fn sigint_mid_download_removes_the_temporary_file() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("tsE16");
    lab.serve_file("trickle.bin", 4 * MIB, 16);
    lab.start_odd();

    // /slow sends 64 KiB at once, then 1 KiB every 50 ms: the download is still going when the
    // temporary file shows up in the output directory.
    let running = lab.spawn_fetch(&[
        "-o",
        "trickle.bin",
        &server_url(ODD_PORT, "/slow/trickle.bin"),
    ]);
    lab.wait_while_running(
        &running,
        "tunstack",
        Duration::from_secs(15),
        "a temporary file in the output directory",
        || !list_dir(&lab.out_dir()).is_empty(),
    );
    running.signal(libc::SIGINT);
    let outcome = running.finish(Duration::from_secs(15));

    assert_ne!(
        outcome.code(),
        Some(0),
        "an interrupted download must fail\n{}",
        outcome.describe()
    );
    assert_dir_holds(&lab.out_dir(), &[]);
    lab.assert_no_client_rst();
}
