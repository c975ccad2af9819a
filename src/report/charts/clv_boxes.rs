//! Chart 4, CLV by segment: one box plot per segment (p5, Q1, median, Q3, p95 and the mean),
//! on a log axis when the values span orders of magnitude.

use std::iter::once;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::axes::{Ticks, axis_fmt, categories, label_area, linear_ticks, log_ticks, row_label, row_y, rows_height, short, value_range};
use super::canvas::{Glyph, legend, svg};
use super::theme::{BLUE, INK, LABEL, LIGHT_BLUE, MUTED, ORANGE, W, anchored, axes, text};
use crate::report::error::ReportError;
use crate::report::format::{fmt_count, fmt_value};
use crate::report::model::SegmentValues;
use crate::stats::BoxStats;

type LabelFmt = Box<dyn Fn(&f64) -> String>;

/// Returns the SVG and whether the value axis is logarithmic.
pub(in crate::report) fn clv_boxes(segments: &[SegmentValues], stats: &[Option<BoxStats>]) -> Result<(String, bool), ReportError> {
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
        axes(chart.configure_mesh().disable_y_mesh())
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
