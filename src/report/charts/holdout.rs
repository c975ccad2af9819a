//! Chart 6, holdout check: actual and predicted holdout-period purchases side by side for each
//! bucket of calibration-period purchases.

use std::iter::once;

use plotters::prelude::*;

use super::axes::{axis_fmt, categories, col_label, numeric, short, value_range};
use super::canvas::{Glyph, legend, svg};
use super::theme::{BLUE, H, ORANGE, W, axes};
use crate::report::error::ReportError;
use crate::report::model::HoldoutBucket;

pub(in crate::report) fn holdout(buckets: &[HoldoutBucket]) -> Result<String, ReportError> {
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
        axes(chart.configure_mesh().disable_x_mesh().max_light_lines(0))
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
