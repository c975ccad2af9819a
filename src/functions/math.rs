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

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Float64Type;
    use datafusion::prelude::SessionContext;

    async fn ctx() -> SessionContext {
        let ctx = SessionContext::new();
        for f in super::functions() {
            ctx.register_udf(f);
        }
        ctx
    }

    #[tokio::test]
    async fn log1p_is_rust_s_ln_1p_and_null_stays_null() {
        let b = ctx().await.sql("SELECT log1p(1e-10) AS a, log1p(3) AS b, log1p(CAST(NULL AS DOUBLE)) AS c").await.unwrap().collect().await.unwrap();
        let v = |i: usize| b[0].column(i).as_primitive::<Float64Type>().clone();
        assert_eq!(v(0).value(0).to_bits(), 1e-10f64.ln_1p().to_bits());
        assert_ne!(v(0).value(0).to_bits(), (1.0f64 + 1e-10).ln().to_bits(), "ln(1 + x) would do");
        assert_eq!(v(1).value(0).to_bits(), 3f64.ln_1p().to_bits());
        assert!(v(2).is_null(0));
    }

    #[tokio::test]
    async fn log1p_of_text_fails_planning_naming_the_argument() {
        let err = ctx().await.sql("SELECT log1p('a')").await.unwrap_err().to_string();
        assert!(err.contains("log1p: argument 'x' must be a number"), "{err}");
    }
}
