//! Agglomerative clustering with Ward's linkage (Ward 1963, "Hierarchical grouping to optimize
//! an objective function"), as scikit-learn's `AgglomerativeClustering(linkage="ward")`.
//!
//! The linkage is kodama's (the crate behind linfa-hierarchical): the nearest-neighbour chain
//! of fastcluster (Müllner 2013, "fastcluster: Fast hierarchical, agglomerative clustering
//! routines for R and Python") over Euclidean distances, whose Ward update gives the same merges
//! as scipy's and scikit-learn's. One linkage serves every k: cutting the tree after its first
//! n − k merges leaves k clusters.
//!
//! The linkage holds every pairwise distance, n(n − 1)/2 doubles (100 MB at 5,000 rows), so it
//! runs on at most `fit_sample` rows (see `job::segmentation`) and the other rows join the
//! nearest cluster mean.

use kodama::{Method, linkage};
use ndarray::ArrayView2;

/// The merges of a Ward linkage, in the order they happened (lowest cost first).
#[derive(Debug, Clone)]
pub struct Tree {
    rows: usize,
    /// `(a, b)`: the clusters merged at each step; clusters `0..rows` are the rows, and step `i`
    /// creates cluster `rows + i`.
    merges: Vec<(usize, usize)>,
}

/// Ward's linkage of the rows of `z`.
pub fn ward(z: ArrayView2<f64>) -> Tree {
    let n = z.nrows();
    let mut condensed = Vec::with_capacity(n * n.saturating_sub(1) / 2);
    let rows: Vec<Vec<f64>> = z.rows().into_iter().map(|r| r.to_vec()).collect();
    for i in 0..n {
        for j in i + 1..n {
            condensed.push(rows[i].iter().zip(&rows[j]).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt());
        }
    }
    let merges = if n < 2 { Vec::new() } else { linkage(&mut condensed, n, Method::Ward).steps().iter().map(|s| (s.cluster1, s.cluster2)).collect() };
    Tree { rows: n, merges }
}

impl Tree {
    /// Labels `0..k` of the rows when the tree is cut into `k` clusters (`1 <= k <= rows`),
    /// numbered in the order the clusters first appear among the rows.
    pub fn cut(&self, k: usize) -> Vec<usize> {
        let n = self.rows;
        let steps = n.saturating_sub(k.max(1));
        let mut parent: Vec<usize> = (0..n + steps).collect();
        fn root(parent: &mut [usize], mut x: usize) -> usize {
            while parent[x] != x {
                parent[x] = parent[parent[x]];
                x = parent[x];
            }
            x
        }
        for (i, &(a, b)) in self.merges.iter().take(steps).enumerate() {
            let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
            parent[ra] = n + i;
            parent[rb] = n + i;
        }
        let mut ids = std::collections::HashMap::new();
        (0..n)
            .map(|r| {
                let next = ids.len();
                *ids.entry(root(&mut parent, r)).or_insert(next)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;

    #[test]
    fn cuts_give_the_nested_groups_of_the_merges() {
        // Two tight pairs far apart, and a fifth point nearer the second pair.
        let z = array![[0.0, 0.0], [0.0, 0.1], [10.0, 0.0], [10.0, 0.1], [13.0, 0.0]];
        let tree = ward(z.view());
        assert_eq!(tree.cut(5), [0, 1, 2, 3, 4]);
        assert_eq!(tree.cut(3), [0, 0, 1, 1, 2]);
        assert_eq!(tree.cut(2), [0, 0, 1, 1, 1]);
        assert_eq!(tree.cut(1), [0, 0, 0, 0, 0]);
    }
}
