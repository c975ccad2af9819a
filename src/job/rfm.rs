//! `[rfm]` (with `[[rfm.segments]]`), `[tiers]` and `[actions]`: the raw sections and their
//! validation into [`RfmSpec`] and [`ActionsSpec`].

use std::collections::BTreeMap;

use serde::Deserialize;

use super::error::{At, Invalid};
use super::value::Name;
use crate::segment::rfm::{self, ActionKey, LifecycleThresholds, RfmRule, ValueThresholds};
use crate::segment::spec::{ActionsSpec, RfmSpec};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RfmSection {
    view: String,
    id: Option<String>,
    #[serde(default)]
    segments: Vec<RfmSegmentSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RfmSegmentSection {
    name: String,
    r: String,
    f: String,
    m: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TiersSection {
    age_column: Option<String>,
    new_days: Option<f64>,
    silent_days: Option<f64>,
    churned_days: Option<f64>,
    value_column: Option<String>,
    high_quantile: Option<f64>,
    low_quantile: Option<f64>,
}

/// `[rfm]` with `[tiers]`; `default_id` is the segmentation's id column.
fn validate_rfm(r: RfmSection, t: TiersSection, default_id: &str) -> Result<RfmSpec, Invalid> {
    Name::check(&r.view).at("rfm.view")?;
    let rules = if r.segments.is_empty() {
        rfm::default_rules()
    } else {
        let mut rules = Vec::with_capacity(r.segments.len());
        for (i, s) in r.segments.iter().enumerate() {
            let key = |k: &str| format!("rfm.segments[{i}].{k}");
            rules.push(RfmRule {
                name: s.name.clone(),
                r: rfm::parse_range(&s.r).at(key("r"))?,
                f: rfm::parse_range(&s.f).at(key("f"))?,
                m: rfm::parse_range(s.m.as_deref().unwrap_or("1-5")).at(key("m"))?,
            });
        }
        rules
    };
    rfm::check_rules(&rules).at("rfm.segments")?;
    let d = LifecycleThresholds::default();
    let lifecycle = LifecycleThresholds {
        new_days: t.new_days.unwrap_or(d.new_days),
        silent_days: t.silent_days.unwrap_or(d.silent_days),
        churned_days: t.churned_days.unwrap_or(d.churned_days),
    };
    lifecycle.check().at("tiers")?;
    let d = ValueThresholds::default();
    let value = ValueThresholds {
        high_quantile: t.high_quantile.unwrap_or(d.high_quantile),
        low_quantile: t.low_quantile.unwrap_or(d.low_quantile),
    };
    value.check().at("tiers")?;
    Ok(RfmSpec {
        view: r.view,
        id: r.id.unwrap_or_else(|| default_id.to_string()),
        rules,
        age_column: t.age_column.unwrap_or_else(|| "tenure_days".into()),
        value_column: t.value_column.unwrap_or_else(|| "monetary".into()),
        lifecycle,
        value,
    })
}

/// `[actions]`: `margin` is the share of an order's value kept; a key that names an
/// [`ActionKey`] sets its text (a string) or its `text`, `cost` and `response` (a table); any
/// other key is a segment name and sets that segment's text.
pub(super) fn validate_actions(a: BTreeMap<String, toml::Value>) -> Result<ActionsSpec, Invalid> {
    let mut spec = ActionsSpec::default();
    for (name, value) in a {
        let at = format!("actions.{name}");
        if name == "margin" {
            let m = number(&value).filter(|m| *m > 0.0 && *m <= 1.0);
            spec.margin = Some(m.ok_or_else(|| Invalid::new(at, "the margin is a number in (0, 1]: the share of an order's value kept"))?);
            continue;
        }
        let key = ActionKey::parse(&name);
        let (text, cost, response) = match value {
            toml::Value::String(t) => (Some(t), None, None),
            toml::Value::Table(t) => action_table(&at, t, key.is_some())?,
            _ => return Err(Invalid::new(at, "an action is a text, or a table with text, cost and response")),
        };
        if let Some(text) = text {
            if text.trim().is_empty() {
                return Err(Invalid::new(at, "the action text is empty"));
            }
            match key {
                Some(key) => spec.by_key.insert(key, text),
                None => spec.by_segment.insert(name, text),
            };
        }
        if let Some(key) = key.filter(|_| cost.is_some() || response.is_some()) {
            let d = rfm::default_economics(key);
            let e = rfm::Economics { cost: cost.unwrap_or(d.cost), response: response.unwrap_or(d.response) };
            spec.economics.insert(key, e);
        }
    }
    Ok(spec)
}

/// `[actions.<name>]` as a table: `text`, and for an action key `cost` (≥ 0) and `response`
/// (in [0, 1]).
fn action_table(at: &str, t: toml::Table, is_key: bool) -> Result<(Option<String>, Option<f64>, Option<f64>), Invalid> {
    let (mut text, mut cost, mut response) = (None, None, None);
    for (field, v) in t {
        let key = format!("{at}.{field}");
        match field.as_str() {
            "text" => text = Some(v.as_str().map(str::to_string).ok_or_else(|| Invalid::new(key, "the action text is a string"))?),
            "cost" | "response" if !is_key => {
                let keys: Vec<&str> = ActionKey::ALL.iter().map(|k| k.as_str()).collect();
                return Err(Invalid::new(key, format!("cost and response belong to an action key ({}); a segment name takes only a text", keys.join(", "))));
            }
            "cost" => cost = Some(number(&v).filter(|c| *c >= 0.0).ok_or_else(|| Invalid::new(key, "the cost is a number of money per customer contacted, 0 or more"))?),
            "response" => response = Some(number(&v).filter(|r| (0.0..=1.0).contains(r)).ok_or_else(|| Invalid::new(key, "the response is the share of contacted customers who order, in [0, 1]"))?),
            _ => return Err(Invalid::new(key, "unknown key; an action takes text, cost and response")),
        }
    }
    Ok((text, cost, response))
}

/// A finite TOML number (integer or float).
fn number(v: &toml::Value) -> Option<f64> {
    v.as_float().or_else(|| v.as_integer().map(|i| i as f64)).filter(|x| x.is_finite())
}

/// `[rfm]` and `[tiers]` given the validated `[segmentation]`: RFM joins the segmentation,
/// and tiers are computed from the RFM view.
pub(super) fn validate_rfm_and_tiers(
    rfm: Option<RfmSection>,
    tiers: Option<TiersSection>,
    segmentation: Option<&crate::segment::spec::SegmentationSpec>,
) -> Result<Option<RfmSpec>, Invalid> {
    match (rfm, segmentation) {
        (None, _) => match tiers {
            Some(_) => Err(Invalid::new("tiers", "tiers are computed from the [rfm] view; add an [rfm] section")),
            None => Ok(None),
        },
        (Some(_), None) => Err(Invalid::new("rfm", "RFM scores join the segmentation; add a [segmentation] section")),
        (Some(r), Some(seg)) => validate_rfm(r, tiers.unwrap_or_default(), &seg.id).map(Some),
    }
}
