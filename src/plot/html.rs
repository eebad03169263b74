//! The `.html` output: one self-contained page (no network, no external script or font) with
//! each connection's SVG inline, a small script that zooms the time axis (wheel, drag a range,
//! double-click or the button to reset) and the SVG's own `<title>` tooltips for hover details.
//!
//! The zoom moves what plotters drew instead of drawing again: each panel's lines sit in a
//! `g.zoom` that is stretched along time (strokes keep their width), marks are moved one by one
//! so they keep their shape, and time ticks are written by the script while zoomed. The
//! time–sequence panel also fits its sequence axis to what is in view, as tcptrace does.

use std::fmt::Write as _;

use super::model::Flow;
use super::svg::{escape, render, RenderOptions};

/// Columns of detail per pixel in a page: zooming in 8× still shows single segments.
const DETAIL: u32 = 8;

/// The page for `flows` (in that order). `cmd` is what wrote the trace, for the title.
pub fn page(flows: &[Flow], cmd: Option<&str>) -> Result<String, String> {
    let mut out = String::with_capacity(1 << 21);
    let title = match cmd {
        Some(cmd) => format!("tunstack plot: {cmd} trace, {} connection(s)", flows.len()),
        None => format!("tunstack plot: {} connection(s)", flows.len()),
    };
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n",
        escape(&title)
    );
    let _ = writeln!(
        out,
        "<p class=\"help\">Wheel over a plot: zoom time. Drag across a plot: zoom to that range. Double-click or <b>reset</b>: the whole connection (a link ending in <code>#t=2.1-2.4</code> opens zoomed). Hover a mark (▲ retransmission, × injected drop) for its event.</p>"
    );
    for flow in flows {
        let options = RenderOptions {
            detail: DETAIL,
            id_prefix: flow.id,
            ..RenderOptions::default()
        };
        let svg = render(flow, &options)?;
        let _ = writeln!(
            out,
            "<section class=\"flow\" id=\"conn-{}\">\n<div class=\"bar\"><button type=\"button\" class=\"reset\">reset</button> <span class=\"range\"></span> <span class=\"cursor\"></span></div>\n{svg}</section>",
            flow.id
        );
    }
    let _ = write!(out, "<script>\n{SCRIPT}</script>\n</body>\n</html>\n");
    Ok(out)
}

const STYLE: &str = r##"body { margin: 0; padding: 8px 12px; background: #f1f3f5; font-family: sans-serif; color: #212529; }
.help { margin: 4px 0 8px; font-size: 14px; color: #495057; }
.flow { background: #fff; margin: 0 0 16px; padding: 4px; box-shadow: 0 1px 3px rgba(0,0,0,.15); }
.bar { font-size: 14px; padding: 4px 8px; min-height: 22px; }
.bar .range { margin-left: 12px; color: #1864ab; }
.bar .cursor { margin-left: 12px; color: #868e96; }
svg.tunstack-flow { display: block; max-width: 100%; height: auto; user-select: none; cursor: crosshair; }
svg .zoom * { vector-effect: non-scaling-stroke; }
svg .jsaxis text { font-size: 13px; fill: #343a40; }
"##;

const SCRIPT: &str = r##"(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  function step(span, n) {
    var raw = span / n, p = Math.pow(10, Math.floor(Math.log10(raw)));
    var m = [1, 2, 5, 10];
    for (var i = 0; i < m.length; i++) { if (m[i] * p >= raw) { return m[i] * p; } }
    return 10 * p;
  }
  function bytes(v) {
    var a = Math.abs(v), u = [[1e9, " GB"], [1e6, " MB"], [1e3, " kB"]];
    for (var i = 0; i < u.length; i++) {
      if (a >= u[i][0]) { return String(+(v / u[i][0]).toFixed(2)) + u[i][1]; }
    }
    return v.toFixed(0) + " B";
  }
  function el(name, attrs, text) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) { e.setAttribute(k, attrs[k]); }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  // The point a mark stands for: a circle's centre, a polygon's centroid (marks are centred).
  function anchor(e) {
    if (e.tagName === "circle") { return [+e.getAttribute("cx"), +e.getAttribute("cy")]; }
    var p = (e.getAttribute("points") || "").trim().split(/[ ,]+/).map(Number), x = 0, y = 0, n = 0;
    for (var i = 0; i + 1 < p.length; i += 2) { x += p[i]; y += p[i + 1]; n += 1; }
    return n ? [x / n, y / n] : [0, 0];
  }
  function setup(svg, section) {
    var t0 = +svg.getAttribute("data-t0"), t1 = +svg.getAttribute("data-t1");
    var view = { a: t0, b: t1 };
    var panels = Array.prototype.map.call(svg.querySelectorAll("g.panel"), function (g) {
      var p = { g: g, key: g.getAttribute("data-panel") };
      ["px0", "px1", "py0", "py1", "y0", "y1"].forEach(function (k) { p[k] = +g.getAttribute("data-" + k); });
      p.zoom = g.querySelector("g.zoom");
      p.xaxis = g.querySelector("g.xaxis");
      p.yaxis = g.querySelector("g.yaxis");
      p.marks = Array.prototype.map.call(g.querySelectorAll("g.markers polygon, g.markers circle"), function (m) {
        var xy = anchor(m);
        return { el: m, x: xy[0], y: xy[1] };
      });
      p.bars = [];
      if (p.key === "seq") {
        g.querySelectorAll("g.zoom g.series polyline").forEach(function (l) {
          var s = l.parentNode.getAttribute("data-series");
          if (s !== "data" && s.indexOf("rexmit") < 0) { return; }
          var v = l.getAttribute("points").trim().split(/[ ,]+/).map(Number);
          if (v.length >= 4) { p.bars.push([v[0], Math.min(v[1], v[3]), Math.max(v[1], v[3])]); }
        });
      }
      p.axis = el("g", { "class": "jsaxis" });
      g.appendChild(p.axis);
      return p;
    });
    if (!panels.length) { return false; }
    var ref = panels[0];
    var width = ref.px1 - ref.px0;
    var range = section.querySelector(".range"), cursor = section.querySelector(".cursor");
    var top = Math.min.apply(null, panels.map(function (p) { return p.py0; }));
    var bottom = Math.max.apply(null, panels.map(function (p) { return p.py1; }));
    var band = el("rect", { y: top, height: bottom - top, width: 0, fill: "#339af0", opacity: "0.15", "pointer-events": "none" });
    var line = el("line", { y1: top, y2: bottom, stroke: "#868e96", "stroke-width": 1, "pointer-events": "none", visibility: "hidden" });
    svg.appendChild(band);
    svg.appendChild(line);
    function timeAt(x) { return view.a + (x - ref.px0) / width * (view.b - view.a); }
    function local(e) {
      var r = svg.getBoundingClientRect(), vb = svg.viewBox.baseVal;
      return [(e.clientX - r.left) * vb.width / r.width, (e.clientY - r.top) * vb.height / r.height];
    }
    function decimals(span) { return Math.max(0, Math.min(6, 2 - Math.floor(Math.log10(span)))); }
    function apply() {
      var full = view.a <= t0 && view.b >= t1;
      var sx = (t1 - t0) / (view.b - view.a);
      panels.forEach(function (p) {
        var w = p.px1 - p.px0, h = p.py1 - p.py0;
        var xa = p.px0 + (view.a - t0) / (t1 - t0) * w, xb = p.px0 + (view.b - t0) / (t1 - t0) * w;
        var tx = p.px0 - xa * sx, sy = 1, ty = 0;
        if (!full && p.bars.length) {
          var lo = Infinity, hi = -Infinity;
          p.bars.forEach(function (b) { if (b[0] >= xa && b[0] <= xb) { lo = Math.min(lo, b[1]); hi = Math.max(hi, b[2]); } });
          if (hi - lo > 1) { sy = h * 0.9 / (hi - lo); ty = p.py0 + h * 0.05 - lo * sy; }
        }
        p.zoom.setAttribute("transform", full ? "" : "matrix(" + sx + ",0,0," + sy + "," + tx + "," + ty + ")");
        p.marks.forEach(function (m) {
          m.el.setAttribute("transform", full ? "" : "translate(" + (m.x * sx + tx - m.x) + "," + (m.y * sy + ty - m.y) + ")");
        });
        p.xaxis.style.display = full ? "" : "none";
        p.yaxis.style.display = sy === 1 ? "" : "none";
        while (p.axis.firstChild) { p.axis.removeChild(p.axis.firstChild); }
        if (full) { return; }
        var s = step(view.b - view.a, 12), d = decimals(view.b - view.a);
        for (var t = Math.ceil(view.a / s) * s; t <= view.b; t += s) {
          var x = p.px0 + (t - view.a) / (view.b - view.a) * w;
          p.axis.appendChild(el("line", { x1: x, x2: x, y1: p.py0, y2: p.py1, stroke: "#e9ecef" }));
          p.axis.appendChild(el("text", { x: x, y: p.py1 + 17, "text-anchor": "middle" }, t.toFixed(d)));
        }
        if (sy !== 1) {
          // Pixel rows of the unzoomed picture back to values: y0 at py1, y1 at py0.
          var v = function (y) { var orig = (y - ty) / sy; return p.y0 + (p.py1 - orig) / h * (p.y1 - p.y0); };
          var vlo = v(p.py1), vhi = v(p.py0), ys = step(vhi - vlo, 6);
          for (var val = Math.ceil(vlo / ys) * ys; val <= vhi; val += ys) {
            var y = ((p.py1 - (val - p.y0) / (p.y1 - p.y0) * h) * sy) + ty;
            p.axis.appendChild(el("line", { x1: p.px0, x2: p.px1, y1: y, y2: y, stroke: "#e9ecef" }));
            p.axis.appendChild(el("text", { x: p.px0 - 6, y: y + 4, "text-anchor": "end" }, bytes(val)));
          }
        }
      });
      var d = decimals(view.b - view.a);
      range.textContent = full ? "whole connection: " + t0.toFixed(3) + "–" + t1.toFixed(3) + " s"
        : "zoomed: " + view.a.toFixed(d) + "–" + view.b.toFixed(d) + " s (" + sx.toFixed(1) + "×)";
    }
    function zoomTo(a, b) {
      var min = (t1 - t0) / 20000;
      if (b - a < min) { var c = (a + b) / 2; a = c - min / 2; b = c + min / 2; }
      view.a = Math.max(t0, a);
      view.b = Math.min(t1, b);
      apply();
    }
    function inside(xy) { return xy[0] >= ref.px0 && xy[0] <= ref.px1 && xy[1] >= top && xy[1] <= bottom; }
    svg.addEventListener("wheel", function (e) {
      var xy = local(e);
      if (!inside(xy)) { return; }
      e.preventDefault();
      var t = timeAt(xy[0]), f = e.deltaY < 0 ? 0.8 : 1.25;
      zoomTo(t - (t - view.a) * f, t + (view.b - t) * f);
    }, { passive: false });
    var drag = null;
    svg.addEventListener("mousedown", function (e) {
      var xy = local(e);
      if (e.button !== 0 || !inside(xy)) { return; }
      drag = xy[0];
      e.preventDefault();
    });
    svg.addEventListener("mousemove", function (e) {
      var xy = local(e);
      if (inside(xy)) {
        line.setAttribute("x1", xy[0]);
        line.setAttribute("x2", xy[0]);
        line.setAttribute("visibility", "visible");
        cursor.textContent = "t = " + timeAt(xy[0]).toFixed(decimals(view.b - view.a) + 1) + " s";
      } else {
        line.setAttribute("visibility", "hidden");
      }
      if (drag !== null) {
        var x = Math.max(ref.px0, Math.min(ref.px1, xy[0]));
        band.setAttribute("x", Math.min(drag, x));
        band.setAttribute("width", Math.abs(x - drag));
      }
    });
    window.addEventListener("mouseup", function (e) {
      if (drag === null) { return; }
      var x = Math.max(ref.px0, Math.min(ref.px1, local(e)[0]));
      var a = timeAt(Math.min(drag, x)), b = timeAt(Math.max(drag, x));
      drag = null;
      band.setAttribute("width", 0);
      if (Math.abs(x - band.x.baseVal.value) > 0 && b - a > 0 && Math.abs(b - a) / (view.b - view.a) * width > 4) { zoomTo(a, b); }
    });
    svg.addEventListener("dblclick", function () { zoomTo(t0, t1); });
    section.querySelector(".reset").addEventListener("click", function () { zoomTo(t0, t1); });
    // A link can open zoomed: page.html#t=2.1-2.4 (seconds).
    var m = /^#t=([0-9.]+)-([0-9.]+)$/.exec(window.location.hash);
    if (m && +m[2] > +m[1]) { zoomTo(+m[1], +m[2]); } else { apply(); }
    return true;
  }
  var ready = 0;
  document.querySelectorAll("section.flow").forEach(function (section) {
    var svg = section.querySelector("svg.tunstack-flow");
    if (svg && setup(svg, section)) { ready += 1; }
  });
  document.body.setAttribute("data-plot-ready", String(ready));
})();
"##;
