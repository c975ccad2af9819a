//! The validated segmentation, RFM and action specs: what `[segmentation]`, `[rfm]`,
//! `[tiers]` and `[actions]` mean once `job` has checked them. Pure domain types: no TOML.

use std::collections::BTreeMap;

use super::rfm::{self, ActionKey, LifecycleThresholds, RfmRule, ValueThresholds};
use crate::model_mode::{ModelFrom, ModelMode};

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
    /// Try every k in `min..=max` and keep the best by [`KSelect`].
    Range { min: usize, max: usize },
}

/// The rule that picks k among the candidates of `k = { min, max }` (`select`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectRule {
    /// Highest mean silhouette (the default).
    Silhouette,
    /// Highest bootstrap stability (mean adjusted Rand index of refits).
    Stability,
    /// Highest Calinski–Harabasz ratio.
    CalinskiHarabasz,
    /// Lowest Davies–Bouldin index.
    DaviesBouldin,
}

impl SelectRule {
    /// The job-file name.
    pub fn name(&self) -> &'static str {
        match self {
            SelectRule::Silhouette => "silhouette",
            SelectRule::Stability => "stability",
            SelectRule::CalinskiHarabasz => "calinski_harabasz",
            SelectRule::DaviesBouldin => "davies_bouldin",
        }
    }
}

/// How k is chosen: a rule, applied to the candidates that pass the floors. Ties go to the
/// smaller k.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KSelect {
    pub rule: SelectRule,
    /// Candidates less stable than this are not chosen (`min_stability`).
    pub min_stability: Option<f64>,
    /// Candidates whose smallest segment holds less than this share of the fitted rows are not
    /// chosen (`min_segment_share`; 0 = no floor).
    pub min_segment_share: f64,
    /// Bootstrap refits per candidate for its stability (`stability_resamples`).
    pub stability_resamples: usize,
}

impl Default for KSelect {
    fn default() -> Self {
        KSelect {
            rule: SelectRule::Silhouette,
            min_stability: None,
            min_segment_share: 0.0,
            stability_resamples: 10,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Algorithm {
    KMeans,
    MiniBatchKMeans { batch_size: usize },
    Dbscan { eps: f64, min_points: usize },
    /// Full covariance is the only type linfa-clustering 0.8 implements.
    Gmm,
    /// Agglomerative, Ward linkage ([`super::hierarchical`]).
    Hierarchical,
}

impl Algorithm {
    /// The job-file name.
    pub fn name(&self) -> &'static str {
        match self {
            Algorithm::KMeans => "kmeans",
            Algorithm::MiniBatchKMeans { .. } => "minibatch_kmeans",
            Algorithm::Dbscan { .. } => "dbscan",
            Algorithm::Gmm => "gmm",
            Algorithm::Hierarchical => "hierarchical",
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
    /// Categorical columns whose shares `segment_summary` shows per segment (`profile`;
    /// default: `categorical`).
    pub profile: Vec<String>,
    pub scale: Scale,
    pub algorithm: Algorithm,
    pub k: KChoice,
    pub seed: u64,
    pub n_init: usize,
    pub max_iter: u64,
    pub tol: f64,
    pub silhouette_sample: usize,
    pub select: KSelect,
    /// K-means, mini-batch and GMM candidates (and the k choice) are fitted on a seeded sample
    /// of at most this many rows; every row is then assigned by the chosen model. With no more
    /// rows than this, the fit uses every row, exactly as without a sample.
    pub fit_sample: usize,
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

/// `[actions]`: text per action key (`champions`, `loyal`, …) or per segment name, cost and
/// response per action key, and the margin kept on an order.
#[derive(Debug, Clone, Default)]
pub struct ActionsSpec {
    pub by_key: BTreeMap<ActionKey, String>,
    pub by_segment: BTreeMap<String, String>,
    /// Keys whose cost or response the job sets; the others keep [`rfm::default_economics`].
    pub economics: BTreeMap<ActionKey, rfm::Economics>,
    /// Share of an order's value kept; `None`: `[clv] margin`.
    pub margin: Option<f64>,
}

impl ActionsSpec {
    /// The action for a segment: its own entry, else its key's text, else the shipped default.
    pub fn action(&self, segment: &str, key: Option<ActionKey>) -> Option<String> {
        if let Some(a) = self.by_segment.get(segment) {
            return Some(a.clone());
        }
        let key = key?;
        Some(self.text(key))
    }

    /// The text of a key's action: the job's, else the shipped default.
    pub fn text(&self, key: ActionKey) -> String {
        self.by_key.get(&key).cloned().unwrap_or_else(|| rfm::default_action(key).to_string())
    }

    /// The cost and response of a key's action: the job's, else the shipped default.
    pub fn economics(&self, key: ActionKey) -> rfm::Economics {
        self.economics.get(&key).copied().unwrap_or_else(|| rfm::default_economics(key))
    }
}

/// A two-feature K-means spec for unit tests (z-scored, seed 3, n_init 3).
#[cfg(test)]
pub(crate) fn test_spec(k: KChoice) -> SegmentationSpec {
    let p = ColumnPrep {
        impute: Impute::None,
        log1p: false,
        clip: None,
        low: "low".into(),
        high: "high".into(),
    };
    SegmentationSpec {
        view: "v".into(),
        id: "id".into(),
        features: vec!["a".into(), "b".into()],
        prep: vec![p.clone(), p],
        categorical: vec![],
        profile: vec![],
        scale: Scale::ZScore,
        algorithm: Algorithm::KMeans,
        k,
        seed: 3,
        n_init: 3,
        max_iter: 100,
        tol: 1e-6,
        silhouette_sample: 20_000,
        select: KSelect::default(),
        fit_sample: 1_000_000,
        mode: crate::model_mode::ModelMode::Refit,
        model_from: crate::model_mode::ModelFrom::Latest,
        align_ids: true,
        drift_warn_psi: 0.25,
    }
}
