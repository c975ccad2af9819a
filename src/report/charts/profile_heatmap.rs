//! Chart 3, segment profiles: a heatmap of each feature's mean z-score per segment, with the
//! values printed in the cells when they fit and a colour bar beside it.

use std::iter::once;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::axes::{categories, label_area, row_label, row_y, short, short_middle, text_px};
use super::canvas::{colour_bar, fail, svg};
use super::palette::{contrast, diverging};
use super::theme::{H, INK, LABEL, LEGEND_W, MUTED, NA_FILL, SMALL, W, anchored, text};
use crate::report::error::ReportError;
use crate::report::model::ProfileHeatmap;

/// Returns the SVG and the |z| at which the colour saturates.
pub(in crate::report) fn profile_heatmap(p: &ProfileHeatmap) -> Result<(String, f64), ReportError> {
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
