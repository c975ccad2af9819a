//! Assigning rows to their nearest centre: the blocked ‖c‖² − 2·x·c kernel (portable and
//! AVX2 builds with identical bits), one Lloyd pass that also sums the rows per centre, and
//! exact distances and inertia.

use ndarray::Array2;
use rayon::prelude::*;

use super::columns::{BLOCK, Centres, Columns, ordered_sum};

/// Labels the rows `start..start + labels.len()` with their nearest centre; `best` receives
/// ‖c‖² − 2·x·c of that centre (add ‖x‖² for the squared distance).
fn nearest(cols: &Columns, c: &Centres, start: usize, labels: &mut [usize], best: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { nearest_avx2(cols, c, start, labels, best) };
    }
    nearest_kernel(cols, c, start, labels, best)
}

/// The same kernel compiled with 4-wide vectors. No FMA: the operations and their order are
/// those of the portable build, so both give identical bits and results do not depend on the
/// machine's vector unit. Measured on the 1M × 6 benchmark: fit 0.355 s → 0.31 s (BENCHMARKS.md).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn nearest_avx2(cols: &Columns, c: &Centres, start: usize, labels: &mut [usize], best: &mut [f64]) {
    nearest_kernel(cols, c, start, labels, best)
}

#[inline(always)]
fn nearest_kernel(cols: &Columns, c: &Centres, start: usize, labels: &mut [usize], best: &mut [f64]) {
    let rows = start..start + labels.len();
    let mut score = vec![0.0; labels.len()];
    best.fill(f64::INFINITY);
    for k in 0..c.k() {
        score.fill(c.norms[k]);
        for (j, &cj) in c.row(k).iter().enumerate() {
            let m = -2.0 * cj;
            for (s, &x) in score.iter_mut().zip(cols.col(j, rows.clone())) {
                *s += m * x;
            }
        }
        // Branch-free select: assignments near cluster borders would defeat the predictor.
        for ((l, b), &s) in labels.iter_mut().zip(best.iter_mut()).zip(&score) {
            let closer = s < *b;
            *b = if closer { s } else { *b };
            *l = if closer { k } else { *l };
        }
    }
}

/// Per-block result of one assignment + accumulation pass.
pub(super) struct BlockSums {
    pub(super) sums: Vec<f64>,
    pub(super) counts: Vec<usize>,
    pub(super) changed: bool,
}

/// One Lloyd pass: assign every row to its nearest centre and sum the rows per centre.
/// Returns the sums and counts reduced in block order, and whether any label changed.
pub(super) fn assign_and_sum(cols: &Columns, c: &Centres, labels: &mut [usize], d2: &mut [f64]) -> BlockSums {
    let (k, p) = (c.k(), cols.p);
    let blocks: Vec<BlockSums> = labels
        .par_chunks_mut(BLOCK)
        .zip(d2.par_chunks_mut(BLOCK))
        .enumerate()
        .map(|(b, (lab, d))| {
            let start = b * BLOCK;
            let before = lab.to_vec();
            nearest(cols, c, start, lab, d);
            let mut out = BlockSums {
                sums: vec![0.0; k * p],
                counts: vec![0; k],
                changed: before != lab,
            };
            for (&l, (dr, &norm)) in lab.iter().zip(d.iter_mut().zip(&cols.norms[start..])) {
                *dr = (*dr + norm).max(0.0);
                out.counts[l] += 1;
            }
            for j in 0..p {
                for (&l, &x) in lab.iter().zip(cols.col(j, start..start + lab.len())) {
                    out.sums[l * p + j] += x;
                }
            }
            out
        })
        .collect();
    let mut total = BlockSums {
        sums: vec![0.0; k * p],
        counts: vec![0; k],
        changed: false,
    };
    for b in blocks {
        total.sums.iter_mut().zip(&b.sums).for_each(|(t, s)| *t += s);
        total.counts.iter_mut().zip(&b.counts).for_each(|(t, s)| *t += s);
        total.changed |= b.changed;
    }
    total
}

/// Nearest centre and exact squared distance of every row, into `labels` and `d2`.
pub(super) fn assign_exact(cols: &Columns, c: &Centres, labels: &mut [usize], d2: &mut [f64]) {
    labels.par_chunks_mut(BLOCK).zip(d2.par_chunks_mut(BLOCK)).enumerate().for_each(|(b, (lab, d))| {
        let start = b * BLOCK;
        nearest(cols, c, start, lab, d);
        for (r, (&l, out)) in lab.iter().zip(d.iter_mut()).enumerate() {
            *out = cols.sq_dist(start + r, c.row(l));
        }
    });
}

/// Inertia of `centroids` on all rows, using `labels` and `d2` as scratch.
pub(super) fn final_inertia(cols: &Columns, centroids: &Array2<f64>, labels: &mut [usize], d2: &mut [f64]) -> f64 {
    assign_exact(cols, &Centres::new(centroids), labels, d2);
    ordered_sum(d2)
}
