//! One connection's trace turned into the series a picture draws: which way the data went, the
//! segments, the ACK and window lines, losses injected and not, and the sender's state.
//!
//! The trace is written from our side, so a download (`fetch`) carries its data *in* and a
//! served file *out*. The time–sequence graph is always of the data: [`View::Sender`] when we
//! sent most of the payload (our retransmissions carry their cause), [`View::Receiver`] when we
//! received it (the peer's retransmissions are only seen as data below what already arrived).

use std::collections::BTreeMap;

use super::reader::{Cc, Conn, Dir, Rtt, Rwnd};

/// Whose data the time–sequence graph shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// We sent the data: segments out, ACKs and windows in.
    Sender,
    /// We received the data: segments in, our ACKs and windows out.
    Receiver,
}

/// How a data segment came to be sent.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SegKind {
    /// A first transmission.
    New,
    /// Our retransmission, with the trace's cause ("rto", "fast", "sack", ...).
    Rexmit(String),
    /// A probe that is not a retransmission ("zwp", "keepalive").
    Probe(String),
    /// The peer's retransmission, seen as data below the highest byte already received.
    PeerRexmit,
}

impl SegKind {
    /// The label of the kind in legends and titles.
    pub fn label(&self) -> String {
        match self {
            SegKind::New => "data".to_owned(),
            SegKind::Rexmit(cause) => format!("rexmit {cause}"),
            SegKind::Probe(kind) => format!("probe {kind}"),
            SegKind::PeerRexmit => "peer rexmit".to_owned(),
        }
    }
}

/// A data segment of the time–sequence graph.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSeg {
    /// When it was sent (or accepted).
    pub t: f64,
    /// First byte.
    pub seq: u64,
    /// One past the last byte.
    pub end: u64,
    /// First transmission, retransmission, probe.
    pub kind: SegKind,
    /// Line in the trace.
    pub line: usize,
}

/// An injected drop of a data segment (`impair` with `action` "drop").
#[derive(Debug, Clone, PartialEq)]
pub struct Drop {
    /// When the datagram was dropped.
    pub t: f64,
    /// First byte of the dropped segment.
    pub seq: u64,
    /// One past its last byte.
    pub end: u64,
    /// Line in the trace.
    pub line: usize,
}

/// The totals the title shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Payload bytes of the data direction, counted once (highest byte minus lowest).
    pub bytes: u64,
    /// First to last event of the connection, in seconds.
    pub duration: f64,
    /// Retransmissions (segments) by cause; "peer" in the receiver view.
    pub rexmits: BTreeMap<String, u64>,
    /// Injected drops of data segments in the data direction.
    pub drops: u64,
    /// Injected drops of any segment of the connection (both directions, ACKs included).
    pub drops_all: u64,
    /// Other impairments by action (duplicate, reorder, corrupt, delay).
    pub impairs: BTreeMap<String, u64>,
    /// Retransmissions of bytes that no injected drop had taken: path losses, or spurious.
    pub unexplained: u64,
}

/// Everything drawn for one connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    /// The connection id.
    pub id: u64,
    /// "10.77.0.2:80 ⇄ 10.77.1.2:5000 (server)".
    pub endpoints: String,
    /// How the connection ended, when it ended in an error (from `close`).
    pub close_error: Option<String>,
    /// Whose data is drawn.
    pub view: View,
    /// First event's time.
    pub start: f64,
    /// Last event's time.
    pub end: f64,
    /// Data segments in time order.
    pub data: Vec<DataSeg>,
    /// Cumulative ACK of the data, as (time, ack), in time order.
    pub acks: Vec<(f64, u64)>,
    /// The receive-window edge (ack + window) as (time, edge).
    pub window: Vec<(f64, u64)>,
    /// SACK blocks as (time, left, right); D-SACK blocks are left out.
    pub sacks: Vec<(f64, u64, u64)>,
    /// Injected drops of data segments of the data direction.
    pub drops: Vec<Drop>,
    /// RTT samples and backoffs.
    pub rtt: Vec<Rtt>,
    /// Congestion control changes.
    pub cc: Vec<Cc>,
    /// Our receive window and buffer.
    pub rwnd: Vec<Rwnd>,
    /// The peer's advertised window, as (time, bytes).
    pub peer_win: Vec<(f64, u64)>,
    /// Totals for the title.
    pub summary: Summary,
}

impl Flow {
    /// The series of connection `conn`.
    pub fn new(conn: &Conn) -> Flow {
        let bytes_out: u64 = conn
            .segs
            .iter()
            .filter(|s| s.dir == Dir::Out)
            .map(|s| s.len)
            .sum();
        let bytes_in: u64 = conn
            .segs
            .iter()
            .filter(|s| s.dir == Dir::In)
            .map(|s| s.len)
            .sum();
        let view = if bytes_out >= bytes_in {
            View::Sender
        } else {
            View::Receiver
        };
        let (data_dir, ack_dir) = match view {
            View::Sender => (Dir::Out, Dir::In),
            View::Receiver => (Dir::In, Dir::Out),
        };
        let mut flow = Flow {
            id: conn.id,
            endpoints: endpoints(conn),
            close_error: conn.close_error.clone(),
            view,
            start: conn.start,
            end: conn.end,
            data: Vec::new(),
            acks: Vec::new(),
            window: Vec::new(),
            sacks: Vec::new(),
            drops: Vec::new(),
            rtt: conn.rtt.clone(),
            cc: conn.cc.clone(),
            rwnd: conn.rwnd.clone(),
            peer_win: Vec::new(),
            summary: Summary {
                duration: conn.end - conn.start,
                ..Summary::default()
            },
        };
        let mut highest = 0u64;
        let mut lowest = u64::MAX;
        for seg in &conn.segs {
            if seg.dir == Dir::In {
                flow.peer_win.push((seg.t, seg.win));
            }
            if seg.dir == data_dir && seg.len > 0 {
                let end = seg.seq + seg.len;
                let kind = match (&seg.rexmit, &seg.probe) {
                    (Some(cause), _) => SegKind::Rexmit(cause.clone()),
                    (None, Some(probe)) if probe != "tlp" => SegKind::Probe(probe.clone()),
                    _ if view == View::Receiver && seg.seq < highest => SegKind::PeerRexmit,
                    _ => SegKind::New,
                };
                match &kind {
                    SegKind::Rexmit(cause) => {
                        *flow.summary.rexmits.entry(cause.clone()).or_default() += 1;
                    }
                    SegKind::PeerRexmit => {
                        *flow.summary.rexmits.entry("peer".into()).or_default() += 1
                    }
                    _ => {}
                }
                highest = highest.max(end);
                lowest = lowest.min(seg.seq);
                flow.data.push(DataSeg {
                    t: seg.t,
                    seq: seg.seq,
                    end,
                    kind,
                    line: seg.line,
                });
            }
            if seg.dir == ack_dir {
                if let Some(ack) = seg.ack {
                    flow.acks.push((seg.t, ack));
                    flow.window.push((seg.t, ack + seg.win));
                }
                let blocks = seg.sack.iter().skip(usize::from(seg.dsack));
                flow.sacks.extend(blocks.map(|&(l, r)| (seg.t, l, r)));
            }
        }
        flow.summary.bytes = highest.saturating_sub(if lowest == u64::MAX { 0 } else { lowest });
        for imp in &conn.impairs {
            if imp.action != "drop" {
                *flow.summary.impairs.entry(imp.action.clone()).or_default() += 1;
                continue;
            }
            flow.summary.drops_all += 1;
            if let (true, Some(seq), Some(len)) = (imp.dir == data_dir, imp.seq, imp.len) {
                if len > 0 {
                    flow.drops.push(Drop {
                        t: imp.t,
                        seq,
                        end: seq + len,
                        line: imp.line,
                    });
                }
            }
        }
        flow.summary.drops = flow.drops.len() as u64;
        // A retransmission is explained when an injected drop took its first byte before it.
        let dropped: std::collections::HashMap<u64, f64> =
            flow.drops.iter().map(|d| (d.seq, d.t)).collect();
        flow.summary.unexplained = flow
            .data
            .iter()
            .filter(|d| matches!(d.kind, SegKind::Rexmit(_) | SegKind::PeerRexmit))
            .filter(|d| dropped.get(&d.seq).is_none_or(|&t| t > d.t))
            .count() as u64;
        flow
    }

    /// Goodput over time from the ACK line: bytes newly acknowledged per bin, as (bin start,
    /// bin width, bits per second). The bin is about a 150th of the connection's duration,
    /// rounded to 1, 2 or 5 times a power of ten (100 ms for a 15 s transfer), at least 1 ms.
    pub fn goodput(&self) -> (f64, Vec<(f64, f64)>) {
        let span = (self.end - self.start).max(1e-3);
        let bin = nice_step(span / 150.0).max(1e-3);
        let bins = ((span / bin).ceil() as usize).max(1);
        let mut bytes = vec![0u64; bins];
        let mut last = None::<u64>;
        for &(t, ack) in &self.acks {
            if let Some(previous) = last {
                if ack > previous {
                    let at = (((t - self.start) / bin) as usize).min(bins - 1);
                    bytes[at] += ack - previous;
                }
            }
            last = Some(last.map_or(ack, |p| p.max(ack)));
        }
        let rates = bytes
            .iter()
            .enumerate()
            .map(|(i, &b)| (self.start + i as f64 * bin, b as f64 * 8.0 / bin))
            .collect();
        (bin, rates)
    }
}

/// 1, 2 or 5 times a power of ten, at least `x`.
pub fn nice_step(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 || x.is_infinite() {
        return 1.0;
    }
    let power = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|&s| s >= x * 0.999_999)
        .unwrap_or(10.0 * power)
}

fn endpoints(conn: &Conn) -> String {
    let local = conn.local.as_deref().unwrap_or("?");
    let remote = conn.remote.as_deref().unwrap_or("?");
    match conn.role.as_deref() {
        Some(role) => format!("{local} ⇄ {remote} ({role})"),
        None => format!("{local} ⇄ {remote}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::reader::parse;

    #[test]
    fn a_served_flow_is_drawn_from_the_senders_side() {
        let trace = parse(concat!(
            "{\"t\":0,\"ev\":\"trace\",\"version\":1}\n",
            "{\"t\":0.0,\"ev\":\"open\",\"conn\":1,\"local\":\"10.77.0.2:80\",\"remote\":\"10.77.1.2:5000\",\"role\":\"server\"}\n",
            "{\"t\":0.1,\"ev\":\"seg\",\"conn\":1,\"dir\":\"out\",\"seq\":1,\"ack\":1,\"len\":1000,\"flags\":\"A\",\"win\":100}\n",
            "{\"t\":0.1,\"ev\":\"seg\",\"conn\":1,\"dir\":\"out\",\"seq\":1001,\"ack\":1,\"len\":1000,\"flags\":\"A\",\"win\":100}\n",
            "{\"t\":0.1,\"ev\":\"impair\",\"conn\":1,\"dir\":\"out\",\"action\":\"drop\",\"seq\":1001,\"len\":1000}\n",
            "{\"t\":0.2,\"ev\":\"seg\",\"conn\":1,\"dir\":\"in\",\"seq\":1,\"ack\":1001,\"len\":0,\"flags\":\"A\",\"win\":5000,\"sack\":[[2001,3001]]}\n",
            "{\"t\":0.3,\"ev\":\"seg\",\"conn\":1,\"dir\":\"out\",\"seq\":1001,\"ack\":1,\"len\":1000,\"flags\":\"A\",\"win\":100,\"rexmit\":\"sack\"}\n",
            "{\"t\":0.4,\"ev\":\"seg\",\"conn\":1,\"dir\":\"in\",\"seq\":1,\"ack\":3001,\"len\":0,\"flags\":\"A\",\"win\":5000,\"sack\":[[1001,2001]],\"dsack\":true}\n",
        ))
        .unwrap();
        let flow = Flow::new(&trace.conns[&1]);
        assert_eq!(flow.view, View::Sender);
        assert_eq!(flow.data.len(), 3);
        assert_eq!(flow.data[2].kind, SegKind::Rexmit("sack".into()));
        assert_eq!(flow.acks, vec![(0.2, 1001), (0.4, 3001)]);
        assert_eq!(flow.window, vec![(0.2, 6001), (0.4, 8001)]);
        assert_eq!(flow.sacks, vec![(0.2, 2001, 3001)]);
        assert_eq!(flow.drops.len(), 1);
        assert_eq!(flow.summary.rexmits["sack"], 1);
        assert_eq!(flow.summary.bytes, 2000);
        assert!(flow.endpoints.contains("(server)"));
    }

    #[test]
    fn a_download_is_drawn_from_the_receivers_side() {
        let trace = parse(concat!(
            "{\"t\":0,\"ev\":\"trace\",\"version\":1}\n",
            "{\"t\":0.1,\"ev\":\"seg\",\"conn\":1,\"dir\":\"in\",\"seq\":1,\"ack\":1,\"len\":1000,\"flags\":\"A\",\"win\":100}\n",
            "{\"t\":0.1,\"ev\":\"impair\",\"conn\":1,\"dir\":\"in\",\"action\":\"drop\",\"seq\":1001,\"len\":1000}\n",
            "{\"t\":0.2,\"ev\":\"seg\",\"conn\":1,\"dir\":\"in\",\"seq\":2001,\"ack\":1,\"len\":1000,\"flags\":\"A\",\"win\":100}\n",
            "{\"t\":0.2,\"ev\":\"seg\",\"conn\":1,\"dir\":\"out\",\"seq\":1,\"ack\":1001,\"len\":0,\"flags\":\"A\",\"win\":9000,\"sack\":[[2001,3001]]}\n",
            "{\"t\":0.3,\"ev\":\"seg\",\"conn\":1,\"dir\":\"in\",\"seq\":1001,\"ack\":1,\"len\":1000,\"flags\":\"A\",\"win\":100}\n",
            "{\"t\":0.3,\"ev\":\"impair\",\"conn\":1,\"dir\":\"out\",\"action\":\"drop\",\"seq\":1,\"len\":0}\n",
        ))
        .unwrap();
        let flow = Flow::new(&trace.conns[&1]);
        assert_eq!(flow.view, View::Receiver);
        assert_eq!(flow.data[2].kind, SegKind::PeerRexmit);
        assert_eq!(flow.drops.len(), 1);
        assert_eq!(flow.summary.drops_all, 2);
        assert_eq!(flow.acks, vec![(0.2, 1001)]);
    }

    #[test]
    fn goodput_counts_new_acknowledged_bytes_per_bin() {
        let mut flow = Flow::new(&Conn::default());
        flow.start = 0.0;
        flow.end = 15.0;
        flow.acks = vec![
            (0.05, 0),
            (0.05, 1000),
            (0.15, 3000),
            (0.16, 2000),
            (0.17, 3500),
        ];
        let (bin, rates) = flow.goodput();
        assert_eq!(bin, 0.1);
        assert_eq!(rates.len(), 150);
        assert!((rates[0].1 - 80_000.0).abs() < 1e-6);
        assert!((rates[1].1 - 200_000.0).abs() < 1e-6);
    }

    #[test]
    fn steps_are_one_two_five() {
        assert_eq!(nice_step(0.1), 0.1);
        assert_eq!(nice_step(0.13), 0.2);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(7.0), 10.0);
    }
}
