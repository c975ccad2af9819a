//! Argument checks shared by the model functions: how many, numeric, and NULL parameters, each
//! refused with a message naming the function and the argument.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::{Result, plan_err};
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

/// Fails when a model parameter is NULL in any row: a missing parameter is a broken model, not
/// a missing customer value.
pub fn no_null_parameters(function: &str, names: &[&str], params: &[Float64Array]) -> Result<()> {
    for (p, name) in params.iter().zip(names) {
        if p.null_count() > 0 {
            return Err(DataFusionError::Execution(format!("{function}: parameter '{name}' is NULL")));
        }
    }
    Ok(())
}

/// `f` of each row whose values are all present; NULL where any is NULL.
pub fn map_rows(rows: usize, columns: &[Float64Array], mut f: impl FnMut(usize) -> f64) -> Float64Array {
    (0..rows).map(|i| columns.iter().all(|c| c.is_valid(i)).then(|| f(i))).collect()
}
