//! The seven charts, each drawn into its own SVG string with plotters' SVG backend: one file per
//! chart, and the pieces they share (`theme` for the look, `axes` for ticks and text layout,
//! `palette` for colour maps, `canvas` for the SVG surface, legend and colour bar).
//!
//! Inputs are checked before drawing (shapes, grids) and every axis range is made finite and
//! non-empty first, because plotters divides by the range width and picks ticks from it.

mod axes;
mod canvas;
mod clv_boxes;
mod holdout;
mod k_selection;
mod p_alive;
mod palette;
mod profile_heatmap;
mod segment_sizes;
mod theme;
mod tracking;

pub(super) use clv_boxes::clv_boxes;
pub(super) use holdout::holdout;
pub(super) use k_selection::k_selection;
pub(super) use p_alive::p_alive;
pub(super) use profile_heatmap::profile_heatmap;
pub(super) use segment_sizes::segment_sizes;
pub(super) use tracking::tracking;
