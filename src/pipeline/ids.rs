//! Customer ids as the stages pass them around: one Utf8 array, and an id → row index for
//! joining one stage's customers to another's.

use std::collections::HashMap;

use datafusion::arrow::array::StringArray;

use crate::error::Error;

/// Customer ids as one Utf8 array: no allocation per customer.
pub(super) fn id_array(ids: &datafusion::arrow::array::ArrayRef) -> Result<StringArray, Error> {
    use datafusion::arrow::array::AsArray;
    let s = datafusion::arrow::compute::cast(ids, &datafusion::arrow::datatypes::DataType::Utf8)
        .map_err(|e| Error::query("customer ids", e.into()))?;
    Ok(s.as_string::<i32>().clone())
}

/// Position of each id in `ids`.
pub(super) fn id_index(ids: &StringArray) -> HashMap<&str, usize> {
    ids.iter().enumerate().map(|(i, id)| (id.unwrap_or_default(), i)).collect()
}
