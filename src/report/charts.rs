//! The charts, each drawn into its own SVG string with plotters' SVG backend.
//!
//! Inputs are checked before drawing (shapes, grids) and every axis range is made finite and
//! non-empty first, because plotters divides by the range width and picks ticks from it.

use std::iter::once;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::stats::BoxStats;

use super::{
    HoldoutBucket, KSelection, PAliveMatrix, ProfileHeatmap, ReportError, SegmentSize, SegmentValues, fmt_count,
    fmt_value, trim_zeros,
};

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;
type LabelFmt = Box<dyn Fn(&f64) -> String>;

const W: u32 = 640;
const H: u32 = 360;
/// Room on the right of the heatmaps for the colour bar.
const LEGEND_W: u32 = 90;
const FONT: &str = "sans-serif";
// plotters writes `font-size = size / 1.24` into the SVG: 15 gives ~12 px text.
const LABEL: f64 = 15.0;
const DESC: f64 = 16.0;
const SMALL: f64 = 13.5;

const BLUE: RGBColor = RGBColor(0x4E, 0x79, 0xA7);
const LIGHT_BLUE: RGBColor = RGBColor(0xBF, 0xD1, 0xE5);
const ORANGE: RGBColor = RGBColor(0xE1, 0x7C, 0x1C);
const GRID: RGBColor = RGBColor(0xE3, 0xE6, 0xEA);
const INK: RGBColor = RGBColor(0x1D, 0x24, 0x30);
const MUTED: RGBColor = RGBColor(0x6A, 0x74, 0x83);
const NA_FILL: RGBColor = RGBColor(0xEE, 0xEE, 0xEE);

/// Draws into a fresh SVG string of `size` pixels.
fn svg(
    chart: &'static str,
    size: (u32, u32),
    draw: impl FnOnce(&Area<'_>) -> DrawResult,
) -> Result<String, ReportError> {
    let mut buf = String::new();
    // plotters may panic on input we did not foresee; a report must not take the batch job down.
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()
    }));
    match outcome {
        // Inline SVG in HTML needs no namespace; dropping it keeps the page free of URLs.
        Ok(Ok(())) => Ok(buf.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)),
        Ok(Err(e)) => Err(fail(chart, e)),
        Err(_) => Err(fail(chart, "plotters panicked")),
    }
}

fn fail(chart: &'static str, message: impl std::fmt::Display) -> ReportError {
    ReportError::Chart { chart, message: message.to_string() }
}

// ---------------------------------------------------------------------------------------------
// 1. silhouette and inertia against k

pub(super) fn k_selection(ks: &KSelection) -> Result<String, ReportError> {
    let mut rows = ks.rows.clone();
    rows.sort_by_key(|r| r.k);
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Err(fail("k_selection", "no rows"));
    };
    let (kmin, kmax) = (first.k.min(ks.chosen_k), last.k.max(ks.chosen_k));
    // One tick per k, thinned if a long range was tried.
    let step = (kmax - kmin) / 20 + 1;
    let ticks: Vec<f64> = (kmin..=kmax).step_by(step).map(|k| k as f64).collect();
    let x = (kmin as f64 - 0.5)..(kmax as f64 + 0.5);
    let sil = value_range(rows.iter().map(|r| r.silhouette), 0.1);
    let inertia = value_range(rows.iter().map(|r| r.inertia), 0.1);
    let chosen = ks.chosen_k as f64;

    svg("k_selection", (W, H), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .margin_top(36)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .right_y_label_area_size(72)
            .build_cartesian_2d(Ticks { range: x.clone(), ticks: ticks.clone() }, numeric(&sil, 7))?
            .set_secondary_coord(Ticks { range: x.clone(), ticks: ticks.clone() }, numeric(&inertia, 7));
        chart
            .configure_mesh()
            .disable_x_mesh()
            .max_light_lines(0)
            .bold_line_style(GRID.stroke_width(1))
            .axis_style(MUTED.stroke_width(1))
            .label_style(text(LABEL, INK))
            .axis_desc_style(text(DESC, INK))
            .x_label_formatter(&|v| {
                if v.fract() == 0.0 { format!("{v:.0}") } else { String::new() }
            })
            .y_label_formatter(&axis_fmt(&sil))
            .x_desc("k (number of segments)")
            .y_desc("silhouette")
            .draw()?;
        chart
            .configure_secondary_axes()
            .axis_style(MUTED.stroke_width(1))
            .label_style(text(LABEL, INK))
            .axis_desc_style(text(DESC, INK))
            .y_label_formatter(&axis_fmt(&inertia))
            .y_desc("inertia")
            .draw()?;
        chart.draw_series(DashedLineSeries::new(
            vec![(chosen, sil.start), (chosen, sil.end)],
            6,
            4,
            MUTED.stroke_width(2),
        ))?;
        for run in finite_runs(rows.iter().map(|r| (r.k as f64, r.inertia))) {
            chart.draw_secondary_series(LineSeries::new(run.clone(), ORANGE.stroke_width(2)))?;
            chart.draw_secondary_series(run.into_iter().map(|p| TriangleMarker::new(p, 5, ORANGE.filled())))?;
        }
        for run in finite_runs(rows.iter().map(|r| (r.k as f64, r.silhouette))) {
            chart.draw_series(LineSeries::new(run.clone(), BLUE.stroke_width(2)))?;
            chart.draw_series(run.into_iter().map(|p| Circle::new(p, 4, BLUE.filled())))?;
        }
        let left = chart.plotting_area().get_pixel_range().0.start;
        let chosen_label = format!("chosen k = {}", ks.chosen_k);
        legend(
            root,
            (left, 16),
            &[
                (Glyph::Line(BLUE), "silhouette"),
                (Glyph::Line(ORANGE), "inertia"),
                (Glyph::Dashed(MUTED), chosen_label.as_str()),
            ],
        )
    })
}

// ---------------------------------------------------------------------------------------------
// 2. segment sizes

pub(super) fn segment_sizes(segments: &[SegmentSize]) -> Result<String, ReportError> {
    let n = segments.len();
    let names: Vec<String> = segments
        .iter()
        .map(|s| if s.name.trim().is_empty() { format!("segment {}", s.id) } else { short(&s.name, 28) })
        .collect();
    let total = segments.iter().fold(0u64, |a, s| a.saturating_add(s.customers));
    let max = segments.iter().map(|s| s.customers).max().unwrap_or(0) as f64;
    // Room right of the longest bar for its "count (share)" label.
    let x = 0.0..(max * 1.3).max(1.0);
    let x_fmt = axis_fmt(&x);
    let mut counts = numeric(&x, 8);
    counts.ticks.retain(|t| t.fract() == 0.0);
    let height = rows_height(n);

    svg("segment_sizes", (W, height), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .margin_right(20)
            .x_label_area_size(44)
            .y_label_area_size(label_area(&names))
            .build_cartesian_2d(counts, categories(n))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .max_light_lines(0)
            .bold_line_style(GRID.stroke_width(1))
            .axis_style(MUTED.stroke_width(1))
            .label_style(text(LABEL, INK))
            .axis_desc_style(text(DESC, INK))
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&|v| row_label(&names, *v))
            .x_desc("customers")
            .draw()?;
        chart.draw_series(segments.iter().enumerate().map(|(i, s)| {
            let y = row_y(n, i);
            Rectangle::new([(0.0, y - 0.32), (s.customers as f64, y + 0.32)], BLUE.filled())
        }))?;
        chart.draw_series(segments.iter().enumerate().map(|(i, s)| {
            let label = if total > 0 {
                format!("{} ({:.1}%)", fmt_count(s.customers), 100.0 * s.customers as f64 / total as f64)
            } else {
                fmt_count(s.customers)
            };
            EmptyElement::at((s.customers as f64, row_y(n, i)))
                + Text::new(label, (6, 0), anchored(text(LABEL, INK), HPos::Left, VPos::Center))
        }))?;
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// 3. segment profiles heatmap

/// Returns the SVG and the |z| at which the colour saturates.
pub(super) fn profile_heatmap(p: &ProfileHeatmap) -> Result<(String, f64), ReportError> {
    let (nf, ns) = (p.features.len(), p.segments.len());
    if p.z.len() != ns {
        return Err(fail("profile", format!("z has {} rows for {ns} segments", p.z.len())));
    }
    if let Some((i, row)) = p.z.iter().enumerate().find(|(_, r)| r.len() != nf) {
        return Err(fail("profile", format!("z[{i}] has {} values for {nf} features", row.len())));
    }
    // Symmetric scale so white means "average"; capped so one extreme segment does not wash
    // out the rest (printed values stay exact).
    let zabs = p.z.iter().flatten().filter(|v| v.is_finite()).fold(0.0f64, |m, v| m.max(v.abs()));
    let zmax = ((zabs * 2.0).ceil() / 2.0).clamp(1.0, 3.0);
    let seg_names: Vec<String> = p.segments.iter().map(|s| short(s, 24)).collect();
    let left = label_area(&seg_names);

    // Feature names go under the columns: flat if they fit, else alternating over two lines,
    // else turned vertical (and cut at 24 characters).
    let plot_w = (W - LEGEND_W) as i32 - left - 12 - 8;
    let col_w = plot_w / nf.max(1) as i32;
    let widest = p.features.iter().map(|f| text_px(f, LABEL)).max().unwrap_or(0);
    let layout = match widest {
        w if w <= col_w - 8 => Columns::Flat,
        w if w <= 2 * col_w - 12 => Columns::Staggered,
        _ => Columns::Vertical,
    };
    let max_chars = if layout == Columns::Vertical { 24 } else { 40 };
    // Cut in the middle: feature names tend to differ at the end (spend_90d, spend_365d).
    let feat_names: Vec<String> = p.features.iter().map(|f| short_middle(f, max_chars)).collect();
    let bottom = match layout {
        Columns::Flat => 34,
        Columns::Staggered => 52,
        Columns::Vertical => 20 + feat_names.iter().map(|f| text_px(f, LABEL)).max().unwrap_or(0),
    };
    // Keep the cells' height when the labels need more room.
    let height = H.max(120 + 34 * ns as u32) + (bottom - 34).max(0) as u32;

    let svg = svg("profile", (W, height), |root| {
        let (main, side) = root.split_horizontally(W - LEGEND_W);
        let mut chart = ChartBuilder::on(&main)
            .margin(12)
            .margin_top(30)
            .margin_right(8)
            .x_label_area_size(bottom)
            .y_label_area_size(left)
            .build_cartesian_2d(categories(nf), categories(ns))?;
        chart
            .configure_mesh()
            .disable_mesh()
            .axis_style(MUTED.stroke_width(1))
            .label_style(text(LABEL, INK))
            .x_label_formatter(&|_| String::new())
            .y_label_formatter(&|v| row_label(&seg_names, *v))
            .draw()?;
        let (xs, ys) = chart.plotting_area().get_pixel_range();
        let cell_w = (xs.end - xs.start) / nf.max(1) as i32;
        let cell_h = (ys.end - ys.start) / ns.max(1) as i32;
        let print_values = cell_w >= 36 && cell_h >= 16;
        for (si, row) in p.z.iter().enumerate() {
            let y = row_y(ns, si);
            for (fi, &v) in row.iter().enumerate() {
                let x = fi as f64;
                let fill = if v.is_finite() { diverging(v / zmax) } else { NA_FILL };
                let corners = [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)];
                chart.draw_series(once(Rectangle::new(corners, fill.filled())))?;
                chart.draw_series(once(Rectangle::new(corners, WHITE.stroke_width(2))))?;
                if print_values {
                    let label =
                        if v.is_finite() { format!("{:+.2}", v).replace("-0.00", "+0.00") } else { "–".into() };
                    chart.draw_series(once(
                        EmptyElement::at((x, y))
                            + Text::new(
                                label,
                                (0, 0),
                                anchored(text(SMALL, contrast(fill)), HPos::Center, VPos::Center),
                            ),
                    ))?;
                }
            }
        }
        for (fi, name) in feat_names.iter().enumerate() {
            let (px, _) = chart.backend_coord(&(fi as f64, 0.0));
            let (pos, style) = match layout {
                Columns::Flat => ((px, ys.end + 8), anchored(text(LABEL, INK), HPos::Center, VPos::Top)),
                Columns::Staggered => {
                    let line = (fi % 2) as i32;
                    ((px, ys.end + 8 + 18 * line), anchored(text(LABEL, INK), HPos::Center, VPos::Top))
                }
                // Reads bottom to top, ending just under the axis.
                Columns::Vertical => (
                    (px, ys.end + 8),
                    anchored(text(LABEL, INK), HPos::Right, VPos::Center).transform(FontTransform::Rotate270),
                ),
            };
            root.draw(&Text::new(name.clone(), pos, style))?;
        }
        colour_bar(&side, -zmax..zmax, |t| diverging(t / zmax), "z-score", bottom)
    })?;
    Ok((svg, zmax))
}

/// How the heatmap's column labels are laid out.
#[derive(Clone, Copy, PartialEq)]
enum Columns {
    Flat,
    Staggered,
    Vertical,
}

// ---------------------------------------------------------------------------------------------
// 4. CLV box plots




/// Returns the SVG and whether the value axis is logarithmic.
pub(super) fn clv_boxes(segments: &[SegmentValues], stats: &[Option<BoxStats>]) -> Result<(String, bool), ReportError> {
    let n = segments.len();
    let names: Vec<String> = segments
        .iter()
        .zip(stats)
        .map(|(s, b)| format!("{} (n={})", short(&s.name, 24), fmt_count(b.map_or(0, |b| b.n) as u64)))
        .collect();
    // CLV is heavily right-skewed and differs by orders of magnitude between segments: on a
    // linear axis the low-value boxes shrink to a line, so switch to log10 when all is positive
    // and the drawn values span more than 30×.
    let drawn = || stats.iter().flatten().flat_map(|b| [b.p5, b.p95, b.mean]);
    let lo = drawn().fold(f64::INFINITY, f64::min);
    let hi = drawn().fold(f64::NEG_INFINITY, f64::max);
    let log = lo > 0.0 && hi / lo > 30.0;
    let tx = |v: f64| if log { v.log10() } else { v };
    let x = value_range(drawn().map(tx), 0.05);
    let (ticks, x_fmt): (Vec<f64>, LabelFmt) = if log {
        (log_ticks(&x), Box::new(|t: &f64| fmt_value(10f64.powf(*t))))
    } else {
        (linear_ticks(&x, 7), Box::new(axis_fmt(&x)))
    };
    let x_desc = if log { "CLV per customer (log scale)" } else { "CLV per customer" };
    let height = rows_height(n);

    let svg = svg("clv_by_segment", (W, height), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .margin_top(36)
            .margin_right(20)
            .x_label_area_size(44)
            .y_label_area_size(label_area(&names))
            .build_cartesian_2d(Ticks { range: x.clone(), ticks }, categories(n))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .bold_line_style(GRID.stroke_width(1))
            .axis_style(MUTED.stroke_width(1))
            .label_style(text(LABEL, INK))
            .axis_desc_style(text(DESC, INK))
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&|v| row_label(&names, *v))
            .x_desc(x_desc)
            .draw()?;
        for (i, b) in stats.iter().enumerate() {
            let y = row_y(n, i);
            let Some(b) = b else {
                let style = anchored(text(LABEL, MUTED), HPos::Left, VPos::Center);
                chart
                    .draw_series(once(EmptyElement::at((x.start, y)) + Text::new("no finite values", (6, 0), style)))?;
                continue;
            };
            let [p5, q1, median, q3, p95, mean] = [b.p5, b.q1, b.median, b.q3, b.p95, b.mean].map(tx);
            let ink = INK.stroke_width(1);
            chart.draw_series([
                PathElement::new(vec![(p5, y), (q1, y)], ink),
                PathElement::new(vec![(q3, y), (p95, y)], ink),
                PathElement::new(vec![(p5, y - 0.15), (p5, y + 0.15)], ink),
                PathElement::new(vec![(p95, y - 0.15), (p95, y + 0.15)], ink),
            ])?;
            chart.draw_series(once(Rectangle::new([(q1, y - 0.3), (q3, y + 0.3)], LIGHT_BLUE.filled())))?;
            chart.draw_series(once(Rectangle::new([(q1, y - 0.3), (q3, y + 0.3)], BLUE.stroke_width(1))))?;
            chart
                .draw_series(once(PathElement::new(vec![(median, y - 0.3), (median, y + 0.3)], INK.stroke_width(3))))?;
            chart.draw_series(once(Circle::new((mean, y), 4, ORANGE.filled())))?;
        }
        let left = chart.plotting_area().get_pixel_range().0.start;
        legend(
            root,
            (left, 16),
            &[
                (Glyph::Swatch(LIGHT_BLUE), "Q1 to Q3"),
                (Glyph::Tick(INK), "median"),
                (Glyph::Dot(ORANGE), "mean"),
                (Glyph::Whisker(INK), "p5 to p95"),
            ],
        )
    })?;
    Ok((svg, log))
}

// ---------------------------------------------------------------------------------------------
// 5. P(alive) matrix

pub(super) fn p_alive(p: &PAliveMatrix) -> Result<String, ReportError> {
    if p.p.len() != p.frequency.len() {
        return Err(fail("p_alive", format!("p has {} rows for {} frequency values", p.p.len(), p.frequency.len())));
    }
    if let Some((i, row)) = p.p.iter().enumerate().find(|(_, r)| r.len() != p.recency.len()) {
        let msg = format!("p[{i}] has {} values for {} recency values", row.len(), p.recency.len());
        return Err(fail("p_alive", msg));
    }
    let fy = cell_edges("frequency", &p.frequency)?;
    let rx = cell_edges("recency", &p.recency)?;
    let unit = p.time_unit.trim();
    let x_desc = if unit.is_empty() { "recency".to_string() } else { format!("recency ({})", short(unit, 20)) };
    let bottom = 48;

    svg("p_alive", (W, H), |root| {
        let (main, side) = root.split_horizontally(W - LEGEND_W);
        let mut chart = ChartBuilder::on(&main)
            .margin(12)
            .margin_top(30)
            .margin_right(8)
            .x_label_area_size(bottom)
            .y_label_area_size(64)
            .build_cartesian_2d(numeric(&(rx[0]..rx[rx.len() - 1]), 9), numeric(&(fy[0]..fy[fy.len() - 1]), 8))?;
        chart
            .configure_mesh()
            .disable_mesh()
            .axis_style(MUTED.stroke_width(1))
            .label_style(text(LABEL, INK))
            .axis_desc_style(text(DESC, INK))
            .x_label_formatter(&axis_fmt(&(rx[0]..rx[rx.len() - 1])))
            .y_label_formatter(&axis_fmt(&(fy[0]..fy[fy.len() - 1])))
            .x_desc(x_desc.as_str())
            .y_desc("frequency (repeat purchases)")
            .draw()?;
        for (i, row) in p.p.iter().enumerate() {
            // NaN marks an impossible cell: left blank.
            chart.draw_series(
                row.iter()
                    .enumerate()
                    .filter(|(_, v)| v.is_finite())
                    .map(|(j, &v)| Rectangle::new([(rx[j], fy[i]), (rx[j + 1], fy[i + 1])], viridis(v).filled())),
            )?;
        }
        colour_bar(&side, 0.0..1.0, viridis, "P(alive)", bottom)
    })
}

/// Cell boundaries halfway between grid values, so uneven grids draw true to scale.
fn cell_edges(name: &str, v: &[f64]) -> Result<Vec<f64>, ReportError> {
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(fail("p_alive", format!("{name}[{i}] = {} is not finite", v[i])));
    }
    if let Some(i) = v.windows(2).position(|w| w[1] <= w[0]) {
        let msg =
            format!("{name}[{}] = {} is not above {name}[{i}] = {}; the grid must increase", i + 1, v[i + 1], v[i]);
        return Err(fail("p_alive", msg));
    }
    Ok(match v {
        [] => vec![0.0, 1.0],
        [x] => vec![x - 0.5, x + 0.5],
        [a, b, ..] => {
            let (y, z) = (v[v.len() - 2], v[v.len() - 1]);
            let mut e = vec![a - (b - a) / 2.0];
            e.extend(v.windows(2).map(|w| (w[0] + w[1]) / 2.0));
            e.push(z + (z - y) / 2.0);
            e
        }
    })
}

// ---------------------------------------------------------------------------------------------
// 6. holdout: actual against predicted

pub(super) fn holdout(buckets: &[HoldoutBucket]) -> Result<String, ReportError> {
    let n = buckets.len();
    let labels: Vec<String> = buckets.iter().map(|b| short(&b.label, 10)).collect();
    let values = buckets.iter().flat_map(|b| [b.actual, b.predicted]);
    let r = value_range(values.chain(once(0.0)), 0.0);
    // Bars start at zero; headroom above the tallest.
    let y = r.start.min(0.0)..r.end.max(0.0) + (r.end - r.start) * 0.1;

    svg("holdout", (W, H), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .margin_top(36)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(categories(n), numeric(&y, 7))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .max_light_lines(0)
            .bold_line_style(GRID.stroke_width(1))
            .axis_style(MUTED.stroke_width(1))
            .label_style(text(LABEL, INK))
            .axis_desc_style(text(DESC, INK))
            .x_label_formatter(&|v| col_label(&labels, *v))
            .y_label_formatter(&axis_fmt(&y))
            .x_desc("purchases in the calibration period")
            .y_desc("purchases in the holdout period")
            .draw()?;
        for (offset, colour, pick) in [(-0.38, BLUE, 0), (0.02, ORANGE, 1)] {
            chart.draw_series(buckets.iter().enumerate().filter_map(|(i, b)| {
                let v = if pick == 0 { b.actual } else { b.predicted };
                let x = i as f64 + offset;
                v.is_finite().then(|| Rectangle::new([(x, 0.0), (x + 0.36, v)], colour.filled()))
            }))?;
        }
        let left = chart.plotting_area().get_pixel_range().0.start;
        legend(root, (left, 16), &[(Glyph::Swatch(BLUE), "actual"), (Glyph::Swatch(ORANGE), "predicted")])
    })
}

// ---------------------------------------------------------------------------------------------
// shared pieces

fn text(size: f64, colour: RGBColor) -> TextStyle<'static> {
    (FONT, size).into_font().color(&colour)
}

fn anchored(style: TextStyle<'static>, h: HPos, v: VPos) -> TextStyle<'static> {
    style.pos(Pos::new(h, v))
}

/// Rough rendered width of `s` in pixels (sans-serif averages ~0.6 em per character).
fn text_px(s: &str, size: f64) -> i32 {
    (s.chars().count() as f64 * size / 1.24 * 0.6).ceil() as i32
}

/// Width of a label area holding `names`, within bounds.
fn label_area(names: &[String]) -> i32 {
    (names.iter().map(|s| text_px(s, LABEL)).max().unwrap_or(0) + 16).clamp(40, 240)
}

/// Chart height for one row per category, at least the standard height.
fn rows_height(n: usize) -> u32 {
    H.max(100 + 34 * n.min(1000) as u32)
}

/// At most `max` characters (control characters become spaces), "…" marking a cut.
fn short(s: &str, max: usize) -> String {
    let clean: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if clean.chars().count() <= max {
        clean
    } else {
        clean.chars().take(max.saturating_sub(1)).chain(once('…')).collect()
    }
}

/// Like [`short`], but keeps the start and the end.
fn short_middle(s: &str, max: usize) -> String {
    let chars: Vec<char> = short(s, usize::MAX).chars().collect();
    if chars.len() <= max {
        return chars.into_iter().collect();
    }
    let head = max.saturating_sub(1) / 2;
    let tail = max.saturating_sub(1) - head;
    chars[..head].iter().chain(once(&'…')).chain(&chars[chars.len() - tail..]).collect()
}

/// A categorical axis: category i sits at i, ticks only at the categories.
fn categories(n: usize) -> Ticks {
    Ticks { range: -0.5..n.max(1) as f64 - 0.5, ticks: (0..n).map(|i| i as f64).collect() }
}

/// A numeric axis over `r` with about `target` nice ticks.
fn numeric(r: &Range<f64>, target: usize) -> Ticks {
    Ticks { range: r.clone(), ticks: linear_ticks(r, target) }
}

/// A linear f64 axis with ticks exactly where we want them. Every axis uses it: plotters' own
/// f64 tick search never ends on an infinite or extreme range, and its `with_key_points`
/// wrapper loses the f64 label formatter.
#[derive(Clone)]
struct Ticks {
    range: Range<f64>,
    ticks: Vec<f64>,
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
fn row_y(n: usize, i: usize) -> f64 {
    (n - 1 - i) as f64
}

fn row_label(names: &[String], y: f64) -> String {
    let n = names.len() as f64;
    col_label(names, n - 1.0 - y)
}

fn col_label(names: &[String], x: f64) -> String {
    let i = x.round();
    if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
        names[i as usize].clone()
    } else {
        String::new()
    }
}

/// Finite min..max padded by `pad` of the span; 0..1 when nothing is finite, ±10% when flat.
fn value_range(values: impl Iterator<Item = f64>, pad: f64) -> Range<f64> {
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
fn axis_fmt(r: &Range<f64>) -> impl Fn(&f64) -> String + use<> {
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
fn linear_ticks(r: &Range<f64>, target: usize) -> Vec<f64> {
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
fn log_ticks(r: &Range<f64>) -> Vec<f64> {
    let mantissas: &[f64] = if r.end - r.start <= 3.0 { &[1.0, 2.0, 5.0] } else { &[1.0] };
    let (e0, e1) = (r.start.floor() as i32, r.end.ceil() as i32);
    (e0..=e1.min(e0 + 400))
        .flat_map(|e| mantissas.iter().map(move |m| (m * 10f64.powi(e)).log10()))
        .filter(|t| r.contains(t))
        .collect()
}

/// Consecutive runs of finite points, so a NaN breaks a line instead of bending it.
fn finite_runs(points: impl Iterator<Item = (f64, f64)>) -> Vec<Vec<(f64, f64)>> {
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

#[derive(Clone, Copy)]
enum Glyph {
    Line(RGBColor),
    Dashed(RGBColor),
    Swatch(RGBColor),
    Dot(RGBColor),
    Tick(RGBColor),
    Whisker(RGBColor),
}

/// A one-line legend drawn left to right from `(x, y)` (y is the line's middle).
fn legend(root: &Area<'_>, (x, y): (i32, i32), items: &[(Glyph, &str)]) -> DrawResult {
    // Shift left, down to the margin, if the legend would run off the right edge.
    let width: i32 = items.iter().map(|(_, l)| 26 + text_px(l, LABEL) + 22).sum::<i32>() - 22;
    let mut x = x.min(root.dim_in_pixel().0 as i32 - 12 - width).max(12);
    for &(glyph, label) in items {
        match glyph {
            Glyph::Line(c) => root.draw(&PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)))?,
            Glyph::Dashed(c) => {
                for (a, b) in [(0, 6), (9, 14), (17, 20)] {
                    root.draw(&PathElement::new(vec![(x + a, y), (x + b, y)], c.stroke_width(2)))?;
                }
            }
            Glyph::Swatch(c) => root.draw(&Rectangle::new([(x + 2, y - 6), (x + 18, y + 6)], c.filled()))?,
            Glyph::Dot(c) => root.draw(&Circle::new((x + 10, y), 4, c.filled()))?,
            Glyph::Tick(c) => {
                root.draw(&PathElement::new(vec![(x + 10, y - 7), (x + 10, y + 7)], c.stroke_width(3)))?
            }
            Glyph::Whisker(c) => {
                root.draw(&PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(1)))?;
                root.draw(&PathElement::new(vec![(x, y - 4), (x, y + 4)], c.stroke_width(1)))?;
                root.draw(&PathElement::new(vec![(x + 20, y - 4), (x + 20, y + 4)], c.stroke_width(1)))?;
            }
        }
        root.draw(&Text::new(label.to_string(), (x + 26, y), anchored(text(LABEL, INK), HPos::Left, VPos::Center)))?;
        x += 26 + text_px(label, LABEL) + 22;
    }
    Ok(())
}

/// A vertical colour bar with its scale on the right and `title` above; `bottom` matches the
/// heatmap's x label area so both plots have the same height.
fn colour_bar(
    area: &Area<'_>,
    range: Range<f64>,
    colour: impl Fn(f64) -> RGBColor,
    title: &str,
    bottom: i32,
) -> DrawResult {
    // Ticks at the ends, the quarters and the middle, so the scale's limits are labelled.
    let quarters = (0..=4).map(|i| range.start + (range.end - range.start) * f64::from(i) / 4.0).collect();
    let mut chart = ChartBuilder::on(area)
        .margin_top(30)
        .margin_bottom(12)
        .margin_left(6)
        .x_label_area_size(bottom)
        .right_y_label_area_size(50)
        .build_cartesian_2d(0.0..1.0, Ticks { range: range.clone(), ticks: quarters })?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .axis_style(MUTED.stroke_width(1))
        .label_style(text(SMALL, INK))
        .y_label_formatter(&|v| fmt_value(*v))
        .draw()?;
    const STEPS: usize = 48;
    let span = range.end - range.start;
    chart.draw_series((0..STEPS).map(|i| {
        let a = range.start + span * i as f64 / STEPS as f64;
        let b = range.start + span * (i + 1) as f64 / STEPS as f64;
        Rectangle::new([(0.0, a), (1.0, b)], colour((a + b) / 2.0).filled())
    }))?;
    let (xs, ys) = chart.plotting_area().get_pixel_range();
    let (bx, by) = area.get_base_pixel();
    let style = anchored(text(LABEL, INK), HPos::Left, VPos::Bottom);
    area.draw(&Text::new(title.to_string(), (xs.start - bx, ys.start - by - 8), style))
}

/// Linear interpolation through colour stops `(t, rgb)`, t ascending; t clamped to the ends.
fn ramp(stops: &[(f64, (u8, u8, u8))], t: f64) -> RGBColor {
    let t = if t.is_nan() { stops[0].0 } else { t.clamp(stops[0].0, stops[stops.len() - 1].0) };
    let i = stops.windows(2).position(|w| t <= w[1].0).unwrap_or(stops.len() - 2);
    let ((t0, a), (t1, b)) = (stops[i], stops[i + 1]);
    let f = if t1 > t0 { (t - t0) / (t1 - t0) } else { 0.0 };
    let mix = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// ColorBrewer RdBu: blue below zero, white at zero, red above; t in [−1, 1].
fn diverging(t: f64) -> RGBColor {
    const STOPS: [(f64, (u8, u8, u8)); 5] = [
        (-1.0, (0x21, 0x66, 0xAC)),
        (-0.5, (0x67, 0xA9, 0xCF)),
        (0.0, (0xF7, 0xF7, 0xF7)),
        (0.5, (0xEF, 0x8A, 0x62)),
        (1.0, (0xB2, 0x18, 0x2B)),
    ];
    ramp(&STOPS, t)
}

/// matplotlib's viridis (the colour map lifetimes' chart uses), sampled at nine points; t in [0, 1].
fn viridis(t: f64) -> RGBColor {
    const STOPS: [(f64, (u8, u8, u8)); 9] = [
        (0.0, (0x44, 0x01, 0x54)),
        (0.125, (0x47, 0x2D, 0x7B)),
        (0.25, (0x3B, 0x52, 0x8B)),
        (0.375, (0x2C, 0x72, 0x8E)),
        (0.5, (0x21, 0x91, 0x8C)),
        (0.625, (0x28, 0xAE, 0x80)),
        (0.75, (0x5E, 0xC9, 0x62)),
        (0.875, (0xAD, 0xDC, 0x30)),
        (1.0, (0xFD, 0xE7, 0x25)),
    ];
    ramp(&STOPS, t)
}

/// Dark text on light fills, white on dark ones.
fn contrast(fill: RGBColor) -> RGBColor {
    let luma = 0.299 * fill.0 as f64 + 0.587 * fill.1 as f64 + 0.114 * fill.2 as f64;
    if luma > 140.0 { INK } else { WHITE }
}
