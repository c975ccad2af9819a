//! `log1p(x)`: ln(1 + x), accurate near 0 (Rust's `f64::ln_1p`, as Spark's `log1p`). DataFusion
//! has `ln` but not `log1p`, and `ln(1 + x)` differs in the last bits: the segmentation's
//! `transform = "log1p"` in a plan must give the bits the driver's preparation gives.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

use super::args::{coerce_numeric, float_arrays, map_rows};

#[derive(Debug, PartialEq, Eq, Hash)]
struct Log1p {
    signature: Signature,
}

pub fn functions() -> Vec<ScalarUDF> {
    vec![ScalarUDF::new_from_impl(Log1p { signature: Signature::user_defined(Volatility::Immutable) })]
}

impl ScalarUDFImpl for Log1p {
    fn name(&self) -> &str {
        "log1p"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_numeric("log1p", &["x"], arg_types)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let x = float_arrays(&args.args, args.number_rows)?;
        let out = map_rows(args.number_rows, &x, |i| x[0].value(i).ln_1p());
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}
