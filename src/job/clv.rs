//! `[clv]`: the raw section and its validation into [`ClvSpec`].

use serde::Deserialize;

use super::error::{At, Invalid, Problem};
use super::model_mode::parse_model_mode;
use super::value::{Choice, Name};
use crate::clv::{ClvSpec, CovariateSpec, PurchaseModel, TimeUnit};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClvSection {
    view: String,
    id: String,
    model: Option<String>,
    time_unit: Option<String>,
    period_days: Option<u32>,
    horizon_months: Option<u32>,
    monthly_discount_rate: Option<f64>,
    margin: Option<f64>,
    holdout_days: Option<u32>,
    penalizer: Option<f64>,
    lifetime_periods: Option<f64>,
    fit_sample: Option<u64>,
    tracking: Option<TrackingSection>,
    intervals: Option<bool>,
    covariates: Option<Vec<String>>,
    purchase_covariates: Option<Vec<String>>,
    dropout_covariates: Option<Vec<String>>,
    mode: Option<String>,
    model_from: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TrackingSection {
    view: String,
    date: String,
}

impl Choice for TimeUnit {
    const WHAT: &'static str = "time unit";
    // "periods" takes its length from `period_days` (filled in by `validate_clv`).
    const WORDS: &'static [(&'static str, Self)] = &[("weeks", TimeUnit::Weeks), ("days", TimeUnit::Days), ("periods", TimeUnit::Periods(0))];
}

/// A purchase model, or None for "auto" (chosen by backtest).
impl Choice for Option<PurchaseModel> {
    const WHAT: &'static str = "model";
    const WORDS: &'static [(&'static str, Self)] = &[
        ("bgnbd", Some(PurchaseModel::BgNbd)),
        ("mbgnbd", Some(PurchaseModel::MbgNbd)),
        ("pareto_nbd", Some(PurchaseModel::ParetoNbd)),
        ("bgbb", Some(PurchaseModel::BgBb)),
        ("auto", None),
    ];
}

pub(super) fn validate_clv(c: ClvSection) -> Result<ClvSpec, Invalid> {
    Name::check(&c.view).at("clv.view")?;
    let choice = Option::<PurchaseModel>::parse_or(c.model.as_deref(), Some(PurchaseModel::BgNbd)).at("clv.model")?;
    // "auto" fits BG/NBD until the backtest has chosen.
    let (model, auto) = (choice.unwrap_or_default(), choice.is_none());
    let time_unit = match (TimeUnit::parse_or(c.time_unit.as_deref(), TimeUnit::Weeks).at("clv.time_unit")?, c.period_days) {
        (TimeUnit::Periods(_), Some(days)) if days > 0 => TimeUnit::Periods(days),
        (TimeUnit::Periods(_), Some(_)) => return Err(Invalid::new("clv.period_days", Problem::AtLeastOne)),
        (TimeUnit::Periods(_), None) => {
            return Err(Invalid::new("clv.period_days", "time_unit = \"periods\" needs the days in one period, e.g. 7, 30 or 365"));
        }
        (_, Some(_)) => return Err(Invalid::new("clv.period_days", "only applies to time_unit = \"periods\"")),
        (unit, None) => unit,
    };
    if model.discrete() && !matches!(time_unit, TimeUnit::Periods(_)) {
        return Err(Invalid::new(
            "clv.model",
            "bgbb counts purchase opportunities in whole periods: set time_unit = \"periods\" and period_days",
        ));
    }
    let horizon_months = c.horizon_months.unwrap_or(12);
    if horizon_months == 0 {
        return Err(Invalid::new("clv.horizon_months", Problem::AtLeastOne));
    }
    if horizon_months > crate::clv::MAX_HORIZON_MONTHS {
        return Err(Invalid::new(
            "clv.horizon_months",
            Problem::Rule(format!("must be at most {} (100 years), got {horizon_months}", crate::clv::MAX_HORIZON_MONTHS)),
        ));
    }
    let rate = c.monthly_discount_rate.unwrap_or(0.01);
    if !(rate.is_finite() && rate >= 0.0) {
        return Err(Invalid::new("clv.monthly_discount_rate", Problem::Negative(rate)));
    }
    let margin = c.margin.unwrap_or(1.0);
    if !(margin.is_finite() && margin > 0.0) {
        return Err(Invalid::new("clv.margin", Problem::NotPositive(margin)));
    }
    let penalizer = c.penalizer.unwrap_or(0.0);
    if !(penalizer.is_finite() && penalizer >= 0.0) {
        return Err(Invalid::new("clv.penalizer", Problem::Negative(penalizer)));
    }
    if c.holdout_days == Some(0) {
        return Err(Invalid::new("clv.holdout_days", Problem::AtLeastOne));
    }
    if let Some(d) = c.holdout_days.filter(|&d| d > crate::clv::MAX_HOLDOUT_DAYS) {
        return Err(Invalid::new(
            "clv.holdout_days",
            Problem::Rule(format!("must be at most {} (100 years), got {d}", crate::clv::MAX_HOLDOUT_DAYS)),
        ));
    }
    // The holdout's purchases are counted in whole periods.
    if let (TimeUnit::Periods(days), Some(d)) = (time_unit, c.holdout_days)
        && d % days != 0
    {
        return Err(Invalid::new("clv.holdout_days", Problem::Rule(format!("must be a whole number of periods (a multiple of period_days {days}), got {d}"))));
    }
    if let Some(l) = c.lifetime_periods
        && !(l.is_finite() && l > 0.0)
    {
        return Err(Invalid::new("clv.lifetime_periods", Problem::NotPositive(l)));
    }
    let fit_sample = c.fit_sample.unwrap_or(crate::clv::DEFAULT_FIT_SAMPLE);
    if fit_sample == 0 {
        return Err(Invalid::new("clv.fit_sample", Problem::AtLeastOne));
    }
    let (mode, model_from) = parse_model_mode("clv", c.mode.as_deref(), c.model_from.as_deref())?;
    let tracking = match c.tracking {
        Some(_) if c.holdout_days.is_none() => return Err(Invalid::new("clv.tracking", "tracks the holdout period: set holdout_days")),
        Some(t) => {
            Name::check(&t.view).at("clv.tracking.view")?;
            Some(crate::clv::Tracking { view: t.view, date: t.date })
        }
        None => None,
    };
    if auto && c.holdout_days.is_none() {
        return Err(Invalid::new("clv.model", "\"auto\" chooses by backtest over holdout periods: set holdout_days"));
    }
    if auto && mode == crate::model_mode::ModelMode::Score {
        return Err(Invalid::new("clv.model", "\"auto\" chooses when fitting: it needs mode = \"refit\""));
    }
    let (covariates, key) = covariates(c.covariates, c.purchase_covariates, c.dropout_covariates)?;
    if let Some(key) = key {
        let at = format!("clv.{key}");
        if model.discrete() {
            return Err(Invalid::new(&at, "bgbb takes no covariates: use model bgnbd, mbgnbd or pareto_nbd"));
        }
        if auto {
            return Err(Invalid::new(&at, "model = \"auto\" compares the models without covariates: name the model (bgnbd, mbgnbd or pareto_nbd)"));
        }
    }
    Ok(ClvSpec {
        view: c.view,
        id: c.id,
        model,
        time_unit,
        horizon_months,
        monthly_discount_rate: rate,
        margin,
        holdout_days: c.holdout_days,
        penalizer,
        lifetime_periods: c.lifetime_periods,
        fit_sample,
        mode,
        model_from,
        auto,
        tracking,
        intervals: c.intervals.unwrap_or(true),
        covariates,
    })
}

/// `covariates` (shifting both rates), `purchase_covariates` and `dropout_covariates` into one
/// list per rate, and the first key that named one; a column named twice for one rate is an
/// error.
fn covariates(both: Option<Vec<String>>, purchase: Option<Vec<String>>, dropout: Option<Vec<String>>) -> Result<(CovariateSpec, Option<&'static str>), Invalid> {
    let both = both.unwrap_or_default();
    let mut spec = CovariateSpec::default();
    let mut first = None;
    for (key, names, into_purchase, into_dropout) in [("covariates", both, true, true), ("purchase_covariates", purchase.unwrap_or_default(), true, false), ("dropout_covariates", dropout.unwrap_or_default(), false, true)] {
        let at = format!("clv.{key}");
        for name in names {
            if name.trim().is_empty() {
                return Err(Invalid::new(&at, "a covariate name is empty"));
            }
            first.get_or_insert(key);
            for (wanted, list) in [(into_purchase, &mut spec.purchase), (into_dropout, &mut spec.dropout)] {
                if !wanted {
                    continue;
                }
                if list.contains(&name) {
                    return Err(Invalid::new(&at, Problem::Rule(format!("'{name}' is named twice for one rate"))));
                }
                list.push(name.clone());
            }
        }
    }
    Ok((spec, first))
}
