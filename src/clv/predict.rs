//! Per-customer predictions with fitted models ([`predict`], [`value`]): P(alive), expected
//! purchases and spend, discounted CLV over the horizon and the simple CLV formula.

use std::collections::HashMap;

use foldhash::fast::FixedState;
use rayon::prelude::*;

use super::error::{ClvError, out_of_range};
use super::purchase::{PurchaseFit, PurchaseParams};
use super::gamma_gamma::GammaGammaFit;
use super::models::{ClvModels, fit};
use super::spec::ClvSpec;
use super::summary::Summary;
use crate::stats::deciles;

/// Everything the CLV stage publishes.
#[derive(Debug, Clone)]
pub struct ClvResult {
    /// The purchase model's fit.
    pub bgnbd: PurchaseFit,
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

/// Fits both models and predicts for every customer.
pub fn value(s: &Summary, spec: &ClvSpec) -> Result<ClvResult, ClvError> {
    predict(s, spec, fit(s, spec.model, spec.penalizer)?)
}

/// Predicts for every customer with fitted models without covariates (a [`Summary`] has
/// none; runs with covariates predict in the engine, each customer at their parameters).
pub fn predict(s: &Summary, spec: &ClvSpec, models: ClvModels) -> Result<ClvResult, ClvError> {
    let ClvModels { bgnbd: bg, gamma_gamma: gg, frequency_monetary_corr: corr, effects } = models;
    if effects.is_some() {
        return Err(ClvError::Input("a summary without covariates cannot be valued with a covariate model".into()));
    }
    let (b, g) = (bg.params, gg.params);
    g.check_predicts(s.frequency.iter().copied().fold(f64::INFINITY, f64::min))?;

    let n = s.frequency.len();
    let lifetime = lifetime_periods(spec, &b);
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
    let in_range = |i: usize| is_probability(p_alive[i]) && is_amount(expected[i]) && is_amount(clv[i]);
    if let Some(i) = (0..n).find(|&i| !in_range(i)) {
        let customer = [("frequency", s.frequency[i]), ("recency", s.recency[i]), ("tenure", s.tenure[i])];
        let message = out_of_range(&customer, &b.named());
        return Err(ClvError::Fit { model: b.model().as_str(), message });
    }
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

// Parameters at the edge of what the data identify (a fit on a handful of customers, with a in
// the thousands) overflow the ₂F₁ series: the driver (`predict`) and the SQL functions that
// write `customer_clv` both stop rather than publish NaN or negatives.

/// Whether `v` can be a probability.
pub fn is_probability(v: f64) -> bool {
    (0.0..=1.0).contains(&v)
}

/// Whether `v` can be an expected count or amount: finite and not negative.
pub fn is_amount(v: f64) -> bool {
    v >= 0.0 && v.is_finite()
}

/// `clv_simple`'s lifetime: the configured one, else the population's expected time to drop
/// out ([`PurchaseParams::mean_lifetime`]).
pub fn lifetime_periods(spec: &ClvSpec, b: &PurchaseParams) -> f64 {
    spec.lifetime_periods.unwrap_or(b.mean_lifetime())
}

/// Σ_{m=1..M} v · (E[N(m)] − E[N(m−1)]) / (1 + d)^m, months of `per_month` periods: lifetimes'
/// `_customer_lifetime_value`, before the margin.
pub fn discounted_clv(b: &PurchaseParams, v: f64, x: f64, tx: f64, t: f64, spec: &ClvSpec) -> f64 {
    v * discounted_numerators(b, x, t, spec).0 / b.purchases_denominator(x, tx, t)
}

/// Σ_{m=1..M} (U(m) − U(m−1)) / (1 + d)^m and U(M), where U is eq. 10's numerator
/// ([`PurchaseParams::purchases_numerator`]); divided by the denominator, which does not depend
/// on the horizon, they give the discounted purchases and E[N(M)].
fn discounted_numerators(b: &PurchaseParams, x: f64, t: f64, spec: &ClvSpec) -> (f64, f64) {
    discounted_numerators_over(b, x, t, spec.time_unit.per_month(), spec.horizon_months, spec.monthly_discount_rate)
}

/// [`discounted_numerators`] with the horizon, the discount rate and the periods per month
/// spelled out (for the SQL function `bgnbd_gg_clv`).
pub fn discounted_numerators_over(b: &PurchaseParams, x: f64, t: f64, per_month: f64, horizon_months: u32, monthly_discount_rate: f64) -> (f64, f64) {
    let mut total = 0.0;
    let mut prev = 0.0;
    for month in 1..=horizon_months {
        let u = b.purchases_numerator(month as f64 * per_month, x, t);
        total += (u - prev) / (1.0 + monthly_discount_rate).powi(month as i32);
        prev = u;
    }
    (total, prev)
}
