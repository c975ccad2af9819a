//! Chart 2, segment sizes: one horizontal bar per segment, labelled with its count and share.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::axes::{axis_fmt, categories, label_area, numeric, row_label, row_y, rows_height, short};
use super::canvas::svg;
use super::theme::{BLUE, INK, LABEL, W, anchored, axes, text};
use crate::report::error::ReportError;
use crate::report::format::fmt_count;
use crate::report::model::SegmentSize;

pub(in crate::report) fn segment_sizes(segments: &[SegmentSize]) -> Result<String, ReportError> {
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
        axes(chart.configure_mesh().disable_y_mesh().max_light_lines(0))
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
