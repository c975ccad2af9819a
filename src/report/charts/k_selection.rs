//! Chart 1, choosing k: mean silhouette and bootstrap stability (left axis) and inertia (right
//! axis) against k, the chosen k marked by a dashed line.

use plotters::prelude::*;

use super::axes::{Ticks, axis_fmt, finite_runs, numeric, value_range};
use super::canvas::{Glyph, fail, legend, svg};
use super::theme::{BLUE, DESC, GREEN, H, INK, LABEL, MUTED, ORANGE, W, axes, text};
use crate::report::error::ReportError;
use crate::report::model::KSelection;

pub(in crate::report) fn k_selection(ks: &KSelection) -> Result<String, ReportError> {
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
    let sil = value_range(rows.iter().flat_map(|r| [r.silhouette, r.stability]), 0.1);
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
        axes(chart.configure_mesh().disable_x_mesh().max_light_lines(0))
            .x_label_formatter(&|v| {
                if v.fract() == 0.0 { format!("{v:.0}") } else { String::new() }
            })
            .y_label_formatter(&axis_fmt(&sil))
            .x_desc("k (number of segments)")
            .y_desc("silhouette, stability")
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
        for run in finite_runs(rows.iter().map(|r| (r.k as f64, r.stability))) {
            chart.draw_series(LineSeries::new(run.clone(), GREEN.stroke_width(2)))?;
            chart.draw_series(run.into_iter().map(|p| Cross::new(p, 4, GREEN.stroke_width(2))))?;
        }
        let left = chart.plotting_area().get_pixel_range().0.start;
        let chosen_label = format!("chosen k = {}", ks.chosen_k);
        legend(
            root,
            (left, 16),
            &[
                (Glyph::Line(BLUE), "silhouette"),
                (Glyph::Line(GREEN), "stability"),
                (Glyph::Line(ORANGE), "inertia"),
                (Glyph::Dashed(MUTED), chosen_label.as_str()),
            ],
        )
    })
}
