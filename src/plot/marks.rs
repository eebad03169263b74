//! Drawing primitives shared by the panels: vertical bars, step lines, event marks (one SVG
//! element each, with its `<title>`) and the legend, each drawn as its own layer.

use std::ops::Range;

use plotters::prelude::*;

use super::decimate::{self, Columns};
use super::panels::{DrawnPanel, TEXT};
use super::svg::{layer, with_titles, Chart, Drawn, Layer, Panel};

/// How a legend entry is drawn.
#[derive(Clone, Copy)]
pub(super) enum Key {
    Line(u32),
    Bar,
    Triangle,
    Cross,
    Dot,
}

pub(super) fn as_f64(values: &[(f64, u64)]) -> Vec<(f64, f64)> {
    values.iter().map(|&(t, v)| (t, v as f64)).collect()
}

/// Indices of the points to mark: all of them up to `limit`, else one per pixel cell.
pub(super) fn thin(cols: &Columns, points: &[(f64, f64)], row: f64, limit: usize) -> Vec<usize> {
    if points.len() <= limit {
        (0..points.len()).collect()
    } else {
        decimate::cells(cols, points, row)
    }
}

pub(super) fn bars(
    chart: &mut Chart<'_, '_>,
    items: &[(f64, u64, u64)],
    colour: RGBColor,
    width: u32,
) -> Drawn {
    let style = ShapeStyle::from(&colour).stroke_width(width);
    chart
        .draw_series(
            items
                .iter()
                .map(|&(t, lo, hi)| PathElement::new(vec![(t, lo as f64), (t, hi as f64)], style)),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
}

pub(super) fn path_in(
    chart: &mut Chart<'_, '_>,
    path: &[(f64, f64)],
    colour: RGBColor,
    width: u32,
) -> Drawn {
    if path.is_empty() {
        return Ok(());
    }
    let style = ShapeStyle::from(&colour).stroke_width(width);
    chart
        .draw_series(std::iter::once(PathElement::new(path.to_vec(), style)))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The outline of a mark, in pixels around its point.
pub(super) fn shape(key: Key) -> Vec<(i32, i32)> {
    match key {
        // Centred on the point (the page's zoom moves marks by their centre).
        Key::Triangle => vec![(0, -6), (5, 3), (-5, 3)],
        Key::Cross => {
            // An × with arms 2 px thick.
            vec![
                (-6, -4),
                (-4, -6),
                (0, -2),
                (4, -6),
                (6, -4),
                (2, 0),
                (6, 4),
                (4, 6),
                (0, 2),
                (-4, 6),
                (-6, 4),
                (-2, 0),
            ]
        }
        _ => vec![(-2, -2), (2, -2), (2, 2), (-2, 2)],
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn mark(
    size: (u32, u32),
    panel: &Panel,
    x: &Range<f64>,
    out: &mut DrawnPanel,
    series: &str,
    at: &[(f64, f64)],
    titles: &[String],
    colour: RGBColor,
    key: Key,
) -> Drawn {
    let outline = shape(key);
    let (body, _) = layer(size, panel, x.clone(), |c| {
        c.draw_series(
            at.iter()
                .map(|&p| EmptyElement::at(p) + Polygon::new(outline.clone(), colour.filled())),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    })?;
    out.marks.push(Layer {
        series: series.to_owned(),
        body: with_titles(&body, titles),
    });
    Ok(())
}

/// One row (or more) of legend entries along the top of the plotting area, each its own layer.
pub(super) fn legend(
    size: (u32, u32),
    panel: &Panel,
    x: &Range<f64>,
    keys: &[(String, String, RGBColor, Key)],
) -> Result<Vec<Layer>, String> {
    let mut layers = Vec::new();
    let (mut cx, mut cy) = (8i32, 6i32);
    let mut width_px = 0i32;
    let _ = layer(size, panel, x.clone(), |c| {
        width_px = c.plotting_area().dim_in_pixel().0 as i32;
        Ok(())
    })?;
    for (series, label, colour, key) in keys {
        let entry_width = 34 + (label.chars().count() as f64 * 7.3) as i32;
        if cx + entry_width > width_px - 8 && cx > 8 {
            cx = 8;
            cy += 20;
        }
        let (body, _) = layer(size, panel, x.clone(), |c| {
            let area = c.plotting_area().strip_coord_spec();
            let draw = |e: std::result::Result<(), _>| {
                e.map_err(|e: DrawingAreaErrorKind<_>| e.to_string())
            };
            draw(area.draw(&Rectangle::new(
                [(cx - 4, cy - 2), (cx + entry_width, cy + 16)],
                RGBAColor(255, 255, 255, 0.85).filled(),
            )))?;
            let mid = (cx + 12, cy + 7);
            match key {
                Key::Line(w) => draw(area.draw(&PathElement::new(
                    vec![(cx, mid.1), (cx + 24, mid.1)],
                    ShapeStyle::from(colour).stroke_width(*w + 1),
                )))?,
                Key::Bar => draw(area.draw(&Rectangle::new(
                    [(mid.0 - 2, cy), (mid.0 + 2, cy + 14)],
                    colour.filled(),
                )))?,
                Key::Dot => draw(area.draw(&Circle::new(mid, 3, colour.filled())))?,
                Key::Triangle | Key::Cross => {
                    let points = shape(*key)
                        .iter()
                        .map(|&(dx, dy)| {
                            (
                                mid.0 + dx,
                                mid.1 + dy + if matches!(key, Key::Triangle) { 2 } else { 0 },
                            )
                        })
                        .collect::<Vec<_>>();
                    draw(area.draw(&Polygon::new(points, colour.filled())))?
                }
            }
            draw(area.draw(&Text::new(
                label.clone(),
                (cx + 30, cy + 1),
                ("sans-serif", 15).into_font().color(&TEXT),
            )))
        })?;
        layers.push(Layer {
            series: series.clone(),
            body,
        });
        cx += entry_width + 10;
    }
    Ok(layers)
}
