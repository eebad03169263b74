//! The one line a successful download ends with: bytes, destination, rate, and the TCP
//! counters that tell the user how hard the network made it.

use std::time::Duration;

use url::Url;

use crate::tcp::ConnStats;

/// What a successful download reports in its summary line.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The URL as given (before any redirect), so several summaries can be told apart.
    pub url: Url,
    /// Body bytes saved (after decoding, with `--compressed`).
    pub bytes: u64,
    /// From the first SYN to the saved file.
    pub elapsed: Duration,
    /// TCP counters summed over every connection of the download (redirects included).
    pub tcp: TcpTotals,
    /// Where the body went, as the user should read it (a path, or "standard output").
    pub destination: String,
    /// `-c` found nothing left to download.
    pub already_complete: bool,
    /// `-I`: only the head was asked for (and printed).
    pub head_only: bool,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.already_complete {
            return write!(f, "{} is already complete", self.destination);
        }
        if self.head_only {
            return write!(f, "printed the response head of {}", self.url);
        }
        let secs = self.elapsed.as_secs_f64().max(1e-6);
        let mbit = self.bytes as f64 * 8.0 / secs / 1e6;
        write!(
            f,
            "saved {} bytes to {} in {:.2} s ({:.1} Mbit/s); retransmitted {}, received {} duplicate \
             and {} out-of-order segments, sent {} duplicate ACKs",
            self.bytes,
            self.destination,
            secs,
            mbit,
            self.tcp.retransmits_fast + self.tcp.retransmits_timeout,
            self.tcp.duplicate_segments_in,
            self.tcp.out_of_order_in,
            self.tcp.dup_acks_out,
        )
    }
}

/// The per-connection counters that matter to a user, summed over connections.
#[derive(Debug, Clone, Default)]
pub struct TcpTotals {
    /// Segments resent on duplicate ACKs or SACK (fast retransmit / recovery).
    pub retransmits_fast: u64,
    /// Segments resent when the retransmission timer fired.
    pub retransmits_timeout: u64,
    /// Segments received that held only data we already had.
    pub duplicate_segments_in: u64,
    /// Segments received ahead of a gap, kept for reassembly.
    pub out_of_order_in: u64,
    /// Duplicate ACKs we sent to report a gap.
    pub dup_acks_out: u64,
}

impl TcpTotals {
    /// Adds one connection's counters.
    pub(crate) fn add(&mut self, stats: &ConnStats) {
        self.retransmits_fast += stats.retransmits_fast;
        self.retransmits_timeout += stats.retransmits_timeout;
        self.duplicate_segments_in += stats.duplicate_segments_in;
        self.out_of_order_in += stats.out_of_order_in;
        self.dup_acks_out += stats.dup_acks_out;
    }
}
