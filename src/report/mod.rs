//! The run report: one self-contained HTML page with the charts inline as SVG.
//!
//! 1. The caller gathers a run's results into plain data ([`ReportData`], module `model`);
//!    nothing here reads files or the clock, so the same input always gives byte-identical HTML.
//! 2. [`render_html`] (module `page`, a maud template) draws each chart with plotters' SVG
//!    backend (module `charts`) and wraps them, with a table of key numbers, in a page with
//!    inline CSS. Numbers are formatted by module `format`.
//!
//! The page needs no network: no scripts, fonts, stylesheets or images are referenced. Text is
//! drawn as SVG `<text>` in the viewer's own sans-serif font. plotters is built without its
//! `ttf` feature, so it only estimates text widths (0.7 em per byte, an overestimate for
//! sans-serif fonts); layouts leave room accordingly.
//!
//! A section whose data is `None` or empty shows a short "not run in this job" line.

mod charts;
mod error;
mod format;
mod model;
mod page;

pub use error::ReportError;
pub use model::{ActionTotals, HoldoutBucket, TrackingPoint, KRow, KSelection, PAliveMatrix, ProfileHeatmap, ReportData, SegmentRuleText, SegmentSize, SegmentValues};
pub use page::render_html;
