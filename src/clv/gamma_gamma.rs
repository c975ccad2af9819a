//! Gamma-Gamma spend model: Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves
//! for Customer Base Analysis", J. Marketing Research 42(4); the likelihood as in Fader &
//! Hardie's note "The Gamma-Gamma Model of Monetary Value" (2013).
//!
//! Each transaction value z ~ Gamma(p, ν), ν ~ Gamma(q, γ) across customers. Fitted on
//! customers with x > 0 repeat purchases and mean repeat value m̄ > 0, by minimising the mean
//! negative log-likelihood plus `penalizer · (p² + q² + γ²)` over log-parameters, as
//! lifetimes 0.11.3 does (its `v` is our γ).

use rayon::prelude::*;
use statrs::function::gamma::{digamma, ln_gamma};

use super::error::ClvError;
use super::fitting;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GammaGammaParams {
    pub p: f64,
    pub q: f64,
    pub gamma: f64,
}

#[derive(Debug, Clone)]
pub struct GammaGammaFit {
    pub params: GammaGammaParams,
    pub log_likelihood: f64,
    pub iterations: u64,
    pub customers: usize,
    /// Set when the job's penalizer gave no fit and [`fitting::FALLBACK_PENALIZER`] did.
    pub fallback: Option<fitting::Fallback>,
}

/// Repeat buyers prepared for repeated likelihood evaluations: the Γ and ψ terms depend on x
/// only, so they are computed once per distinct x; the terms linear in p are constant sums.
struct Data<'a> {
    x: &'a [f64],
    m: &'a [f64],
    /// Distinct x values, and each customer's index into them with its count.
    xs: Vec<f64>,
    x_count: Vec<f64>,
    /// Σ x (ln m̄ + ln x) and Σ ln m̄.
    sum_x_lnmx: f64,
    sum_ln_m: f64,
}

impl<'a> Data<'a> {
    fn new(x: &'a [f64], m: &'a [f64]) -> Data<'a> {
        let (xs, index) = fitting::indexed(x);
        let mut x_count = vec![0.0; xs.len()];
        for i in index {
            x_count[i as usize] += 1.0;
        }
        // Fixed chunks summed in order: the sums do not depend on the thread count.
        let sums: Vec<(f64, f64)> = x
            .par_chunks(8192)
            .zip(m.par_chunks(8192))
            .map(|(xc, mc)| xc.iter().zip(mc).fold((0.0, 0.0), |(a, b), (&x, &m)| (a + x * (m.ln() + x.ln()), b + m.ln())))
            .collect();
        Data {
            x,
            m,
            xs,
            x_count,
            sum_x_lnmx: sums.iter().map(|s| s.0).sum(),
            sum_ln_m: sums.iter().map(|s| s.1).sum(),
        }
    }

    /// Sum of ln f(m̄ | x; p, q, γ) and its gradient in (p, q, γ):
    /// ln Γ(px+q) − ln Γ(px) − ln Γ(q) + q ln γ + (px−1) ln m̄ + px ln x − (px+q) ln(x m̄ + γ).
    fn log_likelihood(&self, pr: &GammaGammaParams) -> (f64, [f64; 3]) {
        let GammaGammaParams { p, q, gamma } = *pr;
        let n = self.x.len() as f64;
        let (lg_q, dg_q, ln_g) = (ln_gamma(q), digamma(q), gamma.ln());
        // Terms that depend on x only, weighted by how many customers share the x.
        let (mut ll, mut gp, mut gq) = (0.0, 0.0, 0.0);
        for (&x, &c) in self.xs.iter().zip(&self.x_count) {
            let px = p * x;
            let dg_pxq = digamma(px + q);
            ll += c * (ln_gamma(px + q) - ln_gamma(px));
            gp += c * x * (dg_pxq - digamma(px));
            gq += c * dg_pxq;
        }
        ll += n * (q * ln_g - lg_q) + p * self.sum_x_lnmx - self.sum_ln_m;
        gp += self.sum_x_lnmx;
        gq += n * (ln_g - dg_q);
        // The per-customer part: −(px+q) ln(x m̄ + γ), summed in fixed chunks so the result
        // does not depend on the thread count.
        let partials: Vec<[f64; 4]> = self
            .x
            .par_chunks(8192)
            .zip(self.m.par_chunks(8192))
            .map(|(xc, mc)| {
                let mut s = [0.0; 4];
                for (&x, &m) in xc.iter().zip(mc) {
                    let d = x * m + gamma;
                    let ln_d = d.ln();
                    s[0] += (p * x + q) * ln_d;
                    s[1] += x * ln_d;
                    s[2] += ln_d;
                    s[3] += (p * x + q) / d;
                }
                s
            })
            .collect();
        let mut s = [0.0; 4];
        for part in &partials {
            for k in 0..4 {
                s[k] += part[k];
            }
        }
        (ll - s[0], [gp - s[1], gq - s[2], n * q / gamma - s[3]])
    }
}

/// Fits (p, q, γ) on repeat buyers: `x[i] > 0` and `m[i] > 0` for every i.
pub fn fit(x: &[f64], m: &[f64], penalizer: f64) -> Result<GammaGammaFit, ClvError> {
    let (fit, fallback) = fitting::with_fallback(penalizer, |p| fit_from(x, m, p, true))?;
    Ok(GammaGammaFit { fallback, ..fit })
}

/// [`fit`], optionally without the subsample warm start (tests compare the two).
fn fit_from(x: &[f64], m: &[f64], penalizer: f64, warm: bool) -> Result<GammaGammaFit, ClvError> {
    if x.is_empty() {
        return Err(ClvError::Input("Gamma-Gamma needs at least one customer with a repeat purchase".into()));
    }
    let data = Data::new(x, m);
    let objective = |data: &Data, theta: &[f64]| {
        let pr = GammaGammaParams {
            p: theta[0].exp(),
            q: theta[1].exp(),
            gamma: theta[2].exp(),
        };
        let (ll, g) = data.log_likelihood(&pr);
        fitting::penalized_objective(&[pr.p, pr.q, pr.gamma], ll, &g, data.x.len() as f64, penalizer)
    };
    let start = match fitting::warm_start_step(x.len()).filter(|_| warm) {
        Some(k) => {
            let pick = |v: &[f64]| v.iter().step_by(k).copied().collect::<Vec<f64>>();
            let (sx, sm) = (pick(x), pick(m));
            let sub = Data::new(&sx, &sm);
            fitting::warm_start(|theta| objective(&sub, theta), 3)
        }
        None => fitting::Start::cold(3),
    };
    let fitting::Fitted { x: theta, iterations, .. } = fitting::fit_positive("gamma_gamma", &["p", "q", "gamma"], |theta| objective(&data, theta), start)?;
    let params = GammaGammaParams {
        p: theta[0],
        q: theta[1],
        gamma: theta[2],
    };
    Ok(GammaGammaFit {
        params,
        log_likelihood: data.log_likelihood(&params).0,
        iterations,
        customers: x.len(),
        fallback: None,
    })
}

impl GammaGammaParams {
    /// Checks that the expected spend per purchase (eq. 5) is finite and positive for a
    /// customer with `x` repeat purchases, the fewest any customer has: p·x + q − 1 > 0. With
    /// q ≤ 1 (a penalizer shrinks q; lifetimes fits such values too) it is not for customers
    /// without repeat purchases, whose expected spend would come out negative.
    pub fn check_predicts(&self, x: f64) -> Result<(), ClvError> {
        if self.p * x + self.q - 1.0 > 0.0 {
            return Ok(());
        }
        let message = format!(
            "q = {:.4} leaves the expected spend of customers with {x} repeat purchases infinite (it needs p·x + q > 1); \
             a smaller [clv] penalizer shrinks q less",
            self.q
        );
        Err(ClvError::Fit { model: "gamma_gamma", message })
    }

    /// E[Z | x, m̄] = (γ + x m̄) p / (p x + q − 1), eq. 5 of the 2005 paper: a weighted mean of
    /// the population mean p γ / (q − 1) and the customer's own m̄ (the population mean when
    /// x = 0).
    pub fn expected_avg_value(&self, x: f64, m: f64) -> f64 {
        self.p * (self.gamma + x * m) / (self.p * x + self.q - 1.0)
    }

    /// The population mean transaction value p γ / (q − 1) (finite only for q > 1).
    pub fn population_mean(&self) -> f64 {
        self.p * self.gamma / (self.q - 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_start_reaches_the_same_optimum() {
        use rand::SeedableRng;
        use rand_distr::{Distribution, Gamma};
        // Gamma-Gamma's generative story (Fader, Hardie & Lee 2005): ν ~ Gamma(q, γ) per
        // customer, each of x orders ~ Gamma(p, ν); m̄ is their mean.
        let mut rng = rand_xoshiro::Xoshiro256Plus::seed_from_u64(9);
        let nu = Gamma::new(3.5, 1.0 / 20.0).unwrap();
        let (mut x, mut m) = (Vec::new(), Vec::new());
        for i in 0..250_000 {
            let k = 1 + i % 6;
            let z = Gamma::new(6.0, 1.0 / nu.sample(&mut rng)).unwrap();
            x.push(k as f64);
            m.push((0..k).map(|_| z.sample(&mut rng)).sum::<f64>() / k as f64);
        }
        let warm = fit(&x, &m, 0.0).unwrap().params;
        let cold = fit_from(&x, &m, 0.0, false).unwrap().params;
        for (w, c) in [(warm.p, cold.p), (warm.q, cold.q), (warm.gamma, cold.gamma)] {
            assert!((w / c - 1.0).abs() < 1e-6, "warm {warm:?} vs cold {cold:?}");
        }
    }

    #[test]
    fn grouped_likelihood_equals_the_per_customer_formula() {
        let x: [f64; 4] = [1.0, 2.0, 5.0, 2.0];
        let m: [f64; 4] = [10.0, 35.5, 20.0, 7.0];
        let pr = GammaGammaParams { p: 5.0, q: 3.0, gamma: 12.0 };
        let direct: f64 = x
            .iter()
            .zip(&m)
            .map(|(&x, &m)| {
                let px = pr.p * x;
                ln_gamma(px + pr.q) - ln_gamma(px) - ln_gamma(pr.q) + pr.q * pr.gamma.ln() + (px - 1.0) * m.ln() + px * x.ln()
                    - (px + pr.q) * (x * m + pr.gamma).ln()
            })
            .sum();
        let grouped = Data::new(&x, &m).log_likelihood(&pr).0;
        assert!((direct - grouped).abs() < 1e-9 * direct.abs(), "{direct} vs {grouped}");
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let x = [1.0, 2.0, 5.0, 9.0, 2.0];
        let m = [10.0, 35.5, 20.0, 48.0, 7.0];
        let pr = GammaGammaParams { p: 5.0, q: 3.0, gamma: 12.0 };
        let d = Data::new(&x, &m);
        let (_, g) = d.log_likelihood(&pr);
        let h = 1e-6;
        let at = |k: usize, e: f64| {
            let mut v = [pr.p, pr.q, pr.gamma];
            v[k] += e;
            d.log_likelihood(&GammaGammaParams { p: v[0], q: v[1], gamma: v[2] }).0
        };
        for (k, gk) in g.iter().enumerate() {
            let fd = (at(k, h) - at(k, -h)) / (2.0 * h);
            assert!((fd - gk).abs() < 1e-6 * (1.0 + gk.abs()), "parameter {k}: {fd} vs {gk}");
        }
    }
}
