//! BG/NBD: Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An Alternative
//! to the Pareto/NBD Model", Marketing Science 24(2); and its modification MBG/NBD: Batislam,
//! Denizel & Filiztekin (2007), "Empirical validation and comparison of models for customer
//! base analysis", International Journal of Research in Marketing 24(3). Variables use the
//! papers' symbols: x repeat purchases, t_x recency, T tenure; λ ~ Gamma(r, α), p ~ Beta(a, b).
//! The two differ by one shift in the Beta terms ([`BgNbdParams::shift`]).
//!
//! Numerics, as in lifetimes 0.11.3 so the two agree:
//! - the fit minimises the mean negative log-likelihood plus `penalizer · (r² + α² + a² + b²)`
//!   over log-parameters (so they stay positive), with time rescaled by `1 / max T` during the
//!   fit (α is reported in the original unit; the penalty sees the rescaled α, as in lifetimes);
//! - customers are compressed to unique (x, t_x, T) with counts, and the per-x, per-T and
//!   per-t_x terms are computed once per evaluation;
//! - the two likelihood terms are combined with log-sum-exp.

use statrs::function::gamma::{digamma, ln_gamma};

use super::fitting::log_add_exp_weight;
use super::spec::PurchaseModel;
use super::counts::TailStop;
use super::tuples::Sufficient;

/// Fitted (or given) BG/NBD or MBG/NBD parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BgNbdParams {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
    pub model: PurchaseModel,
}

/// Sum of ln L (eq. 6 of the paper, in lifetimes' A₁…A₄ form) and its gradient with
/// respect to (r, α, a, b), with time multiplied by `scale`.
pub(super) fn log_likelihood(data: &Sufficient, p: &BgNbdParams, scale: f64) -> (f64, [f64; 4]) {
    let BgNbdParams { r, alpha, a, b, .. } = *p;
    let shift = p.shift();
    let (lg_r, dg_r, lg_b, dg_b, lg_ab, dg_ab) = (ln_gamma(r), digamma(r), ln_gamma(b), digamma(b), ln_gamma(a + b), digamma(a + b));
    let ln_alpha = alpha.ln();
    // Per distinct x: A₁ and A₂ pieces and the b + max(x, 1) − 1 of A₄.
    struct PerX {
        a12: f64,
        d_r: f64,
        d_a: f64,
        d_b: f64,
        ln_bx1: f64,
        inv_bx1: f64,
    }
    let per_x: Vec<PerX> = data
        .xs
        .iter()
        .map(|&x| {
            // b + x + s − 1 where A₄ applies (BG/NBD: x > 0), anything positive elsewhere.
            let bx1 = if p.may_have_left(x) { b + x + shift - 1.0 } else { b };
            let (bxs, abxs) = (b + x + shift, a + b + x + shift);
            PerX {
                a12: ln_gamma(r + x) - lg_r + r * ln_alpha + lg_ab + ln_gamma(bxs) - lg_b - ln_gamma(abxs),
                d_r: digamma(r + x) - dg_r + ln_alpha,
                d_a: dg_ab - digamma(abxs),
                d_b: dg_ab + digamma(bxs) - dg_b - digamma(abxs),
                ln_bx1: bx1.ln(),
                inv_bx1: 1.0 / bx1,
            }
        })
        .collect();
    let logs = |v: &[f64]| -> Vec<(f64, f64)> { v.iter().map(|&t| ((alpha + scale * t).ln(), 1.0 / (alpha + scale * t))).collect() };
    let (per_t, per_tx) = (logs(&data.ts), logs(&data.txs));
    let ln_a = a.ln();

    let s = data.sum_rows(|s: &mut [f64; 5], (xi, txi, ti, w)| {
        let x = data.xs[xi as usize];
        let px = &per_x[xi as usize];
        let (l_t, i_t) = per_t[ti as usize];
        let rx = r + x;
        let a3 = -rx * l_t;
        let (lse, w4, l_tx, i_tx) = if p.may_have_left(x) {
            let (l_tx, i_tx) = per_tx[txi as usize];
            let a4 = ln_a - px.ln_bx1 - rx * l_tx;
            let (lse, w4) = log_add_exp_weight(a3, a4);
            (lse, w4, l_tx, i_tx)
        } else {
            (a3, 0.0, 0.0, 0.0)
        };
        let w3 = 1.0 - w4;
        s[0] += w * (px.a12 + lse);
        s[1] += w * (px.d_r - w3 * l_t - w4 * l_tx);
        s[2] += w * (r / alpha - rx * (w3 * i_t + w4 * i_tx));
        s[3] += w * (px.d_a + w4 / a);
        s[4] += w * (px.d_b - w4 * px.inv_bx1);
    });
    // d/dα of r·ln α in A₁ is in `r / alpha`; the time scale enters only through α + sT.
    (s[0], [s[1], s[2], s[3], s[4]])
}

impl BgNbdParams {
    /// Purchases after which a customer may drop out, beyond BG/NBD's repeat purchases: the
    /// Beta terms take b + x + s and the odds of having left a / (b + x + s − 1).
    fn shift(&self) -> f64 {
        match self.model {
            PurchaseModel::MbgNbd => 1.0,
            PurchaseModel::BgNbd | PurchaseModel::ParetoNbd | PurchaseModel::BgBb => 0.0,
        }
    }

    /// Whether a customer with x repeat purchases may have dropped out (the A₄ term).
    fn may_have_left(&self, x: f64) -> bool {
        x > 0.0 || self.model == PurchaseModel::MbgNbd
    }

    /// P(alive | x, t_x, T), eq. 11 of Fader, Hardie & Lee (2008, "Computing P(alive) using
    /// the BG/NBD model"); for BG/NBD 1 for customers without repeat purchases.
    pub fn p_alive(&self, x: f64, tx: f64, t: f64) -> f64 {
        if !self.may_have_left(x) {
            return 1.0;
        }
        let log_div = (self.r + x) * ((self.alpha + t) / (self.alpha + tx)).ln() + (self.a / (self.b + x + self.shift() - 1.0)).ln();
        1.0 / (1.0 + log_div.exp())
    }

    /// E[purchases in (T, T + h] | x, t_x, T], eq. 10 of the paper.
    ///
    /// The ₂F₁ term uses Euler's transformation ₂F₁(A, B; C; z) =
    /// (1 − z)^(C−A−B) ₂F₁(C − A, C − B; C; z): here C − A = a + b − 1 − r and C − B = a − 1
    /// are small whatever x is, so the series converges fast without overflow, and
    /// (1 − z)^(C−A−B) combines with ((α+T)/(α+T+h))^(r+x) into (1 − z)^(a−1).
    pub fn expected_purchases(&self, h: f64, x: f64, tx: f64, t: f64) -> f64 {
        self.purchases_numerator(h, x, t) / self.purchases_denominator(x, tx, t)
    }

    /// Eq. 10's numerator, ((a+b+x−1)/(a−1)) · [1 − ((α+T)/(α+T+h))^(r+x) ₂F₁(…)]: it does not
    /// depend on t_x, so customers sharing (x, T) share it (and its costly series).
    /// For MBG/NBD, (a+b+x)/(a−1) · [1 − ((α+T)/(α+T+h))^(r+x) ₂F₁(r+x, b+x+1; a+b+x; z)]:
    /// the same with c one larger.
    ///
    /// Evaluated without dividing by a − 1: with ε = a − 1, ₂F₁(c − r − x, ε; c; z) = 1 + ε·S
    /// (every term but the first carries (ε)ₙ = ε·(a)ₙ₋₁), so the bracket over ε is
    /// −expm1(ε·ln(1 − z))/ε − (1 − z)^ε·S. The textbook form (lifetimes') loses every digit
    /// to cancellation as a nears 1, where a fit on few customers can land.
    pub fn purchases_numerator(&self, h: f64, x: f64, t: f64) -> f64 {
        let BgNbdParams { r, alpha, a, b, .. } = *self;
        if h <= 0.0 {
            return 0.0;
        }
        let z = h / (alpha + t + h);
        let c = a + b + x - 1.0 + self.shift();
        let (eps, ln_1mz) = (a - 1.0, (-z).ln_1p());
        // S = Σ_{n≥1} (c − r − x)ₙ (a)ₙ₋₁ / ((c)ₙ n!) zⁿ.
        let a1 = c - (r + x);
        let mut term = a1 * z / c;
        let mut sum = term;
        for n in 1..1_000_000u32 {
            let n = n as f64;
            term *= (a1 + n) * (a + n - 1.0) / ((c + n) * (n + 1.0)) * z;
            sum += term;
            if term.abs() <= 1e-17 * sum.abs() && n > 2.0 {
                break;
            }
        }
        let log_part = if eps == 0.0 { -ln_1mz } else { -(eps * ln_1mz).exp_m1() / eps };
        c * (log_part - (eps * ln_1mz).exp() * sum)
    }

    /// P(N ≥ k | alive at T) for k = 1, 2, … until `stop`, N the purchases in
    /// (T, T + h]. Alive at T, the customer's λ is Gamma(r + x, α + T) and p is
    /// Beta(a, b + x) (Beta(a, b + x + 1) for MBG/NBD: one more drop-out chance survived),
    /// independent. Purchases arrive at rate λ and the customer leaves after each with
    /// probability p, so N ≥ k needs k arrivals and k − 1 purchases survived:
    /// P(N ≥ k) = P(NB(r + x, h / (α + T + h)) ≥ k) · B(a, c + k − 1) / B(a, c), c = b + x (+ 1).
    /// Σₖ of it is eq. 10's numerator (a test checks).
    pub fn alive_tail(&self, h: f64, x: f64, t: f64, stop: TailStop) -> Vec<f64> {
        let BgNbdParams { r, alpha, a, b, .. } = *self;
        let (shape, rate, c) = (r + x, alpha + t, b + x + self.shift());
        let (z, mut pmf) = (h / (rate + h), (rate / (rate + h)).powf(shape));
        let (mut below, mut survived) = (pmf, 1.0);
        let mut out = Vec::new();
        for k in 1..=super::counts::MAX_COUNT {
            let k = k as f64;
            let tail = (1.0 - below).max(0.0) * survived;
            if !stop.more(out.len(), tail) || h <= 0.0 {
                break;
            }
            out.push(tail);
            pmf *= (shape + k - 1.0) / k * z;
            below += pmf;
            survived *= (c + k - 1.0) / (a + c + k - 1.0);
        }
        out
    }

    /// Eq. 10's denominator, 1 + δ(x>0) · (a/(b+x−1)) · ((α+T)/(α+t_x))^(r+x); for MBG/NBD
    /// 1 + (a/(b+x)) · ((α+T)/(α+t_x))^(r+x) for every x.
    pub fn purchases_denominator(&self, x: f64, tx: f64, t: f64) -> f64 {
        let BgNbdParams { r, alpha, a, b, .. } = *self;
        if self.may_have_left(x) { 1.0 + (a / (b + x + self.shift() - 1.0)) * ((alpha + t) / (alpha + tx)).powf(r + x) } else { 1.0 }
    }
}

/// ₂F₁(a, b; c; z) by its power series, for 0 ≤ z < 1 and c > 0.
pub fn hyp2f1_series(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let mut term = 1.0;
    let mut sum = 1.0;
    for n in 0..1_000_000u32 {
        let n = n as f64;
        term *= (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
        sum += term;
        if term.abs() <= 1e-17 * sum.abs() && n > 2.0 {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clv::purchase::{PurchaseFit, PurchaseParams, fit_from, fit_tuples};
    use crate::clv::tuples::{PurchaseTuple, compress};

    fn fit(x: &[f64], tx: &[f64], t: &[f64], penalizer: f64) -> Result<PurchaseFit, crate::clv::ClvError> {
        crate::clv::purchase::fit(x, tx, t, PurchaseModel::BgNbd, penalizer)
    }

    fn bgnbd(p: PurchaseParams) -> BgNbdParams {
        match p {
            PurchaseParams::BgNbd(p) => p,
            other => panic!("not BG/NBD: {other:?}"),
        }
    }

    #[test]
    fn hyp2f1_matches_closed_forms() {
        // ₂F₁(1, 1; 2; z) = −ln(1 − z) / z.
        for z in [0.1, 0.5, 0.9] {
            let exact = -(1.0f64 - z).ln() / z;
            assert!((hyp2f1_series(1.0, 1.0, 2.0, z) / exact - 1.0).abs() < 1e-13, "{z}");
        }
    }

    /// Simulates the BG/NBD process (Fader, Hardie & Lee 2005, section 2) for `n` customers
    /// observed for 52 weeks: purchases at rate λ ~ Gamma(r, α), dropping out after each
    /// repeat purchase with probability p ~ Beta(a, b).
    fn simulate(n: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        use rand::SeedableRng;
        use rand_distr::{Beta, Distribution, Exp, Gamma};
        let mut rng = rand_xoshiro::Xoshiro256Plus::seed_from_u64(4);
        let (lambda, p) = (Gamma::new(0.9, 1.0 / 6.0).unwrap(), Beta::new(0.6, 3.0).unwrap());
        let (mut x, mut tx, mut t) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..n {
            let big_t = 52.0 - (i % 52) as f64 * 0.5;
            let (l, pi) = (lambda.sample(&mut rng), p.sample(&mut rng));
            let gap = Exp::new(l).unwrap();
            let (mut now, mut count, mut last) = (0.0, 0.0, 0.0);
            loop {
                now += gap.sample(&mut rng);
                if now > big_t {
                    break;
                }
                count += 1.0;
                last = now;
                if rand::Rng::r#gen::<f64>(&mut rng) < pi {
                    break;
                }
            }
            x.push(count);
            tx.push(last);
            t.push(big_t);
        }
        (x, tx, t)
    }

    #[test]
    fn warm_start_reaches_the_same_optimum() {
        // Above 4 × WARM_START_ROWS customers, so `fit` starts from a subsample's optimum and
        // preconditions with its Hessian.
        let (x, tx, t) = simulate(250_000);
        let warm = bgnbd(fit(&x, &tx, &t, 0.0).unwrap().params);
        let cold = bgnbd(fit_from(&Sufficient::new(&x, &tx, &t), PurchaseModel::BgNbd, 0.0, false).unwrap().params);
        for (w, c) in [(warm.r, cold.r), (warm.alpha, cold.alpha), (warm.a, cold.a), (warm.b, cold.b)] {
            assert!((w / c - 1.0).abs() < 1e-5, "warm {warm:?} vs cold {cold:?}");
        }
        // Distance to the exact optimum: the Newton step H⁻¹ g at the warm fit, in
        // log-parameters (the cold fit, stopped by the same tolerance, is about 1e-6 away).
        let data = Sufficient::new(&x, &tx, &t);
        let scale = 1.0 / t.iter().copied().fold(0.0, f64::max);
        let objective = |theta: &[f64]| {
            let p = BgNbdParams { r: theta[0].exp(), alpha: theta[1].exp(), a: theta[2].exp(), b: theta[3].exp(), model: PurchaseModel::BgNbd };
            let (ll, g) = log_likelihood(&data, &p, scale);
            super::super::fitting::penalized_objective(&[p.r, p.alpha, p.a, p.b], ll, &g, data.total, 0.0)
        };
        let theta = [warm.r.ln(), (warm.alpha * scale).ln(), warm.a.ln(), warm.b.ln()];
        let gradient = objective(&theta).1;
        let mut h = super::super::optimize::hessian_at(&objective, &theta, &gradient).unwrap();
        let g = ndarray::Array2::from_shape_vec((4, 1), gradient).unwrap();
        let step = linfa_linalg::cholesky::SolveC::solvec(&mut h, &g).unwrap();
        assert!(step.iter().all(|s| s.abs() < 1e-7), "Newton step from the warm fit: {step}");
    }

    #[test]
    fn tuples_in_any_order_and_split_fit_exactly_as_the_customers() {
        // A GROUP BY returns tuples in any order, and partial groups could come twice.
        let (x, tx, t) = simulate(3_000);
        let by_customer = fit(&x, &tx, &t, 0.01).unwrap();
        let mut tuples = compress(&x, &tx, &t);
        assert!(tuples.len() < x.len());
        tuples.reverse();
        let split: Vec<PurchaseTuple> = tuples
            .iter()
            .flat_map(|p| {
                let half = p.customers / 2;
                [PurchaseTuple { customers: half, ..*p }, PurchaseTuple { customers: p.customers - half, ..*p }]
            })
            .collect();
        for tuples in [&tuples, &split] {
            let fitted = fit_tuples(tuples, PurchaseModel::BgNbd, 0.01).unwrap();
            assert_eq!(fitted.params, by_customer.params);
            assert_eq!(fitted.log_likelihood, by_customer.log_likelihood);
            assert_eq!((fitted.customers, fitted.unique_tuples), (x.len(), by_customer.unique_tuples));
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let x = [0.0, 1.0, 3.0, 7.0, 2.0, 0.0];
        let tx = [0.0, 5.0, 20.5, 30.0, 1.0, 0.0];
        let t = [10.0, 30.0, 40.0, 31.0, 2.0, 12.0];
        let d = Sufficient::new(&x, &tx, &t);
        for model in [PurchaseModel::BgNbd, PurchaseModel::MbgNbd] {
            let p = BgNbdParams { r: 0.7, alpha: 3.0, a: 0.9, b: 2.2, model };
            let (_, g) = log_likelihood(&d, &p, 0.5);
            let h = 1e-6;
            let bump = |k: usize, e: f64| {
                let mut v = [p.r, p.alpha, p.a, p.b];
                v[k] += e;
                log_likelihood(&d, &BgNbdParams { r: v[0], alpha: v[1], a: v[2], b: v[3], model }, 0.5).0
            };
            for (k, gk) in g.iter().enumerate() {
                let fd = (bump(k, h) - bump(k, -h)) / (2.0 * h);
                assert!((fd - gk).abs() < 1e-6 * (1.0 + gk.abs()), "{model:?} parameter {k}: {fd} vs {gk}");
            }
        }
    }

    #[test]
    fn one_customer_with_a_million_purchases_among_ordinary_ones_still_fits() {
        let (mut x, mut tx, mut t) = simulate(2_000);
        let ordinary = bgnbd(fit(&x, &tx, &t, 0.0).unwrap().params);
        x.push(1_000_000.0);
        tx.push(300.0);
        t.push(400.0);
        // BG/BB counts whole periods: a million purchases would need a million of them.
        for model in PurchaseModel::ALL.into_iter().filter(|m| !m.discrete()) {
            let f = fit_tuples(&compress(&x, &tx, &t), model, 0.0).unwrap();
            assert!(f.fallback.is_none(), "{model:?}: {:?}", f.fallback);
            assert!(f.params.values().iter().all(|v| v.is_finite() && *v > 0.0), "{:?}", f.params);
            let p = f.params.values();
            if model == PurchaseModel::BgNbd {
                // One customer in 2,001 moves the population's drop-out prior, not the whole fit.
                assert!((p[2] / ordinary.a - 1.0).abs() < 0.5 && (p[3] / ordinary.b - 1.0).abs() < 0.5, "{p:?} vs {ordinary:?}");
            }
        }
    }

    #[test]
    fn no_repeat_purchases_is_a_degenerate_fit_not_a_result() {
        let x = [0.0; 50];
        let tx = [0.0; 50];
        let t: Vec<f64> = (1..=50).map(f64::from).collect();
        let err = fit(&x, &tx, &t, 0.0).unwrap_err().to_string();
        assert_eq!(err, "invalid CLV input: BG/NBD needs at least one customer with a repeat purchase");
    }

    #[test]
    fn per_customer_likelihoods_sum_to_the_compressed_batch() {
        let x = [0.0, 1.0, 1.0, 4.0, 1.0];
        let tx = [0.0, 5.0, 5.0, 9.0, 5.0];
        let t = [10.0, 30.0, 30.0, 31.0, 30.0];
        let p = PurchaseParams::from(BgNbdParams { r: 0.5, alpha: 2.0, a: 1.3, b: 2.2, model: PurchaseModel::BgNbd });
        let batch = p.log_likelihood(&x, &tx, &t);
        let single: f64 = (0..5).map(|i| p.log_likelihood(&x[i..=i], &tx[i..=i], &t[i..=i])).sum();
        assert!((batch - single).abs() < 1e-12, "{batch} vs {single}");
    }
}
