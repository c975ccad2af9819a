//! Argument checks shared by the model functions: how many, numeric, and NULL parameters, each
//! refused with a message naming the function and the argument.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::ColumnarValue;

/// `name(a, b, c)` for messages.
pub fn usage(function: &str, names: &[&str]) -> String {
    format!("{function}({})", names.join(", "))
}

/// Every argument numeric, coerced to DOUBLE; `names.len()` of them.
pub fn coerce_numeric(function: &str, names: &[&str], types: &[DataType]) -> Result<Vec<DataType>> {
    if types.len() != names.len() {
        return plan_err!("{} takes {} arguments, got {}", usage(function, names), names.len(), types.len());
    }
    numeric(function, names, types)
}

/// Each of `types` numeric (or NULL), coerced to DOUBLE; `names` label them in messages.
pub fn numeric(function: &str, names: &[&str], types: &[DataType]) -> Result<Vec<DataType>> {
    types
        .iter()
        .zip(names)
        .map(|(t, name)| {
            if t.is_numeric() || t.is_null() {
                Ok(DataType::Float64)
            } else {
                plan_err!("{function}: argument '{name}' must be a number, got {t}")
            }
        })
        .collect()
}

/// The arguments as DOUBLE arrays of `rows` rows (scalars repeated).
pub fn float_arrays(args: &[ColumnarValue], rows: usize) -> Result<Vec<Float64Array>> {
    args.iter()
        .map(|a| {
            let array: ArrayRef = a.to_array(rows)?;
            let array = if array.data_type() == &DataType::Float64 { array } else { cast(&array, &DataType::Float64)? };
            Ok(array.as_primitive::<Float64Type>().clone())
        })
        .collect()
}

/// A model parameter: a literal, kept as one value (repeating it into an array per batch cost
/// a page of fresh memory per parameter and 8,192 rows), or a column of a joined table.
pub enum Param {
    Scalar(f64),
    Column(Float64Array),
}

impl Param {
    pub fn value(&self, row: usize) -> f64 {
        match self {
            Param::Scalar(v) => *v,
            Param::Column(c) => c.value(row),
        }
    }

    /// The rows holding distinct entries: 1 for a literal.
    pub fn rows(&self, rows: usize) -> usize {
        match self {
            Param::Scalar(_) => 1,
            Param::Column(_) => rows,
        }
    }
}

/// The first `names.len()` arguments as DOUBLE parameters. A NULL one in any row fails: a
/// missing parameter is a broken model, not a missing customer value.
pub fn parameters(function: &str, names: &[&str], args: &[ColumnarValue], rows: usize) -> Result<Vec<Param>> {
    let null = |name: &str| DataFusionError::Execution(format!("{function}: parameter '{name}' is NULL"));
    args.iter()
        .zip(names)
        .map(|(a, name)| match a {
            ColumnarValue::Scalar(s) => match s.cast_to(&DataType::Float64)? {
                ScalarValue::Float64(Some(v)) => Ok(Param::Scalar(v)),
                _ => Err(null(name)),
            },
            ColumnarValue::Array(_) => {
                let c = float_arrays(std::slice::from_ref(a), rows)?.remove(0);
                if c.null_count() > 0 { Err(null(name)) } else { Ok(Param::Column(c)) }
            }
        })
        .collect()
}

/// `f` of each row whose values are all present; NULL where any is NULL.
pub fn map_rows(rows: usize, columns: &[Float64Array], mut f: impl FnMut(usize) -> f64) -> Float64Array {
    (0..rows).map(|i| columns.iter().all(|c| c.is_valid(i)).then(|| f(i))).collect()
}
