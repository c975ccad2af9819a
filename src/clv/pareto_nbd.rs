//! Pareto/NBD: Schmittlein, Morrison & Colombo (1987), "Counting Your Customers: Who Are They
//! and What Will They Do Next?", Management Science 33(1). Likelihood, P(alive) and expected
//! purchases as derived in Fader & Hardie (2005), "A Note on Deriving the Pareto/NBD Model and
//! Related Expressions" (eqs. 18–20, 36–41), in lifetimes 0.11.3's form so the two agree.
//! While alive a customer buys at rate λ ~ Gamma(r, α); the lifetime is exponential with rate
//! μ ~ Gamma(s, β). x repeat purchases, t_x recency, T tenure, as in `bgnbd`.
//!
//! The gradient is analytic: A₀'s Gaussian hypergeometric functions have the form
//! ₂F₁(a, b; a + 1; z), summed after Euler's transformation and differentiated term by term in
//! a, b and z ([`hyp2f1_a1`]).

use rayon::prelude::*;
use statrs::function::gamma::{digamma, ln_gamma};

use super::fitting::log_add_exp_weight;
use super::counts::TailStop;
use super::tuples::Sufficient;

/// Fitted (or given) Pareto/NBD parameters, named as lifetimes' `ParetoNBDFitter` names them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParetoNbdParams {
    pub r: f64,
    pub alpha: f64,
    pub s: f64,
    pub beta: f64,
}

impl ParetoNbdParams {
    /// P(alive | x, t_x, T), eq. 37 of the note.
    pub fn p_alive(&self, x: f64, tx: f64, t: f64) -> f64 {
        1.0 / self.purchases_denominator(x, tx, t)
    }

    /// 1 / P(alive) = 1 + (s / (r + s + x)) · (α + T)^(r+x) · (β + T)^s · A₀.
    pub fn purchases_denominator(&self, x: f64, tx: f64, t: f64) -> f64 {
        let ParetoNbdParams { r, alpha, s, beta } = *self;
        let (ln_a0, _, converged) = log_a0(self, x, tx, t);
        if !converged {
            return f64::NAN;
        }
        1.0 + (s.ln() - (r + s + x).ln() + (r + x) * (alpha + t).ln() + s * (beta + t).ln() + ln_a0).exp()
    }

    /// Eq. 41's factor besides P(alive): ((r + x)(β + T) / ((α + T)(s − 1))) ·
    /// [1 − ((β + T)/(β + T + h))^(s−1)]. It does not depend on t_x. Evaluated as
    /// −expm1((s − 1) · ln(…)) / (s − 1), which stays exact as s nears 1 (where the textbook
    /// form, lifetimes', divides 0 by 0).
    pub fn purchases_numerator(&self, h: f64, x: f64, t: f64) -> f64 {
        let ParetoNbdParams { r, alpha, s, beta } = *self;
        if h <= 0.0 {
            return 0.0;
        }
        let (eps, ln_ratio) = (s - 1.0, -(h / (beta + t)).ln_1p());
        let bracket = if eps == 0.0 { -ln_ratio } else { -(eps * ln_ratio).exp_m1() / eps };
        (r + x) * (beta + t) / (alpha + t) * bracket
    }

    /// P(N ≥ k | alive at T) for k = 1, 2, … until `stop`, N the purchases in
    /// (T, T + h]. Alive at T, λ is Gamma(r + x, α + T) and μ Gamma(s, β + T), independent; the
    /// rest of the lifetime τ is then Lomax: P(τ > u) = ((β + T)/(β + T + u))^s. Purchases
    /// over w = min(τ, h) are NB(r + x, w / (α + T + w)): a mixture over w of the window h
    /// (weight P(τ > h)) and τ < h, the latter integrated by Gauss–Legendre over
    /// v = ln(1 + τ / (β + T)), where the integrand is smooth. Σₖ of it is eq. 41's factor
    /// besides P(alive) (a test checks).
    pub fn alive_tail(&self, h: f64, x: f64, t: f64, stop: TailStop) -> Vec<f64> {
        let ParetoNbdParams { r, alpha, s, beta } = *self;
        if h <= 0.0 {
            return Vec::new();
        }
        let (shape, rate) = (r + x, alpha + t);
        // τ = (β + T)(eᵛ − 1): τ's density times dτ is s e^(−s v) dv, smooth on [0, v_h].
        let v_h = (h / (beta + t)).ln_1p();
        let mut windows = vec![(h, (-s * v_h).exp())];
        windows.extend(super::counts::gauss_legendre().iter().map(|&(node, weight)| {
            let v = v_h * (1.0 + node) / 2.0;
            ((beta + t) * v.exp_m1(), v_h / 2.0 * weight * s * (-s * v).exp())
        }));
        super::counts::nb_mixture_tail(shape, rate, &windows, stop)
    }
}

/// ln A₀ (eqs. 19–20), its gradient in (r, α, s, β) and whether its series converged;
/// ln A₀ = −∞ (gradient 0) when t_x = T, where A₀ vanishes.
///
/// A₀ = ₂F₁(r+s+x, b; r+s+x+1; |α−β|/(m+t_x)) / (m+t_x)^(r+s+x) − the same at T, with
/// m = max(α, β) and b = s + 1 if α ≥ β, r + x otherwise.
fn log_a0(p: &ParetoNbdParams, x: f64, tx: f64, t: f64) -> (f64, [f64; 4], bool) {
    let ParetoNbdParams { r, alpha, s, beta } = *p;
    let rho = r + s + x;
    let alpha_max = alpha >= beta;
    let (m, b, db_dr, db_ds) = if alpha_max { (alpha, s + 1.0, 0.0, 1.0) } else { (beta, r + x, 1.0, 0.0) };
    let (diff, least) = ((alpha - beta).abs(), alpha.min(beta));
    // G(time) = ln ₂F₁(…; z) − ρ ln q with q = m + time, z = |α − β| / q, and its gradient.
    let g = |time: f64| -> (f64, [f64; 4], bool) {
        let q = m + time;
        // 1 − z from its own terms: for α and β far apart z rounds to 1, 1 − z does not.
        let (z, one_minus_z) = (diff / q, (least + time) / q);
        let f = hyp2f1_a1(rho, b, z, one_minus_z);
        let (dz_dalpha, dz_dbeta, dq_dalpha, dq_dbeta) =
            if alpha_max { ((beta + time) / (q * q), -1.0 / q, 1.0, 0.0) } else { (-1.0 / q, (alpha + time) / (q * q), 0.0, 1.0) };
        let ln_q = q.ln();
        let grad = [
            f.da + f.db * db_dr - ln_q,
            f.dz * dz_dalpha - rho * dq_dalpha / q,
            f.da + f.db * db_ds - ln_q,
            f.dz * dz_dbeta - rho * dq_dbeta / q,
        ];
        (f.ln_f - rho * ln_q, grad, f.converged)
    };
    let ((g1, d1, c1), (g2, d2, c2)) = (g(tx), g(t));
    let converged = c1 && c2;
    // A₀ = e^G₁ − e^G₂ with G₂ ≤ G₁ (q grows and z shrinks from t_x to T).
    let d = g2 - g1;
    if d.is_nan() || d >= 0.0 {
        return (if d.is_nan() { f64::NAN } else { f64::NEG_INFINITY }, [0.0; 4], converged);
    }
    let e = d.exp();
    let one_minus_e = -d.exp_m1();
    (g1 + one_minus_e.ln(), std::array::from_fn(|k| (d1[k] - e * d2[k]) / one_minus_e), converged)
}

/// ln ₂F₁(a, b; a + 1; z) and its derivatives in a, b and z.
#[derive(Debug, Clone, Copy)]
struct Hyp {
    ln_f: f64,
    da: f64,
    db: f64,
    dz: f64,
    converged: bool,
}

/// Most terms of [`hyp2f1_a1`]'s series: enough for z up to 1 − 5e-4 (at t_x = 0, α and β
/// up to ~2,000 times apart; CDNOW's are 1.1 apart, and a Pareto/NBD fit to BG/NBD customers
/// with one heavy buyer has them 1,700 apart). Beyond, the partial sum is returned, marked as
/// not converged: a line search passing there sees a finite, poor likelihood and steps back
/// (NaN would stop it), a fit that ends there is refused ([`series_converge`]) and
/// predictions there are NaN, which the range check turns into a one-line error. Near the cap
/// one evaluation costs up to 100,000 terms per customer tuple: a fit that wanders there is
/// slow (a test that broke the likelihood on purpose ran for minutes).
const MAX_TERMS: u32 = 100_000;

/// ₂F₁(a, b; a + 1; z) for a + 1 > b > 0 and 0 ≤ z < 1, with the derivatives of its log.
///
/// Euler's transformation gives F = (1 − z)^(1−b) · G with G = ₂F₁(1, a + 1 − b; a + 1; z) =
/// Σₙ gₙ, gₙ = Πₖ₍ₖ<ₙ₎ (a + 1 − b + k)/(a + 1 + k) · zⁿ. Every ratio of G's terms is below z,
/// so G converges geometrically whatever a and b are (the direct series peaks near
/// n ≈ b·z/(1 − z): millions of terms, and overflow, for a customer with a million purchases).
/// ∂ ln gₙ/∂a = Σₖ 1/(a+1−b+k) − 1/(a+1+k), ∂ ln gₙ/∂b = −Σₖ 1/(a+1−b+k), ∂gₙ/∂z = n gₙ / z.
/// `one_minus_z` is 1 − z, exact where z rounds to 1.
fn hyp2f1_a1(a: f64, b: f64, z: f64, one_minus_z: f64) -> Hyp {
    let c = a + 1.0 - b;
    let (mut g, mut ga, mut gb, mut gz) = (1.0, 0.0, 0.0, 0.0);
    let (mut term, mut ha, mut hb) = (1.0, 0.0, 0.0);
    let mut converged = z == 0.0;
    for n in 1..MAX_TERMS {
        if converged {
            break;
        }
        let k = (n - 1) as f64;
        ha += 1.0 / (c + k) - 1.0 / (a + 1.0 + k);
        hb -= 1.0 / (c + k);
        term *= (c + k) / (a + 1.0 + k) * z;
        let increments = [term, term * ha, term * hb, term * n as f64];
        g += increments[0];
        ga += increments[1];
        gb += increments[2];
        gz += increments[3];
        // Every later ratio is below z: the tail is below term · z / (1 − z).
        converged = increments.iter().zip([g, ga, gb, gz]).all(|(i, sum)| (i * z).abs() <= 1e-17 * one_minus_z * sum.abs());
    }
    let ln_1mz = one_minus_z.ln();
    let dz = if z > 0.0 { gz / (z * g) } else { c / (a + 1.0) };
    Hyp { ln_f: (1.0 - b) * ln_1mz + g.ln(), da: ga / g, db: -ln_1mz + gb / g, dz: (b - 1.0) / one_minus_z + dz, converged }
}

/// Sum of ln L (eq. 18 of the note, lifetimes' form) and its gradient with respect to
/// (r, α, s, β), with time multiplied by `scale`:
/// ln L = A₁ + ln(e^B + e^C), A₁ = ln Γ(r+x) − ln Γ(r) + r ln α + s ln β,
/// B = −(r+x) ln(α+T) − s ln(β+T), C = ln s + ln A₀ − ln(r+s+x).
pub(super) fn log_likelihood(data: &Sufficient, p: &ParetoNbdParams, scale: f64) -> (f64, [f64; 4]) {
    let ParetoNbdParams { r, alpha, s, beta } = *p;
    let (lg_r, dg_r, ln_alpha, ln_beta) = (ln_gamma(r), digamma(r), alpha.ln(), beta.ln());
    // Per distinct x: ln Γ(r + x) − ln Γ(r) and its derivative.
    let per_x: Vec<(f64, f64)> = data.xs.iter().map(|&x| (ln_gamma(r + x) - lg_r, digamma(r + x) - dg_r)).collect();
    let total = data.sum_rows(|acc: &mut [f64; 5], (xi, txi, ti, w)| {
        let (x, tx, t) = (data.xs[xi as usize], scale * data.txs[txi as usize], scale * data.ts[ti as usize]);
        let (lg, dg) = per_x[xi as usize];
        let (rx, rho) = (r + x, r + s + x);
        let (ln_at, ln_bt) = ((alpha + t).ln(), (beta + t).ln());
        let big_b = -rx * ln_at - s * ln_bt;
        let (ln_a0, da0, _) = log_a0(p, x, tx, t);
        // C = −∞ where A₀ vanishes (t_x = T): its weight is then 0.
        let (lse, wc) = log_add_exp_weight(big_b, s.ln() + ln_a0 - rho.ln());
        let wb = 1.0 - wc;
        acc[0] += w * (lg + r * ln_alpha + s * ln_beta + lse);
        acc[1] += w * (dg + ln_alpha - wb * ln_at + wc * (da0[0] - 1.0 / rho));
        acc[2] += w * (r / alpha - wb * rx / (alpha + t) + wc * da0[1]);
        acc[3] += w * (ln_beta - wb * ln_bt + wc * (1.0 / s + da0[2] - 1.0 / rho));
        acc[4] += w * (s / beta - wb * s / (beta + t) + wc * da0[3]);
    });
    (total[0], [total[1], total[2], total[3], total[4]])
}

/// Whether A₀'s series converge for every customer of `data` (time multiplied by `scale`).
pub(super) fn series_converge(data: &Sufficient, p: &ParetoNbdParams, scale: f64) -> bool {
    data.rows.par_iter().all(|&(xi, txi, ti, _)| log_a0(p, data.xs[xi as usize], scale * data.txs[txi as usize], scale * data.ts[ti as usize]).2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clv::purchase::fit;
    use crate::clv::spec::PurchaseModel;

    #[test]
    fn hyp2f1_a1_matches_a_closed_form_and_its_derivatives_match_finite_differences() {
        // ₂F₁(1, 1; 2; z) = −ln(1 − z) / z.
        for z in [0.0, 0.1, 0.5, 0.9, 0.999] {
            let exact = if z == 0.0 { 1.0 } else { -(1.0f64 - z).ln() / z };
            assert!((hyp2f1_a1(1.0, 1.0, z, 1.0 - z).ln_f - exact.ln()).abs() < 1e-13, "{z}");
        }
        // b from tiny to a million, z near 1.
        for (a, b, z) in [(0.7, 1.3, 0.4), (3.5, 0.6, 0.95), (120.0, 119.0, 0.9), (400.0, 2.0, 0.8), (1e6 + 1.1, 1e6, 0.9), (0.5, 1.2, 0.999)] {
            let f = hyp2f1_a1(a, b, z, 1.0 - z);
            assert!(f.ln_f.is_finite() && f.converged, "{a} {b} {z}");
            // Steps relative to the value: ln F is about b · ln(1 − z), millions for b = 1e6.
            let (ea, eb, ez) = (1e-6 * a.max(1.0), 1e-6 * b.max(1.0), 1e-6 * (1.0 - z));
            let fd = |da: f64, db: f64, dz: f64| (hyp2f1_a1(a + da, b + db, z + dz, 1.0 - z - dz).ln_f - hyp2f1_a1(a - da, b - db, z - dz, 1.0 - z + dz).ln_f) / (2.0 * (da + db + dz));
            for (got, want) in [(f.da, fd(ea, 0.0, 0.0)), (f.db, fd(0.0, eb, 0.0)), (f.dz, fd(0.0, 0.0, ez))] {
                assert!((got - want).abs() < 1e-6 * (1.0 + want.abs()), "({a}, {b}, {z}): {got} vs {want}");
            }
        }
    }

    #[test]
    fn where_the_series_does_not_converge_predictions_are_nan_not_wrong() {
        assert!(!hyp2f1_a1(0.5, 1.2, 1.0 - 1e-7, 1e-7).converged);
        // α a million times β: z = 1 − 1e-6 at t_x = 0.
        let p = ParetoNbdParams { r: 0.5, alpha: 1e6, s: 0.6, beta: 1.0 };
        assert!(p.p_alive(2.0, 0.0, 10.0).is_nan());
        let ordinary = ParetoNbdParams { beta: 12.0, alpha: 10.0, ..p };
        assert!((0.0..=1.0).contains(&ordinary.p_alive(2.0, 0.0, 10.0)));
    }

    #[test]
    fn gradient_matches_finite_differences_on_both_sides_of_alpha_equal_beta() {
        let x = [0.0, 1.0, 3.0, 7.0, 2.0, 0.0, 4.0];
        let tx = [0.0, 5.0, 20.5, 30.0, 1.0, 0.0, 31.0];
        let t = [10.0, 30.0, 40.0, 31.0, 2.0, 12.0, 31.0];
        let d = Sufficient::new(&x, &tx, &t);
        for p in [
            ParetoNbdParams { r: 0.7, alpha: 3.0, s: 0.9, beta: 12.0 },
            ParetoNbdParams { r: 1.4, alpha: 9.0, s: 1.3, beta: 2.0 },
        ] {
            let (_, g) = log_likelihood(&d, &p, 0.5);
            let h = 1e-6;
            let bump = |k: usize, e: f64| {
                let mut v = [p.r, p.alpha, p.s, p.beta];
                v[k] += e;
                log_likelihood(&d, &ParetoNbdParams { r: v[0], alpha: v[1], s: v[2], beta: v[3] }, 0.5).0
            };
            for (k, gk) in g.iter().enumerate() {
                let fd = (bump(k, h) - bump(k, -h)) / (2.0 * h);
                assert!((fd - gk).abs() < 1e-6 * (1.0 + gk.abs()), "{p:?} parameter {k}: {fd} vs {gk}");
            }
        }
    }

    #[test]
    fn expected_purchases_near_s_equal_1_are_the_limit() {
        let p = |s| ParetoNbdParams { r: 0.6, alpha: 8.0, s, beta: 10.0 };
        let at_one = p(1.0).purchases_numerator(52.0, 3.0, 40.0);
        let near = p(1.0 + 1e-9).purchases_numerator(52.0, 3.0, 40.0);
        assert!(at_one.is_finite() && (near / at_one - 1.0).abs() < 1e-8, "{at_one} vs {near}");
    }

    /// Simulates the Pareto/NBD process for `n` customers observed for up to 52 weeks and
    /// fits it: the parameters come back within a few percent.
    #[test]
    fn a_fit_recovers_the_parameters_of_simulated_customers() {
        use rand::SeedableRng;
        use rand_distr::{Distribution, Exp, Gamma};
        let truth = ParetoNbdParams { r: 0.8, alpha: 6.0, s: 0.7, beta: 20.0 };
        let mut rng = rand_xoshiro::Xoshiro256Plus::seed_from_u64(7);
        let (lambda, mu) = (Gamma::new(truth.r, 1.0 / truth.alpha).unwrap(), Gamma::new(truth.s, 1.0 / truth.beta).unwrap());
        let (mut x, mut tx, mut t) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..40_000 {
            let big_t = 52.0 - (i % 52) as f64 * 0.5;
            let (l, m) = (lambda.sample(&mut rng), mu.sample(&mut rng));
            let death = Exp::new(m).unwrap().sample(&mut rng).min(big_t);
            let gap = Exp::new(l).unwrap();
            let (mut now, mut count, mut last) = (0.0, 0.0, 0.0);
            loop {
                now += gap.sample(&mut rng);
                if now > death {
                    break;
                }
                count += 1.0;
                last = now;
            }
            x.push(count);
            tx.push(last);
            t.push(big_t);
        }
        let fitted = fit(&x, &tx, &t, PurchaseModel::ParetoNbd, 0.0).unwrap().params.values();
        for (name, (got, want)) in ["r", "alpha", "s", "beta"].iter().zip(fitted.iter().zip([truth.r, truth.alpha, truth.s, truth.beta])) {
            assert!((got / want - 1.0).abs() < 0.15, "{name}: fitted {got}, simulated with {want}");
        }
    }
}
