//! What the BG/NBD and Gamma-Gamma fits share: the distinct-value index of a column, the
//! penalised objective, the warm start from a subsample, and the checked minimisation over
//! log-parameters.

use std::collections::HashMap;

use foldhash::fast::FixedState;
use rayon::prelude::*;

use super::error::ClvError;
use super::optimize::{self, minimize};

/// The distinct values of `v` in ascending order, and each value's index into them. Periods
/// and counts take few distinct values, so one hash lookup per customer replaces sorting them
/// all (-0.0 is counted as 0.0).
pub(super) fn indexed(v: &[f64]) -> (Vec<f64>, Vec<u32>) {
    let mut seen: HashMap<u64, u32, FixedState> = HashMap::default();
    let first: Vec<u32> = v
        .iter()
        .map(|&x| {
            let next = seen.len() as u32;
            *seen.entry((x + 0.0).to_bits()).or_insert(next)
        })
        .collect();
    let mut values: Vec<(f64, u32)> = seen.into_iter().map(|(bits, i)| (f64::from_bits(bits), i)).collect();
    values.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank = vec![0u32; values.len()];
    for (r, &(_, i)) in values.iter().enumerate() {
        rank[i as usize] = r as u32;
    }
    (values.into_iter().map(|(v, _)| v).collect(), first.into_par_iter().map(|i| rank[i as usize]).collect())
}

/// The objective both fits minimise, as lifetimes does: the mean negative log-likelihood plus
/// `penalizer · Σ θ²` over the natural parameters θ, with its gradient in log-parameters
/// (d/d ln θ = θ · d/dθ).
pub(super) fn penalized_objective(theta: &[f64], log_likelihood: f64, gradient: &[f64], n: f64, penalizer: f64) -> (f64, Vec<f64>) {
    let value = -log_likelihood / n + penalizer * theta.iter().map(|v| v * v).sum::<f64>();
    let grad = theta.iter().zip(gradient).map(|(t, g)| t * (-g / n + 2.0 * penalizer * t)).collect();
    (value, grad)
}

/// ln(e^a + e^b) and the weight of b, e^b / (e^a + e^b), from one exp: with
/// e = e^(−|b − a|), the sum is max + ln(1 + e). b = −∞ gives (a, 0).
///
/// `ln(1 + e)`, not `ln_1p(e)`: e is in (0, 1], so rounding 1 + e costs at most 1.1e-16
/// absolute, and the result is added to max, which hides what `ln_1p` keeps for tiny e. glibc's
/// `log1p` took 40 % of an MBG/NBD fit's likelihood passes (every customer has both terms);
/// `ln` is about a third faster.
pub(super) fn log_add_exp_weight(a: f64, b: f64) -> (f64, f64) {
    let d = b - a;
    let e = (-d.abs()).exp();
    let ln_1pe = (1.0 + e).ln();
    if d > 0.0 { (b + ln_1pe, 1.0 / (1.0 + e)) } else { (a + ln_1pe, e / (1.0 + e)) }
}

/// Customers above which a fit starts from the optimum of a subsample (see [`warm_start`]).
const WARM_START_ROWS: usize = 50_000;

/// The step of the deterministic subsample (every k-th customer) used for a warm start, when
/// there are enough customers for one to pay off.
pub(super) fn warm_start_step(n: usize) -> Option<usize> {
    (n > 4 * WARM_START_ROWS).then(|| n.div_ceil(WARM_START_ROWS))
}

/// Where a fit on all customers starts: the log-parameters minimising the same objective on a
/// subsample (from θ = 1), and the objective's Hessian there. L-BFGS preconditioned with that
/// Hessian ([`optimize::minimize_near`]) then needs a few evaluations on all the data: the same
/// optimum and tolerance (BENCHMARKS.md). θ = 1 and no Hessian if the subsample fit fails.
pub(super) struct Start {
    x: Vec<f64>,
    hessian: Option<ndarray::Array2<f64>>,
}

impl Start {
    pub(super) fn cold(dim: usize) -> Start {
        Start { x: vec![0.0; dim], hessian: None }
    }
}

pub(super) fn warm_start<F>(objective: F, dim: usize) -> Start
where
    F: Fn(&[f64]) -> (f64, Vec<f64>),
{
    match minimize(&objective, vec![0.0; dim], 2000) {
        Ok(m) if m.converged && m.x.iter().all(|v| v.is_finite()) => Start { hessian: optimize::hessian_at(&objective, &m.x, &m.gradient), x: m.x },
        _ => Start::cold(dim),
    }
}

/// The inverse of `information` (the Hessian of −ln L summed over customers, in
/// log-parameters): the Laplace covariance; None unless it is positive definite.
pub(super) fn inverse_information(information: &ndarray::Array2<f64>) -> Option<[[f64; 4]; 4]> {
    let inverse = inverse_information_n(information)?;
    Some(std::array::from_fn(|i| std::array::from_fn(|j| inverse[[i, j]])))
}

/// [`inverse_information`] of any dimension (a covariate fit's parameters and coefficients).
pub(super) fn inverse_information_n(information: &ndarray::Array2<f64>) -> Option<ndarray::Array2<f64>> {
    use linfa_linalg::cholesky::InverseC;
    let inverse = information.invc().ok()?;
    let positive = (0..inverse.nrows()).all(|i| inverse[[i, i]] > 0.0) && inverse.iter().all(|v| v.is_finite());
    positive.then_some(inverse)
}

/// The penalizer a fit retries with when it fails without one: the smallest of the 0.001–0.1
/// lifetimes' documentation suggests for fits that do not converge. It shrinks the parameters
/// a little (its effect on a fit that needs none is below 1e-3 relative on CDNOW), and bounds
/// them where the data alone cannot.
pub const FALLBACK_PENALIZER: f64 = 0.001;

/// How a fit got its parameters when the job's penalizer did not give any.
#[derive(Debug, Clone, PartialEq)]
pub struct Fallback {
    /// Why the fit with the job's penalizer failed.
    pub reason: String,
    /// The penalizer the parameters were fitted with.
    pub penalizer: f64,
}

/// `fit(penalizer)`; if that fails for a reason other than bad input and `penalizer` is below
/// [`FALLBACK_PENALIZER`], `fit(FALLBACK_PENALIZER)` with the first failure as its
/// [`Fallback`]. When both fail, the first failure is the error.
pub(super) fn with_fallback<T>(penalizer: f64, fit: impl Fn(f64) -> Result<T, ClvError>) -> Result<(T, Option<Fallback>), ClvError> {
    match fit(penalizer) {
        Ok(t) => Ok((t, None)),
        Err(e @ ClvError::Input(_)) => Err(e),
        Err(e) if penalizer < FALLBACK_PENALIZER => match fit(FALLBACK_PENALIZER) {
            Ok(t) => Ok((t, Some(Fallback { reason: e.to_string(), penalizer: FALLBACK_PENALIZER }))),
            Err(_) => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// Newton steps after L-BFGS (see [`optimize::polish`]): one reaches rounding level, and a
/// second would cost d + 1 more evaluations to be rejected (4 on all repeat buyers for
/// Gamma-Gamma). At least one: the Laplace covariance uses the step's Hessian.
const POLISH_STEPS: usize = 1;

/// A minimum over log-parameters, with what the Laplace covariance needs.
pub(super) struct Fitted {
    /// The minimum (log-parameters for [`minimize_polished`], natural ones for [`fit_positive`]).
    pub(super) x: Vec<f64>,
    pub(super) iterations: u64,
    /// The objective's Hessian in log-parameters from the polishing step ([`optimize::Polished`]).
    pub(super) hessian: Option<ndarray::Array2<f64>>,
}

/// Minimises `objective` over log-parameters from `start` and returns the natural parameters;
/// a fit that does not converge or runs off to 0 or infinity is an error naming `model`.
pub(super) fn fit_positive<F>(model: &'static str, names: &[&'static str], objective: F, start: Start) -> Result<Fitted, ClvError>
where
    F: Fn(&[f64]) -> (f64, Vec<f64>),
{
    let fitted = minimize_polished(model, objective, start)?;
    let theta: Vec<f64> = fitted.x.iter().map(|v| v.exp()).collect();
    let named: Vec<(&'static str, f64)> = names.iter().copied().zip(theta.iter().copied()).collect();
    check_degenerate(model, &named)?;
    Ok(Fitted { x: theta, ..fitted })
}

/// The minimum of `objective` from `start` (L-BFGS, then [`POLISH_STEPS`] Newton steps); a fit
/// that does not converge is an error naming `model`.
pub(super) fn minimize_polished<F>(model: &'static str, objective: F, start: Start) -> Result<Fitted, ClvError>
where
    F: Fn(&[f64]) -> (f64, Vec<f64>),
{
    let m = match &start.hessian {
        Some(h) => optimize::minimize_near(&objective, start.x, h, 2000),
        None => minimize(&objective, start.x, 2000),
    }
    .map_err(|message| ClvError::Fit { model, message })?;
    if !m.converged {
        return Err(ClvError::NotConverged {
            model,
            iterations: m.iterations,
            reason: m.reason,
        });
    }
    let iterations = m.iterations;
    let polished = optimize::polish(&objective, m, POLISH_STEPS);
    Ok(Fitted { x: polished.x, iterations, hessian: polished.hessian })
}

/// Parameters driven to 0 or infinity mean the likelihood has no interior maximum for this
/// data; report that instead of publishing meaningless values.
pub(super) fn check_degenerate(model: &'static str, params: &[(&'static str, f64)]) -> Result<(), ClvError> {
    match params.iter().find(|(_, v)| !(1e-6..=1e6).contains(v)) {
        Some(&(parameter, value)) => Err(ClvError::Degenerate { model, parameter, value }),
        None => Ok(()),
    }
}
