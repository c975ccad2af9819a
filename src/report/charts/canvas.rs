//! Drawing surface and shared decorations: a chart drawn into its own SVG string (plotters'
//! failures and panics turned into [`ReportError`]), the one-line legend, and the colour bar
//! beside a heatmap.

use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::axes::{Ticks, text_px};
use super::theme::{INK, LABEL, MUTED, SMALL, anchored, text};
use crate::report::error::ReportError;
use crate::report::format::fmt_value;

pub(super) type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
pub(super) type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// Draws into a fresh SVG string of `size` pixels.
pub(super) fn svg(
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

pub(super) fn fail(chart: &'static str, message: impl std::fmt::Display) -> ReportError {
    ReportError::Chart { chart, message: message.to_string() }
}

#[derive(Clone, Copy)]
pub(super) enum Glyph {
    Line(RGBColor),
    Dashed(RGBColor),
    Swatch(RGBColor),
    Dot(RGBColor),
    Tick(RGBColor),
    Whisker(RGBColor),
}

/// A one-line legend drawn left to right from `(x, y)` (y is the line's middle).
pub(super) fn legend(root: &Area<'_>, (x, y): (i32, i32), items: &[(Glyph, &str)]) -> DrawResult {
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
pub(super) fn colour_bar(
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
