//! Fitting: [`KMeansValidParams`] → [`KMeansModel`] through linfa's `Fit`, the best of
//! `n_init` seeded Lloyd runs or one mini-batch run.

use linfa::prelude::*;
use ndarray::{ArrayBase, Data, Ix2};
use rand_xoshiro::Xoshiro256Plus;
use rand_xoshiro::rand_core::SeedableRng;

use super::columns::{Centres, Columns};
use super::lloyd::{lloyd, tolerance};
use super::minibatch::minibatch;
use super::model::KMeansModel;
use super::params::{KMeansAlgorithm, KMeansInit, KMeansValidParams};
use super::seeding::kmeans_plus_plus;
use crate::segment::error::SegmentError;

impl<D: Data<Elem = f64>, T> Fit<ArrayBase<D, Ix2>, T, SegmentError> for KMeansValidParams {
    type Object = KMeansModel;

    fn fit(&self, data: &DatasetBase<ArrayBase<D, Ix2>, T>) -> Result<KMeansModel, SegmentError> {
        let x = data.records().view();
        let (n, k) = (x.nrows(), self.k);
        if k > n {
            return Err(SegmentError::TooFewRows { k, rows: n });
        }
        let cols = Columns::new(x);
        let mut rng = Xoshiro256Plus::seed_from_u64(self.seed);
        match self.algorithm {
            KMeansAlgorithm::Lloyd => {
                let tol = tolerance(&cols, self.tol);
                if let KMeansInit::Precomputed(c) = &self.init {
                    if c.ncols() != x.ncols() {
                        return Err(SegmentError::Params(format!("precomputed centres have {} columns, the data {}", c.ncols(), x.ncols())));
                    }
                    return Ok(lloyd(&cols, Centres::new(c), self.max_iter, tol));
                }
                let mut best: Option<KMeansModel> = None;
                for _ in 0..self.n_init {
                    let init = kmeans_plus_plus(&cols, k, &mut rng);
                    let run = lloyd(&cols, init, self.max_iter, tol);
                    // Strictly lower inertia wins, so the first of equal runs is kept.
                    if best.as_ref().is_none_or(|b| run.inertia < b.inertia) {
                        best = Some(run);
                    }
                }
                best.ok_or_else(|| SegmentError::Params("n_init cannot be 0".into()))
            }
            KMeansAlgorithm::MiniBatch { batch_size } => Ok(minibatch(&cols, self, batch_size, &mut rng)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, array};
    use rand::Rng;

    use crate::segment::kmeans::{KMeansAlgorithm, KMeansInit, KMeansParams};

    fn fit(x: &Array2<f64>, params: KMeansParams) -> Result<KMeansModel, SegmentError> {
        params.fit(&DatasetBase::from(x.clone()))
    }

    fn blobs(n: usize, centers: &[[f64; 2]], seed: u64) -> Array2<f64> {
        let mut rng = Xoshiro256Plus::seed_from_u64(seed);
        Array2::from_shape_fn((n, 2), |(i, j)| centers[i % centers.len()][j] + rng.gen_range(-1.0..1.0))
    }

    #[test]
    fn k_cannot_exceed_rows() {
        let x = array![[0.0], [1.0]];
        let err = fit(&x, KMeansParams::new(3, 1)).unwrap_err();
        assert_eq!(err.to_string(), "k = 3 is more than the 2 rows to cluster");
    }

    #[test]
    fn precomputed_centres_start_the_one_run() {
        let x = array![[0.0, 0.0], [0.0, 1.0], [10.0, 10.0], [10.0, 11.0], [5.0, 5.0]];
        let m = fit(&x, KMeansParams::new(2, 7).n_init(4)).unwrap();
        // Started at its own optimum, Lloyd stops at once with the same centres.
        let again = fit(&x, KMeansParams::new(2, 99).init_method(KMeansInit::Precomputed(m.centroids.clone()))).unwrap();
        assert_eq!((again.centroids.clone(), again.inertia, again.n_iter), (m.centroids.clone(), m.inertia, 1));
        // A poor start converges elsewhere: the start is really used.
        let poor = fit(&x, KMeansParams::new(2, 7).init_method(KMeansInit::Precomputed(array![[0.0, 0.0], [0.0, 1.0]]))).unwrap();
        assert!(poor.n_iter > 1, "{poor:?}");
        let wrong = fit(&x, KMeansParams::new(2, 7).init_method(KMeansInit::Precomputed(array![[0.0], [1.0]]))).unwrap_err();
        assert!(wrong.to_string().contains("precomputed centres have 1 columns, the data 2"), "{wrong}");
        let rows = fit(&x, KMeansParams::new(3, 7).init_method(KMeansInit::Precomputed(m.centroids))).unwrap_err();
        assert!(rows.to_string().contains("precomputed centres must be 3 finite rows, got 2"), "{rows}");
        let minibatch = KMeansParams::new(2, 7).algorithm(KMeansAlgorithm::MiniBatch { batch_size: 2 });
        let ignored = fit(&x, minibatch.init_method(KMeansInit::Precomputed(array![[0.0, 0.0], [0.0, 1.0]]))).unwrap_err();
        assert!(ignored.to_string().contains("Lloyd's algorithm only"), "{ignored}");
    }

    #[test]
    fn k_cannot_be_zero() {
        let err = fit(&array![[0.0]], KMeansParams::new(0, 1)).unwrap_err();
        assert_eq!(err.to_string(), "invalid segmentation parameters: k cannot be 0");
    }

    #[test]
    fn separated_blobs_are_found_with_their_inertia() {
        let x = array![[0.0, 0.0], [0.0, 1.0], [10.0, 10.0], [10.0, 11.0]];
        let m = fit(&x, KMeansParams::new(2, 7).n_init(4)).unwrap();
        let labels = m.predict(&x);
        assert_eq!(labels[0], labels[1]);
        assert_eq!(labels[2], labels[3]);
        assert_ne!(labels[0], labels[2]);
        // Each point is 0.5 from its centroid: 4 × 0.25.
        assert!((m.inertia - 1.0).abs() < 1e-9, "{}", m.inertia);
    }

    #[test]
    fn same_result_whatever_the_thread_count() {
        let x = blobs(5000, &[[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]], 5);
        let run = |threads: usize, algorithm| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| fit(&x, KMeansParams::new(3, 11).n_init(2).algorithm(algorithm)).unwrap())
        };
        for algorithm in [KMeansAlgorithm::Lloyd, KMeansAlgorithm::MiniBatch { batch_size: 256 }] {
            assert_eq!(run(1, algorithm), run(4, algorithm), "{algorithm:?}");
        }
    }

    #[test]
    fn minibatch_inertia_is_close_to_lloyd() {
        let x = blobs(20_000, &[[0.0, 0.0], [6.0, 0.0], [0.0, 6.0], [6.0, 6.0]], 8);
        let full = fit(&x, KMeansParams::new(4, 1).n_init(3)).unwrap();
        let mb = fit(&x, KMeansParams::new(4, 1).n_init(3).algorithm(KMeansAlgorithm::MiniBatch { batch_size: 1024 }))
            .unwrap();
        assert!(mb.inertia <= full.inertia * 1.02, "mini-batch {} vs lloyd {}", mb.inertia, full.inertia);
        assert!(mb.inertia >= full.inertia * (1.0 - 1e-9));
    }
}
