//! What the user sees while downloads run: a progress bar per download on a terminal
//! (indicatif), a plain line now and then when stderr is a file or pipe, nothing with `-q`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a non-terminal gets a progress line (only when bytes moved since the last one).
const LINE_INTERVAL: Duration = Duration::from_secs(5);
/// How often bars are refreshed.
const BAR_INTERVAL: Duration = Duration::from_millis(200);

/// One download's numbers for a report.
pub struct Snapshot<'a> {
    pub index: usize,
    pub name: &'a str,
    pub received: u64,
    pub expected: Option<u64>,
    pub retransmissions: u64,
    /// The receive window we advertise on the download's connection (`None` between
    /// connections): what the sender may have in flight to us.
    pub window: Option<u64>,
    /// Segments that arrived out of order so far on the current connection: the sender's
    /// losses (or reordering) as a receiver sees them.
    pub out_of_order: u64,
}

/// The chosen way of showing progress.
pub enum Progress {
    Quiet,
    Bars {
        multi: MultiProgress,
        bars: HashMap<usize, ProgressBar>,
        last: Option<Instant>,
    },
    Lines {
        started: HashMap<usize, (Instant, u64)>,
        last: Option<Instant>,
    },
}

impl Progress {
    /// Bars when stderr is a terminal, lines otherwise, nothing when quiet.
    pub fn new(quiet: bool) -> Self {
        if quiet {
            Progress::Quiet
        } else if std::io::stderr().is_terminal() {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(5));
            Progress::Bars {
                multi,
                bars: HashMap::new(),
                last: None,
            }
        } else {
            Progress::Lines {
                started: HashMap::new(),
                last: None,
            }
        }
    }

    /// When the next update is due, so the event loop wakes for it.
    pub fn next_update(&self, now: Instant) -> Option<Instant> {
        match self {
            Progress::Quiet => None,
            Progress::Bars { last, .. } => Some(last.map_or(now, |t| t + BAR_INTERVAL)),
            Progress::Lines { last, .. } => last.map(|t| t + LINE_INTERVAL),
        }
    }

    /// Shows the downloads in progress.
    pub fn update(&mut self, now: Instant, downloads: &[Snapshot]) {
        match self {
            Progress::Quiet => {}
            Progress::Bars { multi, bars, last } => {
                if last.is_some_and(|t| now < t + BAR_INTERVAL) {
                    return;
                }
                *last = Some(now);
                for d in downloads {
                    let bar = bars
                        .entry(d.index)
                        .or_insert_with(|| multi.add(new_bar(d.name)));
                    if let Some(total) = d.expected {
                        bar.set_length(total);
                    }
                    bar.set_position(d.received);
                    bar.set_message(status(d));
                }
            }
            Progress::Lines { started, last } => {
                // Every download's rate is measured from when it was first seen.
                for d in downloads {
                    started.entry(d.index).or_insert((now, d.received));
                }
                let first = last.is_none();
                if last.is_some_and(|t| now < t + LINE_INTERVAL) {
                    return;
                }
                *last = Some(now);
                if first {
                    return;
                }
                for d in downloads {
                    let (since, before) = started[&d.index];
                    if d.received == before {
                        continue;
                    }
                    started.insert(d.index, (now, d.received));
                    let secs = now.saturating_duration_since(since).as_secs_f64().max(1e-3);
                    let rate = d.received.saturating_sub(before) as f64 * 8.0 / secs / 1e6;
                    let of = d
                        .expected
                        .map(|t| format!(" of {}", mib(t)))
                        .unwrap_or_default();
                    // This line's shape stays as it was: scripts read it.
                    eprintln!(
                        "  {}: {}{of} at {rate:.1} Mbit/s, {} retransmissions",
                        d.name,
                        mib(d.received),
                        d.retransmissions
                    );
                }
            }
        }
    }

    /// Removes a finished download's bar before its summary line is printed.
    pub fn finish(&mut self, index: usize) {
        if let Progress::Bars { multi, bars, .. } = self {
            if let Some(bar) = bars.remove(&index) {
                bar.finish_and_clear();
                multi.remove(&bar);
            }
        }
    }

    /// Prints a line without tearing a bar.
    pub fn println(&self, line: &str) {
        match self {
            Progress::Bars { multi, .. } if !multi.is_hidden() => {
                let _ = multi.println(line);
            }
            _ => eprintln!("{line}"),
        }
    }
}

fn new_bar(name: &str) -> ProgressBar {
    let style = ProgressStyle::with_template(
        "{prefix:.bold} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    // Built hidden: setting a prefix on a visible bar would draw it once outside the
    // MultiProgress, leaving a stray row on the terminal.
    ProgressBar::hidden()
        .with_style(style)
        .with_prefix(name.to_string())
}

/// The bar's message: the connection's state beside the numbers: our window, what arrived out of order (the
/// sender's losses as we see them) and our own retransmissions.
fn status(d: &Snapshot) -> String {
    let window = d
        .window
        .map(|w| format!("rwnd {} KiB, ", w / 1024))
        .unwrap_or_default();
    format!(
        "{window}{} out of order, {} rtx",
        d.out_of_order, d.retransmissions
    )
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}
