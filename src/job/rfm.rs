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

/// `[actions]`: keys that name an [`ActionKey`] set its text, any other key is a segment name.
pub(super) fn validate_actions(a: BTreeMap<String, String>) -> Result<ActionsSpec, Invalid> {
    let mut spec = ActionsSpec::default();
    for (name, text) in a {
        if text.trim().is_empty() {
            return Err(Invalid::new(format!("actions.{name}"), "the action text is empty"));
        }
        match ActionKey::parse(&name) {
            Some(key) => {
                spec.by_key.insert(key, text);
            }
            None => {
                spec.by_segment.insert(name, text);
            }
        }
    }
    Ok(spec)
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
