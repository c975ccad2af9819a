//! The CLV stage: load the summary view, choose the purchase model by backtest when asked
//! (`model = "auto"`), fit it (or score with a saved model) and Gamma-Gamma, value every
//! customer, check against a holdout period, stage the tables.

use std::time::Instant;

use datafusion::arrow::array::StringArray;
use datafusion::dataframe::DataFrame;

use super::clv_holdout::{backtest_stage, has_calibration, holdout_stage};
use super::clv_sql::{self, FitInput, Scoring};
use super::manifest::{ClvReport, FallbackReport, ModelReport, Stages};
use super::session::Session;
use super::tables::clv_model_batch;
use super::{history, report};
use crate::clv::{self, ClvSpec};
use crate::error::Error;
use crate::publish::Publisher;

/// The CLV stage's results, kept for the segment summary.
pub(super) struct ClvOutcome {
    /// `customer_clv`'s plan (without the decile): the segment summary reads each customer's
    /// CLV and P(alive) from it.
    pub(super) scored: DataFrame,
    pub(super) id: String,
    pub(super) report: ClvReport,
    /// For the run report.
    pub(super) p_alive: crate::report::PAliveMatrix,
    pub(super) holdout: Option<report::HoldoutCharts>,
    pub(super) saved: crate::models::SavedClv,
}

impl ClvOutcome {
    /// Each customer's CLV and P(alive): read from the staged `customer_clv` when its ids are
    /// as computed, else computed again by the engine from [`Self::scored`].
    pub(super) async fn per_customer(&self, publisher: &Publisher) -> Result<(StringArray, Vec<f64>, Vec<f64>), Error> {
        let df = match publisher.read_staged("customer_clv").await? {
            Some(df) => df,
            None => self.scored.clone(),
        };
        clv_sql::clv_and_p_alive(df, &self.id).await
    }
}

fn model_report(
    params: &[(String, f64)],
    std_errors: Option<Vec<f64>>,
    log_likelihood: f64,
    iterations: u64,
    customers: usize,
    sampled_from: Option<u64>,
    fallback: Option<&clv::Fallback>,
) -> ModelReport {
    ModelReport {
        params: params.iter().cloned().collect(),
        std_errors: std_errors.map(|se| params.iter().zip(se).map(|((name, _), se)| (name.clone(), se)).collect()),
        log_likelihood,
        iterations,
        customers,
        sampled_from,
        fallback: fallback.map(|f| FallbackReport { penalizer: f.penalizer, reason: f.reason.clone() }),
    }
}

/// The purchase model's parameters then its covariates' coefficients, as `clv_model` and the
/// manifest name them.
fn purchase_named(b: &clv::PurchaseParams, effects: Option<&clv::Effects>) -> Vec<(String, f64)> {
    let base = b.named().map(|(k, v)| (k.to_string(), v));
    base.into_iter().chain(effects.iter().flat_map(|e| e.coefficients.iter().map(|c| (c.name.clone(), c.value)))).collect()
}

/// Standard errors in [`purchase_named`]'s order, when the fit has a Laplace covariance.
fn purchase_std_errors(models: &clv::ClvModels) -> Option<Vec<f64>> {
    let mut se = models.bgnbd.laplace()?.std_errors().to_vec();
    if let Some(e) = &models.effects {
        se.extend(e.std_errors()?);
    }
    Some(se)
}

pub(super) async fn clv_stage(s: &Session, spec: &ClvSpec, publisher: &mut Publisher, stages: &mut Stages) -> Result<ClvOutcome, Error> {
    let t = Instant::now();
    let with_calibration = spec.holdout_days.is_some() && has_calibration(s, &spec.view)?;
    let mut input = clv_sql::fit_input(&s.ctx, spec, with_calibration, spec.fit_sample).await?;
    let customers = input.customers();
    stages.record("clv_load", t, Some(customers), Some(input.tuples.len() as u64));
    // `model = "auto"`: the backtest chooses the model the rest of the stage fits.
    let (spec, selection) = match spec.holdout_days.filter(|_| spec.auto) {
        Some(days) => {
            let (chosen, report, latest) = backtest_stage(s, spec, days, input.holdout.take(), publisher, stages).await?;
            if latest.is_some() {
                tracing::debug!(view = spec.view, "the holdout check reuses the backtest's latest cut-off");
            }
            input.holdout = latest;
            (&ClvSpec { model: chosen, ..spec.clone() }, Some(report))
        }
        None => (spec, None),
    };
    let t = Instant::now();
    let scoring = spec.mode == crate::model_mode::ModelMode::Score;
    tracing::info!(
        model = %format!("{} and Gamma-Gamma", spec.model.title()), customers, tuples = input.tuples.len(), repeat_buyers = input.repeat_buyers,
        gamma_gamma_rows = input.repeat_frequency.len(), "{}", if scoring { "scoring with the saved model" } else { "fitting" }
    );
    let time_unit = spec.time_unit.to_string();
    let FitInput { repeat_frequency: rf, repeat_monetary: rm, .. } = &input;
    let coefficients = clv::coefficients(spec.model, &spec.covariates)?;
    let mut saved_covariance = None;
    let (models, trained_on) = match spec.mode {
        crate::model_mode::ModelMode::Score => {
            let model = history::find_model(publisher, s.run_date, spec.model_from).await?;
            let (date, saved) = model
                .as_ref()
                .and_then(|m| m.clv.as_ref().map(|c| (m.run_date, c)))
                .ok_or_else(|| history::missing("clv", publisher, s.run_date, spec.model_from))?;
            let (b, g, effects) = saved.params(date, &time_unit, spec.model, &coefficients)?;
            saved_covariance = saved.log_covariance;
            tracing::info!(model = %date, "CLV parameters from the saved model (mode = score)");
            (clv::with_params_groups(&input.groups(), rf, rm, b, g, effects), saved.trained_on)
        }
        crate::model_mode::ModelMode::Refit => (clv::fit_with_covariates(&input.groups(), rf, rm, spec.model, coefficients, spec.penalizer)?, s.run_date),
    };
    let mut models = models;
    if scoring {
        models.bgnbd.covariance = saved_covariance;
    }
    let effects = models.effects.clone();
    stages.record("clv_fit", t, Some(input.tuples.len() as u64), Some(7));
    let (b, g) = (models.bgnbd.params, models.gamma_gamma.params);
    g.check_predicts(input.tuples.iter().map(|t| t.frequency).fold(f64::INFINITY, f64::min))?;
    let how = if scoring { "scored with the saved model" } else { "fitted" };
    tracing::info!(
        parameters = %clv::describe_params(&b.named()), log_likelihood = models.bgnbd.log_likelihood,
        iterations = models.bgnbd.iterations, unique_tuples = models.bgnbd.unique_tuples, "{} {how}", b.model().title()
    );
    tracing::info!(p = g.p, q = g.q, gamma = g.gamma, log_likelihood = models.gamma_gamma.log_likelihood, "Gamma-Gamma {how}");
    if let Some(e) = &effects {
        let named: Vec<(&str, f64)> = e.coefficients.iter().map(|c| (c.name.as_str(), c.value)).collect();
        tracing::info!(coefficients = %clv::describe_params(&named), "covariate effects {how} (a customer's parameters: the base ones shifted by their covariates)");
    }
    for (model, fallback) in [(b.model().title(), &models.bgnbd.fallback), ("Gamma-Gamma", &models.gamma_gamma.fallback)] {
        if let Some(f) = fallback {
            tracing::warn!(penalizer = f.penalizer, reason = %f.reason, "{model}: no fit with the job's penalizer; fitted with penalizer {}", f.penalizer);
        }
    }
    if models.frequency_monetary_corr.abs() > 0.3 {
        tracing::warn!(
            corr = models.frequency_monetary_corr,
            "frequency and monetary value are correlated; Gamma-Gamma assumes independence"
        );
    }

    let (holdout, buckets) = match spec.holdout_days {
        Some(days) => {
            let (r, b, tracking) = holdout_stage(s, spec, days, input.holdout.take(), publisher, stages).await?;
            let tracking = tracking.map(|points| report::tracking_points(&points, spec.model));
            (Some(r), Some((report::holdout_buckets(&b), tracking)))
        }
        None => (None, None),
    };

    // Every customer's predictions: a plan over the view calling the model functions, which
    // the engine computes and writes as it streams.
    let t = Instant::now();
    let lifetime_periods = clv::lifetime_periods(spec, &b);
    let laplace = models.bgnbd.laplace().unwrap_or_else(|| {
        let why = if scoring { "the saved model has no covariance" } else { "the likelihood's Hessian at the fit is not positive definite" };
        tracing::warn!("{} intervals carry the purchase process only: {why}", b.model().title());
        clv::Laplace::exact(b)
    });
    let scoring = Scoring { bgnbd: b, covariance: laplace.covariance, effects: effects.clone(), gamma_gamma: g, lifetime_periods };
    let q = |e| Error::query(format!("view '{}'", spec.view), e);
    let view = s.ctx.table(spec.view.as_str()).await.map_err(q)?;
    // The segment summary's fallback reads CLV and P(alive) only: no intervals to compute.
    let scored = clv_sql::scored(&s.ctx, view.clone(), spec, &scoring, false).map_err(q)?;
    let table = clv_sql::scored(&s.ctx, view, spec, &scoring, spec.intervals).map_err(q)?;
    let table = clv_sql::with_decile(table, &spec.id, customers).map_err(q)?;
    let table = if spec.intervals { clv_sql::clv_intervals(table).map_err(q)? } else { table };
    let table = clv_sql::published(table).map_err(q)?;
    let mut rows = publisher.stage("customer_clv", table, &clv_sql::clv_order(&spec.id)).await?;
    rows += publisher
        .stage_batch("clv_model", clv_model_batch(&models), &["model".into(), "parameter".into()])
        .await?;
    stages.record("clv_tables", t, Some(customers), Some(rows));

    let sampled = |fit: usize| (input.repeat_buyers > fit as u64).then_some(input.repeat_buyers);
    let report = ClvReport {
        view: spec.view.clone(),
        customers: customers as usize,
        time_unit: time_unit.clone(),
        model: b.model().as_str(),
        bgnbd: model_report(
            &purchase_named(&b, effects.as_ref()),
            purchase_std_errors(&models),
            models.bgnbd.log_likelihood,
            models.bgnbd.iterations,
            models.bgnbd.customers,
            None,
            models.bgnbd.fallback.as_ref(),
        ),
        gamma_gamma: model_report(
            &[("p", g.p), ("q", g.q), ("gamma", g.gamma)].map(|(k, v)| (k.to_string(), v)),
            None,
            models.gamma_gamma.log_likelihood,
            models.gamma_gamma.iterations,
            models.gamma_gamma.customers,
            sampled(models.gamma_gamma.customers),
            models.gamma_gamma.fallback.as_ref(),
        ),
        frequency_monetary_corr: models.frequency_monetary_corr,
        lifetime_periods,
        holdout,
        selection,
    };
    let p_alive = report::p_alive_matrix(&b, &input.tuples, &report.time_unit);
    let saved = crate::models::SavedClv {
        trained_on,
        time_unit,
        model: b.model().as_str().to_string(),
        bgnbd: report.bgnbd.params.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        gamma_gamma: report.gamma_gamma.params.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        log_covariance: models.bgnbd.covariance,
        coefficients: effects.iter().flat_map(|e| e.coefficients.iter().map(|c| c.name.clone())).collect(),
        covariate_covariance: effects.as_ref().and_then(|e| e.covariance.as_ref()).map(|c| c.rows().into_iter().map(|r| r.to_vec()).collect()),
    };
    Ok(ClvOutcome {
        scored,
        id: spec.id.clone(),
        report,
        p_alive,
        holdout: buckets,
        saved,
    })
}
