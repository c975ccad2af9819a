//! SQL helpers the model stages share when they read a view through the engine: running a
//! query with errors naming the view, literals, the columns of collected batches, the
//! non-finite test, and the duplicate-id check.

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::config::ConfigOptions;
use datafusion::dataframe::DataFrame;
use datafusion::execution::context::SessionContext;

use super::ids::id_array;
use crate::error::Error;
use crate::features::FeatureError;
use crate::quality::quote;

/// A query's failure, naming `view`.
fn query_error(view: &str) -> impl Fn(datafusion::error::DataFusionError) -> Error + '_ {
    move |source| Error::from(FeatureError::Query { view: view.to_string(), source })
}

/// Runs `sql` and collects its rows; a failure names `view`.
pub(super) async fn collect(ctx: &SessionContext, view: &str, sql: &str) -> Result<Vec<RecordBatch>, Error> {
    let q = query_error(view);
    ctx.sql(sql).await.map_err(&q)?.collect().await.map_err(q)
}

/// Runs `sql` with `options` changed for this query only and hands its batches to `each` one
/// at a time as they come, so the caller keeps what it derives from them and never all of the
/// rows at once; stops (dropping the rest of the query) when `each` returns false. A failure
/// names `view`.
pub(super) async fn for_each_batch(
    ctx: &SessionContext,
    view: &str,
    sql: &str,
    options: impl FnOnce(&mut ConfigOptions),
    mut each: impl FnMut(&RecordBatch) -> Result<bool, Error>,
) -> Result<(), Error> {
    use futures::StreamExt;
    let q = query_error(view);
    let df = with_options(ctx.sql(sql).await.map_err(&q)?, options);
    let mut stream = df.execute_stream().await.map_err(&q)?;
    while let Some(batch) = stream.next().await {
        if !each(&batch.map_err(&q)?)? {
            break;
        }
    }
    Ok(())
}

/// `df` with its own copy of the session's settings, changed by `options`: the session's
/// other queries keep theirs.
pub(super) fn with_options(df: DataFrame, options: impl FnOnce(&mut ConfigOptions)) -> DataFrame {
    let (mut state, plan) = df.into_parts();
    options(state.config_mut().options_mut());
    DataFrame::new(state, plan)
}

/// A DOUBLE literal that plans back to the same bits: Rust's shortest round-trip form.
pub(super) fn num(v: f64) -> String {
    debug_assert!(v.is_finite());
    format!("CAST({v:?} AS DOUBLE)")
}

/// A VARCHAR literal.
pub(super) fn text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
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

/// A SQL count of the rows where DOUBLE expression `x` is NaN or ±inf (NULLs not counted):
/// `x - x` is NaN exactly then, 0 for finite values.
pub(super) fn non_finite_count(x: &str) -> String {
    format!("sum(CASE WHEN isnan({x} - {x}) THEN 1 ELSE 0 END)")
}

/// The first row's id (column 0) as text.
fn first_id(b: &RecordBatch) -> Result<String, Error> {
    Ok(id_array(b.column(0))?.value(0).to_string())
}

/// The smallest id that appears twice in `table` (the rows of `view`, which errors name), as
/// an error: the view must have one row per customer.
pub(super) async fn first_duplicate(ctx: &SessionContext, view: &str, table: &str, id: &str) -> Result<(), Error> {
    let id = quote(id);
    let sql = format!("SELECT CAST({id} AS VARCHAR) AS id_text FROM {} GROUP BY {id} HAVING count(*) > 1 ORDER BY {id} LIMIT 1", quote(table));
    let batches = collect(ctx, view, &sql).await?;
    match batches.iter().find(|b| b.num_rows() > 0) {
        Some(b) => Err(FeatureError::DuplicateId { view: view.to_string(), id: first_id(b)? }.into()),
        None => Ok(()),
    }
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
