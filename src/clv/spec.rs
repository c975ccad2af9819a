//! The validated CLV settings ([`ClvSpec`]), the purchase model they choose
//! ([`PurchaseModel`]) and the time unit of the summaries ([`TimeUnit`]).

use crate::model_mode::{ModelFrom, ModelMode};

/// The purchase and drop-out process. BG/NBD: a customer may leave right after each repeat
/// purchase, so one without repeat purchases is alive. MBG/NBD: also right after the first
/// purchase, so P(alive) falls with time for every customer. Pareto/NBD: a customer leaves at
/// any time, after an exponential lifetime. BG/BB: purchases at discrete opportunities (whole
/// periods), a drop-out possible before each (lifetimes' `BetaGeoFitter`,
/// `ModifiedBetaGeoFitter`, `ParetoNBDFitter` and `BetaGeoBetaBinomFitter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, strum::IntoStaticStr, strum::EnumString)]
pub enum PurchaseModel {
    #[default]
    #[strum(serialize = "bgnbd")]
    BgNbd,
    #[strum(serialize = "mbgnbd")]
    MbgNbd,
    #[strum(serialize = "pareto_nbd")]
    ParetoNbd,
    #[strum(serialize = "bgbb")]
    BgBb,
}

impl PurchaseModel {
    pub const ALL: [PurchaseModel; 4] = [PurchaseModel::BgNbd, PurchaseModel::MbgNbd, PurchaseModel::ParetoNbd, PurchaseModel::BgBb];

    /// The name in job files, tables, SQL functions and saved models: "bgnbd", "mbgnbd",
    /// "pareto_nbd", "bgbb".
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The name in messages: "BG/NBD", "MBG/NBD", "Pareto/NBD", "BG/BB".
    pub fn title(self) -> &'static str {
        match self {
            PurchaseModel::BgNbd => "BG/NBD",
            PurchaseModel::MbgNbd => "MBG/NBD",
            PurchaseModel::ParetoNbd => "Pareto/NBD",
            PurchaseModel::BgBb => "BG/BB",
        }
    }

    /// The parameters in order, named as lifetimes names them.
    pub fn parameters(self) -> [&'static str; 4] {
        match self {
            PurchaseModel::BgNbd | PurchaseModel::MbgNbd => ["r", "alpha", "a", "b"],
            PurchaseModel::ParetoNbd => ["r", "alpha", "s", "beta"],
            PurchaseModel::BgBb => ["alpha", "beta", "gamma", "delta"],
        }
    }

    /// Positions in [`Self::parameters`] of the parameters measured in time (rates' scales),
    /// which a fit on rescaled time must scale back; BG/BB counts periods and has none.
    pub fn time_scaled(self) -> &'static [usize] {
        match self {
            PurchaseModel::BgNbd | PurchaseModel::MbgNbd => &[1],
            PurchaseModel::ParetoNbd => &[1, 3],
            PurchaseModel::BgBb => &[],
        }
    }

    /// Whether the model counts purchase opportunities in whole periods (BG/BB), so the
    /// summary's recency and tenure must be whole numbers with frequency ≤ recency.
    pub fn discrete(self) -> bool {
        self == PurchaseModel::BgBb
    }
}

/// The unit the summary view counts recency and tenure in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Days,
    Weeks,
    /// Periods of this many days: discrete purchase opportunities (BG/BB), e.g. 30 for months
    /// or 365 for years.
    Periods(u32),
}

impl TimeUnit {
    /// Units per month, as lifetimes' `customer_lifetime_value` counts them (a month is 30
    /// days, a week 1/4.345 of one).
    pub fn per_month(self) -> f64 {
        match self {
            TimeUnit::Days => 30.0,
            TimeUnit::Weeks => 4.345,
            TimeUnit::Periods(days) => 30.0 / f64::from(days),
        }
    }

    pub fn per_day(self) -> f64 {
        match self {
            TimeUnit::Days => 1.0,
            TimeUnit::Weeks => 1.0 / 7.0,
            TimeUnit::Periods(days) => 1.0 / f64::from(days),
        }
    }
}

/// As manifests, reports and saved models name the unit: "days", "weeks", "periods of 30 days".
impl std::fmt::Display for TimeUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TimeUnit::Days => f.write_str("days"),
            TimeUnit::Weeks => f.write_str("weeks"),
            TimeUnit::Periods(days) => write!(f, "periods of {days} days"),
        }
    }
}

/// Default of [`ClvSpec::fit_sample`]: five million (x, m̄) pairs are 80 MB on the driver and
/// a few seconds of fitting, and every repeat buyer up to that count keeps per-customer CLV
/// equal to lifetimes' to 1e-6 (10M orders have 1.44M repeat buyers; a 1M sample there moved
/// p, q and γ by up to 0.3 % and per-customer CLV by up to 0.14 %, BENCHMARKS.md, "CLV in the
/// engine").
pub const DEFAULT_FIT_SAMPLE: u64 = 5_000_000;

/// The longest CLV horizon: a century. Discounting runs month by month for every customer, so
/// a mistyped horizon (1000000000) would run for days instead of failing.
pub const MAX_HORIZON_MONTHS: u32 = 1200;

/// The longest holdout: a century of days (the calibration end must be a date).
pub const MAX_HOLDOUT_DAYS: u32 = 36_500;

/// Validated `[clv]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ClvSpec {
    pub view: String,
    pub id: String,
    /// The purchase and drop-out model: BG/NBD, MBG/NBD, Pareto/NBD or BG/BB.
    pub model: PurchaseModel,
    pub time_unit: TimeUnit,
    pub horizon_months: u32,
    pub monthly_discount_rate: f64,
    pub margin: f64,
    pub holdout_days: Option<u32>,
    pub penalizer: f64,
    /// Expected lifetime for `clv_simple`, in `time_unit`; default from the fitted model.
    pub lifetime_periods: Option<f64>,
    /// Repeat buyers Gamma-Gamma is fitted on: all of them up to this many, else a sample of
    /// about this many, seeded by id hashes (its likelihood has no finite sufficient
    /// statistics).
    pub fit_sample: u64,
    /// Refit every run, or predict with saved parameters.
    pub mode: ModelMode,
    pub model_from: ModelFrom,
    /// `model = "auto"`: `model` is chosen by a rolling-origin backtest over `holdout_days`
    /// (`selection`) before the fit.
    pub auto: bool,
    /// The purchases behind the summary, for the holdout's week-by-week tracking
    /// (`clv_holdout_tracking`).
    pub tracking: Option<Tracking>,
    /// Whether `customer_clv` carries the 80 % intervals (`purchases_p10` … `clv_p90`).
    pub intervals: bool,
    /// Columns of the view that shift the purchase and drop-out rates (`covariates`).
    pub covariates: CovariateSpec,
}

/// `[clv] covariates` (both rates), `purchase_covariates` and `dropout_covariates`: numeric
/// columns of the summary view, by the rate they shift.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CovariateSpec {
    pub purchase: Vec<String>,
    pub dropout: Vec<String>,
}

impl CovariateSpec {
    pub fn is_empty(&self) -> bool {
        self.purchase.is_empty() && self.dropout.is_empty()
    }

    /// Every covariate column once, the purchase ones first, each in the order given: the
    /// order of z in `clv::Group`s.
    pub fn columns(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in self.purchase.iter().chain(&self.dropout) {
            if !out.contains(c) {
                out.push(c.clone());
            }
        }
        out
    }
}

/// `[clv] tracking = { view, date }`: a view with one row per purchase (or order), the
/// customer in `[clv] id` and its day in `date`; a customer's purchases on one day count once,
/// as the summary counts purchase days.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracking {
    pub view: String,
    pub date: String,
}
