//! Nearest-centroid assignment as SQL functions, for K-means models:
//!
//! | function | value |
//! |---|---|
//! | `nearest_centroid(centroids, x1, …, xp)` | the 0-based position in `centroids` of the nearest one (INT) |
//! | `centroid_distance(centroids, x1, …, xp)` | the Euclidean distance to it (DOUBLE) |
//!
//! `centroids` is a constant list of k lists of p numbers, e.g. `[[0.1, -1.2], [1.5, 0.3]]`,
//! in the space the `x` values are in (for segvalue's own models, the prepared space of
//! `segmentation_prep`). Ties go to the first centroid. Rows are assigned a batch at a time by
//! the K-means kernel the fit uses (`segment::KMeansModel::assign`).

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Float64Array, Int32Array};
use datafusion::arrow::datatypes::{DataType, Field, Float64Type};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use ndarray::{Array2, ShapeBuilder};

use super::args::{float_arrays, numeric};
use crate::segment::KMeansModel;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Nearest,
    Distance,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct CentroidFunction {
    kind: Kind,
    signature: Signature,
}

pub fn functions() -> Vec<ScalarUDF> {
    [Kind::Nearest, Kind::Distance]
        .into_iter()
        .map(|kind| ScalarUDF::new_from_impl(CentroidFunction { kind, signature: Signature::user_defined(Volatility::Immutable) }))
        .collect()
}

fn list_of_lists() -> DataType {
    let inner = DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true)));
    DataType::List(Arc::new(Field::new_list_field(inner, true)))
}

impl ScalarUDFImpl for CentroidFunction {
    fn name(&self) -> &str {
        match self.kind {
            Kind::Nearest => "nearest_centroid",
            Kind::Distance => "centroid_distance",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let name = self.name();
        let Some((first, xs)) = arg_types.split_first().filter(|(_, xs)| !xs.is_empty()) else {
            return plan_err!("{name}(centroids, x1, ..., xp) takes the centroids and at least one value, got {} argument(s)", arg_types.len());
        };
        let nested = match first {
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                matches!(f.data_type(), DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..))
            }
            _ => false,
        };
        if !nested {
            return plan_err!("{name}: argument 'centroids' must be a list of lists of numbers such as [[0.1, 1.2], [1.5, 0.3]], got {first}");
        }
        let names: Vec<String> = (1..=xs.len()).map(|i| format!("x{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut out = vec![list_of_lists()];
        out.extend(numeric(name, &names, xs)?);
        Ok(out)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            Kind::Nearest => DataType::Int32,
            Kind::Distance => DataType::Float64,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.name();
        let rows = args.number_rows;
        tracing::debug!(function = name, rows, "model function evaluated");
        let centroids = centroids(name, &args.args[0], args.args.len() - 1)?;
        let xs = float_arrays(&args.args[1..], rows)?;
        // Column-major, as the prepared matrix the fit assigns; NULL rows get NULL.
        let present: Vec<bool> = (0..rows).map(|i| xs.iter().all(|c| c.is_valid(i))).collect();
        let mut z = Array2::<f64>::zeros((rows, xs.len()).f());
        for (mut col, x) in z.columns_mut().into_iter().zip(&xs) {
            col.iter_mut().zip(x.values().iter()).for_each(|(z, &v)| *z = v);
        }
        let model = KMeansModel { centroids, inertia: 0.0, n_iter: 0, relocated: 0 };
        let (labels, d2) = model.assign(z.view());
        let out: Arc<dyn Array> = match self.kind {
            Kind::Nearest => Arc::new((0..rows).map(|i| present[i].then(|| labels[i] as i32)).collect::<Int32Array>()),
            Kind::Distance => Arc::new((0..rows).map(|i| present[i].then(|| d2[i].sqrt())).collect::<Float64Array>()),
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// The `(k, p)` centroids from a constant list of lists.
fn centroids(name: &str, arg: &ColumnarValue, p: usize) -> Result<Array2<f64>> {
    let err = |m: String| DataFusionError::Execution(format!("{name}: {m}"));
    let ColumnarValue::Scalar(ScalarValue::List(list)) = arg else {
        return Err(err("argument 'centroids' must be a constant list, not a column".into()));
    };
    if list.is_null(0) {
        return Err(err("argument 'centroids' is NULL".into()));
    }
    let rows = list.value(0);
    let rows = rows.as_list::<i32>();
    if rows.is_empty() {
        return Err(err("argument 'centroids' has no centroid".into()));
    }
    let mut c = Array2::<f64>::zeros((rows.len(), p));
    for k in 0..rows.len() {
        if rows.is_null(k) {
            return Err(err(format!("centroid {k} is NULL")));
        }
        let v = rows.value(k);
        let Some(v) = v.as_primitive_opt::<Float64Type>() else {
            return Err(err(format!("centroid {k} is not a list of numbers")));
        };
        if v.len() != p || v.null_count() > 0 {
            return Err(err(format!("centroid {k} has {} number(s) but {p} value(s) are given (and none may be NULL)", v.len())));
        }
        c.row_mut(k).iter_mut().zip(v.values().iter()).for_each(|(c, &x)| *c = x);
    }
    Ok(c)
}
