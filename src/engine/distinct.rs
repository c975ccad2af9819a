//! `MixedDistinctToJoin`: a logical optimizer rule for grouped queries that mix
//! `COUNT(DISTINCT x)` with ordinary aggregates (issue #10).
//!
//! DataFusion 55 evaluates such a query with one hash aggregate whose
//! `COUNT(DISTINCT x)` accumulator keeps a hash set *per group*; with millions of
//! groups that is ~10× slower than computing the distinct part as a plain
//! `GROUP BY (g, x)`. DataFusion's own `SingleDistinctToGroupBy` only fires when every
//! aggregate is the same single DISTINCT (or `sum`/`min`/`max` beside it), so
//! `COUNT(*)`, `AVG(..)` etc. beside a `COUNT(DISTINCT ..)` keep the slow path.
//!
//! The rule rewrites
//!
//! ```text
//! Aggregate: groupBy=[G], aggr=[N..., count(DISTINCT x)...]
//!   <input>
//! ```
//!
//! into
//!
//! ```text
//! Projection: <the original Aggregate's output schema, same names/qualifiers/order>
//!   Inner Join: G = __mdj_g*   (null_equality = NullEqualsNull)
//!     Aggregate: groupBy=[G], aggr=[N...]                      -- the original functions, unchanged
//!       <input>
//!     Aggregate: groupBy=[__mdj_g*], aggr=[count(__mdj_x) AS __mdj_cnt]
//!       Aggregate: groupBy=[G AS __mdj_g*, x AS __mdj_x], aggr=[]
//!         <input>
//! ```
//!
//! `COUNT(DISTINCT x)` per group equals `COUNT(x')` over the distinct `(g, x)` pairs:
//! NULL `x` rows form one `(g, NULL)` pair that `COUNT` skips, so a group whose `x` are
//! all NULL still appears (its keys come from that pair) and gets `0` — exactly what
//! DataFusion's distinct-count accumulator returns. Both sides group the same input
//! by the same keys, so they hold the same key set and the inner join (NULL keys
//! equal NULL keys) matches each group exactly once.
//!
//! # When it fires
//!
//! On an `Aggregate` node with all of:
//! * at least one GROUP BY expression and no GROUPING SETS / CUBE / ROLLUP;
//! * at least one non-distinct aggregate and at least one DISTINCT aggregate;
//! * every DISTINCT aggregate is `count` with exactly one argument, all with the same
//!   argument expression (several identical `COUNT(DISTINCT x)` are fine);
//! * no aggregate has a FILTER clause or an ORDER BY; no other function is DISTINCT;
//! * the group keys and `x` have plain scalar types: integers, decimals, strings,
//!   binaries, boolean, date/time/timestamp/duration. Floating-point keys or `x` are left
//!   alone: in DataFusion 55, GROUP BY (and an ungrouped `COUNT(DISTINCT)`) treat `-0.0`
//!   and `0.0` as one value, while a *grouped* `COUNT(DISTINCT)` counts them as two (a
//!   test of this rule caught the difference: 4 vs 5 distinct values), and a hash join
//!   compares float bits, so two separately chosen group representatives (`0.0` vs
//!   `-0.0`) could fail to match. Nested and dictionary types are left alone too;
//! * the group keys and `x` are not volatile, and the input is *repeatable*: the rewrite
//!   evaluates the input twice, so the input may only contain table scans, projections,
//!   filters, joins, unions, subquery aliases, values, unnest, repartition, sorts without
//!   a fetch, `DISTINCT`, aggregates and windows, with no volatile expression (e.g.
//!   `random()`), no `LIMIT`/fetch and no extension node; order-dependent aggregates
//!   (`first_value`, `last_value`, `nth_value`, `array_agg`, `string_agg`) and window
//!   functions must have an ORDER BY, `any_value` is refused. `SELECT DISTINCT ON (id) *
//!   ... ORDER BY id, ts` (planned as `first_value(.. ORDER BY ..)`) is accepted: if its
//!   ORDER BY has ties, the two evaluations may keep different rows for a tied id, just
//!   as two runs of the query without the rule may. The table providers themselves must
//!   return the same rows when scanned twice (true of Parquet/CSV listing tables and
//!   `MemTable`; not of a one-shot stream).
//!
//! Otherwise the plan is returned unchanged (`Transformed::no`).
//!
//! Cost note: the input is scanned (computed) twice. For a table scan that is cheap
//! compared with the per-group hash sets it avoids; for an expensive input (a large join,
//! or a `DISTINCT ON (order_id)` deduplication view) it doubles that part of the work,
//! which can cost more than it saves. [`MixedDistinctToJoin::scans_only`] restricts the
//! rule to inputs made of table scans under projections, filters and subquery aliases.
//!
//! # Registration and rule order
//!
//! Use [`register`] on a `SessionStateBuilder` (or [`with_rule`] on a built
//! `SessionState`). It inserts the rule into the builder's logical optimizer rule list
//! immediately **before** DataFusion's `single_distinct_aggregation_to_group_by`
//! (and so before `common_sub_expression_eliminate` and `optimize_projections`):
//! * before `SingleDistinctToGroupBy`, so queries that rule could also take
//!   (`COUNT(DISTINCT x)` beside only `sum`/`min`/`max`) get the same plan shape as the
//!   rest, and the rule sees the aggregate as the SQL planner produced it;
//! * after `push_down_filter`/`push_down_limit`, so the input it duplicates has already
//!   had WHERE predicates pushed into it;
//! * the optimizer then runs another pass over the rewritten plan (HAVING predicates on
//!   group keys get pushed into both sides, projections get pruned).
//!
//! `SessionStateBuilder::with_optimizer_rule` / `SessionContext::add_optimizer_rule`
//! *append* the rule after `optimize_projections`; that also works (the next optimizer
//! pass tidies up), but then `SingleDistinctToGroupBy` takes the `sum/min/max`-only
//! queries first.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, NullEquality, Result};
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::expr::{AggregateFunction, AggregateFunctionParams};
use datafusion::logical_expr::{
    Aggregate, AggregateUDF, Distinct, Expr, ExprSchemable, Join, JoinConstraint, JoinType,
    LogicalPlan, Projection, WindowFunctionDefinition,
};
use datafusion::optimizer::optimizer::{ApplyOrder, Optimizer};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

/// The rule's name, as shown by `EXPLAIN VERBOSE` and used by [`insert_rule`].
pub const RULE_NAME: &str = "mixed_distinct_to_join";

/// Name of DataFusion's rule this one is inserted in front of.
const SINGLE_DISTINCT_RULE: &str = "single_distinct_aggregation_to_group_by";

/// Prefix of the helper columns the rewrite introduces.
const PREFIX: &str = "__mdj_";

/// Aggregate functions whose result depends on the order rows arrive in unless they have
/// an ORDER BY; an input using them without one is not repeatable.
const ORDER_DEPENDENT_AGGREGATES: &[&str] = &[
    "first_value",
    "last_value",
    "nth_value",
    "array_agg",
    "string_agg",
];

/// Rewrites `GROUP BY` aggregates mixing `COUNT(DISTINCT x)` with other aggregates into a
/// join of two aggregates. See the module documentation.
#[derive(Debug, Default, Clone, Copy)]
pub struct MixedDistinctToJoin {
    scans_only: bool,
}

impl MixedDistinctToJoin {
    /// Fires on any repeatable input (see the module docs).
    pub fn new() -> Self {
        Self { scans_only: false }
    }

    /// Fires only when the input is cheap to evaluate twice: table scans under
    /// projections, filters and subquery aliases (no join, aggregate, window, sort,
    /// union, ...). Use it if an input such as a `DISTINCT ON` deduplication view costs
    /// more to compute a second time than the per-group distinct sets it saves.
    pub fn scans_only() -> Self {
        Self { scans_only: true }
    }
}

impl OptimizerRule for MixedDistinctToJoin {
    fn name(&self) -> &str {
        RULE_NAME
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        // Inputs first: an inner aggregate that qualifies is rewritten before its parent
        // duplicates it.
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Aggregate(agg) = &plan else {
            return Ok(Transformed::no(plan));
        };
        match rewrite_aggregate(agg, self.scans_only) {
            Some(new_plan) => Ok(Transformed::yes(new_plan)),
            None => Ok(Transformed::no(plan)),
        }
    }
}

/// Inserts [`MixedDistinctToJoin::new`] into `builder`'s logical optimizer rules (starting
/// from the builder's optimizer if one was set, else DataFusion's default rules) just
/// before `SingleDistinctToGroupBy`. Rules added with `with_optimizer_rule` are kept (they
/// are still appended at `build()`).
pub fn register(builder: SessionStateBuilder) -> SessionStateBuilder {
    register_rule(builder, MixedDistinctToJoin::new())
}

/// [`register`] with a given configuration of the rule (e.g.
/// [`MixedDistinctToJoin::scans_only`]).
pub fn register_rule(
    mut builder: SessionStateBuilder,
    rule: MixedDistinctToJoin,
) -> SessionStateBuilder {
    let mut rules = match builder.optimizer().take() {
        Some(optimizer) => optimizer.rules,
        None => Optimizer::new().rules,
    };
    insert_rule(&mut rules, rule);
    builder.with_optimizer_rules(rules)
}

/// [`register`] for an already built state.
pub fn with_rule(state: SessionState) -> SessionState {
    register(SessionStateBuilder::new_from_existing(state)).build()
}

/// Inserts `rule` into a rule list: before `SingleDistinctToGroupBy`, else before
/// `CommonSubexprEliminate`, else at the end. Does nothing if a rule of this name is
/// already there.
pub fn insert_rule(
    rules: &mut Vec<Arc<dyn OptimizerRule + Send + Sync>>,
    rule: MixedDistinctToJoin,
) {
    if rules.iter().any(|r| r.name() == RULE_NAME) {
        return;
    }
    let at = rules
        .iter()
        .position(|r| r.name() == SINGLE_DISTINCT_RULE)
        .or_else(|| {
            rules
                .iter()
                .position(|r| r.name() == "common_sub_expression_eliminate")
        })
        .unwrap_or(rules.len());
    rules.insert(at, Arc::new(rule));
}

/// What the analysis found: for each aggregate expression whether it is the
/// `COUNT(DISTINCT x)`, the shared argument `x`, and the `count` function to reuse.
struct Shape {
    is_distinct: Vec<bool>,
    x: Expr,
    count: Arc<AggregateUDF>,
}

fn analyze(agg: &Aggregate, scans_only: bool) -> Option<Shape> {
    if agg.group_expr.is_empty()
        || agg
            .group_expr
            .iter()
            .any(|e| matches!(e, Expr::GroupingSet(_)))
    {
        return None;
    }
    let mut is_distinct = Vec::with_capacity(agg.aggr_expr.len());
    let mut x: Option<&Expr> = None;
    let mut count: Option<&Arc<AggregateUDF>> = None;
    for e in &agg.aggr_expr {
        let inner = match e {
            Expr::Alias(alias) => alias.expr.as_ref(),
            other => other,
        };
        let Expr::AggregateFunction(AggregateFunction {
            func,
            params:
                AggregateFunctionParams {
                    args,
                    distinct,
                    filter,
                    order_by,
                    null_treatment,
                },
        }) = inner
        else {
            return None;
        };
        if filter.is_some() || !order_by.is_empty() {
            return None;
        }
        if !*distinct {
            is_distinct.push(false);
            continue;
        }
        if func.name() != "count" || args.len() != 1 || null_treatment.is_some() {
            return None;
        }
        match x {
            None => x = Some(&args[0]),
            Some(prev) if *prev == args[0] => {}
            Some(_) => return None,
        }
        count.get_or_insert(func);
        is_distinct.push(true);
    }
    let (x, count) = (x?, count?);
    if !is_distinct.iter().any(|d| !*d) {
        return None; // only DISTINCT aggregates: SingleDistinctToGroupBy's case
    }
    // Keys must be plain scalars on which GROUP BY, COUNT(DISTINCT) and the hash join
    // agree about equality (not floats: see the module docs).
    let group_types_ok =
        (0..agg.group_expr.len()).all(|i| is_plain_key_type(agg.schema.field(i).data_type()));
    let x_type_ok = x
        .get_type(agg.input.schema())
        .is_ok_and(|t| is_plain_key_type(&t));
    if !group_types_ok || !x_type_ok {
        return None;
    }
    if x.is_volatile() || agg.group_expr.iter().any(Expr::is_volatile) {
        return None;
    }
    // Our helper names must not collide with the aggregate's own output names.
    if agg
        .schema
        .fields()
        .iter()
        .any(|f| f.name().starts_with(PREFIX))
    {
        return None;
    }
    if !is_repeatable(&agg.input, scans_only) {
        return None;
    }
    Some(Shape {
        is_distinct,
        x: x.clone(),
        count: Arc::clone(count),
    })
}

fn is_plain_key_type(t: &DataType) -> bool {
    use DataType::*;
    matches!(
        t,
        Boolean
            | Int8
            | Int16
            | Int32
            | Int64
            | UInt8
            | UInt16
            | UInt32
            | UInt64
            | Decimal32(..)
            | Decimal64(..)
            | Decimal128(..)
            | Decimal256(..)
            | Utf8
            | LargeUtf8
            | Utf8View
            | Binary
            | LargeBinary
            | BinaryView
            | FixedSizeBinary(_)
            | Date32
            | Date64
            | Time32(_)
            | Time64(_)
            | Timestamp(..)
            | Duration(_)
    )
}

/// Whether evaluating `plan` twice yields the same rows (see the module docs); with
/// `scans_only`, also whether it is just scans under projections/filters/aliases.
fn is_repeatable(plan: &LogicalPlan, scans_only: bool) -> bool {
    let mut ok = true;
    let visit = plan.apply_with_subqueries(|node| {
        let node_ok = match node {
            LogicalPlan::Projection(_) | LogicalPlan::Filter(_) | LogicalPlan::SubqueryAlias(_) => {
                true
            }
            LogicalPlan::TableScan(scan) => scan.fetch.is_none(),
            _ if scans_only => false,
            LogicalPlan::Join(_)
            | LogicalPlan::Union(_)
            | LogicalPlan::Subquery(_)
            | LogicalPlan::EmptyRelation(_)
            | LogicalPlan::Values(_)
            | LogicalPlan::Unnest(_)
            | LogicalPlan::Repartition(_)
            | LogicalPlan::Distinct(Distinct::All(_)) => true,
            LogicalPlan::Sort(sort) => sort.fetch.is_none(),
            LogicalPlan::Aggregate(a) => a.aggr_expr.iter().all(is_order_free),
            LogicalPlan::Window(w) => w.window_expr.iter().all(is_order_free),
            _ => false,
        };
        if !node_ok {
            ok = false;
            return Ok(TreeNodeRecursion::Stop);
        }
        node.apply_expressions(|e| {
            if e.is_volatile() {
                ok = false;
                Ok(TreeNodeRecursion::Stop)
            } else {
                Ok(TreeNodeRecursion::Continue)
            }
        })
    });
    visit.is_ok() && ok
}

/// Whether `e` contains no function whose result depends on the order rows arrive in:
/// order-dependent aggregates (`first_value`, `array_agg`, ...) and window functions
/// need an ORDER BY (deterministic up to ties, as the query is without the rule anyway);
/// `any_value` is never accepted.
fn is_order_free(e: &Expr) -> bool {
    let mut free = true;
    let _ = e.apply(|e| {
        let ok = match e {
            Expr::AggregateFunction(f) => {
                let name = f.func.name();
                name != "any_value"
                    && (!ORDER_DEPENDENT_AGGREGATES.contains(&name) || !f.params.order_by.is_empty())
            }
            Expr::WindowFunction(w) => {
                !w.params.order_by.is_empty()
                    || matches!(&w.fun, WindowFunctionDefinition::AggregateUDF(f)
                        if f.name() != "any_value" && !ORDER_DEPENDENT_AGGREGATES.contains(&f.name()))
            }
            _ => true,
        };
        if ok {
            Ok(TreeNodeRecursion::Continue)
        } else {
            free = false;
            Ok(TreeNodeRecursion::Stop)
        }
    });
    free
}

/// Builds the rewritten plan, or `None` if the aggregate does not qualify (or, defensively,
/// if building fails or the result's schema would differ from the original's).
fn rewrite_aggregate(agg: &Aggregate, scans_only: bool) -> Option<LogicalPlan> {
    let shape = analyze(agg, scans_only)?;
    build(agg, shape).ok().flatten()
}

fn build(agg: &Aggregate, shape: Shape) -> Result<Option<LogicalPlan>> {
    let Shape {
        is_distinct,
        x,
        count,
    } = shape;
    let n_group = agg.group_expr.len();
    let g_alias = |i: usize| format!("{PREFIX}g{i}");
    let x_alias = format!("{PREFIX}x");
    let cnt_alias = format!("{PREFIX}cnt");

    // A1: the original group keys and the original non-distinct aggregates, untouched.
    let plain: Vec<Expr> = agg
        .aggr_expr
        .iter()
        .zip(&is_distinct)
        .filter(|(_, d)| !**d)
        .map(|(e, _)| e.clone())
        .collect();
    let a1 = LogicalPlan::Aggregate(Aggregate::try_new(
        Arc::clone(&agg.input),
        agg.group_expr.clone(),
        plain,
    )?);

    // A2: distinct (G, x) pairs, then COUNT(x) per G.
    let mut pair_keys: Vec<Expr> = agg
        .group_expr
        .iter()
        .enumerate()
        .map(|(i, g)| g.clone().unalias().alias(g_alias(i)))
        .collect();
    pair_keys.push(x.unalias().alias(&x_alias));
    let pairs = LogicalPlan::Aggregate(Aggregate::try_new(
        Arc::clone(&agg.input),
        pair_keys,
        vec![],
    )?);
    let outer_keys: Vec<Expr> = (0..n_group)
        .map(|i| Expr::Column(Column::from_name(g_alias(i))))
        .collect();
    let counted = Expr::AggregateFunction(AggregateFunction::new_udf(
        count,
        vec![Expr::Column(Column::from_name(&x_alias))],
        false,
        None,
        vec![],
        None,
    ))
    .alias(&cnt_alias);
    let a2 = LogicalPlan::Aggregate(Aggregate::try_new(
        Arc::new(pairs),
        outer_keys,
        vec![counted],
    )?);

    // A1 ⋈ A2 on every group key, NULL = NULL.
    let on: Vec<(Expr, Expr)> = (0..n_group)
        .map(|i| {
            let (qualifier, field) = agg.schema.qualified_field(i);
            (
                Expr::Column(Column::new(qualifier.cloned(), field.name())),
                Expr::Column(Column::from_name(g_alias(i))),
            )
        })
        .collect();
    let join = LogicalPlan::Join(Join::try_new(
        Arc::new(a1),
        Arc::new(a2),
        on,
        None,
        JoinType::Inner,
        JoinConstraint::On,
        NullEquality::NullEqualsNull,
        false,
    )?);

    // Back to the original schema: same qualifiers, names and order.
    let exprs: Vec<Expr> = agg
        .schema
        .iter()
        .enumerate()
        .map(|(k, (qualifier, field))| {
            if k >= n_group && is_distinct[k - n_group] {
                Expr::Column(Column::from_name(&cnt_alias))
                    .alias_qualified(qualifier.cloned(), field.name())
            } else {
                Expr::Column(Column::new(qualifier.cloned(), field.name()))
            }
        })
        .collect();
    let projection = Projection::try_new(exprs, Arc::new(join))?;

    let compatible = projection.schema.fields().len() == agg.schema.fields().len()
        && projection
            .schema
            .iter()
            .zip(agg.schema.iter())
            .all(|((q1, f1), (q2, f2))| {
                q1 == q2
                    && f1.name() == f2.name()
                    && f1.data_type() == f2.data_type()
                    && (!f1.is_nullable() || f2.is_nullable())
            });
    if !compatible {
        return Ok(None);
    }
    // Keep the original schema object (metadata, functional dependencies) for parents.
    let Projection { expr, input, .. } = projection;
    Ok(Some(LogicalPlan::Projection(
        Projection::try_new_with_schema(expr, input, Arc::clone(&agg.schema))?,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    use datafusion::arrow::array::{
        Array, ArrayRef, Decimal128Array, Float64Array, Int32Array, Int64Array, RecordBatch,
        StringArray, TimestampMicrosecondArray,
    };
    use datafusion::arrow::datatypes::{Field, Schema, TimeUnit};
    use datafusion::arrow::util::display::array_value_to_string;
    use datafusion::datasource::MemTable;
    use datafusion::functions_aggregate::expr_fn::{avg, count, count_distinct, max, sum};
    use datafusion::logical_expr::{col, lit};
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    // ---------------------------------------------------------------- data

    const ROWS: usize = 50_000;
    const DUPLICATES: usize = 5_000;
    const CUSTOMERS: i64 = 3_000;

    fn orders_schema() -> Arc<Schema> {
        Arc::new(Schema::new(vec![
            Field::new("customer_id", DataType::Int64, true),
            Field::new("region", DataType::Utf8, true),
            Field::new(
                "order_ts",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                true,
            ),
            Field::new("amount_f", DataType::Float64, true),
            Field::new("amount_d", DataType::Decimal128(18, 2), true),
            Field::new("x", DataType::Int32, true),
            Field::new("fk", DataType::Float64, true),
            Field::new("fx", DataType::Float64, true),
        ]))
    }

    /// 50k random orders + 5k exact duplicate rows. NULL customer ids and regions,
    /// NULL x (and every x NULL for customers with id % 50 == 0), NULL timestamps (all
    /// NULL for id % 97 == 0), float keys with NaN, -0.0, 0.0 and NULL.
    fn orders_batch() -> RecordBatch {
        let mut rng = StdRng::seed_from_u64(10);
        let base_us: i64 = 1_672_531_200_000_000; // 2023-01-01
        let two_years_us: i64 = 2 * 365 * 86_400 * 1_000_000;
        let regions = [
            None,
            Some("north"),
            Some("south"),
            Some("east"),
            Some("west"),
            Some(""),
        ];
        let floats = [
            Some(0.0),
            Some(-0.0),
            Some(1.5),
            Some(f64::NAN),
            None,
            Some(2.5),
        ];
        let mut cust = Vec::new();
        let mut region = Vec::new();
        let mut ts = Vec::new();
        let mut amount_f = Vec::new();
        let mut amount_d = Vec::new();
        let mut x = Vec::new();
        let mut fk = Vec::new();
        let mut fx = Vec::new();
        for _ in 0..ROWS {
            let c = if rng.gen_bool(0.02) {
                None
            } else {
                Some(rng.gen_range(0..CUSTOMERS))
            };
            cust.push(c);
            region.push(regions[rng.gen_range(0..regions.len())]);
            let no_ts = c.is_some_and(|c| c % 97 == 0) || rng.gen_bool(0.02);
            ts.push((!no_ts).then(|| base_us + rng.gen_range(0..two_years_us)));
            let cents: i64 = rng.gen_range(-500..100_000);
            amount_f.push((!rng.gen_bool(0.02)).then(|| cents as f64 / 100.0));
            amount_d.push((!rng.gen_bool(0.02)).then_some(cents as i128));
            let no_x = c.is_some_and(|c| c % 50 == 0) || rng.gen_bool(0.05);
            x.push((!no_x).then(|| rng.gen_range(0..20)));
            fk.push(floats[rng.gen_range(0..5)]);
            fx.push(floats[rng.gen_range(0..6)]);
        }
        for _ in 0..DUPLICATES {
            let j = rng.gen_range(0..ROWS);
            cust.push(cust[j]);
            region.push(region[j]);
            ts.push(ts[j]);
            amount_f.push(amount_f[j]);
            amount_d.push(amount_d[j]);
            x.push(x[j]);
            fk.push(fk[j]);
            fx.push(fx[j]);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(cust)),
            Arc::new(StringArray::from(region)),
            Arc::new(TimestampMicrosecondArray::from(ts)),
            Arc::new(Float64Array::from(amount_f)),
            Arc::new(
                Decimal128Array::from(amount_d)
                    .with_precision_and_scale(18, 2)
                    .unwrap(),
            ),
            Arc::new(Int32Array::from(x)),
            Arc::new(Float64Array::from(fk)),
            Arc::new(Float64Array::from(fx)),
        ];
        RecordBatch::try_new(orders_schema(), columns).unwrap()
    }

    /// Splits a batch into `parts` partitions of several small batches each.
    fn mem_table(batch: &RecordBatch, parts: usize, chunk: usize) -> Arc<MemTable> {
        let mut partitions = vec![Vec::new(); parts];
        let mut off = 0;
        let mut i = 0;
        while off < batch.num_rows() {
            let len = chunk.min(batch.num_rows() - off);
            partitions[i % parts].push(batch.slice(off, len));
            off += len;
            i += 1;
        }
        Arc::new(MemTable::try_new(batch.schema(), partitions).unwrap())
    }

    fn customers_batch() -> RecordBatch {
        let ids: Vec<i64> = (0..CUSTOMERS).collect();
        let segments: Vec<Option<&str>> = ids
            .iter()
            .map(|i| [Some("a"), Some("b"), Some("c"), None][(i % 4) as usize])
            .collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("segment", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(StringArray::from(segments)),
            ],
        )
        .unwrap()
    }

    fn config() -> SessionConfig {
        SessionConfig::new()
            .with_target_partitions(4)
            .with_batch_size(1024)
    }

    /// How the rule gets into the session.
    #[derive(Clone, Copy, PartialEq)]
    enum Rule {
        Without,
        Registered,
        Appended,
        ScansOnly,
    }

    fn context(rule: Rule) -> SessionContext {
        let ctx = bare_context(rule);
        ctx.register_table("orders", mem_table(&orders_batch(), 4, 3_000))
            .unwrap();
        ctx.register_table("customers", mem_table(&customers_batch(), 2, 1_000))
            .unwrap();
        ctx
    }

    /// The orders written once to a Parquet file with small row groups, so scans get the
    /// hash join's dynamic filter (which must keep NULL keys for a null-equal join).
    fn orders_parquet() -> String {
        static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        PATH.get_or_init(|| {
            // The data is seeded, so one fixed file serves every run; write to a private
            // name and rename so concurrent test processes never see a partial file.
            let path = std::env::temp_dir().join("mdj-orders-test-v1.parquet");
            let tmp =
                std::env::temp_dir().join(format!("mdj-orders-test-v1.{}.tmp", std::process::id()));
            let props = datafusion::parquet::file::properties::WriterProperties::builder()
                .set_max_row_group_row_count(Some(4_096))
                .build();
            let batch = orders_batch();
            let file = std::fs::File::create(&tmp).unwrap();
            let mut writer =
                datafusion::parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props))
                    .unwrap();
            writer.write(&batch).unwrap();
            writer.close().unwrap();
            std::fs::rename(&tmp, &path).unwrap();
            path.to_str().unwrap().to_string()
        })
        .clone()
    }

    async fn parquet_context(rule: Rule) -> SessionContext {
        let ctx = bare_context(rule);
        let options = datafusion::prelude::ParquetReadOptions::default();
        ctx.register_parquet("orders", orders_parquet(), options)
            .await
            .unwrap();
        ctx.register_table("customers", mem_table(&customers_batch(), 2, 1_000))
            .unwrap();
        ctx
    }

    fn bare_context(rule: Rule) -> SessionContext {
        let builder = SessionStateBuilder::new()
            .with_config(config())
            .with_default_features();
        let builder = match rule {
            Rule::Without => builder,
            Rule::Registered => register(builder),
            Rule::Appended => builder.with_optimizer_rule(Arc::new(MixedDistinctToJoin::new())),
            Rule::ScansOnly => register_rule(builder, MixedDistinctToJoin::scans_only()),
        };
        SessionContext::new_with_state(builder.build())
    }

    // ---------------------------------------------------------------- helpers

    async fn optimized_plan(ctx: &SessionContext, sql: &str) -> String {
        let plan = ctx.sql(sql).await.unwrap().into_optimized_plan().unwrap();
        plan.display_indent_schema().to_string()
    }

    fn cells(batches: &[RecordBatch]) -> Vec<Vec<String>> {
        let mut rows = Vec::new();
        for batch in batches {
            for r in 0..batch.num_rows() {
                rows.push(
                    batch
                        .columns()
                        .iter()
                        .map(|c| {
                            if c.is_null(r) {
                                "NULL".to_string()
                            } else {
                                array_value_to_string(c, r).unwrap()
                            }
                        })
                        .collect(),
                );
            }
        }
        rows
    }

    fn close(a: &str, b: &str) -> bool {
        if a == b {
            return true;
        }
        match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(a), Ok(b)) => (a - b).abs() <= 1e-12 * a.abs().max(b.abs()),
            _ => false,
        }
    }

    /// Compares two results. `approx` lists Float64 SUM/AVG columns (compared to 1e-12
    /// relative); every other column must be equal as text. Unless `ordered`, rows are
    /// sorted by their exact columns first (the group keys make them unique).
    fn assert_same(
        what: &str,
        mut got: Vec<Vec<String>>,
        mut want: Vec<Vec<String>>,
        approx: &[usize],
        ordered: bool,
    ) {
        assert_eq!(got.len(), want.len(), "{what}: row count");
        if !ordered {
            let key = |r: &Vec<String>| -> Vec<String> {
                r.iter()
                    .enumerate()
                    .map(|(i, c)| {
                        if approx.contains(&i) {
                            String::new()
                        } else {
                            c.clone()
                        }
                    })
                    .collect()
            };
            got.sort_by_key(key);
            want.sort_by_key(key);
        }
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.len(), w.len(), "{what}: column count");
            for (i, (a, b)) in g.iter().zip(w).enumerate() {
                if approx.contains(&i) {
                    assert!(
                        close(a, b),
                        "{what}: column {i}: {a} vs {b}\nrow {g:?}\nvs  {w:?}"
                    );
                } else {
                    assert_eq!(a, b, "{what}: column {i}\nrow {g:?}\nvs  {w:?}");
                }
            }
        }
    }

    /// Runs `sql` with and without the rule: the rule must fire (a Join with our helper
    /// columns in the optimized plan), the results must be equal, and the output schemas
    /// identical.
    async fn check_fires(
        with: &SessionContext,
        without: &SessionContext,
        sql: &str,
        approx: &[usize],
        ordered: bool,
    ) {
        let plan = optimized_plan(with, sql).await;
        assert!(
            plan.contains("Join") && plan.contains(PREFIX),
            "rule did not fire for {sql}\n{plan}"
        );
        let plain = optimized_plan(without, sql).await;
        assert!(!plain.contains(PREFIX), "{plain}");

        let df_with = with.sql(sql).await.unwrap();
        let df_without = without.sql(sql).await.unwrap();
        assert_eq!(df_with.schema(), df_without.schema(), "{sql}");
        let got = df_with.collect().await.unwrap();
        let want = df_without.collect().await.unwrap();
        let (got, want) = (cells(&got), cells(&want));
        assert!(
            !want.is_empty() || sql.contains("1e12"),
            "{sql}: no rows, test is vacuous"
        );
        assert_same(sql, got, want, approx, ordered);
    }

    // ---------------------------------------------------------------- 1. results equal

    const RFM_FLOAT: &str = "SELECT customer_id, COUNT(*), SUM(amount_f), AVG(amount_f), \
        MIN(order_ts), MAX(order_ts), COUNT(DISTINCT CAST(order_ts AS DATE)) \
        FROM orders GROUP BY customer_id";

    /// (query, indices of Float64 SUM/AVG columns)
    fn firing_queries() -> Vec<(&'static str, Vec<usize>, bool)> {
        vec![
            (RFM_FLOAT, vec![2, 3], false),
            // Decimal amounts: sums and averages must be exactly equal.
            (
                "SELECT customer_id, COUNT(*), SUM(amount_d), AVG(amount_d), MIN(order_ts), \
                 MAX(order_ts), COUNT(DISTINCT CAST(order_ts AS DATE)) \
                 FROM orders GROUP BY customer_id",
                vec![],
                false,
            ),
            // Two identical COUNT(DISTINCT x) (the SQL planner may merge them).
            (
                "SELECT customer_id, COUNT(DISTINCT x) AS d1, SUM(amount_d) AS s, \
                 COUNT(DISTINCT x) AS d2, COUNT(x) AS c FROM orders GROUP BY customer_id",
                vec![],
                false,
            ),
            // String group key, including NULL and ''.
            (
                "SELECT region, COUNT(*), COUNT(DISTINCT x), MAX(amount_d), MIN(order_ts) \
                 FROM orders GROUP BY region",
                vec![],
                false,
            ),
            // Expression group key.
            (
                "SELECT customer_id % 7, COUNT(DISTINCT x), AVG(amount_d), MIN(region), \
                 AVG(amount_f) FROM orders GROUP BY customer_id % 7",
                vec![4],
                false,
            ),
            // Two group columns, one an aliased expression; distinct over a date.
            (
                "SELECT region, customer_id % 13 AS bucket, COUNT(*) AS n, \
                 COUNT(DISTINCT CAST(order_ts AS DATE)) AS days, SUM(amount_d) AS s \
                 FROM orders GROUP BY region, customer_id % 13",
                vec![],
                false,
            ),
            // HAVING on aggregates and on a key, ORDER BY over aggregate outputs.
            (
                "SELECT customer_id, COUNT(*) AS n, COUNT(DISTINCT x) AS dx, SUM(amount_d) AS s, \
                 AVG(amount_d) AS a FROM orders GROUP BY customer_id \
                 HAVING COUNT(DISTINCT x) >= 5 AND COUNT(*) > 12 \
                 AND (customer_id IS NULL OR customer_id > 100) \
                 ORDER BY dx DESC, s DESC, customer_id NULLS FIRST",
                vec![],
                true,
            ),
            // ORDER BY with LIMIT above the aggregate.
            (
                "SELECT customer_id, MAX(order_ts) AS last, COUNT(DISTINCT x) AS dx \
                 FROM orders GROUP BY customer_id ORDER BY dx DESC, customer_id LIMIT 50",
                vec![],
                true,
            ),
            // COUNT(DISTINCT x) beside only sum/min/max (SingleDistinctToGroupBy's case).
            (
                "SELECT customer_id, COUNT(DISTINCT x), SUM(amount_d), MAX(order_ts) \
                 FROM orders GROUP BY customer_id",
                vec![],
                false,
            ),
            // WHERE below, aggregate over an expression of the group key.
            (
                "SELECT customer_id, COUNT(*), COUNT(DISTINCT region), MIN(amount_d + 1) \
                 FROM orders WHERE amount_d > 10 AND x IS DISTINCT FROM 3 GROUP BY customer_id",
                vec![],
                false,
            ),
            // Input is a join; qualified keys from two tables.
            (
                "SELECT c.segment, o.region, COUNT(*), COUNT(DISTINCT o.x), SUM(o.amount_d) \
                 FROM orders o JOIN customers c ON o.customer_id = c.id \
                 GROUP BY c.segment, o.region",
                vec![],
                false,
            ),
            // Subquery above: parent references the aggregate's output columns.
            (
                "SELECT t.customer_id, t.n + t.dx AS z FROM (SELECT customer_id, COUNT(*) AS n, \
                 COUNT(DISTINCT x) AS dx FROM orders GROUP BY customer_id) t WHERE t.dx > 2",
                vec![],
                false,
            ),
            // Input deduplicated like segvalue's quality view (DISTINCT ON ... ORDER BY,
            // planned as first_value(.. ORDER BY ..)); the ORDER BY is total here.
            (
                "SELECT customer_id, COUNT(*), SUM(amount_d), COUNT(DISTINCT x) FROM \
                 (SELECT DISTINCT ON (customer_id, region) * FROM orders \
                  ORDER BY customer_id, region, order_ts, amount_d, x, amount_f, fk, fx) t \
                 GROUP BY customer_id",
                vec![],
                false,
            ),
            // Input with an order-free window aggregate.
            (
                "SELECT region, COUNT(*), COUNT(DISTINCT x) FROM (SELECT *, SUM(x) OVER \
                 (PARTITION BY customer_id) AS sx FROM orders) t WHERE sx > 100 GROUP BY region",
                vec![],
                false,
            ),
            // Empty input.
            (
                "SELECT customer_id, COUNT(*), COUNT(DISTINCT x) FROM orders \
                 WHERE amount_d > 1e12 GROUP BY customer_id",
                vec![],
                false,
            ),
        ]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn results_equal_with_and_without_rule() {
        let with = context(Rule::Registered);
        let without = context(Rule::Without);
        for (sql, approx, ordered) in firing_queries() {
            check_fires(&with, &without, sql, &approx, ordered).await;
        }
    }

    /// Same queries over a Parquet file: the physical plan pushes the join's dynamic
    /// filter into the scans, which must not drop the NULL-key group.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn results_equal_on_parquet() {
        let with = parquet_context(Rule::Registered).await;
        let without = parquet_context(Rule::Without).await;
        let explain = with.sql(&format!("EXPLAIN {RFM_FLOAT}")).await.unwrap();
        let text = format!("{:?}", cells(&explain.collect().await.unwrap()));
        assert!(text.contains("DynamicFilter"), "{text}");
        for (sql, approx, ordered) in firing_queries() {
            check_fires(&with, &without, sql, &approx, ordered).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn results_equal_when_appended_with_with_optimizer_rule() {
        let with = context(Rule::Appended);
        let without = context(Rule::Without);
        for (sql, approx, ordered) in firing_queries().into_iter().take(4) {
            check_fires(&with, &without, sql, &approx, ordered).await;
        }
    }

    /// DataFrame API: aliased aggregates and two identical COUNT(DISTINCT x) in one
    /// Aggregate node.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dataframe_aliases_and_two_identical_distincts() {
        let with = context(Rule::Registered);
        let without = context(Rule::Without);
        let run = |ctx: SessionContext| async move {
            let df = ctx
                .table("orders")
                .await
                .unwrap()
                .aggregate(
                    vec![col("region"), col("customer_id")],
                    vec![
                        count(lit(1)).alias("n"),
                        count_distinct(col("x")).alias("d1"),
                        avg(col("amount_d")).alias("a"),
                        count_distinct(col("x")).alias("d2"),
                        max(col("order_ts")),
                        sum(col("amount_f")).alias("sf"),
                    ],
                )
                .unwrap();
            let plan = df.clone().into_optimized_plan().unwrap();
            (
                plan.display_indent().to_string(),
                df.schema().clone(),
                df.collect().await.unwrap(),
            )
        };
        let (plan, schema_with, got) = run(with).await;
        assert!(plan.contains("Join") && plan.contains(PREFIX), "{plan}");
        let (plain, schema_without, want) = run(without).await;
        assert!(!plain.contains("Join"), "{plain}");
        assert_eq!(schema_with, schema_without);
        let (got, want) = (cells(&got), cells(&want));
        assert!(got.iter().all(|r| r[3] == r[5]), "d1 != d2");
        assert_same("dataframe", got, want, &[7], false);
    }

    /// The rewritten node keeps the Aggregate's exact schema (qualifiers, names, types,
    /// nullability), checked on the rule itself rather than through the optimizer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rewrite_keeps_the_aggregate_schema() {
        let ctx = context(Rule::Without);
        let sql = "SELECT o.customer_id, o.region, customer_id % 7, COUNT(*), AVG(amount_d), \
                   COUNT(DISTINCT CAST(order_ts AS DATE)) FROM orders o \
                   GROUP BY o.customer_id, o.region, customer_id % 7";
        // The analyzed (type-coerced) but unoptimized plan.
        let plan = ctx.state().create_logical_plan(sql).await.unwrap();
        let plan = ctx
            .state()
            .analyzer()
            .execute_and_check(plan, ctx.state().config_options(), |_, _| {})
            .unwrap();
        let mut aggregates = Vec::new();
        plan.apply(|n| {
            if let LogicalPlan::Aggregate(_) = n {
                aggregates.push(n.clone());
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        assert_eq!(aggregates.len(), 1);
        let original = aggregates.pop().unwrap();
        let config = datafusion::optimizer::OptimizerContext::new();
        let out = MixedDistinctToJoin::new()
            .rewrite(original.clone(), &config)
            .unwrap();
        assert!(out.transformed);
        assert_eq!(out.data.schema(), original.schema());
        let text = out.data.display_indent().to_string();
        assert!(text.starts_with("Projection:"), "{text}");
        assert!(text.contains("Inner Join"), "{text}");
        // Applying the rule again to its own output changes nothing.
        let again = MixedDistinctToJoin::new()
            .rewrite(out.data, &config)
            .unwrap();
        assert!(!again.transformed);
    }

    // ---------------------------------------------------------------- 2. does not fire

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn does_not_fire() {
        let with = context(Rule::Registered);
        let without = context(Rule::Without);
        let queries = [
            // global aggregate
            "SELECT COUNT(*), COUNT(DISTINCT x) FROM orders",
            // only distinct aggregates
            "SELECT customer_id, COUNT(DISTINCT x) FROM orders GROUP BY customer_id",
            // distinct on two different columns
            "SELECT customer_id, COUNT(*), COUNT(DISTINCT x), COUNT(DISTINCT region) \
             FROM orders GROUP BY customer_id",
            // DISTINCT on another function
            "SELECT customer_id, COUNT(*), SUM(DISTINCT x) FROM orders GROUP BY customer_id",
            "SELECT customer_id, COUNT(*), COUNT(DISTINCT x), AVG(DISTINCT x) \
             FROM orders GROUP BY customer_id",
            // FILTER on the non-distinct / the distinct aggregate
            "SELECT customer_id, COUNT(*) FILTER (WHERE x > 3), COUNT(DISTINCT x) \
             FROM orders GROUP BY customer_id",
            "SELECT customer_id, COUNT(*), COUNT(DISTINCT x) FILTER (WHERE x > 3) \
             FROM orders GROUP BY customer_id",
            // ORDER BY inside an aggregate
            "SELECT customer_id, array_agg(x ORDER BY order_ts), COUNT(DISTINCT x) \
             FROM orders GROUP BY customer_id",
            // grouping sets / rollup / cube
            "SELECT customer_id, region, COUNT(*), COUNT(DISTINCT x) FROM orders \
             GROUP BY GROUPING SETS ((customer_id), (region))",
            "SELECT customer_id, region, COUNT(*), COUNT(DISTINCT x) FROM orders \
             GROUP BY ROLLUP (customer_id, region)",
            "SELECT customer_id, region, COUNT(*), COUNT(DISTINCT x) FROM orders \
             GROUP BY CUBE (customer_id, region)",
            // no aggregates that could be split
            "SELECT customer_id, COUNT(*), SUM(amount_d) FROM orders GROUP BY customer_id",
            // input not repeatable: LIMIT, volatile expression
            "SELECT customer_id, COUNT(*), COUNT(DISTINCT x) \
             FROM (SELECT * FROM orders LIMIT 1000) t GROUP BY customer_id",
            "SELECT customer_id, COUNT(*), COUNT(DISTINCT x) \
             FROM (SELECT *, random() AS r FROM orders) t WHERE r < 0.5 GROUP BY customer_id",
            // floating-point distinct argument or group key (-0.0 / 0.0, NaN)
            "SELECT customer_id, COUNT(*), COUNT(DISTINCT fx) FROM orders GROUP BY customer_id",
            "SELECT fk, region, COUNT(DISTINCT x), COUNT(*) FROM orders GROUP BY fk, region",
            "SELECT customer_id, COUNT(*), COUNT(DISTINCT x) FROM (SELECT region, \
             any_value(customer_id) AS customer_id, any_value(x) AS x FROM orders GROUP BY region) t \
             GROUP BY customer_id",
            "SELECT customer_id, COUNT(*), COUNT(DISTINCT x) FROM (SELECT *, \
             row_number() OVER (PARTITION BY customer_id) AS rn FROM orders) t \
             WHERE rn = 1 GROUP BY customer_id",
            // nested (List) group key
            "SELECT make_array(customer_id), COUNT(*), COUNT(DISTINCT x) \
             FROM orders GROUP BY make_array(customer_id)",
        ];
        for sql in queries {
            let got = optimized_plan(&with, sql).await;
            let want = optimized_plan(&without, sql).await;
            assert!(!got.contains(PREFIX), "rule fired for {sql}\n{got}");
            assert_eq!(got, want, "plan changed for {sql}");
        }
    }

    /// `scans_only` fires on a plain scan and leaves inputs with joins, aggregates and
    /// windows alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scans_only_variant() {
        let scans_only = context(Rule::ScansOnly);
        let without = context(Rule::Without);
        let mut fired = 0;
        for (sql, approx, ordered) in firing_queries() {
            let plan = optimized_plan(&scans_only, sql).await;
            let complex_input =
                sql.contains("DISTINCT ON") || sql.contains(" OVER ") || sql.contains(" JOIN ");
            if complex_input {
                assert!(!plan.contains(PREFIX), "fired on {sql}\n{plan}");
            } else {
                check_fires(&scans_only, &without, sql, &approx, ordered).await;
                fired += 1;
            }
        }
        assert!(fired >= 10, "{fired}");
    }

    // ---------------------------------------------------------------- 3. plan shape

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn explain_shows_join_of_two_hash_aggregates() {
        let with = context(Rule::Registered);
        let batches = with
            .sql(&format!("EXPLAIN {RFM_FLOAT}"))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let rows = cells(&batches);
        let logical = &rows.iter().find(|r| r[0] == "logical_plan").unwrap()[1];
        let physical = &rows.iter().find(|r| r[0] == "physical_plan").unwrap()[1];
        assert!(logical.contains("Inner Join"), "{logical}");
        assert!(logical.contains("count(__mdj_x)"), "{logical}");
        assert!(physical.contains("HashJoinExec"), "{physical}");
        assert!(physical.contains("NullsEqual: true"), "{physical}");
        // A1 (partial+final), pairs (partial+final), count per key (partial+final).
        assert!(physical.matches("AggregateExec").count() >= 6, "{physical}");

        // Same through the physical planner directly.
        let df = with.sql(RFM_FLOAT).await.unwrap();
        let plan = df.create_physical_plan().await.unwrap();
        let text = displayable(plan.as_ref()).indent(true).to_string();
        assert!(text.contains("HashJoinExec"), "{text}");

        // And the session without the rule keeps a single aggregate, no join.
        let without = context(Rule::Without);
        let plain = optimized_plan(&without, RFM_FLOAT).await;
        assert!(!plain.contains("Join"), "{plain}");
    }

    #[test]
    fn register_inserts_before_single_distinct_once() {
        let state = register(register(SessionStateBuilder::new().with_default_features())).build();
        let names: Vec<&str> = state.optimizers().iter().map(|r| r.name()).collect();
        let ours = names.iter().position(|n| *n == RULE_NAME).unwrap();
        assert_eq!(names.iter().filter(|n| **n == RULE_NAME).count(), 1);
        assert_eq!(names[ours + 1], SINGLE_DISTINCT_RULE, "{names:?}");
        let again = with_rule(state);
        assert_eq!(
            again
                .optimizers()
                .iter()
                .filter(|r| r.name() == RULE_NAME)
                .count(),
            1
        );
    }
}
