//! The segmentation stage's two entry points: [`segment`] fits a new model (prepare, choose k,
//! cluster, profile), [`score`] assigns rows to the centroids of a saved one.

use ndarray::{Array2, ArrayView2};

use super::error::SegmentError;
use super::kmeans::KMeansModel;
use super::segmentation::{Features, FittedModel, Segmentation};
use super::select_k::KScore;
use super::spec::SegmentationSpec;
use super::{prep, profile, select_k};

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
        fit_rows: fit.fit_rows,
    })
}

/// A clustering fitted on prepared rows that stand for more (the engine path's sample): the
/// chosen centroids in the algorithm's numbering, each row's label, and the k table.
pub struct SampleFit {
    pub centroids: Array2<f64>,
    pub labels: Vec<usize>,
    pub k_selection: Vec<KScore>,
    pub n_iter: u64,
    pub relocated: usize,
}

/// Fits every candidate on every row of `z` (already a sample: `fit_sample` is not applied
/// again) and keeps the chosen one. Only algorithms that assign new rows by the nearest
/// centroid (K-means, mini-batch K-means) come here.
pub fn fit_sample(z: ArrayView2<f64>, spec: &SegmentationSpec) -> Result<SampleFit, SegmentError> {
    let all_rows = SegmentationSpec { fit_sample: usize::MAX, ..spec.clone() };
    let (fit, mut k_selection) = select_k::fit(z, &all_rows)?;
    k_selection.sort_by_key(|s| s.k);
    let labels = fit.labels.iter().map(|l| l.ok_or_else(|| SegmentError::Fit("a K-means row without a cluster".into()))).collect::<Result<_, _>>()?;
    Ok(SampleFit { centroids: fit.centroids, labels, k_selection, n_iter: fit.n_iter, relocated: fit.relocated })
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
        fit_rows: 0,
    };
    seg.relabel(&model.ids, Some(&model.names));
    Ok(seg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::spec::{Algorithm, KChoice, Scale, test_spec as spec};
    use ndarray::Array2;

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
