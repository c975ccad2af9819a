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

use super::ClvError;
use super::optimize::minimize;

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
}

/// Sum of ln f(m̄ | x; p, q, γ) and its gradient in (p, q, γ):
/// ln Γ(px+q) − ln Γ(px) − ln Γ(q) + q ln γ + (px−1) ln m̄ + px ln x − (px+q) ln(x m̄ + γ).
fn log_likelihood(x: &[f64], m: &[f64], pr: &GammaGammaParams) -> (f64, [f64; 3]) {
    let GammaGammaParams { p, q, gamma } = *pr;
    let (lg_q, dg_q, ln_g) = (ln_gamma(q), digamma(q), gamma.ln());
    let partials: Vec<[f64; 4]> = x
        .par_chunks(4096)
        .zip(m.par_chunks(4096))
        .map(|(xc, mc)| {
            let mut s = [0.0; 4];
            for (&x, &m) in xc.iter().zip(mc) {
                let px = p * x;
                let (ln_m, ln_x, ln_xm) = (m.ln(), x.ln(), (x * m + gamma).ln());
                s[0] += ln_gamma(px + q) - ln_gamma(px) - lg_q + q * ln_g + (px - 1.0) * ln_m + px * ln_x - (px + q) * ln_xm;
                let dg_pxq = digamma(px + q);
                s[1] += x * (dg_pxq - digamma(px) + ln_m + ln_x - ln_xm);
                s[2] += dg_pxq - dg_q + ln_g - ln_xm;
                s[3] += q / gamma - (px + q) / (x * m + gamma);
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
    (s[0], [s[1], s[2], s[3]])
}

/// Fits (p, q, γ) on repeat buyers: `x[i] > 0` and `m[i] > 0` for every i.
pub fn fit(x: &[f64], m: &[f64], penalizer: f64) -> Result<GammaGammaFit, ClvError> {
    if x.is_empty() {
        return Err(ClvError::Input("Gamma-Gamma needs at least one customer with a repeat purchase".into()));
    }
    let n = x.len() as f64;
    let objective = |theta: &[f64]| {
        let pr = GammaGammaParams {
            p: theta[0].exp(),
            q: theta[1].exp(),
            gamma: theta[2].exp(),
        };
        let (ll, g) = log_likelihood(x, m, &pr);
        let natural = [pr.p, pr.q, pr.gamma];
        let value = -ll / n + penalizer * natural.iter().map(|v| v * v).sum::<f64>();
        let grad = (0..3).map(|k| natural[k] * (-g[k] / n + 2.0 * penalizer * natural[k])).collect();
        (value, grad)
    };
    let r = minimize(objective, vec![0.0; 3], 2000).map_err(|e| ClvError::Fit { model: "gamma_gamma", message: e })?;
    if !r.converged {
        return Err(ClvError::NotConverged {
            model: "gamma_gamma",
            iterations: r.iterations,
            reason: r.reason,
        });
    }
    let params = GammaGammaParams {
        p: r.x[0].exp(),
        q: r.x[1].exp(),
        gamma: r.x[2].exp(),
    };
    super::check_degenerate("gamma_gamma", &[("p", params.p), ("q", params.q), ("gamma", params.gamma)])?;
    Ok(GammaGammaFit {
        params,
        log_likelihood: log_likelihood(x, m, &params).0,
        iterations: r.iterations,
        customers: x.len(),
    })
}

impl GammaGammaParams {
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
    fn gradient_matches_finite_differences() {
        let x = [1.0, 2.0, 5.0, 9.0];
        let m = [10.0, 35.5, 20.0, 48.0];
        let pr = GammaGammaParams { p: 5.0, q: 3.0, gamma: 12.0 };
        let (_, g) = log_likelihood(&x, &m, &pr);
        let h = 1e-6;
        let at = |k: usize, e: f64| {
            let mut v = [pr.p, pr.q, pr.gamma];
            v[k] += e;
            log_likelihood(&x, &m, &GammaGammaParams { p: v[0], q: v[1], gamma: v[2] }).0
        };
        for (k, gk) in g.iter().enumerate() {
            let fd = (at(k, h) - at(k, -h)) / (2.0 * h);
            assert!((fd - gk).abs() < 1e-6 * (1.0 + gk.abs()), "parameter {k}: {fd} vs {gk}");
        }
    }
}
