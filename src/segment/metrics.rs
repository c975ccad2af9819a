//! Clustering quality metrics: the mean silhouette (Rousseeuw 1987), the Calinski–Harabasz
//! variance ratio (Caliński & Harabasz 1974) and the Davies–Bouldin index (Davies & Bouldin 1979);
//! and the adjusted Rand index (Hubert & Arabie 1985) between two labelings.
//!
//! The definitions follow scikit-learn 1.x (`sklearn.metrics.silhouette_score` with the
//! euclidean metric, `calinski_harabasz_score`, `davies_bouldin_score`) including its edge
//! cases: labels are re-encoded to the distinct values present, 2 <= labels <= rows − 1 is
//! required, singleton clusters score 0, and the degenerate cases return 1.0 / 0.0 as there.
//! Distances are computed directly as sqrt(Σ (a − b)²), not by scikit-learn's
//! ‖a‖² − 2a·b + ‖b‖² expansion, so results agree to rounding (within 1e-12 relative on the data tried).
//!
//! The silhouette is O(n²·p). [`silhouette_many`] scores several labelings of the same rows
//! in one pass over the pairs, in parallel over rows, with a result that does not depend on
//! the number of threads.

use std::fmt;

use ndarray::ArrayView2;
use rand_xoshiro::Xoshiro256Plus;
use rand_xoshiro::rand_core::SeedableRng;
use rayon::prelude::*;

const SILHOUETTE: &str = "silhouette";
const CALINSKI: &str = "Calinski-Harabasz";
const DAVIES: &str = "Davies-Bouldin";
const RAND: &str = "adjusted Rand index";

/// Why a metric cannot be computed.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricError {
    /// `labels` does not have one entry per row of `x`.
    LengthMismatch { metric: &'static str, rows: usize, labels: usize },
    /// The number of distinct labels is outside `2..=rows - 1` (the metrics are undefined there).
    LabelCount { metric: &'static str, labels: usize, rows: usize },
    /// `x` has no columns.
    NoFeatures { metric: &'static str },
    /// `x[row, col]` is NaN or infinite.
    NonFinite { metric: &'static str, row: usize, col: usize },
    /// Labeling `index` of a [`silhouette_many`] call is invalid.
    Labeling { index: usize, error: Box<MetricError> },
}

impl fmt::Display for MetricError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricError::LengthMismatch { metric, rows, labels } => {
                write!(f, "{metric}: x has {rows} rows but there are {labels} labels")
            }
            MetricError::LabelCount { metric, labels, rows } if *rows < 3 => write!(
                f,
                "{metric} needs 2 to n - 1 distinct labels, impossible with {rows} rows (found {labels} labels)"
            ),
            MetricError::LabelCount { metric, labels, rows } => {
                write!(f, "{metric} needs 2 to {} distinct labels, found {labels}", rows - 1)
            }
            MetricError::NoFeatures { metric } => write!(f, "{metric}: x has no columns"),
            MetricError::NonFinite { metric, row, col } => {
                write!(f, "{metric}: x[{row}, {col}] is not finite")
            }
            MetricError::Labeling { index, error } => write!(f, "labeling {index}: {error}"),
        }
    }
}

impl std::error::Error for MetricError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MetricError::Labeling { error, .. } => Some(error.as_ref()),
            _ => None,
        }
    }
}

/// Labels re-encoded to `0..k` in ascending order of the original values (scikit-learn's
/// `LabelEncoder`), so absent label values never form empty clusters.
struct Encoded {
    /// Dense cluster of each row.
    dense: Vec<usize>,
    /// Rows per dense cluster (all >= 1).
    counts: Vec<usize>,
}

impl Encoded {
    fn k(&self) -> usize {
        self.counts.len()
    }
}

/// Checks `labels` against `rows` and the 2 <= k <= rows − 1 rule, and encodes them.
fn encode(metric: &'static str, rows: usize, labels: &[usize]) -> Result<Encoded, MetricError> {
    if labels.len() != rows {
        return Err(MetricError::LengthMismatch { metric, rows, labels: labels.len() });
    }
    // Sorting the distinct values avoids allocating by the largest label value.
    let mut values = labels.to_vec();
    values.sort_unstable();
    values.dedup();
    let k = values.len();
    if k < 2 || k >= rows {
        return Err(MetricError::LabelCount { metric, labels: k, rows });
    }
    let mut counts = vec![0usize; k];
    let mut dense = Vec::with_capacity(rows);
    for &l in labels {
        // Every label is in `values`, so the search always succeeds.
        let c = values.binary_search(&l).unwrap_or_default();
        counts[c] += 1;
        dense.push(c);
    }
    Ok(Encoded { dense, counts })
}

/// Rejects inputs scikit-learn's `check_X_y` rejects: no columns, NaN or infinity.
fn check_x(metric: &'static str, x: ArrayView2<f64>) -> Result<(), MetricError> {
    if x.ncols() == 0 {
        return Err(MetricError::NoFeatures { metric });
    }
    match x.indexed_iter().find(|(_, v)| !v.is_finite()) {
        Some(((row, col), _)) => Err(MetricError::NonFinite { metric, row, col }),
        None => Ok(()),
    }
}

/// numpy's `nan_to_num`: NaN → 0, ±inf → ±f64::MAX.
fn nan_to_num(v: f64) -> f64 {
    if v.is_nan() {
        0.0
    } else if v.is_infinite() {
        f64::MAX.copysign(v)
    } else {
        v
    }
}

/// Rows `i` processed together as SIMD lanes: their sums for one `j` are independent, which
/// also hides the latency of accumulating in `j` order.
const LANES: usize = 8;
/// Rows `j` per block: the block's coordinates and distances stay in L1 while every lane group uses them.
const J_BLOCK: usize = 256;
/// Rows `i` per parallel task (a multiple of `LANES`).
const I_BLOCK: usize = 64;

/// Exact mean silhouette of several labelings of the SAME rows, computing each pairwise distance once
/// (the distances do not depend on the labels, so choosing k over many candidates costs one O(n²·p) pass).
/// `labelings[t][i]` is row i's cluster in labeling t; labels are 0..k_t-1 but some may be absent.
///
/// Returns one score per labeling, each equal to scikit-learn's `silhouette_score(x, labelings[t])`.
/// The result is bit-for-bit the same for any rayon thread count: every per-row sum runs over
/// `j` in order and the mean runs over rows in order. One invalid labeling fails the whole call
/// with [`MetricError::Labeling`] naming it.
pub fn silhouette_many(x: ArrayView2<f64>, labelings: &[&[usize]]) -> Result<Vec<f64>, MetricError> {
    let (n, p) = x.dim();
    check_x(SILHOUETTE, x)?;
    let encoded = labelings
        .iter()
        .enumerate()
        .map(|(index, labels)| {
            encode(SILHOUETTE, n, labels).map_err(|e| MetricError::Labeling { index, error: Box::new(e) })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if encoded.is_empty() {
        return Ok(Vec::new());
    }
    let t_count = encoded.len();

    // Per-row accumulators of all labelings side by side: cluster c of labeling t is at offset[t] + c.
    let offsets: Vec<usize> = encoded
        .iter()
        .scan(0, |acc, e| {
            let start = *acc;
            *acc += e.k();
            Some(start)
        })
        .collect();
    let width: usize = encoded.iter().map(Encoded::k).sum();
    // slot[j * t_count + t] = accumulator that distance d(i, j) feeds for labeling t.
    let mut slot = Vec::with_capacity(n * t_count);
    for j in 0..n {
        for (e, &off) in encoded.iter().zip(&offsets) {
            slot.push(off + e.dense[j]);
        }
    }
    // Contiguous row-major copy: `x` may be a strided view.
    let data: Vec<f64> = x.rows().into_iter().flat_map(|r| r.to_vec()).collect();

    // s(i) of every labeling, per task, row-major: (i - i0) * t_count + t.
    let starts: Vec<usize> = (0..n).step_by(I_BLOCK).collect();
    let per_block: Vec<Vec<f64>> = starts
        .par_iter()
        .map(|&i0| {
            let i1 = (i0 + I_BLOCK).min(n);
            let sums = cluster_sums(&data, p, i0, i1, &slot, t_count, width);
            let mut row_sums = vec![0.0f64; width];
            let mut s = Vec::with_capacity((i1 - i0) * t_count);
            for i in i0..i1 {
                let (g, lane) = ((i - i0) / LANES, (i - i0) % LANES);
                for (r, acc) in row_sums.iter_mut().zip(&sums[g * width..(g + 1) * width]) {
                    *r = acc[lane];
                }
                for (e, &off) in encoded.iter().zip(&offsets) {
                    s.push(silhouette_of_row(&row_sums[off..off + e.k()], &e.counts, e.dense[i]));
                }
            }
            s
        })
        .collect();

    let mut totals = vec![0.0f64; t_count];
    for block in &per_block {
        for row in block.chunks_exact(t_count) {
            for (tot, &s) in totals.iter_mut().zip(row) {
                *tot += s;
            }
        }
    }
    Ok(totals.into_iter().map(|tot| tot / n as f64).collect())
}

/// For rows `i0..i1` of `data` (`n × p`, row-major), the sum of distances to all rows per
/// accumulator slot, each sum taken over `j` in ascending order. Rows are grouped by `LANES`:
/// entry `g * width + k` holds slot `k` of rows `i0 + g * LANES + lane` (padding lanes unused).
fn cluster_sums(
    data: &[f64],
    p: usize,
    i0: usize,
    i1: usize,
    slot: &[usize],
    t_count: usize,
    width: usize,
) -> Vec<[f64; LANES]> {
    let n = data.len() / p;
    let groups = (i1 - i0).div_ceil(LANES);
    // Coordinates of the group's rows, transposed: xt[g * p + c][lane].
    let mut xt = vec![[0.0f64; LANES]; groups * p];
    for (li, row) in data[i0 * p..i1 * p].chunks_exact(p).enumerate() {
        let (g, lane) = (li / LANES, li % LANES);
        for (c, &v) in row.iter().enumerate() {
            xt[g * p + c][lane] = v;
        }
    }
    let mut sums = vec![[0.0f64; LANES]; groups * width];
    let mut dist = vec![[0.0f64; LANES]; J_BLOCK];
    for j0 in (0..n).step_by(J_BLOCK) {
        let j1 = (j0 + J_BLOCK).min(n);
        let xj = &data[j0 * p..j1 * p];
        let slots = &slot[j0 * t_count..j1 * t_count];
        for (xg, acc) in xt.chunks_exact(p).zip(sums.chunks_exact_mut(width)) {
            for (d, row) in dist.iter_mut().zip(xj.chunks_exact(p)) {
                // Σ_c (x_jc − x_ic)² in column order, then one sqrt: a plain per-pair loop's rounding.
                let mut sq = [0.0f64; LANES];
                for (&v, xc) in row.iter().zip(xg) {
                    for l in 0..LANES {
                        let e = v - xc[l];
                        sq[l] += e * e;
                    }
                }
                for l in 0..LANES {
                    d[l] = sq[l].sqrt();
                }
            }
            for (d, s) in dist.iter().zip(slots.chunks_exact(t_count)) {
                for &k in s {
                    let a = &mut acc[k];
                    for l in 0..LANES {
                        a[l] += d[l];
                    }
                }
            }
        }
    }
    sums
}

/// s(i) from the row's per-cluster distance sums, as scikit-learn's `silhouette_samples`.
fn silhouette_of_row(sums: &[f64], counts: &[usize], own: usize) -> f64 {
    // a = 0/0 for a singleton cluster; scikit-learn's nan_to_num turns that s(i) into 0.
    let a = sums[own] / (counts[own] - 1) as f64;
    let b = sums
        .iter()
        .zip(counts)
        .enumerate()
        .filter(|&(c, _)| c != own)
        .map(|(_, (&s, &m))| s / m as f64)
        .fold(f64::INFINITY, f64::min);
    // np.maximum propagates NaN (a of a singleton); f64::max would not.
    let m = if a.is_nan() { a } else { a.max(b) };
    nan_to_num((b - a) / m)
}

/// Exact silhouette of one labeling (calls silhouette_many).
// Public API; the crate's own k selection calls `silhouette_many`, so keep a private `mod` warning-free.
#[allow(dead_code)]
pub fn silhouette_score(x: ArrayView2<f64>, labels: &[usize]) -> Result<f64, MetricError> {
    match silhouette_many(x, &[labels]) {
        // One labeling in, one score out; the fallback is unreachable.
        Ok(v) => v.first().copied().ok_or(MetricError::LabelCount { metric: SILHOUETTE, labels: 0, rows: 0 }),
        // With a single labeling, "labeling 0:" adds nothing.
        Err(MetricError::Labeling { error, .. }) => Err(*error),
        Err(e) => Err(e),
    }
}

/// Row indices of a seeded random sample of `sample` rows out of `n` (sorted ascending), or all rows when n <= sample.
pub fn sample_rows(n: usize, sample: usize, seed: u64) -> Vec<usize> {
    if n <= sample {
        return (0..n).collect();
    }
    let mut rng = Xoshiro256Plus::seed_from_u64(seed);
    let mut idx = rand::seq::index::sample(&mut rng, n, sample).into_vec();
    idx.sort_unstable();
    idx
}

/// Per-cluster means (k × p, row-major), summing rows in order as numpy's `mean(axis=0)` does.
fn centroids(x: ArrayView2<f64>, enc: &Encoded) -> Vec<f64> {
    let p = x.ncols();
    let mut sums = vec![0.0f64; enc.k() * p];
    for (row, &c) in x.rows().into_iter().zip(&enc.dense) {
        for (s, &v) in sums[c * p..(c + 1) * p].iter_mut().zip(row) {
            *s += v;
        }
    }
    for (c, &m) in enc.counts.iter().enumerate() {
        for s in &mut sums[c * p..(c + 1) * p] {
            *s /= m as f64;
        }
    }
    sums
}

fn euclidean(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(u, v)| (u - v) * (u - v)).sum::<f64>().sqrt()
}

/// Calinski–Harabasz score: between-cluster over within-cluster dispersion, each per degree of
/// freedom; 1.0 when each cluster's points coincide (zero within dispersion), as in scikit-learn.
pub fn calinski_harabasz_score(x: ArrayView2<f64>, labels: &[usize]) -> Result<f64, MetricError> {
    let (n, p) = x.dim();
    check_x(CALINSKI, x)?;
    let enc = encode(CALINSKI, n, labels)?;
    let k = enc.k();
    let mut mean = vec![0.0f64; p];
    for row in x.rows() {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    for m in &mut mean {
        *m /= n as f64;
    }
    let cent = centroids(x, &enc);
    // Within-cluster sums kept per cluster, then added in cluster order like scikit-learn's loop.
    let mut intra = vec![0.0f64; k];
    for (row, &c) in x.rows().into_iter().zip(&enc.dense) {
        let ck = &cent[c * p..(c + 1) * p];
        intra[c] += row.iter().zip(ck).map(|(v, m)| (v - m) * (v - m)).sum::<f64>();
    }
    let (mut extra_disp, mut intra_disp) = (0.0f64, 0.0f64);
    for c in 0..k {
        let ck = &cent[c * p..(c + 1) * p];
        let between: f64 = ck.iter().zip(&mean).map(|(a, b)| (a - b) * (a - b)).sum();
        extra_disp += enc.counts[c] as f64 * between;
        intra_disp += intra[c];
    }
    if intra_disp == 0.0 {
        return Ok(1.0);
    }
    Ok(extra_disp * (n - k) as f64 / (intra_disp * (k as f64 - 1.0)))
}

/// Davies–Bouldin index: mean over clusters of the worst (s_i + s_j) / d(c_i, c_j), where s is
/// the mean distance to the centroid. As in scikit-learn it is 0.0 when all s or all centroid
/// distances are within 1e-8 of 0, and coinciding centroids (distance exactly 0) are ignored.
pub fn davies_bouldin_score(x: ArrayView2<f64>, labels: &[usize]) -> Result<f64, MetricError> {
    let (n, p) = x.dim();
    check_x(DAVIES, x)?;
    let enc = encode(DAVIES, n, labels)?;
    let k = enc.k();
    let cent = centroids(x, &enc);
    let mut intra = vec![0.0f64; k];
    for (row, &c) in x.rows().into_iter().zip(&enc.dense) {
        let ck = &cent[c * p..(c + 1) * p];
        intra[c] += row.iter().zip(ck).map(|(u, v)| (u - v) * (u - v)).sum::<f64>().sqrt();
    }
    for (s, &m) in intra.iter_mut().zip(&enc.counts) {
        *s /= m as f64;
    }
    let mut dist = vec![0.0f64; k * k];
    for a in 0..k {
        for b in 0..k {
            if a != b {
                dist[a * k + b] = euclidean(&cent[a * p..(a + 1) * p], &cent[b * p..(b + 1) * p]);
            }
        }
    }
    // np.isclose(v, 0): |v| <= 1e-8 (atol; rtol × 0 adds nothing).
    let near_zero = |v: &f64| v.abs() <= 1e-8;
    if intra.iter().all(near_zero) || dist.iter().all(near_zero) {
        return Ok(0.0);
    }
    let mut total = 0.0f64;
    for a in 0..k {
        let worst = (0..k)
            .map(|b| {
                let d = dist[a * k + b];
                (intra[a] + intra[b]) / if d == 0.0 { f64::INFINITY } else { d }
            })
            .fold(f64::NEG_INFINITY, f64::max);
        total += worst;
    }
    Ok(total / k as f64)
}

/// Adjusted Rand index of two labelings of the same rows, as scikit-learn's
/// `adjusted_rand_score` computes it from the pair confusion matrix: 1.0 for the same partition
/// (whatever the label values, and when neither labeling puts two rows apart that the other
/// puts together), about 0 for independent ones, negative below chance. Pair counts are exact
/// integers, as in Python, until the final division.
pub fn adjusted_rand_score(a: &[usize], b: &[usize]) -> Result<f64, MetricError> {
    if a.len() != b.len() {
        return Err(MetricError::LengthMismatch { metric: RAND, rows: a.len(), labels: b.len() });
    }
    let mut joint: std::collections::HashMap<(usize, usize), i128> = std::collections::HashMap::new();
    let (mut rows_a, mut rows_b) = (std::collections::HashMap::new(), std::collections::HashMap::new());
    for (&x, &y) in a.iter().zip(b) {
        *joint.entry((x, y)).or_insert(0) += 1;
        *rows_a.entry(x).or_insert(0i128) += 1;
        *rows_b.entry(y).or_insert(0i128) += 1;
    }
    let squares = |m: &mut dyn Iterator<Item = i128>| m.map(|c| c * c).sum::<i128>();
    let n = a.len() as i128;
    let both = squares(&mut joint.values().copied());
    // Ordered pairs of distinct rows: together in both (tp), only in b (fp), only in a (fn).
    let tp = both - n;
    let fp = squares(&mut rows_b.values().copied()) - both;
    let fn_ = squares(&mut rows_a.values().copied()) - both;
    let tn = n * n - fp - fn_ - both;
    if fp == 0 && fn_ == 0 {
        return Ok(1.0);
    }
    Ok(2.0 * (tp * tn - fn_ * fp) as f64 / ((tp + fn_) * (fn_ + tn) + (tp + fp) * (fp + tn)) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, array};
    use rand::Rng;

    fn rel_close(got: f64, want: f64, tol: f64) -> bool {
        (got - want).abs() <= tol * want.abs().max(f64::MIN_POSITIVE)
    }

    /// Two tight pairs on a line: {0, 1} and {10, 11}.
    fn two_pairs() -> (Array2<f64>, Vec<usize>) {
        (array![[0.0], [1.0], [10.0], [11.0]], vec![0, 0, 1, 1])
    }

    #[test]
    fn silhouette_of_two_tight_pairs_is_hand_computed() {
        let (x, labels) = two_pairs();
        // a = 1 for every point. b(0) = (10 + 11) / 2, b(1) = (9 + 10) / 2, and symmetrically
        // b(2) = b(1), b(3) = b(0); s = (b − 1) / b.
        let s0 = (10.5 - 1.0) / 10.5;
        let s1 = (9.5 - 1.0) / 9.5;
        let expected = (s0 + s1 + s1 + s0) / 4.0;
        let got = silhouette_score(x.view(), &labels).unwrap();
        assert!(rel_close(got, expected, 1e-15), "{got} vs {expected}");
    }

    #[test]
    fn silhouette_of_a_singleton_cluster_point_is_zero() {
        // {0, 1} and {10}: s(0) = (10 − 1) / 10, s(1) = (9 − 1) / 9, s(2) = 0 (singleton).
        let x = array![[0.0], [1.0], [10.0]];
        let expected = (0.9 + 8.0 / 9.0 + 0.0) / 3.0;
        let got = silhouette_score(x.view(), &[0, 0, 1]).unwrap();
        assert!(rel_close(got, expected, 1e-15), "{got} vs {expected}");
    }

    #[test]
    fn silhouette_of_coinciding_points_is_zero_not_nan() {
        // a = b = 0 gives 0/0, which scikit-learn's nan_to_num makes 0.
        let x = array![[3.0, 3.0], [3.0, 3.0], [3.0, 3.0], [3.0, 3.0]];
        assert_eq!(silhouette_score(x.view(), &[0, 0, 1, 1]).unwrap(), 0.0);
    }

    #[test]
    fn calinski_harabasz_of_two_tight_pairs_is_hand_computed() {
        let (x, labels) = two_pairs();
        // Grand mean 5.5, cluster means 0.5 and 10.5: extra = 2·5² + 2·5² = 100;
        // intra = 4 · 0.5² = 1; score = 100 · (n − k) / (1 · (k − 1)) = 100 · 2 / 1.
        let got = calinski_harabasz_score(x.view(), &labels).unwrap();
        assert!(rel_close(got, 200.0, 1e-15), "{got}");
    }

    #[test]
    fn calinski_harabasz_is_one_without_within_cluster_spread() {
        let x = array![[0.0], [0.0], [5.0], [5.0]];
        assert_eq!(calinski_harabasz_score(x.view(), &[0, 0, 1, 1]).unwrap(), 1.0);
    }

    #[test]
    fn davies_bouldin_of_two_tight_pairs_is_hand_computed() {
        let (x, labels) = two_pairs();
        // Centroids 0.5 and 10.5, mean distance to centroid 0.5 in both, centroid distance 10:
        // each cluster's worst ratio is (0.5 + 0.5) / 10 = 0.1, and so is their mean.
        let got = davies_bouldin_score(x.view(), &labels).unwrap();
        assert!(rel_close(got, 0.1, 1e-15), "{got}");
    }

    #[test]
    fn davies_bouldin_is_zero_without_within_cluster_spread() {
        let x = array![[0.0], [0.0], [5.0], [5.0]];
        assert_eq!(davies_bouldin_score(x.view(), &[0, 0, 1, 1]).unwrap(), 0.0);
    }

    #[test]
    fn davies_bouldin_ignores_coinciding_centroids() {
        // A = {−1, 1} and B = {−2, 2} share centroid 0; C = {10, 10}. Spreads: A 1, B 2, C 0.
        // d(A, B) = 0 is replaced by inf (ratio 0); d(A, C) = d(B, C) = 10.
        // Worst ratios: A (1 + 0) / 10 = 0.1, B (2 + 0) / 10 = 0.2, C max(0.1, 0.2) = 0.2.
        let x = array![[-1.0], [1.0], [-2.0], [2.0], [10.0], [10.0]];
        let got = davies_bouldin_score(x.view(), &[0, 0, 1, 1, 2, 2]).unwrap();
        assert!(rel_close(got, 0.5 / 3.0, 1e-15), "{got}");
    }

    /// 300 × 3 rows, reproducible exactly in Python (every step is one correctly rounded operation).
    fn sklearn_dataset() -> Array2<f64> {
        const A: [usize; 3] = [37, 53, 71];
        const B: [usize; 3] = [11, 5, 23];
        const M: [usize; 3] = [101, 103, 107];
        const C: [[f64; 3]; 4] = [[0.0, 0.0, 0.0], [6.0, 1.0, -2.0], [-3.0, 5.0, 4.0], [4.0, -4.0, 7.0]];
        Array2::from_shape_fn((300, 3), |(i, j)| ((i * A[j] + B[j]) % M[j]) as f64 / 20.0 + C[i % 4][j])
    }

    fn sklearn_labelings() -> [Vec<usize>; 3] {
        [
            (0..300).map(|i| i % 4).collect(),
            (0..300).map(|i| if i == 0 { 4 } else { i % 4 }).collect(),
            (0..300).map(|i| [0, 2, 5][i % 3]).collect(),
        ]
    }

    // From scikit-learn 1.9.1 (numpy 2.4.6, Python 3.11.7), printed with "%.17g":
    //
    // import numpy as np
    // from sklearn.metrics import silhouette_score, calinski_harabasz_score, davies_bouldin_score
    // A, B, M = [37, 53, 71], [11, 5, 23], [101, 103, 107]
    // C = [[0.0, 0.0, 0.0], [6.0, 1.0, -2.0], [-3.0, 5.0, 4.0], [4.0, -4.0, 7.0]]
    // n = 300
    // X = np.array([[((i * A[j] + B[j]) % M[j]) / 20.0 + C[i % 4][j] for j in range(3)] for i in range(n)])
    // labelings = {
    //     "FOUR": [i % 4 for i in range(n)],
    //     "SINGLETON": [4 if i == 0 else i % 4 for i in range(n)],
    //     "SKIPPED": [[0, 2, 5][i % 3] for i in range(n)],
    // }
    // for name, l in labelings.items():
    //     for f in (silhouette_score, calinski_harabasz_score, davies_bouldin_score):
    //         print(name, f.__name__, "%.17g" % f(X, np.array(l)))
    //
    // Rows: labelings FOUR, SINGLETON, SKIPPED; columns: silhouette, Calinski-Harabasz, Davies-Bouldin.
    #[allow(clippy::excessive_precision)] // kept exactly as Python printed them
    const SKLEARN: [[f64; 3]; 3] = [
        [0.52847642126691918, 506.35690184889393, 0.6958370612021576],
        [0.43080379990542023, 380.89166051284866, 0.70827989248565204],
        [-0.014241671407649127, 0.038633570834539631, 94.70320712759478],
    ];

    #[test]
    fn metrics_match_scikit_learn_on_a_fixed_dataset() {
        let x = sklearn_dataset();
        for (labels, want) in sklearn_labelings().iter().zip(SKLEARN) {
            let got = [
                silhouette_score(x.view(), labels).unwrap(),
                calinski_harabasz_score(x.view(), labels).unwrap(),
                davies_bouldin_score(x.view(), labels).unwrap(),
            ];
            for (g, w) in got.iter().zip(want) {
                assert!(rel_close(*g, w, 1e-9), "{g} vs scikit-learn {w}");
            }
        }
    }

    #[test]
    fn silhouette_many_equals_each_silhouette_score_exactly() {
        let x = sklearn_dataset();
        let labelings = sklearn_labelings();
        let refs: Vec<&[usize]> = labelings.iter().map(Vec::as_slice).collect();
        let many = silhouette_many(x.view(), &refs).unwrap();
        for (m, labels) in many.iter().zip(&refs) {
            assert_eq!(m.to_bits(), silhouette_score(x.view(), labels).unwrap().to_bits());
        }
    }

    #[test]
    fn labels_that_skip_values_score_like_their_dense_encoding() {
        let x = sklearn_dataset();
        let sparse: Vec<usize> = (0..300).map(|i| [0, 2, usize::MAX][i % 3]).collect();
        let dense: Vec<usize> = (0..300).map(|i| i % 3).collect();
        for f in [silhouette_score, calinski_harabasz_score, davies_bouldin_score] {
            assert_eq!(f(x.view(), &sparse).unwrap().to_bits(), f(x.view(), &dense).unwrap().to_bits());
        }
    }

    fn random_case(n: usize, p: usize, ks: &[usize], seed: u64) -> (Array2<f64>, Vec<Vec<usize>>) {
        let mut rng = Xoshiro256Plus::seed_from_u64(seed);
        let x = Array2::from_shape_fn((n, p), |_| rng.r#gen::<f64>() * 4.0 - 1.0);
        // Label values up to 2k leave some absent; every labeling keeps at least two present.
        let labelings = ks.iter().map(|&k| (0..n).map(|i| if i < 2 { i } else { rng.gen_range(0..2 * k) }).collect());
        (x, labelings.collect())
    }

    /// The definition written as a plain double loop, summing over j in order like the kernel.
    fn naive_silhouette(x: &Array2<f64>, labels: &[usize]) -> f64 {
        let enc = encode(SILHOUETTE, x.nrows(), labels).unwrap();
        let mut total = 0.0;
        for i in 0..x.nrows() {
            let mut sums = vec![0.0; enc.k()];
            for j in 0..x.nrows() {
                let sq: f64 = (0..x.ncols()).map(|c| (x[[j, c]] - x[[i, c]]).powi(2)).sum();
                sums[enc.dense[j]] += sq.sqrt();
            }
            total += silhouette_of_row(&sums, &enc.counts, enc.dense[i]);
        }
        total / x.nrows() as f64
    }

    #[test]
    fn silhouette_kernel_matches_a_naive_double_loop_bit_for_bit() {
        // 531 rows: partial lane groups, tasks and j blocks.
        let (x, labelings) = random_case(531, 4, &[2, 3, 7], 11);
        let refs: Vec<&[usize]> = labelings.iter().map(Vec::as_slice).collect();
        let many = silhouette_many(x.view(), &refs).unwrap();
        for (m, labels) in many.iter().zip(&refs) {
            assert_eq!(m.to_bits(), naive_silhouette(&x, labels).to_bits());
        }
    }

    #[test]
    fn silhouette_many_is_identical_for_1_and_4_threads() {
        let (x, labelings) = random_case(2_003, 6, &[2, 3, 4, 5, 6, 7, 8], 5);
        let refs: Vec<&[usize]> = labelings.iter().map(Vec::as_slice).collect();
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| silhouette_many(x.view(), &refs)).unwrap()
        };
        let (one, four) = (run(1), run(4));
        assert_eq!(one.len(), 7);
        let bits = |v: &[f64]| v.iter().map(|s| s.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&one), bits(&four));
    }

    #[test]
    fn silhouette_many_accepts_a_strided_view() {
        let x = sklearn_dataset();
        let labels = &sklearn_labelings()[0];
        let t = x.t().to_owned();
        let strided = t.t();
        assert_eq!(
            silhouette_score(strided, labels).unwrap().to_bits(),
            silhouette_score(x.view(), labels).unwrap().to_bits()
        );
    }

    type Metric = fn(ArrayView2<f64>, &[usize]) -> Result<f64, MetricError>;
    const METRICS: [(Metric, &str); 3] =
        [(silhouette_score, SILHOUETTE), (calinski_harabasz_score, CALINSKI), (davies_bouldin_score, DAVIES)];

    #[test]
    fn one_distinct_label_is_an_error() {
        let (x, _) = two_pairs();
        for (f, metric) in METRICS {
            assert_eq!(f(x.view(), &[3, 3, 3, 3]), Err(MetricError::LabelCount { metric, labels: 1, rows: 4 }));
        }
        let e = silhouette_score(x.view(), &[3, 3, 3, 3]).unwrap_err();
        assert_eq!(e.to_string(), "silhouette needs 2 to 3 distinct labels, found 1");
    }

    #[test]
    fn as_many_labels_as_rows_is_an_error() {
        let (x, _) = two_pairs();
        for (f, metric) in METRICS {
            assert_eq!(f(x.view(), &[0, 1, 2, 3]), Err(MetricError::LabelCount { metric, labels: 4, rows: 4 }));
        }
        let x = array![[0.0], [1.0]];
        let e = davies_bouldin_score(x.view(), &[0, 1]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Davies-Bouldin needs 2 to n - 1 distinct labels, impossible with 2 rows (found 2 labels)"
        );
    }

    #[test]
    fn length_mismatch_is_an_error() {
        let (x, _) = two_pairs();
        for (f, metric) in METRICS {
            assert_eq!(f(x.view(), &[0, 0, 1]), Err(MetricError::LengthMismatch { metric, rows: 4, labels: 3 }));
        }
        let e = calinski_harabasz_score(x.view(), &[0, 0, 1]).unwrap_err();
        assert_eq!(e.to_string(), "Calinski-Harabasz: x has 4 rows but there are 3 labels");
    }

    #[test]
    fn empty_x_is_an_error() {
        let x = Array2::<f64>::zeros((0, 2));
        for (f, metric) in METRICS {
            assert_eq!(f(x.view(), &[]), Err(MetricError::LabelCount { metric, labels: 0, rows: 0 }));
        }
        let x = Array2::<f64>::zeros((4, 0));
        for (f, metric) in METRICS {
            assert_eq!(f(x.view(), &[0, 0, 1, 1]), Err(MetricError::NoFeatures { metric }));
        }
    }

    #[test]
    fn non_finite_x_is_an_error() {
        let mut x = array![[0.0, 1.0], [1.0, 1.0], [10.0, 1.0], [11.0, 1.0]];
        x[[2, 1]] = f64::NAN;
        for (f, metric) in METRICS {
            assert_eq!(f(x.view(), &[0, 0, 1, 1]), Err(MetricError::NonFinite { metric, row: 2, col: 1 }));
        }
    }

    #[test]
    fn silhouette_many_names_the_bad_labeling() {
        let (x, good) = two_pairs();
        let e = silhouette_many(x.view(), &[&good, &[0, 0, 0, 0]]).unwrap_err();
        let inner = MetricError::LabelCount { metric: SILHOUETTE, labels: 1, rows: 4 };
        assert_eq!(e, MetricError::Labeling { index: 1, error: Box::new(inner) });
        assert_eq!(e.to_string(), "labeling 1: silhouette needs 2 to 3 distinct labels, found 1");
        assert_eq!(silhouette_many(x.view(), &[]), Ok(vec![]));
    }

    #[test]
    fn sample_rows_is_sorted_seeded_and_all_rows_when_small() {
        assert_eq!(sample_rows(5, 5, 1), vec![0, 1, 2, 3, 4]);
        assert_eq!(sample_rows(3, 10, 1), vec![0, 1, 2]);
        let a = sample_rows(10_000, 500, 42);
        assert_eq!(a.len(), 500);
        assert!(a.windows(2).all(|w| w[0] < w[1]) && a[499] < 10_000);
        assert_eq!(a, sample_rows(10_000, 500, 42));
        assert_ne!(a, sample_rows(10_000, 500, 43));
    }
}
