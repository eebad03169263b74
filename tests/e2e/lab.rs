//! A sandbox (`setup/sandbox`) with test servers in it, torn down on drop whatever happens.
//!
//! Topology (see setup/sandbox): NAME-client holds tun0 (10.77.0.1/24; tunstack is 10.77.0.2)
//! and NAME-c 10.77.1.1; NAME-server holds NAME-s 10.77.1.2 with a route back to 10.77.0.0/24.
//! [`Lab::new_tap`] builds the TAP variant (`setup/sandbox up-tap`): tap0 on a bridge whose
//! other port leads to NAME-server, which holds 10.77.0.1/24 (the gateway) and 10.77.1.2.

use std::fs::{self, File};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::files::{seeded_bytes, sha256_hex, ScratchDir};
use super::process::{in_netns, python, Outcome, Running};

pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 2);
/// tunstack's own address on tun0 (or tap0), where `tunstack serve` listens.
pub const STACK_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// The port `tunstack serve` listens on by default.
pub const SERVE_PORT: u16 = 80;
pub const PYTHON_PORT: u16 = 8080;
pub const NGINX_PORT: u16 = 8081;
pub const ODD_PORT: u16 = 8082;
/// Nothing listens here: the server kernel answers SYNs with RST.
pub const CLOSED_PORT: u16 = 81;
/// The server namespace silently drops SYNs to this port once `drop_port` ran.
pub const DROPPED_PORT: u16 = 8099;

/// Loads nftables `rules` into namespace `netns` (tables vanish with the namespace).
pub fn load_nft(netns: &str, rules: &str) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", netns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("nft must be installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(rules.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "nft rejected {rules}");
}

/// `http://10.77.1.2:PORT/PATH` (`path` starts with `/`).
#[allow(dead_code)] // not every test file builds URLs this way
pub fn server_url(port: u16, path: &str) -> String {
    format!("http://{SERVER_IP}:{port}{path}")
}

/// A `--resolve HOST:PORT:ADDR` argument sending `host` on `port` to the lab's server.
#[allow(dead_code)] // not every test file resolves names
pub fn resolve_to_server(host: &str, port: u16) -> String {
    format!("{host}:{port}:{SERVER_IP}")
}

/// Longest a single `tunstack fetch` may run before the watchdog kills it.
pub const FETCH_LIMIT: Duration = Duration::from_secs(60);
const READY_LIMIT: Duration = Duration::from_secs(5);
/// Longest a download in progress may take to put on disk the bytes a test waits for.
#[allow(dead_code)] // not every test file waits for partial downloads
pub const PARTIAL_LIMIT: Duration = Duration::from_secs(20);

/// The binary under test; `TUNSTACK_E2E_BIN` substitutes another implementation of the same
/// command line (used to check the harness itself against a reference client).
pub fn tunstack_bin() -> String {
    std::env::var("TUNSTACK_E2E_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_tunstack").to_owned())
}

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The end-to-end tests need to create namespaces and TUN devices.
pub fn can_run() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root || !Path::new("/dev/net/tun").exists() {
        eprintln!("skipped: needs root and /dev/net/tun (run `sudo just test`)");
        return false;
    }
    true
}

struct Server {
    label: &'static str,
    child: Child,
    log: PathBuf,
}

/// One sandbox with its scratch directories and server processes.
pub struct Lab {
    name: String,
    scratch: ScratchDir,
    servers: Vec<Server>,
    client_rsts_at_start: u64,
    /// The TAP sandbox: tunstack runs with `--mode tap` on tap0.
    tap: bool,
}

impl Lab {
    /// Builds the sandbox `name` (at most 12 characters, unique per test).
    pub fn new(name: &str) -> Lab {
        Lab::build(name, false)
    }

    /// Builds the TAP sandbox `name` (`setup/sandbox up-tap`); fetches run with `--mode tap`.
    #[allow(dead_code)] // used by tests/tap.rs
    pub fn new_tap(name: &str) -> Lab {
        Lab::build(name, true)
    }

    fn build(name: &str, tap: bool) -> Lab {
        let scratch = ScratchDir::new(name);
        fs::create_dir(scratch.path().join("served")).unwrap();
        fs::create_dir(scratch.path().join("out")).unwrap();
        fs::create_dir(scratch.path().join("logs")).unwrap();
        let mut lab = Lab {
            name: name.to_owned(),
            scratch,
            servers: Vec::new(),
            client_rsts_at_start: 0,
            tap,
        };
        // From here on, Drop removes the namespaces even if `up` fails half-way.
        let up = if tap { "up-tap" } else { "up" };
        run_checked(Command::new(repo_path("setup/sandbox")).args([up, name]));
        lab.client_rsts_at_start = lab.client_out_rsts();
        lab
    }

    /// Turns the kernel's offloads on along the path (setup/sandbox turns them off): GRO on the
    /// client's veth and TSO/GSO at the server, so tun0 hands the stack 64 KiB super-segments.
    #[allow(dead_code)] // used by tests/chaos.rs
    pub fn enable_path_offloads(&self) {
        let client_veth = format!("{}-c", self.name);
        let server_veth = format!("{}-s", self.name);
        run_checked(
            Command::new("ip")
                .args(["netns", "exec", &self.client_ns()])
                .args(["ethtool", "-K", &client_veth, "gro", "on"]),
        );
        run_checked(
            Command::new("ip")
                .args(["netns", "exec", &self.server_ns()])
                .args(["ethtool", "-K", &server_veth, "tso", "on", "gso", "on"]),
        );
    }

    pub fn client_ns(&self) -> String {
        format!("{}-client", self.name)
    }

    pub fn server_ns(&self) -> String {
        format!("{}-server", self.name)
    }

    /// Files here are what the servers serve.
    pub fn served_dir(&self) -> PathBuf {
        self.scratch.path().join("served")
    }

    /// tunstack runs with this as its working directory and saves here.
    pub fn out_dir(&self) -> PathBuf {
        self.scratch.path().join("out")
    }

    /// Writes a reproducible file of `len` bytes under the served directory; returns its SHA-256.
    pub fn serve_file(&self, name: &str, len: usize, seed: u64) -> String {
        let bytes = seeded_bytes(len, seed);
        fs::write(self.served_dir().join(name), &bytes).unwrap();
        sha256_hex(&bytes)
    }

    /// python3 -m http.server on 10.77.1.2:8080.
    pub fn start_python(&mut self) {
        let served = self.served_dir();
        let port = PYTHON_PORT.to_string();
        let args = [
            python(),
            "-m",
            "http.server",
            port.as_str(),
            "--bind",
            &SERVER_IP.to_string(),
            "--directory",
            served.to_str().unwrap(),
        ];
        self.start_server("python-http", &args, PYTHON_PORT);
    }

    /// nginx on 10.77.1.2:8081 with sendfile, a single process, everything under the scratch dir.
    pub fn start_nginx(&mut self) {
        let server = format!(
            "server {{\n\
             \x20       listen {SERVER_IP}:{NGINX_PORT};\n\
             \x20       root {};\n\
             \x20   }}\n",
            self.served_dir().display()
        );
        self.start_nginx_servers(&server, NGINX_PORT);
    }

    /// nginx as `start_nginx` runs it, with the caller's `server { ... }` blocks (TLS, redirects);
    /// waits until something accepts on `port`.
    pub fn start_nginx_servers(&mut self, servers: &str, port: u16) {
        let prefix = self.scratch.path().join("nginx");
        fs::create_dir_all(&prefix).unwrap();
        let p = prefix.display();
        let config = format!(
            "daemon off;\n\
             master_process off;\n\
             worker_processes 1;\n\
             pid {p}/nginx.pid;\n\
             error_log {p}/error.log info;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n\
             \x20   access_log off;\n\
             \x20   sendfile on;\n\
             \x20   client_body_temp_path {p}/body;\n\
             \x20   proxy_temp_path {p}/proxy;\n\
             \x20   fastcgi_temp_path {p}/fastcgi;\n\
             \x20   uwsgi_temp_path {p}/uwsgi;\n\
             \x20   scgi_temp_path {p}/scgi;\n\
             \x20   types {{ application/octet-stream bin; }}\n\
             \x20   {servers}\
             }}\n"
        );
        let config_path = prefix.join("nginx.conf");
        fs::write(&config_path, config).unwrap();
        let prefix_arg = format!("{p}/");
        let error_log = format!("{p}/error.log");
        let args = [
            "nginx",
            "-p",
            prefix_arg.as_str(),
            "-e",
            error_log.as_str(),
            "-c",
            config_path.to_str().unwrap(),
        ];
        self.start_server("nginx", &args, port);
    }

    /// The test's own scratch directory (removed with the lab), for certificates and configs.
    #[allow(dead_code)] // used by tests/downloads.rs
    pub fn scratch_dir(&self) -> &Path {
        self.scratch.path()
    }

    /// tests/servers/odd_server.py on 10.77.1.2:8082.
    pub fn start_odd(&mut self) {
        let script = repo_path("tests/servers/odd_server.py");
        let served = self.served_dir();
        let port = ODD_PORT.to_string();
        let args = [
            python(),
            script.to_str().unwrap(),
            "--bind",
            &SERVER_IP.to_string(),
            "--port",
            port.as_str(),
            "--root",
            served.to_str().unwrap(),
        ];
        self.start_server("odd-server", &args, ODD_PORT);
    }

    /// Runs `args` in the server namespace as a server labelled `label` (its output goes to
    /// logs/LABEL.log), killed by PID with the lab; waits until something accepts on `port`.
    pub fn start_server(&mut self, label: &'static str, args: &[&str], port: u16) {
        let log = self
            .scratch
            .path()
            .join("logs")
            .join(format!("{label}.log"));
        let log_file = File::create(&log).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.server_ns()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {label}: {e}"));
        self.servers.push(Server { label, child, log });
        self.wait_until_accepting(port);
    }

    /// Polls (at most 5 s) until something in the server namespace accepts on `port`.
    fn wait_until_accepting(&mut self, port: u16) {
        let deadline = Instant::now() + READY_LIMIT;
        let target = SocketAddrV4::new(SERVER_IP, port);
        loop {
            let ns = self.server_ns();
            let accepted = in_netns(&ns, move || {
                TcpStream::connect_timeout(&SocketAddr::V4(target), Duration::from_millis(200))
                    .is_ok()
            });
            if accepted {
                return;
            }
            let server = self.servers.last_mut().unwrap();
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!(
                    "{} exited with {status} before accepting on {target}:\n{}",
                    server.label,
                    fs::read_to_string(&server.log).unwrap_or_default()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} did not accept on {target} within {READY_LIMIT:?}:\n{}",
                    server.label,
                    fs::read_to_string(&server.log).unwrap_or_default()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Makes the server namespace drop every SYN to `DROPPED_PORT`, in an nftables table of the
    /// test's own (it disappears with the namespace).
    pub fn drop_port(&self) {
        let rules = format!(
            "table inet e2e {{\n\
             \x20   chain input {{\n\
             \x20       type filter hook input priority 0; policy accept;\n\
             \x20       tcp dport {DROPPED_PORT} drop\n\
             \x20   }}\n\
             }}\n"
        );
        load_nft(&self.server_ns(), &rules);
    }

    /// `tunstack SUBCOMMAND` in the client namespace on the lab's device (tun0, or tap0 with
    /// `--mode tap`) as [`STACK_IP`], then `args`; standard input empty, standard error piped,
    /// standard output for the caller to choose.
    fn tunstack_command(&self, subcommand: &str, args: &[&str]) -> Command {
        let mut command = Command::new("ip");
        command.args([
            "netns",
            "exec",
            &self.client_ns(),
            &tunstack_bin(),
            subcommand,
        ]);
        if self.tap {
            let local_ip = format!("{STACK_IP}/24");
            command.args(["--mode", "tap", "--iface", "tap0", "--local-ip", &local_ip]);
        } else {
            command.args(["--iface", "tun0", "--local-ip", &STACK_IP.to_string()]);
        }
        command
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::piped());
        command
    }

    /// `tunstack fetch` in the client namespace, with `out_dir` as the working directory and
    /// standard output `stdout` (spawned, not yet watched: for tests that read its pipes).
    #[allow(dead_code)] // used by tests/slow_output.rs
    pub fn spawn_fetch_child(&self, args: &[&str], stdout: Stdio) -> Child {
        self.tunstack_command("fetch", args)
            .current_dir(self.out_dir())
            .stdout(stdout)
            .spawn()
            .expect("spawn tunstack")
    }

    /// `tunstack fetch` in the client namespace, with `out_dir` as the working directory.
    pub fn spawn_fetch(&self, args: &[&str]) -> Running {
        Running::new(self.spawn_fetch_child(args, Stdio::piped()))
    }

    /// `tunstack serve` in the client namespace with `args` (the served directory last, as
    /// `tunstack serve` takes it), standard output (the access log) piped. It is not waited
    /// for: see [`Lab::wait_until_serving`].
    #[allow(dead_code)] // not every test file runs tunstack serve
    pub fn spawn_serve(&self, args: &[&str]) -> Running {
        let child = self
            .tunstack_command("serve", args)
            .arg(self.served_dir())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn tunstack serve");
        Running::new(child)
    }

    /// Polls every 50 ms, for at most `limit`, until the server namespace's kernel can connect
    /// to `tunstack serve` at 10.77.0.2:80 (ARP first, in TAP mode); fails if `serve` exits
    /// first or time runs out.
    #[allow(dead_code)] // not every test file runs tunstack serve
    pub fn wait_until_serving(&self, serve: &Running, limit: Duration) {
        let deadline = Instant::now() + limit;
        let target = SocketAddr::V4(SocketAddrV4::new(STACK_IP, SERVE_PORT));
        loop {
            let accepted = in_netns(&self.server_ns(), move || {
                TcpStream::connect_timeout(&target, Duration::from_millis(300)).is_ok()
            });
            if accepted {
                return;
            }
            assert!(
                !serve.has_exited(),
                "tunstack serve exited before accepting"
            );
            assert!(
                Instant::now() < deadline,
                "tunstack serve did not accept within {limit:?}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `tunstack fetch` to completion (killed and failed after `FETCH_LIMIT`).
    pub fn fetch(&self, args: &[&str]) -> Outcome {
        self.spawn_fetch(args).finish(FETCH_LIMIT)
    }

    /// Polls every 20 ms, for at most `limit`, until `ready` says yes, while `running` keeps
    /// going. Fails, with the server logs, if `running` exits first or time runs out; `process`
    /// names `running` (e.g. "tunstack", "tcpdump") and `what` what is awaited in those messages.
    #[allow(dead_code)] // not every test file waits on a process in progress
    pub fn wait_while_running(
        &self,
        running: &Running,
        process: &str,
        limit: Duration,
        what: &str,
        mut ready: impl FnMut() -> bool,
    ) {
        let deadline = Instant::now() + limit;
        while !ready() {
            assert!(
                !running.has_exited(),
                "{process} exited while waiting for {what}\n{}",
                self.server_logs()
            );
            assert!(
                Instant::now() < deadline,
                "waited {limit:?} in vain for {what}\n{}",
                self.server_logs()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (at most `limit`, as `wait_while_running` with `process` naming `running`) until
    /// `measure` reports at least `bytes` of `what` on disk; returns the last measurement.
    #[allow(dead_code)] // not every test file waits for bytes on disk
    pub fn wait_for_bytes(
        &self,
        running: &Running,
        process: &str,
        limit: Duration,
        what: &str,
        bytes: u64,
        measure: impl Fn() -> u64,
    ) -> u64 {
        let mut size = 0;
        let awaited = format!("{what} to hold {bytes} bytes");
        self.wait_while_running(running, process, limit, &awaited, || {
            size = measure();
            size >= bytes
        });
        size
    }

    /// Bytes in all the files of `out_dir` together (a download in progress, whatever its
    /// temporary name).
    #[allow(dead_code)] // not every test file waits for partial downloads
    pub fn out_dir_bytes(&self) -> u64 {
        fs::read_dir(self.out_dir())
            .unwrap()
            .filter_map(|entry| entry.ok()?.metadata().ok())
            .map(|meta| meta.len())
            .sum()
    }

    /// The lab's device (tun0, or tap0 in the TAP sandbox) in the client namespace.
    fn device(&self) -> &'static str {
        if self.tap {
            "tap0"
        } else {
            "tun0"
        }
    }

    /// Statistics counter `name` (e.g. `tx_packets`, `tx_dropped`; tx is from the kernel to the
    /// stack) of the lab's device, as the client namespace's sysfs shows it: `ip netns exec`
    /// mounts that namespace's /sys, which a thread joining the namespace would not see.
    #[allow(dead_code)] // not every test file reads the device's counters
    pub fn device_counter(&self, name: &str) -> u64 {
        let path = format!("/sys/class/net/{}/statistics/{name}", self.device());
        let output = Command::new("ip")
            .args(["netns", "exec", &self.client_ns(), "cat", &path])
            .output()
            .expect("run ip netns exec");
        assert!(output.status.success(), "cannot read {path}");
        let text = String::from_utf8_lossy(&output.stdout);
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{path} holds {text:?}"))
    }

    /// TcpOutRsts of the client namespace's kernel.
    pub fn client_out_rsts(&self) -> u64 {
        tcp_counter(&self.client_ns(), "OutRsts")
    }

    /// The client namespace's kernel must never answer the stack's segments with RST: tun0's
    /// peer address is not the kernel's, so any RST there means packets went astray.
    pub fn assert_no_client_rst(&self) {
        let now = self.client_out_rsts();
        assert_eq!(
            now,
            self.client_rsts_at_start,
            "the client namespace kernel sent {} TCP RST(s)",
            now - self.client_rsts_at_start
        );
    }

    /// The log of a server, for failure messages.
    pub fn server_logs(&self) -> String {
        self.servers
            .iter()
            .map(|s| {
                format!(
                    "--- {} ---\n{}",
                    s.label,
                    fs::read_to_string(&s.log).unwrap_or_default()
                )
            })
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for server in &mut self.servers {
            let _ = server.child.kill();
            let _ = server.child.wait();
        }
        let status = Command::new(repo_path("setup/sandbox"))
            .args(["down", &self.name])
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!(
                "warning: `setup/sandbox down {}` failed: {status:?}",
                self.name
            );
        }
    }
}

/// A `Tcp` counter (e.g. `RetransSegs`, `OutRsts`) of namespace `netns`'s kernel, from
/// /proc/net/snmp.
pub fn tcp_counter(netns: &str, name: &str) -> u64 {
    netns_counter(netns, "snmp", "Tcp:", name)
}

/// A `TcpExt` counter (e.g. `TCPOFOQueue`) of namespace `netns`'s kernel, from
/// /proc/net/netstat.
#[allow(dead_code)] // used by tests/tap.rs
pub fn tcp_ext_counter(netns: &str, name: &str) -> u64 {
    netns_counter(netns, "netstat", "TcpExt:", name)
}

/// Counter `name` of the `section` lines (a header line, then a value line) of
/// /proc/net/`file` as namespace `netns` sees it.
fn netns_counter(netns: &str, file: &str, section: &str, name: &str) -> u64 {
    let path = format!("/proc/thread-self/net/{file}");
    let text = {
        let path = path.clone();
        in_netns(netns, move || {
            fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
        })
    };
    let mut lines = text.lines().filter(|line| line.starts_with(section));
    let found = lines.next().zip(lines.next()).and_then(|(header, values)| {
        let index = header.split_whitespace().position(|field| field == name)?;
        values.split_whitespace().nth(index)?.parse().ok()
    });
    found.unwrap_or_else(|| panic!("no {section} {name} in {netns}'s /proc/net/{file}"))
}

fn run_checked(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed with {}:\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
