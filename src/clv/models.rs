//! Both fitted models together ([`ClvModels`]): fitted on a summary ([`fit`]) or rebuilt from
//! saved parameters ([`with_params`]).

use super::covariates::{self, Coefficient, Effects, Group};
use super::error::ClvError;
use super::purchase::{self, PurchaseFit, PurchaseParams};
use super::spec::PurchaseModel;
use super::tuples::{self, PurchaseTuple};
use super::gamma_gamma::{self, GammaGammaFit, GammaGammaParams};
use super::summary::Summary;

/// Both fitted models.
#[derive(Debug, Clone)]
pub struct ClvModels {
    /// The purchase model's fit (BG/NBD, MBG/NBD, Pareto/NBD or BG/BB).
    pub bgnbd: PurchaseFit,
    /// The covariates' effects, when the job has covariates: `bgnbd`'s parameters are then a
    /// customer's whose covariates are all 0.
    pub effects: Option<Effects>,
    pub gamma_gamma: GammaGammaFit,
    pub frequency_monetary_corr: f64,
}

/// Fits the purchase model on everyone and Gamma-Gamma on the repeat buyers.
pub fn fit(s: &Summary, model: PurchaseModel, penalizer: f64) -> Result<ClvModels, ClvError> {
    let (rx, rm) = repeat_buyers(s);
    fit_tuples(&tuples::compress(&s.frequency, &s.recency, &s.tenure), &rx, &rm, model, penalizer)
}

/// The purchase model's fit and Gamma-Gamma's at once: each sums its likelihood over the
/// cores already, but both have serial parts (indexing the data, the optimiser's steps) that
/// the other's work fills. Each fit is the same whatever runs beside it.
fn side_by_side<A: Send, B: Send>(purchase: impl FnOnce() -> A + Send, spend: impl FnOnce() -> B + Send) -> (A, B) {
    rayon::join(purchase, spend)
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
    let (bgnbd, gamma_gamma) = side_by_side(|| purchase::fit_tuples(tuples, model, penalizer), || gamma_gamma::fit(repeat_frequency, repeat_monetary, penalizer));
    Ok(ClvModels {
        bgnbd: bgnbd?,
        effects: None,
        gamma_gamma: gamma_gamma?,
        frequency_monetary_corr: pearson(repeat_frequency, repeat_monetary),
    })
}

/// [`fit_tuples`] with covariates: the purchase model on customers grouped by their
/// covariates, with `coefficients` (`clv::coefficients`; none fits as [`fit_tuples`] does).
pub fn fit_with_covariates(
    groups: &[Group<PurchaseTuple>],
    repeat_frequency: &[f64],
    repeat_monetary: &[f64],
    model: PurchaseModel,
    coefficients: Vec<Coefficient>,
    penalizer: f64,
) -> Result<ClvModels, ClvError> {
    let (fit, gamma_gamma) = side_by_side(|| covariates::fit_groups(groups, model, coefficients, penalizer), || gamma_gamma::fit(repeat_frequency, repeat_monetary, penalizer));
    let fit = fit?;
    Ok(ClvModels {
        bgnbd: fit.fit,
        effects: fit.effects,
        gamma_gamma: gamma_gamma?,
        frequency_monetary_corr: pearson(repeat_frequency, repeat_monetary),
    })
}

/// Saved parameters as fitted models for `s` (score-only runs): the purchase model's log-likelihood is
/// evaluated on today's customers; nothing is fitted, so iterations are 0.
pub fn with_params(s: &Summary, b: PurchaseParams, g: GammaGammaParams) -> ClvModels {
    let (rx, rm) = repeat_buyers(s);
    with_params_tuples(&tuples::compress(&s.frequency, &s.recency, &s.tenure), &rx, &rm, b, g)
}

/// [`with_params_tuples`] for customers grouped by their covariates, with the saved
/// covariates' `effects` (the log-likelihood sums each group's at its parameters).
pub fn with_params_groups(
    groups: &[Group<PurchaseTuple>],
    repeat_frequency: &[f64],
    repeat_monetary: &[f64],
    b: PurchaseParams,
    g: GammaGammaParams,
    effects: Option<Effects>,
) -> ClvModels {
    let Some(e) = effects else {
        let all: Vec<PurchaseTuple> = groups.iter().flat_map(|g| g.tuples.iter().copied()).collect();
        return with_params_tuples(&all, repeat_frequency, repeat_monetary, b, g);
    };
    let log_likelihood = groups.iter().map(|g| e.params_at(&b, &g.z).log_likelihood_tuples(&g.tuples)).sum();
    let customers = groups.iter().flat_map(|g| &g.tuples).map(|t| t.customers as usize).sum();
    saved_models(customers, log_likelihood, repeat_frequency, repeat_monetary, b, g, Some(e))
}

/// [`with_params`] from the inputs of [`fit_tuples`].
pub fn with_params_tuples(tuples: &[PurchaseTuple], repeat_frequency: &[f64], repeat_monetary: &[f64], b: PurchaseParams, g: GammaGammaParams) -> ClvModels {
    let customers = tuples.iter().map(|t| t.customers as usize).sum();
    saved_models(customers, b.log_likelihood_tuples(tuples), repeat_frequency, repeat_monetary, b, g, None)
}

/// Saved parameters as [`ClvModels`], with the purchase model's log-likelihood on today's
/// `customers`; nothing is fitted, so iterations are 0.
fn saved_models(
    customers: usize,
    log_likelihood: f64,
    repeat_frequency: &[f64],
    repeat_monetary: &[f64],
    b: PurchaseParams,
    g: GammaGammaParams,
    effects: Option<Effects>,
) -> ClvModels {
    ClvModels {
        bgnbd: PurchaseFit {
            params: b,
            // A saved model's covariance, if it has one, is the caller's to set.
            covariance: None,
            log_likelihood,
            iterations: 0,
            customers,
            unique_tuples: 0,
            fallback: None,
        },
        effects,
        gamma_gamma: GammaGammaFit {
            params: g,
            log_likelihood: f64::NAN,
            iterations: 0,
            customers: repeat_frequency.len(),
            fallback: None,
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::clv::{ClvSpec, TimeUnit, predict};

    fn spec(model: PurchaseModel) -> ClvSpec {
        ClvSpec {
            view: "s".into(),
            id: "id".into(),
            model,
            time_unit: TimeUnit::Weeks,
            horizon_months: 12,
            monthly_discount_rate: 0.01,
            margin: 1.0,
            holdout_days: None,
            penalizer: 0.0,
            lifetime_periods: None,
            fit_sample: crate::clv::DEFAULT_FIT_SAMPLE,
            mode: Default::default(),
            model_from: Default::default(),
            auto: false,
            tracking: None,
            intervals: true,
            covariates: Default::default(),
        }
    }

    /// A customer as the summary check accepts it, drawn to reach the corners: no repeat
    /// purchase, tenure 0, recency equal to tenure, huge frequencies and values, a cent.
    fn customer() -> impl Strategy<Value = (f64, f64, f64, f64)> {
        let tenure = prop_oneof![Just(0.0), Just(1.0), 0.0..500.0f64, Just(1e5)];
        let frequency = prop_oneof![Just(0u32), Just(1u32), 0u32..30, Just(1_000_000u32)].prop_map(|x| x as f64);
        let value = prop_oneof![Just(0.01), 0.5..500.0f64, Just(1e9)];
        // A repeat buyer's purchases take time (the summary check requires recency > 0).
        (tenure, frequency, 0.01..=1.0f64, value).prop_map(|(t, x, share, m)| {
            if x == 0.0 { (0.0, 0.0, t, 0.0) } else { (x, share * t.max(1.0), t.max(1.0), m) }
        })
    }

    /// One customer, a few, many identical ones, or a mix.
    fn summary() -> impl Strategy<Value = Summary> {
        let many_alike = (customer(), 2usize..400).prop_map(|(c, n)| vec![c; n]);
        prop_oneof![proptest::collection::vec(customer(), 1..40), many_alike].prop_map(|cs| Summary {
            frequency: cs.iter().map(|c| c.0).collect(),
            recency: cs.iter().map(|c| c.1).collect(),
            tenure: cs.iter().map(|c| c.2).collect(),
            monetary_value: cs.iter().map(|c| c.3).collect(),
        })
    }

    /// `s` in BG/BB's whole periods: recency and tenure rounded up, frequency at most recency.
    /// Tenure is capped at 1,000 periods (the likelihood sums n − t_x terms per tuple, and
    /// daily periods over three years are the most a discrete model is meant for).
    fn whole_periods(mut s: Summary) -> Summary {
        for i in 0..s.frequency.len() {
            s.tenure[i] = s.tenure[i].ceil().min(1000.0);
            s.recency[i] = s.recency[i].ceil().min(s.tenure[i]);
            s.frequency[i] = s.frequency[i].min(s.recency[i]);
        }
        s
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
        /// Whatever the data, a fit either gives finite parameters and predictions in range
        /// or a one-line error; it never panics or publishes NaN.
        #[test]
        fn degenerate_summaries_fit_or_fail_in_one_line(s in summary(), which in 0..PurchaseModel::ALL.len()) {
            let model = PurchaseModel::ALL[which];
            let s = if model.discrete() { whole_periods(s) } else { s };
            prop_assume!(s.check(model.discrete(), &|i| i.to_string()).is_ok());
            match fit(&s, model, 0.0) {
                Ok(m) => {
                    let b = m.bgnbd.params;
                    prop_assert!(b.values().iter().all(|v| v.is_finite() && *v > 0.0), "{b:?}");
                    let r = match predict(&s, &spec(model), m) {
                        Ok(r) => r,
                        Err(e) => {
                            prop_assert!(!e.to_string().contains('\n'), "{e}");
                            return Ok(());
                        }
                    };
                    for i in 0..s.frequency.len() {
                        prop_assert!((0.0..=1.0).contains(&r.p_alive[i]), "p_alive {} at {i}", r.p_alive[i]);
                        prop_assert!(r.expected_purchases[i].is_finite() && r.expected_purchases[i] >= 0.0, "expected {}", r.expected_purchases[i]);
                        prop_assert!(r.clv[i].is_finite() && r.clv[i] >= 0.0, "clv {}", r.clv[i]);
                    }
                }
                Err(e) => {
                    let text = e.to_string();
                    prop_assert!(!text.is_empty() && !text.contains('\n'), "{text}");
                }
            }
        }
    }
}
