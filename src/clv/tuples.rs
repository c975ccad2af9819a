//! Customers compressed to (x, t_x, T) tuples with counts: all a purchase model's fit needs,
//! however many customers there are.

use rayon::prelude::*;

use super::fitting;

/// Customers who share one (x, t_x, T), and how many they are: the likelihood depends on a
/// customer only through this tuple, so the tuples (a `GROUP BY` in the engine) are all a fit
/// needs, however many customers there are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PurchaseTuple {
    pub frequency: f64,
    pub recency: f64,
    pub tenure: f64,
    pub customers: u64,
}

/// Per-customer columns compressed to [`PurchaseTuple`]s, in ascending (x, t_x, T) order.
pub fn compress(x: &[f64], tx: &[f64], t: &[f64]) -> Vec<PurchaseTuple> {
    let ((xs, xi), ((txs, txi), (ts, ti))) = rayon::join(|| fitting::indexed(x), || rayon::join(|| fitting::indexed(tx), || fitting::indexed(t)));
    // One sortable key per customer: the three indices in 32 bits each.
    let mut keys: Vec<u128> = (0..x.len())
        .into_par_iter()
        .map(|i| (xi[i] as u128) << 64 | (txi[i] as u128) << 32 | ti[i] as u128)
        .collect();
    keys.par_sort_unstable();
    keys.chunk_by(|a, b| a == b)
        .map(|same| PurchaseTuple {
            frequency: xs[(same[0] >> 64) as usize],
            recency: txs[(same[0] >> 32) as u32 as usize],
            tenure: ts[same[0] as u32 as usize],
            customers: same.len() as u64,
        })
        .collect()
}

/// Tuples with each value indexing a distinct list, rows in ascending index order with equal
/// tuples merged: the order and the sums do not depend on where the tuples came from.
pub(super) struct Sufficient {
    pub(super) xs: Vec<f64>,
    pub(super) txs: Vec<f64>,
    pub(super) ts: Vec<f64>,
    /// (x index, t_x index, T index, count)
    pub(super) rows: Vec<(u32, u32, u32, f64)>,
    pub(super) total: f64,
}

impl Sufficient {
    #[cfg(test)]
    pub(super) fn new(x: &[f64], tx: &[f64], t: &[f64]) -> Sufficient {
        Sufficient::from_tuples(&compress(x, tx, t))
    }

    pub(super) fn from_tuples(tuples: &[PurchaseTuple]) -> Sufficient {
        let column = |f: fn(&PurchaseTuple) -> f64| fitting::indexed(&tuples.iter().map(f).collect::<Vec<f64>>());
        // The three indexes and the sort in parallel: the fit waits for them, serially.
        let ((xs, xi), ((txs, txi), (ts, ti))) = rayon::join(|| column(|p| p.frequency), || rayon::join(|| column(|p| p.recency), || column(|p| p.tenure)));
        let mut keyed: Vec<(u32, u32, u32, u64)> = (0..tuples.len()).map(|i| (xi[i], txi[i], ti[i], tuples[i].customers)).collect();
        keyed.par_sort_unstable();
        let mut rows: Vec<(u32, u32, u32, f64)> = Vec::with_capacity(keyed.len());
        for same in keyed.chunk_by(|a, b| (a.0, a.1, a.2) == (b.0, b.1, b.2)) {
            let count: u64 = same.iter().map(|r| r.3).sum();
            if count > 0 {
                rows.push((same[0].0, same[0].1, same[0].2, count as f64));
            }
        }
        let total = rows.iter().map(|r| r.3).sum();
        Sufficient { xs, txs, ts, rows, total }
    }

    /// Σ over rows of what `row` adds for one (x index, t_x index, T index, count) row, e.g. a
    /// likelihood and its gradient. Rows are summed in fixed chunks, in parallel, and the
    /// chunks' sums added in order: the result does not depend on the thread count.
    pub(super) fn sum_rows<const N: usize>(&self, row: impl Fn(&mut [f64; N], (u32, u32, u32, f64)) + Sync) -> [f64; N] {
        let partials: Vec<[f64; N]> = self
            .rows
            .par_chunks(4096)
            .map(|chunk| {
                let mut acc = [0.0; N];
                for &r in chunk {
                    row(&mut acc, r);
                }
                acc
            })
            .collect();
        let mut total = [0.0; N];
        for part in &partials {
            for (t, p) in total.iter_mut().zip(part) {
                *t += p;
            }
        }
        total
    }

    /// A systematic subsample of about `total / k` customers: every k-th customer in tuple
    /// order, so each tuple keeps its share (for the warm start).
    pub(super) fn every(&self, k: usize) -> Sufficient {
        let k = k as f64;
        let mut seen = 0.0;
        let rows = self
            .rows
            .iter()
            .filter_map(|&(xi, txi, ti, w)| {
                let picked = ((seen + w) / k).floor() - (seen / k).floor();
                seen += w;
                (picked > 0.0).then_some((xi, txi, ti, picked))
            })
            .collect::<Vec<_>>();
        let total = rows.iter().map(|r| r.3).sum();
        Sufficient { xs: self.xs.clone(), txs: self.txs.clone(), ts: self.ts.clone(), rows, total }
    }
}
