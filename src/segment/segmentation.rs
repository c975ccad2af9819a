//! What the segmentation stage publishes ([`Segmentation`]), what it reads ([`Features`]) and
//! what it saves between runs ([`FittedModel`]).

use ndarray::Array2;

use super::prep::PrepColumn;
use super::profile::SegmentProfile;
use super::select_k::KScore;

/// Everything the clustering step publishes.
#[derive(Debug, Clone)]
pub struct Segmentation {
    pub columns: Vec<PrepColumn>,
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
    /// Rows the clustering was fitted on (`fit_sample` or every row; 0 when scored with a
    /// saved model).
    pub fit_rows: usize,
}

/// Numeric features with NULL as NaN, plus categorical columns.
pub struct Features<'a> {
    pub x: &'a Array2<f64>,
    pub categorical: &'a [Vec<Option<String>>],
}

/// A fitted segmentation as saved between runs: enough to assign new rows without fitting.
#[derive(Debug, Clone)]
pub struct FittedModel {
    pub columns: Vec<PrepColumn>,
    /// `(k, p)` in the prepared space; row `r` is segment `ids[r]`, named `names[r]`.
    pub centroids: Array2<f64>,
    pub ids: Vec<i32>,
    pub names: Vec<String>,
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
