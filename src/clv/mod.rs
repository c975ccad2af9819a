//! Lifetime value: BG/NBD for purchases and P(alive), Gamma-Gamma for spend, discounted CLV,
//! the simple CLV formula, and the holdout check. Pure: summaries in, values out.
//!
//! Input per customer (Fader–Hardie summary, in `time_unit`): x = `frequency` (repeat purchase
//! periods), t_x = `recency`, T = `tenure`, m̄ = `monetary_value` (mean repeat purchase value).

mod bgnbd;
mod gamma_gamma;
mod optimize;

pub use bgnbd::{BgNbdFit, BgNbdParams, hyp2f1_series};
pub use gamma_gamma::{GammaGammaFit, GammaGammaParams};
pub use optimize::{Minimum, minimize};

use std::collections::HashMap;

use foldhash::fast::FixedState;
use rayon::prelude::*;

use crate::stats::deciles;

#[derive(Debug, thiserror::Error)]
pub enum ClvError {
    #[error("invalid CLV input: {0}")]
    Input(String),
    #[error("{model} fit failed: {message}")]
    Fit { model: &'static str, message: String },
    #[error("{model} fit is degenerate: {parameter} = {value:e}; the data cannot identify the model (e.g. too few repeat purchases)")]
    Degenerate {
        model: &'static str,
        parameter: &'static str,
        value: f64,
    },
    #[error("{model} fit did not converge after {iterations} iterations ({reason})")]
    NotConverged {
        model: &'static str,
        iterations: u64,
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Days,
    Weeks,
}

impl TimeUnit {
    /// Periods per month, as lifetimes' `customer_lifetime_value` counts them.
    pub fn per_month(self) -> f64 {
        match self {
            TimeUnit::Days => 30.0,
            TimeUnit::Weeks => 4.345,
        }
    }

    pub fn per_day(self) -> f64 {
        match self {
            TimeUnit::Days => 1.0,
            TimeUnit::Weeks => 1.0 / 7.0,
        }
    }
}

/// Validated `[clv]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ClvSpec {
    pub view: String,
    pub id: String,
    pub time_unit: TimeUnit,
    pub horizon_months: u32,
    pub monthly_discount_rate: f64,
    pub margin: f64,
    pub holdout_days: Option<u32>,
    pub penalizer: f64,
    /// Expected lifetime for `clv_simple`, in `time_unit`; default from the fitted model.
    pub lifetime_periods: Option<f64>,
    /// Refit every run, or predict with saved parameters.
    pub mode: crate::model_mode::ModelMode,
    pub model_from: crate::model_mode::ModelFrom,
}

/// Per-customer summary columns, in matching order.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub frequency: Vec<f64>,
    pub recency: Vec<f64>,
    pub tenure: Vec<f64>,
    pub monetary_value: Vec<f64>,
}

impl Summary {
    /// The input rules of the models, checked with the offending row and value in the error:
    /// frequency is a whole number ≥ 0; 0 ≤ recency ≤ tenure; recency = 0 and
    /// monetary_value = 0 when frequency = 0; monetary_value > 0 when frequency > 0.
    pub fn check(&self, ids: &dyn Fn(usize) -> String) -> Result<(), ClvError> {
        if self.frequency.is_empty() {
            return Err(ClvError::Input("the summary view has no customers".into()));
        }
        for i in 0..self.frequency.len() {
            let (x, tx, t, m) = (self.frequency[i], self.recency[i], self.tenure[i], self.monetary_value[i]);
            let bad = |what: String| Err(ClvError::Input(format!("customer '{}': {what}", ids(i))));
            if x < 0.0 || x.fract() != 0.0 {
                return bad(format!("frequency {x} is not a whole number >= 0"));
            }
            if !(0.0..=t).contains(&tx) {
                return bad(format!("recency {tx} must be between 0 and tenure {t}"));
            }
            if x == 0.0 && tx != 0.0 {
                return bad(format!("recency {tx} must be 0 when frequency is 0"));
            }
            if m < 0.0 {
                return bad(format!("monetary_value {m} is negative"));
            }
            if x > 0.0 && m == 0.0 {
                return bad("monetary_value is 0 for a repeat buyer".into());
            }
        }
        Ok(())
    }
}

/// Everything the CLV stage publishes.
#[derive(Debug, Clone)]
pub struct ClvResult {
    pub bgnbd: BgNbdFit,
    pub gamma_gamma: GammaGammaFit,
    /// Pearson correlation of frequency and monetary value among repeat buyers; Gamma-Gamma
    /// assumes they are independent.
    pub frequency_monetary_corr: f64,
    pub p_alive: Vec<f64>,
    pub expected_purchases: Vec<f64>,
    pub expected_avg_value: Vec<f64>,
    pub clv: Vec<f64>,
    pub clv_simple: Vec<f64>,
    /// 1 (lowest) … 10 (highest CLV).
    pub clv_decile: Vec<i32>,
    /// The lifetime `clv_simple` used, in `time_unit`.
    pub lifetime_periods: f64,
}

/// Both fitted models.
#[derive(Debug, Clone)]
pub struct ClvModels {
    pub bgnbd: BgNbdFit,
    pub gamma_gamma: GammaGammaFit,
    pub frequency_monetary_corr: f64,
}

/// Fits BG/NBD on everyone and Gamma-Gamma on the repeat buyers.
pub fn fit(s: &Summary, penalizer: f64) -> Result<ClvModels, ClvError> {
    let bg = bgnbd::fit(&s.frequency, &s.recency, &s.tenure, penalizer)?;
    let (rx, rm): (Vec<f64>, Vec<f64>) = (0..s.frequency.len())
        .filter(|&i| s.frequency[i] > 0.0)
        .map(|i| (s.frequency[i], s.monetary_value[i]))
        .unzip();
    let gg = gamma_gamma::fit(&rx, &rm, penalizer)?;
    Ok(ClvModels {
        bgnbd: bg,
        gamma_gamma: gg,
        frequency_monetary_corr: pearson(&rx, &rm),
    })
}

/// Saved parameters as fitted models for `s` (score-only runs): BG/NBD's log-likelihood is
/// evaluated on today's customers; nothing is fitted, so iterations are 0.
pub fn with_params(s: &Summary, b: BgNbdParams, g: GammaGammaParams) -> ClvModels {
    let (rx, rm): (Vec<f64>, Vec<f64>) = (0..s.frequency.len())
        .filter(|&i| s.frequency[i] > 0.0)
        .map(|i| (s.frequency[i], s.monetary_value[i]))
        .unzip();
    ClvModels {
        bgnbd: BgNbdFit {
            params: b,
            log_likelihood: b.log_likelihood(&s.frequency, &s.recency, &s.tenure),
            iterations: 0,
            customers: s.frequency.len(),
            unique_tuples: 0,
        },
        gamma_gamma: GammaGammaFit {
            params: g,
            log_likelihood: f64::NAN,
            iterations: 0,
            customers: rx.len(),
        },
        frequency_monetary_corr: pearson(&rx, &rm),
    }
}

/// Fits both models and predicts for every customer.
pub fn value(s: &Summary, spec: &ClvSpec) -> Result<ClvResult, ClvError> {
    predict(s, spec, fit(s, spec.penalizer)?)
}

/// Predicts for every customer with fitted models.
pub fn predict(s: &Summary, spec: &ClvSpec, models: ClvModels) -> Result<ClvResult, ClvError> {
    let ClvModels { bgnbd: bg, gamma_gamma: gg, frequency_monetary_corr: corr } = models;
    let (b, g) = (bg.params, gg.params);

    let n = s.frequency.len();
    // clv_simple's lifetime: the configured one, else the population's expected time to drop
    // out, 1 / (E[λ] · E[p]) = (α / r) · ((a + b) / a) periods.
    let lifetime = spec.lifetime_periods.unwrap_or((b.alpha / b.r) * ((b.a + b.b) / b.a));
    // The costly part of expected purchases (a ₂F₁ series per month) depends only on (x, T):
    // compute it once per distinct pair, in parallel; rayon keeps the order, so results do
    // not depend on the thread count.
    let mut first: HashMap<[u64; 2], usize, FixedState> = HashMap::with_capacity_and_hasher(n, FixedState::default());
    let mut unique: Vec<usize> = Vec::new();
    let slot: Vec<usize> = (0..n)
        .map(|i| {
            *first.entry([s.frequency[i].to_bits(), s.tenure[i].to_bits()]).or_insert_with(|| {
                unique.push(i);
                unique.len() - 1
            })
        })
        .collect();
    let per_pair: Vec<(f64, f64)> =
        unique.par_iter().map(|&i| discounted_numerators(&b, s.frequency[i], s.tenure[i], spec)).collect();
    let (mut p_alive, mut expected, mut avg_value, mut clv, mut clv_simple) =
        (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    (&mut p_alive, &mut expected, &mut avg_value, &mut clv, &mut clv_simple).into_par_iter().enumerate().for_each(
        |(i, (p_alive, expected, avg_value, clv, clv_simple))| {
            let (x, tx, t, m) = (s.frequency[i], s.recency[i], s.tenure[i], s.monetary_value[i]);
            let (discounted, numerator) = per_pair[slot[i]];
            // P(alive) is 1 / eq. 10's denominator (compare eq. 11 of the 2008 note).
            let den = b.purchases_denominator(x, tx, t);
            let v = g.expected_avg_value(x, m);
            // Simple CLV = average order value × purchases per period × lifetime × margin.
            let aov = if x > 0.0 { m } else { g.population_mean() };
            let rate = if t > 0.0 { x / t } else { 0.0 };
            (*p_alive, *expected, *avg_value) = (1.0 / den, numerator / den, v);
            (*clv, *clv_simple) = (spec.margin * v * discounted / den, aov * rate * lifetime * spec.margin);
        },
    );
    let clv_decile = deciles(&clv);
    Ok(ClvResult {
        bgnbd: bg,
        gamma_gamma: gg,
        frequency_monetary_corr: corr,
        p_alive,
        expected_purchases: expected,
        expected_avg_value: avg_value,
        clv,
        clv_simple,
        clv_decile,
        lifetime_periods: lifetime,
    })
}

/// Σ_{m=1..M} v · (E[N(m)] − E[N(m−1)]) / (1 + d)^m, months of `per_month` periods: lifetimes'
/// `_customer_lifetime_value`, before the margin.
pub fn discounted_clv(b: &BgNbdParams, v: f64, x: f64, tx: f64, t: f64, spec: &ClvSpec) -> f64 {
    v * discounted_numerators(b, x, t, spec).0 / b.purchases_denominator(x, tx, t)
}

/// Σ_{m=1..M} (U(m) − U(m−1)) / (1 + d)^m and U(M), where U is eq. 10's numerator
/// ([`BgNbdParams::purchases_numerator`]); divided by the denominator, which does not depend
/// on the horizon, they give the discounted purchases and E[N(M)].
fn discounted_numerators(b: &BgNbdParams, x: f64, t: f64, spec: &ClvSpec) -> (f64, f64) {
    let per_month = spec.time_unit.per_month();
    let mut total = 0.0;
    let mut prev = 0.0;
    for month in 1..=spec.horizon_months {
        let u = b.purchases_numerator(month as f64 * per_month, x, t);
        total += (u - prev) / (1.0 + spec.monthly_discount_rate).powi(month as i32);
        prev = u;
    }
    (total, prev)
}

/// The distinct values of `v` in ascending order, and each value's index into them. Periods
/// and counts take few distinct values, so one hash lookup per customer replaces sorting them
/// all (-0.0 is counted as 0.0).
fn indexed(v: &[f64]) -> (Vec<f64>, Vec<u32>) {
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
fn penalized_objective(theta: &[f64], log_likelihood: f64, gradient: &[f64], n: f64, penalizer: f64) -> (f64, Vec<f64>) {
    let value = -log_likelihood / n + penalizer * theta.iter().map(|v| v * v).sum::<f64>();
    let grad = theta.iter().zip(gradient).map(|(t, g)| t * (-g / n + 2.0 * penalizer * t)).collect();
    (value, grad)
}

/// Customers above which a fit starts from the optimum of a subsample (see [`warm_start`]).
const WARM_START_ROWS: usize = 50_000;

/// The step of the deterministic subsample (every k-th customer) used for a warm start, when
/// there are enough customers for one to pay off.
fn warm_start_step(n: usize) -> Option<usize> {
    (n > 4 * WARM_START_ROWS).then(|| n.div_ceil(WARM_START_ROWS))
}

/// Where a fit on all customers starts: the log-parameters minimising the same objective on a
/// subsample (from θ = 1), and the objective's Hessian there. L-BFGS preconditioned with that
/// Hessian ([`optimize::minimize_near`]) then needs a few evaluations on all the data: the same
/// optimum and tolerance (BENCHMARKS.md). θ = 1 and no Hessian if the subsample fit fails.
struct Start {
    x: Vec<f64>,
    hessian: Option<ndarray::Array2<f64>>,
}

impl Start {
    fn cold(dim: usize) -> Start {
        Start { x: vec![0.0; dim], hessian: None }
    }
}

fn warm_start<F>(objective: F, dim: usize) -> Start
where
    F: Fn(&[f64]) -> (f64, Vec<f64>),
{
    match minimize(&objective, vec![0.0; dim], 2000) {
        Ok(m) if m.converged && m.x.iter().all(|v| v.is_finite()) => Start { hessian: hessian_at(&objective, &m.x), x: m.x },
        _ => Start::cold(dim),
    }
}

/// The Hessian of `f` at `x` by central differences of its analytic gradient, symmetrised.
fn hessian_at<F>(f: F, x: &[f64]) -> Option<ndarray::Array2<f64>>
where
    F: Fn(&[f64]) -> (f64, Vec<f64>),
{
    const STEP: f64 = 1e-4;
    let d = x.len();
    let mut h = ndarray::Array2::zeros((d, d));
    for j in 0..d {
        let at = |e: f64| {
            let mut p = x.to_vec();
            p[j] += e;
            f(&p).1
        };
        let (up, down) = (at(STEP), at(-STEP));
        for i in 0..d {
            h[[i, j]] = (up[i] - down[i]) / (2.0 * STEP);
        }
    }
    let h = (&h + &h.t()) / 2.0;
    h.iter().all(|v| v.is_finite()).then_some(h)
}

/// Minimises `objective` over log-parameters from `start` and returns the natural parameters
/// and the iteration count; a fit that does not converge or runs off to 0 or infinity is an
/// error naming `model`.
fn fit_positive<F>(model: &'static str, names: &[&'static str], objective: F, start: Start) -> Result<(Vec<f64>, u64), ClvError>
where
    F: Fn(&[f64]) -> (f64, Vec<f64>),
{
    let m = match &start.hessian {
        Some(h) => optimize::minimize_near(objective, start.x, h, 2000),
        None => minimize(objective, start.x, 2000),
    }
    .map_err(|message| ClvError::Fit { model, message })?;
    if !m.converged {
        return Err(ClvError::NotConverged {
            model,
            iterations: m.iterations,
            reason: m.reason,
        });
    }
    let theta: Vec<f64> = m.x.iter().map(|v| v.exp()).collect();
    let named: Vec<(&'static str, f64)> = names.iter().copied().zip(theta.iter().copied()).collect();
    check_degenerate(model, &named)?;
    Ok((theta, m.iterations))
}

/// Parameters driven to 0 or infinity mean the likelihood has no interior maximum for this
/// data; report that instead of publishing meaningless values.
fn check_degenerate(model: &'static str, params: &[(&'static str, f64)]) -> Result<(), ClvError> {
    match params.iter().find(|(_, v)| !(1e-6..=1e6).contains(v)) {
        Some(&(parameter, value)) => Err(ClvError::Degenerate { model, parameter, value }),
        None => Ok(()),
    }
}


fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    if n < 2.0 {
        return f64::NAN;
    }
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    sxy / (sxx * syy).sqrt()
}

/// One row of `clv_validation`.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldoutBucket {
    pub bucket: String,
    pub customers: usize,
    pub actual_holdout: f64,
    pub predicted_holdout: f64,
}

/// Holdout summary: per calibration-frequency bucket (0 … 6, "7+"), the mean actual and
/// predicted repeat purchases in the holdout, plus the mean absolute error per customer.
pub fn holdout(frequency_cal: &[f64], actual: &[f64], predicted: &[f64]) -> (Vec<HoldoutBucket>, f64) {
    let mut sums = [(0usize, 0.0, 0.0); 8];
    let mut abs_err = 0.0;
    for i in 0..frequency_cal.len() {
        let k = (frequency_cal[i] as usize).min(7);
        sums[k].0 += 1;
        sums[k].1 += actual[i];
        sums[k].2 += predicted[i];
        abs_err += (actual[i] - predicted[i]).abs();
    }
    let rows = sums
        .iter()
        .enumerate()
        .filter(|(_, s)| s.0 > 0)
        .map(|(k, s)| HoldoutBucket {
            bucket: if k == 7 { "7+".into() } else { k.to_string() },
            customers: s.0,
            actual_holdout: s.1 / s.0 as f64,
            predicted_holdout: s.2 / s.0 as f64,
        })
        .collect();
    (rows, abs_err / frequency_cal.len().max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;


    #[test]
    fn negative_monetary_value_is_refused_naming_the_customer() {
        let s = Summary {
            frequency: vec![1.0],
            recency: vec![2.0],
            tenure: vec![3.0],
            monetary_value: vec![-5.0],
        };
        let err = s.check(&|_| "C1".to_string()).unwrap_err();
        assert_eq!(err.to_string(), "invalid CLV input: customer 'C1': monetary_value -5 is negative");
    }

    #[test]
    fn recency_cannot_exceed_tenure() {
        let s = Summary {
            frequency: vec![2.0],
            recency: vec![4.0],
            tenure: vec![3.0],
            monetary_value: vec![5.0],
        };
        assert!(s.check(&|_| "C1".to_string()).unwrap_err().to_string().contains("recency 4 must be between 0 and tenure 3"));
    }
}
