//! Counts the purchase models' predictive distributions are built from (`clv::predictive`):
//! where a tail P(N ≥ k) stops, the negative binomial mixed over windows, and the
//! Gauss–Legendre rule Pareto/NBD integrates the rest of a lifetime with. A leaf: the models
//! use it, and it uses nothing of theirs.

use std::sync::OnceLock;

/// Most purchases a predictive distribution counts up to in one horizon.
pub const MAX_COUNT: usize = 100_000;

/// Where a tail P(N ≥ k), k = 1, 2, …, may stop: once it has `len` terms and is below `floor`.
#[derive(Debug, Clone, Copy)]
pub struct TailStop {
    pub floor: f64,
    pub len: usize,
}

impl TailStop {
    /// Whether a tail with `terms` terms so far takes the next, `tail`.
    pub(super) fn more(self, terms: usize, tail: f64) -> bool {
        terms < self.len || tail >= self.floor
    }
}

/// Gauss–Legendre nodes on [−1, 1]: the rule Pareto/NBD's tail integrates the rest of the
/// lifetime with.
const LEGENDRE_NODES: usize = 32;

/// (node, weight) pairs of the `LEGENDRE_NODES`-point Gauss–Legendre rule, by Newton's method
/// on P_n from Chebyshev guesses (Press et al., Numerical Recipes §4.6, `gauleg`): 32 fixed
/// nodes did not justify a quadrature crate.
pub(super) fn gauss_legendre() -> &'static [(f64, f64)] {
    static RULE: OnceLock<Vec<(f64, f64)>> = OnceLock::new();
    RULE.get_or_init(|| {
        let n = LEGENDRE_NODES;
        let mut rule = Vec::with_capacity(n);
        for i in 0..n {
            let mut z = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
            let mut derivative = 0.0;
            for _ in 0..100 {
                // P_n(z) by the three-term recurrence, and P_n'(z).
                let (mut p1, mut p2) = (1.0, 0.0);
                for j in 0..n {
                    let p3 = p2;
                    p2 = p1;
                    p1 = ((2 * j + 1) as f64 * z * p2 - j as f64 * p3) / (j + 1) as f64;
                }
                derivative = n as f64 * (z * p1 - p2) / (z * z - 1.0);
                let step = p1 / derivative;
                z -= step;
                if step.abs() < 1e-15 {
                    break;
                }
            }
            rule.push((z, 2.0 / ((1.0 - z * z) * derivative * derivative)));
        }
        rule
    })
}

/// P(N ≥ k), k = 1, 2, … until `stop`, for N negative binomial (a Poisson count
/// with a Gamma(`shape`, `rate`) rate) over a window drawn from `windows` (length, weight).
pub(super) fn nb_mixture_tail(shape: f64, rate: f64, windows: &[(f64, f64)], stop: TailStop) -> Vec<f64> {
    let z: Vec<f64> = windows.iter().map(|&(w, _)| w / (rate + w)).collect();
    let mut pmf: Vec<f64> = windows.iter().map(|&(w, _)| (rate / (rate + w)).powf(shape)).collect();
    let mut below = pmf.clone();
    let mut out = Vec::new();
    for k in 1..=MAX_COUNT {
        let tail: f64 = windows.iter().zip(&below).map(|(&(_, weight), b)| weight * (1.0 - b).max(0.0)).sum();
        if !stop.more(out.len(), tail) {
            break;
        }
        out.push(tail);
        let k = k as f64;
        for j in 0..windows.len() {
            pmf[j] *= (shape + k - 1.0) / k * z[j];
            below[j] += pmf[j];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauss_legendre_integrates_polynomials_to_degree_63() {
        let rule = gauss_legendre();
        let weights: f64 = rule.iter().map(|r| r.1).sum();
        assert!((weights - 2.0).abs() < 1e-14, "{weights}");
        for p in [2, 10, 62] {
            let integral: f64 = rule.iter().map(|&(z, w)| w * z.powi(p)).sum();
            assert!((integral - 2.0 / (p as f64 + 1.0)).abs() < 1e-13, "x^{p}: {integral}");
        }
    }
}
