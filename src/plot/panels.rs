//! What each panel shows and how: the time–sequence graph, congestion control, RTT, goodput and
//! the receive buffer. Every series becomes its own layer (see [`super::svg`]); colours follow
//! tcptrace where it has a convention (green ACK line, amber window edge, purple SACK blocks).

use std::ops::Range;

use plotters::prelude::*;

use super::decimate::{self, Columns};
use super::marks::{as_f64, bars, legend, mark, path_in, thin, Key};
use super::model::{Flow, SegKind, View};
use super::svg::{bytes, layer, Chart, Drawn, Layer, Panel, Pixels, FIRST_TOP};

const DATA: RGBColor = RGBColor(0x1c, 0x3f, 0x94);
const ACK: RGBColor = RGBColor(0x2b, 0x8a, 0x3e);
const WINDOW: RGBColor = RGBColor(0xe0, 0x9f, 0x00);
const SACK: RGBColor = RGBColor(0xb1, 0x97, 0xfc);
const DROP: RGBColor = RGBColor(0x00, 0x00, 0x00);
const GRID_BOLD: RGBColor = RGBColor(0xdd, 0xdd, 0xdd);
const GRID_LIGHT: RGBColor = RGBColor(0xf1, 0xf1, 0xf1);
pub(super) const TEXT: RGBColor = RGBColor(0x34, 0x3a, 0x40);

/// The colour of a retransmission cause (and of the peer's retransmissions and probes).
pub fn cause_colour(kind: &SegKind) -> RGBColor {
    match kind {
        SegKind::New => DATA,
        SegKind::PeerRexmit => RGBColor(0xe0, 0x31, 0x31),
        SegKind::Probe(_) => RGBColor(0x86, 0x8e, 0x96),
        SegKind::Rexmit(cause) => match cause.as_str() {
            "rto" => RGBColor(0xe0, 0x31, 0x31),
            "fast" => RGBColor(0xf7, 0x67, 0x07),
            "sack" => RGBColor(0xd6, 0x33, 0x6c),
            "rack" => RGBColor(0x9c, 0x36, 0xb5),
            "newreno" => RGBColor(0xa0, 0x52, 0x2d),
            "rescue" => RGBColor(0x0c, 0xa6, 0x78),
            "tlp" => RGBColor(0x10, 0x98, 0xad),
            "syn" => RGBColor(0x86, 0x8e, 0x96),
            _ => RGBColor(0x5c, 0x94, 0x0d),
        },
    }
}

/// A series of the receive-window panel: name, label, values, colour, line width.
type Named<'a> = (&'a str, &'a str, Vec<(f64, f64)>, RGBColor, u32);

/// What a panel drew, by kind of layer.
pub struct DrawnPanel {
    /// The plotting area in pixels.
    pub pixels: Pixels,
    /// Time tick labels and vertical grid lines.
    pub x_axis: String,
    /// Value tick labels, horizontal grid lines, axis descriptions.
    pub y_axis: String,
    /// Lines, bars and areas (stretch with a time zoom).
    pub lines: Vec<Layer>,
    /// One element per event (keep their shape under a time zoom).
    pub marks: Vec<Layer>,
    /// One group per legend entry.
    pub legend: Vec<Layer>,
}

/// The panels, top to bottom, with their y ranges.
pub fn layout(flow: &Flow) -> Vec<Panel> {
    let mut top = FIRST_TOP;
    let mut next = |height: u32| {
        let at = top;
        top += height;
        at
    };
    let (seq_lo, seq_hi) = seq_range(flow);
    let cc_hi = flow
        .cc
        .iter()
        .map(|c| c.cwnd.max(c.inflight))
        .max()
        .unwrap_or(0) as f64;
    let ss_hi = flow.cc.iter().filter_map(|c| c.ssthresh).max().unwrap_or(0) as f64;
    // Small panels keep their top quarter for the legend.
    let cc_hi = cc_hi.max(ss_hi.min(cc_hi * 1.5)).max(1.0) * 1.3;
    let (rtt_lo, rtt_hi) = rtt_range(flow);
    let (_, goodput) = flow.goodput();
    let gp_hi = goodput.iter().map(|g| g.1).fold(0.0, f64::max).max(1.0) / 1e6 * 1.3;
    let rwnd_hi = flow
        .rwnd
        .iter()
        .map(|r| r.win.max(r.buffered).max(r.capacity))
        .chain(peer_window(flow).iter().map(|p| p.1))
        .max()
        .unwrap_or(0)
        .max(1) as f64
        * 1.3;
    vec![
        Panel {
            key: "seq",
            top: next(560),
            height: 560,
            y: seq_lo..seq_hi,
            y_desc: match flow.view {
                View::Sender => "sequence (bytes sent)".into(),
                View::Receiver => "sequence (bytes received)".into(),
            },
            y_format: bytes,
            y_kind: "bytes",
        },
        Panel {
            key: "cc",
            top: next(190),
            height: 190,
            y: 0.0..cc_hi,
            y_desc: "cwnd (bytes)".into(),
            y_format: if flow.cc.is_empty() { no_label } else { bytes },
            y_kind: "bytes",
        },
        Panel {
            key: "rtt",
            top: next(190),
            height: 190,
            y: rtt_lo..rtt_hi,
            y_desc: "RTT (ms, log)".into(),
            y_format: if flow.rtt.is_empty() {
                no_label
            } else {
                log_ms
            },
            y_kind: "ms-log",
        },
        Panel {
            key: "goodput",
            top: next(170),
            height: 170,
            y: 0.0..gp_hi,
            y_desc: "goodput (Mbit/s)".into(),
            y_format: if flow.acks.is_empty() {
                no_label
            } else {
                |v| format!("{v:.1}")
            },
            y_kind: "plain",
        },
        Panel {
            key: "rwnd",
            top: next(200),
            height: 200,
            y: 0.0..rwnd_hi,
            y_desc: "receive window".into(),
            y_format: if flow.rwnd.is_empty() && peer_window(flow).is_empty() {
                no_label
            } else {
                bytes
            },
            y_kind: "bytes",
        },
    ]
}

/// The y labels of a panel with nothing to draw: none (its range means nothing).
fn no_label(_: f64) -> String {
    String::new()
}

fn log_ms(v: f64) -> String {
    let ms = 10f64.powf(v);
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 1.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

fn seq_range(flow: &Flow) -> (f64, f64) {
    let lo = flow
        .data
        .iter()
        .map(|d| d.seq)
        .chain(flow.acks.iter().map(|a| a.1))
        .min()
        .unwrap_or(0);
    let hi = flow
        .data
        .iter()
        .map(|d| d.end)
        .chain(flow.acks.iter().map(|a| a.1))
        .chain(flow.drops.iter().map(|d| d.end))
        .max()
        .unwrap_or(1)
        .max(lo + 1);
    let span = (hi - lo) as f64;
    // The window edge is drawn, but may run far above the data: it gets a quarter more at most.
    let edge = flow.window.iter().map(|w| w.1).max().unwrap_or(hi) as f64;
    let top = edge
        .min(hi as f64 + span * 0.25)
        .max(hi as f64 + span * 0.03);
    (lo as f64, top)
}

fn rtt_range(flow: &Flow) -> (f64, f64) {
    let values = flow
        .rtt
        .iter()
        .flat_map(|r| [r.sample_ms.unwrap_or(r.srtt_ms), r.srtt_ms, r.rto_ms])
        .filter(|v| *v > 0.0);
    let (lo, hi) = values.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if hi <= 0.0 {
        return (0.0, 3.0);
    }
    // A little below the lowest, and room for the legend above the highest.
    let lo = lo.max(0.01).log10() - 0.15;
    let hi = hi.log10().max(lo + 0.5);
    (lo, hi + (hi - lo) * 0.3)
}

fn peer_window(flow: &Flow) -> Vec<(f64, u64)> {
    match flow.view {
        View::Sender => flow.peer_win.clone(),
        View::Receiver => Vec::new(),
    }
}

/// Draws every layer of `panel`.
pub fn draw(
    flow: &Flow,
    panel: &Panel,
    size: (u32, u32),
    x: Range<f64>,
    columns: usize,
) -> Result<DrawnPanel, String> {
    let cols = Columns::new(x.start, x.end, columns);
    let span = x.end - x.start;
    let decimals = (2 - span.log10().floor() as i32).clamp(0, 6) as usize;
    let last = panel.key == "rwnd";
    let (x_axis, pixels) = layer(size, panel, x.clone(), |chart| {
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_labels(14)
            .x_label_formatter(&|v| format!("{v:.decimals$}"))
            .x_desc(if last { "time (s)" } else { "" })
            .bold_line_style(GRID_BOLD)
            .light_line_style(GRID_LIGHT)
            .axis_style(TEXT)
            .label_style(("sans-serif", 14).into_font().color(&TEXT))
            .draw()
            .map_err(|e| e.to_string())
    })?;
    let (y_axis, _) = layer(size, panel, x.clone(), |chart| {
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_labels(6)
            .y_label_formatter(&|v| (panel.y_format)(*v))
            .y_desc(panel.y_desc.as_str())
            .bold_line_style(GRID_BOLD)
            .light_line_style(GRID_LIGHT)
            .axis_style(TEXT)
            .label_style(("sans-serif", 14).into_font().color(&TEXT))
            .axis_desc_style(("sans-serif", 15).into_font().color(&TEXT))
            .draw()
            .map_err(|e| e.to_string())
    })?;
    let mut out = DrawnPanel {
        pixels,
        x_axis,
        y_axis,
        lines: Vec::new(),
        marks: Vec::new(),
        legend: Vec::new(),
    };
    let mut keys: Vec<(String, String, RGBColor, Key)> = Vec::new();
    let line = |out: &mut DrawnPanel, series: &str, draw: &dyn Fn(&mut Chart<'_, '_>) -> Drawn| {
        let (body, _) = layer(size, panel, x.clone(), draw)?;
        out.lines.push(Layer {
            series: series.to_owned(),
            body,
        });
        Ok::<(), String>(())
    };
    let y_per_px = (panel.y.end - panel.y.start) / f64::from(panel.height.max(1));
    let end = flow.end;
    match panel.key {
        "seq" => {
            let gap = y_per_px.max(0.0) as u64;
            let sacks = decimate::intervals(&cols, &flow.sacks, gap);
            if !sacks.is_empty() {
                line(&mut out, "sack", &|c| bars(c, &sacks, SACK, 3))?;
                keys.push(("sack".into(), "SACK block".into(), SACK, Key::Bar));
            }
            let window = as_f64(&flow.window);
            if !window.is_empty() {
                let path = decimate::steps(&cols, &window, end);
                line(&mut out, "window", &|c| path_in(c, &path, WINDOW, 1))?;
                keys.push((
                    "window".into(),
                    "window edge (ack + win)".into(),
                    WINDOW,
                    Key::Line(2),
                ));
            }
            let acks = as_f64(&flow.acks);
            if !acks.is_empty() {
                let path = decimate::steps(&cols, &acks, end);
                line(&mut out, "ack", &|c| path_in(c, &path, ACK, 2))?;
                keys.push(("ack".into(), "cumulative ACK".into(), ACK, Key::Line(2)));
            }
            let mut kinds: Vec<SegKind> = flow.data.iter().map(|d| d.kind.clone()).collect();
            kinds.sort();
            kinds.dedup();
            for kind in &kinds {
                let segs: Vec<(f64, u64, u64)> = flow
                    .data
                    .iter()
                    .filter(|d| &d.kind == kind)
                    .map(|d| (d.t, d.seq, d.end))
                    .collect();
                let merged = decimate::intervals(&cols, &segs, gap);
                let colour = cause_colour(kind);
                let name = series_name(kind);
                let width = if *kind == SegKind::New { 1 } else { 2 };
                line(&mut out, &name, &|c| bars(c, &merged, colour, width))?;
                if *kind == SegKind::New {
                    keys.push((name, "data segment".into(), colour, Key::Bar));
                    continue;
                }
                // One mark per retransmission (one per pixel cell when they crowd), hoverable.
                let all: Vec<_> = flow.data.iter().filter(|d| &d.kind == kind).collect();
                let points: Vec<(f64, f64)> = all.iter().map(|d| (d.t, d.end as f64)).collect();
                let kept = thin(&cols, &points, y_per_px * 4.0, 3000);
                let at: Vec<(f64, f64)> = kept.iter().map(|&i| points[i]).collect();
                let titles: Vec<String> = kept
                    .iter()
                    .map(|&i| {
                        let d = all[i];
                        format!(
                            "{} t={:.6} s seq={}..{} ({} B), trace line {}",
                            kind.label(),
                            d.t,
                            d.seq,
                            d.end,
                            d.end - d.seq,
                            d.line
                        )
                    })
                    .collect();
                mark(
                    size,
                    panel,
                    &x,
                    &mut out,
                    &format!("{name}-mark"),
                    &at,
                    &titles,
                    colour,
                    Key::Triangle,
                )?;
                keys.push((
                    name,
                    format!("{} ({})", kind.label(), all.len()),
                    colour,
                    Key::Triangle,
                ));
            }
            if !flow.drops.is_empty() {
                let points: Vec<(f64, f64)> = flow
                    .drops
                    .iter()
                    .map(|d| (d.t, (d.seq + d.end) as f64 / 2.0))
                    .collect();
                let kept = thin(&cols, &points, y_per_px * 4.0, 4000);
                let at: Vec<(f64, f64)> = kept.iter().map(|&i| points[i]).collect();
                let titles: Vec<String> = kept
                    .iter()
                    .map(|&i| {
                        let d = &flow.drops[i];
                        format!(
                            "injected drop (--impair) t={:.6} s seq={}..{} ({} B), trace line {}",
                            d.t,
                            d.seq,
                            d.end,
                            d.end - d.seq,
                            d.line
                        )
                    })
                    .collect();
                mark(
                    size,
                    panel,
                    &x,
                    &mut out,
                    "injected-drop",
                    &at,
                    &titles,
                    DROP,
                    Key::Cross,
                )?;
                keys.push((
                    "injected-drop".into(),
                    format!("injected drop, --impair ({})", flow.drops.len()),
                    DROP,
                    Key::Cross,
                ));
            }
        }
        "cc" => {
            let cwnd: Vec<(f64, f64)> = flow.cc.iter().map(|c| (c.t, c.cwnd as f64)).collect();
            let inflight: Vec<(f64, f64)> =
                flow.cc.iter().map(|c| (c.t, c.inflight as f64)).collect();
            let blue = RGBColor(0x1c, 0x7e, 0xd6);
            let red = RGBColor(0xe0, 0x31, 0x31);
            let grey = RGBColor(0x5c, 0x94, 0x0d);
            if !flow.cc.is_empty() {
                let path = decimate::steps(&cols, &inflight, end);
                line(&mut out, "inflight", &|c| path_in(c, &path, grey, 1))?;
                let path = decimate::steps(&cols, &cwnd, end);
                line(&mut out, "cwnd", &|c| path_in(c, &path, blue, 2))?;
                // ssthresh is drawn only where it is finite.
                let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
                for c in &flow.cc {
                    match c.ssthresh {
                        Some(s) => runs.last_mut().unwrap().push((c.t, s as f64)),
                        None if !runs.last().unwrap().is_empty() => {
                            let last = runs.last_mut().unwrap();
                            let held = last.last().unwrap().1;
                            last.push((c.t, held));
                            runs.push(Vec::new());
                        }
                        None => {}
                    }
                }
                let paths: Vec<Vec<(f64, f64)>> = runs
                    .iter()
                    .filter(|r| !r.is_empty())
                    .map(|r| decimate::steps(&cols, r, end))
                    .collect();
                line(&mut out, "ssthresh", &|c| {
                    paths.iter().try_for_each(|p| path_in(c, p, red, 1))
                })?;
                keys.push(("cwnd".into(), "cwnd".into(), blue, Key::Line(2)));
                keys.push(("ssthresh".into(), "ssthresh".into(), red, Key::Line(1)));
                keys.push((
                    "inflight".into(),
                    "bytes in flight (pipe)".into(),
                    grey,
                    Key::Line(1),
                ));
                for (cause, colour) in [
                    ("recovery_enter", RGBColor(0xf7, 0x67, 0x07)),
                    ("rto", red),
                    ("undo", RGBColor(0x10, 0x98, 0xad)),
                ] {
                    let events: Vec<_> = flow.cc.iter().filter(|c| c.cause == cause).collect();
                    if events.is_empty() {
                        continue;
                    }
                    let points: Vec<(f64, f64)> =
                        events.iter().map(|c| (c.t, c.cwnd as f64)).collect();
                    let kept = thin(&cols, &points, y_per_px * 4.0, 2000);
                    let at: Vec<(f64, f64)> = kept.iter().map(|&i| points[i]).collect();
                    let titles: Vec<String> = kept
                        .iter()
                        .map(|&i| {
                            let c = events[i];
                            format!(
                                "{cause} t={:.6} s cwnd={} ssthresh={} inflight={}",
                                c.t,
                                c.cwnd,
                                c.ssthresh.map_or("∞".into(), |s| s.to_string()),
                                c.inflight
                            )
                        })
                        .collect();
                    let name = format!("cc-{cause}");
                    mark(
                        size,
                        panel,
                        &x,
                        &mut out,
                        &name,
                        &at,
                        &titles,
                        colour,
                        Key::Triangle,
                    )?;
                    keys.push((
                        name,
                        format!("{} ({})", cause.replace('_', " "), events.len()),
                        colour,
                        Key::Triangle,
                    ));
                }
            }
        }
        "rtt" => {
            let log = |v: f64| v.max(0.001).log10();
            let samples: Vec<(f64, f64)> = flow
                .rtt
                .iter()
                .filter_map(|r| r.sample_ms.map(|s| (r.t, log(s))))
                .collect();
            let srtt: Vec<(f64, f64)> = flow.rtt.iter().map(|r| (r.t, log(r.srtt_ms))).collect();
            let rto: Vec<(f64, f64)> = flow.rtt.iter().map(|r| (r.t, log(r.rto_ms))).collect();
            let dot = RGBColor(0x4d, 0xab, 0xf7);
            let navy = RGBColor(0x18, 0x64, 0xab);
            let red = RGBColor(0xe0, 0x31, 0x31);
            if !samples.is_empty() {
                let kept = decimate::cells(&cols, &samples, y_per_px * 2.0);
                let at: Vec<(f64, f64)> = kept.iter().map(|&i| samples[i]).collect();
                line(&mut out, "rtt-sample", &|c| {
                    c.draw_series(at.iter().map(|&p| Circle::new(p, 2, dot.filled())))
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })?;
                keys.push((
                    "rtt-sample".into(),
                    format!("RTT sample ({})", samples.len()),
                    dot,
                    Key::Dot,
                ));
            }
            if !flow.rtt.is_empty() {
                let path = decimate::steps(&cols, &srtt, end);
                line(&mut out, "srtt", &|c| path_in(c, &path, navy, 2))?;
                let path = decimate::steps(&cols, &rto, end);
                line(&mut out, "rto", &|c| path_in(c, &path, red, 1))?;
                keys.push(("srtt".into(), "SRTT".into(), navy, Key::Line(2)));
                keys.push(("rto".into(), "RTO".into(), red, Key::Line(1)));
            }
            let backoffs: Vec<_> = flow.rtt.iter().filter(|r| r.sample_ms.is_none()).collect();
            if !backoffs.is_empty() {
                let at: Vec<(f64, f64)> = backoffs.iter().map(|r| (r.t, log(r.rto_ms))).collect();
                let titles: Vec<String> = backoffs
                    .iter()
                    .map(|r| {
                        format!(
                            "RTO expired t={:.6} s backoff {} rto={} ms srtt={} ms",
                            r.t, r.backoff, r.rto_ms, r.srtt_ms
                        )
                    })
                    .collect();
                mark(
                    size,
                    panel,
                    &x,
                    &mut out,
                    "rto-backoff",
                    &at,
                    &titles,
                    red,
                    Key::Triangle,
                )?;
                keys.push((
                    "rto-backoff".into(),
                    format!("timeout, backoff ({})", backoffs.len()),
                    red,
                    Key::Triangle,
                ));
            }
        }
        "goodput" => {
            let (bin, rates) = flow.goodput();
            let fill = RGBColor(0x74, 0xc0, 0xfc);
            if !flow.acks.is_empty() {
                line(&mut out, "goodput", &|c| {
                    c.draw_series(rates.iter().filter(|r| r.1 > 0.0).map(|&(t, r)| {
                        Rectangle::new([(t, 0.0), (t + bin, r / 1e6)], fill.filled())
                    }))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
                })?;
                let bin_label = if bin >= 1.0 {
                    format!("{bin} s")
                } else {
                    format!("{} ms", (bin * 1e3).round())
                };
                keys.push((
                    "goodput".into(),
                    format!("bytes newly ACKed per {bin_label}"),
                    fill,
                    Key::Bar,
                ));
            }
        }
        _ => {
            let rows = |f: fn(&super::reader::Rwnd) -> u64| -> Vec<(f64, f64)> {
                flow.rwnd.iter().map(|r| (r.t, f(r) as f64)).collect()
            };
            let series: [Named; 4] = [
                (
                    "capacity",
                    "buffer capacity",
                    rows(|r| r.capacity),
                    RGBColor(0x86, 0x8e, 0x96),
                    1,
                ),
                (
                    "buffered",
                    "bytes buffered (unread + out of order)",
                    rows(|r| r.buffered),
                    RGBColor(0xf7, 0x67, 0x07),
                    2,
                ),
                ("advertised", "window we advertise", rows(|r| r.win), ACK, 2),
                (
                    "peer-window",
                    "window the peer advertises",
                    as_f64(&peer_window(flow)),
                    RGBColor(0x9c, 0x36, 0xb5),
                    1,
                ),
            ];
            for (name, label, values, colour, width) in series {
                if values.is_empty() {
                    continue;
                }
                let path = decimate::steps(&cols, &values, end);
                line(&mut out, name, &|c| path_in(c, &path, colour, width))?;
                keys.push((name.into(), label.into(), colour, Key::Line(width)));
            }
        }
    }
    if keys.is_empty() {
        let (body, _) = layer(size, panel, x.clone(), |c| {
            let area = c.plotting_area().strip_coord_spec();
            let (w, h) = area.dim_in_pixel();
            area.draw(&Text::new(
                format!("no {} events in this trace", panel_events(panel.key)),
                (w as i32 / 2 - 120, h as i32 / 2 - 8),
                ("sans-serif", 15)
                    .into_font()
                    .color(&RGBColor(0x86, 0x8e, 0x96)),
            ))
            .map_err(|e| e.to_string())
        })?;
        out.lines.push(Layer {
            series: "empty".into(),
            body,
        });
    }
    out.legend = legend(size, panel, &x, &keys)?;
    Ok(out)
}

fn panel_events(key: &str) -> &'static str {
    match key {
        "seq" => "data",
        "cc" => "cc",
        "rtt" => "rtt",
        "goodput" => "ACK",
        _ => "rwnd",
    }
}

/// The layer name of a kind of data segment.
pub fn series_name(kind: &SegKind) -> String {
    match kind {
        SegKind::New => "data".into(),
        SegKind::Rexmit(cause) => format!("rexmit-{cause}"),
        SegKind::Probe(p) => format!("probe-{p}"),
        SegKind::PeerRexmit => "peer-rexmit".into(),
    }
}
