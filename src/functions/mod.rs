//! Fitted models as SQL functions: the CLV closed forms and nearest-centroid assignment as
//! DataFusion scalar functions, so the engine (and on Ballista, its executors) applies a model
//! to every customer while the driver holds only the parameters, the way BigQuery ML's
//! `ML.PREDICT` puts a model inside SQL.
//!
//! Every session segvalue opens registers them (embedded, the Ballista client, scheduler and
//! executors), so data engineers can call them in their own views too (README "SQL
//! functions"). Each takes the model's parameters as its first arguments (literals, or columns
//! of a joined parameter table) and the customer's values after them. A NULL parameter is an
//! error; a NULL customer value gives NULL. The arithmetic is the driver's own
//! (`clv::BgNbdParams`, `clv::GammaGammaParams`, `segment::KMeansModel`), so the two agree to the
//! bit.

mod args;
mod clv;
mod math;
mod segment;

pub use clv::{CUSTOMER_INTERVAL, CUSTOMER_VALUES};

use std::sync::Arc;

use ballista_core::registry::BallistaFunctionRegistry;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::ScalarUDF;

/// Every model function, as registered in each session.
pub fn all() -> Vec<Arc<ScalarUDF>> {
    let mut out: Vec<Arc<ScalarUDF>> = clv::functions().into_iter().map(Arc::new).collect();
    out.extend(segment::functions().into_iter().map(Arc::new));
    out.extend(math::functions().into_iter().map(Arc::new));
    out
}

/// A session builder with every model function beside DataFusion's own (call it after
/// `with_default_features`, which would replace them).
pub fn with_functions(mut builder: SessionStateBuilder) -> SessionStateBuilder {
    builder.scalar_functions().get_or_insert_default().extend(all());
    builder
}

/// Registers every model function in a built session (Ballista's `upgrade_for_ballista`
/// replaces a builder's functions with its own list, so the client registers them after).
pub fn register(ctx: &SessionContext) {
    for f in all() {
        ctx.register_udf(f.as_ref().clone());
    }
}

/// Ballista's executor registry (DataFusion's functions) plus the model functions, so
/// executors can run the plans that call them.
pub fn executor_registry() -> BallistaFunctionRegistry {
    let mut registry = BallistaFunctionRegistry::default();
    registry.scalar_functions.extend(all().into_iter().map(|f| (f.name().to_string(), f)));
    registry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_two_functions_share_a_name() {
        let mut names: Vec<String> = all().iter().map(|f| f.name().to_string()).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n, "{names:?}");
    }
}
