//! Features: per-customer view rows → a dense `f64` matrix, and scaling.
//!
//! [`load_matrix`] streams the id and feature columns out of DataFusion, sorted by id, so the
//! row order (and hence every seeded model result) does not depend on partitioning or thread
//! count.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::{cast, concat};
use datafusion::arrow::datatypes::{DataType, Float64Type, SchemaRef};
use datafusion::dataframe::DataFrame;
use datafusion::execution::context::SessionContext;
// `ident` takes column names from the job verbatim, without SQL case folding.
use datafusion::logical_expr::ident;
use futures::StreamExt;
use ndarray::Array2;

use crate::text::one_line;

#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    #[error("view '{view}': no column '{column}' (columns: {available})")]
    MissingColumn {
        view: String,
        column: String,
        available: String,
    },
    #[error("view '{view}': feature column '{column}' has type {data_type}, expected a number")]
    NotNumeric {
        view: String,
        column: String,
        data_type: DataType,
    },
    #[error("view '{view}': column '{column}' has {count} null value(s); fill them in the view (e.g. COALESCE)")]
    Nulls { view: String, column: String, count: usize },
    #[error("view '{view}': column '{column}' has {count} non-finite value(s) (NaN or infinity)")]
    NonFinite { view: String, column: String, count: usize },
    #[error("view '{view}': id '{id}' appears more than once; the view must have one row per customer")]
    DuplicateId { view: String, id: String },
    #[error("view '{view}': no rows")]
    Empty { view: String },
    #[error("view '{view}': {}", one_line(source))]
    Query {
        view: String,
        source: datafusion::error::DataFusionError,
    },
}

impl FeatureError {
    /// Errors the job file can fix (wrong names or types) rather than the data.
    pub fn is_config(&self) -> bool {
        matches!(self, FeatureError::MissingColumn { .. } | FeatureError::NotNumeric { .. })
    }
}

/// Rows are customers sorted by id; columns are `names`.
#[derive(Debug, Clone)]
pub struct FeatureMatrix {
    pub ids: ArrayRef,
    pub names: Vec<String>,
    pub x: Array2<f64>,
}

/// Like [`FeatureMatrix`], but nulls are kept (as NaN in `x`, counted in `nulls`) for the
/// preparation step to fill, and categorical columns come as strings.
#[derive(Debug, Clone)]
pub struct FeatureFrame {
    pub ids: ArrayRef,
    pub names: Vec<String>,
    pub x: Array2<f64>,
    /// Nulls per numeric column.
    pub nulls: Vec<usize>,
    pub categorical_names: Vec<String>,
    /// One vector per categorical column; `None` is SQL NULL.
    pub categorical: Vec<Vec<Option<String>>>,
}

/// Checks that `id`, `numeric` and `categorical` exist in `schema` and that `numeric` columns
/// are numbers.
pub fn check_columns(
    view: &str,
    schema: &SchemaRef,
    id: &str,
    numeric: &[String],
    categorical: &[String],
) -> Result<(), FeatureError> {
    let available = || schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ");
    let all = std::iter::once(id).chain(numeric.iter().map(String::as_str)).chain(categorical.iter().map(String::as_str));
    for name in all {
        let field = schema.field_with_name(name).map_err(|_| FeatureError::MissingColumn {
            view: view.to_string(),
            column: name.to_string(),
            available: available(),
        })?;
        let is_number = field.data_type().is_numeric() || field.data_type() == &DataType::Boolean;
        if numeric.iter().any(|n| n == name) && !is_number {
            return Err(FeatureError::NotNumeric {
                view: view.to_string(),
                column: name.to_string(),
                data_type: field.data_type().clone(),
            });
        }
    }
    Ok(())
}

/// Streams `id` and `features` of `view`, sorted by id, into a matrix; nulls are an error.
pub async fn load_matrix(
    ctx: &SessionContext,
    view: &str,
    id: &str,
    features: &[String],
) -> Result<FeatureMatrix, FeatureError> {
    let f = load_frame(ctx, view, id, features, &[]).await?;
    if let Some(j) = f.nulls.iter().position(|&c| c > 0) {
        return Err(FeatureError::Nulls {
            view: view.to_string(),
            column: features[j].clone(),
            count: f.nulls[j],
        });
    }
    Ok(FeatureMatrix {
        ids: f.ids,
        names: f.names,
        x: f.x,
    })
}

/// Streams `id`, `numeric` and `categorical` columns of `view`, sorted by id.
pub async fn load_frame(
    ctx: &SessionContext,
    view: &str,
    id: &str,
    numeric: &[String],
    categorical: &[String],
) -> Result<FeatureFrame, FeatureError> {
    let df = ctx.table(view).await.map_err(|source| FeatureError::Query { view: view.to_string(), source })?;
    load_rows(df, view, id, numeric, categorical).await
}

/// [`load_frame`] over any plan with the view's columns (e.g. a sample of it); `view` names it
/// in errors.
pub async fn load_rows(df: DataFrame, view: &str, id: &str, numeric: &[String], categorical: &[String]) -> Result<FeatureFrame, FeatureError> {
    let q = |source| FeatureError::Query {
        view: view.to_string(),
        source,
    };
    let mut exprs = vec![ident(id)];
    exprs.extend(numeric.iter().chain(categorical).map(|f| ident(f)));
    let df = df.select(exprs).and_then(|df| df.sort(vec![ident(id).sort(true, true)])).map_err(q)?;
    let mut stream = df.execute_stream().await.map_err(q)?;

    let p = numeric.len();
    let mut values: Vec<f64> = Vec::new();
    let mut id_chunks: Vec<ArrayRef> = Vec::new();
    let mut nulls = vec![0usize; p];
    let mut non_finite = vec![0usize; p];
    let mut cats: Vec<Vec<Option<String>>> = vec![Vec::new(); categorical.len()];
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(q)?;
        let n = batch.num_rows();
        let start = values.len();
        values.resize(start + n * p, 0.0);
        for j in 0..p {
            let c = cast(batch.column(j + 1), &DataType::Float64).map_err(|e| q(e.into()))?;
            nulls[j] += c.null_count();
            let c = c.as_primitive::<Float64Type>();
            for i in 0..n {
                let v = if c.is_null(i) { f64::NAN } else { c.value(i) };
                non_finite[j] += usize::from(c.is_valid(i) && !v.is_finite());
                values[start + i * p + j] = v;
            }
        }
        for (j, out) in cats.iter_mut().enumerate() {
            let c = cast(batch.column(1 + p + j), &DataType::Utf8).map_err(|e| q(e.into()))?;
            let c = c.as_string::<i32>();
            out.extend((0..n).map(|i| c.is_valid(i).then(|| c.value(i).to_string())));
        }
        id_chunks.push(batch.column(0).clone());
    }
    let n = id_chunks.iter().map(|c| c.len()).sum::<usize>();
    if n == 0 {
        return Err(FeatureError::Empty { view: view.to_string() });
    }
    if let Some(j) = non_finite.iter().position(|&c| c > 0) {
        return Err(FeatureError::NonFinite {
            view: view.to_string(),
            column: numeric[j].clone(),
            count: non_finite[j],
        });
    }
    let x = Array2::from_shape_vec((n, p), values).expect("n * p values");
    let refs: Vec<&dyn Array> = id_chunks.iter().map(|a| a.as_ref()).collect();
    let ids = concat(&refs).map_err(|e| q(e.into()))?;
    check_ids(view, id, &ids)?;
    Ok(FeatureFrame {
        ids,
        names: numeric.to_vec(),
        x,
        nulls,
        categorical_names: categorical.to_vec(),
        categorical: cats,
    })
}

/// Ids are sorted, so duplicates are neighbours; nulls are refused too.
fn check_ids(view: &str, id: &str, ids: &ArrayRef) -> Result<(), FeatureError> {
    if ids.null_count() > 0 {
        return Err(FeatureError::Nulls {
            view: view.to_string(),
            column: id.to_string(),
            count: ids.null_count(),
        });
    }
    let s = cast(ids, &DataType::Utf8).map_err(|e| FeatureError::Query {
        view: view.to_string(),
        source: e.into(),
    })?;
    let s = s.as_string::<i32>();
    for i in 1..s.len() {
        if s.value(i) == s.value(i - 1) {
            return Err(FeatureError::DuplicateId {
                view: view.to_string(),
                id: s.value(i).to_string(),
            });
        }
    }
    Ok(())
}
