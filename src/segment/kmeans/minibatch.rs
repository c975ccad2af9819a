//! Mini-batch K-means (Sculley 2010, "Web-Scale K-Means Clustering"), as scikit-learn's
//! `MiniBatchKMeans`: random batches move each centre to the running mean of the rows it won.

use rand::Rng;
use rand_xoshiro::Xoshiro256Plus;

use super::assign::{assign_and_sum, final_inertia};
use super::columns::{Centres, Columns, ordered_sum, subset};
use super::model::KMeansModel;
use super::params::KMeansValidParams;
use super::seeding::kmeans_plus_plus;

/// Mini-batch stops after this many batches without a better smoothed inertia (scikit-learn's
/// `max_no_improvement`).
const MAX_NO_IMPROVEMENT: usize = 10;

/// Mini-batch K-means (Sculley 2010, as scikit-learn's `MiniBatchKMeans`): k-means++ on a
/// sample of 3 × batch_size rows (best of `n_init` by inertia on that sample), then batches
/// drawn with replacement move each centre to the running mean of the rows it has won.
/// Stops after `max_iter` epochs or when the smoothed batch inertia has not improved for
/// [`MAX_NO_IMPROVEMENT`] batches.
pub(super) fn minibatch(cols: &Columns, params: &KMeansValidParams, batch_size: usize, rng: &mut Xoshiro256Plus) -> KMeansModel {
    let (n, p, k) = (cols.n, cols.p, params.k);
    let init_size = (3 * batch_size).max(3 * k).min(n);
    let mut init_rows: Vec<usize> = rand::seq::index::sample(rng, n, init_size).into_vec();
    init_rows.sort_unstable();
    let sample = subset(cols, &init_rows);
    let mut centres: Option<(f64, Centres)> = None;
    for _ in 0..params.n_init {
        let c = kmeans_plus_plus(&sample, k, rng);
        let inertia = final_inertia(&sample, &c.to_array(), &mut vec![0; init_size], &mut vec![0.0; init_size]);
        if centres.as_ref().is_none_or(|b| inertia < b.0) {
            centres = Some((inertia, c));
        }
    }
    let mut centres = centres.expect("n_init >= 1").1;
    let batch = batch_size.min(n);
    let steps = (params.max_iter as usize).saturating_mul(n).div_ceil(batch).max(1);
    let alpha = (2.0 * batch as f64 / (n as f64 + 1.0)).min(1.0);
    let (mut ewa, mut best_ewa, mut stale) = (f64::NAN, f64::INFINITY, 0usize);
    let mut counts = vec![0usize; k];
    let mut relocated = 0;
    let mut n_iter = 0;
    for step in 0..steps {
        n_iter = step as u64 + 1;
        let rows: Vec<usize> = (0..batch).map(|_| rng.gen_range(0..n)).collect();
        let b = subset(cols, &rows);
        let mut labels = vec![0usize; batch];
        let mut d2 = vec![0.0; batch];
        let s = assign_and_sum(&b, &centres, &mut labels, &mut d2);
        let batch_inertia = ordered_sum(&d2) / batch as f64;
        let mut next = centres.data.clone();
        for c in 0..k {
            if s.counts[c] == 0 {
                continue;
            }
            let (old, add) = (counts[c] as f64, s.counts[c] as f64);
            for j in 0..p {
                next[c * p + j] = (centres.data[c * p + j] * old + s.sums[c * p + j]) / (old + add);
            }
            counts[c] += s.counts[c];
        }
        // A centre that has won nothing after a few batches is re-seeded on the farthest row of
        // this batch (scikit-learn reassigns low-count centres at random).
        if step >= MAX_NO_IMPROVEMENT {
            for c in 0..k {
                if counts[c] == 0 {
                    let far = (0..batch).max_by(|&a, &z| d2[a].total_cmp(&d2[z]).then(z.cmp(&a))).unwrap_or(0);
                    for j in 0..p {
                        next[c * p + j] = b.get(far, j);
                    }
                    d2[far] = 0.0;
                    relocated += 1;
                }
            }
        }
        centres = Centres::from_vec(next, p);
        ewa = if ewa.is_nan() { batch_inertia } else { ewa * (1.0 - alpha) + batch_inertia * alpha };
        if ewa < best_ewa {
            best_ewa = ewa;
            stale = 0;
        } else {
            stale += 1;
            if stale >= MAX_NO_IMPROVEMENT {
                break;
            }
        }
    }
    let centroids = centres.to_array();
    let inertia = final_inertia(cols, &centroids, &mut vec![0; n], &mut vec![0.0; n]);
    KMeansModel {
        centroids,
        inertia,
        n_iter,
        relocated,
    }
}
