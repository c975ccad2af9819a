//! Choosing k: fit each candidate and keep the highest mean silhouette.
//!
//! Silhouette (Rousseeuw 1987): s(i) = (b − a) / max(a, b), where a is the mean distance from
//! i to the other members of its cluster and b the lowest mean distance to another cluster;
//! the score is the mean of s(i). It costs O(n²), so above `SILHOUETTE_SAMPLE` rows it is
//! computed on a seeded random sample, as scikit-learn's `sample_size` does.

use linfa::metrics::SilhouetteScore;
use linfa::prelude::*;
use ndarray::{Array1, Array2, Axis};
use rand::seq::index::sample;
use rand_xoshiro::Xoshiro256Plus;
use rand_xoshiro::rand_core::SeedableRng;

use super::SegmentError;
use super::kmeans::{KMeansFit, KMeansParams};

/// Rows above which the silhouette is estimated on a sample.
pub const SILHOUETTE_SAMPLE: usize = 5_000;

/// One row of `segmentation_k_selection`.
#[derive(Debug, Clone, PartialEq)]
pub struct KScore {
    pub k: usize,
    pub inertia: f64,
    pub silhouette: f64,
    pub chosen: bool,
}

/// Fits every k in `ks` and returns the fit with the highest silhouette (the smaller k on a
/// tie) plus the score table.
pub fn select_k(
    x: &Array2<f64>,
    ks: &[usize],
    base: KMeansParams,
) -> Result<(KMeansFit, Vec<KScore>), SegmentError> {
    let mut best: Option<(usize, KMeansFit)> = None;
    let mut scores: Vec<KScore> = Vec::with_capacity(ks.len());
    for &k in ks {
        let fit = KMeansParams { k, ..base }.fit(x.view())?;
        let silhouette = silhouette(x, &fit.labels, base.seed)?;
        tracing::info!(k, inertia = fit.inertia, silhouette, "k-means candidate");
        let better = best.as_ref().is_none_or(|(i, _)| silhouette > scores[*i].silhouette);
        scores.push(KScore {
            k,
            inertia: fit.inertia,
            silhouette,
            chosen: false,
        });
        if better {
            best = Some((scores.len() - 1, fit));
        }
    }
    let (i, fit) = best.ok_or_else(|| SegmentError::Params("no candidate k".into()))?;
    scores[i].chosen = true;
    Ok((fit, scores))
}

/// Mean silhouette of `labels` on `x`, on a seeded sample above [`SILHOUETTE_SAMPLE`] rows.
pub fn silhouette(x: &Array2<f64>, labels: &Array1<usize>, seed: u64) -> Result<f64, SegmentError> {
    let (x, labels) = if x.nrows() > SILHOUETTE_SAMPLE {
        let mut rng = Xoshiro256Plus::seed_from_u64(seed);
        let mut idx = sample(&mut rng, x.nrows(), SILHOUETTE_SAMPLE).into_vec();
        idx.sort_unstable();
        (x.select(Axis(0), &idx), labels.select(Axis(0), &idx))
    } else {
        (x.clone(), labels.clone())
    };
    DatasetBase::new(x, labels)
        .silhouette_score()
        .map_err(|e| SegmentError::Fit(format!("silhouette: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn silhouette_of_two_tight_pairs() {
        // a = 1 for every point; b = mean distance to the other pair.
        let x = array![[0.0], [1.0], [10.0], [11.0]];
        let labels = array![0, 0, 1, 1];
        let b0 = (10.0 + 11.0) / 2.0;
        let b1 = (9.0 + 10.0) / 2.0;
        let expected = ((b0 - 1.0) / b0 + (b1 - 1.0) / b1) / 2.0;
        assert!((silhouette(&x, &labels, 0).unwrap() - expected).abs() < 1e-12);
    }

    #[test]
    fn three_blobs_choose_three() {
        let centers = [[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]];
        let x = Array2::from_shape_fn((90, 2), |(i, j)| centers[i % 3][j] + ((i * 31 + j * 17) % 11) as f64 / 10.0);
        let base = KMeansParams {
            k: 0,
            n_init: 3,
            max_iter: 100,
            tol: 1e-6,
            seed: 1,
        };
        let (fit, scores) = select_k(&x, &[2, 3, 4, 5], base).unwrap();
        assert_eq!(fit.model.centroids.nrows(), 3);
        assert_eq!(scores.iter().filter(|s| s.chosen).map(|s| s.k).collect::<Vec<_>>(), vec![3]);
    }
}
