//! `[segmentation]`, `[rfm]`, `[tiers]` and `[actions]`: raw TOML → validated specs.
//!
//! Validation errors are `(key, message)` pairs; `job.rs` prefixes the section and file.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::rfm::{self, ActionKey, LifecycleThresholds, RfmRule, ValueThresholds};
use crate::model_mode::{ModelFrom, ModelMode, parse_model_mode};
use crate::names::check_name;

type Invalid = (String, String);

fn invalid<T>(key: impl Into<String>, message: impl Into<String>) -> Result<T, Invalid> {
    Err((key.into(), message.into()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SegmentationSection {
    view: String,
    id: String,
    features: Vec<String>,
    #[serde(default)]
    categorical: Vec<String>,
    scale: Option<String>,
    algorithm: Option<String>,
    k: Option<toml::Value>,
    seed: Option<u64>,
    n_init: Option<usize>,
    max_iter: Option<u64>,
    tol: Option<f64>,
    silhouette_sample: Option<usize>,
    batch_size: Option<usize>,
    eps: Option<f64>,
    min_points: Option<usize>,
    covariance: Option<String>,
    impute: Option<toml::Value>,
    transform: Option<String>,
    clip: Option<[f64; 2]>,
    #[serde(default)]
    columns: BTreeMap<String, ColumnSection>,
    mode: Option<String>,
    model_from: Option<String>,
    align_ids: Option<bool>,
    drift_warn_psi: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ColumnSection {
    impute: Option<toml::Value>,
    transform: Option<String>,
    clip: Option<[f64; 2]>,
    /// Words for the segment auto-name when the centroid is low / high on this feature.
    low: Option<String>,
    high: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RfmSection {
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
pub(crate) struct TiersSection {
    age_column: Option<String>,
    new_days: Option<f64>,
    silent_days: Option<f64>,
    churned_days: Option<f64>,
    value_column: Option<String>,
    high_quantile: Option<f64>,
    low_quantile: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// (x − mean) / std, population std (scikit-learn `StandardScaler`).
    ZScore,
    /// (x − min) / (max − min) (`MinMaxScaler`).
    MinMax,
    /// (x − median) / IQR (`RobustScaler`).
    Robust,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KChoice {
    Fixed(usize),
    /// Try every k in `min..=max` and keep the highest silhouette.
    Range { min: usize, max: usize },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Algorithm {
    KMeans,
    MiniBatchKMeans { batch_size: usize },
    Dbscan { eps: f64, min_points: usize },
    /// Full covariance is the only type linfa-clustering 0.8 implements.
    Gmm,
}

impl Algorithm {
    /// The job-file name.
    pub fn name(&self) -> &'static str {
        match self {
            Algorithm::KMeans => "kmeans",
            Algorithm::MiniBatchKMeans { .. } => "minibatch_kmeans",
            Algorithm::Dbscan { .. } => "dbscan",
            Algorithm::Gmm => "gmm",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Impute {
    /// Nulls are an error naming the column.
    None,
    Mean,
    Median,
    Constant(f64),
}

/// Preparation of one numeric feature, applied in this order: impute, transform, clip, scale.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnPrep {
    pub impute: Impute,
    pub log1p: bool,
    /// Winsorise at these quantiles (fitted on the prepared values).
    pub clip: Option<(f64, f64)>,
    /// Auto-name words for a low / high centroid.
    pub low: String,
    pub high: String,
}

#[derive(Debug, Clone)]
pub struct SegmentationSpec {
    pub view: String,
    pub id: String,
    pub features: Vec<String>,
    /// Same order as `features`.
    pub prep: Vec<ColumnPrep>,
    /// One-hot encoded columns.
    pub categorical: Vec<String>,
    pub scale: Scale,
    pub algorithm: Algorithm,
    pub k: KChoice,
    pub seed: u64,
    pub n_init: usize,
    pub max_iter: u64,
    pub tol: f64,
    pub silhouette_sample: usize,
    pub mode: ModelMode,
    pub model_from: ModelFrom,
    /// On refit, match new clusters to the previous model's (Kuhn–Munkres) and keep their ids.
    pub align_ids: bool,
    /// Warn (suggesting a refit) when a feature's PSI against the model's training data is above this.
    pub drift_warn_psi: f64,
}

#[derive(Debug, Clone)]
pub struct RfmSpec {
    pub view: String,
    pub id: String,
    pub rules: Vec<RfmRule>,
    pub age_column: String,
    pub value_column: String,
    pub lifecycle: LifecycleThresholds,
    pub value: ValueThresholds,
}

/// `[actions]`: text per action key (`champions`, `loyal`, …) or per segment name.
#[derive(Debug, Clone, Default)]
pub struct ActionsSpec {
    pub by_key: BTreeMap<ActionKey, String>,
    pub by_segment: BTreeMap<String, String>,
}

impl ActionsSpec {
    /// The action for a segment: its own entry, else its key's text, else the shipped default.
    pub fn action(&self, segment: &str, key: Option<ActionKey>) -> Option<String> {
        if let Some(a) = self.by_segment.get(segment) {
            return Some(a.clone());
        }
        let key = key?;
        Some(self.by_key.get(&key).cloned().unwrap_or_else(|| rfm::default_action(key).to_string()))
    }
}

pub(crate) fn validate_segmentation(s: SegmentationSection) -> Result<SegmentationSpec, Invalid> {
    check_name(&s.view).map_err(|m| ("view".to_string(), m))?;
    if s.features.is_empty() && s.categorical.is_empty() {
        return invalid("features", "at least one feature column is required");
    }
    let mut seen = BTreeSet::new();
    for (key, f) in s.features.iter().map(|f| ("features", f)).chain(s.categorical.iter().map(|f| ("categorical", f))) {
        if !seen.insert(f) {
            return invalid(key, format!("column '{f}' is listed twice"));
        }
        if f == &s.id {
            return invalid(key, format!("the id column '{f}' cannot be a feature"));
        }
    }
    if let Some(c) = s.columns.keys().find(|c| !s.features.contains(c)) {
        return invalid(format!("columns.{c}"), format!("'{c}' is not in features"));
    }
    let default_impute = parse_impute(s.impute.as_ref()).map_err(|m| ("impute".to_string(), m))?;
    let default_log1p = parse_transform(s.transform.as_deref()).map_err(|m| ("transform".to_string(), m))?;
    let default_clip = s.clip.map(check_clip).transpose().map_err(|m| ("clip".to_string(), m))?;
    let mut prep = Vec::with_capacity(s.features.len());
    for f in &s.features {
        let c = s.columns.get(f);
        let key = |k: &str| format!("columns.{f}.{k}");
        let impute = match c.and_then(|c| c.impute.as_ref()) {
            Some(v) => parse_impute(Some(v)).map_err(|m| (key("impute"), m))?,
            None => default_impute,
        };
        let log1p = match c.and_then(|c| c.transform.as_deref()) {
            Some(t) => parse_transform(Some(t)).map_err(|m| (key("transform"), m))?,
            None => default_log1p,
        };
        let clip = match c.and_then(|c| c.clip) {
            Some(q) => Some(check_clip(q).map_err(|m| (key("clip"), m))?),
            None => default_clip,
        };
        let word = |w: Option<&String>, default: &str| w.cloned().unwrap_or_else(|| format!("{default} {f}"));
        prep.push(ColumnPrep {
            impute,
            log1p,
            clip,
            low: word(c.and_then(|c| c.low.as_ref()), "low"),
            high: word(c.and_then(|c| c.high.as_ref()), "high"),
        });
    }
    let scale = match s.scale.as_deref().unwrap_or("zscore") {
        "zscore" => Scale::ZScore,
        "minmax" => Scale::MinMax,
        "robust" => Scale::Robust,
        "none" => Scale::None,
        other => return invalid("scale", format!("unknown scale '{other}' (expected zscore, minmax, robust or none)")),
    };
    let algorithm = match s.algorithm.as_deref().unwrap_or("kmeans") {
        "kmeans" => Algorithm::KMeans,
        "minibatch_kmeans" => {
            let batch_size = s.batch_size.unwrap_or(1024);
            if batch_size == 0 {
                return invalid("batch_size", "must be at least 1");
            }
            Algorithm::MiniBatchKMeans { batch_size }
        }
        "dbscan" => {
            let eps = s.eps.ok_or_else(|| ("eps".to_string(), "dbscan needs eps (the neighbourhood radius)".to_string()))?;
            if !(eps.is_finite() && eps > 0.0) {
                return invalid("eps", format!("must be a finite number > 0, got {eps}"));
            }
            let min_points = s.min_points.unwrap_or(5);
            if min_points == 0 {
                return invalid("min_points", "must be at least 1");
            }
            Algorithm::Dbscan { eps, min_points }
        }
        "gmm" => {
            match s.covariance.as_deref().unwrap_or("full") {
                "full" => {}
                other => {
                    return invalid("covariance", format!("unknown covariance type '{other}' (linfa-clustering implements full)"));
                }
            }
            Algorithm::Gmm
        }
        other => {
            return invalid(
                "algorithm",
                format!("unknown algorithm '{other}' (expected kmeans, minibatch_kmeans, dbscan or gmm)"),
            );
        }
    };
    for (key, present, ok) in [
        ("batch_size", s.batch_size.is_some(), matches!(algorithm, Algorithm::MiniBatchKMeans { .. })),
        ("eps", s.eps.is_some(), matches!(algorithm, Algorithm::Dbscan { .. })),
        ("min_points", s.min_points.is_some(), matches!(algorithm, Algorithm::Dbscan { .. })),
        ("covariance", s.covariance.is_some(), algorithm == Algorithm::Gmm),
    ] {
        if present && !ok {
            return invalid(key, format!("does not apply to algorithm '{}'", s.algorithm.as_deref().unwrap_or("kmeans")));
        }
    }
    let k = match (s.k, algorithm) {
        (Some(_), Algorithm::Dbscan { .. }) => return invalid("k", "dbscan finds the number of clusters itself"),
        (None, _) => KChoice::Range { min: 2, max: 8 },
        (Some(v), _) => parse_k(&v).map_err(|m| ("k".to_string(), m))?,
    };
    let n_init = s.n_init.unwrap_or(10);
    if n_init == 0 {
        return invalid("n_init", "n_init must be at least 1");
    }
    let max_iter = s.max_iter.unwrap_or(300);
    if max_iter == 0 {
        return invalid("max_iter", "max_iter must be at least 1");
    }
    let tol = s.tol.unwrap_or(1e-4);
    if !(tol.is_finite() && tol > 0.0) {
        return invalid("tol", format!("tol must be a finite number > 0, got {tol}"));
    }
    let silhouette_sample = s.silhouette_sample.unwrap_or(20_000);
    if silhouette_sample < 2 {
        return invalid("silhouette_sample", format!("must be at least 2, got {silhouette_sample}"));
    }
    let (mode, model_from) = parse_model_mode(s.mode.as_deref(), s.model_from.as_deref())?;
    if mode == ModelMode::Score && !matches!(algorithm, Algorithm::KMeans | Algorithm::MiniBatchKMeans { .. }) {
        return invalid("mode", "score assigns to the nearest saved centroid, so it needs algorithm kmeans or minibatch_kmeans");
    }
    let drift_warn_psi = s.drift_warn_psi.unwrap_or(0.25);
    if !(drift_warn_psi.is_finite() && drift_warn_psi > 0.0) {
        return invalid("drift_warn_psi", format!("must be a finite number > 0, got {drift_warn_psi}"));
    }
    Ok(SegmentationSpec {
        view: s.view,
        id: s.id,
        features: s.features,
        prep,
        categorical: s.categorical,
        scale,
        algorithm,
        k,
        seed: s.seed.unwrap_or(42),
        n_init,
        max_iter,
        tol,
        silhouette_sample,
        mode,
        model_from,
        align_ids: s.align_ids.unwrap_or(true),
        drift_warn_psi,
    })
}

fn parse_impute(v: Option<&toml::Value>) -> Result<Impute, String> {
    match v {
        None => Ok(Impute::None),
        Some(toml::Value::String(s)) => match s.as_str() {
            "none" => Ok(Impute::None),
            "mean" => Ok(Impute::Mean),
            "median" => Ok(Impute::Median),
            other => Err(format!("unknown imputation '{other}' (expected none, mean, median or a number)")),
        },
        Some(toml::Value::Integer(i)) => Ok(Impute::Constant(*i as f64)),
        Some(toml::Value::Float(f)) if f.is_finite() => Ok(Impute::Constant(*f)),
        Some(other) => Err(format!("expected none, mean, median or a finite number, got {other}")),
    }
}

fn parse_transform(t: Option<&str>) -> Result<bool, String> {
    match t.unwrap_or("none") {
        "none" => Ok(false),
        "log1p" => Ok(true),
        other => Err(format!("unknown transform '{other}' (expected none or log1p)")),
    }
}

fn check_clip([lo, hi]: [f64; 2]) -> Result<(f64, f64), String> {
    if (0.0..=1.0).contains(&lo) && (0.0..=1.0).contains(&hi) && lo < hi {
        Ok((lo, hi))
    } else {
        Err(format!("expected two quantiles 0 <= lower < upper <= 1, got [{lo}, {hi}]"))
    }
}

pub(crate) fn validate_rfm(r: RfmSection, t: TiersSection, default_id: &str) -> Result<RfmSpec, Invalid> {
    check_name(&r.view).map_err(|m| ("rfm.view".to_string(), m))?;
    let rules = if r.segments.is_empty() {
        rfm::default_rules()
    } else {
        let mut rules = Vec::with_capacity(r.segments.len());
        for (i, s) in r.segments.iter().enumerate() {
            let key = |k: &str| format!("rfm.segments[{i}].{k}");
            rules.push(RfmRule {
                name: s.name.clone(),
                r: rfm::parse_range(&s.r).map_err(|m| (key("r"), m))?,
                f: rfm::parse_range(&s.f).map_err(|m| (key("f"), m))?,
                m: rfm::parse_range(s.m.as_deref().unwrap_or("1-5")).map_err(|m| (key("m"), m))?,
            });
        }
        rules
    };
    rfm::check_rules(&rules).map_err(|m| ("rfm.segments".to_string(), m))?;
    let d = LifecycleThresholds::default();
    let lifecycle = LifecycleThresholds {
        new_days: t.new_days.unwrap_or(d.new_days),
        silent_days: t.silent_days.unwrap_or(d.silent_days),
        churned_days: t.churned_days.unwrap_or(d.churned_days),
    };
    lifecycle.check().map_err(|m| ("tiers".to_string(), m))?;
    let d = ValueThresholds::default();
    let value = ValueThresholds {
        high_quantile: t.high_quantile.unwrap_or(d.high_quantile),
        low_quantile: t.low_quantile.unwrap_or(d.low_quantile),
    };
    value.check().map_err(|m| ("tiers".to_string(), m))?;
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

pub(crate) fn validate_actions(a: BTreeMap<String, String>) -> Result<ActionsSpec, Invalid> {
    let mut spec = ActionsSpec::default();
    for (name, text) in a {
        if text.trim().is_empty() {
            return invalid(format!("actions.{name}"), "the action text is empty");
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

fn parse_k(v: &toml::Value) -> Result<KChoice, String> {
    let as_k = |v: &toml::Value, what: &str| -> Result<usize, String> {
        match v.as_integer() {
            Some(i) if i >= 1 => Ok(i as usize),
            Some(i) => Err(format!("{what} must be at least 1, got {i}")),
            None => Err(format!("{what} must be an integer, got {v}")),
        }
    };
    match v {
        toml::Value::Integer(_) => Ok(KChoice::Fixed(as_k(v, "k")?)),
        toml::Value::Table(t) => {
            if let Some(extra) = t.keys().find(|k| *k != "min" && *k != "max") {
                return Err(format!("unknown key '{extra}' (expected min and max)"));
            }
            let get = |key: &str| t.get(key).ok_or_else(|| format!("missing '{key}'"));
            let min = as_k(get("min")?, "min")?;
            let max = as_k(get("max")?, "max")?;
            if min < 2 {
                return Err(format!("min must be at least 2 for silhouette selection, got {min}"));
            }
            if max < min {
                return Err(format!("max ({max}) must not be below min ({min})"));
            }
            Ok(KChoice::Range { min, max })
        }
        other => Err(format!("expected an integer or {{ min = .., max = .. }}, got {other}")),
    }
}
