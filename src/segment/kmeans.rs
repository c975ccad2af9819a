//! K-means through linfa-clustering, with k-means++ initialisation and best-of-`n_init`.
//!
//! Lloyd (1982), "Least squares quantization in PCM"; Arthur & Vassilvitskii (2007),
//! "k-means++: the advantages of careful seeding". linfa assigns points in parallel but each
//! point's assignment is independent and sums are sequential, so results depend only on the
//! seed, not on the thread count.

use linfa::prelude::*;
use linfa_clustering::KMeans;
use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand_xoshiro::Xoshiro256Plus;
use rand_xoshiro::rand_core::SeedableRng;

use super::SegmentError;

/// Unchecked K-means settings.
#[derive(Debug, Clone, Copy)]
pub struct KMeansParams {
    pub k: usize,
    pub n_init: usize,
    pub max_iter: u64,
    pub tol: f64,
    pub seed: u64,
}

/// A fitted K-means model; only a fitted model can assign points.
#[derive(Debug, Clone)]
pub struct KMeansModel {
    /// `(k, p)` in the space the model was fitted in.
    pub centroids: Array2<f64>,
}

/// The fit and its training-set assignment.
#[derive(Debug, Clone)]
pub struct KMeansFit {
    pub model: KMeansModel,
    pub labels: Array1<usize>,
    /// Squared Euclidean distance of each row to its centroid.
    pub sq_dist: Array1<f64>,
    /// Sum of squared distances (scikit-learn's `inertia_`).
    pub inertia: f64,
}

impl KMeansParams {
    fn check(&self, rows: usize) -> Result<(), SegmentError> {
        if self.k == 0 {
            return Err(SegmentError::Params("k cannot be 0".into()));
        }
        if self.k > rows {
            return Err(SegmentError::TooFewRows { k: self.k, rows });
        }
        if self.n_init == 0 {
            return Err(SegmentError::Params("n_init cannot be 0".into()));
        }
        if self.max_iter == 0 {
            return Err(SegmentError::Params("max_iter cannot be 0".into()));
        }
        if !(self.tol > 0.0 && self.tol.is_finite()) {
            return Err(SegmentError::Params(format!("tol must be > 0, got {}", self.tol)));
        }
        Ok(())
    }

    pub fn fit(&self, x: ArrayView2<f64>) -> Result<KMeansFit, SegmentError> {
        self.check(x.nrows())?;
        let data = DatasetBase::from(x.to_owned());
        let fitted = KMeans::params_with_rng(self.k, Xoshiro256Plus::seed_from_u64(self.seed))
            .n_runs(self.n_init)
            .max_n_iterations(self.max_iter)
            .tolerance(self.tol)
            .fit(&data)
            .map_err(|e| SegmentError::Fit(format!("k-means with k = {}: {e}", self.k)))?;
        let model = KMeansModel {
            centroids: fitted.centroids().clone(),
        };
        let (labels, sq_dist) = model.assign(x);
        let mut counts = vec![0usize; self.k];
        labels.iter().for_each(|&l| counts[l] += 1);
        // An empty cluster means k is too large for this data; never publish it silently.
        if let Some(c) = counts.iter().position(|&n| n == 0) {
            return Err(SegmentError::EmptyCluster { k: self.k, cluster: c });
        }
        let inertia = sq_dist.sum();
        Ok(KMeansFit {
            model,
            labels,
            sq_dist,
            inertia,
        })
    }
}

impl KMeansModel {
    /// Nearest centroid (lowest index on ties) and squared distance for each row.
    pub fn assign(&self, x: ArrayView2<f64>) -> (Array1<usize>, Array1<f64>) {
        let mut labels = Array1::zeros(x.nrows());
        let mut d2 = Array1::zeros(x.nrows());
        for (i, row) in x.axis_iter(Axis(0)).enumerate() {
            let (mut best, mut best_d) = (0, f64::INFINITY);
            for (c, centroid) in self.centroids.axis_iter(Axis(0)).enumerate() {
                let d: f64 = row.iter().zip(centroid.iter()).map(|(a, b)| (a - b) * (a - b)).sum();
                if d < best_d {
                    best = c;
                    best_d = d;
                }
            }
            labels[i] = best;
            d2[i] = best_d;
        }
        (labels, d2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn params(k: usize) -> KMeansParams {
        KMeansParams {
            k,
            n_init: 4,
            max_iter: 100,
            tol: 1e-6,
            seed: 7,
        }
    }

    #[test]
    fn k_cannot_exceed_rows() {
        let x = array![[0.0], [1.0]];
        let err = params(3).fit(x.view()).unwrap_err();
        assert_eq!(err.to_string(), "k = 3 is more than the 2 rows to cluster");
    }

    #[test]
    fn separated_blobs_are_found_with_their_inertia() {
        let x = array![[0.0, 0.0], [0.0, 1.0], [10.0, 10.0], [10.0, 11.0]];
        let fit = params(2).fit(x.view()).unwrap();
        assert_eq!(fit.labels[0], fit.labels[1]);
        assert_eq!(fit.labels[2], fit.labels[3]);
        assert_ne!(fit.labels[0], fit.labels[2]);
        // Each point is 0.5 from its centroid: 4 × 0.25.
        assert!((fit.inertia - 1.0).abs() < 1e-9, "{}", fit.inertia);
    }

    #[test]
    fn same_seed_same_result() {
        let x = Array2::from_shape_fn((200, 3), |(i, j)| ((i * 7 + j * 13) % 17) as f64);
        let a = params(4).fit(x.view()).unwrap();
        let b = params(4).fit(x.view()).unwrap();
        assert_eq!(a.labels, b.labels);
        assert_eq!(a.model.centroids, b.model.centroids);
    }
}
