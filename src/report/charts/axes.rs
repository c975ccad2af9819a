//! Axes and text layout: our own tick positions (linear, log, categorical), tick-label
//! formatting, label widths, and cutting long names to fit.
//!
//! Every axis range is made finite and non-empty before plotters sees it, because plotters
//! divides by the range width and picks ticks from it.

use std::iter::once;
use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::theme::{H, LABEL};
use crate::report::format::trim_zeros;

/// Rough rendered width of `s` in pixels (sans-serif averages ~0.6 em per character).
pub(super) fn text_px(s: &str, size: f64) -> i32 {
    (s.chars().count() as f64 * size / 1.24 * 0.6).ceil() as i32
}

/// Width of a label area holding `names`, within bounds.
pub(super) fn label_area(names: &[String]) -> i32 {
    (names.iter().map(|s| text_px(s, LABEL)).max().unwrap_or(0) + 16).clamp(40, 240)
}

/// Chart height for one row per category, at least the standard height.
pub(super) fn rows_height(n: usize) -> u32 {
    H.max(100 + 34 * n.min(1000) as u32)
}

/// At most `max` characters (control characters become spaces), "…" marking a cut.
pub(super) fn short(s: &str, max: usize) -> String {
    let clean: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if clean.chars().count() <= max {
        clean
    } else {
        clean.chars().take(max.saturating_sub(1)).chain(once('…')).collect()
    }
}

/// Like [`short`], but keeps the start and the end.
pub(super) fn short_middle(s: &str, max: usize) -> String {
    let chars: Vec<char> = short(s, usize::MAX).chars().collect();
    if chars.len() <= max {
        return chars.into_iter().collect();
    }
    let head = max.saturating_sub(1) / 2;
    let tail = max.saturating_sub(1) - head;
    chars[..head].iter().chain(once(&'…')).chain(&chars[chars.len() - tail..]).collect()
}

/// A categorical axis: category i sits at i, ticks only at the categories.
pub(super) fn categories(n: usize) -> Ticks {
    Ticks { range: -0.5..n.max(1) as f64 - 0.5, ticks: (0..n).map(|i| i as f64).collect() }
}

/// A numeric axis over `r` with about `target` nice ticks.
pub(super) fn numeric(r: &Range<f64>, target: usize) -> Ticks {
    Ticks { range: r.clone(), ticks: linear_ticks(r, target) }
}

/// A linear f64 axis with ticks exactly where we want them. Every axis uses it: plotters' own
/// f64 tick search never ends on an infinite or extreme range, and its `with_key_points`
/// wrapper loses the f64 label formatter.
#[derive(Clone)]
pub(super) struct Ticks {
    pub(super) range: Range<f64>,
    pub(super) ticks: Vec<f64>,
}

impl Ranged for Ticks {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        RangedCoordf64::from(self.range.clone()).map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Bold lines and labels at the ticks; no light lines in between.
        if hint.weight().allow_light_points() { Vec::new() } else { self.ticks.clone() }
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// Rows are listed top to bottom, so row i sits at n − 1 − i.
pub(super) fn row_y(n: usize, i: usize) -> f64 {
    (n - 1 - i) as f64
}

pub(super) fn row_label(names: &[String], y: f64) -> String {
    let n = names.len() as f64;
    col_label(names, n - 1.0 - y)
}

pub(super) fn col_label(names: &[String], x: f64) -> String {
    let i = x.round();
    if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
        names[i as usize].clone()
    } else {
        String::new()
    }
}

/// Finite min..max padded by `pad` of the span; 0..1 when nothing is finite, ±10% when flat.
pub(super) fn value_range(values: impl Iterator<Item = f64>, pad: f64) -> Range<f64> {
    let (lo, hi) =
        values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return 0.0..1.0;
    }
    let span = hi - lo;
    if span == 0.0 {
        let d = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        return lo - d..hi + d;
    }
    if !span.is_finite() {
        return lo..hi;
    }
    lo - span * pad..hi + span * pad
}

/// Tick labels for a linear axis: one unit (k, M, B) for the whole axis, picked by its extent,
/// so labels read "0 5k 10k 15k" rather than "0 5000 10k 15k".
pub(super) fn axis_fmt(r: &Range<f64>) -> impl Fn(&f64) -> String + use<> {
    let extent = r.start.abs().max(r.end.abs());
    let (div, suffix) = match extent {
        e if e >= 1e9 => (1e9, "B"),
        e if e >= 1e6 => (1e6, "M"),
        e if e >= 1e4 => (1e3, "k"),
        _ => (1.0, ""),
    };
    move |v: &f64| match trim_zeros(&format!("{:.3}", v / div)) {
        zero if zero == "0" => zero,
        t => format!("{t}{suffix}"),
    }
}

/// About `target` ticks inside `r`, at multiples of 1, 2 or 5 × 10ⁿ.
pub(super) fn linear_ticks(r: &Range<f64>, target: usize) -> Vec<f64> {
    let span = r.end - r.start;
    if !(span > 0.0 && span.is_finite()) {
        return Vec::new();
    }
    let target = target.max(2) as f64;
    let mag = 10f64.powf((span / target).log10().floor());
    // The 1-2-5 step whose tick count is nearest the target.
    let count = |step: f64| span / step;
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .min_by(|a, b| (count(*a) - target).abs().total_cmp(&(count(*b) - target).abs()))
        .unwrap_or(mag);
    let (first, last) = ((r.start / step).ceil() as i64, (r.end / step).floor() as i64);
    (first..=last).take(100).map(|i| i as f64 * step).collect()
}

/// Ticks for an axis in log10 units: 1, 2, 5 × 10ⁿ over up to three decades, powers of ten beyond.
pub(super) fn log_ticks(r: &Range<f64>) -> Vec<f64> {
    let mantissas: &[f64] = if r.end - r.start <= 3.0 { &[1.0, 2.0, 5.0] } else { &[1.0] };
    let (e0, e1) = (r.start.floor() as i32, r.end.ceil() as i32);
    (e0..=e1.min(e0 + 400))
        .flat_map(|e| mantissas.iter().map(move |m| (m * 10f64.powi(e)).log10()))
        .filter(|t| r.contains(t))
        .collect()
}

/// Consecutive runs of finite points, so a NaN breaks a line instead of bending it.
pub(super) fn finite_runs(points: impl Iterator<Item = (f64, f64)>) -> Vec<Vec<(f64, f64)>> {
    let (mut runs, mut run) = (Vec::new(), Vec::new());
    for p in points {
        if p.0.is_finite() && p.1.is_finite() {
            run.push(p);
        } else if !run.is_empty() {
            runs.push(std::mem::take(&mut run));
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}
