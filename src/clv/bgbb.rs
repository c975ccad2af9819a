//! BG/BB: Fader, Hardie & Shang (2010), "Customer-Base Analysis in a Discrete-Time
//! Noncontractual Setting", Marketing Science 29(6). Purchases happen at discrete
//! opportunities, the periods 1 … n after the first purchase: while alive a customer buys at
//! each with probability p ~ Beta(α, β), and drops out before each with probability
//! θ ~ Beta(γ, δ). x repeat purchases, t_x the period of the last, n = T the opportunities, all
//! whole numbers with x ≤ t_x ≤ n. Likelihood eq. 5, P(alive) eq. 11 and expected purchases
//! eq. 13, as lifetimes 0.11.3's `BetaGeoBetaBinomFitter` computes them (without the 1e-15 it
//! adds to eq. 5's sum). The parameters are probabilities' shapes: they have no time scale.

use statrs::function::gamma::{digamma, ln_gamma};

use super::fitting::log_add_exp_weight;
use super::counts::TailStop;
use super::tuples::Sufficient;

/// Fitted (or given) BG/BB parameters, named as lifetimes' `BetaGeoBetaBinomFitter` names them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BgBbParams {
    pub alpha: f64,
    pub beta: f64,
    pub gamma: f64,
    pub delta: f64,
}

/// |γ − 1| below which eq. 13's δ/(γ − 1) · [… − …] is replaced by its limit: its bracket is
/// a difference of ln Γ's that cancels to ~1e-14 absolute, so the closed form keeps
/// ~1e-14 / |γ − 1| relative precision and the limit is off by ~|γ − 1|: both ~1e-7 here.
const GAMMA_NEAR_ONE: f64 = 1e-7;

impl BgBbParams {
    /// P(alive at n | x, t_x, n), eq. 11.
    pub fn p_alive(&self, x: f64, tx: f64, n: f64) -> f64 {
        1.0 / self.purchases_denominator(x, tx, n)
    }

    /// 1 / P(alive) = L / (B(α+x, β+n−x)/B(α,β) · B(γ, δ+n)/B(γ,δ)): eq. 5 over its first term.
    /// NaN for a history the model cannot have (not whole periods, or x > t_x), which the
    /// range check on predictions refuses in one line, as a SQL view calling `bgbb_p_alive` by
    /// hand may pass one.
    pub fn purchases_denominator(&self, x: f64, tx: f64, n: f64) -> f64 {
        if !is_history(x, tx, n) {
            return f64::NAN;
        }
        let (ln_l, ln_alive, _) = log_l(&Shared::new(self, false), x, tx, n);
        (ln_l - ln_alive).exp()
    }

    /// Eq. 13 times 1 / P(alive): E[purchases at n+1 … n+h | alive at n] =
    /// (α + x)/(α + β + n) · Σᵢ₌₁..ₕ B(γ, d + i)/B(γ, d), d = δ + n, the sum in closed form
    /// d/(γ − 1) · [1 − Γ(d+1+h) Γ(γ+d) / (Γ(d+1) Γ(γ+d+h))] (it takes any real h, as
    /// lifetimes' does). It does not depend on t_x.
    pub fn purchases_numerator(&self, h: f64, x: f64, n: f64) -> f64 {
        let BgBbParams { alpha, beta, gamma, delta } = *self;
        if h <= 0.0 {
            return 0.0;
        }
        let d = delta + n;
        let alive_periods = if (gamma - 1.0).abs() < GAMMA_NEAR_ONE {
            // γ = 1: the bracket over (γ − 1) tends to ψ(d + 1 + h) − ψ(d + 1).
            d * (digamma(d + 1.0 + h) - digamma(d + 1.0))
        } else {
            let ln_ratio = ln_gamma(d + 1.0 + h) - ln_gamma(d + 1.0) + ln_gamma(gamma + d) - ln_gamma(gamma + d + h);
            d / (gamma - 1.0) * -ln_ratio.exp_m1()
        };
        (alpha + x) / (alpha + beta + n) * alive_periods
    }

    /// P(N ≥ k | alive at n) for k = 1, 2, … until `stop` (at most ⌊h⌋), N the purchases at
    /// the ⌊h⌋ whole opportunities n+1 … n+⌊h⌋. Alive at n, p is Beta(α + x, β + n − x) and θ
    /// Beta(γ, δ + n): the customer is still alive at j more opportunities with probability
    /// A(j) = B(γ, δ + n + j)/B(γ, δ + n), and buys at each of them with probability p, so
    /// N given L = j alive opportunities is beta-binomial(j, α + x, β + n − x). Σₖ of it is
    /// eq. 13 over P(alive) for whole h (a test checks).
    pub fn alive_tail(&self, h: f64, x: f64, n: f64, stop: TailStop) -> Vec<f64> {
        let BgBbParams { alpha, beta, gamma, delta } = *self;
        let m = h.max(0.0).floor().min(super::counts::MAX_COUNT as f64) as usize;
        let (a, b, d) = (alpha + x, beta + n - x, delta + n);
        // A(0) = 1, A(j+1) = A(j)·(d + j)/(γ + d + j).
        let mut alive = vec![1.0; m + 1];
        for j in 0..m {
            alive[j + 1] = alive[j] * (d + j as f64) / (gamma + d + j as f64);
        }
        let mut pmf = vec![0.0; m + 1];
        // f_j(0) = B(a, b + j)/B(a, b) = Π_{i<j} (b + i)/(a + b + i), then up in k.
        let mut none = 1.0;
        for j in 0..=m {
            let weight = if j < m { alive[j] - alive[j + 1] } else { alive[m] };
            let mut f = none;
            for k in 0..=j {
                pmf[k] += weight * f;
                let kf = k as f64;
                f *= (j as f64 - kf) / (kf + 1.0) * (a + kf) / (b + j as f64 - kf - 1.0);
            }
            none *= (b + j as f64) / (a + b + j as f64);
        }
        let mut out = Vec::new();
        let mut tail: f64 = pmf[1..].iter().sum();
        for k in 1..=m {
            if !stop.more(out.len(), tail) {
                break;
            }
            out.push(tail);
            tail -= pmf[k];
        }
        out
    }
}

fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// What every customer's terms share: ln B(α, β), ln B(γ, δ) and, for the gradient, the
/// digammas of their derivatives (d ln B(a, b)/da = ψ(a) − ψ(a + b)).
struct Shared {
    p: BgBbParams,
    ln_b_ab: f64,
    ln_b_gd: f64,
    /// ψ(α) − ψ(α+β), ψ(β) − ψ(α+β), ψ(γ) − ψ(γ+δ), ψ(δ) − ψ(γ+δ); None without the gradient.
    dg: Option<[f64; 4]>,
}

impl Shared {
    fn new(p: &BgBbParams, gradient: bool) -> Shared {
        let BgBbParams { alpha, beta, gamma, delta } = *p;
        let dg = gradient.then(|| {
            let (ab, gd) = (digamma(alpha + beta), digamma(gamma + delta));
            [digamma(alpha) - ab, digamma(beta) - ab, digamma(gamma) - gd, digamma(delta) - gd]
        });
        Shared { p: *p, ln_b_ab: ln_beta(alpha, beta), ln_b_gd: ln_beta(gamma, delta), dg }
    }

    /// ln of B(α+x, β+k)/B(α,β) · B(γ+c, δ+m)/B(γ,δ), one term of eq. 5, and its gradient.
    fn term(&self, x: f64, k: f64, c: f64, m: f64) -> (f64, [f64; 4]) {
        let BgBbParams { alpha, beta, gamma, delta } = self.p;
        let ln = ln_beta(alpha + x, beta + k) - self.ln_b_ab + ln_beta(gamma + c, delta + m) - self.ln_b_gd;
        let grad = self.dg.map_or([0.0; 4], |dg| {
            let (s1, s2) = (digamma(alpha + beta + x + k), digamma(gamma + delta + c + m));
            [digamma(alpha + x) - s1 - dg[0], digamma(beta + k) - s1 - dg[1], digamma(gamma + c) - s2 - dg[2], digamma(delta + m) - s2 - dg[3]]
        });
        (ln, grad)
    }
}

/// ln L (eq. 5), ln of its first term (bought with p at x of n periods and alive at n) and the
/// gradient of ln L in (α, β, γ, δ) (zero without `Shared::dg`):
/// L = B(α+x, β+n−x)/B(α,β) · B(γ, δ+n)/B(γ,δ)
///   + Σᵢ₌₀..ₙ₋ₜₓ₋₁ B(α+x, β+t_x−x+i)/B(α,β) · B(γ+1, δ+t_x+i)/B(γ,δ),
/// the sum's terms being "dropped out before period t_x + i + 1".
fn log_l(s: &Shared, x: f64, tx: f64, n: f64) -> (f64, f64, [f64; 4]) {
    let (ln_alive, mut grad) = s.term(x, n - x, 0.0, n);
    let mut ln_l = ln_alive;
    for i in 0..(n - tx) as u64 {
        let i = i as f64;
        let (ln_t, g_t) = s.term(x, tx - x + i, 1.0, tx + i);
        let (sum, w) = log_add_exp_weight(ln_l, ln_t);
        ln_l = sum;
        for (g, t) in grad.iter_mut().zip(g_t) {
            *g += w * (t - *g);
        }
    }
    (ln_l, ln_alive, grad)
}

/// Sum of ln L over `data` and its gradient with respect to (α, β, γ, δ). Periods are counted,
/// not measured: there is no time scale.
pub(super) fn log_likelihood(data: &Sufficient, p: &BgBbParams) -> (f64, [f64; 4]) {
    let shared = Shared::new(p, true);
    let total = data.sum_rows(|acc: &mut [f64; 5], (xi, txi, ti, w)| {
        let (ln_l, _, g) = log_l(&shared, data.xs[xi as usize], data.txs[txi as usize], data.ts[ti as usize]);
        acc[0] += w * ln_l;
        for k in 0..4 {
            acc[k + 1] += w * g[k];
        }
    });
    (total[0], [total[1], total[2], total[3], total[4]])
}

/// Whether BG/BB can have this history: whole periods with x ≤ t_x ≤ n.
fn is_history(x: f64, tx: f64, n: f64) -> bool {
    let whole = |v: f64| v >= 0.0 && v.fract() == 0.0;
    whole(x) && whole(tx) && whole(n) && x <= tx && tx <= n
}

/// The first tuple BG/BB cannot take, described (the summary check names the customer; this
/// guards the library's entry).
pub(super) fn first_non_discrete(data: &Sufficient) -> Option<String> {
    data.rows.iter().find_map(|&(xi, txi, ti, _)| {
        let (x, tx, n) = (data.xs[xi as usize], data.txs[txi as usize], data.ts[ti as usize]);
        (!is_history(x, tx, n)).then(|| format!("frequency {x}, recency {tx}, tenure {n}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clv::purchase::{PurchaseParams, fit};
    use crate::clv::spec::PurchaseModel;

    const P: BgBbParams = BgBbParams { alpha: 1.204, beta: 0.750, gamma: 0.657, delta: 2.783 };

    /// The likelihood by brute force: every path of alive/dead and buy/not over n periods,
    /// weighted by the Beta mixing, integrated numerically over p and θ.
    fn brute_likelihood(p: &BgBbParams, x: u32, tx: u32, n: u32) -> f64 {
        // L(p, θ) = p^x (1−p)^(n−x) (1−θ)^n + Σᵢ p^x (1−p)^(tx−x+i) θ (1−θ)^(tx+i).
        let given = |pr: f64, th: f64| {
            let mut l = pr.powi(x as i32) * (1.0 - pr).powi((n - x) as i32) * (1.0 - th).powi(n as i32);
            for i in 0..(n - tx) {
                l += pr.powi(x as i32) * (1.0 - pr).powi((tx - x + i) as i32) * th * (1.0 - th).powi((tx + i) as i32);
            }
            l
        };
        let density = |v: f64, a: f64, b: f64| ((a - 1.0) * v.ln() + (b - 1.0) * (1.0 - v).ln() - ln_beta(a, b)).exp();
        // Midpoint rule on a substitution v = u² near 0 and 1 to tame the Beta densities' poles.
        let grid = 2000;
        let nodes: Vec<(f64, f64)> = (0..grid)
            .map(|k| {
                let u = (k as f64 + 0.5) / grid as f64;
                let v = 0.5 - 0.5 * (std::f64::consts::PI * u).cos();
                (v, 0.5 * std::f64::consts::PI * (std::f64::consts::PI * u).sin() / grid as f64)
            })
            .collect();
        let mut total = 0.0;
        for &(pr, wp) in &nodes {
            for &(th, wt) in &nodes {
                total += wp * wt * density(pr, p.alpha, p.beta) * density(th, p.gamma, p.delta) * given(pr, th);
            }
        }
        total
    }

    #[test]
    fn the_likelihood_equals_the_model_integrated_by_brute_force() {
        // Parameters above 1 keep the Beta densities bounded, so the quadrature is accurate.
        let p = BgBbParams { alpha: 2.5, beta: 1.7, gamma: 1.3, delta: 3.1 };
        for (x, tx, n) in [(0, 0, 6), (2, 4, 6), (3, 3, 6), (6, 6, 6), (1, 5, 9)] {
            let (ln_l, _, _) = log_l(&Shared::new(&p, false), x as f64, tx as f64, n as f64);
            let brute = brute_likelihood(&p, x, tx, n);
            assert!((ln_l.exp() / brute - 1.0).abs() < 1e-5, "({x}, {tx}, {n}): {} vs {brute}", ln_l.exp());
        }
    }

    #[test]
    fn the_gradient_matches_finite_differences() {
        let data = Sufficient::new(&[0.0, 2.0, 3.0, 6.0, 1.0, 4.0], &[0.0, 4.0, 3.0, 6.0, 5.0, 5.0], &[6.0, 6.0, 6.0, 6.0, 9.0, 6.0]);
        let (_, g) = log_likelihood(&data, &P);
        let v = [P.alpha, P.beta, P.gamma, P.delta];
        for k in 0..4 {
            let h = 1e-6 * v[k];
            let at = |d: f64| {
                let mut w = v;
                w[k] += d;
                log_likelihood(&data, &BgBbParams { alpha: w[0], beta: w[1], gamma: w[2], delta: w[3] }).0
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            assert!((g[k] - fd).abs() < 1e-6 * fd.abs().max(1.0), "parameter {k}: analytic {} vs {fd}", g[k]);
        }
    }

    #[test]
    fn expected_purchases_equal_their_sum_over_periods_and_their_limit_at_gamma_one() {
        // Eq. 13 summed period by period: Σᵢ₌₁..ₕ P(alive at n + i) · E[p | x, n].
        let by_periods = |p: &BgBbParams, h: u32, x: f64, n: f64| {
            let d = p.delta + n;
            let survive: f64 = (1..=h).map(|i| (ln_beta(p.gamma, d + i as f64) - ln_beta(p.gamma, d)).exp()).sum();
            (p.alpha + x) / (p.alpha + p.beta + n) * survive
        };
        for gamma in [0.657, 1.0, 1.0 + 1e-9, 2.5] {
            let p = BgBbParams { gamma, ..P };
            for (h, x, n) in [(1, 0.0, 6.0), (5, 3.0, 6.0), (40, 6.0, 6.0)] {
                let (ours, sum) = (p.purchases_numerator(h as f64, x, n), by_periods(&p, h, x, n));
                assert!((ours / sum - 1.0).abs() < 1e-6, "γ {gamma}, h {h}: {ours} vs {sum}");
            }
        }
    }

    #[test]
    fn p_alive_follows_eq_11() {
        // The donors' paper values: a donor who gave in every one of six years is alive with
        // the first term's share of the likelihood, which is all of it.
        assert!((P.p_alive(6.0, 6.0, 6.0) - 1.0).abs() < 1e-15);
        // Giving stopped early: less likely alive the earlier.
        let (early, late) = (P.p_alive(3.0, 3.0, 6.0), P.p_alive(3.0, 5.0, 6.0));
        assert!(0.0 < early && early < late && late < 1.0, "{early} {late}");
        // Eq. 11 directly.
        let direct = (ln_beta(P.alpha + 3.0, P.beta + 3.0) - ln_beta(P.alpha, P.beta) + ln_beta(P.gamma, P.delta + 6.0) - ln_beta(P.gamma, P.delta)).exp()
            / log_l(&Shared::new(&P, false), 3.0, 3.0, 6.0).0.exp();
        assert!((early - direct).abs() < 1e-14, "{early} vs {direct}");
        // Histories the model cannot have give NaN, which the range check refuses.
        for (x, tx, n) in [(3.0, 2.0, 6.0), (1.0, 2.5, 6.0), (1.0, 2.0, 6.5)] {
            assert!(P.p_alive(x, tx, n).is_nan() && PurchaseParams::from(P).expected_purchases(12.0, x, tx, n).is_nan(), "({x}, {tx}, {n})");
        }
    }

    /// Simulates the model: per customer p and θ from their Betas, then n periods.
    fn simulate(p: &BgBbParams, customers: usize, n: u32, seed: u64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        use rand::{Rng, SeedableRng};
        use rand_distr::{Beta, Distribution};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let (bp, bt) = (Beta::new(p.alpha, p.beta).unwrap(), Beta::new(p.gamma, p.delta).unwrap());
        let (mut xs, mut txs, mut ts) = (vec![], vec![], vec![]);
        for _ in 0..customers {
            let (pr, th): (f64, f64) = (bp.sample(&mut rng), bt.sample(&mut rng));
            let (mut x, mut tx) = (0.0, 0.0);
            for period in 1..=n {
                if rng.r#gen::<f64>() < th {
                    break;
                }
                if rng.r#gen::<f64>() < pr {
                    x += 1.0;
                    tx = period as f64;
                }
            }
            xs.push(x);
            txs.push(tx);
            ts.push(n as f64);
        }
        (xs, txs, ts)
    }

    #[test]
    fn a_fit_recovers_the_parameters_it_simulated() {
        let (x, tx, t) = simulate(&P, 40_000, 12, 7);
        let f = fit(&x, &tx, &t, PurchaseModel::BgBb, 0.0).unwrap();
        let PurchaseParams::BgBb(got) = f.params else { panic!("{:?}", f.params) };
        for (name, want, got) in [("alpha", P.alpha, got.alpha), ("beta", P.beta, got.beta), ("gamma", P.gamma, got.gamma), ("delta", P.delta, got.delta)] {
            assert!((got / want - 1.0).abs() < 0.15, "{name}: fitted {got}, simulated {want}");
        }
        // Few distinct tuples whatever the customers: at most (n+1)² per n.
        assert!(f.unique_tuples <= 13 * 13, "{}", f.unique_tuples);
    }

    #[test]
    fn fractional_periods_are_refused_by_the_fit() {
        let err = fit(&[1.0, 0.0], &[2.5, 0.0], &[6.0, 6.0], PurchaseModel::BgBb, 0.0).unwrap_err().to_string();
        assert!(err.contains("whole periods") && err.contains("recency 2.5"), "{err}");
        let err = fit(&[3.0], &[2.0], &[6.0], PurchaseModel::BgBb, 0.0).unwrap_err().to_string();
        assert!(err.contains("frequency 3, recency 2"), "{err}");
    }
}
