//! Greedy k-means++ seeding (Arthur & Vassilvitskii 2007, "k-means++: The Advantages of
//! Careful Seeding"), as scikit-learn's `_kmeans_plusplus`: all candidates of a round are
//! measured in one blocked pass.

use std::ops::Range;

use rand::Rng;
use rand_xoshiro::Xoshiro256Plus;
use rayon::prelude::*;

use super::columns::{BLOCK, Centres, Columns, lane_sum};

/// Greedy k-means++ (scikit-learn's `_kmeans_plusplus`): each new centre is the best of
/// 2 + ⌊ln k⌋ candidates drawn with probability ∝ D(x)², the one that lowers the potential most.
/// All candidates of a round are measured in one pass over the data.
pub(super) fn kmeans_plus_plus(cols: &Columns, k: usize, rng: &mut Xoshiro256Plus) -> Centres {
    let (n, p) = (cols.n, cols.p);
    let trials = 2 + (k as f64).ln() as usize;
    let row = |i: usize| (0..p).map(|j| cols.get(i, j)).collect::<Vec<f64>>();
    let mut centres = row(rng.gen_range(0..n));
    let mut dists = CandidateDists::new(n, trials);
    dists.measure(cols, &centres, None);
    let mut closest = vec![0.0; n];
    let mut pot = dists.best_into(0, &mut closest);
    let mut cum = vec![0.0; n];
    for _ in 1..k {
        let mut acc = 0.0;
        for (c, d) in cum.iter_mut().zip(&closest) {
            acc += d;
            *c = acc;
        }
        let ids: Vec<usize> = (0..trials)
            .map(|_| {
                let target = rng.r#gen::<f64>() * pot;
                cum.partition_point(|&c| c < target).min(n - 1)
            })
            .collect();
        let cands: Vec<f64> = ids.iter().flat_map(|&i| row(i)).collect();
        dists.measure(cols, &cands, Some(&closest));
        // Lowest potential wins; the first candidate on a tie.
        let best = (0..trials).fold(0, |b, t| if dists.pots[t] < dists.pots[b] { t } else { b });
        pot = dists.best_into(best, &mut closest);
        centres.extend(row(ids[best]));
    }
    Centres::from_vec(centres, p)
}

/// Squared distances of every row to `t` candidates: per block of rows, `t` runs of the block's
/// length. One buffer serves every round of k-means++, so no fresh pages are zeroed per round.
struct CandidateDists {
    buf: Vec<f64>,
    t: usize,
    /// Each candidate's potential (sum over rows, reduced in block order).
    pots: Vec<f64>,
}

impl CandidateDists {
    fn new(n: usize, trials: usize) -> CandidateDists {
        CandidateDists {
            buf: vec![0.0; n * trials],
            t: 0,
            pots: Vec::new(),
        }
    }

    /// Measures the candidates in `cands` (row-major, `t × p`), capped by `cap` when given.
    fn measure(&mut self, cols: &Columns, cands: &[f64], cap: Option<&[f64]>) {
        let t = cands.len() / cols.p;
        self.t = t;
        let sums: Vec<Vec<f64>> = self.buf[..t * cols.n]
            .par_chunks_mut(t * BLOCK)
            .enumerate()
            .map(|(b, d)| {
                let rows = b * BLOCK..b * BLOCK + d.len() / t;
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2, checked just above.
                    return unsafe { candidate_block_avx2(cols, cands, cap, rows, d) };
                }
                candidate_block(cols, cands, cap, rows, d)
            })
            .collect();
        self.pots = vec![0.0; t];
        sums.iter().for_each(|s| self.pots.iter_mut().zip(s).for_each(|(p, s)| *p += s));
    }

    /// Copies candidate `c`'s distances over all rows into `out` and returns its potential.
    fn best_into(&self, c: usize, out: &mut [f64]) -> f64 {
        let t = self.t;
        for (b, chunk) in self.buf[..t * out.len()].chunks(t * BLOCK).enumerate() {
            let len = chunk.len() / t;
            out[b * BLOCK..b * BLOCK + len].copy_from_slice(&chunk[c * len..(c + 1) * len]);
        }
        self.pots[c]
    }
}

/// One block of [`CandidateDists::measure`]: fills `d` and returns each candidate's sum.
#[inline(always)]
fn candidate_block(cols: &Columns, cands: &[f64], cap: Option<&[f64]>, rows: Range<usize>, d: &mut [f64]) -> Vec<f64> {
    let len = rows.len();
    for (ti, c) in cands.chunks(cols.p).enumerate() {
        // ‖x‖² + ‖c‖² − 2·x·c, as scikit-learn's `_euclidean_distances`: one multiply-add
        // per element instead of three operations.
        let out = &mut d[ti * len..(ti + 1) * len];
        let c2: f64 = c.iter().map(|v| v * v).sum();
        out.iter_mut().zip(&cols.norms[rows.clone()]).for_each(|(o, &x2)| *o = x2 + c2);
        for (j, &cj) in c.iter().enumerate() {
            let m = -2.0 * cj;
            for (o, &x) in out.iter_mut().zip(cols.col(j, rows.clone())) {
                *o += m * x;
            }
        }
        match cap {
            Some(cap) => out.iter_mut().zip(&cap[rows.clone()]).for_each(|(o, &m)| *o = o.max(0.0).min(m)),
            None => out.iter_mut().for_each(|o| *o = o.max(0.0)),
        }
    }
    d.chunks(len).map(lane_sum).collect()
}

/// [`candidate_block`] with 4-wide vectors (see [`nearest_avx2`](super::assign)).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn candidate_block_avx2(cols: &Columns, cands: &[f64], cap: Option<&[f64]>, rows: Range<usize>, d: &mut [f64]) -> Vec<f64> {
    candidate_block(cols, cands, cap, rows, d)
}
