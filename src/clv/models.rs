//! Both fitted models together ([`ClvModels`]): fitted on a summary ([`fit`]) or rebuilt from
//! saved parameters ([`with_params`]).

use super::bgnbd::{self, BgNbdFit, BgNbdParams, PurchaseModel, PurchaseTuple};
use super::error::ClvError;
use super::gamma_gamma::{self, GammaGammaFit, GammaGammaParams};
use super::summary::Summary;

/// Both fitted models.
#[derive(Debug, Clone)]
pub struct ClvModels {
    pub bgnbd: BgNbdFit,
    pub gamma_gamma: GammaGammaFit,
    pub frequency_monetary_corr: f64,
}

/// Fits BG/NBD (or MBG/NBD) on everyone and Gamma-Gamma on the repeat buyers.
pub fn fit(s: &Summary, model: PurchaseModel, penalizer: f64) -> Result<ClvModels, ClvError> {
    let (rx, rm) = repeat_buyers(s);
    fit_tuples(&bgnbd::compress(&s.frequency, &s.recency, &s.tenure), &rx, &rm, model, penalizer)
}

/// [`fit`] from what the fits read: every customer as (x, t_x, T) tuples for BG/NBD, and
/// repeat buyers' frequency and monetary value (all of them, or a sample) for Gamma-Gamma.
pub fn fit_tuples(
    tuples: &[PurchaseTuple],
    repeat_frequency: &[f64],
    repeat_monetary: &[f64],
    model: PurchaseModel,
    penalizer: f64,
) -> Result<ClvModels, ClvError> {
    Ok(ClvModels {
        bgnbd: bgnbd::fit_tuples(tuples, model, penalizer)?,
        gamma_gamma: gamma_gamma::fit(repeat_frequency, repeat_monetary, penalizer)?,
        frequency_monetary_corr: pearson(repeat_frequency, repeat_monetary),
    })
}

/// Saved parameters as fitted models for `s` (score-only runs): BG/NBD's log-likelihood is
/// evaluated on today's customers; nothing is fitted, so iterations are 0.
pub fn with_params(s: &Summary, b: BgNbdParams, g: GammaGammaParams) -> ClvModels {
    let (rx, rm) = repeat_buyers(s);
    with_params_tuples(&bgnbd::compress(&s.frequency, &s.recency, &s.tenure), &rx, &rm, b, g)
}

/// [`with_params`] from the inputs of [`fit_tuples`].
pub fn with_params_tuples(tuples: &[PurchaseTuple], repeat_frequency: &[f64], repeat_monetary: &[f64], b: BgNbdParams, g: GammaGammaParams) -> ClvModels {
    ClvModels {
        bgnbd: BgNbdFit {
            params: b,
            log_likelihood: b.log_likelihood_tuples(tuples),
            iterations: 0,
            customers: tuples.iter().map(|t| t.customers as usize).sum(),
            unique_tuples: 0,
        },
        gamma_gamma: GammaGammaFit {
            params: g,
            log_likelihood: f64::NAN,
            iterations: 0,
            customers: repeat_frequency.len(),
        },
        frequency_monetary_corr: pearson(repeat_frequency, repeat_monetary),
    }
}

fn repeat_buyers(s: &Summary) -> (Vec<f64>, Vec<f64>) {
    (0..s.frequency.len()).filter(|&i| s.frequency[i] > 0.0).map(|i| (s.frequency[i], s.monetary_value[i])).unzip()
}

/// Pearson correlation of `x` and `y` (NaN for fewer than two pairs).
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
