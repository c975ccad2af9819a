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
//! `bgnbd_purchases_quantile(r, alpha, a, b, c11, c12, c13, c14, c22, c23, c24, c33, c34, c44,
//! horizon, quantile, frequency, recency, tenure)` (and `mbgnbd_`, `pareto_nbd_`, `bgbb_`) is
//! the `quantile` (0 < q < 1) of the customer's purchases in (T, T + horizon] under the
//! purchase process and the parameters' Laplace uncertainty (`clv::predictive`): cᵢⱼ is the
//! covariance of the log of the i-th and j-th parameter (`clv_model`'s `log_cov_j` on the i-th
//! parameter's row); all zero for the fitted parameters alone. BG/BB counts the whole
//! opportunities in the horizon. `bgnbd_purchases_interval(…)` takes the same arguments but
//! `quantile` and returns the struct {p10, p50, p90} from one evaluation.
//!
//! `bgnbd_customer_values(r, alpha, a, b, p, q, gamma, margin, horizon_months,
//! monthly_discount_rate, periods_per_month, frequency, recency, tenure, monetary_value)` (and
//! `mbgnbd_`, `pareto_nbd_`, `bgbb_`) returns the struct {p_alive, expected_purchases,
//! expected_avg_value, clv} from one evaluation, each field what its function above returns
//! (expected purchases over horizon_months × periods_per_month);
//! `*_customer_values_with_interval` takes the covariance's upper triangle after
//! periods_per_month and adds purchases_p10, purchases_p50 and purchases_p90. NULL fields where
//! any value is NULL. `customer_clv` is computed with these.
//!
//! Times are in the model's unit (`clv_model`'s `time_unit`); `periods_per_month` is 30 for
//! days and 4.345 for weeks.

use datafusion::arrow::array::{Array, ArrayRef, Float64Array, StructArray};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::Result;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use foldhash::fast::FixedState;

use super::args::{Param, coerce_numeric, float_arrays, map_rows, parameters};
use crate::clv::{AliveTails, GammaGammaParams, Laplace, Predictive, PurchaseModel, PurchaseParams, discounted_numerators_over, is_amount, is_probability, out_of_range};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    PAlive(PurchaseModel),
    ExpectedPurchases(PurchaseModel),
    ExpectedValue,
    Clv(PurchaseModel),
    PurchasesQuantile(PurchaseModel),
    /// p10, p50 and p90 of purchases at once (a struct), one evaluation instead of three.
    PurchasesInterval(PurchaseModel),
    /// P(alive), expected purchases, expected value and CLV at once (a struct), with the
    /// purchases' p10, p50 and p90 when `interval`: what `customer_clv` uses. One evaluation
    /// shares eq. 10's denominator and one memo entry between the values, where the functions
    /// one by one computed the denominator three times and looked up two numerators.
    CustomerValues { model: PurchaseModel, interval: bool },
}

/// The quantiles `*_purchases_interval` returns, and their field names.
const INTERVAL: [(f64, &str); 3] = [(0.1, "p10"), (0.5, "p50"), (0.9, "p90")];

/// The fields `*_customer_values` returns: `customer_clv`'s column names.
pub const CUSTOMER_VALUES: [&str; 4] = ["p_alive", "expected_purchases", "expected_avg_value", "clv"];

/// The fields `*_customer_values_with_interval` adds.
pub const CUSTOMER_INTERVAL: [&str; 3] = ["purchases_p10", "purchases_p50", "purchases_p90"];

/// The upper triangle of the log-parameters' covariance, row by row, as
/// `*_purchases_quantile` takes it.
const COVARIANCE_ARGUMENTS: [&str; 10] = ["c11", "c12", "c13", "c14", "c22", "c23", "c24", "c33", "c34", "c44"];

/// How `*_gg_clv` and `*_customer_values` discount, after the models' parameters.
const DISCOUNTING: [&str; 4] = ["margin", "horizon_months", "monthly_discount_rate", "periods_per_month"];

/// The symmetric covariance from its upper triangle in [`COVARIANCE_ARGUMENTS`] order.
fn covariance_from_upper(v: &[f64]) -> [[f64; 4]; 4] {
    let mut c = [[0.0; 4]; 4];
    let mut k = 0;
    for i in 0..4 {
        for j in i..4 {
            (c[i][j], c[j][i]) = (v[k], v[k]);
            k += 1;
        }
    }
    c
}

impl Kind {
    /// Seven functions per purchase model, and Gamma-Gamma's.
    fn all() -> Vec<Kind> {
        let per_model = PurchaseModel::ALL.into_iter().flat_map(|m| {
            [Kind::PAlive(m), Kind::ExpectedPurchases(m), Kind::Clv(m), Kind::PurchasesQuantile(m), Kind::PurchasesInterval(m)]
                .into_iter()
                .chain([false, true].map(|interval| Kind::CustomerValues { model: m, interval }))
        });
        per_model.chain([Kind::ExpectedValue]).collect()
    }

    /// `bgnbd_p_alive`, `pareto_nbd_gg_clv`, `gamma_gamma_expected_value`, …
    fn name(self) -> String {
        match self {
            Kind::PAlive(m) => format!("{}_p_alive", m.as_str()),
            Kind::ExpectedPurchases(m) => format!("{}_expected_purchases", m.as_str()),
            Kind::Clv(m) => format!("{}_gg_clv", m.as_str()),
            Kind::PurchasesQuantile(m) => format!("{}_purchases_quantile", m.as_str()),
            Kind::PurchasesInterval(m) => format!("{}_purchases_interval", m.as_str()),
            Kind::CustomerValues { model, interval: false } => format!("{}_customer_values", model.as_str()),
            Kind::CustomerValues { model, interval: true } => format!("{}_customer_values_with_interval", model.as_str()),
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
            Kind::PurchasesQuantile(m) => m.parameters().into_iter().chain(COVARIANCE_ARGUMENTS).chain(["horizon", "quantile"]).collect(),
            Kind::PurchasesInterval(m) => m.parameters().into_iter().chain(COVARIANCE_ARGUMENTS).chain(["horizon"]).collect(),
            Kind::ExpectedValue => gamma_gamma.to_vec(),
            Kind::Clv(m) | Kind::CustomerValues { model: m, interval: false } => m.parameters().into_iter().chain(gamma_gamma).chain(DISCOUNTING).collect(),
            Kind::CustomerValues { model, interval: true } => model.parameters().into_iter().chain(gamma_gamma).chain(DISCOUNTING).chain(COVARIANCE_ARGUMENTS).collect(),
        }
    }

    /// The customer's values, after the parameters.
    fn values(self) -> &'static [&'static str] {
        match self {
            Kind::ExpectedValue => &["frequency", "monetary_value"],
            Kind::Clv(_) | Kind::CustomerValues { .. } => &["frequency", "recency", "tenure", "monetary_value"],
            Kind::PAlive(_) | Kind::ExpectedPurchases(_) | Kind::PurchasesQuantile(_) | Kind::PurchasesInterval(_) => &["frequency", "recency", "tenure"],
        }
    }

    /// Whether `v` is a value this function can return (`clv::predict` checks the same).
    fn in_range(self, v: f64) -> bool {
        match self {
            Kind::PAlive(_) => is_probability(v),
            Kind::ExpectedPurchases(_) | Kind::ExpectedValue | Kind::Clv(_) | Kind::PurchasesQuantile(_) | Kind::PurchasesInterval(_) | Kind::CustomerValues { .. } => {
                is_amount(v)
            }
        }
    }

    fn arguments(self) -> Vec<&'static str> {
        self.parameters().into_iter().chain(self.values().iter().copied()).collect()
    }

    /// The value for one row: `p` the parameters, `v` the customer's values, in order.
    /// `memo` caches the costly part (eq. 10's numerator, a ₂F₁ series per month), which
    /// depends only on the parameters, x and T: customers share few (x, T) pairs.
    fn eval(self, p: &[f64], v: &[f64], memo: &mut Memos) -> f64 {
        let purchases = |model| PurchaseParams::new(model, [p[0], p[1], p[2], p[3]]);
        if let Kind::PurchasesQuantile(model) = self {
            return purchase_quantiles(model, p, p, v, memo, [p[15]])[0];
        }
        match self {
            Kind::PurchasesQuantile(_) => unreachable!("returned above"),
            Kind::PurchasesInterval(_) => unreachable!("evaluated by `ClvFunction::interval`"),
            Kind::CustomerValues { .. } => unreachable!("evaluated by `ClvFunction::customer_values`"),
            Kind::PAlive(model) => 1.0 / purchases(model).purchases_denominator(v[0], v[1], v[2]),
            Kind::ExpectedPurchases(model) => {
                let b = purchases(model);
                let id = memo.model(p, |_| Vec::new()).0;
                let numerator = *memo.shared(id, v[0], v[2]).numerator.get_or_insert_with(|| b.purchases_numerator(p[4], v[0], v[2]));
                numerator / b.purchases_denominator(v[0], v[1], v[2])
            }
            Kind::ExpectedValue => GammaGammaParams { p: p[0], q: p[1], gamma: p[2] }.expected_avg_value(v[0], v[1]),
            Kind::Clv(model) => {
                let (b, g) = (purchases(model), GammaGammaParams { p: p[4], q: p[5], gamma: p[6] });
                let (x, tx, t, m) = (v[0], v[1], v[2], v[3]);
                let id = memo.model(p, |_| Vec::new()).0;
                let discounted = memo.shared(id, x, t).discounted.get_or_insert_with(|| discounted_numerators_over(&b, x, t, p[10], p[8] as u32, p[9])).0;
                // As `clv::predict` computes the `clv` column.
                p[7] * g.expected_avg_value(x, m) * discounted / b.purchases_denominator(x, tx, t)
            }
        }
    }
}

/// The cubature points of the Laplace approximation `q` describes (`*_purchases_interval`'s
/// model arguments: the parameters, then the covariance's upper triangle); none when they
/// cannot be had (each distinct set is checked before the rows: `check_quantile_args`).
fn cubature_points(model: PurchaseModel, q: &[f64]) -> Vec<PurchaseParams> {
    Laplace { params: PurchaseParams::new(model, [q[0], q[1], q[2], q[3]]), covariance: covariance_from_upper(&q[4..14]) }.points().unwrap_or_default()
}

/// The quantiles `qs` of the customer's purchases over the horizon. `p`: the function's
/// parameters (which the memo's entries are for); `q`: the model's arguments as
/// `*_purchases_interval` takes them (the parameters, the covariance's upper triangle, the
/// horizon); `v`: x, t_x, T.
fn purchase_quantiles<const N: usize>(model: PurchaseModel, p: &[f64], q: &[f64], v: &[f64], memo: &mut Memos, qs: [f64; N]) -> [f64; N] {
    let id = memo.model(p, |_| cubature_points(model, q)).0;
    let (points, entry) = memo.entry(id, v[0], v[2]);
    entry_quantiles(points, entry, q[14], v, qs)
}

/// [`purchase_quantiles`] from the customer's memo entry (their parameters', x's and T's) and
/// the parameters' cubature `points`: the entry's tails, computed for its first customer.
fn entry_quantiles<const N: usize>(points: &[PurchaseParams], entry: &mut Shared, h: f64, v: &[f64], qs: [f64; N]) -> [f64; N] {
    let (x, tx, t) = (v[0], v[1], v[2]);
    if points.is_empty() {
        return [f64::NAN; N];
    }
    // Tails down to 0.05 serve every quantile up to 0.95 (p10, p50, p90 share them).
    let floor = qs.iter().fold(0.05f64, |f, q| f.min(1.0 - q));
    let tails = entry.tails.get_or_insert_with(|| AliveTails::new(points, h, x, t, floor));
    Predictive::new(points, tails, x, tx, t).quantiles(qs)
}

/// One customer's P(alive), expected purchases, expected value and CLV, each to the bit what
/// `*_p_alive`, `*_expected_purchases` (over horizon_months × periods_per_month),
/// `gamma_gamma_expected_value` and `*_gg_clv` compute, then with `interval` the purchases'
/// p10, p50 and p90 as `*_purchases_interval` computes them (NaN without). `p`: the purchase
/// model's and Gamma-Gamma's parameters, [`DISCOUNTING`], then with `interval` the
/// covariance's upper triangle; `v`: x, t_x, T, m.
fn customer_row(model: PurchaseModel, p: &[f64], v: &[f64], memo: &mut Memos, interval: bool) -> [f64; 7] {
    let (b, g) = (PurchaseParams::new(model, [p[0], p[1], p[2], p[3]]), GammaGammaParams { p: p[4], q: p[5], gamma: p[6] });
    let (x, tx, t, m) = (v[0], v[1], v[2], v[3]);
    let id = memo.model(p, |p| if interval { cubature_points(model, &interval_args(p)) } else { Vec::new() }).0;
    // One lookup for the numerators and the tails: an entry's first touch per row is a cache
    // miss (customers' (x, T) come in no order).
    let (points, entry) = memo.entry(id, x, t);
    // The discounted sum's last numerator is eq. 10's over the whole horizon, the one
    // `*_expected_purchases` computes for horizon_months × periods_per_month.
    let (discounted, numerator) = *entry.discounted.get_or_insert_with(|| discounted_numerators_over(&b, x, t, p[10], p[8] as u32, p[9]));
    let denominator = b.purchases_denominator(x, tx, t);
    let value = g.expected_avg_value(x, m);
    let mut out = [1.0 / denominator, numerator / denominator, value, p[7] * value * discounted / denominator, f64::NAN, f64::NAN, f64::NAN];
    if interval {
        out[4..].copy_from_slice(&entry_quantiles(points, entry, interval_args(p)[14], v, INTERVAL.map(|(q, _)| q)));
    }
    out
}

/// `*_customer_values_with_interval`'s model arguments as `*_purchases_interval` takes them:
/// the purchase parameters, the covariance's upper triangle, the horizon.
fn interval_args(p: &[f64]) -> [f64; 15] {
    std::array::from_fn(|j| match j {
        0..4 => p[j],
        4..14 => p[j + 7],
        _ => p[8] * p[10],
    })
}

/// Most values one memo map keeps (numerators take about 100 bytes each, so at most ~100 MB
/// per map). Customers share few (x, T) pairs (38k for 845k customers in weeks), so the bound
/// only matters for models that vary by customer.
const MEMO_ENTRIES: usize = 1 << 20;

/// `map`, emptied first when it holds [`MEMO_ENTRIES`].
fn bounded<K, V>(map: &mut HashMap<K, V, FixedState>) -> &mut HashMap<K, V, FixedState> {
    if map.len() >= MEMO_ENTRIES {
        map.clear();
    }
    map
}

/// One batch's memos: pure caches (a key's value never changes, so which batch computed it
/// first does not matter, and results stay the same whatever the thread count).
#[derive(Default)]
struct Memos {
    /// A small id for each distinct row of the function's parameters (as bits), so an entry's
    /// key is three words whatever the parameters' number.
    ids: HashMap<Vec<u64>, u64, FixedState>,
    next_id: u64,
    /// The last row's parameters: a batch's rows mostly share them, and with literal
    /// parameters all do ([`Memos::start`]).
    last: Option<Model>,
    /// Whether the batch's parameters are literals and `last` is theirs: rows then skip the
    /// comparison.
    pinned: bool,
    constant: bool,
    /// What customers with the same parameters, x and T share, by (id, x bits, T bits): one
    /// lookup per row finds the numerators and the tails (an entry's first touch is a cache
    /// miss; two maps took two).
    shared: HashMap<[u64; 3], Shared, FixedState>,
}

/// A parameter row's id and, for the interval functions, its cubature points.
struct Model {
    bits: Vec<u64>,
    id: u64,
    points: Vec<PurchaseParams>,
}

/// One (parameters, x, T) entry; each part filled by the functions that need it.
#[derive(Default)]
struct Shared {
    /// Eq. 10's numerator over the horizon (`*_expected_purchases`).
    numerator: Option<f64>,
    /// The discounted sum over the horizon's months with its last numerator
    /// ([`discounted_numerators_over`]).
    discounted: Option<(f64, f64)>,
    /// Each cubature point's P(N ≥ k | alive): every t_x and decile with that (x, T) shares
    /// them. Customers rarely share (x, t_x, T) in days or weeks, so quantiles themselves are
    /// not memoised.
    tails: Option<AliveTails>,
}

impl Memos {
    /// A batch begins: `constant` when its parameters are literals (the same on every row).
    fn start(&mut self, constant: bool) {
        (self.constant, self.pinned) = (constant, false);
    }

    /// Row parameters `p`'s id and cubature points (`points(p)` when they are new to the
    /// memo's last row).
    fn model(&mut self, p: &[f64], points: impl FnOnce(&[f64]) -> Vec<PurchaseParams>) -> (u64, &[PurchaseParams]) {
        let same = self.pinned || self.last.as_ref().is_some_and(|m| m.bits.len() == p.len() && m.bits.iter().zip(p).all(|(b, v)| *b == v.to_bits()));
        if !same {
            let bits: Vec<u64> = p.iter().map(|v| v.to_bits()).collect();
            if self.ids.len() >= MEMO_ENTRIES {
                self.ids.clear();
            }
            let next = &mut self.next_id;
            let id = *self.ids.entry(bits.clone()).or_insert_with(|| {
                *next += 1;
                *next
            });
            self.last = Some(Model { bits, id, points: points(p) });
        }
        self.pinned = self.constant;
        let m = self.last.as_ref().expect("set above");
        (m.id, &m.points)
    }

    /// The model id every row of the batch has (literal parameters, after the first row).
    fn pinned_id(&self) -> Option<u64> {
        self.last.as_ref().filter(|_| self.pinned).map(|m| m.id)
    }

    /// Reads the entries of `rows` (their x and T; parameters `id`) and their tails' first
    /// counts, to have them in the cache when the rows come. Customers' (x, T) come in no
    /// order, so each row's entry and tails were two cache misses, one after the other, a
    /// fifth of the model functions' time (`perf`, 845k customers); looked up here, in a loop
    /// whose rows do not wait on each other, the misses of many rows are under way at once.
    fn warm(&self, id: u64, (x, t): (&Float64Array, &Float64Array), rows: std::ops::Range<usize>) {
        let mut touched = 0.0;
        for i in rows {
            if let Some(e) = self.shared.get(&[id, x.value(i).to_bits(), t.value(i).to_bits()]) {
                touched += e.tails.as_ref().map_or(0.0, AliveTails::first);
            }
        }
        std::hint::black_box(touched);
    }

    /// The entry of parameters `id`, x and T.
    fn shared(&mut self, id: u64, x: f64, t: f64) -> &mut Shared {
        self.entry(id, x, t).1
    }

    /// The last row's cubature points (its parameters' id is `id`: [`Memos::model`]) and the
    /// entry of `id`, x and T.
    fn entry(&mut self, id: u64, x: f64, t: f64) -> (&[PurchaseParams], &mut Shared) {
        let points = self.last.as_ref().map_or(&[][..], |m| &m.points[..]);
        (points, bounded(&mut self.shared).entry([id, x.to_bits(), t.to_bits()]).or_default())
    }
}

/// A function's memos between batches, each lent to one batch at a time: its rows then look
/// up without locks. One map shared under a `RwLock` took a lock, an `Arc` clone and their
/// release per row, whose cache line bounced between the cores (a fifth of `customer_clv`'s
/// CPU time in the model functions); a copy per batch missed on most rows. With one memo per
/// batch running at once (about one per core), a value is computed at most once per core.
#[derive(Default)]
struct MemoPool(Mutex<Vec<Memos>>);

impl MemoPool {
    fn take(&self) -> Memos {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).pop().unwrap_or_default()
    }

    fn give(&self, memos: Memos) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(memos);
    }
}

impl std::fmt::Debug for MemoPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoPool")
    }
}

/// Rows whose memo entries [`Memos::warm`] reads ahead of computing them: enough misses
/// under way at once, and their lines (about four per row) stay in the first-level cache.
const WARM_ROWS: usize = 64;

/// Distinct models (rows of the parameter arguments) a batch may have and still use the
/// function's kept memos.
const SHARED_MODELS: usize = 64;

/// Whether the parameters take at most [`SHARED_MODELS`] distinct values over the batch.
fn few_models(params: &[Param], rows: usize) -> bool {
    let mut seen: std::collections::HashSet<Vec<u64>, FixedState> = Default::default();
    (0..rows).all(|i| {
        seen.insert(params.iter().map(|p| p.value(i).to_bits()).collect());
        seen.len() <= SHARED_MODELS
    })
}

#[derive(Debug)]
struct ClvFunction {
    kind: Kind,
    name: String,
    signature: Signature,
    memos: MemoPool,
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
                memos: MemoPool::default(),
            })
        })
        .collect()
}

/// The struct `*_purchases_interval` returns: p10, p50, p90 as DOUBLE.
fn interval_type() -> DataType {
    DataType::Struct(INTERVAL.iter().map(|(_, name)| Field::new(*name, DataType::Float64, true)).collect())
}

/// The struct `*_customer_values` returns: [`CUSTOMER_VALUES`], then with `interval`
/// [`CUSTOMER_INTERVAL`], as DOUBLE.
fn customer_values_type(interval: bool) -> DataType {
    let names = CUSTOMER_VALUES.iter().chain(if interval { &CUSTOMER_INTERVAL[..] } else { &[] });
    DataType::Struct(names.map(|name| Field::new(*name, DataType::Float64, true)).collect())
}

/// `*_purchases_quantile`'s (with `quantile`), `*_purchases_interval`'s and
/// `*_customer_values_with_interval`'s model arguments, for each distinct set in the batch: a
/// covariance the cubature can use, a horizon ≥ 0 and a quantile strictly between 0 and 1.
/// `args(i)`: row i's in `*_purchases_quantile`'s order (0.5 for a function without quantile).
fn check_quantile_args(name: &str, model: PurchaseModel, params: &[Param], rows: usize, quantile: bool, args: impl Fn(usize) -> [f64; 16]) -> Result<()> {
    let mut seen: std::collections::HashSet<[u64; 16], FixedState> = Default::default();
    for i in 0..params.iter().map(|p| p.rows(rows)).max().unwrap_or(0) {
        let p = args(i);
        let bits = p.map(f64::to_bits);
        if seen.contains(&bits) {
            continue;
        }
        let fail = |message: String| Err(DataFusionError::Execution(format!("{name}: {message}")));
        if quantile && !(p[15] > 0.0 && p[15] < 1.0) {
            return fail(format!("quantile must be strictly between 0 and 1, got {}", p[15]));
        }
        if !(p[14] >= 0.0 && p[14].is_finite()) {
            return fail(format!("horizon must be a finite number >= 0, got {}", p[14]));
        }
        let laplace = Laplace { params: PurchaseParams::new(model, [p[0], p[1], p[2], p[3]]), covariance: covariance_from_upper(&p[4..14]) };
        if let Err(message) = laplace.points() {
            return fail(message);
        }
        seen.insert(bits);
    }
    Ok(())
}

impl ClvFunction {
    /// The memos one batch evaluates with, and whether to keep them for later batches: kept
    /// when the batch has few distinct models (literals, or parameters from a covariate with
    /// a few values); a continuous covariate gives every customer their own, and kept memos
    /// would only fill with values no other batch looks up.
    fn memos(&self, params: &[Param], rows: usize) -> (Memos, bool) {
        let literals = params.iter().all(|p| matches!(p, Param::Scalar(_)));
        let keep = literals || few_models(params, rows);
        let mut memo = if keep { self.memos.take() } else { Memos::default() };
        memo.start(literals);
        (memo, keep)
    }

    /// Gives a batch's memos back, when [`Self::memos`] said to keep them.
    fn done(&self, (memos, keep): (Memos, bool)) {
        if keep {
            self.memos.give(memos);
        }
    }

    /// Why row `i`'s value is out of range: its customer values and the model, named.
    fn out_of_range_at(&self, params: &[Param], values: &[Float64Array], i: usize) -> String {
        let customer: Vec<(&'static str, f64)> = self.kind.values().iter().zip(values).map(|(n, c)| (*n, c.value(i))).collect();
        let model: Vec<(&'static str, f64)> = self.kind.parameters().into_iter().zip(params).map(|(n, c)| (n, c.value(i))).collect();
        out_of_range(&customer, &model)
    }

    /// A struct-valued function over a batch: `row` of each row whose values are all present
    /// (NULL fields where one is NULL), its first `fields.len()` values as the fields. The
    /// batch fails at the first row `bad` finds out of range (`bad` gives what the message
    /// adds after the customer and the model).
    fn struct_rows<const N: usize>(
        &self,
        fields: Fields,
        (params, values, rows): (&[Param], &[Float64Array], usize),
        mut row: impl FnMut(&[f64], &[f64], &mut Memos) -> [f64; N],
        bad: impl Fn(&[f64; N]) -> Option<String>,
    ) -> Result<ColumnarValue> {
        let (mut memo, keep) = self.memos(params, rows);
        let (mut p, mut v) = (vec![0.0; params.len()], vec![0.0; values.len()]);
        // The fields' values, and which rows have them (all fields or none): a row without
        // them holds 0.0 under the NULL.
        let mut columns: Vec<Vec<f64>> = fields.iter().map(|_| Vec::with_capacity(rows)).collect();
        let mut valid = Vec::with_capacity(rows);
        let mut failed = None;
        'rows: for start in (0..rows).step_by(WARM_ROWS) {
            let end = (start + WARM_ROWS).min(rows);
            // x and T are every struct function's first and third values.
            if let Some(id) = memo.pinned_id() {
                memo.warm(id, (&values[0], &values[2]), start..end);
            }
            for i in start..end {
                let present = values.iter().all(|c| c.is_valid(i));
                let r = if present {
                    p.iter_mut().zip(params).for_each(|(p, c)| *p = c.value(i));
                    v.iter_mut().zip(values).for_each(|(v, c)| *v = c.value(i));
                    let r = row(&p, &v, &mut memo);
                    if let Some(why) = bad(&r) {
                        failed = Some((i, why));
                        break 'rows;
                    }
                    r
                } else {
                    [0.0; N]
                };
                valid.push(present);
                for (column, value) in columns.iter_mut().zip(r) {
                    column.push(value);
                }
            }
        }
        self.done((memo, keep));
        if let Some((i, why)) = failed {
            return Err(DataFusionError::Execution(format!("{}: {}{why}", self.name, self.out_of_range_at(params, values, i))));
        }
        let nulls = valid.contains(&false).then(|| NullBuffer::from(valid));
        let arrays: Vec<ArrayRef> = columns.into_iter().map(|c| Arc::new(Float64Array::new(c.into(), nulls.clone())) as ArrayRef).collect();
        Ok(ColumnarValue::Array(Arc::new(StructArray::try_new(fields, arrays, None)?)))
    }

    /// `*_purchases_interval` over a batch: the three quantiles per row, each an amount.
    fn interval(&self, model: PurchaseModel, batch: (&[Param], &[Float64Array], usize)) -> Result<ColumnarValue> {
        let DataType::Struct(fields) = interval_type() else { unreachable!("a struct") };
        let row = |p: &[f64], v: &[f64], memo: &mut Memos| purchase_quantiles(model, p, p, v, memo, INTERVAL.map(|(q, _)| q));
        self.struct_rows(fields, batch, row, |q| q.iter().find(|q| !is_amount(**q)).map(|bad| format!(" ({bad})")))
    }

    /// `*_customer_values(_with_interval)` over a batch: [`customer_row`] per row, P(alive) a
    /// probability and every other field an amount, as the functions one by one check theirs.
    fn customer_values(&self, model: PurchaseModel, interval: bool, batch: (&[Param], &[Float64Array], usize)) -> Result<ColumnarValue> {
        let DataType::Struct(fields) = customer_values_type(interval) else { unreachable!("a struct") };
        let n = fields.len();
        let row = |p: &[f64], v: &[f64], memo: &mut Memos| customer_row(model, p, v, memo, interval);
        self.struct_rows(fields, batch, row, |r| (!is_probability(r[0]) || !r[1..n].iter().all(|v| is_amount(*v))).then(String::new))
    }
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
        Ok(match self.kind {
            Kind::PurchasesInterval(_) => interval_type(),
            Kind::CustomerValues { interval, .. } => customer_values_type(interval),
            _ => DataType::Float64,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (name, n_params) = (self.name.as_str(), self.kind.parameters().len());
        let rows = args.number_rows;
        // Where the models run shows in the logs (a Ballista test checks it is the executors).
        tracing::debug!(function = name, rows, "model function evaluated");
        let params = &parameters(name, &self.kind.parameters(), &args.args[..n_params], rows)?;
        let values = &float_arrays(&args.args[n_params..], rows)?;
        if matches!(self.kind, Kind::Clv(_) | Kind::CustomerValues { .. }) {
            // horizon_months counts months: a whole number from 1, at most a century (the
            // discounting loops over months).
            let most = crate::clv::MAX_HORIZON_MONTHS as f64;
            if let Some(h) = (0..params[8].rows(rows)).map(|i| params[8].value(i)).find(|h| !(h.fract() == 0.0 && *h >= 1.0 && *h <= most)) {
                return Err(DataFusionError::Execution(format!("{name}: horizon_months must be a whole number from 1 to {most}, got {h}")));
            }
        }
        match self.kind {
            Kind::PurchasesQuantile(model) | Kind::PurchasesInterval(model) => {
                let quantile = matches!(self.kind, Kind::PurchasesQuantile(_));
                check_quantile_args(name, model, params, rows, quantile, |i| std::array::from_fn(|j| if j < params.len() { params[j].value(i) } else { 0.5 }))?;
                if !quantile {
                    return self.interval(model, (params, values, rows));
                }
            }
            Kind::CustomerValues { model, interval } => {
                if interval {
                    check_quantile_args(name, model, params, rows, false, |i| {
                        let p: Vec<f64> = params.iter().map(|c| c.value(i)).collect();
                        let q = interval_args(&p);
                        std::array::from_fn(|j| q.get(j).copied().unwrap_or(0.5))
                    })?;
                }
                return self.customer_values(model, interval, (params, values, rows));
            }
            _ => {}
        }
        let mut p = vec![0.0; n_params];
        let mut v = vec![0.0; values.len()];
        let (mut memo, keep) = self.memos(params, rows);
        let out: Float64Array = map_rows(rows, values, |i| {
            p.iter_mut().zip(params).for_each(|(p, c)| *p = c.value(i));
            v.iter_mut().zip(values).for_each(|(v, c)| *v = c.value(i));
            self.kind.eval(&p, &v, &mut memo)
        });
        self.done((memo, keep));
        if let Some(i) = (0..rows).find(|&i| out.is_valid(i) && !self.kind.in_range(out.value(i))) {
            return Err(DataFusionError::Execution(format!("{name}: {}", self.out_of_range_at(params, values, i))));
        }
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}
