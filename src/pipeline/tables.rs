//! Arrow record batches for the tables the model stages publish.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};

use std::collections::{BTreeMap, HashMap};

use super::rows::{ActionRow, RfmColumns};
use crate::clv::{ClvModels, Coverage, Holdout, Selection};
use crate::segment::prep::PrepColumn;
use crate::segment::profile::SegmentAction;
use crate::segment::rfm;
use crate::segment::rules::SegmentRule;
use crate::segment::{KScore, Segmentation, SegmentationSpec};
use crate::stats::dominant_of_counts;

fn f64_col(v: impl IntoIterator<Item = f64>) -> ArrayRef {
    Arc::new(Float64Array::from_iter_values(v))
}

fn batch(fields: Vec<Field>, cols: Vec<ArrayRef>) -> RecordBatch {
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).expect("columns match the schema")
}

pub(super) fn segments_batch(
    spec: &SegmentationSpec,
    ids: &ArrayRef,
    seg: &Segmentation,
    rfm: Option<&RfmColumns<'_>>,
) -> RecordBatch {
    let n = seg.segment.len();
    let names: HashMap<i32, &str> = seg.profiles.iter().map(|p| (p.segment_id, p.name.as_str())).collect();
    let score = |v: Option<&Vec<Option<u8>>>| -> ArrayRef {
        Arc::new(Int32Array::from_iter((0..n).map(|i| v.and_then(|v| v[i]).map(i32::from))))
    };
    let text = |f: &dyn Fn(usize) -> Option<String>| -> ArrayRef { Arc::new(StringArray::from_iter((0..n).map(f))) };
    let cell = |i: usize| rfm.and_then(|r| Some(rfm::rfm_cell(r.r[i]?, r.f[i]?, r.m[i]?)));
    batch(
        vec![
            Field::new(&spec.id, ids.data_type().clone(), false),
            Field::new("segment_id", DataType::Int32, false),
            Field::new("segment_name", DataType::Utf8, false),
            Field::new("distance_to_centroid", DataType::Float64, true),
            Field::new("rfm_r", DataType::Int32, true),
            Field::new("rfm_f", DataType::Int32, true),
            Field::new("rfm_m", DataType::Int32, true),
            Field::new("rfm_cell", DataType::Utf8, true),
            Field::new("rfm_segment", DataType::Utf8, true),
            Field::new("lifecycle_stage", DataType::Utf8, true),
            Field::new("value_tier", DataType::Utf8, true),
        ],
        vec![
            ids.clone(),
            Arc::new(Int32Array::from_iter_values(seg.segment.iter().copied())),
            Arc::new(StringArray::from_iter_values(seg.segment.iter().map(|s| names.get(s).copied().unwrap_or("")))),
            Arc::new(Float64Array::from_iter(seg.distance.iter().copied())),
            score(rfm.map(|r| &r.r)),
            score(rfm.map(|r| &r.f)),
            score(rfm.map(|r| &r.m)),
            text(&cell),
            text(&|i| rfm.and_then(|r| r.segment[i]).map(str::to_string)),
            text(&|i| rfm.and_then(|r| r.stage[i]).map(|s| s.as_str().to_string())),
            text(&|i| rfm.and_then(|r| r.tier[i]).map(|t| t.as_str().to_string())),
        ],
    )
}

/// A profiled categorical column: its name and, per profile, (value, customers) by value.
pub(super) type CategoryCounts = (String, Vec<Vec<(String, usize)>>);

/// The most common value (as [`dominant_of_counts`] picks it: ties to the first by value) and
/// its share of the counted customers.
pub(super) fn top_share(counts: &[(String, usize)]) -> Option<(&str, f64)> {
    let by_value: BTreeMap<&str, usize> = counts.iter().map(|(v, n)| (v.as_str(), *n)).collect();
    let total: usize = by_value.values().sum();
    let top = dominant_of_counts(by_value.clone())?;
    Some((top, by_value[top] as f64 / total as f64))
}

/// `segment_summary`; with CLV, `clv[i]` holds profile `i`'s (total CLV, total P(alive),
/// customers with a CLV).
pub(super) fn summary_batch(
    features: &[String],
    seg: &Segmentation,
    actions: &[SegmentAction],
    clv: Option<&[ClvTotals]>,
    categories: &[CategoryCounts],
) -> RecordBatch {
    let profiles = &seg.profiles;
    let nullable_f64 = |v: Vec<f64>| -> ArrayRef { Arc::new(Float64Array::from_iter(v.into_iter().map(|x| Some(x).filter(|x| x.is_finite())))) };
    let mut fields = vec![
        Field::new("segment_id", DataType::Int32, false),
        Field::new("segment_name", DataType::Utf8, false),
        Field::new("customers", DataType::Int64, false),
        Field::new("share", DataType::Float64, false),
    ];
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from_iter_values(profiles.iter().map(|p| p.segment_id))),
        Arc::new(StringArray::from_iter_values(profiles.iter().map(|p| p.name.as_str()))),
        Arc::new(Int64Array::from_iter_values(profiles.iter().map(|p| p.customers as i64))),
        f64_col(profiles.iter().map(|p| p.share)),
    ];
    for (j, name) in features.iter().enumerate() {
        fields.push(Field::new(format!("mean_{name}"), DataType::Float64, true));
        cols.push(nullable_f64(profiles.iter().map(|p| p.means[j]).collect()));
        fields.push(Field::new(format!("median_{name}"), DataType::Float64, true));
        cols.push(nullable_f64(profiles.iter().map(|p| p.medians[j]).collect()));
    }
    for (column, per_profile) in categories {
        // The most common value, its share, and every value's share as a JSON object that a BI
        // tool or DuckDB's json functions can read.
        let mut top = Vec::new();
        let mut top_shares = Vec::new();
        let mut shares = Vec::new();
        for counts in per_profile {
            let total: usize = counts.iter().map(|(_, n)| n).sum();
            let best = top_share(counts);
            top.push(best.map(|b| b.0.to_string()));
            top_shares.push(best.map_or(f64::NAN, |b| b.1));
            let object: serde_json::Map<String, serde_json::Value> = counts.iter().map(|(v, n)| (v.clone(), (*n as f64 / total as f64).into())).collect();
            shares.push(serde_json::Value::Object(object).to_string());
        }
        fields.push(Field::new(format!("top_{column}"), DataType::Utf8, true));
        cols.push(Arc::new(StringArray::from(top)));
        fields.push(Field::new(format!("top_{column}_share"), DataType::Float64, true));
        cols.push(nullable_f64(top_shares));
        fields.push(Field::new(format!("{column}_shares"), DataType::Utf8, false));
        cols.push(Arc::new(StringArray::from(shares)));
    }
    fields.push(Field::new("lifecycle_stage", DataType::Utf8, true));
    cols.push(Arc::new(StringArray::from_iter(actions.iter().map(|a| a.stage.map(|s| s.as_str())))));
    fields.push(Field::new("value_tier", DataType::Utf8, true));
    cols.push(Arc::new(StringArray::from_iter(actions.iter().map(|a| a.tier.map(|t| t.as_str())))));
    if let Some(acc) = clv {
        let mean = |sum: f64, n: usize| if n > 0 { Some(sum / n as f64) } else { None };
        fields.push(Field::new("total_clv", DataType::Float64, false));
        cols.push(f64_col(acc.iter().map(|a| a.0)));
        fields.push(Field::new("mean_clv", DataType::Float64, true));
        cols.push(Arc::new(Float64Array::from_iter(acc.iter().map(|a| mean(a.0, a.2)))));
        fields.push(Field::new("mean_p_alive", DataType::Float64, true));
        cols.push(Arc::new(Float64Array::from_iter(acc.iter().map(|a| mean(a.1, a.2)))));
    }
    fields.push(Field::new("recommended_action", DataType::Utf8, true));
    cols.push(Arc::new(StringArray::from_iter(actions.iter().map(|a| a.action.as_deref()))));
    batch(fields, cols)
}

/// A segment's CLV totals: (sum of CLV, sum of P(alive), customers with a CLV).
pub(super) type ClvTotals = (f64, f64, usize);

/// [`ClvTotals`] per profile from each customer's (clv, p_alive) in matrix row order (None for
/// customers the CLV summary does not have).
pub(super) fn clv_totals(seg: &Segmentation, clv: &[Option<(f64, f64)>]) -> Vec<ClvTotals> {
    let pos: HashMap<i32, usize> = seg.profiles.iter().enumerate().map(|(i, p)| (p.segment_id, i)).collect();
    let mut acc = vec![(0.0, 0.0, 0usize); seg.profiles.len()];
    for (row, v) in clv.iter().enumerate() {
        if let Some((c, p)) = v {
            let a = &mut acc[pos[&seg.segment[row]]];
            a.0 += c;
            a.1 += p;
            a.2 += 1;
        }
    }
    acc
}

/// `clv_model`: one row per fitted parameter.
pub(super) fn clv_model_batch(r: &ClvModels) -> RecordBatch {
    let (b, g) = (r.bgnbd.params, r.gamma_gamma.params);
    let m = b.model().as_str();
    let (std_errors, covariance) = match r.bgnbd.laplace() {
        Some(l) => (l.std_errors().map(Some), l.covariance.map(|row| row.map(Some))),
        None => ([None; 4], [[None; 4]; 4]),
    };
    let fit = &r.bgnbd;
    let mut rows: Vec<(&str, String, f64, f64, usize, u64, Option<f64>, [Option<f64>; 4])> = b
        .named()
        .into_iter()
        .enumerate()
        .map(|(i, (name, v))| (m, name.to_string(), v, fit.log_likelihood, fit.customers, fit.iterations, std_errors[i], covariance[i]))
        .collect();
    // With covariates, a row per coefficient: its value, standard error and covariance with
    // the log-parameters (the coefficients' own covariances are in the saved model).
    if let Some(e) = &r.effects {
        let (joint, se) = (e.covariance.as_ref(), e.std_errors());
        rows.extend(e.coefficients.iter().enumerate().map(|(k, c)| {
            let se = se.as_ref().map(|se| se[k]);
            let cov: [Option<f64>; 4] = std::array::from_fn(|i| joint.map(|j| j[[4 + k, i]]));
            (m, c.name.clone(), c.value, fit.log_likelihood, fit.customers, fit.iterations, se, cov)
        }));
    }
    let gg = &r.gamma_gamma;
    rows.extend([("p", g.p), ("q", g.q), ("gamma", g.gamma)].map(|(name, v)| ("gamma_gamma", name.to_string(), v, gg.log_likelihood, gg.customers, gg.iterations, None, [None; 4])));
    let mut fields = vec![
        Field::new("model", DataType::Utf8, false),
        Field::new("parameter", DataType::Utf8, false),
        Field::new("value", DataType::Float64, false),
        Field::new("log_likelihood", DataType::Float64, false),
        Field::new("customers", DataType::Int64, false),
        // A fit that does not converge stops the run, so a published row always has true.
        Field::new("converged", DataType::Boolean, false),
        Field::new("iterations", DataType::Int64, false),
        Field::new("std_error", DataType::Float64, true),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1.as_str()))),
        f64_col(rows.iter().map(|r| r.2)),
        f64_col(rows.iter().map(|r| r.3)),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.4 as i64))),
        Arc::new(BooleanArray::from_iter(rows.iter().map(|_| Some(true)))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.5 as i64))),
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.6))),
    ];
    // The purchase model's Laplace covariance of its log-parameters, row i column j (the
    // `c_ij` the `*_purchases_quantile` SQL functions take).
    for j in 0..4 {
        fields.push(Field::new(format!("log_cov_{}", j + 1), DataType::Float64, true));
        columns.push(Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.7[j]))));
    }
    batch(fields, columns)
}

/// `clv_model_selection`: per candidate and backtest cut-off its `mae`, `total_error` and
/// `log_likelihood`, then per candidate (cut-off NULL) the `mean_mae` and
/// `mean_abs_total_error` the choice ranks; `chosen` on every row of the chosen model.
pub(super) fn selection_batch(s: &Selection<chrono::NaiveDate>) -> RecordBatch {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    let mut rows: Vec<(&'static str, Option<i32>, &'static str, f64)> = Vec::new();
    for f in &s.scores {
        let day = Some((f.cutoff - epoch).num_days() as i32);
        rows.extend([(f.model.as_str(), day, "mae", f.mae), (f.model.as_str(), day, "total_error", f.total_error), (f.model.as_str(), day, "log_likelihood", f.log_likelihood)]);
    }
    for model in crate::clv::PurchaseModel::ALL {
        if let Some((mae, total)) = s.means(model) {
            rows.extend([(model.as_str(), None, "mean_mae", mae), (model.as_str(), None, "mean_abs_total_error", total)]);
        }
    }
    batch(
        vec![
            Field::new("model", DataType::Utf8, false),
            Field::new("cutoff", DataType::Date32, true),
            Field::new("metric", DataType::Utf8, false),
            Field::new("value", DataType::Float64, false),
            Field::new("chosen", DataType::Boolean, false),
        ],
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Date32Array::from_iter(rows.iter().map(|r| r.1))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
            f64_col(rows.iter().map(|r| r.3)),
            Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(r.0 == s.chosen.as_str())))),
        ],
    )
}

/// `clv_holdout_tracking`: cumulative actual and expected repeat purchases from the
/// calibration end, week by week through the holdout.
pub(super) fn tracking_batch(points: &[crate::clv::TrackingPoint]) -> RecordBatch {
    batch(
        vec![
            Field::new("days", DataType::Int32, false),
            Field::new("actual_cumulative", DataType::Float64, false),
            Field::new("expected_cumulative", DataType::Float64, false),
        ],
        vec![
            Arc::new(Int32Array::from_iter_values(points.iter().map(|p| p.days as i32))),
            f64_col(points.iter().map(|p| p.actual_cumulative)),
            f64_col(points.iter().map(|p| p.expected_cumulative)),
        ],
    )
}

/// `clv_validation`: one row per calibration-frequency bucket, then `all`: mean actual and
/// predicted holdout purchases, and how often the holdout's purchases fall in the 80 %
/// intervals (`interval_coverage`) and their randomised PIT in [0.1, 0.9] (`pit_coverage`,
/// 0.8 when calibrated).
pub(super) fn validation_batch(check: &Holdout, coverage: &Coverage) -> RecordBatch {
    let n = check.customers.max(1) as f64;
    let mut rows: Vec<(&str, usize, f64, f64, f64, f64)> = check
        .buckets
        .iter()
        .map(|r| {
            let (_, interval, pit) = coverage.buckets.iter().find(|c| c.0 == r.bucket).cloned().unwrap_or_default();
            (r.bucket.as_str(), r.customers, r.actual_holdout, r.predicted_holdout, interval, pit)
        })
        .collect();
    rows.push(("all", check.customers as usize, check.total_actual / n, check.total_predicted / n, coverage.interval, coverage.pit));
    batch(
        vec![
            Field::new("bucket", DataType::Utf8, false),
            Field::new("customers", DataType::Int64, false),
            Field::new("actual_holdout", DataType::Float64, false),
            Field::new("predicted_holdout", DataType::Float64, false),
            Field::new("interval_coverage", DataType::Float64, false),
            Field::new("pit_coverage", DataType::Float64, false),
        ],
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1 as i64))),
            f64_col(rows.iter().map(|r| r.2)),
            f64_col(rows.iter().map(|r| r.3)),
            f64_col(rows.iter().map(|r| r.4)),
            f64_col(rows.iter().map(|r| r.5)),
        ],
    )
}

pub(super) fn k_selection_batch(seg: &Segmentation) -> RecordBatch {
    let rows = &seg.k_selection;
    let metric = |f: &dyn Fn(&KScore) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| Some(f(r)).filter(|v| v.is_finite()))))
    };
    batch(
        vec![
            Field::new("k", DataType::Int32, false),
            Field::new("inertia", DataType::Float64, false),
            Field::new("silhouette", DataType::Float64, true),
            Field::new("calinski_harabasz", DataType::Float64, true),
            Field::new("davies_bouldin", DataType::Float64, true),
            Field::new("stability", DataType::Float64, true),
            Field::new("min_segment_share", DataType::Float64, true),
            Field::new("chosen", DataType::Boolean, false),
        ],
        vec![
            Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.k as i32))),
            f64_col(rows.iter().map(|r| r.inertia)),
            metric(&|r| r.silhouette),
            metric(&|r| r.calinski_harabasz),
            metric(&|r| r.davies_bouldin),
            metric(&|r| r.stability),
            metric(&|r| r.min_segment_share),
            Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(r.chosen)))),
        ],
    )
}

/// `segmentation_prep`: one row per prepared column with every fitted number.
pub(super) fn prep_batch(columns: &[PrepColumn]) -> RecordBatch {
    let opt = |f: &dyn Fn(&PrepColumn) -> Option<f64>| -> ArrayRef { Arc::new(Float64Array::from_iter(columns.iter().map(f))) };
    batch(
        vec![
            Field::new("column", DataType::Utf8, false),
            Field::new("source_column", DataType::Utf8, false),
            Field::new("category", DataType::Utf8, true),
            Field::new("impute", DataType::Utf8, false),
            Field::new("fill_value", DataType::Float64, true),
            Field::new("nulls_filled", DataType::Int64, false),
            Field::new("transform", DataType::Utf8, false),
            Field::new("clip_lower", DataType::Float64, true),
            Field::new("clip_upper", DataType::Float64, true),
            Field::new("center", DataType::Float64, false),
            Field::new("scale", DataType::Float64, false),
        ],
        vec![
            Arc::new(StringArray::from_iter_values(columns.iter().map(|c| c.column.as_str()))),
            Arc::new(StringArray::from_iter_values(columns.iter().map(|c| c.source.as_str()))),
            Arc::new(StringArray::from_iter(columns.iter().map(|c| c.category.as_deref()))),
            Arc::new(StringArray::from_iter_values(columns.iter().map(|c| c.impute))),
            opt(&|c| c.fill_value),
            Arc::new(Int64Array::from_iter_values(columns.iter().map(|c| c.nulls_filled as i64))),
            Arc::new(StringArray::from_iter_values(columns.iter().map(|c| if c.log1p { "log1p" } else { "none" }))),
            opt(&|c| c.clip_lower),
            opt(&|c| c.clip_upper),
            f64_col(columns.iter().map(|c| c.center)),
            f64_col(columns.iter().map(|c| c.scale)),
        ],
    )
}

/// `segment_actions`: segment → recommended action, for every segmentation.
pub(super) fn segment_actions_batch(rows: &[ActionRow]) -> RecordBatch {
    batch(
        vec![
            Field::new("segmentation", DataType::Utf8, false),
            Field::new("segment", DataType::Utf8, false),
            Field::new("customers", DataType::Int64, false),
            Field::new("action_key", DataType::Utf8, true),
            Field::new("recommended_action", DataType::Utf8, true),
        ],
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.segmentation))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.segment.as_str()))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.customers as i64))),
            Arc::new(StringArray::from_iter(rows.iter().map(|r| r.key.map(|k| k.as_str())))),
            Arc::new(StringArray::from_iter(rows.iter().map(|r| r.action.as_deref()))),
        ],
    )
}

/// `segment_rules`: one readable rule per segment with its precision and coverage.
pub(super) fn segment_rules_batch(features: &[String], seg: &Segmentation, rules: &[SegmentRule]) -> RecordBatch {
    let name = |id: i32| seg.profiles.iter().find(|p| p.segment_id == id).map(|p| p.name.clone()).unwrap_or_default();
    batch(
        vec![
            Field::new("segment_id", DataType::Int32, false),
            Field::new("segment_name", DataType::Utf8, false),
            Field::new("rule", DataType::Utf8, false),
            Field::new("conditions", DataType::Int32, false),
            Field::new("precision", DataType::Float64, true),
            Field::new("coverage", DataType::Float64, true),
            Field::new("customers_matching", DataType::Int64, false),
            Field::new("customers_measured", DataType::Int64, false),
        ],
        vec![
            Arc::new(Int32Array::from_iter_values(rules.iter().map(|r| r.segment_id))),
            Arc::new(StringArray::from_iter_values(rules.iter().map(|r| name(r.segment_id)))),
            Arc::new(StringArray::from_iter_values(rules.iter().map(|r| r.text(features)))),
            Arc::new(Int32Array::from_iter_values(rules.iter().map(|r| r.conditions.len() as i32))),
            Arc::new(Float64Array::from_iter(rules.iter().map(|r| Some(r.precision).filter(|v| v.is_finite())))),
            Arc::new(Float64Array::from_iter(rules.iter().map(|r| Some(r.coverage).filter(|v| v.is_finite())))),
            Arc::new(Int64Array::from_iter_values(rules.iter().map(|r| r.matching as i64))),
            Arc::new(Int64Array::from_iter_values(rules.iter().map(|r| r.rows as i64))),
        ],
    )
}
