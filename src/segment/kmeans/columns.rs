//! The data layouts the K-means kernels work on: rows held feature-major ([`Columns`]),
//! centroids row-major ([`Centres`]), both with squared norms, and the fixed-order sums that
//! keep results independent of the thread count.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

/// Rows per block: 512 rows × a few features stay in L1/L2 while every centroid visits them.
pub(super) const BLOCK: usize = 512;

/// The data held feature-major: feature `j` of row `i` is `data[j * n + i]`, so a block of rows
/// of one feature is a contiguous slice. Column-major input (as the feature columns arrive from
/// Arrow) is borrowed, not copied.
pub(super) struct Columns<'a> {
    pub(super) n: usize,
    pub(super) p: usize,
    pub(super) data: std::borrow::Cow<'a, [f64]>,
    /// ‖x_i‖², for exact distances from the ‖c‖² − 2·x·c form.
    pub(super) norms: Vec<f64>,
}

impl<'a> Columns<'a> {
    pub(super) fn new(x: ArrayView2<'a, f64>) -> Columns<'a> {
        let (n, p) = x.dim();
        let data: std::borrow::Cow<'a, [f64]> = match x.reversed_axes().to_slice() {
            Some(s) => s.into(),
            None => {
                let mut data = vec![0.0; n * p];
                for (i, row) in x.rows().into_iter().enumerate() {
                    for (j, &v) in row.iter().enumerate() {
                        data[j * n + i] = v;
                    }
                }
                data.into()
            }
        };
        let mut norms = vec![0.0; n];
        for c in data.chunks(n.max(1)) {
            norms.iter_mut().zip(c).for_each(|(s, v)| *s += v * v);
        }
        Columns { n, p, data, norms }
    }

    pub(super) fn col(&self, j: usize, rows: std::ops::Range<usize>) -> &[f64] {
        &self.data[j * self.n + rows.start..j * self.n + rows.end]
    }

    pub(super) fn get(&self, i: usize, j: usize) -> f64 {
        self.data[j * self.n + i]
    }

    pub(super) fn sq_dist(&self, i: usize, c: &[f64]) -> f64 {
        c.iter().enumerate().map(|(j, cj)| (self.get(i, j) - cj).powi(2)).sum()
    }
}

/// Centroids row-major with their squared norms.
pub(super) struct Centres {
    pub(super) p: usize,
    pub(super) data: Vec<f64>,
    pub(super) norms: Vec<f64>,
}

impl Centres {
    pub(super) fn new(c: &Array2<f64>) -> Centres {
        let data: Vec<f64> = c.iter().copied().collect();
        Self::from_vec(data, c.ncols())
    }

    pub(super) fn from_vec(data: Vec<f64>, p: usize) -> Centres {
        let norms = data.chunks(p).map(|r| r.iter().map(|v| v * v).sum()).collect();
        Centres { p, data, norms }
    }

    pub(super) fn k(&self) -> usize {
        self.norms.len()
    }

    pub(super) fn row(&self, c: usize) -> &[f64] {
        &self.data[c * self.p..(c + 1) * self.p]
    }

    pub(super) fn to_array(&self) -> Array2<f64> {
        Array2::from_shape_vec((self.k(), self.p), self.data.clone()).expect("k * p centre values")
    }
}

/// The rows `rows` of `cols`, copied (mini-batch samples and batches).
pub(super) fn subset(cols: &Columns, rows: &[usize]) -> Columns<'static> {
    let (n, p) = (rows.len(), cols.p);
    let mut data = Vec::with_capacity(n * p);
    for j in 0..p {
        data.extend(rows.iter().map(|&i| cols.get(i, j)));
    }
    let norms = rows.iter().map(|&i| cols.norms[i]).collect();
    Columns {
        n,
        p,
        data: data.into(),
        norms,
    }
}

/// Sum in fixed blocks reduced in order: the same bits whatever the thread count.
pub(super) fn ordered_sum(v: &[f64]) -> f64 {
    let parts: Vec<f64> = v.par_chunks(BLOCK).map(lane_sum).collect();
    parts.iter().sum()
}

/// Sum with eight independent accumulators: a fixed order (so the bits do not depend on the
/// machine or thread count) that the CPU can pipeline, unlike one chain of dependent adds.
#[inline(always)]
pub(super) fn lane_sum(v: &[f64]) -> f64 {
    let mut acc = [0.0; 8];
    let chunks = v.chunks_exact(8);
    let rest: f64 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.iter().sum::<f64>() + rest
}
