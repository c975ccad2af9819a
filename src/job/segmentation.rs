//! `[segmentation]` (with `[segmentation.columns.<feature>]`): the raw section and its
//! validation into [`SegmentationSpec`].

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::error::{At, Invalid, Problem};
use super::model_mode::parse_model_mode;
use super::value::{Choice, Name};
use crate::model_mode::ModelMode;
use crate::segment::spec::{Algorithm, ColumnPrep, Impute, KChoice, KSelect, Scale, SegmentationSpec, SelectRule};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SegmentationSection {
    view: String,
    id: String,
    features: Vec<String>,
    #[serde(default)]
    categorical: Vec<String>,
    profile: Option<Vec<String>>,
    scale: Option<String>,
    algorithm: Option<String>,
    k: Option<toml::Value>,
    seed: Option<u64>,
    n_init: Option<usize>,
    max_iter: Option<u64>,
    tol: Option<f64>,
    silhouette_sample: Option<usize>,
    select: Option<String>,
    min_stability: Option<f64>,
    min_segment_share: Option<f64>,
    stability_resamples: Option<usize>,
    fit_sample: Option<usize>,
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

impl Choice for Scale {
    const WHAT: &'static str = "scale";
    const WORDS: &'static [(&'static str, Self)] =
        &[("zscore", Scale::ZScore), ("minmax", Scale::MinMax), ("robust", Scale::Robust), ("none", Scale::None)];
}

impl Choice for SelectRule {
    const WHAT: &'static str = "select rule";
    const WORDS: &'static [(&'static str, Self)] = &[
        ("silhouette", SelectRule::Silhouette),
        ("stability", SelectRule::Stability),
        ("calinski_harabasz", SelectRule::CalinskiHarabasz),
        ("davies_bouldin", SelectRule::DaviesBouldin),
    ];
}

/// Rows the Ward linkage is fitted on by default (`fit_sample` for `hierarchical`): its
/// n(n − 1)/2 distances are 100 MB here; the other rows join the nearest cluster mean.
pub const DEFAULT_LINKAGE_ROWS: usize = 5_000;
/// The most rows a Ward linkage may hold: 20,000 rows are 1.6 GB of distances.
pub const MAX_LINKAGE_ROWS: usize = 20_000;

/// The most bootstrap refits per candidate k (each is a fit on the silhouette sample).
pub const MAX_STABILITY_RESAMPLES: usize = 1000;

/// `algorithm` before its parameters are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AlgorithmName {
    KMeans,
    MiniBatchKMeans,
    Dbscan,
    Gmm,
    Hierarchical,
}

impl Choice for AlgorithmName {
    const WHAT: &'static str = "algorithm";
    const WORDS: &'static [(&'static str, Self)] = &[
        ("kmeans", AlgorithmName::KMeans),
        ("minibatch_kmeans", AlgorithmName::MiniBatchKMeans),
        ("dbscan", AlgorithmName::Dbscan),
        ("gmm", AlgorithmName::Gmm),
        ("hierarchical", AlgorithmName::Hierarchical),
    ];
}

/// `transform`: `log1p` or nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transform {
    None,
    Log1p,
}

impl Choice for Transform {
    const WHAT: &'static str = "transform";
    const WORDS: &'static [(&'static str, Self)] = &[("none", Transform::None), ("log1p", Transform::Log1p)];
}

fn parse_log1p(t: Option<&str>) -> Result<bool, Problem> {
    Ok(Transform::parse_or(t, Transform::None)? == Transform::Log1p)
}

/// `select`, `min_stability`, `min_segment_share` and `stability_resamples`: how k is chosen
/// among the candidates of a range.
fn parse_select(s: &SegmentationSection, k: KChoice) -> Result<KSelect, (&'static str, Problem)> {
    let defaults = KSelect::default();
    if matches!(k, KChoice::Fixed(_)) {
        for (name, present) in [
            ("select", s.select.is_some()),
            ("min_stability", s.min_stability.is_some()),
            ("min_segment_share", s.min_segment_share.is_some()),
        ] {
            if present {
                return Err((name, "applies only when k is a range (k = { min = .., max = .. })".into()));
            }
        }
    }
    let rule = SelectRule::parse_or(s.select.as_deref(), defaults.rule).map_err(|p| ("select", p))?;
    if let Some(m) = s.min_stability
        && !(-0.5..=1.0).contains(&m)
    {
        return Err(("min_stability", format!("must be between -0.5 and 1 (an adjusted Rand index), got {m}").into()));
    }
    let min_segment_share = s.min_segment_share.unwrap_or(defaults.min_segment_share);
    if !(0.0..0.5).contains(&min_segment_share) {
        return Err(("min_segment_share", format!("must be at least 0 and below 0.5, got {min_segment_share}").into()));
    }
    let stability_resamples = s.stability_resamples.unwrap_or(defaults.stability_resamples);
    if !(2..=MAX_STABILITY_RESAMPLES).contains(&stability_resamples) {
        return Err(("stability_resamples", format!("must be from 2 to {MAX_STABILITY_RESAMPLES}, got {stability_resamples}").into()));
    }
    Ok(KSelect {
        rule,
        min_stability: s.min_stability,
        min_segment_share,
        stability_resamples,
    })
}

/// The most segments a job may ask for (fixed, or the top of a range): every k of a range is a
/// fit, and a marketer acts on a handful; a larger number is a typo that would run for hours.
pub const MAX_K: usize = 100;
/// The most K-means starts per k.
pub const MAX_N_INIT: usize = 1000;

pub(super) fn validate_segmentation(s: SegmentationSection) -> Result<SegmentationSpec, Invalid> {
    let key = |k: &str| format!("segmentation.{k}");
    let invalid = |k: &str, p: Problem| Err(Invalid::new(key(k), p));
    Name::check(&s.view).at(key("view"))?;
    if s.features.is_empty() && s.categorical.is_empty() {
        return invalid("features", "at least one feature column is required".into());
    }
    let mut seen = BTreeSet::new();
    for (k, f) in s.features.iter().map(|f| ("features", f)).chain(s.categorical.iter().map(|f| ("categorical", f))) {
        if !seen.insert(f) {
            return invalid(k, format!("column '{f}' is listed twice").into());
        }
        if f == &s.id {
            return invalid(k, format!("the id column '{f}' cannot be a feature").into());
        }
    }
    let profile = s.profile.clone().unwrap_or_else(|| s.categorical.clone());
    let mut profiled = BTreeSet::new();
    for c in &profile {
        Name::check(c).at(key("profile"))?;
        if !profiled.insert(c) {
            return invalid("profile", format!("column '{c}' is listed twice").into());
        }
        if c == &s.id {
            return invalid("profile", format!("the id column '{c}' cannot be profiled").into());
        }
        if s.features.contains(c) {
            return invalid("profile", format!("'{c}' is a numeric feature; profile lists categorical columns").into());
        }
    }
    if let Some(c) = s.columns.keys().find(|c| !s.features.contains(c)) {
        return invalid(&format!("columns.{c}"), format!("'{c}' is not in features").into());
    }
    let default_impute = parse_impute(s.impute.as_ref()).at(key("impute"))?;
    let default_log1p = parse_log1p(s.transform.as_deref()).at(key("transform"))?;
    let default_clip = s.clip.map(check_clip).transpose().at(key("clip"))?;
    let mut prep = Vec::with_capacity(s.features.len());
    for f in &s.features {
        let c = s.columns.get(f);
        let col_key = |k: &str| key(&format!("columns.{f}.{k}"));
        let impute = match c.and_then(|c| c.impute.as_ref()) {
            Some(v) => parse_impute(Some(v)).at(col_key("impute"))?,
            None => default_impute,
        };
        let log1p = match c.and_then(|c| c.transform.as_deref()) {
            Some(t) => parse_log1p(Some(t)).at(col_key("transform"))?,
            None => default_log1p,
        };
        let clip = match c.and_then(|c| c.clip) {
            Some(q) => Some(check_clip(q).at(col_key("clip"))?),
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
    let scale = Scale::parse_or(s.scale.as_deref(), Scale::ZScore).at(key("scale"))?;
    let algorithm = match AlgorithmName::parse_or(s.algorithm.as_deref(), AlgorithmName::KMeans).at(key("algorithm"))? {
        AlgorithmName::KMeans => Algorithm::KMeans,
        AlgorithmName::MiniBatchKMeans => {
            let batch_size = s.batch_size.unwrap_or(1024);
            if batch_size == 0 {
                return invalid("batch_size", Problem::AtLeastOne);
            }
            Algorithm::MiniBatchKMeans { batch_size }
        }
        AlgorithmName::Dbscan => {
            let eps = s.eps.ok_or("dbscan needs eps (the neighbourhood radius)").at(key("eps"))?;
            if !(eps.is_finite() && eps > 0.0) {
                return invalid("eps", Problem::NotPositive(eps));
            }
            let min_points = s.min_points.unwrap_or(5);
            if min_points == 0 {
                return invalid("min_points", Problem::AtLeastOne);
            }
            Algorithm::Dbscan { eps, min_points }
        }
        AlgorithmName::Gmm => {
            match s.covariance.as_deref().unwrap_or("full") {
                "full" => {}
                other => {
                    let message = format!("unknown covariance type '{other}' (linfa-clustering implements full)");
                    return invalid("covariance", message.into());
                }
            }
            Algorithm::Gmm
        }
        AlgorithmName::Hierarchical => Algorithm::Hierarchical,
    };
    for (k, present, ok) in [
        ("batch_size", s.batch_size.is_some(), matches!(algorithm, Algorithm::MiniBatchKMeans { .. })),
        ("eps", s.eps.is_some(), matches!(algorithm, Algorithm::Dbscan { .. })),
        ("min_points", s.min_points.is_some(), matches!(algorithm, Algorithm::Dbscan { .. })),
        ("covariance", s.covariance.is_some(), algorithm == Algorithm::Gmm),
        ("fit_sample", s.fit_sample.is_some(), !matches!(algorithm, Algorithm::Dbscan { .. })),
        ("select", s.select.is_some(), !matches!(algorithm, Algorithm::Dbscan { .. })),
        ("min_stability", s.min_stability.is_some(), !matches!(algorithm, Algorithm::Dbscan { .. })),
        ("min_segment_share", s.min_segment_share.is_some(), !matches!(algorithm, Algorithm::Dbscan { .. })),
        ("stability_resamples", s.stability_resamples.is_some(), !matches!(algorithm, Algorithm::Dbscan { .. })),
    ] {
        if present && !ok {
            return invalid(k, format!("does not apply to algorithm '{}'", algorithm.name()).into());
        }
    }
    let k = match (s.k.as_ref(), algorithm) {
        (Some(_), Algorithm::Dbscan { .. }) => return invalid("k", "dbscan finds the number of clusters itself".into()),
        (None, _) => KChoice::Range { min: 2, max: 8 },
        (Some(v), _) => parse_k(v).at(key("k"))?,
    };
    let n_init = s.n_init.unwrap_or(10);
    if n_init == 0 {
        return invalid("n_init", "n_init must be at least 1".into());
    }
    // Each start is a whole fit (for every candidate k): a mistyped count would run for days.
    if n_init > MAX_N_INIT {
        return invalid("n_init", format!("n_init must be at most {MAX_N_INIT}, got {n_init}").into());
    }
    let max_iter = s.max_iter.unwrap_or(300);
    if max_iter == 0 {
        return invalid("max_iter", "max_iter must be at least 1".into());
    }
    let tol = s.tol.unwrap_or(1e-4);
    if !(tol.is_finite() && tol > 0.0) {
        return invalid("tol", format!("tol must be a finite number > 0, got {tol}").into());
    }
    let silhouette_sample = s.silhouette_sample.unwrap_or(20_000);
    if silhouette_sample < 2 {
        return invalid("silhouette_sample", format!("must be at least 2, got {silhouette_sample}").into());
    }
    let select = parse_select(&s, k).map_err(|(k, p)| Invalid::new(key(k), p))?;
    // A million prepared rows of ten columns is 80 MB and a K-means fit of seconds; at 10M
    // orders a 1M sample chose the same k and 99.98 % of the same segments as all 1.76M rows
    // (BENCHMARKS.md, "Fitting on a sample").
    let fit_sample = s.fit_sample.unwrap_or(if algorithm == Algorithm::Hierarchical { DEFAULT_LINKAGE_ROWS } else { 1_000_000 });
    if algorithm == Algorithm::Hierarchical && fit_sample > MAX_LINKAGE_ROWS {
        let message = format!("the Ward linkage holds every pairwise distance, so at most {MAX_LINKAGE_ROWS} rows (1.6 GB), got {fit_sample}");
        return invalid("fit_sample", message.into());
    }
    let k_max = match k {
        KChoice::Fixed(k) => k,
        KChoice::Range { max, .. } => max,
    };
    if fit_sample < k_max.max(2) {
        return invalid("fit_sample", format!("must be at least the largest k ({}), got {fit_sample}", k_max.max(2)).into());
    }
    let (mode, model_from) = parse_model_mode("segmentation", s.mode.as_deref(), s.model_from.as_deref())?;
    if mode == ModelMode::Score && !matches!(algorithm, Algorithm::KMeans | Algorithm::MiniBatchKMeans { .. } | Algorithm::Hierarchical) {
        return invalid(
            "mode",
            "score assigns to the nearest saved centroid, so it needs algorithm kmeans, minibatch_kmeans or hierarchical".into(),
        );
    }
    let drift_warn_psi = s.drift_warn_psi.unwrap_or(0.25);
    if !(drift_warn_psi.is_finite() && drift_warn_psi > 0.0) {
        return invalid("drift_warn_psi", Problem::NotPositive(drift_warn_psi));
    }
    Ok(SegmentationSpec {
        view: s.view,
        id: s.id,
        features: s.features,
        prep,
        categorical: s.categorical,
        profile,
        scale,
        algorithm,
        k,
        seed: s.seed.unwrap_or(42),
        n_init,
        max_iter,
        tol,
        silhouette_sample,
        select,
        fit_sample,
        mode,
        model_from,
        align_ids: s.align_ids.unwrap_or(true),
        drift_warn_psi,
    })
}

/// `impute`: a strategy word or a constant.
fn parse_impute(v: Option<&toml::Value>) -> Result<Impute, Problem> {
    match v {
        None => Ok(Impute::None),
        Some(toml::Value::String(s)) => match s.as_str() {
            "none" => Ok(Impute::None),
            "mean" => Ok(Impute::Mean),
            "median" => Ok(Impute::Median),
            // Not a `Choice`: the expected list names numbers too.
            other => Err(format!("unknown imputation '{other}' (expected none, mean, median or a number)").into()),
        },
        Some(toml::Value::Integer(i)) => Ok(Impute::Constant(*i as f64)),
        Some(toml::Value::Float(f)) if f.is_finite() => Ok(Impute::Constant(*f)),
        Some(other) => Err(format!("expected none, mean, median or a finite number, got {other}").into()),
    }
}

fn check_clip([lo, hi]: [f64; 2]) -> Result<(f64, f64), Problem> {
    if (0.0..=1.0).contains(&lo) && (0.0..=1.0).contains(&hi) && lo < hi {
        Ok((lo, hi))
    } else {
        Err(format!("expected two quantiles 0 <= lower < upper <= 1, got [{lo}, {hi}]").into())
    }
}

/// `k`: a number, or `{ min = .., max = .. }` to choose by silhouette.
fn parse_k(v: &toml::Value) -> Result<KChoice, Problem> {
    let as_k = |v: &toml::Value, what: &str| -> Result<usize, String> {
        match v.as_integer() {
            Some(i) if i > MAX_K as i64 => Err(format!("{what} must be at most {MAX_K} segments, got {i}")),
            Some(i) if i >= 1 => Ok(i as usize),
            Some(i) => Err(format!("{what} must be at least 1, got {i}")),
            None => Err(format!("{what} must be an integer, got {v}")),
        }
    };
    match v {
        toml::Value::Integer(_) => Ok(KChoice::Fixed(as_k(v, "k")?)),
        toml::Value::Table(t) => {
            if let Some(extra) = t.keys().find(|k| *k != "min" && *k != "max") {
                return Err(format!("unknown key '{extra}' (expected min and max)").into());
            }
            let get = |key: &str| t.get(key).ok_or_else(|| format!("missing '{key}'"));
            let min = as_k(get("min")?, "min")?;
            let max = as_k(get("max")?, "max")?;
            if min < 2 {
                return Err(format!("min must be at least 2 for silhouette selection, got {min}").into());
            }
            if max < min {
                return Err(format!("max ({max}) must not be below min ({min})").into());
            }
            Ok(KChoice::Range { min, max })
        }
        other => Err(format!("expected an integer or {{ min = .., max = .. }}, got {other}").into()),
    }
}
