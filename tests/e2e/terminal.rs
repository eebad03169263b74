//! A real terminal for tests of what users see: a detached tmux session on a private server
//! socket, whose screen can be captured as text. The server (and whatever runs in it) is
//! killed on drop.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

/// Columns and rows of the terminal: wide enough that a progress bar line never wraps.
const COLUMNS: u32 = 160;
const ROWS: u32 = 30;

/// Whether tmux is installed; tests that need it skip with a message otherwise.
pub fn have_tmux() -> bool {
    let found = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("skipped: needs tmux (apt-get install tmux; .ci/run should install it)");
    }
    found
}

/// One tmux server running one command in one pane.
pub struct Terminal {
    socket: String,
    /// The server's socket file, which tmux leaves behind when it is killed.
    socket_path: Option<PathBuf>,
    status_file: PathBuf,
}

impl Terminal {
    /// Runs `argv` (quoted here for the shell) in `cwd` in a new `COLUMNS`x`ROWS` terminal.
    /// `work_dir` holds the tmux configuration and the file the exit status is written to.
    pub fn run(label: &str, work_dir: &Path, cwd: &Path, argv: &[String]) -> Terminal {
        let socket = format!("tunstack-{label}-{}", std::process::id());
        let config = work_dir.join("tmux.conf");
        // The pane stays after the command exits, so its last screen can still be captured.
        fs::write(
            &config,
            "set -g remain-on-exit on\nset -g history-limit 1000\n",
        )
        .unwrap();
        let status_file = work_dir.join("terminal-exit-status");
        let command = format!(
            "{}; echo $? > {}",
            argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" "),
            quote(status_file.to_str().unwrap())
        );
        let mut terminal = Terminal {
            socket,
            socket_path: None,
            status_file,
        };
        let columns = COLUMNS.to_string();
        let rows = ROWS.to_string();
        let output = terminal.tmux(&[
            "-f",
            config.to_str().unwrap(),
            "new-session",
            "-d",
            "-s",
            "main",
            "-c",
            cwd.to_str().unwrap(),
            "-x",
            &columns,
            "-y",
            &rows,
            &command,
        ]);
        assert!(
            output.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let path = terminal.tmux(&["display-message", "-p", "#{socket_path}"]);
        terminal.socket_path = Some(PathBuf::from(String::from_utf8_lossy(&path.stdout).trim()))
            .filter(|p| path.status.success() && p.is_absolute());
        terminal
    }

    /// Everything the terminal shows or scrolled off (tmux's "Pane is dead" notice scrolls by a
    /// row), one string per row, blank rows at the end left out.
    pub fn screen(&self) -> Vec<String> {
        let output = self.tmux(&["capture-pane", "-p", "-S", "-", "-t", "main"]);
        assert!(
            output.status.success(),
            "tmux capture-pane failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut rows: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|l| l.trim_end().to_owned())
            .collect();
        while rows.last().is_some_and(String::is_empty) {
            rows.pop();
        }
        rows
    }

    /// The command's exit status once it has exited (`None` while it runs).
    pub fn exit_status(&self) -> Option<i32> {
        let text = fs::read_to_string(&self.status_file).ok()?;
        // Written by `echo`, so a read may catch it before the newline arrives.
        if !text.ends_with('\n') {
            return None;
        }
        text.trim().parse().ok()
    }

    /// Polls the screen (at most `limit`) until a row satisfies `wanted`; returns the screen.
    pub fn wait_for_row(
        &self,
        limit: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> Option<Vec<String>> {
        let deadline = Instant::now() + limit;
        loop {
            let screen = self.screen();
            if screen.iter().any(|row| wanted(row)) {
                return Some(screen);
            }
            if Instant::now() >= deadline || self.exit_status().is_some() {
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls (at most `limit`) until the command has exited; its status.
    pub fn wait_for_exit(&self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.exit_status() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .env("TERM", "xterm-256color")
            .output()
            .expect("run tmux")
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        // Ends this tmux server only (its private socket), and with it the pane's processes.
        let _ = self.tmux(&["kill-server"]);
        if let Some(path) = &self.socket_path {
            let _ = fs::remove_file(path);
        }
    }
}

/// `word` in single quotes for sh.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}
