//! The fit sample, and every customer assigned to its nearest centroid by the engine: the
//! per-segment profile and the plan that writes `customer_segments`.

use std::collections::BTreeMap;

use datafusion::execution::context::SessionContext;
use ndarray::Array2;

use super::order_stats::OrderStats;
use super::prep::prepared_expr;
use super::rfm::RfmPlan;
use super::sql::{FEATURES, SAMPLE_SALT, category, f64s, i64s, num, strings, text};
use crate::error::Error;
use crate::features::{self, FeatureError};
use crate::pipeline::query::collect;
use crate::pipeline::session::Session;
use crate::quality::quote;
use crate::segment::SegmentationSpec;
use crate::segment::prep::PrepColumn;
use crate::segment::profile::SegmentStats;
use crate::segment::spec::RfmSpec;


/// `nearest_centroid` and `centroid_distance` over the prepared columns.
pub(super) fn assignment(columns: &[PrepColumn], centroids: &Array2<f64>) -> (String, String) {
    let rows: Vec<String> = centroids.rows().into_iter().map(|r| format!("[{}]", r.iter().map(|&v| num(v)).collect::<Vec<_>>().join(", "))).collect();
    let args = format!("[{}], {}", rows.join(", "), columns.iter().map(|c| prepared_expr(c, true)).collect::<Vec<_>>().join(", "));
    (format!("nearest_centroid({args})"), format!("centroid_distance({args})"))
}

/// The fit sample: about `fit_sample` customers by salted id hash, with their features.
pub(super) async fn sample(s: &Session, spec: &SegmentationSpec, rows: usize) -> Result<(features::FeatureFrame, String), Error> {
    let share = spec.fit_sample as f64 / rows as f64;
    let below = format!("{:08x}", (share * 4_294_967_296.0).ceil() as u64);
    let predicate = |id: &str| format!("md5(concat(CAST({} AS VARCHAR), '{SAMPLE_SALT}/{}')) < '{below}'", quote(id), spec.seed);
    let q = |e| Error::from(FeatureError::Query { view: spec.view.clone(), source: e });
    let df = s.ctx.sql(&format!("SELECT * FROM {} WHERE {}", quote(FEATURES), predicate(&spec.id))).await.map_err(q)?;
    let frame = features::load_rows(df, &spec.view, &spec.id, &spec.features, &spec.categorical).await?;
    Ok((frame, predicate(&spec.id)))
}

/// Per fitted centroid: customers, feature means and medians, prepared means; and every
/// customer's prepared (mean, std).
pub(super) struct Profiled {
    pub(super) stats: Vec<SegmentStats>,
    pub(super) overall: Vec<(f64, f64)>,
}

pub(super) async fn profile(ctx: &SessionContext, spec: &SegmentationSpec, columns: &[PrepColumn], centroids: &Array2<f64>) -> Result<Profiled, Error> {
    let view = spec.view.as_str();
    let (nearest, _) = assignment(columns, centroids);
    let p = spec.features.len();
    let mut inner = vec![format!("{nearest} AS c")];
    let mut outer = vec!["count(*) AS n".to_string()];
    for (j, f) in spec.features.iter().enumerate() {
        inner.push(format!("CAST({} AS DOUBLE) AS x{j}, {} AS u{j}", quote(f), prepared_expr(&columns[j], false)));
        outer.push(format!("avg(x{j}) AS mean{j}, count(x{j}) AS present{j}, avg(u{j}) AS umean{j}, stddev_pop(u{j}) AS usd{j}"));
    }
    let sql = format!(
        "SELECT CAST(c AS BIGINT) AS c, grouping(c) AS everyone, {} FROM (SELECT {} FROM {}) GROUP BY GROUPING SETS ((c), ())",
        outer.join(", "),
        inner.join(", "),
        quote(FEATURES)
    );
    let b = collect(ctx, view, &sql).await?;
    let (c, everyone, n) = (i64s(&b, "c"), i64s(&b, "everyone"), i64s(&b, "n"));
    let k = centroids.nrows();
    let all = everyone.iter().position(|&e| e == 1).expect("the grand total row");
    let overall = (0..p).map(|j| (f64s(&b, &format!("umean{j}"))[all], f64s(&b, &format!("usd{j}"))[all])).collect();
    let mut at: Vec<Option<usize>> = vec![None; k];
    for (row, (&c, &e)) in c.iter().zip(&everyone).enumerate() {
        if e == 0 {
            at[c as usize] = Some(row);
        }
    }
    // Each segment's medians: one sort per feature, by (segment, value).
    let sorted = OrderStats { ctx, view, table: FEATURES };
    let mut medians = vec![vec![f64::NAN; p]; k];
    for (j, f) in spec.features.iter().enumerate() {
        let present = i64s(&b, &format!("present{j}"));
        let sizes: BTreeMap<i64, usize> = (0..k).filter_map(|i| Some((i as i64, present[at[i]?] as usize))).collect();
        let fetched = sorted.fetch_groups(&format!("CAST({} AS DOUBLE)", quote(f)), Some(&nearest), &sizes, &[0.5]).await?;
        for (&i, values) in &fetched {
            medians[i as usize][j] = values.quantile(0.5, &|v| v);
        }
    }
    let stats = (0..k)
        .map(|i| {
            let r = at[i];
            let get = |name: String| r.map_or(f64::NAN, |r| f64s(&b, &name)[r]);
            SegmentStats {
                segment_id: i as i32,
                customers: r.map_or(0, |r| n[r] as usize),
                means: (0..p).map(|j| get(format!("mean{j}"))).collect(),
                medians: medians[i].clone(),
                prepared_means: (0..p).map(|j| get(format!("umean{j}"))).collect(),
            }
        })
        .collect();
    Ok(Profiled { stats, overall })
}

/// Per profiled column (`spec.profile`) and fitted centroid row, customers per value, counted
/// by the engine over every customer in one scan: (value, customers) by value, NULL as
/// [`crate::segment::prep::NULL_CATEGORY`].
pub(super) async fn category_counts(ctx: &SessionContext, spec: &SegmentationSpec, columns: &[PrepColumn], centroids: &Array2<f64>) -> Result<Vec<Vec<Vec<(String, usize)>>>, Error> {
    let p = spec.profile.len();
    if p == 0 {
        return Ok(Vec::new());
    }
    let (nearest, _) = assignment(columns, centroids);
    // A grouping set (segment, column) per column: a result row belongs to the one column it
    // holds a value for (never NULL after `category`).
    let values: Vec<String> = spec.profile.iter().enumerate().map(|(j, c)| format!("{} AS v{j}", category(c))).collect();
    let names: Vec<String> = (0..p).map(|j| format!("v{j}")).collect();
    let sets: Vec<String> = names.iter().map(|v| format!("(c, {v})")).collect();
    let sql = format!(
        "SELECT c, {}, count(*) AS n FROM (SELECT CAST({nearest} AS BIGINT) AS c, {} FROM {}) GROUP BY GROUPING SETS ({})",
        names.join(", "),
        values.join(", "),
        quote(FEATURES),
        sets.join(", ")
    );
    let b = collect(ctx, &spec.view, &sql).await?;
    let (c, n) = (i64s(&b, "c"), i64s(&b, "n"));
    let mut v: Vec<Vec<Option<String>>> = names.iter().map(|name| strings(&b, name)).collect();
    let mut out = vec![vec![Vec::new(); centroids.nrows()]; p];
    for row in 0..c.len() {
        let j = (0..p).find(|&j| v[j][row].is_some()).expect("each row groups one column");
        out[j][c[row] as usize].push((v[j][row].take().expect("found above"), n[row] as usize));
    }
    out.iter_mut().flatten().for_each(|counts| counts.sort());
    Ok(out)
}

/// `customer_segments` as a plan: every customer assigned by the engine, `ids[i]` and
/// `names[i]` for centroid row `i`, with the RFM columns joined.
pub(super) fn segments_sql(spec: &SegmentationSpec, columns: &[PrepColumn], centroids: &Array2<f64>, ids: &[i32], names: &[String], rfm: Option<(&RfmSpec, &RfmPlan, &str)>) -> String {
    let (nearest, distance) = assignment(columns, centroids);
    let by_row = |values: &dyn Fn(usize) -> String| {
        let arms: Vec<String> = (0..ids.len()).map(|i| format!("WHEN {i} THEN {}", values(i))).collect();
        format!("CASE c {} END", arms.join(" "))
    };
    let id = quote(&spec.id);
    let assigned = format!("SELECT {id} AS __id, {nearest} AS c, {distance} AS d FROM {}", quote(FEATURES));
    let segment = format!(
        "a.__id AS {id}, CAST({} AS INT) AS segment_id, {} AS segment_name, d AS distance_to_centroid",
        by_row(&|i| ids[i].to_string()),
        by_row(&|i| text(&names[i]))
    );
    let Some((r, plan, rfm_table)) = rfm else {
        let nulls = "CAST(NULL AS INT) AS rfm_r, CAST(NULL AS INT) AS rfm_f, CAST(NULL AS INT) AS rfm_m, CAST(NULL AS VARCHAR) AS rfm_cell, \
                     CAST(NULL AS VARCHAR) AS rfm_segment, CAST(NULL AS VARCHAR) AS lifecycle_stage, CAST(NULL AS VARCHAR) AS value_tier";
        return format!("SELECT {segment}, {nulls} FROM ({assigned}) a");
    };
    let [rs, fs, ms, stage, tier] = &plan.exprs;
    // The first rule that matches names the cell, as `rfm::rfm_segment` finds it.
    let within = |c: &str, (lo, hi): (u8, u8)| format!("{c} BETWEEN {lo} AND {hi}");
    let rules: Vec<String> = r
        .rules
        .iter()
        .map(|rule| format!("WHEN {} AND {} AND {} THEN {}", within("rfm_r", rule.r), within("rfm_f", rule.f), within("rfm_m", rule.m), text(&rule.name)))
        .collect();
    format!(
        "SELECT {segment}, rfm_r, rfm_f, rfm_m, \
         CAST(rfm_r AS VARCHAR) || CAST(rfm_f AS VARCHAR) || CAST(rfm_m AS VARCHAR) AS rfm_cell, \
         CASE {} END AS rfm_segment, lifecycle_stage, value_tier \
         FROM ({assigned}) a LEFT JOIN (SELECT CAST({rid} AS VARCHAR) AS __rid, {rs} AS rfm_r, {fs} AS rfm_f, {ms} AS rfm_m, \
         {stage} AS lifecycle_stage, {tier} AS value_tier FROM {rview}) r ON CAST(a.__id AS VARCHAR) = r.__rid",
        rules.join(" "),
        rid = quote(&r.id),
        rview = quote(rfm_table),
    )
}
