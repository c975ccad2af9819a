//! The charts' look: canvas size, font and text sizes, and the fixed colours.

use plotters::chart::MeshStyle;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub(super) const W: u32 = 640;
pub(super) const H: u32 = 360;
/// Room on the right of the heatmaps for the colour bar.
pub(super) const LEGEND_W: u32 = 90;
pub(super) const FONT: &str = "sans-serif";
// plotters writes `font-size = size / 1.24` into the SVG: 15 gives ~12 px text.
pub(super) const LABEL: f64 = 15.0;
pub(super) const DESC: f64 = 16.0;
pub(super) const SMALL: f64 = 13.5;

pub(super) const BLUE: RGBColor = RGBColor(0x4E, 0x79, 0xA7);
pub(super) const LIGHT_BLUE: RGBColor = RGBColor(0xBF, 0xD1, 0xE5);
pub(super) const ORANGE: RGBColor = RGBColor(0xE1, 0x7C, 0x1C);
pub(super) const GREEN: RGBColor = RGBColor(0x3B, 0x8A, 0x3E);
pub(super) const GRID: RGBColor = RGBColor(0xE3, 0xE6, 0xEA);
pub(super) const INK: RGBColor = RGBColor(0x1D, 0x24, 0x30);
pub(super) const MUTED: RGBColor = RGBColor(0x6A, 0x74, 0x83);
pub(super) const NA_FILL: RGBColor = RGBColor(0xEE, 0xEE, 0xEE);

pub(super) fn text(size: f64, colour: RGBColor) -> TextStyle<'static> {
    (FONT, size).into_font().color(&colour)
}

pub(super) fn anchored(style: TextStyle<'static>, h: HPos, v: VPos) -> TextStyle<'static> {
    style.pos(Pos::new(h, v))
}

/// The house style of a chart's axes and grid: light grid lines, muted axes, ink labels.
pub(super) fn axes<'m, 'a, 'b, X: Ranged, Y: Ranged, DB: DrawingBackend>(
    mesh: &'m mut MeshStyle<'a, 'b, X, Y, DB>,
) -> &'m mut MeshStyle<'a, 'b, X, Y, DB> {
    mesh.bold_line_style(GRID.stroke_width(1))
        .axis_style(MUTED.stroke_width(1))
        .label_style(text(LABEL, INK))
        .axis_desc_style(text(DESC, INK))
}
