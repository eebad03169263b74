//! `setup/up` and `setup/down` on an emulated host, and `tunstack fetch` as the non-root user
//! they set the host up for (README: "Usage").
//!
//! Each test builds four network namespaces, all removed on drop whatever happens:
//!
//! ```text
//!   hst…-a  a0 198.51.100.2/26 ──── va 198.51.100.1/26   ┐
//!                                                        ├ hst…-host  (the user's host: setup/up
//!   hst…-b  b0 198.51.100.66/26 ─── vb 198.51.100.65/26  │   runs here; tun0 10.77.0.1/24)
//!                                   up0 203.0.113.2/24 ──┘── up1 203.0.113.1/24  hst…-net
//!                                   default via 203.0.113.1                     192.0.2.80 (lo),
//!                                                                               python3 http.server
//! ```
//!
//! hst…-net has no route to 10.77.0.0/24, so the stack reaches 192.0.2.80 only through the
//! masquerading that setup/up adds. a and b stand for other interfaces of the host, between which
//! the host must forward only if it did so before setup/up. Every address lives only inside these
//! namespaces. sysctls and nftables are per network namespace; /dev/net/tun is not, so every
//! command that may touch it runs in a private mount namespace where a device node of the test's
//! own (in its scratch directory, mode 0600 like a minimal system's) stands in for it.
//!
//! They need root (`sudo just test`); without it they print "skipped" and pass.

// Shared with tests/e2e.rs: each test crate uses only part of it.
#[allow(dead_code)]
mod e2e {
    pub mod files;
    pub mod process;
}

use std::fs::{self, File};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use e2e::files::{seeded_bytes, sha256_hex, sha256_of_file, ScratchDir, MIB};
use e2e::process::{in_netns, python, Running};

/// The unprivileged user the host is set up for (`sudo` would put it in SUDO_USER).
const USER: &str = "nobody";
const USER_ID: u32 = 65534;
const SERVER: &str = "192.0.2.80:8080";
/// How long a forwarding probe waits for a TCP handshake before calling the path closed.
const PROBE_LIMIT: Duration = Duration::from_secs(2);
const COMMAND_LIMIT: &str = "30";
const FETCH_LIMIT: Duration = Duration::from_secs(60);
const READY_LIMIT: Duration = Duration::from_secs(5);

fn can_run() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root || !Path::new("/dev/net/tun").exists() {
        eprintln!("skipped: needs root and /dev/net/tun (run `sudo just test`)");
        return false;
    }
    true
}

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Runs `args` (bounded by `timeout`), panics unless it succeeds, returns its stdout.
fn run(args: &[&str]) -> String {
    let output = Command::new("timeout")
        .arg(COMMAND_LIMIT)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        output.status.success(),
        "{args:?} failed with {}:\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The emulated host with its neighbours.
struct Host {
    tag: String,
    scratch: ScratchDir,
    server: Option<Child>,
    /// Bound in hst…-b; the kernel completes handshakes into its backlog without accept().
    _listener: Option<TcpListener>,
}

impl Host {
    fn new(case: char) -> Host {
        let tag = format!("hst{}{case}", std::process::id() % 100_000);
        let mut host = Host {
            scratch: ScratchDir::new(&tag),
            tag,
            server: None,
            _listener: None,
        };
        host.remove_namespaces();
        for ns in host.namespaces() {
            run(&["ip", "netns", "add", &ns]);
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        }
        let (h, net, a, b) = (host.ns("host"), host.ns("net"), host.ns("a"), host.ns("b"));
        host.link(&h, "up0", "203.0.113.2/24", &net, "up1", "203.0.113.1/24");
        host.link(&h, "va", "198.51.100.1/26", &a, "a0", "198.51.100.2/26");
        host.link(&h, "vb", "198.51.100.65/26", &b, "b0", "198.51.100.66/26");
        run(&[
            "ip",
            "-n",
            &h,
            "route",
            "add",
            "default",
            "via",
            "203.0.113.1",
        ]);
        run(&[
            "ip",
            "-n",
            &a,
            "route",
            "add",
            "default",
            "via",
            "198.51.100.1",
        ]);
        run(&[
            "ip",
            "-n",
            &b,
            "route",
            "add",
            "default",
            "via",
            "198.51.100.65",
        ]);
        run(&[
            "ip",
            "-n",
            &net,
            "addr",
            "add",
            "192.0.2.80/32",
            "dev",
            "lo",
        ]);

        // The stand-in for /dev/net/tun, as a minimal system ships it.
        let node = host.tun_node();
        run(&["mknod", node.to_str().unwrap(), "c", "10", "200"]);
        fs::set_permissions(&node, fs::Permissions::from_mode(0o600)).unwrap();
        let out = host.out_dir();
        fs::create_dir(&out).unwrap();
        run(&[
            "chown",
            &format!("{USER_ID}:{USER_ID}"),
            out.to_str().unwrap(),
        ]);
        fs::create_dir(host.scratch.path().join("served")).unwrap();

        host._listener = Some(in_netns(&b, || {
            TcpListener::bind("198.51.100.66:9000").expect("bind the probe listener in b")
        }));
        host
    }

    fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.tag)
    }

    fn namespaces(&self) -> Vec<String> {
        ["host", "net", "a", "b"]
            .iter()
            .map(|r| self.ns(r))
            .collect()
    }

    fn remove_namespaces(&self) {
        for ns in self.namespaces() {
            if Path::new("/run/netns").join(&ns).exists() {
                let _ = Command::new("ip").args(["netns", "delete", &ns]).status();
            }
        }
    }

    fn link(&self, ns1: &str, if1: &str, addr1: &str, ns2: &str, if2: &str, addr2: &str) {
        run(&[
            "ip", "-n", ns1, "link", "add", if1, "type", "veth", "peer", "name", if2, "netns", ns2,
        ]);
        run(&["ip", "-n", ns1, "addr", "add", addr1, "dev", if1]);
        run(&["ip", "-n", ns2, "addr", "add", addr2, "dev", if2]);
        run(&["ip", "-n", ns1, "link", "set", if1, "up"]);
        run(&["ip", "-n", ns2, "link", "set", if2, "up"]);
    }

    fn tun_node(&self) -> PathBuf {
        self.scratch.path().join("tun")
    }

    fn out_dir(&self) -> PathBuf {
        self.scratch.path().join("out")
    }

    /// The argument list that runs `args` in the host namespace, with the test's device node
    /// bound over /dev/net/tun in a private mount namespace.
    fn on_host(&self, args: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = [
            "ip",
            "netns",
            "exec",
            &self.ns("host"),
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            r#"mount --bind "$0" /dev/net/tun && exec "$@""#,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        all.push(self.tun_node().to_str().unwrap().to_owned());
        all.extend(args.iter().map(|s| s.to_string()));
        all
    }

    /// Runs `args` on the host (see `on_host`) and returns its stdout.
    fn host_run(&self, args: &[&str]) -> String {
        let all = self.on_host(args);
        run(&all.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// `sudo just setup` as USER would run it: setup/up as root with SUDO_USER set.
    fn setup_up(&self) -> String {
        let up = repo_path("setup/up");
        self.host_run(&["env", &format!("SUDO_USER={USER}"), up.to_str().unwrap()])
    }

    fn setup_down(&self) -> String {
        self.host_run(&[repo_path("setup/down").to_str().unwrap()])
    }

    fn set_forwarding(&self, on: bool) {
        let value = format!("net.ipv4.ip_forward={}", u8::from(on));
        run(&[
            "ip",
            "netns",
            "exec",
            &self.ns("host"),
            "sysctl",
            "-qw",
            &value,
        ]);
    }

    fn forwarding(&self) -> String {
        run(&[
            "ip",
            "netns",
            "exec",
            &self.ns("host"),
            "sysctl",
            "-n",
            "net.ipv4.ip_forward",
        ])
        .trim()
        .to_owned()
    }

    fn ruleset(&self) -> String {
        run(&[
            "ip",
            "netns",
            "exec",
            &self.ns("host"),
            "nft",
            "list",
            "ruleset",
        ])
    }

    /// Everything setup/up may change on the host, for comparing two runs.
    fn snapshot(&self) -> String {
        let tun = run(&["ip", "-n", &self.ns("host"), "-d", "link", "show", "tun0"]);
        let addrs = run(&["ip", "-n", &self.ns("host"), "addr", "show", "tun0"]);
        let mode = fs::metadata(self.tun_node()).unwrap().permissions().mode() & 0o777;
        format!(
            "ip_forward={}\nnode mode {mode:o}\n{}\n{tun}\n{addrs}",
            self.forwarding(),
            self.ruleset()
        )
    }

    /// Whether a TCP handshake from hst…-a to hst…-b (through the host) completes in time.
    fn forwards_a_to_b(&self) -> bool {
        let target: SocketAddr = "198.51.100.66:9000".parse().unwrap();
        in_netns(&self.ns("a"), move || {
            TcpStream::connect_timeout(&target, PROBE_LIMIT).is_ok()
        })
    }

    fn start_server(&mut self, name: &str, len: usize, seed: u64) -> String {
        let bytes = seeded_bytes(len, seed);
        let served = self.scratch.path().join("served");
        fs::write(served.join(name), &bytes).unwrap();
        let log = File::create(self.scratch.path().join("server.log")).unwrap();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns("net"),
                python(),
                "-m",
                "http.server",
                "8080",
            ])
            .args([
                "--bind",
                "192.0.2.80",
                "--directory",
                served.to_str().unwrap(),
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start python3 http.server");
        self.server = Some(child);
        let deadline = Instant::now() + READY_LIMIT;
        let target: SocketAddr = SERVER.parse().unwrap();
        while !in_netns(&self.ns("net"), move || {
            TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_ok()
        }) {
            let log =
                fs::read_to_string(self.scratch.path().join("server.log")).unwrap_or_default();
            if let Some(status) = self.server.as_mut().unwrap().try_wait().unwrap() {
                panic!("http.server exited with {status}:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "http.server not accepting within {READY_LIMIT:?}:\n{log}"
            );
            thread::sleep(Duration::from_millis(50));
        }
        sha256_hex(&bytes)
    }

    /// `tunstack fetch URL` on the host as uid/gid `uid`, no supplementary groups, no capabilities.
    fn fetch_as(&self, uid: u32, name: &str) -> e2e::process::Outcome {
        let bin = env!("CARGO_BIN_EXE_tunstack");
        let ids = [format!("--reuid={uid}"), format!("--regid={uid}")];
        let url = format!("http://{SERVER}/{name}");
        let args = self.on_host(&[
            "setpriv",
            &ids[0],
            &ids[1],
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            bin,
            "fetch",
            "-q",
            &url,
        ]);
        let child = Command::new(&args[0])
            .args(&args[1..])
            .current_dir(self.out_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tunstack");
        Running::new(child).finish(FETCH_LIMIT)
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
        self.remove_namespaces();
    }
}

fn dev_net_tun_mode() -> u32 {
    fs::metadata("/dev/net/tun").unwrap().permissions().mode() & 0o7777
}

/// README's flow on a host that did not forward: setup, fetch as the user, teardown.
#[test]
fn setup_fetch_teardown_on_a_host_that_did_not_forward() {
    if !can_run() {
        return;
    }
    let real_mode = dev_net_tun_mode();
    let mut host = Host::new('f');
    let want = host.start_server("file.bin", 3 * MIB + 17, 10);

    // The probe can see forwarding: on, a reaches b; off (the new namespace's default), it does not.
    host.set_forwarding(true);
    assert!(
        host.forwards_a_to_b(),
        "a cannot reach b even with forwarding on: the probe is broken"
    );
    host.set_forwarding(false);
    assert!(!host.forwards_a_to_b(), "a reaches b with forwarding off");
    let before = host.ruleset();
    assert_eq!(before, "", "a fresh namespace has no ruleset");

    let said = host.setup_up();
    assert!(
        said.contains("for 10.77.0.0/24 only"),
        "setup/up said:\n{said}"
    );
    let first = host.snapshot();
    assert_eq!(host.forwarding(), "1");
    assert!(
        first.contains("chain forward"),
        "no forward chain:\n{first}"
    );
    assert!(
        !host.forwards_a_to_b(),
        "after setup/up the host forwards between its other interfaces:\n{first}"
    );
    let owner = run(&[
        "ip",
        "netns",
        "exec",
        &host.ns("host"),
        "cat",
        "/sys/class/net/tun0/owner",
    ]);
    assert_eq!(
        owner.trim(),
        USER_ID.to_string(),
        "tun0 is not owned by {USER}"
    );
    // The stand-in node started 0600: without access to it the owner could not even open it.
    assert!(first.contains("node mode 666"), "{first}");

    // A second `up` changes nothing, and in particular keeps the record that forwarding was off.
    host.setup_up();
    assert_eq!(host.snapshot(), first, "a second setup/up changed the host");

    let outcome = host.fetch_as(USER_ID, "file.bin");
    assert_eq!(
        outcome.code(),
        Some(0),
        "fetch as {USER} failed\n{}",
        outcome.describe()
    );
    assert_eq!(sha256_of_file(&host.out_dir().join("file.bin")), want);

    // Another unprivileged user may open the device but not attach to tun0 (README: Troubleshooting).
    let other = host.fetch_as(USER_ID - 1, "file.bin");
    assert_eq!(other.code(), Some(1), "{}", other.describe());
    assert!(
        other.stderr.contains("permission denied attaching to tun0"),
        "{}",
        other.describe()
    );

    host.setup_down();
    assert_eq!(host.forwarding(), "0", "setup/down left forwarding on");
    assert_eq!(host.ruleset(), before, "setup/down left rules behind");
    assert!(!host.forwards_a_to_b(), "a reaches b after setup/down");
    let links = run(&["ip", "-n", &host.ns("host"), "-br", "link"]);
    assert!(!links.contains("tun0"), "tun0 is still there:\n{links}");
    // Idempotent: nothing left to remove is no error.
    host.setup_down();
    assert_eq!(host.forwarding(), "0");
    assert_eq!(
        dev_net_tun_mode(),
        real_mode,
        "the real /dev/net/tun changed"
    );
}

/// On a host that already forwarded, setup/up adds NAT only and setup/down leaves forwarding on.
#[test]
fn setup_fetch_teardown_on_a_host_that_forwarded() {
    if !can_run() {
        return;
    }
    let real_mode = dev_net_tun_mode();
    let mut host = Host::new('r');
    let want = host.start_server("page.bin", 200_000, 11);
    host.set_forwarding(true);
    assert!(
        host.forwards_a_to_b(),
        "a cannot reach b with forwarding on"
    );

    let said = host.setup_up();
    assert!(said.contains("already on"), "setup/up said:\n{said}");
    let first = host.snapshot();
    assert!(
        !first.contains("chain forward"),
        "a forward chain on a forwarding host:\n{first}"
    );
    assert!(
        host.forwards_a_to_b(),
        "setup/up stopped forwarding between a and b"
    );
    host.setup_up();
    assert_eq!(host.snapshot(), first, "a second setup/up changed the host");

    let outcome = host.fetch_as(USER_ID, "page.bin");
    assert_eq!(
        outcome.code(),
        Some(0),
        "fetch as {USER} failed\n{}",
        outcome.describe()
    );
    assert_eq!(sha256_of_file(&host.out_dir().join("page.bin")), want);

    host.setup_down();
    assert_eq!(
        host.forwarding(),
        "1",
        "setup/down turned off forwarding it had not turned on"
    );
    assert_eq!(host.ruleset(), "", "setup/down left rules behind");
    assert!(
        host.forwards_a_to_b(),
        "a no longer reaches b after setup/down"
    );
    assert_eq!(
        dev_net_tun_mode(),
        real_mode,
        "the real /dev/net/tun changed"
    );
}
