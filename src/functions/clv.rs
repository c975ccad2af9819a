//! The lifetime-value closed forms as SQL functions, given fitted purchase-model (BG/NBD: Fader,
//! Hardie & Lee 2005) and Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV") parameters:
//!
//! | function | value |
//! |---|---|
//! | `bgnbd_p_alive(r, alpha, a, b, frequency, recency, tenure)` | P(alive), 1 / eq. 10's denominator |
//! | `bgnbd_expected_purchases(r, alpha, a, b, horizon, frequency, recency, tenure)` | E[purchases in (T, T + horizon]], eq. 10 |
//! | `gamma_gamma_expected_value(p, q, gamma, frequency, monetary_value)` | E[average order value], eq. 5 |
//! | `bgnbd_gg_clv(r, alpha, a, b, p, q, gamma, margin, horizon_months, monthly_discount_rate, periods_per_month, frequency, recency, tenure, monetary_value)` | discounted CLV, as the `clv` column |
//!
//! `mbgnbd_p_alive`, `mbgnbd_expected_purchases` and `mbgnbd_gg_clv` take the same arguments
//! for MBG/NBD parameters (Batislam, Denizel & Filiztekin 2007); `pareto_nbd_p_alive`,
//! `pareto_nbd_expected_purchases` and `pareto_nbd_gg_clv` take Pareto/NBD's r, alpha, s, beta
//! (Schmittlein, Morrison & Colombo 1987) in place of r, alpha, a, b; `bgbb_p_alive`,
//! `bgbb_expected_purchases` and `bgbb_gg_clv` BG/BB's alpha, beta, gamma, delta (Fader, Hardie
//! & Shang 2010), times in periods.
//!
//! Times are in the model's unit (`clv_model`'s `time_unit`); `periods_per_month` is 30 for
//! days and 4.345 for weeks.

use datafusion::arrow::array::{Array, Float64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use foldhash::fast::FixedState;

use super::args::{coerce_numeric, float_arrays, map_rows, no_null_parameters};
use crate::clv::{GammaGammaParams, PurchaseModel, PurchaseParams, discounted_numerators_over, is_amount, is_probability, out_of_range};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    PAlive(PurchaseModel),
    ExpectedPurchases(PurchaseModel),
    ExpectedValue,
    Clv(PurchaseModel),
}

impl Kind {
    /// Three functions per purchase model, and Gamma-Gamma's.
    fn all() -> Vec<Kind> {
        let per_model = PurchaseModel::ALL.into_iter().flat_map(|m| [Kind::PAlive(m), Kind::ExpectedPurchases(m), Kind::Clv(m)]);
        per_model.chain([Kind::ExpectedValue]).collect()
    }

    /// `bgnbd_p_alive`, `pareto_nbd_gg_clv`, `gamma_gamma_expected_value`, …
    fn name(self) -> String {
        match self {
            Kind::PAlive(m) => format!("{}_p_alive", m.as_str()),
            Kind::ExpectedPurchases(m) => format!("{}_expected_purchases", m.as_str()),
            Kind::Clv(m) => format!("{}_gg_clv", m.as_str()),
            Kind::ExpectedValue => "gamma_gamma_expected_value".into(),
        }
    }

    /// The model's parameters, first in the argument list (the purchase model's named as in
    /// `clv_model`).
    fn parameters(self) -> Vec<&'static str> {
        let gamma_gamma = ["p", "q", "gamma"];
        match self {
            Kind::PAlive(m) => m.parameters().to_vec(),
            Kind::ExpectedPurchases(m) => m.parameters().into_iter().chain(["horizon"]).collect(),
            Kind::ExpectedValue => gamma_gamma.to_vec(),
            Kind::Clv(m) => {
                let discounting = ["margin", "horizon_months", "monthly_discount_rate", "periods_per_month"];
                m.parameters().into_iter().chain(gamma_gamma).chain(discounting).collect()
            }
        }
    }

    /// The customer's values, after the parameters.
    fn values(self) -> &'static [&'static str] {
        match self {
            Kind::ExpectedValue => &["frequency", "monetary_value"],
            Kind::Clv(_) => &["frequency", "recency", "tenure", "monetary_value"],
            Kind::PAlive(_) | Kind::ExpectedPurchases(_) => &["frequency", "recency", "tenure"],
        }
    }

    /// Whether `v` is a value this function can return (`clv::predict` checks the same).
    fn in_range(self, v: f64) -> bool {
        match self {
            Kind::PAlive(_) => is_probability(v),
            Kind::ExpectedPurchases(_) | Kind::ExpectedValue | Kind::Clv(_) => is_amount(v),
        }
    }

    fn arguments(self) -> Vec<&'static str> {
        self.parameters().into_iter().chain(self.values().iter().copied()).collect()
    }

    /// The value for one row: `p` the parameters, `v` the customer's values, in order.
    /// `numerators` caches the costly part (eq. 10's numerator, a ₂F₁ series per month),
    /// which depends only on the parameters, x and T: customers share few (x, T) pairs.
    fn eval(self, p: &[f64], v: &[f64], numerators: &mut Numerators) -> f64 {
        let purchases = |model| PurchaseParams::new(model, [p[0], p[1], p[2], p[3]]);
        match self {
            Kind::PAlive(model) => 1.0 / purchases(model).purchases_denominator(v[0], v[1], v[2]),
            Kind::ExpectedPurchases(model) => {
                let b = purchases(model);
                let key = [p[0], p[1], p[2], p[3], p[4], 0.0, 0.0, v[0], v[2]].map(f64::to_bits);
                let numerator = numerators.get_or(key, || b.purchases_numerator(p[4], v[0], v[2]));
                numerator / b.purchases_denominator(v[0], v[1], v[2])
            }
            Kind::ExpectedValue => GammaGammaParams { p: p[0], q: p[1], gamma: p[2] }.expected_avg_value(v[0], v[1]),
            Kind::Clv(model) => {
                let (b, g) = (purchases(model), GammaGammaParams { p: p[4], q: p[5], gamma: p[6] });
                let (x, tx, t, m) = (v[0], v[1], v[2], v[3]);
                let key = [p[0], p[1], p[2], p[3], p[8], p[9], p[10], x, t].map(f64::to_bits);
                let discounted = numerators.get_or(key, || discounted_numerators_over(&b, x, t, p[10], p[8] as u32, p[9]).0);
                // As `clv::predict` computes the `clv` column.
                p[7] * g.expected_avg_value(x, m) * discounted / b.purchases_denominator(x, tx, t)
            }
        }
    }
}

/// Eq. 10's numerators (or their discounted sums) by parameters, horizon, x and T bits.
type NumeratorMap = HashMap<[u64; 9], f64, FixedState>;

/// Most numerators a function keeps between batches (about 100 bytes each, so at most ~100 MB
/// per process). A batch of 8,192 rows meets most of the (x, T) pairs it holds only once, so a
/// cache per batch alone computed the same series again in every batch: writing `customer_clv`
/// for 845k buyers took 1.6 s with it, 1.2 s with this one (`bench/run --size models`' job).
const SHARED_NUMERATORS: usize = 1 << 20;

/// The numerators one batch looks up: its own, then those every batch of this function has
/// computed (a pure memo: the value for a key never changes, so which batch computed it first
/// does not matter and results stay the same whatever the thread count).
struct Numerators<'a> {
    batch: NumeratorMap,
    shared: &'a Mutex<NumeratorMap>,
}

impl Numerators<'_> {
    fn get_or(&mut self, key: [u64; 9], compute: impl FnOnce() -> f64) -> f64 {
        if let Some(v) = self.batch.get(&key) {
            return *v;
        }
        let lock = || self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let known = lock().get(&key).copied();
        let v = known.unwrap_or_else(compute);
        if known.is_none() {
            let mut shared = lock();
            if shared.len() >= SHARED_NUMERATORS {
                shared.clear();
            }
            shared.insert(key, v);
        }
        self.batch.insert(key, v);
        v
    }
}

#[derive(Debug)]
struct ClvFunction {
    kind: Kind,
    name: String,
    signature: Signature,
    numerators: Mutex<NumeratorMap>,
}

// A function is its kind: the memo is not part of what it is.
impl PartialEq for ClvFunction {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
    }
}

impl Eq for ClvFunction {}

impl std::hash::Hash for ClvFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
    }
}

pub fn functions() -> Vec<ScalarUDF> {
    Kind::all()
        .into_iter()
        .map(|kind| {
            ScalarUDF::new_from_impl(ClvFunction {
                kind,
                name: kind.name(),
                signature: Signature::user_defined(Volatility::Immutable),
                numerators: Mutex::default(),
            })
        })
        .collect()
}

impl ScalarUDFImpl for ClvFunction {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_numeric(&self.name, &self.kind.arguments(), arg_types)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (name, n_params) = (self.name.as_str(), self.kind.parameters().len());
        let rows = args.number_rows;
        // Where the models run shows in the logs (a Ballista test checks it is the executors).
        tracing::debug!(function = name, rows, "model function evaluated");
        let columns = float_arrays(&args.args, rows)?;
        let (params, values) = columns.split_at(n_params);
        no_null_parameters(name, &self.kind.parameters(), params)?;
        if matches!(self.kind, Kind::Clv(_)) {
            // horizon_months counts months: a whole number from 1, at most a century (the
            // discounting loops over months).
            let most = crate::clv::MAX_HORIZON_MONTHS as f64;
            if let Some(h) = params[8].values().iter().find(|h| !(h.fract() == 0.0 && **h >= 1.0 && **h <= most)) {
                return Err(DataFusionError::Execution(format!("{name}: horizon_months must be a whole number from 1 to {most}, got {h}")));
            }
        }
        let mut p = vec![0.0; n_params];
        let mut v = vec![0.0; values.len()];
        let mut numerators = Numerators { batch: NumeratorMap::default(), shared: &self.numerators };
        let out: Float64Array = map_rows(rows, values, |i| {
            p.iter_mut().zip(params).for_each(|(p, c)| *p = c.value(i));
            v.iter_mut().zip(values).for_each(|(v, c)| *v = c.value(i));
            self.kind.eval(&p, &v, &mut numerators)
        });
        if let Some(i) = (0..rows).find(|&i| out.is_valid(i) && !self.kind.in_range(out.value(i))) {
            let named = |names: &[&'static str], columns: &[Float64Array]| -> Vec<(&'static str, f64)> {
                names.iter().zip(columns).map(|(n, c)| (*n, c.value(i))).collect()
            };
            let customer = named(self.kind.values(), values);
            let message = out_of_range(&customer, &named(&self.kind.parameters(), params));
            return Err(DataFusionError::Execution(format!("{name}: {message}")));
        }
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}
