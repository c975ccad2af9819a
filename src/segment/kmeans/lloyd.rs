//! Lloyd iterations (Lloyd 1982), as scikit-learn's `_kmeans_single_lloyd`: full passes until
//! the labels stop changing or the centres move less than the tolerance, with empty clusters
//! re-seeded on the farthest rows.

use super::assign::{BlockSums, assign_and_sum, final_inertia};
use super::columns::{Centres, Columns, ordered_sum};
use super::model::KMeansModel;

/// scikit-learn's `_tolerance`: `tol` times the mean per-feature variance.
pub(super) fn tolerance(cols: &Columns, tol: f64) -> f64 {
    let n = cols.n as f64;
    let var: f64 = (0..cols.p)
        .map(|j| {
            let x = cols.col(j, 0..cols.n);
            let mean = ordered_sum(x) / n;
            let dev: Vec<f64> = x.iter().map(|v| (v - mean).powi(2)).collect();
            ordered_sum(&dev) / n
        })
        .sum();
    var / cols.p as f64 * tol
}

/// Lloyd iterations from `centres` (scikit-learn's `_kmeans_single_lloyd`).
pub(super) fn lloyd(cols: &Columns, mut centres: Centres, max_iter: u64, tol: f64) -> KMeansModel {
    let (n, p, k) = (cols.n, cols.p, centres.k());
    let mut labels = vec![usize::MAX; n];
    let mut d2 = vec![0.0; n];
    let mut relocated = 0;
    let mut n_iter = 0;
    for it in 0..max_iter {
        n_iter = it + 1;
        let mut s = assign_and_sum(cols, &centres, &mut labels, &mut d2);
        relocated += relocate_empty(cols, &mut s, &labels, &d2);
        let mut shift = 0.0;
        let mut next = centres.data.clone();
        for c in 0..k {
            // A cluster left empty even after relocation (k > distinct rows) keeps its centre.
            if s.counts[c] == 0 {
                continue;
            }
            for j in 0..p {
                let v = s.sums[c * p + j] / s.counts[c] as f64;
                shift += (v - centres.data[c * p + j]).powi(2);
                next[c * p + j] = v;
            }
        }
        centres = Centres::from_vec(next, p);
        // Labels unchanged since the previous pass: the centres are a fixed point.
        if it > 0 && !s.changed {
            break;
        }
        if shift <= tol {
            break;
        }
    }
    let centroids = centres.to_array();
    let inertia = final_inertia(cols, &centroids, &mut labels, &mut d2);
    KMeansModel {
        centroids,
        inertia,
        n_iter,
        relocated,
    }
}

/// scikit-learn's `_relocate_empty_clusters_dense`: each empty cluster takes one of the rows
/// farthest from their current centre, which leaves its old cluster. Returns how many moved.
fn relocate_empty(cols: &Columns, s: &mut BlockSums, labels: &[usize], d2: &[f64]) -> usize {
    let empty: Vec<usize> = (0..s.counts.len()).filter(|&c| s.counts[c] == 0).collect();
    if empty.is_empty() {
        return 0;
    }
    let p = cols.p;
    // Farthest first; ties by row index so the choice is deterministic.
    let mut far: Vec<usize> = (0..cols.n).collect();
    let m = empty.len().min(cols.n);
    far.select_nth_unstable_by(m - 1, |&a, &b| d2[b].total_cmp(&d2[a]).then(a.cmp(&b)));
    far.truncate(m);
    far.sort_by(|&a, &b| d2[b].total_cmp(&d2[a]).then(a.cmp(&b)));
    let mut moved = 0;
    for (&c, &i) in empty.iter().zip(&far) {
        let old = labels[i];
        if s.counts[old] <= 1 {
            continue;
        }
        for j in 0..p {
            let x = cols.get(i, j);
            s.sums[old * p + j] -= x;
            s.sums[c * p + j] = x;
        }
        s.counts[old] -= 1;
        s.counts[c] = 1;
        moved += 1;
    }
    moved
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, array};
    use rand::Rng;
    use rand_xoshiro::rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro256Plus;

    use crate::segment::kmeans::seeding::kmeans_plus_plus;

    fn blobs(n: usize, centers: &[[f64; 2]], seed: u64) -> Array2<f64> {
        let mut rng = Xoshiro256Plus::seed_from_u64(seed);
        Array2::from_shape_fn((n, 2), |(i, j)| centers[i % centers.len()][j] + rng.gen_range(-1.0..1.0))
    }

    /// Plain Lloyd on row-major data, written for clarity: the fast path must agree with it.
    fn reference_lloyd(x: &Array2<f64>, mut c: Array2<f64>, iters: usize) -> Array2<f64> {
        for _ in 0..iters {
            let mut sums = Array2::<f64>::zeros(c.dim());
            let mut counts = vec![0usize; c.nrows()];
            for row in x.rows() {
                let best = (0..c.nrows())
                    .min_by(|&a, &b| {
                        let da: f64 = row.iter().zip(c.row(a)).map(|(x, y)| (x - y).powi(2)).sum();
                        let db: f64 = row.iter().zip(c.row(b)).map(|(x, y)| (x - y).powi(2)).sum();
                        da.total_cmp(&db)
                    })
                    .unwrap();
                counts[best] += 1;
                let mut s = sums.row_mut(best);
                s += &row;
            }
            for (ci, &cnt) in counts.iter().enumerate() {
                if cnt > 0 {
                    let mean = sums.row(ci).mapv(|v| v / cnt as f64);
                    c.row_mut(ci).assign(&mean);
                }
            }
        }
        c
    }

    #[test]
    fn fast_lloyd_equals_plain_lloyd() {
        // 1,500 rows span several blocks, so the blocked reduction is exercised.
        let x = blobs(1500, &[[0.0, 0.0], [3.0, 0.5], [1.0, 4.0], [5.0, 5.0]], 3);
        let init = kmeans_plus_plus(&Columns::new(x.view()), 4, &mut Xoshiro256Plus::seed_from_u64(9));
        let fast = lloyd(&Columns::new(x.view()), Centres::new(&init.to_array()), 5, 0.0);
        let plain = reference_lloyd(&x, init.to_array(), 5);
        let diff = (&fast.centroids - &plain).mapv(f64::abs).fold(0.0f64, |a, &b| a.max(b));
        assert!(diff < 1e-9, "max centre difference {diff}");
    }

    #[test]
    fn empty_cluster_is_relocated_to_the_farthest_row() {
        // Centre 1 starts far from every row, so the first pass leaves it empty.
        let x = array![[0.0], [1.0], [2.0], [10.0]];
        let cols = Columns::new(x.view());
        let m = lloyd(&cols, Centres::new(&array![[1.0], [100.0]]), 10, 0.0);
        assert_eq!(m.relocated, 1);
        // The farthest row (10) takes the empty cluster: {0,1,2} and {10}.
        let mut c: Vec<f64> = m.centroids.iter().copied().collect();
        c.sort_by(f64::total_cmp);
        assert_eq!(c, vec![1.0, 10.0]);
        assert!((m.inertia - 2.0).abs() < 1e-12);
    }
}
