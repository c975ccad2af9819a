//! The tables the stage registers, and the SQL literals and batch columns (from
//! `pipeline::query`) its plans and queries use.

use crate::error::Error;
use crate::quality::quote;
use crate::segment::prep::NULL_CATEGORY;

// Tables the stage registers in the session.

/// The staged `customer_features` as the stage's queries read it.
pub(super) const FEATURES: &str = "__segvalue_segmentation_features";
/// The two runs' `customer_segments` for the transitions.
pub(super) const CURRENT: &str = "__segvalue_segments_current";
pub(super) const PREVIOUS: &str = "__segvalue_segments_previous";
/// The RFM view's columns, on disk.
pub(super) const RFM: &str = "__segvalue_rfm";
/// Mixed into each id's hash that picks the fit sample, with the job's seed.
pub(super) const SAMPLE_SALT: &str = "segvalue/segmentation";

pub(super) use crate::pipeline::query::{f64s, i64s, num, strings, text};

/// A categorical column as the preparation reads it: its text, NULL as [`NULL_CATEGORY`].
pub(super) fn category(column: &str) -> String {
    format!("coalesce(CAST({} AS VARCHAR), {})", quote(column), text(NULL_CATEGORY))
}

pub(super) fn not_staged(table: &str) -> Error {
    Error::query(table, datafusion::error::DataFusionError::Execution("the table was not staged before the segment tables".into()))
}
