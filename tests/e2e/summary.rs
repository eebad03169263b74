//! The success summary line of `tunstack fetch`, parsed so the chaos tests can record what
//! recovering from a bad network cost.

/// The numbers of `tunstack: saved N bytes to PATH in S s (R Mbit/s); retransmitted A, received
/// B duplicate and C out-of-order segments, sent D duplicate ACKs`.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub bytes: u64,
    pub seconds: f64,
    pub retransmitted: u64,
    pub duplicates_in: u64,
    pub out_of_order_in: u64,
    pub dup_acks_out: u64,
}

impl Summary {
    /// The first line of `stderr` with the summary's shape, if any.
    pub fn find(stderr: &str) -> Option<Summary> {
        stderr.lines().find_map(Summary::parse_line)
    }

    fn parse_line(line: &str) -> Option<Summary> {
        let rest = line.trim_end().strip_prefix("tunstack: saved ")?;
        let (bytes, rest) = rest.split_once(" bytes to ")?;
        let (transfer, counters) = rest.split_once("; retransmitted ")?;
        // The path comes before " in ", and may itself contain " in ".
        let (_, timing) = transfer.rsplit_once(" in ")?;
        let (seconds, _) = timing.split_once(" s (")?;
        let (retransmitted, rest) = counters.split_once(", received ")?;
        let (duplicates_in, rest) = rest.split_once(" duplicate and ")?;
        let (out_of_order_in, rest) = rest.split_once(" out-of-order segments, sent ")?;
        let dup_acks_out = rest.strip_suffix(" duplicate ACKs")?;
        Some(Summary {
            bytes: bytes.parse().ok()?,
            seconds: seconds.parse().ok()?,
            retransmitted: retransmitted.parse().ok()?,
            duplicates_in: duplicates_in.parse().ok()?,
            out_of_order_in: out_of_order_in.parse().ok()?,
            dup_acks_out: dup_acks_out.parse().ok()?,
        })
    }
}

#[test]
fn summary_line_is_parsed() {
    let stderr = "* impairing with seed 7 (replay with --seed 7)\n\
                  tunstack: saved 33554432 bytes to /tmp/in x/out.bin in 0.16 s (1629.6 Mbit/s); \
                  retransmitted 3, received 382 duplicate and 21938 out-of-order segments, \
                  sent 86 duplicate ACKs\n";
    assert_eq!(
        Summary::find(stderr),
        Some(Summary {
            bytes: 33_554_432,
            seconds: 0.16,
            retransmitted: 3,
            duplicates_in: 382,
            out_of_order_in: 21_938,
            dup_acks_out: 86,
        })
    );
    assert_eq!(Summary::find("tunstack: HTTP 404 Not Found\n"), None);
}
