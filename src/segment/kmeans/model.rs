//! The fitted K-means model ([`KMeansModel`]): centroids that assign rows to their nearest one.

use linfa::traits::PredictInplace;
use ndarray::{Array1, Array2, ArrayBase, ArrayView2, Data, Ix2};

use super::assign::assign_exact;
use super::columns::{Centres, Columns};

/// A fitted K-means model; only a fitted model can assign points.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansModel {
    /// `(k, p)` in the space the model was fitted in.
    pub centroids: Array2<f64>,
    /// Sum of squared distances of the training rows (scikit-learn's `inertia_`).
    pub inertia: f64,
    /// Iterations (Lloyd) or batches (mini-batch) of the best run.
    pub n_iter: u64,
    /// Empty clusters re-seeded with far points during the best run.
    pub relocated: usize,
}

impl<D: Data<Elem = f64>> PredictInplace<ArrayBase<D, Ix2>, Array1<usize>> for KMeansModel {
    fn predict_inplace(&self, x: &ArrayBase<D, Ix2>, y: &mut Array1<usize>) {
        let (labels, _) = self.assign(x.view());
        y.assign(&labels);
    }

    fn default_target(&self, x: &ArrayBase<D, Ix2>) -> Array1<usize> {
        Array1::zeros(x.nrows())
    }
}

impl KMeansModel {
    /// Nearest centroid (lowest index on ties) and exact squared distance for each row.
    pub fn assign(&self, x: ArrayView2<f64>) -> (Array1<usize>, Array1<f64>) {
        let mut labels = vec![0usize; x.nrows()];
        let mut d2 = vec![0.0; x.nrows()];
        assign_exact(&Columns::new(x), &Centres::new(&self.centroids), &mut labels, &mut d2);
        (Array1::from(labels), Array1::from(d2))
    }
}
