//! The validated CLV settings ([`ClvSpec`]), the purchase model they choose
//! ([`PurchaseModel`]) and the time unit of the summaries ([`TimeUnit`]).

use crate::model_mode::{ModelFrom, ModelMode};

/// The purchase and drop-out process. BG/NBD: a customer may leave right after each repeat
/// purchase, so one without repeat purchases is alive. MBG/NBD: also right after the first
/// purchase, so P(alive) falls with time for every customer. Pareto/NBD: a customer leaves at
/// any time, after an exponential lifetime (lifetimes' `BetaGeoFitter`,
/// `ModifiedBetaGeoFitter` and `ParetoNBDFitter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, strum::IntoStaticStr, strum::EnumString)]
pub enum PurchaseModel {
    #[default]
    #[strum(serialize = "bgnbd")]
    BgNbd,
    #[strum(serialize = "mbgnbd")]
    MbgNbd,
    #[strum(serialize = "pareto_nbd")]
    ParetoNbd,
}

impl PurchaseModel {
    pub const ALL: [PurchaseModel; 3] = [PurchaseModel::BgNbd, PurchaseModel::MbgNbd, PurchaseModel::ParetoNbd];

    /// The name in job files, tables, SQL functions and saved models: "bgnbd", "mbgnbd",
    /// "pareto_nbd".
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The name in messages: "BG/NBD", "MBG/NBD", "Pareto/NBD".
    pub fn title(self) -> &'static str {
        match self {
            PurchaseModel::BgNbd => "BG/NBD",
            PurchaseModel::MbgNbd => "MBG/NBD",
            PurchaseModel::ParetoNbd => "Pareto/NBD",
        }
    }

    /// The parameters in order, named as lifetimes names them.
    pub fn parameters(self) -> [&'static str; 4] {
        match self {
            PurchaseModel::BgNbd | PurchaseModel::MbgNbd => ["r", "alpha", "a", "b"],
            PurchaseModel::ParetoNbd => ["r", "alpha", "s", "beta"],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Days,
    Weeks,
}

impl TimeUnit {
    /// Periods per month, as lifetimes' `customer_lifetime_value` counts them.
    pub fn per_month(self) -> f64 {
        match self {
            TimeUnit::Days => 30.0,
            TimeUnit::Weeks => 4.345,
        }
    }

    pub fn per_day(self) -> f64 {
        match self {
            TimeUnit::Days => 1.0,
            TimeUnit::Weeks => 1.0 / 7.0,
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
    /// The purchase and drop-out model: BG/NBD, MBG/NBD or Pareto/NBD.
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
}
