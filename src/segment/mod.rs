//! Segmentation: scale the feature matrix, cluster it, profile the clusters.
//!
//! Pure: takes a matrix and a validated spec, returns assignments and tables as values.
//! Segment ids are ordered by size (0 = largest, ties by centroid), so they do not depend on
//! the arbitrary numbering of the clustering algorithm.

mod kmeans;
mod select_k;

use ndarray::{Array1, Array2, Axis};

use crate::features::Scaler;
use crate::job::{KChoice, SegmentationSpec};

pub use kmeans::{KMeansFit, KMeansModel, KMeansParams};
pub use select_k::{KScore, SILHOUETTE_SAMPLE, silhouette};

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
    #[error("{0}")]
    Fit(String),
}

impl SegmentError {
    pub fn is_config(&self) -> bool {
        matches!(self, SegmentError::Params(_))
    }
}

/// Everything the segmentation stage publishes.
#[derive(Debug, Clone)]
pub struct Segmentation {
    pub scaler: Scaler,
    pub k: usize,
    /// Segment id per row, in the input row order.
    pub segment: Array1<usize>,
    /// Euclidean distance to the segment centroid, in the scaled space.
    pub distance: Array1<f64>,
    /// `(k, p)` centroids in the scaled space, row = segment id.
    pub centroids: Array2<f64>,
    pub k_selection: Vec<KScore>,
    pub profiles: Vec<SegmentProfile>,
}

/// One row of `segment_summary`.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentProfile {
    pub segment_id: usize,
    pub customers: usize,
    pub share: f64,
    /// Mean of each feature in original units.
    pub means: Vec<f64>,
}

pub fn segment(x: &Array2<f64>, spec: &SegmentationSpec) -> Result<Segmentation, SegmentError> {
    let scaler = Scaler::fit(spec.scale, x);
    let z = scaler.transform(x);
    let base = KMeansParams {
        k: 0,
        n_init: spec.n_init,
        max_iter: spec.max_iter,
        tol: spec.tol,
        seed: spec.seed,
    };
    let (fit, mut k_selection) = match spec.k {
        KChoice::Fixed(k) => {
            let fit = KMeansParams { k, ..base }.fit(z.view())?;
            let silhouette = if k >= 2 { silhouette(&z, &fit.labels, spec.seed)? } else { f64::NAN };
            let score = KScore {
                k,
                inertia: fit.inertia,
                silhouette,
                chosen: true,
            };
            (fit, vec![score])
        }
        KChoice::Range { min, max } => {
            // The silhouette needs 2 <= k <= n - 1.
            let top = max.min(x.nrows().saturating_sub(1));
            if min > top {
                return Err(SegmentError::TooFewRowsToChoose { min, rows: x.nrows() });
            }
            let ks: Vec<usize> = (min..=top).collect();
            select_k::select_k(&z, &ks, base)?
        }
    };
    k_selection.sort_by_key(|s| s.k);
    let k = fit.model.centroids.nrows();

    // Renumber clusters by size (desc), then by centroid coordinates, for stable ids.
    let mut counts = vec![0usize; k];
    fit.labels.iter().for_each(|&l| counts[l] += 1);
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| {
        counts[b].cmp(&counts[a]).then_with(|| {
            let (ca, cb) = (fit.model.centroids.row(a), fit.model.centroids.row(b));
            ca.iter().zip(cb.iter()).map(|(x, y)| x.total_cmp(y)).find(|o| o.is_ne()).unwrap_or(std::cmp::Ordering::Equal)
        })
    });
    let mut new_id = vec![0usize; k];
    for (new, &old) in order.iter().enumerate() {
        new_id[old] = new;
    }
    let segment = fit.labels.mapv(|l| new_id[l]);
    let centroids = fit.model.centroids.select(Axis(0), &order);
    let distance = fit.sq_dist.mapv(f64::sqrt);
    let profiles = profile(x, &segment, k);
    Ok(Segmentation {
        scaler,
        k,
        segment,
        distance,
        centroids,
        k_selection,
        profiles,
    })
}

/// Size, share and feature means (original units) of each segment.
pub fn profile(x: &Array2<f64>, segment: &Array1<usize>, k: usize) -> Vec<SegmentProfile> {
    let n = x.nrows();
    let p = x.ncols();
    let mut sums = Array2::<f64>::zeros((k, p));
    let mut counts = vec![0usize; k];
    for (row, &s) in x.axis_iter(Axis(0)).zip(segment.iter()) {
        counts[s] += 1;
        let mut acc = sums.row_mut(s);
        acc += &row;
    }
    (0..k)
        .map(|s| SegmentProfile {
            segment_id: s,
            customers: counts[s],
            share: counts[s] as f64 / n as f64,
            means: sums.row(s).iter().map(|v| v / counts[s].max(1) as f64).collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Scale;

    fn spec(k: KChoice) -> SegmentationSpec {
        SegmentationSpec {
            view: "v".into(),
            id: "id".into(),
            features: vec!["a".into(), "b".into()],
            scale: Scale::ZScore,
            k,
            seed: 3,
            n_init: 3,
            max_iter: 100,
            tol: 1e-6,
        }
    }

    #[test]
    fn segment_zero_is_the_largest() {
        // 30 points near the origin, 10 far away.
        let x = Array2::from_shape_fn((40, 2), |(i, j)| if i < 30 { (i % 5 + j) as f64 * 0.1 } else { 50.0 + (i % 3) as f64 });
        let s = segment(&x, &spec(KChoice::Fixed(2))).unwrap();
        assert_eq!(s.profiles[0].customers, 30);
        assert_eq!(s.profiles[1].customers, 10);
        assert!(s.segment.iter().take(30).all(|&l| l == 0));
        assert!((s.profiles[1].means[0] - 50.9).abs() < 1e-9, "{:?}", s.profiles[1].means);
    }

    #[test]
    fn range_is_capped_by_rows_and_sorted() {
        let x = Array2::from_shape_fn((5, 2), |(i, j)| (i * 3 + j) as f64);
        let s = segment(&x, &spec(KChoice::Range { min: 2, max: 9 })).unwrap();
        let ks: Vec<usize> = s.k_selection.iter().map(|r| r.k).collect();
        assert_eq!(ks, vec![2, 3, 4]);
        assert_eq!(s.k_selection.iter().filter(|r| r.chosen).count(), 1);
    }
}
