//! The tables the stage registers, SQL literals for the plans it writes, and the columns of
//! collected batches.

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};

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

pub(super) use crate::pipeline::query::{num, text};

/// A categorical column as the preparation reads it: its text, NULL as [`NULL_CATEGORY`].
pub(super) fn category(column: &str) -> String {
    format!("coalesce(CAST({} AS VARCHAR), {})", quote(column), text(NULL_CATEGORY))
}


/// Column `name` of every batch as f64 (NULL as NaN).
pub(super) fn f64s(batches: &[RecordBatch], name: &str) -> Vec<f64> {
    let mut out = Vec::new();
    for b in batches {
        let c = cast(b.column_by_name(name).expect("selected"), &DataType::Float64).expect("numbers cast to DOUBLE");
        out.extend(c.as_primitive::<Float64Type>().iter().map(|v| v.unwrap_or(f64::NAN)));
    }
    out
}

pub(super) fn i64s(batches: &[RecordBatch], name: &str) -> Vec<i64> {
    let mut out = Vec::new();
    for b in batches {
        let c = cast(b.column_by_name(name).expect("selected"), &DataType::Int64).expect("integers cast to BIGINT");
        out.extend(c.as_primitive::<Int64Type>().iter().map(|v| v.unwrap_or(0)));
    }
    out
}

pub(super) fn strings(batches: &[RecordBatch], name: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for b in batches {
        let c = cast(b.column_by_name(name).expect("selected"), &DataType::Utf8).expect("text casts");
        out.extend(c.as_string::<i32>().iter().map(|v| v.map(str::to_string)));
    }
    out
}

pub(super) fn not_staged(table: &str) -> Error {
    Error::query(table, datafusion::error::DataFusionError::Execution("the table was not staged before the segment tables".into()))
}

#[cfg(test)]
mod tests {
    use datafusion::execution::context::SessionContext;

    use super::*;

    #[tokio::test]
    async fn number_literals_plan_back_to_the_same_bits() {
        let ctx = SessionContext::new();
        let values = [0.1, -3.3333333333333335, 1e-300, 5e-324, 1.7976931348623157e308, -0.0, 123456789.125, 2.0f64.sqrt()];
        let list: Vec<String> = values.iter().map(|&v| format!("{} AS v{}", num(v), values.iter().position(|&w| w.to_bits() == v.to_bits()).unwrap())).collect();
        let b = ctx.sql(&format!("SELECT {}", list.join(", "))).await.unwrap().collect().await.unwrap();
        for (i, v) in values.iter().enumerate() {
            assert_eq!(f64s(&b, &format!("v{i}"))[0].to_bits(), v.to_bits(), "{v:?}");
        }
    }
}
