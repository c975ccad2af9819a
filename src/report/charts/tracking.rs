//! Chart 7, holdout tracking: cumulative repeat purchases after the calibration end, actual
//! against what the model fitted on the calibration period expects, as lifetimes'
//! `plot_cumulative_transactions` draws them.

use std::iter::once;

use plotters::prelude::*;

use super::axes::{axis_fmt, finite_runs, numeric, value_range};
use super::canvas::{Glyph, fail, legend, svg};
use super::theme::{BLUE, H, ORANGE, W, axes};
use crate::report::error::ReportError;
use crate::report::model::TrackingPoint;

pub(in crate::report) fn tracking(points: &[TrackingPoint]) -> Result<String, ReportError> {
    let Some(last) = points.iter().map(|p| p.days).max() else {
        return Err(fail("tracking", "no points"));
    };
    // Both lines start at zero purchases on the calibration end.
    let line = |pick: fn(&TrackingPoint) -> f64| once((0.0, 0.0)).chain(points.iter().map(move |p| (p.days as f64, pick(p)))).collect::<Vec<_>>();
    let (actual, expected) = (line(|p| p.actual), line(|p| p.expected));
    let x = value_range([0.0, f64::from(last)].into_iter(), 0.02);
    // From zero, with headroom above the top.
    let r = value_range(actual.iter().chain(&expected).map(|p| p.1).chain(once(0.0)), 0.0);
    let y = r.start.min(0.0)..r.end.max(0.0) + (r.end - r.start) * 0.05;
    svg("tracking", (W, H), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .margin_top(36)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(numeric(&x, 8), numeric(&y, 7))?;
        axes(chart.configure_mesh().max_light_lines(0))
            .x_label_formatter(&axis_fmt(&x))
            .y_label_formatter(&axis_fmt(&y))
            .x_desc("days after the calibration end")
            .y_desc("repeat purchases, cumulative")
            .draw()?;
        // The model's dashes over the purchases' line: where the two agree both stay visible.
        for run in finite_runs(actual.into_iter()) {
            chart.draw_series(LineSeries::new(run.clone(), BLUE.stroke_width(2)))?;
            chart.draw_series(run.into_iter().map(|p| Circle::new(p, 3, BLUE.filled())))?;
        }
        for run in finite_runs(expected.into_iter()) {
            chart.draw_series(DashedLineSeries::new(run, 8, 5, ORANGE.stroke_width(2)))?;
        }
        let left = chart.plotting_area().get_pixel_range().0.start;
        legend(root, (left, 16), &[(Glyph::Line(BLUE), "actual"), (Glyph::Dashed(ORANGE), "expected by the model")])
    })
}
