//! K-means settings: the algorithm ([`KMeansAlgorithm`]), unchecked [`KMeansParams`] and the
//! checked [`KMeansValidParams`] that alone can be fitted (linfa's `ParamGuard`).

use linfa::ParamGuard;
use ndarray::Array2;

use crate::segment::error::SegmentError;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KMeansAlgorithm {
    /// Full passes until the labels stop changing or the centres move less than `tol`.
    Lloyd,
    /// Random batches of `batch_size` rows with per-centre learning rates.
    MiniBatch { batch_size: usize },
}

/// Where Lloyd's runs start (linfa-clustering's `KMeansInit` shape).
#[derive(Debug, Clone, PartialEq)]
pub enum KMeansInit {
    /// k-means++ seeding (Arthur & Vassilvitskii 2007), once per `n_init`.
    KMeansPlusPlus,
    /// These centres (k rows, one column per feature), one run: to compare with another
    /// implementation from the same start, as the benchmark does with scikit-learn's.
    Precomputed(Array2<f64>),
}

/// Checked K-means settings.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansValidParams {
    pub(super) k: usize,
    pub(super) n_init: usize,
    pub(super) max_iter: u64,
    pub(super) tol: f64,
    pub(super) seed: u64,
    pub(super) algorithm: KMeansAlgorithm,
    pub(super) init: KMeansInit,
}

/// Unchecked K-means settings (defaults as scikit-learn: 10 inits, 300 iterations, tol 1e-4).
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansParams(KMeansValidParams);

impl KMeansParams {
    pub fn new(k: usize, seed: u64) -> Self {
        KMeansParams(KMeansValidParams {
            k,
            n_init: 10,
            max_iter: 300,
            tol: 1e-4,
            seed,
            algorithm: KMeansAlgorithm::Lloyd,
            init: KMeansInit::KMeansPlusPlus,
        })
    }
    pub fn init_method(mut self, init: KMeansInit) -> Self {
        self.0.init = init;
        self
    }
    pub fn n_init(mut self, n: usize) -> Self {
        self.0.n_init = n;
        self
    }
    pub fn max_iter(mut self, n: u64) -> Self {
        self.0.max_iter = n;
        self
    }
    /// Relative to the mean feature variance, as scikit-learn's `tol`.
    pub fn tol(mut self, tol: f64) -> Self {
        self.0.tol = tol;
        self
    }
    pub fn algorithm(mut self, algorithm: KMeansAlgorithm) -> Self {
        self.0.algorithm = algorithm;
        self
    }
}

impl ParamGuard for KMeansParams {
    type Checked = KMeansValidParams;
    type Error = SegmentError;

    fn check_ref(&self) -> Result<&KMeansValidParams, SegmentError> {
        let p = &self.0;
        let bad = |m: String| Err(SegmentError::Params(m));
        if p.k == 0 {
            return bad("k cannot be 0".into());
        }
        if p.n_init == 0 {
            return bad("n_init cannot be 0".into());
        }
        if p.max_iter == 0 {
            return bad("max_iter cannot be 0".into());
        }
        if !(p.tol >= 0.0 && p.tol.is_finite()) {
            return bad(format!("tol must be >= 0, got {}", p.tol));
        }
        if let KMeansAlgorithm::MiniBatch { batch_size: 0 } = p.algorithm {
            return bad("batch_size cannot be 0".into());
        }
        if let KMeansInit::Precomputed(c) = &p.init {
            // Mini-batch seeds its own centres on its init sample; a start it ignored would
            // make a comparison "from the same centres" untrue.
            if matches!(p.algorithm, KMeansAlgorithm::MiniBatch { .. }) {
                return bad("precomputed centres start Lloyd's algorithm only, not mini-batch".into());
            }
            if c.nrows() != p.k || c.iter().any(|v| !v.is_finite()) {
                return bad(format!("precomputed centres must be {} finite rows, got {}", p.k, c.nrows()));
            }
        }
        Ok(p)
    }

    fn check(self) -> Result<KMeansValidParams, SegmentError> {
        self.check_ref()?;
        Ok(self.0)
    }
}
