//! The purchase and drop-out models behind P(alive) and expected purchases, side by side:
//! BG/NBD and MBG/NBD (`bgnbd`), Pareto/NBD (`pareto_nbd`), BG/BB (`bgbb`): the parameters
//! of whichever model was fitted ([`PurchaseParams`]) and the fit ([`fit_tuples`]) on the
//! customers compressed to (x, t_x, T) tuples (`tuples`).
//!
//! Each model's prediction is eq. 10's shape in Fader, Hardie & Lee (2005): E[purchases in
//! (T, T + h]] = numerator(h, x, T) / denominator(x, t_x, T), with P(alive) = 1 / denominator.
//! The numerator does not depend on t_x, so customers sharing (x, T) share it (and its costly
//! series); the SQL functions and `clv::predict` cache it on that key.
//!
//! Numerics, as in lifetimes 0.11.3 so the two agree: the fit minimises the mean negative
//! log-likelihood plus `penalizer · Σ θ²` over log-parameters (so they stay positive), with
//! time rescaled by `1 / max T` during the fit (the time-scale parameters are reported in the
//! original unit; the penalty sees them rescaled, as in lifetimes). BG/BB counts periods and
//! is fitted unscaled, as lifetimes fits it.

use super::bgbb::{self, BgBbParams};
use super::bgnbd::{self, BgNbdParams};
use super::error::{ClvError, describe_params};
use super::fitting;
use super::pareto_nbd::{self, ParetoNbdParams};
use super::counts::TailStop;
use super::spec::PurchaseModel;
use super::tuples::{PurchaseTuple, Sufficient, compress};

/// Fitted (or given) parameters of one purchase model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PurchaseParams {
    /// BG/NBD or MBG/NBD (its `model` says which).
    BgNbd(BgNbdParams),
    ParetoNbd(ParetoNbdParams),
    BgBb(BgBbParams),
}

impl From<BgNbdParams> for PurchaseParams {
    fn from(p: BgNbdParams) -> Self {
        PurchaseParams::BgNbd(p)
    }
}

impl From<ParetoNbdParams> for PurchaseParams {
    fn from(p: ParetoNbdParams) -> Self {
        PurchaseParams::ParetoNbd(p)
    }
}

impl From<BgBbParams> for PurchaseParams {
    fn from(p: BgBbParams) -> Self {
        PurchaseParams::BgBb(p)
    }
}

impl PurchaseParams {
    /// `model`'s parameters from their values in [`PurchaseModel::parameters`] order.
    pub fn new(model: PurchaseModel, v: [f64; 4]) -> PurchaseParams {
        match model {
            PurchaseModel::BgNbd | PurchaseModel::MbgNbd => BgNbdParams { r: v[0], alpha: v[1], a: v[2], b: v[3], model }.into(),
            PurchaseModel::ParetoNbd => ParetoNbdParams { r: v[0], alpha: v[1], s: v[2], beta: v[3] }.into(),
            PurchaseModel::BgBb => BgBbParams { alpha: v[0], beta: v[1], gamma: v[2], delta: v[3] }.into(),
        }
    }

    pub fn model(&self) -> PurchaseModel {
        match self {
            PurchaseParams::BgNbd(p) => p.model,
            PurchaseParams::ParetoNbd(_) => PurchaseModel::ParetoNbd,
            PurchaseParams::BgBb(_) => PurchaseModel::BgBb,
        }
    }

    /// The values in [`PurchaseModel::parameters`] order.
    pub fn values(&self) -> [f64; 4] {
        match *self {
            PurchaseParams::BgNbd(p) => [p.r, p.alpha, p.a, p.b],
            PurchaseParams::ParetoNbd(p) => [p.r, p.alpha, p.s, p.beta],
            PurchaseParams::BgBb(p) => [p.alpha, p.beta, p.gamma, p.delta],
        }
    }

    /// (name, value) pairs, as `clv_model` publishes them.
    pub fn named(&self) -> [(&'static str, f64); 4] {
        let (names, values) = (self.model().parameters(), self.values());
        std::array::from_fn(|i| (names[i], values[i]))
    }

    /// P(alive | x, t_x, T).
    pub fn p_alive(&self, x: f64, tx: f64, t: f64) -> f64 {
        match self {
            PurchaseParams::BgNbd(p) => p.p_alive(x, tx, t),
            PurchaseParams::ParetoNbd(p) => p.p_alive(x, tx, t),
            PurchaseParams::BgBb(p) => p.p_alive(x, tx, t),
        }
    }

    /// E[purchases in (T, T + h] | x, t_x, T].
    pub fn expected_purchases(&self, h: f64, x: f64, tx: f64, t: f64) -> f64 {
        self.purchases_numerator(h, x, t) / self.purchases_denominator(x, tx, t)
    }

    /// The part of [`Self::expected_purchases`] that does not depend on t_x.
    pub fn purchases_numerator(&self, h: f64, x: f64, t: f64) -> f64 {
        match self {
            PurchaseParams::BgNbd(p) => p.purchases_numerator(h, x, t),
            PurchaseParams::ParetoNbd(p) => p.purchases_numerator(h, x, t),
            PurchaseParams::BgBb(p) => p.purchases_numerator(h, x, t),
        }
    }

    /// 1 / P(alive): [`Self::expected_purchases`]'s denominator.
    pub fn purchases_denominator(&self, x: f64, tx: f64, t: f64) -> f64 {
        match self {
            PurchaseParams::BgNbd(p) => p.purchases_denominator(x, tx, t),
            PurchaseParams::ParetoNbd(p) => p.purchases_denominator(x, tx, t),
            PurchaseParams::BgBb(p) => p.purchases_denominator(x, tx, t),
        }
    }

    /// P(N ≥ k | alive at T) for k = 1, 2, … until `stop`, N the purchases in (T, T + h]; it
    /// sums to [`Self::purchases_numerator`] (`clv::predictive`).
    pub fn alive_tail(&self, h: f64, x: f64, t: f64, stop: TailStop) -> Vec<f64> {
        match self {
            PurchaseParams::BgNbd(p) => p.alive_tail(h, x, t, stop),
            PurchaseParams::ParetoNbd(p) => p.alive_tail(h, x, t, stop),
            PurchaseParams::BgBb(p) => p.alive_tail(h, x, t, stop),
        }
    }

    /// The population's expected time to drop out, from the mean rates: BG/NBD
    /// 1 / (E[λ] · E[p]) = (α / r) · ((a + b) / a) periods (purchases until a drop-out times
    /// the time between them); Pareto/NBD 1 / E[μ] = β / s; BG/BB 1 / E[θ] = (γ + δ) / γ.
    pub fn mean_lifetime(&self) -> f64 {
        match *self {
            PurchaseParams::BgNbd(p) => (p.alpha / p.r) * ((p.a + p.b) / p.a),
            PurchaseParams::ParetoNbd(p) => p.beta / p.s,
            PurchaseParams::BgBb(p) => (p.gamma + p.delta) / p.gamma,
        }
    }

    /// Sum of ln L over customers, in the original time unit (for tests and reports).
    pub fn log_likelihood(&self, x: &[f64], tx: &[f64], t: &[f64]) -> f64 {
        self.log_likelihood_tuples(&compress(x, tx, t))
    }

    /// [`Self::log_likelihood`] over customers compressed to tuples.
    pub fn log_likelihood_tuples(&self, tuples: &[PurchaseTuple]) -> f64 {
        log_likelihood(&Sufficient::from_tuples(tuples), self, 1.0).0
    }

    /// Parameters fitted with time multiplied by `scale`, in the original unit: the time-scale
    /// ones ([`PurchaseModel::time_scaled`]) divided by it.
    pub(super) fn unscaled(&self, scale: f64) -> PurchaseParams {
        let mut v = self.values();
        for &k in self.model().time_scaled() {
            v[k] /= scale;
        }
        PurchaseParams::new(self.model(), v)
    }
}

/// Sum of ln L over `data` and its gradient in the natural parameters, with time multiplied
/// by `scale` (1 for BG/BB, whose periods are counted).
pub(super) fn log_likelihood(data: &Sufficient, p: &PurchaseParams, scale: f64) -> (f64, [f64; 4]) {
    match p {
        PurchaseParams::BgNbd(p) => bgnbd::log_likelihood(data, p, scale),
        PurchaseParams::ParetoNbd(p) => pareto_nbd::log_likelihood(data, p, scale),
        PurchaseParams::BgBb(p) => bgbb::log_likelihood(data, p),
    }
}

/// A fit with its diagnostics.
#[derive(Debug, Clone)]
pub struct PurchaseFit {
    pub params: PurchaseParams,
    /// The Laplace covariance of the log-parameters (`clv::predictive`): the inverse Hessian of
    /// −ln L at the fit. None when that Hessian is not positive definite (a parameter the data
    /// do not pin down) or nothing was fitted.
    pub covariance: Option<[[f64; 4]; 4]>,
    /// Sum over customers of ln L, in the original time unit.
    pub log_likelihood: f64,
    pub iterations: u64,
    pub customers: usize,
    /// Unique (x, t_x, T) tuples the fit actually evaluated.
    pub unique_tuples: usize,
    /// Set when the job's penalizer gave no fit and [`fitting::FALLBACK_PENALIZER`] did.
    pub fallback: Option<fitting::Fallback>,
}

/// Fits `model` by maximum likelihood (L-BFGS on log-parameters, analytic gradient) on
/// per-customer columns (the tests' entry; runs pass tuples to [`fit_tuples`]).
#[cfg(test)]
pub(super) fn fit(x: &[f64], tx: &[f64], t: &[f64], model: PurchaseModel, penalizer: f64) -> Result<PurchaseFit, ClvError> {
    fit_tuples(&compress(x, tx, t), model, penalizer)
}

/// Fits `model` by maximum likelihood (L-BFGS on log-parameters, analytic gradient) on
/// customers compressed to tuples.
pub fn fit_tuples(tuples: &[PurchaseTuple], model: PurchaseModel, penalizer: f64) -> Result<PurchaseFit, ClvError> {
    let data = Sufficient::from_tuples(tuples);
    let (fit, fallback) = fitting::with_fallback(penalizer, |p| fit_from(&data, model, p, true))?;
    Ok(PurchaseFit { fallback, ..fit })
}

/// [`fit_tuples`], optionally without the subsample warm start (tests compare the two).
pub(super) fn fit_from(data: &Sufficient, model: PurchaseModel, penalizer: f64, warm: bool) -> Result<PurchaseFit, ClvError> {
    // Without repeat purchases r → 0 (and for BG/NBD a and b leave the likelihood): no estimate.
    if !data.rows.iter().any(|r| data.xs[r.0 as usize] > 0.0) {
        return Err(ClvError::Input(format!("{} needs at least one customer with a repeat purchase", model.title())));
    }
    if model.discrete()
        && let Some(tuple) = bgbb::first_non_discrete(data)
    {
        return Err(ClvError::Input(format!("BG/BB counts whole periods with frequency <= recency <= tenure, got {tuple}")));
    }
    let max_t = data.rows.iter().map(|r| data.ts[r.2 as usize]).fold(0.0, f64::max);
    let scale = if max_t > 0.0 && !model.time_scaled().is_empty() { 1.0 / max_t } else { 1.0 };
    let objective = |data: &Sufficient, theta: &[f64]| {
        let p = PurchaseParams::new(model, std::array::from_fn(|i| theta[i].exp()));
        let (ll, g) = log_likelihood(data, &p, scale);
        fitting::penalized_objective(&p.values(), ll, &g, data.total, penalizer)
    };
    let start = match fitting::warm_start_step(data.total as usize).filter(|_| warm) {
        Some(k) => {
            let sub = data.every(k);
            fitting::warm_start(|theta| objective(&sub, theta), 4)
        }
        None => fitting::Start::cold(4),
    };
    let fitting::Fitted { x: theta, iterations, hessian } = fitting::fit_positive(model.as_str(), &model.parameters(), |theta| objective(data, theta), start)?;
    let fitted = PurchaseParams::new(model, std::array::from_fn(|i| theta[i]));
    if let PurchaseParams::ParetoNbd(p) = fitted
        && !pareto_nbd::series_converge(data, &p, scale)
    {
        let message = format!("alpha and beta are too far apart for the likelihood's series ({})", describe_params(&fitted.unscaled(scale).named()));
        return Err(ClvError::Fit { model: model.as_str(), message });
    }
    let params = fitted.unscaled(scale);
    let (log_likelihood, _) = log_likelihood(data, &params, 1.0);
    // The Laplace approximation: the objective is a mean over customers, so its Hessian times
    // their number is −ln L's. In log-parameters rescaling time only shifts the point, so the
    // covariance is the same in the original unit. The polishing step's Hessian serves (4
    // fewer passes over the tuples); it is None only where one at the fit is not finite.
    let covariance = hessian.and_then(|h| fitting::inverse_information(&(h * data.total)));
    Ok(PurchaseFit {
        params,
        covariance,
        log_likelihood,
        iterations,
        customers: data.total as usize,
        unique_tuples: data.rows.len(),
        fallback: None,
    })
}
