//! RFM quintile edges, value-tier cut-offs and lifecycle counts from order statistics, and
//! the SQL expressions that score a customer from them.

use std::collections::BTreeMap;

use datafusion::execution::context::SessionContext;

use super::order_stats::{OrderStats, checked_columns, checked_counts};
use super::sql::{i64s, num, strings};
use crate::error::Error;
use crate::pipeline::manifest::RfmReport;
use crate::pipeline::query::{collect, first_duplicate};
use crate::quality::quote;
use crate::segment::rfm::{Lifecycle, ValueTier};
use crate::segment::spec::RfmSpec;


/// RFM quintile edges, value-tier cut-offs and lifecycle counts over the RFM view, and the
/// expressions that score a customer from them.
pub(super) struct RfmPlan {
    /// `rfm_r`, `rfm_f`, `rfm_m`, `lifecycle_stage`, `value_tier` over the RFM view's columns.
    pub(super) exprs: [String; 5],
    pub(super) report: RfmReport,
}

/// `table` holds the RFM view's rows (the view itself, or a copy on disk).
pub(super) async fn rfm_plan(ctx: &SessionContext, r: &RfmSpec, table: &str) -> Result<RfmPlan, Error> {
    let view = r.view.as_str();
    let d = |c: &str| format!("CAST({} AS DOUBLE)", quote(c));
    let (recency, age, value) = (d("recency_days"), d(&r.age_column), d(&r.value_column));
    let t = &r.lifecycle;
    let stage = format!(
        "CASE WHEN {age} <= {} THEN 'new' WHEN {recency} > {} THEN 'churned' WHEN {recency} > {} THEN 'silent' ELSE 'active' END",
        num(t.new_days),
        num(t.churned_days),
        num(t.silent_days)
    );
    debug_assert_eq!([Lifecycle::New, Lifecycle::Churned, Lifecycle::Silent, Lifecycle::Active].map(Lifecycle::as_str), ["new", "churned", "silent", "active"]);
    let wanted = ["recency_days", "frequency", "monetary", r.age_column.as_str(), r.value_column.as_str()];
    let mut cols = vec![format!("{stage} AS stage")];
    cols.extend(checked_columns(&r.id, &wanted));
    let sql = format!("SELECT {} FROM {} GROUP BY stage", cols.join(", "), quote(table));
    let b = collect(ctx, view, &sql).await?;
    let (n, _) = checked_counts(view, &r.id, &wanted, &b, false)?;
    first_duplicate(ctx, view, table, &r.id).await?;
    let lifecycle: BTreeMap<String, usize> =
        strings(&b, "stage").into_iter().zip(i64s(&b, "n")).filter_map(|(s, n)| Some((s?, n as usize))).collect();

    let sorted = OrderStats { ctx, view, table };
    // Quintile scores (`rfm::quintile_scores`): score = 1 + floor(5 g / n) with g the rows
    // ranked strictly before a value, so score > s exactly when the value passes the row at
    // rank ceil(s n / 5): four order statistics per column.
    let ranks: Vec<usize> = (1..=4).map(|s| (s * n).div_ceil(5)).collect();
    let score = |edges: &[f64], x: &str, higher_is_better: bool| {
        let op = if higher_is_better { ">" } else { "<" };
        let terms: Vec<String> = edges.iter().map(|&e| format!("CASE WHEN {x} {op} {} THEN 1 ELSE 0 END", num(e))).collect();
        format!("CAST(1 + {} AS INT)", terms.join(" + "))
    };
    let mut exprs: Vec<String> = Vec::new();
    for (c, higher_is_better) in [("recency_days", false), ("frequency", true), ("monetary", true)] {
        let positions: Vec<usize> = ranks.iter().map(|&m| if higher_is_better { m - 1 } else { n - m }).collect();
        let got = sorted.at(&d(c), None, &BTreeMap::from([(0, (n, positions.clone()))])).await?;
        let edges: Vec<f64> = positions.iter().map(|&i| got[&(0, i)]).collect();
        exprs.push(score(&edges, &d(c), higher_is_better));
    }
    let v = &r.value;
    let cut = sorted.fetch(&value, n, &[v.high_quantile, v.low_quantile]).await?;
    let (high_from, low_below) = (cut.quantile(v.high_quantile, &|x| x), cut.quantile(v.low_quantile, &|x| x));
    debug_assert_eq!([ValueTier::High, ValueTier::Low, ValueTier::Medium].map(ValueTier::as_str), ["high", "low", "medium"]);
    let tier = format!("CASE WHEN {value} >= {} THEN 'high' WHEN {value} < {} THEN 'low' ELSE 'medium' END", num(high_from), num(low_below));
    let [r_, f_, m_]: [String; 3] = exprs.try_into().expect("three scores");
    Ok(RfmPlan {
        exprs: [r_, f_, m_, stage, tier],
        report: RfmReport { view: r.view.clone(), customers: n, value_high_from: high_from, value_low_below: low_below, lifecycle },
    })
}
