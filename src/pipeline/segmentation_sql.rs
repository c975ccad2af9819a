//! The segmentation stage past `fit_sample` customers (issue #20): the driver holds a seeded
//! sample and per-segment statistics, never every customer.
//!
//! 1. The preparation is fitted by the engine over every customer: counts, means and
//!    standard deviations from one aggregate query, quantiles (median fills, clip bounds,
//!    robust scaling) as exact order statistics (a sort the engine can spill, fetching the
//!    two rows each quantile interpolates, [`crate::stats::quantile_positions`]), so fill values,
//!    clip bounds and robust scales are the driver's to the bit.
//! 2. K-means (or mini-batch K-means) fits every candidate k and chooses k on a sample of
//!    about `fit_sample` customers: those whose salted id hash falls below a threshold, so
//!    the same customers for a seed whatever the partitioning, read in id order.
//! 3. The engine assigns every customer (`nearest_centroid` over the prepared columns as SQL
//!    expressions) in a `GROUP BY` that counts, measures and profiles the segments, and in the
//!    plan that writes `customer_segments` with its RFM scores, lifecycle stages and value
//!    tiers (quintile edges and tier cut-offs from order statistics, scores as `CASE`).
//! 4. What is published per segment (actions, CLV totals, transitions) is counted from the
//!    staged tables.
//!
//! The report's charts, the drift check and the saved model's drift bins read the sample.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::execution::context::SessionContext;
use ndarray::{Array2, Axis};

use super::clv::ClvOutcome;
use super::history;
use super::manifest::{ModelUse, RfmReport, Stages};
use super::query::{collect, first_duplicate, non_finite_count};
use super::rows::RfmCounts;
use super::segment_outputs::{Outcome, log_outcome, report, rules, stage_actions, stage_rules};
use super::session::Session;
use super::tables::{ClvTotals, k_selection_batch, prep_batch, summary_batch};
use crate::engine::materialize;
use crate::error::Error;
use crate::features::{self, FeatureError};
use crate::model_mode::ModelMode;
use crate::publish::Publisher;
use crate::quality::quote;
use crate::segment::prep::{NULL_CATEGORY, PrepColumn, usable_scale};
use crate::segment::profile::{SegmentStats, actions_for, named_profiles, size_order};
use crate::segment::rfm::{Lifecycle, ValueTier};
use crate::segment::spec::{Algorithm, Impute, RfmSpec, Scale};
use crate::segment::{self, SegmentError, Segmentation, SegmentationSpec};
use crate::stats::{dominant_of_counts, lerp, quantile_positions};

/// The staged `customer_features` as the stage's queries read it.
const FEATURES: &str = "__segvalue_segmentation_features";
/// The two runs' `customer_segments` for the transitions.
const CURRENT: &str = "__segvalue_segments_current";
const PREVIOUS: &str = "__segvalue_segments_previous";
/// The RFM view's columns, on disk.
const RFM: &str = "__segvalue_rfm";
/// Mixed into each id's hash that picks the fit sample, with the job's seed.
const SAMPLE_SALT: &str = "segvalue/segmentation";

/// Whether this stage runs here: more customers than `fit_sample` and a model that assigns
/// new rows by the nearest centroid (K-means, mini-batch K-means, Ward, any saved model). DBSCAN
/// and GMM refits stay on the driver.
pub(super) fn applies(spec: &SegmentationSpec, rows: u64) -> bool {
    let by_centroid = spec.mode == ModelMode::Score || matches!(spec.algorithm, Algorithm::KMeans | Algorithm::MiniBatchKMeans { .. } | Algorithm::Hierarchical);
    by_centroid && rows > spec.fit_sample as u64
}

/// A DOUBLE literal that plans back to the same bits: Rust's shortest round-trip form.
fn num(v: f64) -> String {
    debug_assert!(v.is_finite());
    format!("CAST({v:?} AS DOUBLE)")
}

fn text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}


/// Column `name` of every batch as f64 (NULL as NaN).
fn f64s(batches: &[RecordBatch], name: &str) -> Vec<f64> {
    let mut out = Vec::new();
    for b in batches {
        let c = cast(b.column_by_name(name).expect("selected"), &DataType::Float64).expect("numbers cast to DOUBLE");
        out.extend(c.as_primitive::<Float64Type>().iter().map(|v| v.unwrap_or(f64::NAN)));
    }
    out
}

fn i64s(batches: &[RecordBatch], name: &str) -> Vec<i64> {
    let mut out = Vec::new();
    for b in batches {
        let c = cast(b.column_by_name(name).expect("selected"), &DataType::Int64).expect("integers cast to BIGINT");
        out.extend(c.as_primitive::<Int64Type>().iter().map(|v| v.unwrap_or(0)));
    }
    out
}

fn strings(batches: &[RecordBatch], name: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for b in batches {
        let c = cast(b.column_by_name(name).expect("selected"), &DataType::Utf8).expect("text casts");
        out.extend(c.as_string::<i32>().iter().map(|v| v.map(str::to_string)));
    }
    out
}

fn not_staged(table: &str) -> Error {
    Error::query(table, datafusion::error::DataFusionError::Execution("the table was not staged before the segment tables".into()))
}

/// Exact order statistics: the values of `expr` (NULLs left out) at 0-based ascending
/// positions, per group of `group` (an integer expression; `None` for one group).
struct OrderStats<'a> {
    ctx: &'a SessionContext,
    /// The view named in errors, and the table the query reads.
    view: &'a str,
    table: &'a str,
}

impl OrderStats<'_> {
    /// `groups[g]` = (non-NULL values in group g, the positions wanted in it); every group
    /// with values must be listed, in ascending g, as the sort places them.
    async fn at(&self, expr: &str, group: Option<&str>, groups: &BTreeMap<i64, (usize, Vec<usize>)>) -> Result<HashMap<(i64, usize), f64>, Error> {
        // One sort by (group, value) and global row numbers: a window partitioned by group
        // fails on Ballista 55 ("Expects PARTITION BY expression to be ordered"), and group g's
        // rows follow those of the groups before it.
        let mut at_row: HashMap<usize, (i64, usize)> = HashMap::new();
        let mut offset = 0;
        for (&g, (size, positions)) in groups {
            at_row.extend(positions.iter().map(|&p| (offset + p + 1, (g, p))));
            offset += size;
        }
        if at_row.is_empty() {
            return Ok(HashMap::new());
        }
        let mut rows: Vec<usize> = at_row.keys().copied().collect();
        rows.sort_unstable();
        // Spilled by the engine when it outgrows memory; only the picked rows come back.
        let sql = format!(
            "SELECT CAST(rn AS BIGINT) AS rn, v FROM (SELECT v, row_number() OVER (ORDER BY g, v) AS rn \
             FROM (SELECT CAST({g} AS BIGINT) AS g, CAST({expr} AS DOUBLE) AS v FROM {t}) WHERE v IS NOT NULL) WHERE rn IN ({rows})",
            g = group.unwrap_or("0"),
            t = quote(self.table),
            rows = rows.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(", "),
        );
        let batches = collect(self.ctx, self.view, &sql).await?;
        let (rn, v) = (i64s(&batches, "rn"), f64s(&batches, "v"));
        Ok(rn.into_iter().zip(v).filter_map(|(rn, v)| Some((*at_row.get(&(rn as usize))?, v))).collect())
    }

    /// The order statistics of `expr` (over its `n` non-NULL values) that quantiles `qs` read.
    async fn fetch(&self, expr: &str, n: usize, qs: &[f64]) -> Result<Fetched, Error> {
        let mut one = self.fetch_groups(expr, None, &BTreeMap::from([(0, n)]), qs).await?;
        Ok(one.remove(&0).expect("group 0 asked"))
    }

    /// [`Self::fetch`] per group of `group`, in one sort: `sizes[g]` is group g's number of
    /// non-NULL values (every group that has any).
    async fn fetch_groups(&self, expr: &str, group: Option<&str>, sizes: &BTreeMap<i64, usize>, qs: &[f64]) -> Result<BTreeMap<i64, Fetched>, Error> {
        let wanted: BTreeMap<i64, (usize, Vec<usize>)> = sizes
            .iter()
            .map(|(&g, &n)| {
                let mut at: Vec<usize> = if n == 0 { Vec::new() } else { qs.iter().map(|&q| quantile_positions(n, q)).flat_map(|(a, b, _)| [a, b]).collect() };
                at.sort_unstable();
                at.dedup();
                (g, (n, at))
            })
            .collect();
        let mut got = self.at(expr, group, &wanted).await?;
        Ok(sizes
            .iter()
            .map(|(&g, &n)| {
                let values = wanted[&g].1.iter().filter_map(|&i| Some((i, got.remove(&(g, i))?))).collect();
                (g, Fetched { n, values })
            })
            .collect())
    }
}

/// Order statistics of one sorted column: one sort serves every quantile asked of it.
struct Fetched {
    n: usize,
    values: HashMap<usize, f64>,
}

impl Fetched {
    /// The `q`-quantile as [`crate::stats::quantile`] computes it from the sorted values, after
    /// mapping the fetched values by `f` (non-decreasing, so it commutes with the sort).
    fn quantile(&self, q: f64, f: &dyn Fn(f64) -> f64) -> f64 {
        if self.n == 0 {
            return f64::NAN;
        }
        let (a, b, t) = quantile_positions(self.n, q);
        let value = |i: usize| f(self.values.get(&i).copied().unwrap_or(f64::NAN));
        lerp(value(a), value(b), t)
    }
}

/// The aggregates that check a view's rows: rows, non-NULL ids, and per column (as DOUBLE)
/// its non-NULL values `c{j}` and non-finite ones `bad{j}`.
fn checked_columns(id: &str, columns: &[&str]) -> Vec<String> {
    let mut out = vec!["count(*) AS n".to_string(), format!("count({}) AS ids", quote(id))];
    for (j, c) in columns.iter().enumerate() {
        let x = format!("CAST({} AS DOUBLE)", quote(c));
        out.push(format!("count({x}) AS c{j}, {} AS bad{j}", non_finite_count(&x)));
    }
    out
}

/// The rows and per-column non-NULL counts from [`checked_columns`]' aggregates (summed over
/// the batches' rows), or the first error: no rows, NULL ids, a non-finite value, and unless
/// `nulls_allowed` a NULL.
fn checked_counts(view: &str, id: &str, columns: &[&str], b: &[RecordBatch], nulls_allowed: bool) -> Result<(usize, Vec<usize>), Error> {
    let total = |name: &str| i64s(b, name).iter().sum::<i64>() as usize;
    let rows = total("n");
    if rows == 0 {
        return Err(FeatureError::Empty { view: view.to_string() }.into());
    }
    let null_ids = rows - total("ids");
    if null_ids > 0 {
        return Err(FeatureError::Nulls { view: view.to_string(), column: id.to_string(), count: null_ids }.into());
    }
    let mut present = Vec::with_capacity(columns.len());
    for (j, c) in columns.iter().enumerate() {
        let bad = total(&format!("bad{j}"));
        if bad > 0 {
            return Err(FeatureError::NonFinite { view: view.to_string(), column: c.to_string(), count: bad }.into());
        }
        let nulls = rows - total(&format!("c{j}"));
        if nulls > 0 && !nulls_allowed {
            return Err(FeatureError::Nulls { view: view.to_string(), column: c.to_string(), count: nulls }.into());
        }
        present.push(rows - nulls);
    }
    Ok((rows, present))
}

/// One aggregate over the segmentation view: rows and, per numeric feature, non-NULL values,
/// their mean, and values at or below -1 (no finite log1p); every row checked.
struct Population {
    rows: usize,
    present: Vec<usize>,
    means: Vec<f64>,
    at_most_minus_one: Vec<usize>,
}

async fn population(ctx: &SessionContext, spec: &SegmentationSpec) -> Result<Population, Error> {
    let view = spec.view.as_str();
    let features: Vec<&str> = spec.features.iter().map(String::as_str).collect();
    let mut cols = checked_columns(&spec.id, &features);
    for (j, f) in features.iter().enumerate() {
        let x = format!("CAST({} AS DOUBLE)", quote(f));
        cols.push(format!("avg({x}) AS avg{j}, sum(CASE WHEN {x} <= -1 THEN 1 ELSE 0 END) AS low{j}"));
    }
    let batches = collect(ctx, view, &format!("SELECT {} FROM {}", cols.join(", "), quote(FEATURES))).await?;
    let (rows, present) = checked_counts(view, &spec.id, &features, &batches, true)?;
    first_duplicate(ctx, view, FEATURES, &spec.id).await?;
    Ok(Population {
        rows,
        present,
        means: (0..features.len()).map(|j| f64s(&batches, &format!("avg{j}"))[0]).collect(),
        at_most_minus_one: (0..features.len()).map(|j| i64s(&batches, &format!("low{j}"))[0] as usize).collect(),
    })
}

/// A prepared column as a SQL expression over the view's columns, before scaling (`scaled`
/// false) or after: the steps of `prep::apply` in its order, so it gives the same bits.
fn prepared_expr(c: &PrepColumn, scaled: bool) -> String {
    let x = quote(&c.source);
    if let Some(cat) = &c.category {
        return format!("CASE WHEN coalesce(CAST({x} AS VARCHAR), {}) = {} THEN 1.0 ELSE 0.0 END", text(NULL_CATEGORY), text(cat));
    }
    let mut v = format!("CAST({x} AS DOUBLE)");
    if let Some(fill) = c.fill_value {
        v = format!("coalesce({v}, {})", num(fill));
    }
    if c.log1p {
        v = format!("log1p({v})");
    }
    if let (Some(lo), Some(hi)) = (c.clip_lower, c.clip_upper) {
        v = format!("least(greatest({v}, {}), {})", num(lo), num(hi));
    }
    if scaled { format!("(({v} - {}) / {})", num(c.center), num(c.scale)) } else { v }
}

/// The preparation fitted over every customer by the engine: `prep::prepare`'s numbers.
async fn fit_preparation(ctx: &SessionContext, spec: &SegmentationSpec, pop: &Population) -> Result<Vec<PrepColumn>, Error> {
    let view = spec.view.as_str();
    let sorted = OrderStats { ctx, view, table: FEATURES };
    let mut columns = Vec::new();
    for (j, name) in spec.features.iter().enumerate() {
        let prep = &spec.prep[j];
        let x = format!("CAST({} AS DOUBLE)", quote(name));
        let nulls = pop.rows - pop.present[j];
        let identity = |v: f64| v;
        // Every quantile of this column reads one sort of the filled values (imputation, log1p
        // and clipping are non-decreasing, so the order is the raw values'), plus a sort of
        // the present values for a median fill when there are NULLs.
        let mut qs = Vec::new();
        if matches!(prep.impute, Impute::Median) && nulls == 0 {
            qs.push(0.5);
        }
        if let Some((ql, qh)) = prep.clip {
            qs.extend([ql, qh]);
        }
        if spec.scale == Scale::Robust {
            qs.extend([0.25, 0.5, 0.75]);
        }
        let unfilled = if nulls == 0 { Some(sorted.fetch(&x, pop.rows, &qs).await?) } else { None };
        let (impute, fill) = match prep.impute {
            Impute::None if nulls > 0 => {
                return Err(SegmentError::Nulls { view: view.to_string(), column: name.clone(), count: nulls }.into());
            }
            Impute::None => ("none", None),
            Impute::Mean => ("mean", Some(if pop.present[j] > 0 { pop.means[j] } else { f64::NAN })),
            Impute::Median => match &unfilled {
                Some(f) => ("median", Some(f.quantile(0.5, &identity))),
                None => ("median", Some(sorted.fetch(&x, pop.present[j], &[0.5]).await?.quantile(0.5, &identity))),
            },
            Impute::Constant(c) => ("constant", Some(c)),
        };
        if fill.is_some_and(|f| !f.is_finite()) {
            let why = "the column has no values to impute from".to_string();
            return Err(SegmentError::NonFinite { view: view.to_string(), column: name.clone(), count: nulls, why }.into());
        }
        let mut col = PrepColumn {
            column: name.clone(),
            source: name.clone(),
            category: None,
            impute,
            fill_value: fill,
            nulls_filled: if fill.is_some() { nulls } else { 0 },
            log1p: prep.log1p,
            clip_lower: None,
            clip_upper: None,
            center: 0.0,
            scale: 1.0,
        };
        if prep.log1p {
            // log1p is finite above -1 only: the present values there, and the filled NULLs
            // when the fill is.
            let bad = pop.at_most_minus_one[j] + if fill.is_some_and(|f| f <= -1.0) { nulls } else { 0 };
            if bad > 0 {
                let why = format!("{bad} value(s) at or below -1 have no finite log1p");
                return Err(SegmentError::NonFinite { view: view.to_string(), column: name.clone(), count: bad, why }.into());
            }
        }
        let sorted_filled = match unfilled {
            Some(f) => f,
            // NULLs reach here only with a fill (refused above without one).
            None => {
                let filled = fill.map_or_else(|| x.clone(), |f| format!("coalesce({x}, {})", num(f)));
                sorted.fetch(&filled, pop.rows, &qs).await?
            }
        };
        let transform = |v: f64| if prep.log1p { v.ln_1p() } else { v };
        if let Some((ql, qh)) = prep.clip {
            (col.clip_lower, col.clip_upper) = (Some(sorted_filled.quantile(ql, &transform)), Some(sorted_filled.quantile(qh, &transform)));
        }
        let (center, scale) = match spec.scale {
            Scale::None => (0.0, 1.0),
            Scale::Robust => {
                let (lo, hi) = (col.clip_lower, col.clip_upper);
                let clip = move |v: f64| match (lo, hi) {
                    (Some(l), Some(h)) => transform(v).clamp(l, h),
                    _ => transform(v),
                };
                let q = [0.25, 0.5, 0.75].map(|q| sorted_filled.quantile(q, &clip));
                (q[1], q[2] - q[0])
            }
            Scale::ZScore | Scale::MinMax => {
                let v = prepared_expr(&col, false);
                let sql = format!("SELECT avg({v}) AS mean, stddev_pop({v}) AS sd, min({v}) AS lo, max({v}) AS hi FROM {}", quote(FEATURES));
                let b = collect(ctx, view, &sql).await?;
                let get = |c: &str| f64s(&b, c)[0];
                if spec.scale == Scale::ZScore { (get("mean"), get("sd")) } else { (get("lo"), get("hi") - get("lo")) }
            }
        };
        (col.center, col.scale) = (center, usable_scale(scale));
        columns.push(col);
    }
    for name in &spec.categorical {
        let sql = format!(
            "SELECT DISTINCT coalesce(CAST({} AS VARCHAR), {}) AS c FROM {} ORDER BY c",
            quote(name),
            text(NULL_CATEGORY),
            quote(FEATURES)
        );
        for cat in strings(&collect(ctx, view, &sql).await?, "c").into_iter().flatten() {
            columns.push(PrepColumn::one_hot(name, &cat));
        }
    }
    Ok(columns)
}

/// `nearest_centroid` and `centroid_distance` over the prepared columns.
fn assignment(columns: &[PrepColumn], centroids: &Array2<f64>) -> (String, String) {
    let rows: Vec<String> = centroids.rows().into_iter().map(|r| format!("[{}]", r.iter().map(|&v| num(v)).collect::<Vec<_>>().join(", "))).collect();
    let args = format!("[{}], {}", rows.join(", "), columns.iter().map(|c| prepared_expr(c, true)).collect::<Vec<_>>().join(", "));
    (format!("nearest_centroid({args})"), format!("centroid_distance({args})"))
}

/// The fit sample: about `fit_sample` customers by salted id hash, with their features.
async fn sample(s: &Session, spec: &SegmentationSpec, rows: usize) -> Result<(features::FeatureFrame, String), Error> {
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
struct Profiled {
    stats: Vec<SegmentStats>,
    overall: Vec<(f64, f64)>,
}

async fn profile(ctx: &SessionContext, spec: &SegmentationSpec, columns: &[PrepColumn], centroids: &Array2<f64>) -> Result<Profiled, Error> {
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

/// RFM quintile edges, value-tier cut-offs and lifecycle counts over the RFM view, and the
/// expressions that score a customer from them.
struct RfmPlan {
    /// `rfm_r`, `rfm_f`, `rfm_m`, `lifecycle_stage`, `value_tier` over the RFM view's columns.
    exprs: [String; 5],
    report: RfmReport,
}

/// `table` holds the RFM view's rows (the view itself, or a copy on disk).
async fn rfm_plan(ctx: &SessionContext, r: &RfmSpec, table: &str) -> Result<RfmPlan, Error> {
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

/// `customer_segments` as a plan: every customer assigned by the engine, `ids[i]` and
/// `names[i]` for centroid row `i`, with the RFM columns joined.
fn segments_sql(spec: &SegmentationSpec, columns: &[PrepColumn], centroids: &Array2<f64>, ids: &[i32], names: &[String], rfm: Option<(&RfmSpec, &RfmPlan, &str)>) -> String {
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

/// Per published segment id: customers by (lifecycle stage, value tier).
type Groups = HashMap<i32, Vec<(Option<String>, Option<String>, usize)>>;

/// Per published segment id: customers by (lifecycle stage, value tier), and the RFM counts,
/// from the staged `customer_segments`.
async fn staged_counts(ctx: &SessionContext, publisher: &Publisher) -> Result<(Groups, RfmCounts, usize), Error> {
    let seg = publisher.read_staged_as_published("customer_segments").await?.ok_or_else(|| not_staged("customer_segments"))?;
    ctx.register_table(CURRENT, seg.into_view()).map_err(|e| Error::query("customer_segments", e))?;
    let sql = format!(
        "SELECT segment_id, rfm_segment, lifecycle_stage, value_tier, count(*) AS n FROM {} GROUP BY segment_id, rfm_segment, lifecycle_stage, value_tier",
        quote(CURRENT)
    );
    let b = collect(ctx, "customer_segments", &sql).await?;
    let (id, rfm, stage, tier, n) = (i64s(&b, "segment_id"), strings(&b, "rfm_segment"), strings(&b, "lifecycle_stage"), strings(&b, "value_tier"), i64s(&b, "n"));
    let mut groups = Groups::new();
    let mut counts = RfmCounts::default();
    let mut missing = 0;
    for i in 0..n.len() {
        let k = n[i] as usize;
        groups.entry(id[i] as i32).or_default().push((stage[i].clone(), tier[i].clone(), k));
        let add = |by: &mut BTreeMap<String, usize>, v: &Option<String>| {
            if let Some(v) = v {
                *by.entry(v.clone()).or_insert(0) += k;
            }
        };
        add(&mut counts.rfm, &rfm[i]);
        add(&mut counts.lifecycle, &stage[i]);
        add(&mut counts.value, &tier[i]);
        missing += if stage[i].is_none() { k } else { 0 };
    }
    Ok((groups, counts, missing))
}

/// The dominant (lifecycle stage, value tier) of each profile, as `stats::dominant` picks it.
fn dominant_groups(seg: &Segmentation, groups: &Groups) -> Vec<(Option<Lifecycle>, Option<ValueTier>)> {
    let stage_of = |s: &str| Lifecycle::ALL.iter().copied().find(|l| l.as_str() == s);
    let tier_of = |s: &str| ValueTier::ALL.iter().copied().find(|t| t.as_str() == s);
    seg.profiles
        .iter()
        .map(|p| {
            let (mut stages, mut tiers) = (BTreeMap::new(), BTreeMap::new());
            for (s, t, n) in groups.get(&p.segment_id).into_iter().flatten() {
                if let Some(s) = s.as_deref().and_then(stage_of) {
                    *stages.entry(s).or_insert(0) += n;
                }
                if let Some(t) = t.as_deref().and_then(tier_of) {
                    *tiers.entry(t).or_insert(0) += n;
                }
            }
            (dominant_of_counts(stages), dominant_of_counts(tiers))
        })
        .collect()
}

/// Per profile, CLV totals over its customers with a CLV: the two staged tables joined on the
/// published id; and (segment, CLV) pairs of the customers whose hash is in the sample, for
/// the report's chart.
async fn clv_by_segment(ctx: &SessionContext, publisher: &Publisher, seg: &Segmentation, id: &str, sampled: &str) -> Result<(Vec<ClvTotals>, Vec<(i32, f64)>), Error> {
    let clv = publisher.read_staged_as_published("customer_clv").await?.ok_or_else(|| not_staged("customer_clv"))?;
    let table = "__segvalue_clv_staged";
    ctx.register_table(table, clv.into_view()).map_err(|e| Error::query("customer_clv", e))?;
    let join = format!("{} s JOIN {} c ON s.{id} = c.{id}", quote(CURRENT), quote(table), id = quote(id));
    // Summed as decimals: exact, so the totals do not depend on the order the engine adds
    // rows in (partitions, spilling under a cap); CLV to 1e-12 and P(alive) to 1e-18 each.
    let exact = |x: &str, scale: u8| format!("CAST(sum(CAST({x} AS DECIMAL(38, {scale}))) AS DOUBLE)");
    let sums = format!("{} AS clv, {} AS p", exact("c.clv", 12), exact("c.p_alive", 18));
    let b = collect(ctx, "customer_clv", &format!("SELECT s.segment_id, {sums}, count(c.clv) AS n FROM {join} GROUP BY s.segment_id")).await?;
    let (ids, clv_sum, p_sum, n) = (i64s(&b, "segment_id"), f64s(&b, "clv"), f64s(&b, "p"), i64s(&b, "n"));
    let totals = seg
        .profiles
        .iter()
        .map(|p| match ids.iter().position(|&i| i as i32 == p.segment_id) {
            Some(r) => (clv_sum[r], p_sum[r], n[r] as usize),
            None => (0.0, 0.0, 0),
        })
        .collect();
    let sampled = sampled.replace(&quote(id), &format!("s.{}", quote(id)));
    let b = collect(ctx, "customer_clv", &format!("SELECT s.segment_id, c.clv FROM {join} WHERE c.clv IS NOT NULL AND {sampled}")).await?;
    let pairs = i64s(&b, "segment_id").into_iter().map(|s| s as i32).zip(f64s(&b, "clv")).collect();
    ctx.deregister_table(table).map_err(|e| Error::query("customer_clv", e))?;
    Ok((totals, pairs))
}

/// `segment_transitions` by the engine: the previous run's published `customer_segments`
/// and this run's staged one, full-outer-joined on the published id per segmentation.
async fn transitions(s: &Session, publisher: &Publisher, id: &str, with_rfm: bool) -> Result<RecordBatch, Error> {
    let previous = history::previous_run(publisher, s.run_date).await?;
    let before = match previous {
        Some(d) => Some(publisher.published_frame("customer_segments", d).await?),
        None => None,
    };
    let had: Vec<String> = before.as_ref().map(|df| df.schema().fields().iter().map(|f| f.name().clone()).collect()).unwrap_or_default();
    if let Some(df) = before {
        s.ctx.register_table(PREVIOUS, df.into_view()).map_err(|e| Error::query("customer_segments", e))?;
    }
    let mut rows = Vec::new();
    for (kind, column) in history::TRANSITION_COLUMNS {
        if kind != "cluster" && !with_rfm {
            continue;
        }
        let side = |t: &str| format!("SELECT CAST({} AS VARCHAR) AS i, CAST({c} AS VARCHAR) AS l FROM {} WHERE {c} IS NOT NULL", quote(id), quote(t), c = quote(column));
        let sql = if had.iter().any(|c| c == column) && had.iter().any(|c| c == id) {
            format!("SELECT p.l AS f, c.l AS t, count(*) AS n FROM ({}) p FULL OUTER JOIN ({}) c ON p.i = c.i GROUP BY p.l, c.l", side(PREVIOUS), side(CURRENT))
        } else {
            format!("SELECT CAST(NULL AS VARCHAR) AS f, l AS t, count(*) AS n FROM ({}) c GROUP BY l", side(CURRENT))
        };
        let b = collect(&s.ctx, "customer_segments", &sql).await?;
        let pairs = strings(&b, "f").into_iter().zip(strings(&b, "t")).zip(i64s(&b, "n")).map(|((f, t), n)| (f, t, n as u64)).collect();
        rows.extend(segment::transitions::from_pair_counts(pairs).into_iter().map(|t| (kind, t)));
    }
    if previous.is_some() {
        s.ctx.deregister_table(PREVIOUS).map_err(|e| Error::query("customer_segments", e))?;
    }
    Ok(history::transitions_table(previous, rows))
}

pub(super) async fn segmentation_stage(
    s: &Session,
    spec: &SegmentationSpec,
    clv: Option<&ClvOutcome>,
    publisher: &mut Publisher,
    stages: &mut Stages,
    rows: u64,
) -> Result<Outcome, Error> {
    let ctx = &s.ctx;
    let q = |e| Error::query(format!("view '{}'", spec.view), e);
    let local = !s.job.engine.mode.is_distributed();
    // The queries below read the staged file, not the view (computed again for each of them,
    // or held in memory by its cache: let go now). Pseudonymised ids would not join the RFM
    // view, so then the view's own rows, on disk when the engine is embedded.
    let mut on_disk = Vec::new();
    match publisher.read_staged("customer_features").await? {
        Some(df) => ctx.register_table(FEATURES, df.into_view()).map(|_| ()).map_err(q)?,
        None if local => on_disk.push(materialize(ctx, ctx.table(spec.view.as_str()).await.map_err(q)?, FEATURES).await.map_err(q)?),
        None => ctx.register_table(FEATURES, ctx.table(spec.view.as_str()).await.map_err(q)?.into_view()).map(|_| ()).map_err(q)?,
    }
    crate::views::release(ctx, &spec.view).await;
    // The RFM view is read once per quantile column and by the plan of customer_segments.
    let rfm_table = match &s.job.rfm {
        Some(r) if local => {
            let t = Instant::now();
            let cols: Vec<String> = [r.id.as_str(), "recency_days", "frequency", "monetary", &r.age_column, &r.value_column].iter().map(|c| quote(c)).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
            let q = |e| Error::query(format!("view '{}'", r.view), e);
            let df = ctx.sql(&format!("SELECT {} FROM {}", cols.join(", "), quote(&r.view))).await.map_err(q)?;
            on_disk.push(materialize(ctx, df, RFM).await.map_err(q)?);
            stages.record("rfm_load", t, None, Some(on_disk.last().expect("pushed").rows as u64));
            RFM.to_string()
        }
        Some(r) => r.view.clone(),
        None => String::new(),
    };
    let out = engine_stage(s, spec, clv, publisher, stages, rows, &rfm_table).await;
    for table in [FEATURES, RFM, CURRENT] {
        let _ = ctx.deregister_table(table);
    }
    drop(on_disk);
    out
}

async fn engine_stage(
    s: &Session,
    spec: &SegmentationSpec,
    clv: Option<&ClvOutcome>,
    publisher: &mut Publisher,
    stages: &mut Stages,
    rows: u64,
    rfm_table: &str,
) -> Result<Outcome, Error> {
    let ctx = &s.ctx;
    let t = Instant::now();
    let pop = population(ctx, spec).await?;
    let model = history::find_model(publisher, s.run_date, spec.model_from).await?;
    let previous = model.as_ref().and_then(|m| m.segmentation.as_ref().map(|sg| (m.run_date, sg)));
    let saved = match spec.mode {
        ModelMode::Score => {
            let (date, saved) = previous.ok_or_else(|| history::missing("segmentation", publisher, s.run_date, spec.model_from))?;
            Some((date, saved.fitted(date, &spec.features, &spec.categorical)?))
        }
        ModelMode::Refit => None,
    };
    let columns = match &saved {
        Some((_, fitted)) => {
            // A column the saved preparation does not impute must have no NULLs.
            for (j, f) in spec.features.iter().enumerate() {
                let nulls = pop.rows - pop.present[j];
                if nulls > 0 && fitted.columns.iter().any(|c| &c.source == f && c.category.is_none() && c.fill_value.is_none()) {
                    return Err(SegmentError::Nulls { view: spec.view.clone(), column: f.clone(), count: nulls }.into());
                }
            }
            fitted.columns.clone()
        }
        None => fit_preparation(ctx, spec, &pop).await?,
    };
    let (frame, sampled) = sample(s, spec, pop.rows).await?;
    stages.record("load_features", t, Some(rows), Some(frame.x.nrows() as u64));

    let t = Instant::now();
    let z = segment::prep::apply(&spec.view, &spec.features, &frame.x, &spec.categorical, &frame.categorical, &columns)?;
    tracing::info!(rows = pop.rows, fit_rows = z.nrows(), "fitting the clustering on a sample; the engine assigns every customer");
    let (centroids, labels, k_selection, n_iter, relocated) = match &saved {
        Some((_, fitted)) => {
            let model = segment::KMeansModel { centroids: fitted.centroids.clone(), inertia: 0.0, n_iter: 0, relocated: 0 };
            (fitted.centroids.clone(), model.assign(z.view()).0.to_vec(), Vec::new(), 0, 0)
        }
        None => {
            let fit = segment::fit_sample(z.view(), spec)?;
            (fit.centroids, fit.labels, fit.k_selection, fit.n_iter, fit.relocated)
        }
    };
    let profiled = profile(ctx, spec, &columns, &centroids).await?;
    let k = centroids.nrows();
    // Refits number segments by size over every customer; a saved model keeps its rows.
    let order: Vec<usize> = match saved {
        Some(_) => (0..k).collect(),
        None => size_order(&profiled.stats.iter().map(|s| s.customers).collect::<Vec<_>>(), &centroids),
    };
    let mut new_id = vec![0usize; k];
    for (new, &old) in order.iter().enumerate() {
        new_id[old] = new;
    }
    let mut stats: Vec<Option<SegmentStats>> = profiled.stats.into_iter().map(Some).collect();
    let ordered_stats = order
        .iter()
        .enumerate()
        .map(|(new, &old)| SegmentStats { segment_id: new as i32, ..stats[old].take().expect("each cluster once") })
        .collect();
    let profiles = named_profiles(ordered_stats, &profiled.overall, pop.rows, spec);
    let ordered = centroids.select(Axis(0), &order);
    let mut seg = Segmentation {
        columns,
        k,
        // The sample's rows: the charts, drift and saved bins read them.
        segment: labels.iter().map(|&l| new_id[l] as i32).collect(),
        distance: z
            .axis_iter(Axis(0))
            .zip(&labels)
            .map(|(row, &l)| Some(row.iter().zip(centroids.row(l)).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt()))
            .collect(),
        centroids: ordered,
        k_selection,
        profiles,
        n_iter,
        relocated,
        fit_rows: if saved.is_some() { 0 } else { z.nrows() },
    };
    let model_use = match (&saved, previous) {
        (Some((date, fitted)), _) => {
            seg.relabel(&fitted.ids, Some(&fitted.names));
            Some(ModelUse { mode: "score", model_run_date: Some(*date), matched: fitted.ids.clone(), fresh: Vec::new(), vanished: Vec::new() })
        }
        (None, Some((date, prev))) if spec.align_ids => history::align_ids(prev, date, &mut seg)?,
        _ => None,
    };
    let drift = previous.map(|(_, saved)| history::drift(saved, &spec.features, &frame.x, &seg, spec.drift_warn_psi));
    log_outcome(&seg, model_use.as_ref(), spec.mode);
    stages.record("segment", t, Some(pop.rows as u64), Some(seg.k as u64));

    let t = Instant::now();
    let rfm = match &s.job.rfm {
        Some(r) => Some((r, rfm_plan(ctx, r, rfm_table).await?)),
        None => None,
    };
    if let Some((_, plan)) = &rfm {
        stages.record("rfm", t, Some(plan.report.customers as u64), None);
    }

    let t = Instant::now();
    // Centroid row i (fitted numbering) is profile new_id[i], which carries its final id and name.
    let ids: Vec<i32> = (0..k).map(|i| seg.profiles[new_id[i]].segment_id).collect();
    let names: Vec<String> = (0..k).map(|i| seg.profiles[new_id[i]].name.clone()).collect();
    let sql = segments_sql(spec, &seg.columns, &centroids, &ids, &names, rfm.as_ref().map(|(r, p)| (*r, p, rfm_table)));
    let df = ctx.sql(&sql).await.map_err(|e| Error::query("customer_segments", e))?;
    let mut out = publisher.stage("customer_segments", df, std::slice::from_ref(&spec.id)).await?;
    let (groups, counts, missing) = staged_counts(ctx, publisher).await?;
    if let Some((r, _)) = &rfm
        && missing > 0
    {
        tracing::warn!(view = %r.view, missing, "customers of the segmentation are missing from the RFM view");
    }
    let actions = actions_for(&seg.profiles, &dominant_groups(&seg, &groups), &s.job.actions);
    let transitions = transitions(s, publisher, &spec.id, rfm.is_some()).await?;
    out += publisher
        .stage_batch("segment_transitions", transitions, &["segmentation".into(), "from_segment".into(), "to_segment".into()])
        .await?;
    let (totals, pairs) = match clv {
        Some(_) => {
            let (t, p) = clv_by_segment(ctx, publisher, &seg, &spec.id, &sampled).await?;
            (Some(t), Some(p))
        }
        None => (None, None),
    };
    let summary = summary_batch(&spec.features, &seg, &actions, totals.as_deref());
    let rules = rules(&frame.x, &seg)?;
    let charts = super::report::segmentation_charts(&spec.features, &frame.x, &seg, pairs.as_deref(), &rules);
    out += publisher.stage_batch("segment_summary", summary, &["segment_id".into()]).await?;
    out += publisher.stage_batch("segmentation_k_selection", k_selection_batch(&seg), &["k".into()]).await?;
    out += publisher.stage_batch("segmentation_prep", prep_batch(&seg.columns), &["column".into()]).await?;
    out += stage_actions(publisher, &seg, &actions, rfm.as_ref().map(|_| &counts), &s.job.actions).await?;
    out += stage_rules(publisher, spec, &seg, &rules).await?;
    stages.record("segment_tables", t, None, Some(out));

    let (trained_on, reference) = match (spec.mode, previous) {
        (ModelMode::Score, Some((_, saved))) => (saved.trained_on, Some(saved)),
        _ => (s.run_date, None),
    };
    let saved_model = history::saved_segmentation(spec, &seg, &actions, &frame.x, trained_on, reference);
    let report = report(spec, &seg, pop.rows, rfm.map(|(_, p)| p.report), model_use, drift);
    Ok((report, charts, saved_model))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn number_literals_plan_back_to_the_same_bits() {
        let ctx = SessionContext::new();
        let values = [0.1, -3.3333333333333335, 1e-300, 5e-324, 1.7976931348623157e308, -0.0, 123456789.125, 2.0f64.sqrt()];
        let list: Vec<String> = values.iter().map(|&v| format!("{} AS v{}", num(v), values.iter().position(|&w| w.to_bits() == v.to_bits()).unwrap())).collect();
        let b = ctx.sql(&format!("SELECT {}", list.join(", "))).await.unwrap().collect().await.unwrap();
        for (i, v) in values.iter().enumerate() {
            assert_eq!(f64s(&b, &format!("v{i}"))[0].to_bits(), v.to_bits(), "{v:?}");
        }
    }
}
