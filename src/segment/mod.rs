//! Segmentation: prepare the features, cluster them, profile and name the clusters; RFM
//! scores, lifecycle stages, value tiers and recommended actions.
//!
//! 1. [`prep`]: impute, log1p, clip, scale, one-hot ([`prep::PrepColumn`] records every fitted
//!    number).
//! 2. [`select_k`]: K-means ([`kmeans`]), mini-batch K-means, GMM or DBSCAN; k chosen by
//!    silhouette with Calinski–Harabasz and Davies–Bouldin reported ([`metrics`]).
//! 3. [`profile`]: segment ids ordered by size, profiles in original units, auto-names.
//! 4. [`rfm`]: RFM quintiles and named segments, lifecycle stages, value tiers, actions.
//! 5. Across runs: [`score`] with a saved model, [`align`] ids with the previous model,
//!    [`transitions`] between runs and [`drift`] of the features.
//!
//! Everything here is pure: matrices and specs in, values out.

pub mod align;
pub mod drift;
mod kmeans;
mod metrics;
pub mod prep;
pub mod profile;
pub mod rfm;
mod select_k;
pub mod spec;
pub mod transitions;

use ndarray::Array2;

pub use kmeans::{KMeansAlgorithm, KMeansModel, KMeansParams, KMeansValidParams};
pub use profile::SegmentProfile;
pub use select_k::KScore;
pub use spec::{KChoice, Scale, SegmentationSpec};

#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("invalid segmentation parameters: {0}")]
    Params(String),
    #[error("k = {k} is more than the {rows} rows to cluster")]
    TooFewRows { k: usize, rows: usize },
    #[error("choosing k by silhouette from k = {min} needs at least {} rows, found {rows}", min + 1)]
    TooFewRowsToChoose { min: usize, rows: usize },
    #[error("k-means with k = {k} left cluster {cluster} empty; lower k")]
    EmptyCluster { k: usize, cluster: usize },
    #[error(
        "view '{view}': feature '{column}' has {count} null value(s); set an imputation \
         ([segmentation] impute = \"mean\", \"median\" or a number)"
    )]
    Nulls { view: String, column: String, count: usize },
    #[error("view '{view}': feature '{column}' has {count} non-finite value(s) after preparation: {why}")]
    NonFinite { view: String, column: String, count: usize, why: String },
    #[error("{0}")]
    Fit(String),
    #[error(transparent)]
    Linfa(#[from] linfa::Error),
}

impl SegmentError {
    /// Errors the job file can fix (bad parameters) rather than the data.
    pub fn is_config(&self) -> bool {
        matches!(self, SegmentError::Params(_) | SegmentError::TooFewRows { .. } | SegmentError::TooFewRowsToChoose { .. })
    }
}

/// Everything the clustering step publishes.
#[derive(Debug, Clone)]
pub struct Segmentation {
    pub columns: Vec<prep::PrepColumn>,
    /// Clusters found, not counting DBSCAN noise.
    pub k: usize,
    /// Segment id per row in input order; `-1` is DBSCAN noise.
    pub segment: Vec<i32>,
    /// Euclidean distance to the segment centroid in the prepared space (None for noise).
    pub distance: Vec<Option<f64>>,
    /// `(k, p)` centroids in the prepared space, row = segment id.
    pub centroids: Array2<f64>,
    pub k_selection: Vec<KScore>,
    /// One per segment id (noise last).
    pub profiles: Vec<SegmentProfile>,
    pub n_iter: u64,
    pub relocated: usize,
}

/// Numeric features with NULL as NaN, plus categorical columns.
pub struct Features<'a> {
    pub x: &'a Array2<f64>,
    pub categorical: &'a [Vec<Option<String>>],
}

pub fn segment(f: &Features, spec: &SegmentationSpec) -> Result<Segmentation, SegmentError> {
    let prepared = prep::prepare(&prep::Input {
        view: &spec.view,
        names: &spec.features,
        x: f.x,
        prep: &spec.prep,
        scale: spec.scale,
        categorical_names: &spec.categorical,
        categorical: f.categorical,
    })?;
    let (fit, mut k_selection) = select_k::fit(prepared.z.view(), spec)?;
    k_selection.sort_by_key(|s| s.k);
    let ordered = profile::order_by_size(&fit, &prepared.z);
    let profiles = profile::profiles(f.x, &prepared, &ordered, spec);
    Ok(Segmentation {
        columns: prepared.columns,
        k: ordered.centroids.nrows(),
        segment: ordered.segment,
        distance: ordered.distance,
        centroids: ordered.centroids,
        k_selection,
        profiles,
        n_iter: fit.n_iter,
        relocated: fit.relocated,
    })
}

/// A fitted segmentation as saved between runs: enough to assign new rows without fitting.
#[derive(Debug, Clone)]
pub struct FittedModel {
    pub columns: Vec<prep::PrepColumn>,
    /// `(k, p)` in the prepared space; row `r` is segment `ids[r]`, named `names[r]`.
    pub centroids: Array2<f64>,
    pub ids: Vec<i32>,
    pub names: Vec<String>,
}

/// Assigns each row to the nearest centroid of a saved model (score-only runs): the saved
/// preparation, the saved ids and names, no fitting.
pub fn score(f: &Features, spec: &SegmentationSpec, model: &FittedModel) -> Result<Segmentation, SegmentError> {
    let z = prep::apply(&spec.view, &spec.features, f.x, &spec.categorical, f.categorical, &model.columns)?;
    let kmeans = KMeansModel {
        centroids: model.centroids.clone(),
        inertia: 0.0,
        n_iter: 0,
        relocated: 0,
    };
    let (labels, d2) = kmeans.assign(z.view());
    let ordered = profile::Ordered {
        segment: labels.iter().map(|&l| l as i32).collect(),
        distance: d2.iter().map(|d| Some(d.sqrt())).collect(),
        centroids: model.centroids.clone(),
    };
    let prepared = prep::Prepared {
        z,
        columns: model.columns.clone(),
    };
    let profiles = profile::profiles(f.x, &prepared, &ordered, spec);
    let mut seg = Segmentation {
        columns: prepared.columns,
        k: model.centroids.nrows(),
        segment: ordered.segment,
        distance: ordered.distance,
        centroids: ordered.centroids,
        k_selection: Vec::new(),
        profiles,
        n_iter: 0,
        relocated: 0,
    };
    seg.relabel(&model.ids, Some(&model.names));
    Ok(seg)
}

impl Segmentation {
    /// Gives segment `i` (its id as fitted, `0..k`; centroid row `i`) the id `ids[i]` and,
    /// when given, the name `names[i]`. Noise (−1) stays.
    pub fn relabel(&mut self, ids: &[i32], names: Option<&[String]>) {
        for s in self.segment.iter_mut().filter(|s| **s >= 0) {
            *s = ids[*s as usize];
        }
        for p in self.profiles.iter_mut().filter(|p| p.segment_id >= 0) {
            let i = p.segment_id as usize;
            p.segment_id = ids[i];
            if let Some(names) = names {
                p.name = names[i].clone();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spec::{Algorithm, ColumnPrep, Impute};

    fn spec(k: KChoice) -> SegmentationSpec {
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
            scale: Scale::ZScore,
            algorithm: Algorithm::KMeans,
            k,
            seed: 3,
            n_init: 3,
            max_iter: 100,
            tol: 1e-6,
            silhouette_sample: 20_000,
            mode: crate::model_mode::ModelMode::Refit,
            model_from: crate::model_mode::ModelFrom::Latest,
            align_ids: true,
            drift_warn_psi: 0.25,
        }
    }

    fn run(x: &Array2<f64>, s: &SegmentationSpec) -> Result<Segmentation, SegmentError> {
        segment(&Features { x, categorical: &[] }, s)
    }

    #[test]
    fn segment_zero_is_the_largest() {
        // 30 points near the origin, 10 far away.
        let x = Array2::from_shape_fn((40, 2), |(i, j)| if i < 30 { (i % 5 + j) as f64 * 0.1 } else { 50.0 + (i % 3) as f64 });
        let s = run(&x, &spec(KChoice::Fixed(2))).unwrap();
        assert_eq!(s.profiles[0].customers, 30);
        assert_eq!(s.profiles[1].customers, 10);
        assert!(s.segment.iter().take(30).all(|&l| l == 0));
        assert!((s.profiles[1].means[0] - 50.9).abs() < 1e-9, "{:?}", s.profiles[1].means);
    }

    #[test]
    fn range_is_capped_by_rows_and_sorted() {
        let x = Array2::from_shape_fn((5, 2), |(i, j)| (i * 3 + j) as f64);
        let s = run(&x, &spec(KChoice::Range { min: 2, max: 9 })).unwrap();
        let ks: Vec<usize> = s.k_selection.iter().map(|r| r.k).collect();
        assert_eq!(ks, vec![2, 3, 4]);
        assert_eq!(s.k_selection.iter().filter(|r| r.chosen).count(), 1);
    }

    #[test]
    fn three_blobs_choose_three() {
        let centers = [[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]];
        let x = Array2::from_shape_fn((90, 2), |(i, j)| centers[i % 3][j] + ((i * 31 + j * 17) % 11) as f64 / 10.0);
        let s = run(&x, &spec(KChoice::Range { min: 2, max: 5 })).unwrap();
        assert_eq!(s.k, 3);
        assert_eq!(s.k_selection.iter().filter(|s| s.chosen).map(|s| s.k).collect::<Vec<_>>(), vec![3]);
    }

    #[test]
    fn dbscan_noise_gets_segment_minus_one() {
        // Two dense groups and one far outlier.
        let mut rows: Vec<[f64; 2]> = (0..20).map(|i| [(i % 5) as f64 * 0.1, (i / 5) as f64 * 0.1]).collect();
        rows.extend((0..20).map(|i| [10.0 + (i % 5) as f64 * 0.1, (i / 5) as f64 * 0.1]));
        rows.push([50.0, 50.0]);
        let x = Array2::from_shape_fn((rows.len(), 2), |(i, j)| rows[i][j]);
        let mut s = spec(KChoice::Fixed(2));
        s.scale = Scale::None;
        s.algorithm = Algorithm::Dbscan { eps: 0.5, min_points: 3 };
        let seg = run(&x, &s).unwrap();
        assert_eq!(seg.k, 2);
        assert_eq!(seg.segment[40], -1);
        assert_eq!(seg.distance[40], None);
        assert_eq!(seg.profiles.last().map(|p| (p.segment_id, p.customers)), Some((-1, 1)));
    }

    #[test]
    fn gmm_separates_two_blobs() {
        let x = Array2::from_shape_fn((60, 2), |(i, j)| if i < 30 { 0.0 } else { 9.0 } + ((i * 7 + j * 3) % 5) as f64 * 0.2);
        let mut s = spec(KChoice::Fixed(2));
        s.algorithm = Algorithm::Gmm;
        let seg = run(&x, &s).unwrap();
        assert!(seg.segment[..30].iter().all(|&l| l == seg.segment[0]));
        assert!(seg.segment[30..].iter().all(|&l| l == seg.segment[30]));
        assert_ne!(seg.segment[0], seg.segment[30]);
    }
}
