//! Exact order statistics and row checks, computed by the engine: the driver fetches only
//! the rows each quantile reads.

use std::collections::{BTreeMap, HashMap};

use datafusion::arrow::array::RecordBatch;
use datafusion::execution::context::SessionContext;

use super::sql::{f64s, i64s};
use crate::error::Error;
use crate::features::FeatureError;
use crate::pipeline::query::{collect, non_finite_count};
use crate::quality::quote;
use crate::stats::{lerp, quantile_positions};


/// Exact order statistics: the values of `expr` (NULLs left out) at 0-based ascending
/// positions, per group of `group` (an integer expression; `None` for one group).
pub(super) struct OrderStats<'a> {
    pub(super) ctx: &'a SessionContext,
    /// The view named in errors, and the table the query reads.
    pub(super) view: &'a str,
    pub(super) table: &'a str,
}

impl OrderStats<'_> {
    /// `groups[g]` = (non-NULL values in group g, the positions wanted in it); every group
    /// with values must be listed, in ascending g, as the sort places them.
    pub(super) async fn at(&self, expr: &str, group: Option<&str>, groups: &BTreeMap<i64, (usize, Vec<usize>)>) -> Result<HashMap<(i64, usize), f64>, Error> {
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
    pub(super) async fn fetch(&self, expr: &str, n: usize, qs: &[f64]) -> Result<Fetched, Error> {
        let mut one = self.fetch_groups(expr, None, &BTreeMap::from([(0, n)]), qs).await?;
        Ok(one.remove(&0).expect("group 0 asked"))
    }

    /// [`Self::fetch`] per group of `group`, in one sort: `sizes[g]` is group g's number of
    /// non-NULL values (every group that has any).
    pub(super) async fn fetch_groups(&self, expr: &str, group: Option<&str>, sizes: &BTreeMap<i64, usize>, qs: &[f64]) -> Result<BTreeMap<i64, Fetched>, Error> {
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
pub(super) struct Fetched {
    n: usize,
    values: HashMap<usize, f64>,
}

impl Fetched {
    /// The `q`-quantile as [`crate::stats::quantile`] computes it from the sorted values, after
    /// mapping the fetched values by `f` (non-decreasing, so it commutes with the sort).
    pub(super) fn quantile(&self, q: f64, f: &dyn Fn(f64) -> f64) -> f64 {
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
pub(super) fn checked_columns(id: &str, columns: &[&str]) -> Vec<String> {
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
pub(super) fn checked_counts(view: &str, id: &str, columns: &[&str], b: &[RecordBatch], nulls_allowed: bool) -> Result<(usize, Vec<usize>), Error> {
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
