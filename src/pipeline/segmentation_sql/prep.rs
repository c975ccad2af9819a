//! The preparation (fills, log1p, clip bounds, scales) fitted over every customer by the
//! engine, and the prepared columns as SQL expressions.

use datafusion::execution::context::SessionContext;

use super::order_stats::{OrderStats, checked_columns, checked_counts};
use super::sql::{FEATURES, category, f64s, i64s, num, strings, text};
use crate::error::Error;
use crate::pipeline::query::{collect, first_duplicate};
use crate::quality::quote;
use crate::segment::prep::{PrepColumn, usable_scale};
use crate::segment::spec::{Impute, Scale};
use crate::segment::{SegmentError, SegmentationSpec};


/// One aggregate over the segmentation view: rows and, per numeric feature, non-NULL values,
/// their mean, and values at or below -1 (no finite log1p); every row checked.
pub(super) struct Population {
    pub(super) rows: usize,
    pub(super) present: Vec<usize>,
    pub(super) means: Vec<f64>,
    pub(super) at_most_minus_one: Vec<usize>,
}

pub(super) async fn population(ctx: &SessionContext, spec: &SegmentationSpec) -> Result<Population, Error> {
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
pub(super) fn prepared_expr(c: &PrepColumn, scaled: bool) -> String {
    let x = quote(&c.source);
    if let Some(cat) = &c.category {
        return format!("CASE WHEN {} = {} THEN 1.0 ELSE 0.0 END", category(&c.source), text(cat));
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
pub(super) async fn fit_preparation(ctx: &SessionContext, spec: &SegmentationSpec, pop: &Population) -> Result<Vec<PrepColumn>, Error> {
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
        let sql = format!("SELECT DISTINCT {} AS c FROM {} ORDER BY c", category(name), quote(FEATURES));
        for cat in strings(&collect(ctx, view, &sql).await?, "c").into_iter().flatten() {
            columns.push(PrepColumn::one_hot(name, &cat));
        }
    }
    Ok(columns)
}
