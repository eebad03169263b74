//! Reads a `--trace` file (docs/trace-format.md, version 1) into per-connection event lists.
//!
//! The reader is the one place that knows the file's shape: keys it does not know are ignored
//! (later versions only add), events it does not know are skipped, and everything after it works
//! on plain structs. A trace of a process that was killed ends in half a line; that last line is
//! dropped and reported ([`Trace::truncated_tail`]) instead of failing the whole picture.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The trace format version this reader understands.
pub const VERSION: u64 = 1;

/// A whole trace: the connections in it, by id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    /// What wrote the trace: "fetch", "serve" or "sim" (free text, for the title).
    pub cmd: Option<String>,
    /// Connections by their `conn` id, in id order.
    pub conns: BTreeMap<u64, Conn>,
    /// True when the last line was cut short (no newline, not JSON) and was left out.
    pub truncated_tail: bool,
    /// Time of the last event in the file, in seconds.
    pub end: f64,
}

/// Everything the trace says about one connection, in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conn {
    /// The `conn` id.
    pub id: u64,
    /// Our address, "a.b.c.d:port", from `open`.
    pub local: Option<String>,
    /// The peer's address, from `open`.
    pub remote: Option<String>,
    /// "client" or "server", from `open`.
    pub role: Option<String>,
    /// Time of the first event of the connection.
    pub start: f64,
    /// Time of the last event of the connection.
    pub end: f64,
    /// The one-line reason of a `close` with an error.
    pub close_error: Option<String>,
    /// Segments sent and accepted.
    pub segs: Vec<Seg>,
    /// RTT samples and RTO backoffs.
    pub rtt: Vec<Rtt>,
    /// Congestion window changes.
    pub cc: Vec<Cc>,
    /// Our receive window and buffer.
    pub rwnd: Vec<Rwnd>,
    /// What `--impair` did to this connection's datagrams.
    pub impairs: Vec<Impair>,
    /// State changes, as (time, new state).
    pub states: Vec<(f64, String)>,
    /// Zero-window episodes' starts and ends.
    pub zero_windows: Vec<ZeroWindow>,
}

/// Which way a segment or datagram went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    /// From the peer to us.
    In,
    /// From us to the peer.
    Out,
}

/// A `seg` event.
#[derive(Debug, Clone, PartialEq)]
pub struct Seg {
    /// Seconds since the trace began.
    pub t: f64,
    /// In or out.
    pub dir: Dir,
    /// Relative, unwrapped sequence number.
    pub seq: u64,
    /// Relative acknowledgment number, when the ACK flag is set.
    pub ack: Option<u64>,
    /// Payload bytes.
    pub len: u64,
    /// Flag letters, e.g. "PA".
    pub flags: String,
    /// Window in bytes.
    pub win: u64,
    /// SACK blocks `[left, right)`.
    pub sack: Vec<(u64, u64)>,
    /// The first SACK block is a D-SACK.
    pub dsack: bool,
    /// Why this is a retransmission ("rto", "fast", ...), absent for a first transmission.
    pub rexmit: Option<String>,
    /// What kind of probe this is ("tlp", "zwp", "keepalive").
    pub probe: Option<String>,
    /// Wire segments in an offload super-segment (1 when absent).
    pub segs: u32,
    /// The 1-based line of the trace, for hover details.
    pub line: usize,
}

/// An `rtt` event.
#[derive(Debug, Clone, PartialEq)]
pub struct Rtt {
    /// Seconds since the trace began.
    pub t: f64,
    /// The sample, or `None` when the line reports an RTO backoff.
    pub sample_ms: Option<f64>,
    /// Smoothed RTT.
    pub srtt_ms: f64,
    /// RTT variation.
    pub rttvar_ms: f64,
    /// Retransmission timeout.
    pub rto_ms: f64,
    /// Consecutive timeouts.
    pub backoff: u32,
}

/// A `cc` event.
#[derive(Debug, Clone, PartialEq)]
pub struct Cc {
    /// Seconds since the trace began.
    pub t: f64,
    /// Congestion window in bytes.
    pub cwnd: u64,
    /// Slow-start threshold, `None` while infinite.
    pub ssthresh: Option<u64>,
    /// Bytes in flight (RFC 6675 pipe).
    pub inflight: u64,
    /// Why it changed.
    pub cause: String,
}

/// An `rwnd` event.
#[derive(Debug, Clone, PartialEq)]
pub struct Rwnd {
    /// Seconds since the trace began.
    pub t: f64,
    /// The window we advertise.
    pub win: u64,
    /// Bytes held in the receive buffer.
    pub buffered: u64,
    /// The receive buffer's size.
    pub capacity: u64,
}

/// An `impair` event that belongs to a connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Impair {
    /// Seconds since the trace began.
    pub t: f64,
    /// Which way the datagram went.
    pub dir: Dir,
    /// "drop", "duplicate", "reorder", "corrupt" or "delay".
    pub action: String,
    /// Sequence number of the TCP segment, relative.
    pub seq: Option<u64>,
    /// Payload bytes of the TCP segment.
    pub len: Option<u64>,
    /// The 1-based line of the trace.
    pub line: usize,
}

/// A `zero_window` event.
#[derive(Debug, Clone, PartialEq)]
pub struct ZeroWindow {
    /// Seconds since the trace began.
    pub t: f64,
    /// "peer" or "ours".
    pub side: String,
    /// "start" or "end".
    pub phase: String,
}

/// Why a trace cannot be read: one line, with the line number when it is about a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReadError(pub String);

/// Every key of every event; absent keys stay `None`, unknown keys are ignored.
#[derive(Debug, Deserialize)]
struct Line {
    t: Option<f64>,
    ev: Option<String>,
    conn: Option<u64>,
    version: Option<serde_json::Value>,
    cmd: Option<String>,
    local: Option<String>,
    remote: Option<String>,
    role: Option<String>,
    to: Option<String>,
    dir: Option<Dir>,
    seq: Option<u64>,
    ack: Option<u64>,
    len: Option<u64>,
    flags: Option<String>,
    win: Option<u64>,
    sack: Option<Vec<(u64, u64)>>,
    dsack: Option<bool>,
    rexmit: Option<String>,
    probe: Option<String>,
    segs: Option<u32>,
    sample_ms: Option<f64>,
    srtt_ms: Option<f64>,
    rttvar_ms: Option<f64>,
    rto_ms: Option<f64>,
    backoff: Option<u32>,
    cwnd: Option<u64>,
    ssthresh: Option<u64>,
    inflight: Option<u64>,
    cause: Option<String>,
    buffered: Option<u64>,
    capacity: Option<u64>,
    side: Option<String>,
    phase: Option<String>,
    action: Option<String>,
    error: Option<String>,
}

/// Parses a whole trace held in memory.
pub fn parse(text: &str) -> Result<Trace, ReadError> {
    let mut trace = Trace::default();
    let mut seen_header = false;
    let ends_with_newline = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let last = lines.len();
    for (index, raw) in lines.iter().enumerate() {
        let number = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let line: Line = match serde_json::from_str(raw) {
            Ok(line) => line,
            Err(_) if number == last && !ends_with_newline && seen_header => {
                trace.truncated_tail = true;
                break;
            }
            Err(error) => {
                // serde_json says "at line 1 column N" of the one line it was given.
                let text = error.to_string();
                let what = text
                    .rsplit_once(" at line ")
                    .map_or(text.as_str(), |(what, _)| what);
                return Err(ReadError(format!(
                    "line {number}, column {}: {what}",
                    error.column()
                )));
            }
        };
        if !seen_header {
            check_header(&line, number)?;
            trace.cmd = line.cmd;
            seen_header = true;
            continue;
        }
        apply(&mut trace, line, number)?;
    }
    if !seen_header {
        return Err(ReadError(
            "empty trace: no {\"ev\":\"trace\",\"version\":1} line".to_owned(),
        ));
    }
    Ok(trace)
}

fn check_header(line: &Line, number: usize) -> Result<(), ReadError> {
    if line.ev.as_deref() != Some("trace") {
        return Err(ReadError(format!(
            "line {number}: not a tunstack trace: the first event must be \"trace\" with a version"
        )));
    }
    match &line.version {
        Some(v) if v.as_u64() == Some(VERSION) => Ok(()),
        Some(v) => Err(ReadError(format!(
            "line {number}: trace format version {v} is not supported (this tunstack reads version {VERSION})"
        ))),
        None => Err(ReadError(format!(
            "line {number}: the trace line has no version (this tunstack reads version {VERSION})"
        ))),
    }
}

fn need<T>(value: Option<T>, key: &str, ev: &str, number: usize) -> Result<T, ReadError> {
    value.ok_or_else(|| ReadError(format!("line {number}: \"{ev}\" event without \"{key}\"")))
}

fn apply(trace: &mut Trace, line: Line, number: usize) -> Result<(), ReadError> {
    let ev = need(line.ev.as_deref(), "ev", "an", number)?;
    let t = need(line.t, "t", ev, number)?;
    if !t.is_finite() {
        return Err(ReadError(format!("line {number}: \"t\" is not a number")));
    }
    trace.end = trace.end.max(t);
    // Events of no connection (arp, impair of a datagram of none) say nothing about a flow.
    let Some(id) = line.conn else {
        return Ok(());
    };
    let conn = trace.conns.entry(id).or_insert_with(|| Conn {
        id,
        start: t,
        end: t,
        ..Conn::default()
    });
    conn.start = conn.start.min(t);
    conn.end = conn.end.max(t);
    match ev {
        "open" => {
            conn.local = line.local;
            conn.remote = line.remote;
            conn.role = line.role;
        }
        "state" => conn.states.push((t, need(line.to, "to", ev, number)?)),
        "seg" => conn.segs.push(Seg {
            t,
            dir: need(line.dir, "dir", ev, number)?,
            seq: need(line.seq, "seq", ev, number)?,
            ack: line.ack,
            len: line.len.unwrap_or(0),
            flags: line.flags.unwrap_or_default(),
            win: line.win.unwrap_or(0),
            sack: line.sack.unwrap_or_default(),
            dsack: line.dsack.unwrap_or(false),
            rexmit: line.rexmit,
            probe: line.probe,
            segs: line.segs.unwrap_or(1),
            line: number,
        }),
        "rtt" => conn.rtt.push(Rtt {
            t,
            sample_ms: line.sample_ms,
            srtt_ms: need(line.srtt_ms, "srtt_ms", ev, number)?,
            rttvar_ms: line.rttvar_ms.unwrap_or(0.0),
            rto_ms: need(line.rto_ms, "rto_ms", ev, number)?,
            backoff: line.backoff.unwrap_or(0),
        }),
        "cc" => conn.cc.push(Cc {
            t,
            cwnd: need(line.cwnd, "cwnd", ev, number)?,
            ssthresh: line.ssthresh,
            inflight: line.inflight.unwrap_or(0),
            cause: line.cause.unwrap_or_default(),
        }),
        "rwnd" => conn.rwnd.push(Rwnd {
            t,
            win: need(line.win, "win", ev, number)?,
            buffered: line.buffered.unwrap_or(0),
            capacity: line.capacity.unwrap_or(0),
        }),
        "impair" => conn.impairs.push(Impair {
            t,
            dir: need(line.dir, "dir", ev, number)?,
            action: need(line.action, "action", ev, number)?,
            seq: line.seq,
            len: line.len,
            line: number,
        }),
        "zero_window" => conn.zero_windows.push(ZeroWindow {
            t,
            side: line.side.unwrap_or_default(),
            phase: line.phase.unwrap_or_default(),
        }),
        "close" => conn.close_error = line.error,
        // ack_decision, arp and events of later versions: not drawn.
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "{\"t\":0.0,\"ev\":\"trace\",\"version\":1,\"tool\":\"tunstack\",\"cmd\":\"serve\"}\n";

    fn trace(body: &str) -> Result<Trace, ReadError> {
        parse(&format!("{HEADER}{body}"))
    }

    #[test]
    fn events_land_in_their_connection() {
        let t = trace(concat!(
            "{\"t\":0.001,\"ev\":\"open\",\"conn\":1,\"local\":\"10.77.0.2:80\",\"remote\":\"10.77.1.2:5000\",\"role\":\"server\",\"iss\":7}\n",
            "{\"t\":0.002,\"ev\":\"seg\",\"conn\":1,\"dir\":\"out\",\"seq\":1,\"ack\":1,\"len\":1448,\"flags\":\"A\",\"win\":65535,\"rexmit\":\"fast\"}\n",
            "{\"t\":0.003,\"ev\":\"seg\",\"conn\":1,\"dir\":\"in\",\"seq\":1,\"ack\":1449,\"len\":0,\"flags\":\"A\",\"win\":1000,\"sack\":[[2897,4345]],\"dsack\":false}\n",
            "{\"t\":0.004,\"ev\":\"cc\",\"conn\":1,\"cwnd\":14480,\"ssthresh\":null,\"inflight\":2896,\"cause\":\"slow_start\"}\n",
            "{\"t\":0.005,\"ev\":\"rtt\",\"conn\":1,\"sample_ms\":null,\"srtt_ms\":2.0,\"rttvar_ms\":1.0,\"rto_ms\":400,\"backoff\":1}\n",
            "{\"t\":0.006,\"ev\":\"impair\",\"conn\":1,\"dir\":\"out\",\"action\":\"drop\",\"seq\":1449,\"len\":1448,\"flags\":\"A\"}\n",
            "{\"t\":0.007,\"ev\":\"rwnd\",\"conn\":2,\"win\":100,\"buffered\":5,\"capacity\":200}\n",
            "{\"t\":0.008,\"ev\":\"arp\",\"what\":\"request\",\"ip\":\"10.0.0.1\"}\n",
        ))
        .unwrap();
        assert_eq!(t.cmd.as_deref(), Some("serve"));
        assert_eq!(t.conns.len(), 2);
        let c = &t.conns[&1];
        assert_eq!(c.remote.as_deref(), Some("10.77.1.2:5000"));
        assert_eq!(c.segs.len(), 2);
        assert_eq!(c.segs[0].rexmit.as_deref(), Some("fast"));
        assert_eq!(c.segs[0].line, 3);
        assert_eq!(c.segs[1].sack, vec![(2897, 4345)]);
        assert_eq!(c.cc[0].ssthresh, None);
        assert_eq!(c.rtt[0].sample_ms, None);
        assert_eq!(c.impairs[0].seq, Some(1449));
        assert_eq!(t.conns[&2].rwnd[0].capacity, 200);
        assert_eq!(t.end, 0.008);
        assert!(!t.truncated_tail);
    }

    #[test]
    fn unknown_keys_and_events_are_ignored() {
        let t = trace(concat!(
            "{\"t\":1.0,\"ev\":\"teleport\",\"conn\":3,\"where\":\"moon\"}\n",
            "{\"t\":1.5,\"ev\":\"seg\",\"conn\":3,\"dir\":\"in\",\"seq\":0,\"len\":0,\"flags\":\"S\",\"win\":1,\"ecn\":\"ce\",\"nested\":{\"a\":[1,2]}}\n",
        ))
        .unwrap();
        assert_eq!(t.conns[&3].segs.len(), 1);
        assert_eq!(t.conns[&3].start, 1.0);
    }

    #[test]
    fn a_cut_last_line_is_dropped_and_reported() {
        let t = trace("{\"t\":1.0,\"ev\":\"cc\",\"conn\":1,\"cwnd\":10,\"inflight\":0}\n{\"t\":1.1,\"ev\":\"seg\",\"co").unwrap();
        assert!(t.truncated_tail);
        assert_eq!(t.conns[&1].cc.len(), 1);
        // The same damage in the middle is an error with its line number.
        let error = trace(
            "{\"t\":1.1,\"ev\":\"seg\",\"co\n{\"t\":1.0,\"ev\":\"cc\",\"conn\":1,\"cwnd\":10}\n",
        )
        .unwrap_err();
        assert!(
            error
                .0
                .starts_with("line 2, column 23: EOF while parsing a string"),
            "{error}"
        );
        assert!(!error.0.contains('\n'));
    }

    #[test]
    fn malformed_lines_name_their_line() {
        for (body, want) in [
            (
                "{\"t\":1,\"ev\":\"seg\",\"conn\":1,\"dir\":\"in\"}\n",
                "line 2: \"seg\" event without \"seq\"",
            ),
            (
                "{\"t\":1,\"ev\":\"seg\",\"conn\":1,\"dir\":\"up\",\"seq\":0}\n",
                "line 2, column 37: unknown variant `up`",
            ),
            (
                "{\"ev\":\"cc\",\"conn\":1,\"cwnd\":1}\n",
                "line 2: \"cc\" event without \"t\"",
            ),
            (
                "{\"t\":1,\"ev\":\"cc\",\"conn\":1,\"cwnd\":-5}\n",
                "line 2, column 35: invalid value: integer `-5`, expected u64",
            ),
            ("[1,2]\n", "line 2, column 4: invalid type"),
        ] {
            let error = trace(body).unwrap_err().0;
            assert!(error.starts_with(want), "{body}: {error}");
        }
    }

    #[test]
    fn the_version_is_checked_first() {
        let error = parse("{\"t\":0,\"ev\":\"trace\",\"version\":2}\n")
            .unwrap_err()
            .0;
        assert_eq!(
            error,
            "line 1: trace format version 2 is not supported (this tunstack reads version 1)"
        );
        let error = parse("{\"t\":0,\"ev\":\"trace\"}\n").unwrap_err().0;
        assert!(error.contains("no version"), "{error}");
        let error = parse("{\"t\":0,\"ev\":\"seg\",\"conn\":1}\n")
            .unwrap_err()
            .0;
        assert!(error.starts_with("line 1: not a tunstack trace"), "{error}");
        assert!(parse("").unwrap_err().0.starts_with("empty trace"));
        assert!(parse("\n\n").is_err());
    }
}
