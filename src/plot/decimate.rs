//! Thinning a series to what a picture can show: marks that would land on the same pixel are
//! drawn once, so a 50,000-segment transfer becomes a few thousand SVG elements and renders fast.
//!
//! Time is cut into columns (one per pixel of the plot's width, times a detail factor so a
//! zoomable HTML page keeps more): intervals (segments, SACK blocks) are merged per column,
//! lines keep their first, lowest, highest and last point per column (the M4 rule, which draws
//! the same pixels as every point), and point marks keep one per pixel cell.

use std::collections::HashSet;

/// Maps time to a column index.
#[derive(Debug, Clone, Copy)]
pub struct Columns {
    t0: f64,
    per_second: f64,
    count: usize,
}

impl Columns {
    /// `count` columns over `[t0, t1]`.
    pub fn new(t0: f64, t1: f64, count: usize) -> Self {
        let span = (t1 - t0).max(1e-9);
        Columns {
            t0,
            per_second: count as f64 / span,
            count: count.max(1),
        }
    }

    /// The column of time `t`, clamped to the range.
    pub fn of(&self, t: f64) -> usize {
        let c = ((t - self.t0) * self.per_second).max(0.0) as usize;
        c.min(self.count - 1)
    }
}

/// Merges intervals `(t, lo, hi)` given in time order: per column, overlapping intervals and
/// those closer than `gap` become one. Each result keeps the time of its first interval.
pub fn intervals(columns: &Columns, items: &[(f64, u64, u64)], gap: u64) -> Vec<(f64, u64, u64)> {
    let mut out = Vec::new();
    let mut column = usize::MAX;
    let mut pending: Vec<(f64, u64, u64)> = Vec::new();
    let flush = |pending: &mut Vec<(f64, u64, u64)>, out: &mut Vec<(f64, u64, u64)>| {
        pending.sort_by_key(|&(_, lo, _)| lo);
        let mut current: Option<(f64, u64, u64)> = None;
        for &(t, lo, hi) in pending.iter() {
            current = match current {
                Some((ct, clo, chi)) if lo <= chi.saturating_add(gap) => {
                    Some((ct.min(t), clo, chi.max(hi)))
                }
                Some(done) => {
                    out.push(done);
                    Some((t, lo, hi))
                }
                None => Some((t, lo, hi)),
            };
        }
        out.extend(current);
        pending.clear();
    };
    for &item in items {
        let c = columns.of(item.0);
        if c != column {
            flush(&mut pending, &mut out);
            column = c;
        }
        pending.push(item);
    }
    flush(&mut pending, &mut out);
    out
}

/// The points of a step function (each value holds until the next) drawn as a path, thinned
/// per column to first, lowest, highest and last, in order. `end` closes the last step.
pub fn steps(columns: &Columns, values: &[(f64, f64)], end: f64) -> Vec<(f64, f64)> {
    let mut path = Vec::with_capacity(values.len() * 2);
    for (i, &(t, v)) in values.iter().enumerate() {
        if let Some(&(_, previous)) = i.checked_sub(1).and_then(|j| values.get(j)) {
            path.push((t, previous));
        }
        path.push((t, v));
        if i + 1 == values.len() && end > t {
            path.push((end, v));
        }
    }
    m4(columns, &path)
}

/// Thins a path to at most four points per column (first, lowest, highest, last), in order.
pub fn m4(columns: &Columns, path: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < path.len() {
        let c = columns.of(path[start].0);
        let mut stop = start + 1;
        while stop < path.len() && columns.of(path[stop].0) == c {
            stop += 1;
        }
        let run = &path[start..stop];
        if run.len() <= 4 {
            out.extend_from_slice(run);
        } else {
            let mut low = 0;
            let mut high = 0;
            for (i, p) in run.iter().enumerate() {
                if p.1 < run[low].1 {
                    low = i;
                }
                if p.1 > run[high].1 {
                    high = i;
                }
            }
            let mut keep = [0, low, high, run.len() - 1];
            keep.sort_unstable();
            let mut last = usize::MAX;
            for k in keep {
                if k != last {
                    out.push(run[k]);
                    last = k;
                }
            }
        }
        start = stop;
    }
    out
}

/// Keeps the first of the points that fall into the same cell of `columns` × `rows` (the row
/// is `y` divided by `row_height`); returns the indices kept.
pub fn cells(columns: &Columns, points: &[(f64, f64)], row_height: f64) -> Vec<usize> {
    let mut seen = HashSet::new();
    let row_height = if row_height > 0.0 { row_height } else { 1.0 };
    points
        .iter()
        .enumerate()
        .filter(|(_, &(t, y))| seen.insert((columns.of(t), (y / row_height).floor() as i64)))
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_merge_per_column_and_keep_holes() {
        let columns = Columns::new(0.0, 10.0, 10);
        let items = [(0.1, 0, 10), (0.2, 10, 20), (0.3, 40, 50), (1.5, 20, 30)];
        assert_eq!(
            intervals(&columns, &items, 0),
            vec![(0.1, 0, 20), (0.3, 40, 50), (1.5, 20, 30)]
        );
        assert_eq!(intervals(&columns, &items, 25).len(), 2);
    }

    #[test]
    fn m4_keeps_the_extremes_in_order() {
        let columns = Columns::new(0.0, 1.0, 1);
        let path: Vec<(f64, f64)> = (0..100)
            .map(|i| (i as f64 / 100.0, ((i * 37) % 11) as f64))
            .collect();
        let thin = m4(&columns, &path);
        assert!(thin.len() <= 4);
        assert_eq!(thin[0], path[0]);
        assert_eq!(*thin.last().unwrap(), path[99]);
        assert!(thin.iter().any(|p| p.1 == 0.0) && thin.iter().any(|p| p.1 == 10.0));
    }

    #[test]
    fn steps_hold_each_value_until_the_next() {
        let columns = Columns::new(0.0, 10.0, 1000);
        let path = steps(&columns, &[(1.0, 5.0), (2.0, 7.0)], 3.0);
        assert_eq!(path, vec![(1.0, 5.0), (2.0, 5.0), (2.0, 7.0), (3.0, 7.0)]);
    }

    #[test]
    fn cells_keep_one_point_per_pixel() {
        let columns = Columns::new(0.0, 1.0, 10);
        let kept = cells(
            &columns,
            &[(0.01, 1.0), (0.02, 1.2), (0.02, 5.0), (0.5, 1.0)],
            2.0,
        );
        assert_eq!(kept, vec![0, 2, 3]);
    }
}
