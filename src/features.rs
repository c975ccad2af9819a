//! Features: per-customer view rows → a dense `f64` matrix, and scaling.
//!
//! [`load_matrix`] streams the id and feature columns out of DataFusion, sorted by id, so the
//! row order (and hence every seeded model result) does not depend on partitioning or thread
//! count. [`Scaler`] is pure: fit on a matrix, then transform.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::{cast, concat};
use datafusion::arrow::datatypes::{DataType, Float64Type, SchemaRef};
use datafusion::execution::context::SessionContext;
// `ident` takes column names from the job verbatim, without SQL case folding.
use datafusion::logical_expr::ident;
use futures::StreamExt;
use ndarray::{Array1, Array2, Axis};

use crate::error::one_line;
use crate::job::Scale;

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

/// Checks that `id` and `features` exist in `schema` and that features are numeric.
pub fn check_columns(view: &str, schema: &SchemaRef, id: &str, features: &[String]) -> Result<(), FeatureError> {
    let available = || schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ");
    for name in std::iter::once(id).chain(features.iter().map(String::as_str)) {
        let field = schema.field_with_name(name).map_err(|_| FeatureError::MissingColumn {
            view: view.to_string(),
            column: name.to_string(),
            available: available(),
        })?;
        if name != id && !(field.data_type().is_numeric() || field.data_type() == &DataType::Boolean) {
            return Err(FeatureError::NotNumeric {
                view: view.to_string(),
                column: name.to_string(),
                data_type: field.data_type().clone(),
            });
        }
    }
    Ok(())
}

/// Streams `id` and `features` of `view`, sorted by id, into a matrix.
pub async fn load_matrix(
    ctx: &SessionContext,
    view: &str,
    id: &str,
    features: &[String],
) -> Result<FeatureMatrix, FeatureError> {
    let q = |source| FeatureError::Query {
        view: view.to_string(),
        source,
    };
    let mut exprs = vec![ident(id)];
    exprs.extend(features.iter().map(|f| ident(f)));
    let df = ctx
        .table(view)
        .await
        .and_then(|df| df.select(exprs))
        .and_then(|df| df.sort(vec![ident(id).sort(true, true)]))
        .map_err(q)?;
    let mut stream = df.execute_stream().await.map_err(q)?;

    let p = features.len();
    let mut values: Vec<f64> = Vec::new();
    let mut id_chunks: Vec<ArrayRef> = Vec::new();
    let mut nulls = vec![0usize; p];
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(q)?;
        let n = batch.num_rows();
        let cols: Vec<ArrayRef> = (0..p)
            .map(|j| cast(batch.column(j + 1), &DataType::Float64))
            .collect::<Result<_, _>>()
            .map_err(|e| q(e.into()))?;
        let start = values.len();
        values.resize(start + n * p, 0.0);
        for (j, c) in cols.iter().enumerate() {
            nulls[j] += c.null_count();
            let c = c.as_primitive::<Float64Type>();
            for i in 0..n {
                values[start + i * p + j] = c.value(i);
            }
        }
        id_chunks.push(batch.column(0).clone());
    }
    let n = values.len() / p.max(1);
    if n == 0 {
        return Err(FeatureError::Empty { view: view.to_string() });
    }
    if let Some(j) = nulls.iter().position(|&c| c > 0) {
        return Err(FeatureError::Nulls {
            view: view.to_string(),
            column: features[j].clone(),
            count: nulls[j],
        });
    }
    let x = Array2::from_shape_vec((n, p), values).expect("n * p values");
    for (j, c) in x.axis_iter(Axis(1)).enumerate() {
        let bad = c.iter().filter(|v| !v.is_finite()).count();
        if bad > 0 {
            return Err(FeatureError::NonFinite {
                view: view.to_string(),
                column: features[j].clone(),
                count: bad,
            });
        }
    }
    let refs: Vec<&dyn Array> = id_chunks.iter().map(|a| a.as_ref()).collect();
    let ids = concat(&refs).map_err(|e| q(e.into()))?;
    check_ids(view, id, &ids)?;
    Ok(FeatureMatrix {
        ids,
        names: features.to_vec(),
        x,
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

/// Per-column affine scaling `(x - center) / scale`, fitted on the training matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Scaler {
    pub kind: Scale,
    pub center: Array1<f64>,
    pub scale: Array1<f64>,
}

impl Scaler {
    /// z-score uses the population standard deviation (ddof = 0), as scikit-learn's
    /// `StandardScaler`; min-max maps to [0, 1]. A constant column gets scale 1 so it maps to
    /// a constant instead of NaN (scikit-learn does the same).
    pub fn fit(kind: Scale, x: &Array2<f64>) -> Scaler {
        let p = x.ncols();
        let (center, scale) = match kind {
            Scale::None => (Array1::zeros(p), Array1::ones(p)),
            Scale::ZScore => {
                let mean = x.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(p));
                let std = x.std_axis(Axis(0), 0.0);
                (mean, std.mapv(nonzero))
            }
            Scale::MinMax => {
                let min = x.fold_axis(Axis(0), f64::INFINITY, |a, &b| a.min(b));
                let max = x.fold_axis(Axis(0), f64::NEG_INFINITY, |a, &b| a.max(b));
                let range = (&max - &min).mapv(nonzero);
                (min, range)
            }
        };
        Scaler { kind, center, scale }
    }

    pub fn transform(&self, x: &Array2<f64>) -> Array2<f64> {
        (x - &self.center) / &self.scale
    }

    pub fn inverse(&self, z: &Array2<f64>) -> Array2<f64> {
        z * &self.scale + &self.center
    }
}

fn nonzero(s: f64) -> f64 {
    if s > 0.0 && s.is_finite() { s } else { 1.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn zscore_matches_population_std() {
        let x = array![[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]];
        let s = Scaler::fit(Scale::ZScore, &x);
        let z = s.transform(&x);
        let sd = (8.0f64 / 3.0).sqrt();
        assert!((z[[0, 0]] + 2.0 / sd).abs() < 1e-12);
        // A constant column maps to zero, not NaN.
        assert_eq!(z.column(1).to_vec(), vec![0.0, 0.0, 0.0]);
        assert!((s.inverse(&z) - &x).iter().all(|d| d.abs() < 1e-12));
    }

    #[test]
    fn minmax_maps_to_unit_interval() {
        let x = array![[2.0], [4.0], [6.0]];
        let z = Scaler::fit(Scale::MinMax, &x).transform(&x);
        assert_eq!(z.column(0).to_vec(), vec![0.0, 0.5, 1.0]);
    }
}
