//! Colour maps, from colorous: ColorBrewer RdBu (diverging, for z-scores) and matplotlib's
//! viridis (for probabilities), plus the text colour that reads on a given fill.

use colorous::{Color, Gradient, RED_BLUE, VIRIDIS};
use plotters::prelude::*;

use super::theme::INK;

/// ColorBrewer RdBu: blue below zero, white at zero, red above; t in [−1, 1], clamped.
///
/// colorous spans the 11-class scheme (dark red #67001F to dark blue #053061); the page has
/// always used the 5-class one, whose ends (#B2182B, #2166AC) are the 11-class scheme's second
/// and tenth colours, so only the middle 80% of the gradient is used.
pub(super) fn diverging(t: f64) -> RGBColor {
    // RdBu runs red to blue: red (t = 1) at 0.1, white (t = 0) at 0.5, blue (t = −1) at 0.9.
    sample(RED_BLUE, 0.5 - 0.4 * t.clamp(-1.0, 1.0), 0.9)
}

/// matplotlib's viridis (the colour map lifetimes' chart uses); t in [0, 1], clamped.
pub(super) fn viridis(t: f64) -> RGBColor {
    sample(VIRIDIS, t, 0.0)
}

/// The gradient at `t` (colorous clamps to [0, 1]); NaN takes `nan_at`, the scale's low end.
fn sample(gradient: Gradient, t: f64, nan_at: f64) -> RGBColor {
    let Color { r, g, b } = gradient.eval_continuous(if t.is_nan() { nan_at } else { t });
    RGBColor(r, g, b)
}

/// Dark text on light fills, white on dark ones.
pub(super) fn contrast(fill: RGBColor) -> RGBColor {
    let luma = 0.299 * fill.0 as f64 + 0.587 * fill.1 as f64 + 0.114 * fill.2 as f64;
    if luma > 140.0 { INK } else { WHITE }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Near the old hand-written stops: within a few units per channel (colorous interpolates
    /// with a spline, the old table linearly).
    fn near(c: RGBColor, (r, g, b): (u8, u8, u8)) -> bool {
        [(c.0, r), (c.1, g), (c.2, b)].iter().all(|&(x, y)| x.abs_diff(y) <= 12)
    }

    #[test]
    fn diverging_is_blue_white_red() {
        assert!(near(diverging(-1.0), (0x21, 0x66, 0xAC)), "{:?}", diverging(-1.0));
        assert!(near(diverging(0.0), (0xF7, 0xF7, 0xF7)), "{:?}", diverging(0.0));
        assert!(near(diverging(1.0), (0xB2, 0x18, 0x2B)), "{:?}", diverging(1.0));
        assert_eq!(diverging(5.0), diverging(1.0));
    }

    #[test]
    fn viridis_runs_purple_to_yellow() {
        assert!(near(viridis(0.0), (0x44, 0x01, 0x54)), "{:?}", viridis(0.0));
        assert!(near(viridis(0.5), (0x21, 0x91, 0x8C)), "{:?}", viridis(0.5));
        assert!(near(viridis(1.0), (0xFD, 0xE7, 0x25)), "{:?}", viridis(1.0));
        assert_eq!(viridis(f64::NAN), viridis(0.0));
    }
}
