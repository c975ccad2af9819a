//! Fitting the clustering algorithm and choosing k.
//!
//! With `k = { min, max }` every k is fitted and scored: the silhouette (on one seeded sample
//! of `silhouette_sample` rows shared by all candidates, exact when n is not above it),
//! Calinski–Harabasz and Davies–Bouldin as scikit-learn computes them, the inertia, the
//! smallest segment's share, and the bootstrap stability. `select` names the rule that picks k
//! (highest silhouette by default), among the candidates that pass the `min_segment_share` and
//! `min_stability` floors; the smaller k wins a tie.
//!
//! Stability follows the resampling idea of Ben-Hur, Elisseeff & Guyon (2002, "A stability
//! based method for discovering structure in clustered data") and Hennig (2007, "Cluster-wise
//! assessment of cluster stability"): refit k on a bootstrap resample of the silhouette sample,
//! label the sample with the refit, and compare with the candidate's labels by the adjusted Rand
//! index; the mean over `stability_resamples` seeded resamples. A k that splits a real group, or
//! whose solution depends on where the fit starts, refits differently and scores low. Each refit
//! is a single start (not `n_init`), so that dependence shows, at a cost of one fit per resample.

use linfa::prelude::*;
use linfa_clustering::{Dbscan, GaussianMixtureModel};
use ndarray::{Array2, ArrayView2, Axis, ShapeBuilder};
use rand_xoshiro::Xoshiro256Plus;
use rand_xoshiro::rand_core::SeedableRng;

use super::error::SegmentError;
use super::hierarchical::{self, Tree};
use super::kmeans::{KMeansAlgorithm, KMeansModel, KMeansParams};
use super::metrics::{adjusted_rand_score, calinski_harabasz_score, davies_bouldin_score, sample_rows, silhouette_many};
use super::spec::{Algorithm, KChoice, KSelect, SegmentationSpec, SelectRule};

/// One row of `segmentation_k_selection`. Metrics are NaN where undefined (fewer than two
/// clusters).
#[derive(Debug, Clone, PartialEq)]
pub struct KScore {
    pub k: usize,
    pub inertia: f64,
    pub silhouette: f64,
    pub calinski_harabasz: f64,
    pub davies_bouldin: f64,
    /// Mean adjusted Rand index of bootstrap refits (see the module notes); NaN for DBSCAN.
    pub stability: f64,
    /// The smallest segment's share of the clustered rows.
    pub min_segment_share: f64,
    pub chosen: bool,
}

/// A clustering of the prepared rows, in the algorithm's own numbering.
#[derive(Debug, Clone)]
pub struct Clustering {
    /// `None` for DBSCAN noise.
    pub labels: Vec<Option<usize>>,
    /// `(k, p)`: K-means centroids, GMM means, or DBSCAN cluster means.
    pub centroids: Array2<f64>,
    pub inertia: f64,
    pub n_iter: u64,
    /// Empty K-means clusters re-seeded during the fit.
    pub relocated: usize,
    /// Rows the model was fitted on: every row, or the `fit_sample` rows.
    pub fit_rows: usize,
    /// The fitted mixture, kept to assign rows outside the fit sample.
    gmm: Option<GaussianMixtureModel<f64>>,
}

/// Offset of the fit sample's seed from `seed`, so that it is not the silhouette sample's draw.
const FIT_SAMPLE_STREAM: u64 = 0x5eed_f17;
/// Offset of the stability resamples' seeds from `seed`.
const STABILITY_STREAM: u64 = 0x57ab_1e;

/// Fits `spec.algorithm` and returns the chosen clustering of every row of `z` and the score
/// table.
///
/// Above `fit_sample` rows, K-means, mini-batch K-means and GMM fit every candidate k, and
/// choose k, on one seeded sample of `fit_sample` rows (the scores in the table are the
/// sample's); the chosen model then assigns every row, K-means by the nearest centroid and GMM
/// by the most likely component. The fit costs O(fit_sample) instead of O(rows): at 17.6M
/// customers the 70 fits of k = 2..8 × n_init 10 were 43 % of the job (BENCHMARKS.md).
/// DBSCAN has no rule for rows it did not see, so it always fits every row.
pub fn fit(z: ArrayView2<f64>, spec: &SegmentationSpec) -> Result<(Clustering, Vec<KScore>), SegmentError> {
    let n = z.nrows();
    if matches!(spec.algorithm, Algorithm::Dbscan { .. }) || n <= spec.fit_sample {
        return fit_rows(z, spec);
    }
    let rows = sample_rows(n, spec.fit_sample, spec.seed.wrapping_add(FIT_SAMPLE_STREAM));
    let zs = select_rows(z, &rows);
    tracing::info!(rows = n, fit_rows = rows.len(), "fitting the clustering on a sample");
    let (chosen, scores) = fit_rows(zs.view(), spec)?;
    let k = chosen.centroids.nrows();
    let all = match &chosen.gmm {
        Some(gmm) => {
            let labels = gmm.predict(&z.as_standard_layout());
            from_labels(z, labels.iter().map(|&l| Some(l)).collect(), k, chosen.n_iter)
        }
        None => {
            let model = KMeansModel {
                centroids: chosen.centroids.clone(),
                inertia: chosen.inertia,
                n_iter: chosen.n_iter,
                relocated: chosen.relocated,
            };
            let (labels, d2) = model.assign(z);
            Clustering {
                labels: labels.iter().map(|&l| Some(l)).collect(),
                centroids: chosen.centroids,
                // Over every row, in row order, as the full fit sums it.
                inertia: d2.iter().sum(),
                n_iter: chosen.n_iter,
                relocated: chosen.relocated,
                fit_rows: 0,
                gmm: None,
            }
        }
    };
    // Every sampled row keeps its label (the same rule assigned it), so no cluster is empty.
    Ok((Clustering { fit_rows: rows.len(), ..all }, scores))
}

/// The rows `rows` of `z`, column-major like the prepared matrix (K-means reads columns).
fn select_rows(z: ArrayView2<f64>, rows: &[usize]) -> Array2<f64> {
    let mut out = Array2::<f64>::zeros((rows.len(), z.ncols()).f());
    for (mut col, src) in out.columns_mut().into_iter().zip(z.columns()) {
        for (o, &r) in col.iter_mut().zip(rows) {
            *o = src[r];
        }
    }
    out
}

/// Fits every candidate on every row of `z` and returns the chosen clustering and the score table.
fn fit_rows(z: ArrayView2<f64>, spec: &SegmentationSpec) -> Result<(Clustering, Vec<KScore>), SegmentError> {
    let n = z.nrows();
    let ks: Vec<usize> = match (spec.algorithm, spec.k) {
        (Algorithm::Dbscan { .. }, _) => vec![0],
        (_, KChoice::Fixed(k)) => vec![k],
        (_, KChoice::Range { min, max }) => {
            // The silhouette needs 2 <= k <= n - 1.
            let top = max.min(n.saturating_sub(1));
            if min > top {
                return Err(SegmentError::TooFewRowsToChoose { min, rows: n });
            }
            (min..=top).collect()
        }
    };
    // Each candidate is scored as soon as it is fitted and keeps only its labels on the
    // silhouette sample: a full labelling of 20M rows is 0.3 GB, one per candidate k would not
    // fit. The chosen K-means labelling is assigned again from its centroids, by the same
    // nearest-centroid rule that gave it.
    let forget = ks.len() > 1 && matches!(spec.algorithm, Algorithm::KMeans | Algorithm::MiniBatchKMeans { .. });
    let mut sample: Option<(Vec<usize>, Array2<f64>)> = None;
    let mut candidates = Vec::with_capacity(ks.len());
    // One Ward linkage serves every k.
    let mut tree: Option<Tree> = None;
    for (i, &k) in ks.iter().enumerate() {
        let mut c = fit_one(z, spec, k, &mut tree)?;
        let (candidate, candidates_n) = (i + 1, ks.len());
        tracing::info!(k = c.centroids.nrows(), candidate, candidates = candidates_n, inertia = c.inertia, iterations = c.n_iter, "clustering candidate");
        let scored = score(z, &c, spec, &mut sample);
        if forget {
            c.labels = Vec::new();
        }
        candidates.push((c, scored));
    }
    let zs = sample.map(|(_, zs)| zs).unwrap_or_default();
    // A labeling with fewer than two clusters in the sample has no silhouette (NaN, published
    // as NULL); the others are computed together so each distance is computed once.
    let defined: Vec<usize> =
        (0..candidates.len()).filter(|&t| (2..zs.nrows()).contains(&distinct(&candidates[t].1.sampled))).collect();
    let refs: Vec<&[usize]> = defined.iter().map(|&t| candidates[t].1.sampled.as_slice()).collect();
    let mut silhouettes = vec![f64::NAN; candidates.len()];
    if !refs.is_empty() {
        let values = silhouette_many(zs.view(), &refs).map_err(|e| SegmentError::Fit(format!("silhouette: {e}")))?;
        defined.iter().zip(values).for_each(|(&t, v)| silhouettes[t] = v);
    }
    let mut scores: Vec<KScore> = candidates
        .iter()
        .zip(silhouettes)
        .map(|((f, s), silhouette)| KScore {
            k: f.centroids.nrows(),
            inertia: f.inertia,
            silhouette,
            calinski_harabasz: s.calinski_harabasz,
            davies_bouldin: s.davies_bouldin,
            stability: f64::NAN,
            min_segment_share: s.min_segment_share,
            chosen: false,
        })
        .collect();
    if !matches!(spec.algorithm, Algorithm::Dbscan { .. }) {
        let labelings: Vec<(usize, &[usize])> = candidates.iter().map(|(f, s)| (f.centroids.nrows(), s.sampled.as_slice())).collect();
        for (row, value) in scores.iter_mut().zip(stabilities(zs.view(), &labelings, spec)) {
            row.stability = value;
        }
    }
    // A lone candidate (a fixed k, DBSCAN) is chosen as is.
    let best = if ks.len() > 1 { choose(&scores, &spec.select)? } else { 0 };
    scores[best].chosen = true;
    let (mut chosen, _) = candidates.swap_remove(best);
    if forget {
        let model = KMeansModel {
            centroids: chosen.centroids.clone(),
            inertia: chosen.inertia,
            n_iter: chosen.n_iter,
            relocated: chosen.relocated,
        };
        chosen.labels = model.assign(z).0.iter().map(|&l| Some(l)).collect();
    }
    Ok((chosen, scores))
}

fn fit_one(z: ArrayView2<f64>, spec: &SegmentationSpec, k: usize, tree: &mut Option<Tree>) -> Result<Clustering, SegmentError> {
    // linfa's GMM and k-d tree need row-major data; the prepared matrix is column-major, which
    // our K-means reads in place, so only those two get a row-major copy.
    let row_major = || z.as_standard_layout().into_owned();
    match spec.algorithm {
        Algorithm::KMeans | Algorithm::MiniBatchKMeans { .. } => {
            let model = kmeans_params(spec, k, spec.seed, spec.n_init).fit(&DatasetBase::from(z))?;
            let (labels, _) = model.assign(z);
            let counts = counts(labels.iter().map(|&l| Some(l)), k);
            // Never publish an empty segment; relocation makes this rare (k > distinct rows).
            if let Some(cluster) = counts.iter().position(|&c| c == 0) {
                return Err(SegmentError::EmptyCluster { k, cluster });
            }
            if model.relocated > 0 {
                tracing::warn!(k, relocated = model.relocated, "k-means re-seeded empty clusters");
            }
            Ok(Clustering {
                labels: labels.iter().map(|&l| Some(l)).collect(),
                centroids: model.centroids,
                inertia: model.inertia,
                n_iter: model.n_iter,
                relocated: model.relocated,
                fit_rows: z.nrows(),
                gmm: None,
            })
        }
        Algorithm::Gmm => {
            let data = DatasetBase::from(row_major());
            if k > z.nrows() {
                return Err(SegmentError::TooFewRows { k, rows: z.nrows() });
            }
            let gmm = fit_gmm(&data, spec, k, spec.seed, spec.n_init)?;
            let labels = gmm.predict(data.records());
            Ok(Clustering {
                gmm: Some(gmm),
                ..from_labels(z, labels.iter().map(|&l| Some(l)).collect(), k, 0)
            })
        }
        Algorithm::Hierarchical => {
            if k > z.nrows() {
                return Err(SegmentError::TooFewRows { k, rows: z.nrows() });
            }
            let labels = tree.get_or_insert_with(|| hierarchical::ward(z)).cut(k);
            Ok(from_labels(z, labels.into_iter().map(Some).collect(), k, 0))
        }
        Algorithm::Dbscan { eps, min_points } => {
            let labels = Dbscan::params(min_points)
                .tolerance(eps)
                .transform(&row_major())
                .map_err(|e| SegmentError::Params(format!("dbscan: {e}")))?;
            let k = labels.iter().flatten().map(|&l| l + 1).max().unwrap_or(0);
            if k == 0 {
                return Err(SegmentError::Fit(format!(
                    "dbscan with eps = {eps} and min_points = {min_points} found no cluster; every row is noise"
                )));
            }
            Ok(from_labels(z, labels.to_vec(), k, 0))
        }
    }
}

fn counts(labels: impl Iterator<Item = Option<usize>>, k: usize) -> Vec<usize> {
    let mut c = vec![0usize; k];
    labels.flatten().for_each(|l| c[l] += 1);
    c
}

/// Centroids as member means, and the inertia around them.
fn from_labels(z: ArrayView2<f64>, labels: Vec<Option<usize>>, k: usize, n_iter: u64) -> Clustering {
    let mut sums = Array2::<f64>::zeros((k, z.ncols()));
    let counts = counts(labels.iter().copied(), k);
    for (row, l) in z.axis_iter(Axis(0)).zip(&labels) {
        if let Some(l) = l {
            let mut s = sums.row_mut(*l);
            s += &row;
        }
    }
    for (mut s, &c) in sums.axis_iter_mut(Axis(0)).zip(&counts) {
        s.mapv_inplace(|v| v / c.max(1) as f64);
    }
    let inertia = z
        .axis_iter(Axis(0))
        .zip(&labels)
        .filter_map(|(row, l)| l.map(|l| row.iter().zip(sums.row(l)).map(|(a, b)| (a - b).powi(2)).sum::<f64>()))
        .sum();
    Clustering {
        labels,
        centroids: sums,
        inertia,
        n_iter,
        relocated: 0,
        fit_rows: z.nrows(),
        gmm: None,
    }
}

fn distinct(labels: &[usize]) -> usize {
    let mut seen: Vec<usize> = labels.to_vec();
    seen.sort_unstable();
    seen.dedup();
    seen.len()
}

/// A candidate's metrics on every clustered row, and its labels on the silhouette sample.
struct Scored {
    calinski_harabasz: f64,
    davies_bouldin: f64,
    min_segment_share: f64,
    sampled: Vec<usize>,
}

/// The candidate `select` picks: the best value of its rule among those that pass the floors,
/// the first (smallest k) on a tie.
fn choose(scores: &[KScore], select: &KSelect) -> Result<usize, SegmentError> {
    let (name, value): (&str, fn(&KScore) -> f64) = match select.rule {
        SelectRule::Silhouette => ("silhouette", |s| s.silhouette),
        SelectRule::Stability => ("stability", |s| s.stability),
        SelectRule::CalinskiHarabasz => ("calinski_harabasz", |s| s.calinski_harabasz),
        // Lower is better.
        SelectRule::DaviesBouldin => ("davies_bouldin", |s| -s.davies_bouldin),
    };
    let passes = |s: &KScore| s.min_segment_share >= select.min_segment_share && select.min_stability.is_none_or(|m| s.stability >= m);
    let mut best: Option<usize> = None;
    for (i, s) in scores.iter().enumerate() {
        if value(s).is_finite() && passes(s) && best.is_none_or(|b| value(s) > value(&scores[b])) {
            best = Some(i);
        }
    }
    best.ok_or_else(|| {
        let tried: Vec<String> = scores
            .iter()
            .map(|s| format!("k = {}: {name} {:.3}, stability {:.3}, smallest segment {:.1} %", s.k, value(s).abs(), s.stability, 100.0 * s.min_segment_share))
            .collect();
        let floors = format!(
            "min_segment_share = {}{}",
            select.min_segment_share,
            select.min_stability.map(|m| format!(", min_stability = {m}")).unwrap_or_default()
        );
        SegmentError::Fit(format!("no candidate k has a defined {name} and passes {floors} ({})", tried.join("; ")))
    })
}

/// Per candidate `(k, labels)` (labels on the silhouette sample `zs`), the mean adjusted Rand
/// index between its labels and those that refits of k on seeded bootstrap resamples of `zs`
/// give the same rows. Every candidate sees the same resamples; NaN for a candidate whose refit
/// fails (e.g. a singular mixture component).
fn stabilities(zs: ArrayView2<f64>, candidates: &[(usize, &[usize])], spec: &SegmentationSpec) -> Vec<f64> {
    use rand::Rng;
    let m = zs.nrows();
    let resamples = spec.select.stability_resamples;
    let mut totals: Vec<f64> = candidates.iter().map(|&(k, _)| if m == 0 || k > m { f64::NAN } else { 0.0 }).collect();
    for b in 0..resamples {
        let seed = spec.seed.wrapping_add(STABILITY_STREAM).wrapping_add(b as u64);
        let mut rng = Xoshiro256Plus::seed_from_u64(seed);
        let rows: Vec<usize> = (0..m).map(|_| rng.gen_range(0..m)).collect();
        let boot = select_rows(zs, &rows);
        let tree = (spec.algorithm == Algorithm::Hierarchical).then(|| hierarchical::ward(boot.view()));
        for (total, &(k, labels)) in totals.iter_mut().zip(candidates) {
            if total.is_nan() {
                continue;
            }
            match refit_labels(boot.view(), zs, k, spec, seed, tree.as_ref()) {
                Ok(refit) => *total += adjusted_rand_score(labels, &refit).unwrap_or(f64::NAN),
                Err(e) => {
                    tracing::warn!(k, resample = b, "stability refit failed: {e}");
                    *total = f64::NAN;
                }
            }
        }
    }
    totals.into_iter().map(|t| t / resamples as f64).collect()
}

/// Fits k on `boot` (one start, seeded by `seed`; Ward: a cut of `tree`, the linkage of `boot`)
/// and labels every row of `zs` with the fit.
fn refit_labels(boot: ArrayView2<f64>, zs: ArrayView2<f64>, k: usize, spec: &SegmentationSpec, seed: u64, tree: Option<&Tree>) -> Result<Vec<usize>, SegmentError> {
    match spec.algorithm {
        Algorithm::Hierarchical => {
            let tree = tree.ok_or_else(|| SegmentError::Fit("no linkage for the hierarchical refit".into()))?;
            let means = from_labels(boot, tree.cut(k).into_iter().map(Some).collect(), k, 0).centroids;
            Ok(KMeansModel { centroids: means, inertia: 0.0, n_iter: 0, relocated: 0 }.assign(zs).0.to_vec())
        }
        Algorithm::Gmm => {
            let gmm = fit_gmm(&DatasetBase::from(boot.as_standard_layout().into_owned()), spec, k, seed, 1)?;
            Ok(gmm.predict(&zs.as_standard_layout()).to_vec())
        }
        _ => Ok(kmeans_params(spec, k, seed, 1).fit(&DatasetBase::from(boot))?.assign(zs).0.to_vec()),
    }
}

/// K-means (or mini-batch) parameters of `spec` for `k`, seeded with `seed`, best of `n_init`.
fn kmeans_params(spec: &SegmentationSpec, k: usize, seed: u64, n_init: usize) -> KMeansParams {
    let algorithm = match spec.algorithm {
        Algorithm::MiniBatchKMeans { batch_size } => KMeansAlgorithm::MiniBatch { batch_size },
        _ => KMeansAlgorithm::Lloyd,
    };
    KMeansParams::new(k, seed).n_init(n_init).max_iter(spec.max_iter).tol(spec.tol).algorithm(algorithm)
}

/// A Gaussian mixture of `k` components on `data` (row-major), seeded with `seed`, best of `runs`.
fn fit_gmm(data: &DatasetBase<Array2<f64>, ndarray::Array1<()>>, spec: &SegmentationSpec, k: usize, seed: u64, runs: usize) -> Result<GaussianMixtureModel<f64>, SegmentError> {
    GaussianMixtureModel::params_with_rng(k, Xoshiro256Plus::seed_from_u64(seed))
        .n_runs(runs as u64)
        .max_n_iterations(spec.max_iter)
        .tolerance(spec.tol)
        .fit(data)
        .map_err(|e| SegmentError::Fit(format!("gaussian mixture with k = {k}: {e}")))
}

/// Scores one candidate; DBSCAN noise rows are left out, as they belong to no cluster. The
/// silhouette sample (its rows and their values) is drawn at the first candidate and shared:
/// only DBSCAN leaves rows out, and it is always the only candidate.
fn score(z: ArrayView2<f64>, c: &Clustering, spec: &SegmentationSpec, sample: &mut Option<(Vec<usize>, Array2<f64>)>) -> Scored {
    let labels: Vec<usize> = c.labels.iter().flatten().copied().collect();
    // Only DBSCAN noise makes a subset; otherwise score the matrix as it is, without a copy.
    let subset = (labels.len() < z.nrows()).then(|| {
        let clustered: Vec<usize> = (0..z.nrows()).filter(|&i| c.labels[i].is_some()).collect();
        z.select(Axis(0), &clustered)
    });
    let zc = match &subset {
        Some(s) => s.view(),
        None => z.view(),
    };
    let (rows, _) = sample.get_or_insert_with(|| {
        let rows = sample_rows(labels.len(), spec.silhouette_sample, spec.seed);
        let zs = zc.select(Axis(0), &rows);
        (rows, zs)
    });
    Scored {
        calinski_harabasz: calinski_harabasz_score(zc, &labels).unwrap_or(f64::NAN),
        davies_bouldin: davies_bouldin_score(zc, &labels).unwrap_or(f64::NAN),
        min_segment_share: counts(c.labels.iter().copied(), c.centroids.nrows()).into_iter().min().map_or(f64::NAN, |m| m as f64 / labels.len().max(1) as f64),
        sampled: rows.iter().map(|&i| labels[i]).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::spec::test_spec;

    /// Four separated blobs of `n` rows, row i in blob i % 4, column-major like prepared data.
    fn blobs(n: usize) -> Array2<f64> {
        let centers = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]];
        let mut x = Array2::<f64>::zeros((n, 2).f());
        for i in 0..n {
            for j in 0..2 {
                x[[i, j]] = centers[i % 4][j] + ((i * 31 + j * 17) % 23) as f64 / 10.0;
            }
        }
        x
    }

    fn spec(fit_sample: usize, algorithm: Algorithm) -> SegmentationSpec {
        SegmentationSpec {
            fit_sample,
            algorithm,
            ..test_spec(KChoice::Range { min: 2, max: 6 })
        }
    }

    #[test]
    fn a_fit_sample_of_at_least_the_rows_fits_every_row() {
        let x = blobs(2_000);
        let (all, scores) = fit(x.view(), &spec(2_000, Algorithm::KMeans)).unwrap();
        let (big, big_scores) = fit(x.view(), &spec(1_000_000, Algorithm::KMeans)).unwrap();
        assert_eq!(all.fit_rows, 2_000);
        assert_eq!(all.centroids, big.centroids);
        assert_eq!(all.labels, big.labels);
        assert_eq!(scores, big_scores);
        assert_eq!(all.inertia.to_bits(), big.inertia.to_bits());
    }

    #[test]
    fn above_fit_sample_candidates_fit_the_sample_and_every_row_is_assigned() {
        let x = blobs(3_000);
        let s = spec(400, Algorithm::KMeans);
        let (c, scores) = fit(x.view(), &s).unwrap();
        // The same as fitting the seeded sample alone...
        let rows = sample_rows(3_000, 400, s.seed.wrapping_add(FIT_SAMPLE_STREAM));
        let (on_sample, sample_scores) = fit_rows(select_rows(x.view(), &rows).view(), &s).unwrap();
        assert_eq!(c.fit_rows, 400);
        assert_eq!(c.centroids, on_sample.centroids);
        assert_eq!(scores, sample_scores);
        assert_eq!(scores.iter().find(|r| r.chosen).map(|r| r.k), Some(4));
        // ...and every row is labelled by its nearest centroid, the sampled rows as in the fit.
        assert_eq!(c.labels.len(), 3_000);
        for (i, l) in c.labels.iter().enumerate() {
            let d = |k: usize| (0..2).map(|j| (x[[i, j]] - c.centroids[[k, j]]).powi(2)).sum::<f64>();
            let nearest = (0..c.centroids.nrows()).min_by(|&a, &b| d(a).total_cmp(&d(b))).unwrap();
            assert_eq!(*l, Some(nearest), "row {i}");
        }
        for (t, &r) in rows.iter().enumerate() {
            assert_eq!(c.labels[r], on_sample.labels[t]);
        }
    }

    #[test]
    fn above_fit_sample_a_gaussian_mixture_labels_every_row() {
        let x = blobs(2_000);
        let mut s = spec(300, Algorithm::Gmm);
        s.k = KChoice::Fixed(4);
        let (c, _) = fit(x.view(), &s).unwrap();
        assert_eq!((c.fit_rows, c.labels.len()), (300, 2_000));
        // Each blob is one component.
        for i in 0..2_000 {
            assert_eq!(c.labels[i], c.labels[i % 4], "row {i}");
        }
    }

    #[test]
    fn a_sampled_fit_is_the_same_whatever_the_thread_count() {
        let x = blobs(5_000);
        let s = spec(700, Algorithm::KMeans);
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| fit(x.view(), &s).unwrap())
        };
        let (one, one_scores) = on(1);
        let (four, four_scores) = on(4);
        assert_eq!(one.centroids, four.centroids);
        assert_eq!(one.labels, four.labels);
        assert_eq!(one_scores, four_scores);
    }

    fn row(k: usize, silhouette: f64, stability: f64, min_segment_share: f64, davies_bouldin: f64) -> KScore {
        KScore { k, inertia: 1.0, silhouette, calinski_harabasz: silhouette * 100.0, davies_bouldin, stability, min_segment_share, chosen: false }
    }

    #[test]
    fn each_select_rule_picks_its_best_among_the_candidates_that_pass_the_floors() {
        let rows = [row(2, 0.50, 0.70, 0.40, 0.9), row(3, 0.45, 0.95, 0.20, 0.7), row(4, 0.50, 0.80, 0.03, 0.8), row(5, 0.30, 0.95, 0.10, 1.2)];
        let pick = |rule, min_stability, min_segment_share| {
            choose(&rows, &KSelect { rule, min_stability, min_segment_share, stability_resamples: 10 }).map(|i| rows[i].k)
        };
        // A tie goes to the smaller k.
        assert_eq!(pick(SelectRule::Silhouette, None, 0.0).unwrap(), 2);
        assert_eq!(pick(SelectRule::Stability, None, 0.0).unwrap(), 3);
        assert_eq!(pick(SelectRule::CalinskiHarabasz, None, 0.0).unwrap(), 2);
        assert_eq!(pick(SelectRule::DaviesBouldin, None, 0.0).unwrap(), 3);
        // Silhouette with a stability floor; a segment-share floor.
        assert_eq!(pick(SelectRule::Silhouette, Some(0.75), 0.0).unwrap(), 4);
        assert_eq!(pick(SelectRule::Silhouette, Some(0.75), 0.05).unwrap(), 3);
        assert_eq!(pick(SelectRule::DaviesBouldin, None, 0.25).unwrap(), 2);
        let err = pick(SelectRule::Silhouette, Some(0.99), 0.0).unwrap_err().to_string();
        assert!(err.contains("min_stability = 0.99") && err.contains("k = 3: silhouette 0.450, stability 0.950, smallest segment 20.0 %"), "{err}");
    }

    #[test]
    fn stability_is_highest_at_the_true_k_and_reproducible_for_a_seed() {
        let x = blobs(2_000);
        let s = spec(1_000_000, Algorithm::KMeans);
        let (_, scores) = fit(x.view(), &s).unwrap();
        let at = |k: usize| scores.iter().find(|r| r.k == k).unwrap().stability;
        assert!(at(4) > 0.99, "{scores:?}");
        for k in [2, 3, 5, 6] {
            assert!(at(k) < at(4), "k = {k}: {scores:?}");
        }
        let (_, again) = fit(x.view(), &s).unwrap();
        assert_eq!(scores, again);
        // Each blob is a quarter of the rows.
        assert!((scores.iter().find(|r| r.k == 4).unwrap().min_segment_share - 0.25).abs() < 1e-12);
        // Choosing by stability finds the four blobs too.
        let by_stability = SegmentationSpec { select: KSelect { rule: SelectRule::Stability, ..KSelect::default() }, ..s };
        assert_eq!(fit(x.view(), &by_stability).unwrap().0.centroids.nrows(), 4);
    }
}
