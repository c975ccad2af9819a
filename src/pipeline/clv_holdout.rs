//! The CLV holdout and the backtest on it: customers' summaries as of a calibration end and
//! their purchases after it ([`holdout_tuples`]), the holdout check (`clv_validation`) and,
//! for `model = "auto"`, the rolling-origin backtest that chooses the purchase model
//! (`clv_model_selection`).

use std::time::Instant;

use datafusion::arrow::array::StringArray;
use datafusion::execution::context::SessionContext;

use super::clv_sql::{self, CALIBRATION_COLUMNS};
use super::ids::{id_array, id_index};
use super::manifest::{HoldoutReport, SelectionReport, Stages};
use super::session::{Open, SUMMARY_COLUMNS, Session, open_with};
use super::tables::{selection_batch, tracking_batch, validation_batch};
use crate::clv::{self, ClvSpec, Group, HoldoutTuple, PurchaseModel, Summary};
use crate::error::Error;
use crate::features;
use crate::publish::Publisher;

/// A summary view collected on the driver: only for a holdout whose view has no `cal_*`
/// columns (the calibration summary then comes from a second session).
struct Loaded {
    ids: StringArray,
    summary: Summary,
    /// Each customer's covariates (`[clv] covariates`; empty without them).
    covariates: Vec<Vec<f64>>,
}

async fn load_summary(ctx: &SessionContext, spec: &ClvSpec) -> Result<Loaded, Error> {
    let mut cols: Vec<String> = SUMMARY_COLUMNS.map(String::from).into();
    cols.extend(spec.covariates.columns());
    let f = features::load_frame(ctx, &spec.view, &spec.id, &cols, &[]).await?;
    if let Some(j) = f.nulls.iter().position(|&c| c > 0) {
        return Err(features::FeatureError::Nulls { view: spec.view.clone(), column: cols[j].clone(), count: f.nulls[j] }.into());
    }
    let col = |j: usize| f.x.column(j).to_vec();
    let summary = Summary {
        frequency: col(0),
        recency: col(1),
        tenure: col(2),
        monetary_value: col(3),
    };
    let ids = id_array(&f.ids)?;
    summary.check(spec.model.discrete(), &|i| ids.value(i).to_string()).map_err(|e| match e {
        clv::ClvError::Input(msg) => clv::ClvError::Input(format!("view '{}': {msg}", spec.view)),
        other => other,
    })?;
    let covariates = (0..f.x.nrows()).map(|i| f.x.row(i).iter().skip(SUMMARY_COLUMNS.len()).copied().collect()).collect();
    Ok(Loaded { ids, summary, covariates })
}

/// Whether the summary view carries every [`CALIBRATION_COLUMNS`] column (from the schema
/// the session planned it with).
pub(super) fn has_calibration(s: &Session, view: &str) -> Result<bool, Error> {
    let schema = &crate::views::find(&s.views, view)?.schema;
    Ok(CALIBRATION_COLUMNS.iter().all(|c| schema.field_with_name(c).is_ok()))
}

/// Fits the purchase model on data up to `run_date − days` and compares predicted with actual
/// repeat purchases in the last `days` days, for the customers known at the calibration end
/// ([`holdout_tuples`]); with `[clv] tracking`, week by week too.
pub(super) async fn holdout_stage(
    s: &Session,
    spec: &ClvSpec,
    days: u32,
    calibration: Option<Vec<Group<HoldoutTuple>>>,
    publisher: &mut Publisher,
    stages: &mut Stages,
) -> Result<(HoldoutReport, Vec<clv::HoldoutBucket>, Option<Vec<clv::TrackingPoint>>), Error> {
    let t = Instant::now();
    let cal_end = s.run_date - chrono::Days::new(days as u64);
    let groups = holdout_tuples(s, spec, cal_end, calibration).await?;
    let cal_groups: Vec<Group<clv::PurchaseTuple>> = groups.iter().map(|g| Group { z: g.z.clone(), tuples: clv::calibration_tuples(&g.tuples) }).collect();
    let fit = clv::fit_groups(&cal_groups, spec.model, clv::coefficients(spec.model, &spec.covariates)?, spec.penalizer)?;
    let h = days as f64 * spec.time_unit.per_day();
    // Each group's parameters (one group without covariates).
    let params: Vec<(clv::PurchaseParams, &[HoldoutTuple])> = groups.iter().map(|g| (fit.params_at(&g.z), &g.tuples[..])).collect();
    let check = clv::holdout(&params, h);
    // The 80 % intervals the calibration fit gives, as `customer_clv`'s are given.
    let laplaces: Vec<(clv::Laplace, &[HoldoutTuple])> = groups.iter().map(|g| (fit.laplace_at(&g.z).unwrap_or_else(|| clv::Laplace::exact(fit.params_at(&g.z))), &g.tuples[..])).collect();
    let coverage = clv::coverage(&laplaces, h).map_err(|message| clv::ClvError::Fit { model: spec.model.as_str(), message })?;
    let report = HoldoutReport {
        days,
        calibration_end: cal_end,
        customers: check.customers as usize,
        mae: check.mae,
        total_actual: check.total_actual,
        total_predicted: check.total_predicted,
        interval_coverage: coverage.interval,
        pit_coverage: coverage.pit,
    };
    tracing::info!(
        days, mae = check.mae, total_actual = report.total_actual, total_predicted = report.total_predicted,
        interval_coverage = coverage.interval, pit_coverage = coverage.pit, "CLV holdout check"
    );
    let mut rows = publisher.stage_batch("clv_validation", validation_batch(&check, &coverage), &["bucket".into()]).await?;
    let tracking = match &spec.tracking {
        Some(tr) => {
            let daily = clv_sql::purchases_after(&s.ctx, spec, tr, cal_end, s.run_date).await?;
            let points = clv::tracking(&params, spec.time_unit.per_day(), days, &daily);
            rows += publisher.stage_batch("clv_holdout_tracking", tracking_batch(&points), &["days".into()]).await?;
            Some(points)
        }
        None => None,
    };
    stages.record("clv_holdout", t, Some(check.customers), Some(rows));
    Ok((report, check.buckets, tracking))
}

/// The holdout's tuples from a second session run as of the calibration end, joined to the
/// run's summary on the driver by id (each customer its own tuple), grouped by the
/// customers' covariates as of the calibration end.
async fn second_session_tuples(s: &Session, spec: &ClvSpec, cal_end: chrono::NaiveDate) -> Result<Vec<Group<HoldoutTuple>>, Error> {
    let full = load_summary(&s.ctx, spec).await?;
    let cal_session = open_with(&s.job, cal_end, &s.cli_params, Open::Again(s)).await?;
    let cal = load_summary(&cal_session.ctx, spec).await?;
    let index = id_index(&full.ids);
    let c = &cal.summary;
    Ok(clv::group((0..c.frequency.len()).map(|i| {
            // Everyone known at the calibration end is in the full summary; repeat purchase
            // periods after it are the difference of the two frequencies.
            let row = index.get(cal.ids.value(i)).copied();
            let tuple = HoldoutTuple {
                cal_frequency: c.frequency[i],
                cal_recency: c.recency[i],
                cal_tenure: c.tenure[i],
                frequency: row.map_or(c.frequency[i], |j| full.summary.frequency[j]),
                customers: 1,
            };
            (cal.covariates[i].clone(), tuple)
    })))
}

/// The customers known at `cal_end` as holdout tuples: `calibration` when the stage already
/// has them (from the view's [`CALIBRATION_COLUMNS`] in the same scan as the session's fit, or
/// from the backtest), else from the view computed again as of `cal_end`, joined to the
/// session's summary by id.
async fn holdout_tuples(s: &Session, spec: &ClvSpec, cal_end: chrono::NaiveDate, calibration: Option<Vec<Group<HoldoutTuple>>>) -> Result<Vec<Group<HoldoutTuple>>, Error> {
    match calibration {
        Some(tuples) => {
            tracing::debug!(view = spec.view, "calibration summary from the view's cal_* columns");
            Ok(tuples)
        }
        None => {
            tracing::debug!(view = spec.view, %cal_end, "calibration summary: the view computed again as of the calibration end");
            second_session_tuples(s, spec, cal_end).await
        }
    }
}

/// `model = "auto"`: the rolling-origin backtest (`clv::select`) over [`clv::BACKTEST_CUTOFFS`]
/// cut-offs, the run date minus 1, 2, 3 × `days`. The first cut-off's holdout is the holdout
/// check's (`first`: its tuples from the run's own scan, when the view has `cal_*` columns);
/// each earlier one comes from the view planned again as of the end of its holdout. Stages
/// `clv_model_selection` and returns the chosen model and the first cut-off's tuples, which the
/// holdout check then reuses instead of reading them again.
pub(super) async fn backtest_stage(
    s: &Session,
    spec: &ClvSpec,
    days: u32,
    first: Option<Vec<Group<HoldoutTuple>>>,
    publisher: &mut Publisher,
    stages: &mut Stages,
) -> Result<(PurchaseModel, SelectionReport, Option<Vec<Group<HoldoutTuple>>>), Error> {
    let t = Instant::now();
    let step = chrono::Days::new(days as u64);
    let horizon = days as f64 * spec.time_unit.per_day();
    let mut folds = Vec::new();
    let mut first = first;
    for k in 1..=clv::BACKTEST_CUTOFFS {
        let Some(end) = s.run_date.checked_sub_days(chrono::Days::new(u64::from(k - 1) * days as u64)) else { break };
        let Some(cutoff) = end.checked_sub_days(step) else { break };
        // No covariates here (the job refuses them with "auto"): one group.
        let groups = if k == 1 {
            holdout_tuples(s, spec, cutoff, first.take()).await?
        } else {
            let earlier = open_with(&s.job, end, &s.cli_params, Open::Again(s)).await?;
            let calibration = if has_calibration(&earlier, &spec.view)? {
                clv_sql::fit_input(&earlier.ctx, spec, true, spec.fit_sample).await?.holdout
            } else {
                None
            };
            holdout_tuples(&earlier, spec, cutoff, calibration).await?
        };
        let tuples: Vec<HoldoutTuple> = groups.into_iter().flat_map(|g| g.tuples).collect();
        // A cut-off before the first customer has nothing to score.
        if tuples.iter().any(|t| t.cal_frequency > 0.0) {
            folds.push(clv::Fold { cutoff, tuples, horizon });
        } else {
            tracing::warn!(%cutoff, "backtest cut-off skipped: no repeat buyer before it");
        }
    }
    if folds.is_empty() {
        return Err(clv::ClvError::Input(format!("model = \"auto\": no backtest cut-off {days} days apart has a repeat buyer before it")).into());
    }
    let candidates = clv::candidates(spec.time_unit);
    let selection = clv::select(&folds, &candidates, spec.penalizer)?;
    for (model, cutoff, reason) in &selection.failed {
        tracing::warn!(model = model.as_str(), %cutoff, %reason, "backtest: no fit; the model is not a candidate");
    }
    let means: Vec<(&'static str, f64, f64)> =
        candidates.iter().filter_map(|&m| selection.means(m).map(|(mae, total)| (m.as_str(), mae, total))).collect();
    for (model, mae, total) in &means {
        tracing::info!(model, mean_mae = mae, mean_abs_total_error = total, "backtest");
    }
    tracing::info!(chosen = selection.chosen.as_str(), cutoffs = folds.len(), "purchase model chosen by backtest (lowest mean holdout MAE)");
    let rows = publisher.stage_batch("clv_model_selection", selection_batch(&selection), &["model".into(), "cutoff".into(), "metric".into()]).await?;
    stages.record("clv_select", t, Some(folds.len() as u64), Some(rows));
    let report = SelectionReport {
        chosen: selection.chosen.as_str(),
        cutoffs: folds.iter().map(|f| f.cutoff).collect(),
        mean_mae: means.iter().map(|(m, mae, _)| (*m, *mae)).collect(),
    };
    let latest = s.run_date.checked_sub_days(step);
    let latest = folds.into_iter().find(|f| Some(f.cutoff) == latest).map(|f| vec![Group { z: Vec::new(), tuples: f.tuples }]);
    Ok((selection.chosen, report, latest))
}
