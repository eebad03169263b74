//! Running child processes with a watchdog, so that a hung `tunstack` fails the test instead of
//! hanging it.

use std::io::Read;
use std::process::{Child, ExitStatus};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// What a finished child did.
#[derive(Debug)]
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Outcome {
    /// The exit code, or `None` when a signal ended the process.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Everything worth printing when an assertion about this run fails.
    pub fn describe(&self) -> String {
        format!(
            "status {:?} after {:.1?}\n--- stderr ---\n{}\n--- stdout ({} bytes) ---\n{}",
            self.status,
            self.elapsed,
            self.stderr,
            self.stdout.len(),
            String::from_utf8_lossy(&self.stdout[..self.stdout.len().min(2000)])
        )
    }
}

/// A child whose output is being collected in the background.
pub struct Running {
    child: Option<Child>,
    started: Instant,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl Running {
    /// Takes over a child spawned with piped stdout and stderr and starts draining both pipes,
    /// so a child writing a lot (a body on stdout) never blocks on a full pipe.
    pub fn new(mut child: Child) -> Running {
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(drain);
        Running {
            child: Some(child),
            started: Instant::now(),
            stdout,
            stderr,
        }
    }

    /// The child's process id, for signals.
    pub fn pid(&self) -> libc::pid_t {
        let child = self.child.as_ref().expect("child already reaped");
        libc::pid_t::try_from(child.id()).expect("pid fits pid_t")
    }

    /// Sends `signal` to the child (still unreaped, so the PID cannot have been reused).
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: plain kill(2) on our own unreaped child.
        let result = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(result, 0, "kill({}, {signal}) failed", self.pid());
    }

    /// Whether the child has exited (without reaping it).
    pub fn has_exited(&self) -> bool {
        wait_without_reaping(self.pid(), libc::WNOHANG)
    }

    /// Waits for the child to exit; kills it with SIGKILL and panics if it takes longer than
    /// `limit`.
    pub fn finish(mut self, limit: Duration) -> Outcome {
        let mut child = self.child.take().expect("child already reaped");
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        let reaped = Arc::new(Mutex::new(false));
        let (cancel, cancelled) = mpsc::channel::<()>();
        let watchdog = {
            let reaped = Arc::clone(&reaped);
            thread::spawn(move || {
                if cancelled.recv_timeout(limit).is_ok() {
                    return false;
                }
                let reaped = reaped.lock().unwrap();
                if !*reaped {
                    // SAFETY: the child is not reaped yet (we hold the lock that guards reaping),
                    // so `pid` still names it.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
                true
            })
        };
        // Wait for the exit without reaping, so the watchdog can never signal a recycled PID.
        wait_without_reaping(pid, 0);
        let status = {
            let mut reaped = reaped.lock().unwrap();
            let status = child.wait().expect("wait for child");
            *reaped = true;
            status
        };
        let _ = cancel.send(());
        let fired = watchdog.join().unwrap();
        let stdout = self.stdout.take().map(join_output).unwrap_or_default();
        let stderr = self.stderr.take().map(join_output).unwrap_or_default();
        let outcome = Outcome {
            status,
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            elapsed: self.started.elapsed(),
        };
        assert!(
            !fired,
            "the process was still running after {limit:?} and was killed\n{}",
            outcome.describe()
        );
        outcome
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

fn join_output(handle: JoinHandle<Vec<u8>>) -> Vec<u8> {
    handle.join().unwrap_or_default()
}

/// Blocks (or, with WNOHANG, checks) until `pid` has exited, leaving it a zombie; true if it has.
fn wait_without_reaping(pid: libc::pid_t, extra_flags: libc::c_int) -> bool {
    loop {
        // SAFETY: waitid fills a zeroed siginfo_t we own.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | libc::WNOWAIT | extra_flags;
        let result = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) };
        if result == 0 {
            // With WNOHANG and no state change, si_pid stays 0.
            // SAFETY: waitid succeeded, so si_pid is initialised.
            return unsafe { info.si_pid() } != 0;
        }
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EINTR) {
            panic!("waitid({pid}) failed: {error}");
        }
    }
}

/// Asserts the exit status, showing the whole run when it differs.
#[allow(dead_code)] // not every test file checks exit statuses this way
pub fn assert_exit(outcome: &Outcome, code: i32) {
    assert_eq!(
        outcome.code(),
        Some(code),
        "wrong exit status\n{}",
        outcome.describe()
    );
}

/// What tunstack writes before each line about the run on stderr: errors, notices, summaries.
pub const LINE_PREFIX: &str = "tunstack: ";
/// The informational line `--impair` prints (without the prefix); not an error.
pub const SEED_LINE_PREFIX: &str = "* impairing with seed";

/// The stderr lines that start with `tunstack: `, without it.
#[allow(dead_code)] // not every test file reads error lines
pub fn tunstack_lines(outcome: &Outcome) -> Vec<&str> {
    outcome
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix(LINE_PREFIX))
        .collect()
}

/// The one `tunstack: ` line on stderr, without its prefix; other lines (progress lines, the
/// `--impair` seed line) may stand beside it. [`sole_error_line`] allows none.
#[allow(dead_code)] // not every test file reads error lines
pub fn tunstack_line(outcome: &Outcome) -> String {
    let lines = tunstack_lines(outcome);
    assert_eq!(
        lines.len(),
        1,
        "expected exactly one error line\n{}",
        outcome.describe()
    );
    lines[0].to_owned()
}

/// Exit status `code`, and `message` as the one `tunstack: ` line ([`tunstack_line`]).
/// [`assert_fails_with_sole_line`] allows no other line beside it.
#[allow(dead_code)] // not every test file checks failures this way
pub fn assert_fails_with(outcome: &Outcome, code: i32, message: &str) {
    assert_exit(outcome, code);
    assert_eq!(
        tunstack_line(outcome),
        message,
        "wrong error line\n{}",
        outcome.describe()
    );
}

/// Exit status `code`, and `message` as the only line on stderr, the `--impair` seed line aside
/// ([`sole_error_line`]).
#[allow(dead_code)] // not every test file checks failures this way
pub fn assert_fails_with_sole_line(outcome: &Outcome, code: i32, message: &str) {
    assert_exit(outcome, code);
    assert_eq!(
        sole_error_line(outcome),
        message,
        "wrong error line\n{}",
        outcome.describe()
    );
}

/// Exit status `code`, and a `tunstack: ` line ([`tunstack_line`]) that mentions `fragment`.
#[allow(dead_code)] // not every test file checks failures this way
pub fn assert_fails_mentioning(outcome: &Outcome, code: i32, fragment: &str) {
    assert_exit(outcome, code);
    let message = tunstack_line(outcome);
    assert!(
        message.contains(fragment),
        "error line {message:?} does not mention {fragment:?}\n{}",
        outcome.describe()
    );
}

/// The one line on stderr (the `--impair` seed line aside), which must be a `tunstack: ` line,
/// without its prefix.
#[allow(dead_code)] // not every test file reads error lines
pub fn sole_error_line(outcome: &Outcome) -> String {
    let lines: Vec<&str> = outcome
        .stderr
        .lines()
        .filter(|line| !line.starts_with(SEED_LINE_PREFIX))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "expected exactly one error line\n{}",
        outcome.describe()
    );
    let message = lines[0].strip_prefix(LINE_PREFIX).unwrap_or_else(|| {
        panic!(
            "the error line lacks the {LINE_PREFIX:?} prefix\n{}",
            outcome.describe()
        )
    });
    assert!(!message.trim().is_empty(), "empty error line");
    message.to_owned()
}

/// Runs `work` on a fresh thread that has joined the network namespace `ns`; other threads of
/// the test process are unaffected.
#[allow(dead_code)] // used by lab.rs and tests/host_setup.rs
pub fn in_netns<T: Send + 'static>(ns: &str, work: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    thread::spawn(move || {
        let handle = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        // SAFETY: setns on a namespace fd we hold open; it only affects this thread.
        let result = unsafe {
            libc::setns(
                std::os::unix::io::AsRawFd::as_raw_fd(&handle),
                libc::CLONE_NEWNET,
            )
        };
        assert_eq!(
            result,
            0,
            "setns({path}): {}",
            std::io::Error::last_os_error()
        );
        work()
    })
    .join()
    .expect("namespace thread panicked")
}

/// The real interpreter behind `python3` (not a version-manager shim), so that the PID we get
/// from spawning it is the server's own and can be killed directly.
#[allow(dead_code)] // used by lab.rs and tests/host_setup.rs
pub fn python() -> &'static str {
    static PYTHON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PYTHON.get_or_init(|| {
        let output = std::process::Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 must be installed");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    })
}
