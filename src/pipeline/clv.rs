//! The CLV stage: load the summary view, fit (or score with a saved model) BG/NBD and
//! Gamma-Gamma, value every customer, check against a holdout period, stage the tables.

use std::time::Instant;

use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::execution::context::SessionContext;

use super::ids::{id_array, id_index};
use super::manifest::{ClvReport, HoldoutReport, ModelReport, Stages};
use super::session::{Open, SUMMARY_COLUMNS, Session, open_with};
use super::tables::{clv_batch, clv_model_batch, validation_batch};
use super::{history, report};
use crate::clv::{self, ClvResult, ClvSpec, Summary};
use crate::error::Error;
use crate::features;
use crate::publish::Publisher;

/// The CLV stage's results, kept for the segment summary.
pub(super) struct ClvOutcome {
    /// Customer ids, in the order of `result`'s columns.
    pub(super) ids: StringArray,
    pub(super) result: ClvResult,
    pub(super) report: ClvReport,
    /// For the run report.
    pub(super) p_alive: crate::report::PAliveMatrix,
    pub(super) holdout: Option<Vec<crate::report::HoldoutBucket>>,
    pub(super) saved: crate::models::SavedClv,
}

/// Columns a summary view may add for the holdout check, in [`SUMMARY_COLUMNS`]' order: the
/// summary as of `$calibration_end`, NULL for customers who first bought after it.
pub(super) const CALIBRATION_COLUMNS: [&str; 4] = ["cal_frequency", "cal_recency", "cal_tenure", "cal_monetary_value"];

/// The summary view as the models read it.
struct Loaded {
    /// The id column as the view has it (published as is).
    id_column: ArrayRef,
    ids: StringArray,
    summary: Summary,
    /// The calibration summary and its customers' rows in `summary`, when the view has
    /// [`CALIBRATION_COLUMNS`] and the job a holdout.
    calibration: Option<(Summary, Vec<usize>)>,
}

async fn load_summary(ctx: &SessionContext, spec: &ClvSpec, with_calibration: bool) -> Result<Loaded, Error> {
    let mut cols: Vec<String> = SUMMARY_COLUMNS.map(String::from).into();
    if with_calibration {
        cols.extend(CALIBRATION_COLUMNS.map(String::from));
    }
    let f = features::load_frame(ctx, &spec.view, &spec.id, &cols, &[]).await?;
    if let Some(j) = f.nulls[..SUMMARY_COLUMNS.len()].iter().position(|&c| c > 0) {
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
    let in_view = |e: clv::ClvError| match e {
        clv::ClvError::Input(msg) => clv::ClvError::Input(format!("view '{}': {msg}", spec.view)),
        other => other,
    };
    summary.check(&|i| ids.value(i).to_string()).map_err(in_view)?;
    let calibration = if with_calibration {
        let rows: Vec<usize> = (0..f.x.nrows()).filter(|&i| !f.x[[i, 4]].is_nan()).collect();
        let pick = |j: usize| rows.iter().map(|&i| f.x[[i, j]]).collect::<Vec<f64>>();
        let cal = Summary {
            frequency: pick(4),
            recency: pick(5),
            tenure: pick(6),
            monetary_value: pick(7),
        };
        cal.check(&|i| ids.value(rows[i]).to_string()).map_err(in_view)?;
        Some((cal, rows))
    } else {
        None
    };
    Ok(Loaded {
        id_column: f.ids,
        ids,
        summary,
        calibration,
    })
}

/// Whether the summary view carries every [`CALIBRATION_COLUMNS`] column (from the schema
/// the session planned it with).
fn has_calibration(s: &Session, view: &str) -> Result<bool, Error> {
    let schema = &crate::views::find(&s.views, view)?.schema;
    Ok(CALIBRATION_COLUMNS.iter().all(|c| schema.field_with_name(c).is_ok()))
}

fn model_report(params: &[(&'static str, f64)], log_likelihood: f64, iterations: u64, customers: usize) -> ModelReport {
    ModelReport {
        params: params.iter().copied().collect(),
        log_likelihood,
        iterations,
        customers,
    }
}

pub(super) async fn clv_stage(s: &Session, spec: &ClvSpec, publisher: &mut Publisher, stages: &mut Stages) -> Result<ClvOutcome, Error> {
    let t = Instant::now();
    let with_calibration = spec.holdout_days.is_some() && has_calibration(s, &spec.view)?;
    let Loaded { id_column, ids, summary, calibration } = load_summary(&s.ctx, spec, with_calibration).await?;
    stages.record("clv_load", t, None, Some(summary.frequency.len() as u64));
    let t = Instant::now();
    tracing::info!(model = "BG/NBD and Gamma-Gamma", customers = summary.frequency.len(), "fitting");
    let time_unit = format!("{:?}", spec.time_unit).to_lowercase();
    let (models, trained_on) = match spec.mode {
        crate::model_mode::ModelMode::Score => {
            let model = history::find_model(publisher, s.run_date, spec.model_from).await?;
            let (date, saved) = model
                .as_ref()
                .and_then(|m| m.clv.as_ref().map(|c| (m.run_date, c)))
                .ok_or_else(|| history::missing("clv", publisher, s.run_date, spec.model_from))?;
            let (b, g) = saved.params(date, &time_unit)?;
            tracing::info!(model = %date, "CLV parameters from the saved model (mode = score)");
            (clv::with_params(&summary, b, g), saved.trained_on)
        }
        crate::model_mode::ModelMode::Refit => (clv::fit(&summary, spec.penalizer)?, s.run_date),
    };
    stages.record("clv_fit", t, Some(summary.frequency.len() as u64), Some(7));
    let t = Instant::now();
    let result = clv::predict(&summary, spec, models)?;
    stages.record("clv_predict", t, Some(summary.frequency.len() as u64), Some(summary.frequency.len() as u64));
    let (b, g) = (result.bgnbd.params, result.gamma_gamma.params);
    tracing::info!(
        r = b.r, alpha = b.alpha, a = b.a, b = b.b, log_likelihood = result.bgnbd.log_likelihood,
        iterations = result.bgnbd.iterations, unique_tuples = result.bgnbd.unique_tuples, "BG/NBD fitted"
    );
    tracing::info!(p = g.p, q = g.q, gamma = g.gamma, log_likelihood = result.gamma_gamma.log_likelihood, "Gamma-Gamma fitted");
    if result.frequency_monetary_corr.abs() > 0.3 {
        tracing::warn!(
            corr = result.frequency_monetary_corr,
            "frequency and monetary value are correlated; Gamma-Gamma assumes independence"
        );
    }

    let (holdout, buckets) = match spec.holdout_days {
        Some(days) => {
            let (r, b) = holdout_stage(s, spec, days, &summary, &ids, calibration, publisher, stages).await?;
            (Some(r), Some(report::holdout_buckets(&b)))
        }
        None => (None, None),
    };

    let t = Instant::now();
    let id = vec![spec.id.clone()];
    let mut rows = publisher.stage_batch("customer_clv", clv_batch(spec, &id_column, &summary, &result), &id).await?;
    rows += publisher
        .stage_batch("clv_model", clv_model_batch(&result), &["model".into(), "parameter".into()])
        .await?;
    stages.record("clv_tables", t, None, Some(rows));

    let report = ClvReport {
        view: spec.view.clone(),
        customers: summary.frequency.len(),
        time_unit: time_unit.clone(),
        bgnbd: model_report(
            &[("r", b.r), ("alpha", b.alpha), ("a", b.a), ("b", b.b)],
            result.bgnbd.log_likelihood,
            result.bgnbd.iterations,
            result.bgnbd.customers,
        ),
        gamma_gamma: model_report(
            &[("p", g.p), ("q", g.q), ("gamma", g.gamma)],
            result.gamma_gamma.log_likelihood,
            result.gamma_gamma.iterations,
            result.gamma_gamma.customers,
        ),
        frequency_monetary_corr: result.frequency_monetary_corr,
        lifetime_periods: result.lifetime_periods,
        holdout,
    };
    let p_alive = report::p_alive_matrix(&result.bgnbd.params, &summary, &report.time_unit);
    let saved = crate::models::SavedClv {
        trained_on,
        time_unit,
        bgnbd: report.bgnbd.params.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        gamma_gamma: report.gamma_gamma.params.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
    };
    Ok(ClvOutcome {
        ids,
        result,
        report,
        p_alive,
        holdout: buckets,
        saved,
    })
}

/// Fits on data up to `run_date − days` and compares predicted with actual repeat purchases
/// in the last `days` days, for the customers known at the calibration end. The calibration
/// summary comes from the summary view's [`CALIBRATION_COLUMNS`] when it has them, else from
/// the view computed again with the run date set to the calibration end.
#[allow(clippy::too_many_arguments)]
async fn holdout_stage(
    s: &Session,
    spec: &ClvSpec,
    days: u32,
    full: &Summary,
    full_ids: &StringArray,
    calibration: Option<(Summary, Vec<usize>)>,
    publisher: &mut Publisher,
    stages: &mut Stages,
) -> Result<(HoldoutReport, Vec<clv::HoldoutBucket>), Error> {
    let t = Instant::now();
    let cal_end = s.run_date - chrono::Days::new(days as u64);
    // Each calibration customer's row in `full`: everyone known at the calibration end is in
    // the full summary, and repeat purchase days after it are the difference of the two
    // frequencies.
    let (cal, rows): (Summary, Vec<Option<usize>>) = match calibration {
        Some((cal, rows)) => {
            tracing::debug!(view = spec.view, "calibration summary from the view's cal_* columns");
            (cal, rows.into_iter().map(Some).collect())
        }
        None => {
            tracing::debug!(view = spec.view, %cal_end, "calibration summary: the view computed again as of the calibration end");
            let cal_session = open_with(&s.job, cal_end, &s.cli_params, Open::Again(s)).await?;
            let loaded = load_summary(&cal_session.ctx, spec, false).await?;
            let index = id_index(full_ids);
            let rows = loaded.ids.iter().map(|id| index.get(id.unwrap_or_default()).copied()).collect();
            (loaded.summary, rows)
        }
    };
    let fitted = clv::fit(&cal, spec.penalizer)?;
    let h = days as f64 * spec.time_unit.per_day();
    let b = fitted.bgnbd.params;
    let n = cal.frequency.len();
    let (mut actual, mut predicted) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for (i, row) in rows.iter().enumerate() {
        let full_x = row.map_or(cal.frequency[i], |j| full.frequency[j]);
        actual.push(full_x - cal.frequency[i]);
        predicted.push(b.expected_purchases(h, cal.frequency[i], cal.recency[i], cal.tenure[i]));
    }
    let (buckets, mae) = clv::holdout(&cal.frequency, &actual, &predicted);
    let report = HoldoutReport {
        days,
        calibration_end: cal_end,
        customers: n,
        mae,
        total_actual: actual.iter().sum(),
        total_predicted: predicted.iter().sum(),
    };
    tracing::info!(days, mae, total_actual = report.total_actual, total_predicted = report.total_predicted, "CLV holdout check");
    let rows = publisher.stage_batch("clv_validation", validation_batch(&buckets), &["bucket".into()]).await?;
    stages.record("clv_holdout", t, Some(n as u64), Some(rows));
    Ok((report, buckets))
}
