//! Intervals per customer: the predictive distribution of a customer's purchases in
//! (T, T + h], combining the purchase process with the uncertainty of the fitted parameters.
//!
//! - The process: each model's P(N ≥ k | alive at T) (`alive_tail` in `bgnbd`, `pareto_nbd`,
//!   `bgbb`) times P(alive). It depends on (x, T) only, so customers sharing them share it.
//! - The parameters: the Laplace approximation to their posterior, a normal in
//!   log-parameters centred on the fit with the inverse Hessian of −ln L as covariance
//!   ([`Laplace`]). It is integrated by the third-degree spherical–radial cubature rule of
//!   Arasaratnam & Haykin (2009), "Cubature Kalman Filters", IEEE TAC 54(6): 2d points
//!   θ̂ ± √d · (columns of chol Σ), equal weights, exact for polynomials of degree 3 in the
//!   log-parameters. Eight fixed points instead of draws: the cost is eight distributions per
//!   (x, T), whatever the number of customers, and there is no draw count for memory to grow
//!   with.
//!
//! Counts are whole numbers, so an interval [Q(0.1), Q(0.9)] covers the realised count with
//! probability at least 0.8, often more (a customer with P(N = 0) = 0.95 has Q(0.1) = Q(0.9)
//! = 0). Calibration is therefore checked on the randomised PIT of Czado, Gneiting & Held
//! (2009), "Predictive Model Assessment for Count Data", Biometrics 65(4): for a realised y,
//! u is uniform on [F(y − 1), F(y)], and under a calibrated forecast u is uniform on [0, 1],
//! so P(0.1 ≤ u ≤ 0.9) = 0.8 ([`Coverage::pit`], its expectation, without drawing u).

use std::collections::HashMap;

use linfa_linalg::cholesky::Cholesky;
use ndarray::Array2;

use super::counts::TailStop;
use super::holdout::{BUCKETS, HoldoutTuple, bucket_index, bucket_name, canonical};
use super::purchase::{PurchaseFit, PurchaseParams};

/// P(N ≥ k) below which the holdout's distributions are cut: their PIT is exact to 1e-9.
pub const TAIL_FLOOR: f64 = 1e-9;

/// The Laplace approximation to the purchase model's parameters: normal in log-parameters
/// around `params`, with `covariance` (of the log-parameters, in the order of
/// [`crate::clv::PurchaseModel::parameters`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Laplace {
    pub params: PurchaseParams,
    pub covariance: [[f64; 4]; 4],
}

impl Laplace {
    /// No parameter uncertainty: the intervals carry the purchase process only.
    pub fn exact(params: PurchaseParams) -> Laplace {
        Laplace { params, covariance: [[0.0; 4]; 4] }
    }

    /// Standard errors of the parameters (delta method: se(θ) = θ · se(ln θ)).
    pub fn std_errors(&self) -> [f64; 4] {
        let v = self.params.values();
        std::array::from_fn(|i| v[i] * self.covariance[i][i].max(0.0).sqrt())
    }

    /// The cubature points: the fit itself when the covariance is zero, else the 2d points
    /// θ̂ ± √d · Lᵢ (Σ = L Lᵀ). Err when the covariance is neither zero nor symmetric
    /// positive definite.
    pub fn points(&self) -> Result<Vec<PurchaseParams>, String> {
        let c = &self.covariance;
        if c.iter().flatten().all(|v| *v == 0.0) {
            return Ok(vec![self.params]);
        }
        let bad = || format!("the covariance is not a symmetric positive definite matrix: {c:?}");
        if (0..4).any(|i| (0..4).any(|j| !c[i][j].is_finite() || (c[i][j] - c[j][i]).abs() > 1e-12 * (c[i][i] * c[j][j]).sqrt().max(1e-300))) {
            return Err(bad());
        }
        let l = Array2::from_shape_fn((4, 4), |(i, j)| c[i][j]).cholesky().map_err(|_| bad())?;
        let (model, centre) = (self.params.model(), self.params.values().map(f64::ln));
        let radius = 2.0; // √d, d = 4
        let mut points = Vec::with_capacity(8);
        for column in 0..4 {
            for sign in [1.0, -1.0] {
                let v: [f64; 4] = std::array::from_fn(|i| (centre[i] + sign * radius * l[[i, column]]).exp());
                points.push(PurchaseParams::new(model, v));
            }
        }
        Ok(points)
    }
}

impl PurchaseFit {
    /// The fit's [`Laplace`] approximation; None without a covariance (see
    /// [`PurchaseFit::covariance`]).
    pub fn laplace(&self) -> Option<Laplace> {
        self.covariance.map(|covariance| Laplace { params: self.params, covariance })
    }
}

/// The tails P(N ≥ k | alive) at each cubature point for one (x, T), what customers sharing
/// them share: every point's to the same length, the first k at which each is below `floor`.
/// Past it the mixture's tail is below `floor` too, so quantiles q ≤ 1 − `floor` are exact.
#[derive(Debug, Clone)]
pub struct AliveTails {
    /// P(N ≥ k | alive) for k = 1 … `len`, count by count: the points' values for one k side
    /// by side, so the mixture at k reads one short run of memory.
    by_count: Vec<f64>,
    points: usize,
    len: usize,
    floor: f64,
}

impl AliveTails {
    pub fn new(points: &[PurchaseParams], h: f64, x: f64, t: f64, floor: f64) -> AliveTails {
        let first: Vec<Vec<f64>> = points.iter().map(|p| p.alive_tail(h, x, t, TailStop { floor, len: 0 })).collect();
        let len = first.iter().map(Vec::len).max().unwrap_or(0);
        let tails: Vec<Vec<f64>> = first
            .into_iter()
            .zip(points)
            .map(|(tail, p)| if tail.len() < len { p.alive_tail(h, x, t, TailStop { floor, len }) } else { tail })
            .collect();
        // A tail that ends before `len` (BG/BB's last opportunity, h = 0) is 0 after it.
        let by_count = (0..len).flat_map(|k| tails.iter().map(move |tail| tail.get(k).copied().unwrap_or(0.0))).collect();
        AliveTails { by_count, points: points.len(), len, floor }
    }

    /// The first value the tails hold (0 without any): reading it brings their start into the
    /// cache ahead of a quantile scan.
    pub fn first(&self) -> f64 {
        self.by_count.first().copied().unwrap_or(0.0)
    }
}

/// One customer's predictive distribution of purchases: the cubature points' distributions,
/// each P(alive) · P(N ≥ k | alive), mixed with equal weights.
#[derive(Debug, Clone)]
pub struct Predictive<'a> {
    tails: &'a AliveTails,
    /// P(alive) at each cubature point: the first `points` of at most 8 (no allocation per
    /// customer).
    alive: [f64; 8],
    points: usize,
}

impl<'a> Predictive<'a> {
    pub fn new(points: &[PurchaseParams], tails: &'a AliveTails, x: f64, tx: f64, t: f64) -> Predictive<'a> {
        let mut alive = [0.0; 8];
        for (a, p) in alive.iter_mut().zip(points) {
            *a = 1.0 / p.purchases_denominator(x, tx, t);
        }
        Predictive { tails, alive, points: points.len().min(8) }
    }

    fn p_alive(&self) -> &[f64] {
        &self.alive[..self.points]
    }

    /// P(N ≥ k).
    pub fn tail(&self, k: usize) -> f64 {
        if k == 0 {
            return 1.0;
        }
        let (width, tails) = (self.tails.points, self.tails);
        debug_assert_eq!(width, self.points, "tails and P(alive) from the same cubature points");
        if k > tails.len {
            return 0.0;
        }
        let at_k = &tails.by_count[(k - 1) * width..k * width];
        at_k.iter().zip(self.p_alive()).map(|(s, a)| a * s).sum::<f64>() / width as f64
    }

    /// P(N ≤ k).
    pub fn cdf(&self, k: usize) -> f64 {
        1.0 - self.tail(k + 1)
    }

    /// The smallest k with P(N ≤ k) ≥ q, for q in (0, 1 − the tails' floor]; NaN for another q
    /// or when an input was (P(alive) not a probability).
    pub fn quantile(&self, q: f64) -> f64 {
        self.quantiles([q])[0]
    }

    /// [`Self::quantile`] of each of `qs`, in one pass over the counts.
    pub fn quantiles<const N: usize>(&self, qs: [f64; N]) -> [f64; N] {
        let mut out = [f64::NAN; N];
        if self.points == 0 || !self.p_alive().iter().all(|a| (0.0..=1.0).contains(a)) {
            return out;
        }
        let valid = qs.map(|q| q > 0.0 && q <= 1.0 - self.tails.floor);
        let mut open = valid.iter().filter(|v| **v).count();
        let longest = self.tails.len;
        for k in 0..=longest {
            if open == 0 {
                break;
            }
            let cdf = self.cdf(k);
            for i in 0..N {
                if valid[i] && out[i].is_nan() && (cdf >= qs[i] - 1e-12 || k == longest) {
                    out[i] = k as f64;
                    open -= 1;
                }
            }
        }
        out
    }

    /// P(lower ≤ u ≤ upper) for u the randomised PIT of the realised count `y`, uniform on
    /// [F(y − 1), F(y)].
    pub fn pit_inside(&self, y: usize, lower: f64, upper: f64) -> f64 {
        let (from, to) = (if y == 0 { 0.0 } else { self.cdf(y - 1) }, self.cdf(y));
        if to - from <= 0.0 {
            return 0.0;
        }
        ((to.min(upper) - from.max(lower)).max(0.0) / (to - from)).min(1.0)
    }
}

/// How often the holdout's realised purchases fall in the central 80 % interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Coverage {
    /// Share of customers with Q(0.1) ≤ y ≤ Q(0.9) (at least 0.8 for counts, see the module).
    pub interval: f64,
    /// Expected share with the randomised PIT in [0.1, 0.9]: 0.8 when calibrated.
    pub pit: f64,
    /// The same per calibration-frequency bucket (`clv_validation`'s): (bucket, interval, pit).
    pub buckets: Vec<(String, f64, f64)>,
}

/// [`Coverage`] of the 80 % intervals each group's `Laplace` gives over the next `horizon`
/// periods for its calibration customers, against their holdout purchases (groups as
/// `clv::holdout` takes them).
pub fn coverage(groups: &[(Laplace, &[HoldoutTuple])], horizon: f64) -> Result<Coverage, String> {
    // Per bucket: customers, inside [p10, p90], PIT inside [0.1, 0.9]; over the tuples in the
    // holdout check's order, with the tails shared by every t_x of an (x, T).
    let mut sums = [(0.0, 0.0, 0.0); BUCKETS];
    for (laplace, tuples) in groups {
        sum_coverage(&mut sums, laplace, tuples, horizon)?;
    }
    let n: f64 = sums.iter().map(|s| s.0).sum();
    Ok(Coverage {
        interval: sums.iter().map(|s| s.1).sum::<f64>() / n,
        pit: sums.iter().map(|s| s.2).sum::<f64>() / n,
        buckets: (0..BUCKETS).filter(|&k| sums[k].0 > 0.0).map(|k| (bucket_name(k), sums[k].1 / sums[k].0, sums[k].2 / sums[k].0)).collect(),
    })
}

/// Adds one group's customers, inside counts and PIT to `sums`, per bucket.
fn sum_coverage(sums: &mut [(f64, f64, f64); BUCKETS], laplace: &Laplace, tuples: &[HoldoutTuple], horizon: f64) -> Result<(), String> {
    let points = laplace.points()?;
    let mut tails: HashMap<[u64; 2], AliveTails> = HashMap::new();
    for t in canonical(tuples) {
        let (x, tx, n) = (t.cal_frequency, t.cal_recency, t.cal_tenure);
        let shared = tails.entry([x.to_bits(), n.to_bits()]).or_insert_with(|| AliveTails::new(&points, horizon, x, n, TAIL_FLOOR));
        let d = Predictive::new(&points, shared, x, tx, n);
        let y = (t.frequency - x).max(0.0).round() as usize;
        let [p10, p90] = d.quantiles([0.1, 0.9]);
        let (w, sum) = (t.customers as f64, &mut sums[bucket_index(x)]);
        sum.0 += w;
        sum.1 += w * f64::from(p10 <= y as f64 && y as f64 <= p90);
        sum.2 += w * d.pit_inside(y, 0.1, 0.9);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_distr::{Beta, Distribution, Exp, Gamma};

    use super::*;
    use crate::clv::PurchaseModel;

    fn models() -> Vec<PurchaseParams> {
        vec![
            PurchaseParams::new(PurchaseModel::BgNbd, [0.24, 4.4, 0.79, 2.4]),
            PurchaseParams::new(PurchaseModel::MbgNbd, [0.52, 6.2, 0.89, 12.1]),
            PurchaseParams::new(PurchaseModel::ParetoNbd, [0.55, 10.6, 0.61, 11.7]),
            PurchaseParams::new(PurchaseModel::ParetoNbd, [2.0, 3.0, 3.5, 0.8]),
            PurchaseParams::new(PurchaseModel::BgBb, [1.2, 0.75, 0.66, 2.8]),
        ]
    }

    /// The tails sum to the expected purchases given alive (Σₖ P(N ≥ k) = E[N]), which the
    /// models' closed forms give and lifetimes checks: for every model, across histories.
    #[test]
    fn each_models_tail_sums_to_its_expected_purchases() {
        for b in models() {
            for (x, tx, t) in [(0.0, 0.0, 30.0), (1.0, 10.0, 38.0), (4.0, 20.0, 20.0), (12.0, 30.0, 39.0), (40.0, 60.0, 70.0)] {
                for h in [1.0, 13.0, 52.0] {
                    let tail = b.alive_tail(h, x, t, TailStop { floor: 1e-15, len: 0 });
                    let sum: f64 = tail.iter().sum();
                    let expected = b.purchases_numerator(h, x, t);
                    assert!((sum - expected).abs() < 1e-9 * expected.max(1.0), "{b:?} h {h} ({x}, {tx}, {t}): {sum} vs {expected}");
                    assert!(tail.windows(2).all(|w| w[0] >= w[1]), "a tail rises: {tail:?}");
                }
            }
        }
    }

    #[test]
    fn zero_covariance_is_the_fit_alone_and_a_bad_one_is_refused() {
        let b = models()[0];
        assert_eq!(Laplace::exact(b).points().unwrap(), vec![b]);
        let mut c = [[0.0; 4]; 4];
        c[0][0] = -1.0;
        assert!(Laplace { params: b, covariance: c }.points().is_err());
        c[0][0] = 0.01;
        c[0][1] = 0.5;
        assert!(Laplace { params: b, covariance: c }.points().is_err(), "not symmetric");
    }

    /// The cubature points have the Laplace normal's mean and covariance in log-parameters.
    #[test]
    fn cubature_points_match_the_normals_first_two_moments() {
        let b = models()[0];
        let c = [[0.04, 0.01, 0.0, 0.002], [0.01, 0.09, 0.003, 0.0], [0.0, 0.003, 0.01, 0.001], [0.002, 0.0, 0.001, 0.02]];
        let points = Laplace { params: b, covariance: c }.points().unwrap();
        let logs: Vec<[f64; 4]> = points.iter().map(|p| p.values().map(f64::ln)).collect();
        let centre = b.values().map(f64::ln);
        for i in 0..4 {
            let mean = logs.iter().map(|v| v[i]).sum::<f64>() / 8.0;
            assert!((mean - centre[i]).abs() < 1e-12);
            for j in 0..4 {
                let cov = logs.iter().map(|v| (v[i] - centre[i]) * (v[j] - centre[j])).sum::<f64>() / 8.0;
                assert!((cov - c[i][j]).abs() < 1e-12, "({i}, {j}): {cov} vs {}", c[i][j]);
            }
        }
    }

    /// Customers drawn from BG/NBD itself: the PIT of their holdout purchases is uniform, so
    /// 80 % ± 1 % of them fall in [0.1, 0.9].
    #[test]
    fn intervals_are_calibrated_on_customers_drawn_from_the_model() {
        let b = PurchaseParams::new(PurchaseModel::BgNbd, [0.5, 4.0, 0.8, 2.5]);
        let PurchaseParams::BgNbd(p) = b else { unreachable!() };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (lambda, drop) = (Gamma::new(p.r, 1.0 / p.alpha).unwrap(), Beta::new(p.a, p.b).unwrap());
        let (cal, horizon) = (40.0, 20.0);
        let mut tuples = Vec::new();
        for _ in 0..40_000 {
            let (l, q) = (lambda.sample(&mut rng), drop.sample(&mut rng));
            let start: f64 = rng.gen_range(0.0..cal);
            let (mut now, mut alive, mut times) = (start, true, Vec::new());
            let gap = Exp::new(l).unwrap();
            while alive {
                now += gap.sample(&mut rng);
                if now > cal + horizon {
                    break;
                }
                times.push(now - start);
                alive = rng.r#gen::<f64>() >= q;
            }
            let t_cal = cal - start;
            let in_cal: Vec<f64> = times.iter().copied().filter(|&s| s <= t_cal).collect();
            tuples.push(HoldoutTuple {
                cal_frequency: in_cal.len() as f64,
                cal_recency: in_cal.last().copied().unwrap_or(0.0),
                cal_tenure: t_cal,
                frequency: times.len() as f64,
                customers: 1,
            });
        }
        let c = coverage(&[(Laplace::exact(b), &tuples)], horizon).unwrap();
        assert!((c.pit - 0.8).abs() < 0.01, "PIT coverage {}", c.pit);
        assert!(c.interval >= 0.8, "interval coverage {}", c.interval);
    }
}
