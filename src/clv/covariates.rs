//! Static covariates: customer attributes (channel, region, acquisition source, …) that shift
//! the purchase and drop-out rates, as in Fader & Hardie (2007), "Incorporating Time-Invariant
//! Covariates into the Pareto/NBD and BG/NBD Models" (brucehardie.com/notes/019), named as
//! PyMC-Marketing's `BetaGeoModel` and `ParetoNBDModel` name them:
//!
//! - purchase covariates scale the purchase rate's Gamma: α_i = α · exp(−γ · z_i), so a
//!   positive coefficient means more purchases (E[λ_i] = r / α_i);
//! - drop-out covariates: BG/NBD and MBG/NBD a_i = a · exp(γ_a · z_i), b_i = b · exp(γ_b · z_i)
//!   (E[p_i] = a_i / (a_i + b_i)); Pareto/NBD β_i = β · exp(−γ · z_i), so a positive
//!   coefficient means earlier drop-out (E[μ_i] = s / β_i). BG/BB takes none.
//!
//! A customer with covariates z is the base model at θ_i, so every prediction (P(alive),
//! purchases, intervals) is the base model's at θ_i. In log-parameters θ_i is linear in the
//! fitted (ln θ, γ): ln θ_i = ln θ + M(z) γ, so the Laplace covariance of a customer's
//! log-parameters is exactly M Σ Mᵀ ([`Effects::laplace_at`]).
//!
//! The likelihood depends on a customer through (x, t_x, T, z): the fit runs over groups of
//! customers sharing z, each compressed to (x, t_x, T) tuples. Covariates with few values (a
//! channel, a region) cost little; a continuous one makes a group per distinct value.

use ndarray::Array2;
use rayon::prelude::*;

use super::error::{ClvError, describe_params};
use super::fitting;
use super::predictive::Laplace;
use super::purchase::{self, PurchaseFit, PurchaseParams};
use super::spec::{CovariateSpec, PurchaseModel};
use super::tuples::{PurchaseTuple, Sufficient};

/// One fitted coefficient: covariate `column` (an index into [`CovariateSpec::columns`])
/// shifts the log of parameter `parameter` (an index into [`PurchaseModel::parameters`]) by
/// `sign · value · z`.
#[derive(Debug, Clone, PartialEq)]
pub struct Coefficient {
    /// As `clv_model` names it: `purchase_coefficient_alpha[channel_web]`, …
    pub name: String,
    pub column: usize,
    pub parameter: usize,
    pub sign: f64,
    pub value: f64,
}

/// The coefficients `model` takes for `spec`, at 0, in the order a fit reports them: each
/// purchase covariate's, then each drop-out covariate's.
pub fn coefficients(model: PurchaseModel, spec: &CovariateSpec) -> Result<Vec<Coefficient>, ClvError> {
    // (name, parameter, sign) per rate; PyMC-Marketing's names.
    let (purchase, dropout): (&[(&str, usize, f64)], &[(&str, usize, f64)]) = match model {
        PurchaseModel::BgNbd | PurchaseModel::MbgNbd => (&[("purchase_coefficient_alpha", 1, -1.0)], &[("dropout_coefficient_a", 2, 1.0), ("dropout_coefficient_b", 3, 1.0)]),
        PurchaseModel::ParetoNbd => (&[("purchase_coefficient", 1, -1.0)], &[("dropout_coefficient", 3, -1.0)]),
        PurchaseModel::BgBb if spec.is_empty() => (&[], &[]),
        PurchaseModel::BgBb => return Err(ClvError::Input("covariates need model bgnbd, mbgnbd or pareto_nbd: BG/BB takes none".into())),
    };
    let columns = spec.columns();
    let index = |c: &String| columns.iter().position(|k| k == c).expect("a listed column");
    let mut out = Vec::new();
    for (names, targets) in [(&spec.purchase, purchase), (&spec.dropout, dropout)] {
        for c in names {
            out.extend(targets.iter().map(|&(name, parameter, sign)| Coefficient { name: format!("{name}[{c}]"), column: index(c), parameter, sign, value: 0.0 }));
        }
    }
    Ok(out)
}

/// Customers sharing one covariate vector `z` (in [`CovariateSpec::columns`] order).
#[derive(Debug, Clone, PartialEq)]
pub struct Group<T> {
    pub z: Vec<f64>,
    pub tuples: Vec<T>,
}

/// `rows` of (z, tuple) into groups by z, in ascending z order (so sums over groups do not
/// depend on the order rows arrive in).
pub fn group<T>(rows: impl IntoIterator<Item = (Vec<f64>, T)>) -> Vec<Group<T>> {
    let mut by_z: std::collections::BTreeMap<Vec<u64>, Group<T>> = std::collections::BTreeMap::new();
    for (z, t) in rows {
        // Ordered by value: the bits of a float with its sign flipped to sort as numbers.
        let key = z.iter().map(|v| ordered_bits(*v)).collect();
        by_z.entry(key).or_insert_with(|| Group { z, tuples: Vec::new() }).tuples.push(t);
    }
    by_z.into_values().collect()
}

/// A key that sorts as the number does (-0.0 as 0.0).
fn ordered_bits(v: f64) -> u64 {
    let bits = (v + 0.0).to_bits();
    if bits >> 63 == 1 { !bits } else { bits | 1 << 63 }
}

/// A fit's covariate effects: the coefficients and the Laplace covariance of (ln θ, γ).
#[derive(Debug, Clone, PartialEq)]
pub struct Effects {
    pub coefficients: Vec<Coefficient>,
    /// Of the base log-parameters then the coefficients, 4 + K square; None when the
    /// likelihood's Hessian is not positive definite or nothing was fitted.
    pub covariance: Option<Array2<f64>>,
}

impl Effects {
    /// ln θ_i − ln θ for a customer with covariates `z`.
    pub fn log_shift(&self, z: &[f64]) -> [f64; 4] {
        let mut shift = [0.0; 4];
        for c in &self.coefficients {
            shift[c.parameter] += c.sign * c.value * z[c.column];
        }
        shift
    }

    /// The parameters of a customer with covariates `z`.
    pub fn params_at(&self, base: &PurchaseParams, z: &[f64]) -> PurchaseParams {
        let (v, shift) = (base.values(), self.log_shift(z));
        PurchaseParams::new(base.model(), std::array::from_fn(|j| v[j] * shift[j].exp()))
    }

    /// M(z): row j is ∂ ln θ_ij / ∂ (ln θ, γ).
    fn jacobian(&self, z: &[f64]) -> Array2<f64> {
        let mut m = Array2::zeros((4, 4 + self.coefficients.len()));
        for j in 0..4 {
            m[[j, j]] = 1.0;
        }
        for (k, c) in self.coefficients.iter().enumerate() {
            m[[c.parameter, 4 + k]] = c.sign * z[c.column];
        }
        m
    }

    /// The Laplace approximation for a customer with covariates `z`: centred on θ_i, with
    /// covariance M Σ Mᵀ (exact: ln θ_i is linear in the fitted values).
    pub fn laplace_at(&self, base: &PurchaseParams, z: &[f64]) -> Option<Laplace> {
        let m = self.jacobian(z);
        let c = m.dot(self.covariance.as_ref()?).dot(&m.t());
        Some(Laplace { params: self.params_at(base, z), covariance: std::array::from_fn(|i| std::array::from_fn(|j| c[[i, j]])) })
    }

    /// Standard errors of the coefficients (of γ itself: it is not a log).
    pub fn std_errors(&self) -> Option<Vec<f64>> {
        let c = self.covariance.as_ref()?;
        Some((0..self.coefficients.len()).map(|k| c[[4 + k, 4 + k]].max(0.0).sqrt()).collect())
    }
}

/// A purchase model's fit with its covariates' effects.
#[derive(Debug, Clone)]
pub struct CovariateFit {
    /// `params` and `covariance` are a customer's whose covariates are all 0.
    pub fit: PurchaseFit,
    /// None without covariates.
    pub effects: Option<Effects>,
}

impl CovariateFit {
    /// The parameters of a customer with covariates `z` (the fitted ones without covariates).
    pub fn params_at(&self, z: &[f64]) -> PurchaseParams {
        match &self.effects {
            Some(e) => e.params_at(&self.fit.params, z),
            None => self.fit.params,
        }
    }

    /// The Laplace approximation for a customer with covariates `z`, when the fit has one.
    pub fn laplace_at(&self, z: &[f64]) -> Option<Laplace> {
        match &self.effects {
            Some(e) => e.laplace_at(&self.fit.params, z),
            None => self.fit.laplace(),
        }
    }
}

/// Fits `model` with covariate `coefficients` on customers grouped by their covariates;
/// without coefficients, [`purchase::fit_tuples`] on every group's tuples.
pub fn fit_groups(groups: &[Group<PurchaseTuple>], model: PurchaseModel, coefficients: Vec<Coefficient>, penalizer: f64) -> Result<CovariateFit, ClvError> {
    if coefficients.is_empty() {
        let all: Vec<PurchaseTuple> = groups.iter().flat_map(|g| g.tuples.iter().copied()).collect();
        return Ok(CovariateFit { fit: purchase::fit_tuples(&all, model, penalizer)?, effects: None });
    }
    for c in &coefficients {
        let mut values = groups.iter().filter(|g| g.tuples.iter().any(|t| t.customers > 0)).map(|g| g.z[c.column]);
        let first = values.next();
        if values.all(|v| Some(v) == first) {
            let column = c.name.split_once('[').map_or(c.name.as_str(), |(_, rest)| rest.trim_end_matches(']'));
            return Err(ClvError::Input(format!("covariate '{column}' takes one value for every customer, so it cannot shift the rates")));
        }
    }
    let data: Vec<(Vec<f64>, Sufficient)> = groups.iter().map(|g| (g.z.clone(), Sufficient::from_tuples(&g.tuples))).collect();
    let (fitted, fallback) = fitting::with_fallback(penalizer, |p| fit_with(&data, model, &coefficients, p, true))?;
    Ok(CovariateFit { fit: PurchaseFit { fallback, ..fitted.fit }, effects: fitted.effects })
}

/// The fit, optionally without the subsample warm start (a test compares the two).
fn fit_with(data: &[(Vec<f64>, Sufficient)], model: PurchaseModel, coefficients: &[Coefficient], penalizer: f64, warm: bool) -> Result<CovariateFit, ClvError> {
    if !data.iter().any(|(_, d)| d.rows.iter().any(|r| d.xs[r.0 as usize] > 0.0)) {
        return Err(ClvError::Input(format!("{} needs at least one customer with a repeat purchase", model.title())));
    }
    let total: f64 = data.iter().map(|(_, d)| d.total).sum();
    let max_t = data.iter().flat_map(|(_, d)| d.rows.iter().map(|r| d.ts[r.2 as usize])).fold(0.0, f64::max);
    let scale = if max_t > 0.0 { 1.0 / max_t } else { 1.0 };
    let effects = |phi: &[f64]| Effects {
        coefficients: coefficients.iter().zip(&phi[4..]).map(|(c, &value)| Coefficient { value, ..c.clone() }).collect(),
        covariance: None,
    };
    // Σ over groups of ln L at each group's parameters, with its gradient in (ln θ, γ):
    // ∂/∂ ln θ_j sums θ_gj ∂ln L_g/∂θ_gj, and ∂/∂γ_k adds sign_k z_gk times the same for the
    // parameter γ_k shifts.
    let log_likelihood = |data: &[(Vec<f64>, Sufficient)], phi: &[f64], scale: f64| -> (f64, Vec<f64>) {
        let base = PurchaseParams::new(model, std::array::from_fn(|j| phi[j].exp()));
        let e = effects(phi);
        let per_group: Vec<(f64, [f64; 4])> = data
            .par_iter()
            .map(|(z, d)| {
                let p = e.params_at(&base, z);
                let (ll, g) = purchase::log_likelihood(d, &p, scale);
                let v = p.values();
                (ll, std::array::from_fn(|j| v[j] * g[j]))
            })
            .collect();
        let mut grad = vec![0.0; phi.len()];
        let mut ll = 0.0;
        for ((z, _), (l, d_log)) in data.iter().zip(&per_group) {
            ll += l;
            for j in 0..4 {
                grad[j] += d_log[j];
            }
            for (k, c) in coefficients.iter().enumerate() {
                grad[4 + k] += d_log[c.parameter] * c.sign * z[c.column];
            }
        }
        (ll, grad)
    };
    // The mean negative log-likelihood plus penalizer · (Σ θ² + Σ γ²), as without covariates.
    let objective = |data: &[(Vec<f64>, Sufficient)], phi: &[f64]| -> (f64, Vec<f64>) {
        let (ll, g) = log_likelihood(data, phi, scale);
        let total: f64 = data.iter().map(|(_, d)| d.total).sum();
        let mut value = -ll / total;
        let grad = phi
            .iter()
            .enumerate()
            .map(|(j, &v)| {
                let (weight, d) = if j < 4 { (v.exp(), v.exp()) } else { (v, 1.0) };
                value += penalizer * weight * weight;
                -g[j] / total + 2.0 * penalizer * weight * d
            })
            .collect();
        (value, grad)
    };
    let dim = 4 + coefficients.len();
    // As without covariates: above a few hundred thousand customers, start from the optimum
    // of every k-th customer of each group, preconditioned with its Hessian (51 iterations
    // from the cold start at 845k buyers, BENCHMARKS.md).
    let start = match fitting::warm_start_step(total as usize).filter(|_| warm) {
        Some(k) => {
            let sub: Vec<(Vec<f64>, Sufficient)> = data.iter().map(|(z, d)| (z.clone(), d.every(k))).filter(|(_, d)| d.total > 0.0).collect();
            fitting::warm_start(|phi| objective(&sub, phi), dim)
        }
        None => fitting::Start::cold(dim),
    };
    let objective = |phi: &[f64]| objective(data, phi);
    let fitting::Fitted { x: phi, iterations, hessian } = fitting::minimize_polished(model.as_str(), &objective, start)?;
    let base_scaled = PurchaseParams::new(model, std::array::from_fn(|j| phi[j].exp()));
    fitting::check_degenerate(model.as_str(), &base_scaled.named())?;
    // exp(±20) is a factor of 5e8 between customers: no interior optimum along that covariate.
    if let Some(c) = effects(&phi).coefficients.iter().find(|c| !(c.value.abs() <= 20.0)) {
        return Err(ClvError::Fit { model: model.as_str(), message: format!("{} = {:e} is degenerate; the data cannot identify its effect", c.name, c.value) });
    }
    let e = effects(&phi);
    if model == PurchaseModel::ParetoNbd
        && let Some((z, _)) = data.iter().find(|(z, d)| match e.params_at(&base_scaled, z) {
            PurchaseParams::ParetoNbd(p) => !super::pareto_nbd::series_converge(d, &p, scale),
            _ => false,
        })
    {
        let message = format!("alpha and beta are too far apart for the likelihood's series at covariates {z:?} ({})", describe_params(&base_scaled.named()));
        return Err(ClvError::Fit { model: model.as_str(), message });
    }
    let base = base_scaled.unscaled(scale);
    let mut unscaled_phi: Vec<f64> = base.values().iter().map(|v| v.ln()).collect();
    unscaled_phi.extend(&phi[4..]);
    // Laplace, as without covariates: n × the Hessian of the mean objective; rescaling time
    // only shifts the log-parameters, so the covariance holds in the original unit. The
    // polishing step's Hessian serves.
    let covariance = hessian.and_then(|h| fitting::inverse_information_n(&(h * total)));
    let base_block = covariance.as_ref().map(|c| std::array::from_fn(|i| std::array::from_fn(|j| c[[i, j]])));
    let fit = PurchaseFit {
        params: base,
        covariance: base_block,
        log_likelihood: log_likelihood(data, &unscaled_phi, 1.0).0,
        iterations,
        customers: total as usize,
        unique_tuples: data.iter().map(|(_, d)| d.rows.len()).sum(),
        fallback: None,
    };
    Ok(CovariateFit { fit, effects: Some(Effects { covariance, ..e }) })
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_distr::{Beta, Distribution, Exp, Gamma};

    use super::*;

    /// BG/NBD customers (Fader, Hardie & Lee 2005, section 2) whose α, a and b are shifted by
    /// a binary covariate and a continuous one as the module doc says, observed for T weeks.
    fn simulate(n: usize, base: [f64; 4], purchase: [f64; 2], dropout_a: [f64; 2], dropout_b: [f64; 2]) -> Vec<Group<PurchaseTuple>> {
        simulate_model(PurchaseModel::BgNbd, n, base, purchase, [dropout_a, dropout_b])
    }

    /// Customers of `model` with covariates z = (binary, continuous): α shifted by `purchase`;
    /// BG/NBD and MBG/NBD (whose first purchase, too, may be the last) a and b by `dropout`'s
    /// two rows, Pareto/NBD (Schmittlein, Morrison & Colombo 1987: an exponential lifetime at
    /// rate μ ~ Gamma(s, β)) β by its first row, as `coefficients` lays them out.
    fn simulate_model(model: PurchaseModel, n: usize, base: [f64; 4], purchase: [f64; 2], dropout: [[f64; 2]; 2]) -> Vec<Group<PurchaseTuple>> {
        let mut rng = rand_xoshiro::Xoshiro256Plus::seed_from_u64(11);
        let mut rows = Vec::new();
        for i in 0..n {
            let z = vec![(i % 3 == 0) as u8 as f64, ((i % 5) as f64 - 2.0) / 2.0];
            let dot = |g: [f64; 2]| g[0] * z[0] + g[1] * z[1];
            let lambda: f64 = Gamma::new(base[0], 1.0 / (base[1] * (-dot(purchase)).exp())).unwrap().sample(&mut rng);
            let big_t = 30.0 + (i % 40) as f64;
            // The lifetime's end and the drop-out chance after each purchase.
            let (end, p) = match model {
                PurchaseModel::ParetoNbd => {
                    let mu: f64 = Gamma::new(base[2], 1.0 / (base[3] * (-dot(dropout[0])).exp())).unwrap().sample(&mut rng);
                    (Exp::new(mu).unwrap().sample(&mut rng).min(big_t), 0.0)
                }
                _ => (big_t, Beta::new(base[2] * dot(dropout[0]).exp(), base[3] * dot(dropout[1]).exp()).unwrap().sample(&mut rng)),
            };
            let (mut now, mut x, mut tx) = (0.0, 0.0, 0.0);
            let gone_at_first = model == PurchaseModel::MbgNbd && rng.r#gen::<f64>() < p;
            while !gone_at_first {
                now += Exp::new(lambda).unwrap().sample(&mut rng);
                if now > end {
                    break;
                }
                (x, tx) = (x + 1.0, now);
                if rng.r#gen::<f64>() < p {
                    break;
                }
            }
            rows.push((z, PurchaseTuple { frequency: x, recency: tx, tenure: big_t, customers: 1 }));
        }
        group(rows)
    }

    fn spec() -> CovariateSpec {
        CovariateSpec { purchase: vec!["web".into(), "age".into()], dropout: vec!["web".into(), "age".into()] }
    }

    #[test]
    fn the_gradient_is_the_likelihoods() {
        let groups = simulate(2_000, [0.9, 6.0, 0.6, 3.0], [0.5, -0.3], [0.4, 0.0], [-0.2, 0.3]);
        let coefficients = coefficients(PurchaseModel::BgNbd, &spec()).unwrap();
        let data: Vec<(Vec<f64>, Sufficient)> = groups.iter().map(|g| (g.z.clone(), Sufficient::from_tuples(&g.tuples))).collect();
        let CovariateFit { fit, effects } = fit_with(&data, PurchaseModel::BgNbd, &coefficients, 0.0, true).unwrap();
        let e = effects.unwrap();
        // ln L by summing the base model's per group at θ_i, against the analytic
        // gradient's direction: the optimum has a zero gradient, so the likelihood falls
        // both ways along every coordinate.
        let ll = |e: &Effects| groups.iter().map(|g| e.params_at(&fit.params, &g.z).log_likelihood_tuples(&g.tuples)).sum::<f64>();
        let at = ll(&e);
        assert!((at - fit.log_likelihood).abs() < 1e-6 * at.abs(), "{at} vs {}", fit.log_likelihood);
        for k in 0..e.coefficients.len() {
            for step in [-1e-3, 1e-3] {
                let mut moved = e.clone();
                moved.coefficients[k].value += step;
                assert!(ll(&moved) < at, "{} moved by {step}", e.coefficients[k].name);
            }
        }
    }

    #[test]
    fn known_covariate_effects_are_recovered() {
        let (purchase, dropout_a, dropout_b) = ([0.5, -0.3], [0.4, 0.0], [-0.2, 0.3]);
        let groups = simulate(60_000, [0.9, 6.0, 0.6, 3.0], purchase, dropout_a, dropout_b);
        let CovariateFit { fit, effects } = fit_groups(&groups, PurchaseModel::BgNbd, coefficients(PurchaseModel::BgNbd, &spec()).unwrap(), 0.0).unwrap();
        let e = effects.as_ref().unwrap();
        let se = e.std_errors().unwrap();
        let truth = [purchase[0], purchase[1], dropout_a[0], dropout_b[0], dropout_a[1], dropout_b[1]];
        for ((c, want), se) in e.coefficients.iter().zip(truth).zip(&se) {
            // Within 3.5 standard errors, and the errors small enough to tell the effects apart.
            assert!((c.value - want).abs() < 3.5 * se, "{}: {} ± {se} vs {want}", c.name, c.value);
            assert!(*se < 0.15, "{}: se {se}", c.name);
        }
        let base = fit.params.values();
        for (got, want) in base.iter().zip([0.9, 6.0, 0.6, 3.0]) {
            assert!((got / want - 1.0).abs() < 0.15, "{base:?}");
        }
    }

    #[test]
    fn mbgnbd_and_pareto_nbd_effects_are_recovered() {
        // MBG/NBD's a and b share one shift here, so the truth per coefficient is that shift.
        let cases = [
            (PurchaseModel::MbgNbd, [0.9, 6.0, 0.6, 3.0], [0.5, -0.3], [0.4, 0.2], vec![0.5, -0.3, 0.4, 0.4, 0.2, 0.2]),
            (PurchaseModel::ParetoNbd, [0.8, 6.0, 0.7, 20.0], [0.5, -0.3], [0.6, -0.2], vec![0.5, -0.3, 0.6, -0.2]),
        ];
        for (model, base, purchase, dropout, truth) in cases {
            let groups = simulate_model(model, 60_000, base, purchase, [dropout, dropout]);
            let CovariateFit { effects, .. } = fit_groups(&groups, model, coefficients(model, &spec()).unwrap(), 0.0).unwrap();
            let e = effects.unwrap();
            let se = e.std_errors().unwrap();
            assert_eq!(e.coefficients.len(), truth.len());
            for ((c, want), se) in e.coefficients.iter().zip(truth).zip(&se) {
                assert!((c.value - want).abs() < 3.5 * se && *se < 0.2, "{model:?} {}: {} ± {se} vs {want}", c.name, c.value);
            }
        }
    }

    #[test]
    fn warm_start_reaches_the_same_optimum() {
        // Above 4 × 50,000 customers the fit starts from a subsample's optimum.
        let groups = simulate(250_000, [0.9, 6.0, 0.6, 3.0], [0.5, -0.3], [0.4, 0.0], [-0.2, 0.3]);
        let data: Vec<(Vec<f64>, Sufficient)> = groups.iter().map(|g| (g.z.clone(), Sufficient::from_tuples(&g.tuples))).collect();
        let coefficients = coefficients(PurchaseModel::BgNbd, &spec()).unwrap();
        let values = |warm| {
            let f = fit_with(&data, PurchaseModel::BgNbd, &coefficients, 0.0, warm).unwrap();
            let mut v = f.fit.params.values().to_vec();
            v.extend(f.effects.unwrap().coefficients.iter().map(|c| c.value));
            (v, f.fit.iterations)
        };
        let ((warm, warm_iterations), (cold, cold_iterations)) = (values(true), values(false));
        assert!(warm_iterations < cold_iterations, "warm {warm_iterations}, cold {cold_iterations}");
        for (w, c) in warm.iter().zip(&cold) {
            assert!((w - c).abs() < 1e-6 * c.abs().max(1.0), "warm {warm:?} vs cold {cold:?}");
        }
    }

    #[test]
    fn a_customers_covariance_is_the_jacobians_sandwich() {
        let groups = simulate(3_000, [0.9, 6.0, 0.6, 3.0], [0.5, -0.3], [0.4, 0.0], [-0.2, 0.3]);
        let CovariateFit { fit, effects } = fit_groups(&groups, PurchaseModel::BgNbd, coefficients(PurchaseModel::BgNbd, &spec()).unwrap(), 0.0).unwrap();
        let e = effects.as_ref().unwrap();
        let full = e.covariance.as_ref().unwrap();
        // At z = 0 the base block; at z = (1, 0) ln α_i = ln α − γ_web, so
        // var(ln α_i) = var(ln α) − 2 cov(ln α, γ_web) + var(γ_web).
        let at0 = e.laplace_at(&fit.params, &[0.0, 0.0]).unwrap();
        assert_eq!(at0.covariance, fit.covariance.unwrap());
        let at1 = e.laplace_at(&fit.params, &[1.0, 0.0]).unwrap();
        let want = full[[1, 1]] - 2.0 * full[[1, 4]] + full[[4, 4]];
        assert!((at1.covariance[1][1] - want).abs() < 1e-15, "{} vs {want}", at1.covariance[1][1]);
        assert!((at1.params.values()[1] - fit.params.values()[1] * (-e.coefficients[0].value).exp()).abs() < 1e-12);
    }

    #[test]
    fn a_covariate_with_one_value_and_bgbb_are_plain_errors() {
        let mut groups = simulate(200, [0.9, 6.0, 0.6, 3.0], [0.0; 2], [0.0; 2], [0.0; 2]);
        for g in &mut groups {
            g.z[0] = 1.0;
        }
        let err = fit_groups(&groups, PurchaseModel::BgNbd, coefficients(PurchaseModel::BgNbd, &spec()).unwrap(), 0.0).unwrap_err();
        assert_eq!(err.to_string(), "invalid CLV input: covariate 'web' takes one value for every customer, so it cannot shift the rates");
        let err = coefficients(PurchaseModel::BgBb, &spec()).unwrap_err();
        assert!(err.to_string().contains("BG/BB takes none"), "{err}");
    }

    #[test]
    fn groups_come_in_ascending_covariate_order() {
        let g = group([(vec![1.0, -2.0], 1), (vec![-1.0, 5.0], 2), (vec![1.0, -3.0], 3), (vec![-1.0, 5.0], 4), (vec![-0.0, 0.0], 5), (vec![0.0, 0.0], 6)]);
        let z: Vec<Vec<f64>> = g.iter().map(|g| g.z.clone()).collect();
        assert_eq!(z, [vec![-1.0, 5.0], vec![-0.0, 0.0], vec![1.0, -3.0], vec![1.0, -2.0]]);
        assert_eq!(g[0].tuples, [2, 4]);
        assert_eq!(g[1].tuples, [5, 6]);
    }
}
