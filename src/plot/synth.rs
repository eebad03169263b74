//! A synthetic trace of a lossy transfer, for tests and the README picture: a sender that
//! sends a round of segments per RTT, loses some to an injected drop (`impair`, as `--impair`
//! would) and some on the "path" (no event: only the retransmission shows), recovers with fast
//! and SACK retransmissions, a tail loss probe near the end, and an RTO when a retransmission is
//! lost too. It is not TCP, only plausible input; the counts it returns are exact.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// The transfer to make up.
#[derive(Debug, Clone, PartialEq)]
pub struct Lossy {
    /// Payload bytes.
    pub bytes: u64,
    /// Segment size.
    pub mss: u64,
    /// Round-trip time in seconds.
    pub rtt: f64,
    /// Chance that `--impair` drops a data segment.
    pub injected: f64,
    /// Chance that the path loses a data segment.
    pub path: f64,
    /// The most the window grows to, in segments (the path's queue).
    pub max_window: u64,
    /// Random seed.
    pub seed: u64,
}

impl Default for Lossy {
    fn default() -> Self {
        Lossy {
            bytes: 4 << 20,
            mss: 1448,
            rtt: 0.04,
            injected: 0.01,
            path: 0.005,
            max_window: 220,
            seed: 1,
        }
    }
}

/// What the trace holds, counted while it was made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Made {
    /// The JSON Lines text.
    pub text: String,
    /// Injected drops of data segments.
    pub drops: u64,
    /// Retransmissions by cause.
    pub rexmits: BTreeMap<String, u64>,
    /// Data segments sent, retransmissions included.
    pub segments: u64,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        // xorshift64*: plenty for made-up losses.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Makes the trace of `spec`, connection 1, as `tunstack serve` would write it.
pub fn lossy_transfer(spec: &Lossy) -> Made {
    let mut rng = Rng(spec.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut events: Vec<(f64, String)> = Vec::new();
    let mut made = Made::default();
    let mss = spec.mss;
    let count = spec.bytes.div_ceil(mss);
    let seg_len = |i: u64| (spec.bytes - i * mss).min(mss);
    let mut ev = |t: f64, body: String| events.push((t, body));
    ev(0.0, "\"ev\":\"open\",\"conn\":1,\"local\":\"10.77.0.2:80\",\"remote\":\"10.77.1.2:40312\",\"role\":\"server\",\"iss\":12345".into());
    ev(
        0.0,
        "\"ev\":\"rwnd\",\"conn\":1,\"win\":65535,\"buffered\":0,\"capacity\":65535".into(),
    );
    ev(
        0.001,
        "\"ev\":\"state\",\"conn\":1,\"from\":\"SYN-RECEIVED\",\"to\":\"ESTABLISHED\",\"irs\":999"
            .into(),
    );
    ev(
        0.002,
        "\"ev\":\"rwnd\",\"conn\":1,\"win\":65415,\"buffered\":120,\"capacity\":65535".into(),
    );
    ev(
        0.003,
        "\"ev\":\"rwnd\",\"conn\":1,\"win\":65535,\"buffered\":0,\"capacity\":65535".into(),
    );

    let mut t = 0.004;
    let mut cwnd = 10 * mss;
    let mut ssthresh: Option<u64> = None;
    let (mut srtt, mut rttvar) = (spec.rtt, spec.rtt / 2.0);
    let mut rto = (srtt + 4.0 * rttvar).max(0.2);
    let mut next = 0u64;
    let mut delivered = BTreeSet::new();
    let mut cum = 0u64;
    let mut pending: Vec<(u64, &'static str)> = Vec::new();
    let mut in_recovery = false;
    let mut samples = 0u64;
    let ssthresh_text = |s: Option<u64>| s.map_or("null".to_owned(), |s| s.to_string());
    while cum < count && t < 600.0 {
        let budget = (cwnd / mss).max(1);
        let mut round: Vec<(u64, Option<&'static str>)> =
            pending.drain(..).map(|(i, c)| (i, Some(c))).collect();
        while (round.len() as u64) < budget && next < count {
            round.push((next, None));
            next += 1;
        }
        if round.is_empty() {
            break;
        }
        let spacing = spec.rtt * 0.8 / round.len() as f64;
        let mut lost = Vec::new();
        let inflight = round.len() as u64 * mss;
        for (k, &(i, cause)) in round.iter().enumerate() {
            let ts = t + k as f64 * spacing;
            let seq = 1 + i * mss;
            let len = seg_len(i);
            let mut line = format!("\"ev\":\"seg\",\"conn\":1,\"dir\":\"out\",\"seq\":{seq},\"ack\":121,\"len\":{len},\"flags\":\"A\",\"win\":65535");
            if let Some(cause) = cause {
                let _ = write!(line, ",\"rexmit\":\"{cause}\"");
                if cause == "tlp" {
                    line.push_str(",\"probe\":\"tlp\"");
                }
                *made.rexmits.entry(cause.to_owned()).or_default() += 1;
            }
            ev(ts, line);
            made.segments += 1;
            let injected = rng.next() < spec.injected;
            let path = !injected && rng.next() < spec.path;
            if injected {
                ev(ts, format!("\"ev\":\"impair\",\"conn\":1,\"dir\":\"out\",\"action\":\"drop\",\"seq\":{seq},\"len\":{len},\"flags\":\"A\""));
                made.drops += 1;
            }
            if injected || path {
                lost.push((i, cause.is_some()));
                continue;
            }
            delivered.insert(i);
            while delivered.contains(&cum) {
                cum += 1;
            }
            let ack = 1 + (cum * mss).min(spec.bytes);
            let queue = inflight as f64 / (spec.max_window * mss) as f64;
            let ta = ts + spec.rtt * (1.0 + 0.3 * queue) + rng.next() * spec.rtt * 0.05;
            let mut line = format!("\"ev\":\"seg\",\"conn\":1,\"dir\":\"in\",\"seq\":121,\"ack\":{ack},\"len\":0,\"flags\":\"A\",\"win\":3145728");
            let blocks = sack_blocks(&delivered, cum, i);
            if !blocks.is_empty() {
                let list: Vec<String> = blocks
                    .iter()
                    .map(|&(l, r)| format!("[{},{}]", 1 + l * mss, 1 + (r * mss).min(spec.bytes)))
                    .collect();
                let _ = write!(line, ",\"sack\":[{}]", list.join(","));
            }
            ev(ta, line);
            if cause.is_none() && k % 2 == 0 {
                let sample = ta - ts;
                rttvar = 0.75 * rttvar + 0.25 * (srtt - sample).abs();
                srtt = 0.875 * srtt + 0.125 * sample;
                rto = (srtt + 4.0 * rttvar).max(0.2);
                samples += 1;
                ev(ta, format!(
                    "\"ev\":\"rtt\",\"conn\":1,\"sample_ms\":{:.3},\"srtt_ms\":{:.3},\"rttvar_ms\":{:.3},\"rto_ms\":{:.1},\"backoff\":0",
                    sample * 1e3, srtt * 1e3, rttvar * 1e3, rto * 1e3
                ));
            }
        }
        t += spec.rtt * (1.0 + 0.3 * inflight as f64 / (spec.max_window * mss) as f64);
        if lost.is_empty() {
            if in_recovery {
                in_recovery = false;
                ev(t, format!("\"ev\":\"cc\",\"conn\":1,\"cwnd\":{cwnd},\"ssthresh\":{},\"inflight\":0,\"cause\":\"recovery_exit\"", ssthresh_text(ssthresh)));
            }
            let slow = ssthresh.is_none_or(|s| cwnd < s);
            cwnd = if slow { cwnd * 2 } else { cwnd + mss }.min(spec.max_window * mss);
            let cause = if slow { "slow_start" } else { "avoidance" };
            ev(t, format!("\"ev\":\"cc\",\"conn\":1,\"cwnd\":{cwnd},\"ssthresh\":{},\"inflight\":{inflight},\"cause\":\"{cause}\"", ssthresh_text(ssthresh)));
            continue;
        }
        if lost.iter().any(|&(_, again)| again) {
            // A retransmission was lost as well: only the timer gets us out.
            t += rto;
            ev(t, format!("\"ev\":\"rtt\",\"conn\":1,\"sample_ms\":null,\"srtt_ms\":{:.3},\"rttvar_ms\":{:.3},\"rto_ms\":{:.1},\"backoff\":1", srtt * 1e3, rttvar * 1e3, rto * 2e3));
            ssthresh = Some((cwnd / 2).max(2 * mss));
            cwnd = mss;
            in_recovery = false;
            ev(t, format!("\"ev\":\"cc\",\"conn\":1,\"cwnd\":{cwnd},\"ssthresh\":{},\"inflight\":0,\"cause\":\"rto\"", ssthresh_text(ssthresh)));
            pending = lost.iter().map(|&(i, _)| (i, "rto")).collect();
            continue;
        }
        let tail = lost.iter().all(|&(i, _)| i + 3 >= count);
        pending = lost
            .iter()
            .enumerate()
            .map(|(n, &(i, _))| {
                (
                    i,
                    if tail {
                        "tlp"
                    } else if n == 0 {
                        "fast"
                    } else {
                        "sack"
                    },
                )
            })
            .collect();
        if !in_recovery && !tail {
            in_recovery = true;
            ssthresh = Some((cwnd / 2).max(2 * mss));
            cwnd = ssthresh.unwrap_or(cwnd);
            ev(t - spec.rtt * 0.5, format!("\"ev\":\"cc\",\"conn\":1,\"cwnd\":{cwnd},\"ssthresh\":{},\"inflight\":{inflight},\"cause\":\"recovery_enter\"", ssthresh_text(ssthresh)));
        }
    }
    let _ = samples;
    ev(
        t + 0.001,
        "\"ev\":\"state\",\"conn\":1,\"from\":\"ESTABLISHED\",\"to\":\"FIN-WAIT-1\"".into(),
    );
    ev(
        t + 0.002,
        "\"ev\":\"close\",\"conn\":1,\"error\":null,\"stats\":{}".into(),
    );
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut text = String::with_capacity(events.len() * 120);
    text.push_str(
        "{\"t\":0.000000,\"ev\":\"trace\",\"version\":1,\"tool\":\"tunstack\",\"cmd\":\"sim\"}\n",
    );
    for (t, body) in events {
        let _ = writeln!(text, "{{\"t\":{t:.6},{body}}}");
    }
    made.text = text;
    made
}

/// Up to three SACK blocks of segments above `cum`, the one holding `latest` first, as segment
/// index ranges.
fn sack_blocks(delivered: &BTreeSet<u64>, cum: u64, latest: u64) -> Vec<(u64, u64)> {
    let mut blocks: Vec<(u64, u64)> = Vec::new();
    for &i in delivered.range(cum + 1..) {
        match blocks.last_mut() {
            Some(last) if last.1 == i => last.1 = i + 1,
            _ => blocks.push((i, i + 1)),
        }
    }
    blocks.sort_by_key(|&(l, r)| (!(l <= latest && latest < r), std::cmp::Reverse(l)));
    blocks.truncate(3);
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::{parse, Flow};

    #[test]
    fn the_made_up_transfer_reads_back_with_its_counts() {
        let made = lossy_transfer(&Lossy::default());
        let trace = parse(&made.text).unwrap();
        let flow = Flow::new(&trace.conns[&1]);
        assert_eq!(flow.summary.drops, made.drops);
        assert!(made.drops > 10, "{}", made.drops);
        assert_eq!(flow.summary.rexmits, made.rexmits);
        assert_eq!(flow.data.len() as u64, made.segments);
        assert_eq!(flow.acks.last().unwrap().1, 1 + (4 << 20));
        assert_eq!(
            lossy_transfer(&Lossy::default()),
            made,
            "same seed, same trace"
        );
    }
}
