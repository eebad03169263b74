//! The picture of one flow as an SVG document, drawn with plotters' SVG backend.
//!
//! plotters writes a flat list of elements; a picture someone zooms, hovers and tests needs to
//! know which element belongs to which panel and series. So each series is drawn as a *layer*:
//! the same chart (same size, same panel, same ranges, so the same pixel mapping) is built on a
//! fresh SVG backend, only that series is drawn, and the elements are wrapped in
//! `<g class="series" data-series="...">`. Marks that stand for one event (a retransmission, an
//! injected drop) are drawn one element each, and get a `<title>` with the event's fields: a
//! hover tooltip in any browser.

use std::fmt::Write as _;
use std::ops::Range;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::model::Flow;
use super::panels;

/// The chart type every panel uses: time on x, a linear value on y.
pub type Chart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A plotting area in pixels: x range, y range.
pub type Pixels = (Range<i32>, Range<i32>);

/// What a drawing step returns: a one-line reason on failure.
pub type Drawn = Result<(), String>;

/// How large and how detailed a picture is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RenderOptions {
    /// Width of the picture in pixels.
    pub width: u32,
    /// Columns of detail per pixel of the time axis: 1 for a static SVG; more for a page that
    /// zooms, so zooming in shows what one pixel had merged.
    pub detail: u32,
    /// Prefix of element ids, unique per picture on one page.
    pub id_prefix: u64,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            width: 1400,
            detail: 1,
            id_prefix: 1,
        }
    }
}

/// Left edge of every panel's plotting area is the same, so the time axes line up.
const Y_LABEL_AREA: u32 = 92;
const MARGIN_RIGHT: u32 = 28;
const X_LABEL_AREA: u32 = 30;
const MARGIN_TOP: u32 = 8;
const TITLE_HEIGHT: u32 = 64;

/// One panel: where it sits and what its y axis means.
pub struct Panel {
    /// Short name: "seq", "cc", "rtt", "goodput", "rwnd".
    pub key: &'static str,
    /// Top of the panel in the picture.
    pub top: u32,
    /// Height of the panel.
    pub height: u32,
    /// The y range.
    pub y: Range<f64>,
    /// The y axis' description.
    pub y_desc: String,
    /// How y tick labels are written.
    pub y_format: fn(f64) -> String,
    /// The kind of y labels the zooming script writes: "bytes", "ms-log", "plain".
    pub y_kind: &'static str,
}

/// A layer: the elements plotters wrote for one series, without the document around them.
pub struct Layer {
    /// The `data-series` name.
    pub series: String,
    /// The elements, one per line.
    pub body: String,
}

/// Builds the chart of `panel` on a fresh backend, lets `draw` draw into it and returns what was
/// drawn. Returns the plotting area's pixel ranges too.
pub fn layer(
    size: (u32, u32),
    panel: &Panel,
    x: Range<f64>,
    draw: impl FnOnce(&mut Chart<'_, '_>) -> Drawn,
) -> Result<(String, Pixels), String> {
    let mut buf = String::new();
    let pixels;
    {
        let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
        let area = root.shrink((0, panel.top), (size.0, panel.height));
        let mut chart = ChartBuilder::on(&area)
            .margin_top(MARGIN_TOP)
            .margin_right(MARGIN_RIGHT)
            .x_label_area_size(if panel.key == "rwnd" {
                X_LABEL_AREA + 16
            } else {
                X_LABEL_AREA
            })
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(x, panel.y.clone())
            .map_err(|e| e.to_string())?;
        pixels = chart.plotting_area().get_pixel_range();
        draw(&mut chart)?;
        area.present().map_err(|e| e.to_string())?;
    }
    Ok((inner(&buf), pixels))
}

/// The elements of a document plotters wrote: everything between `<svg ...>` and `</svg>`.
fn inner(document: &str) -> String {
    let start = document.find(">\n").map_or(0, |i| i + 2);
    let end = document.rfind("</svg>").unwrap_or(document.len());
    document[start.min(end)..end].to_owned()
}

/// Gives each element of `body` its `<title>`, in order, when there is exactly one element per
/// title (a mark plotters clipped away would shift them all, so then none get one).
pub fn with_titles(body: &str, titles: &[String]) -> String {
    let elements = body
        .lines()
        .filter(|l| l.starts_with('<') && l.ends_with("/>"))
        .count();
    if elements != titles.len() || body.contains("<text") {
        return body.to_owned();
    }
    let mut out =
        String::with_capacity(body.len() + titles.iter().map(String::len).sum::<usize>() * 2);
    let mut next = titles.iter();
    for line in body.lines() {
        match (line.strip_suffix("/>"), line.starts_with('<')) {
            (Some(open), true) => {
                let tag = open[1..].split(' ').next().unwrap_or("g");
                let title = next.next().map_or("", String::as_str);
                let _ = writeln!(out, "{open}><title>{}</title></{tag}>", escape(title));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// Escapes text for XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            other => out.push(other),
        }
    }
    out
}

/// Writes a byte count in decimal units (512 B, 64 kB, 12.5 MB): the axes' ticks are round
/// decimal numbers, so their labels are too, and the title uses the same units.
pub fn bytes(value: f64) -> String {
    let v = value.abs();
    let sign = if value < 0.0 { "-" } else { "" };
    let (scaled, unit) = if v >= 1e9 {
        (v / 1e9, "GB")
    } else if v >= 1e6 {
        (v / 1e6, "MB")
    } else if v >= 1e3 {
        (v / 1e3, "kB")
    } else {
        return format!("{sign}{v:.0} B");
    };
    // As many decimals as the value needs, at most two: 1 MB, 1.5 MB, 1.25 MB.
    let text = format!("{scaled:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{sign}{text} {unit}")
}

/// Renders the picture of `flow`: the title, then the panels, all sharing the time axis.
pub fn render(flow: &Flow, options: &RenderOptions) -> Result<String, String> {
    let x = time_range(flow);
    let width = options.width.max(600);
    let plot_width = width - Y_LABEL_AREA - MARGIN_RIGHT;
    let columns = plot_width as usize * options.detail.max(1) as usize;
    let panels = panels::layout(flow);
    let height = panels.last().map_or(TITLE_HEIGHT, |p| p.top + p.height) + 8;
    let size = (width, height);
    let id = options.id_prefix;

    let mut svg = String::with_capacity(1 << 20);
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" class=\"tunstack-flow\" data-conn=\"{}\" data-t0=\"{}\" data-t1=\"{}\" font-family=\"sans-serif\">",
        flow.id, x.start, x.end
    );
    let _ = writeln!(svg, "<rect class=\"background\" x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"#FFFFFF\"/>");
    svg.push_str(&title(flow, width));
    for panel in &panels {
        let drawn = panels::draw(flow, panel, size, x.clone(), columns)?;
        let (xs, ys) = drawn.pixels.clone();
        let clip = format!("clip-{id}-{}", panel.key);
        let _ = writeln!(
            svg,
            "<g class=\"panel\" data-panel=\"{key}\" data-px0=\"{}\" data-px1=\"{}\" data-py0=\"{}\" data-py1=\"{}\" data-y0=\"{}\" data-y1=\"{}\" data-ykind=\"{}\">",
            xs.start,
            xs.end,
            ys.start,
            ys.end,
            panel.y.start,
            panel.y.end,
            panel.y_kind,
            key = panel.key,
        );
        let _ = writeln!(
            svg,
            "<clipPath id=\"{clip}\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/></clipPath>",
            xs.start,
            ys.start,
            xs.end - xs.start + 1,
            ys.end - ys.start + 1
        );
        let _ = writeln!(svg, "<g class=\"axis xaxis\">\n{}</g>", drawn.x_axis);
        let _ = writeln!(svg, "<g class=\"axis yaxis\">\n{}</g>", drawn.y_axis);
        let _ = writeln!(
            svg,
            "<g class=\"data\" clip-path=\"url(#{clip})\"><g class=\"zoom\">"
        );
        for layer in &drawn.lines {
            let _ = writeln!(
                svg,
                "<g class=\"series\" data-series=\"{}\">\n{}</g>",
                escape(&layer.series),
                layer.body
            );
        }
        let _ = writeln!(
            svg,
            "</g></g>\n<g class=\"markers\" clip-path=\"url(#{clip})\">"
        );
        for layer in &drawn.marks {
            let _ = writeln!(
                svg,
                "<g class=\"series\" data-series=\"{}\">\n{}</g>",
                escape(&layer.series),
                layer.body
            );
        }
        svg.push_str("</g>\n<g class=\"legend\">\n");
        for layer in &drawn.legend {
            let _ = writeln!(
                svg,
                "<g class=\"legend-entry\" data-series=\"{}\">\n{}</g>",
                escape(&layer.series),
                layer.body
            );
        }
        svg.push_str("</g>\n</g>\n");
    }
    svg.push_str("</svg>\n");
    Ok(svg)
}

/// The time axis: the connection's first to last event, with a little room at the end.
fn time_range(flow: &Flow) -> Range<f64> {
    let span = (flow.end - flow.start).max(1e-3);
    flow.start..flow.end + span * 0.01
}

/// Two lines of text: who talked to whom, and the totals.
fn title(flow: &Flow, width: u32) -> String {
    let s = &flow.summary;
    let view = match flow.view {
        super::model::View::Sender => "data we sent",
        super::model::View::Receiver => "data we received",
    };
    let first = format!("conn {}: {} — {view}", flow.id, flow.endpoints);
    let rexmits: u64 = s.rexmits.values().sum();
    let causes = if s.rexmits.is_empty() {
        "none".to_owned()
    } else {
        let each: Vec<String> = s.rexmits.iter().map(|(c, n)| format!("{c} {n}")).collect();
        format!("{rexmits} ({})", each.join(", "))
    };
    let mut second = format!(
        "{:.3} s · {} · retransmissions: {causes} · injected drops: {} data segments",
        s.duration,
        bytes(s.bytes as f64),
        s.drops
    );
    if s.drops_all > s.drops {
        let _ = write!(second, " ({} datagrams in all)", s.drops_all);
    }
    if rexmits > 0 {
        let _ = write!(
            second,
            " · retransmitted without an injected drop: {}",
            s.unexplained
        );
    }
    if let Some(error) = &flow.close_error {
        let _ = write!(second, " · ended: {error}");
    }
    for (action, n) in &s.impairs {
        let _ = write!(second, ", {action} {n}");
    }
    if s.duration > 0.0 {
        let _ = write!(
            second,
            " · average {}",
            rate(s.bytes as f64 * 8.0 / s.duration)
        );
    }
    let mut out = String::from("<g class=\"title\">\n");
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"26\" font-size=\"19\" font-weight=\"bold\" fill=\"#212529\">{}</text>",
        Y_LABEL_AREA,
        escape(&first)
    );
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"50\" font-size=\"14\" fill=\"#495057\">{}</text>",
        Y_LABEL_AREA,
        escape(&second)
    );
    let _ = width;
    out.push_str("</g>\n");
    out
}

/// Bits per second in the unit that suits it.
pub fn rate(bits_per_second: f64) -> String {
    if bits_per_second >= 1e9 {
        format!("{:.2} Gbit/s", bits_per_second / 1e9)
    } else if bits_per_second >= 1e6 {
        format!("{:.1} Mbit/s", bits_per_second / 1e6)
    } else {
        format!("{:.0} kbit/s", bits_per_second / 1e3)
    }
}

/// The first panel starts below the title.
pub const FIRST_TOP: u32 = TITLE_HEIGHT;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_go_one_per_element_or_not_at_all() {
        let body = "<circle cx=\"1\"/>\n<polygon points=\"1,2 \"/>\n";
        let titled = with_titles(body, &["a<b".into(), "c".into()]);
        assert_eq!(
            titled,
            "<circle cx=\"1\"><title>a&lt;b</title></circle>\n<polygon points=\"1,2 \"><title>c</title></polygon>\n"
        );
        assert_eq!(with_titles(body, &["only one".into()]), body);
    }

    #[test]
    fn byte_counts_read_naturally() {
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(64000.0), "64 kB");
        assert_eq!(bytes(1_500_000.0), "1.5 MB");
        assert_eq!(bytes(67_108_864.0), "67.11 MB");
        assert_eq!(rate(2.5e6), "2.5 Mbit/s");
    }
}
