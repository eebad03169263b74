//! The edge of `--trace FILE`: typed [`TraceRecord`]s become JSON Lines (serde_json), buffered,
//! with the `trace` header first. The driver hands records to a [`TraceSink`] as they are
//! drained, so the same code writes a real run's trace and the simulator's.

use std::io::{self, BufWriter, Write};
use std::time::Instant;

use serde::Serialize;

use super::event::{TraceEvent, TraceRecord};
use super::FORMAT_VERSION;

/// Where trace records go. The driver calls it; the owner flushes it at exit.
pub trait TraceSink {
    /// Takes one record, in the order the stack made its decisions.
    fn record(&mut self, record: &TraceRecord);
    /// Writes out what is buffered; reports the first error met since the last call.
    fn flush(&mut self) -> io::Result<()>;
}

/// JSON Lines to any writer (a file, a `Vec<u8>` in tests), times relative to `start`.
pub struct TraceWriter<W: Write> {
    out: BufWriter<W>,
    start: Instant,
    /// The first write error: later records are dropped, `flush` reports it.
    error: Option<io::Error>,
}

/// One line: `t`, then the event's keys (`ev` first), then `conn`.
#[derive(Serialize)]
struct Line<'a> {
    t: f64,
    #[serde(flatten)]
    event: &'a TraceEvent,
    #[serde(skip_serializing_if = "Option::is_none")]
    conn: Option<u64>,
}

impl<W: Write> TraceWriter<W> {
    /// Starts a trace written by `cmd` ("fetch", "serve", "sim"), its clock at `start`: the
    /// header line is written (buffered) at once.
    pub fn new(out: W, start: Instant, cmd: &str) -> Self {
        let mut writer = TraceWriter {
            out: BufWriter::with_capacity(64 << 10, out),
            start,
            error: None,
        };
        writer.record(&TraceRecord {
            at: start,
            conn: None,
            event: TraceEvent::Trace {
                version: FORMAT_VERSION,
                tool: "tunstack",
                cmd: cmd.to_string(),
            },
        });
        writer
    }

    /// Flushes and returns the writer (tests read a `Vec<u8>` back).
    pub fn into_inner(mut self) -> io::Result<W> {
        TraceSink::flush(&mut self)?;
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

impl<W: Write> TraceSink for TraceWriter<W> {
    fn record(&mut self, record: &TraceRecord) {
        if self.error.is_some() {
            return;
        }
        let micros = record.at.saturating_duration_since(self.start).as_micros();
        let line = Line {
            t: micros as f64 / 1e6,
            event: &record.event,
            conn: record.conn,
        };
        let written = serde_json::to_writer(&mut self.out, &line)
            .map_err(io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"));
        if let Err(err) = written {
            self.error = Some(err);
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(err) = self.error.take() {
            return Err(err);
        }
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddrV4};
    use std::time::Duration;

    use super::*;
    use crate::trace::event::{Dir, Rexmit, Role, SegFlags, Segment};

    fn text(records: &[TraceRecord], start: Instant) -> String {
        let mut writer = TraceWriter::new(Vec::new(), start, "sim");
        for r in records {
            writer.record(r);
        }
        String::from_utf8(writer.into_inner().unwrap()).unwrap()
    }

    #[test]
    fn lines_follow_the_documented_format() {
        let start = Instant::now();
        let at = start + Duration::from_micros(1_234_567);
        let records = [
            TraceRecord {
                at,
                conn: Some(1),
                event: TraceEvent::Open {
                    local: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 49152),
                    remote: SocketAddrV4::new(Ipv4Addr::new(10, 0, 1, 2), 80),
                    role: Role::Client,
                    iss: 7,
                },
            },
            TraceRecord {
                at,
                conn: Some(1),
                event: TraceEvent::Seg(Segment {
                    dir: Dir::Out,
                    seq: 1,
                    ack: Some(1),
                    len: 100,
                    flags: SegFlags(SegFlags::PSH | SegFlags::ACK),
                    win: 65535,
                    sack: vec![[5, 9]],
                    dsack: true,
                    rexmit: Some(Rexmit::Rack),
                    probe: None,
                    segs: None,
                }),
            },
        ];
        let out = text(&records, start);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            r#"{"t":0.0,"ev":"trace","version":1,"tool":"tunstack","cmd":"sim"}"#
        );
        assert_eq!(
            lines[1],
            r#"{"t":1.234567,"ev":"open","local":"10.0.0.2:49152","remote":"10.0.1.2:80","role":"client","iss":7,"conn":1}"#
        );
        assert_eq!(
            lines[2],
            r#"{"t":1.234567,"ev":"seg","dir":"out","seq":1,"ack":1,"len":100,"flags":"PA","win":65535,"sack":[[5,9]],"dsack":true,"rexmit":"rack","conn":1}"#
        );
    }

    #[test]
    fn flags_spell_sfrpau_in_order() {
        let all = SegFlags::from_header(0x3f);
        assert_eq!(serde_json::to_string(&all).unwrap(), r#""SFRPAU""#);
        let syn_ack = SegFlags::from_header(0x12);
        assert_eq!(serde_json::to_string(&syn_ack).unwrap(), r#""SA""#);
    }
}
