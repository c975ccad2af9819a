//! Feature drift between the training sample and the current one (population stability index),
//! and the change in each segment's share between two runs (issue #11).
//!
//! PSI = Σ_i (a_i − e_i) · ln(a_i / e_i), with e_i / a_i the expected (training) / actual
//! (current) share of bin i — the standard credit-risk definition, see Yurdakul (2018),
//! "Statistical Properties of Population Stability Index", Western Michigan University.
//! Usual reading: < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 significant shift.

use std::collections::BTreeMap;

use thiserror::Error;

use crate::stats::quantile;

/// Floor for bin shares: an empty bin would make ln(a / e) infinite. 1e-4 (0.01 %) is the
/// customary choice; it only affects empty bins, so identical samples still give exactly 0.
pub const EPSILON: f64 = 1e-4;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FeatureDrift {
    pub feature: String,
    /// NaN when either sample has no non-NaN value.
    pub psi: f64,
    /// Bins actually used: `bins` requested minus those collapsed by duplicate edges.
    pub bins: usize,
    pub missing_expected: usize,
    pub missing_actual: usize,
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum DriftError {
    #[error("{names} feature names but {expected} expected and {actual} actual columns")]
    ColumnCount {
        names: usize,
        expected: usize,
        actual: usize,
    },
    #[error("the number of bins must be at least 1")]
    NoBins,
}

/// Interior bin edges: the `i / bins` quantiles (i = 1..bins) of the finite training values, with
/// numpy's default ("linear") interpolation, ascending and deduplicated so that constant or
/// discrete features get fewer, non-empty bins instead of zero-width ones.
/// NaN and ±∞ are left out of the quantiles (∞ still falls into the open-ended end bins).
pub fn bin_edges(training: &[f64], bins: usize) -> Vec<f64> {
    let mut sorted: Vec<f64> = training.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return Vec::new();
    }
    sorted.sort_unstable_by(f64::total_cmp);
    let mut edges: Vec<f64> = Vec::with_capacity(bins.saturating_sub(1));
    for i in 1..bins {
        let q = quantile(&sorted, i as f64 / bins as f64);
        // Strictly increasing: drops duplicates (and any rounding wobble between equal values).
        if edges.last().is_none_or(|&last| q > last) {
            edges.push(q);
        }
    }
    edges
}


/// PSI of `actual` against `expected` over the bins `(-∞, e0], (e0, e1], …, (e_last, ∞)`.
/// NaN values are ignored; returns NaN if either sample has no other value.
pub fn psi(edges: &[f64], expected: &[f64], actual: &[f64]) -> f64 {
    psi_of_shares(&bin_shares(edges, expected), &bin_shares(edges, actual))
}

/// Share of the non-NaN `values` in each bin (all NaN when there is none), so a model can keep
/// its training distribution without the training rows.
pub fn bin_shares(edges: &[f64], values: &[f64]) -> Vec<f64> {
    let (counts, n) = bin_counts(edges, values);
    counts.iter().map(|&c| if n == 0 { f64::NAN } else { c as f64 / n as f64 }).collect()
}

/// PSI from bin shares (as from [`bin_shares`] over the same edges).
pub fn psi_of_shares(expected: &[f64], actual: &[f64]) -> f64 {
    if expected.iter().chain(actual).any(|v| v.is_nan()) {
        return f64::NAN;
    }
    expected
        .iter()
        .zip(actual)
        .map(|(&pe, &pa)| {
            let (pe, pa) = (pe.max(EPSILON), pa.max(EPSILON));
            (pa - pe) * (pa / pe).ln()
        })
        .sum()
}

/// Counts per bin (a value equal to an edge goes to the lower bin) and the number of non-NaN values.
fn bin_counts(edges: &[f64], values: &[f64]) -> (Vec<u64>, u64) {
    let mut counts = vec![0u64; edges.len() + 1];
    let mut n = 0;
    for &v in values.iter().filter(|v| !v.is_nan()) {
        counts[edges.partition_point(|&e| e < v)] += 1;
        n += 1;
    }
    (counts, n)
}

/// PSI per feature, with bins from the deciles (`bins = 10`) or other quantiles of `expected_cols`.
pub fn feature_drift(
    names: &[String],
    expected_cols: &[Vec<f64>],
    actual_cols: &[Vec<f64>],
    bins: usize,
) -> Result<Vec<FeatureDrift>, DriftError> {
    if names.len() != expected_cols.len() || names.len() != actual_cols.len() {
        return Err(DriftError::ColumnCount {
            names: names.len(),
            expected: expected_cols.len(),
            actual: actual_cols.len(),
        });
    }
    if bins == 0 {
        return Err(DriftError::NoBins);
    }
    Ok(names
        .iter()
        .zip(expected_cols.iter().zip(actual_cols))
        .map(|(name, (expected, actual))| {
            let edges = bin_edges(expected, bins);
            FeatureDrift {
                feature: name.clone(),
                psi: psi(&edges, expected, actual),
                bins: edges.len() + 1,
                missing_expected: expected.iter().filter(|v| v.is_nan()).count(),
                missing_actual: actual.iter().filter(|v| v.is_nan()).count(),
            }
        })
        .collect())
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ShareChange {
    pub segment: i64,
    pub previous_share: f64,
    pub current_share: f64,
    /// current_share − previous_share.
    pub change: f64,
}

/// Share of each segment in both runs, from `(segment, customers)` counts. Covers the union of
/// segments in ascending id order; a segment missing from a run has share 0 there. Repeated
/// segments within one list are summed; an empty run gives all shares 0 rather than NaN.
pub fn share_changes(previous: &[(i64, u64)], current: &[(i64, u64)]) -> Vec<ShareChange> {
    let mut counts: BTreeMap<i64, [u128; 2]> = BTreeMap::new();
    for (run, list) in [previous, current].into_iter().enumerate() {
        for &(segment, n) in list {
            counts.entry(segment).or_default()[run] += u128::from(n);
        }
    }
    let totals = counts.values().fold([0u128; 2], |t, c| [t[0] + c[0], t[1] + c[1]]);
    let share = |n: u128, total: u128| if total == 0 { 0.0 } else { n as f64 / total as f64 };
    counts
        .into_iter()
        .map(|(segment, [p, c])| {
            let (previous_share, current_share) = (share(p, totals[0]), share(c, totals[1]));
            ShareChange {
                segment,
                previous_share,
                current_share,
                change: current_share - previous_share,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rand_distr::{Distribution, Normal};

    fn normal_sample(seed: u64, mean: f64, n: usize) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let dist = Normal::new(mean, 1.0).unwrap();
        (0..n).map(|_| dist.sample(&mut rng)).collect()
    }

    #[test]
    fn edges_match_numpy_linear_quantiles() {
        // np.quantile(np.arange(10), [0.1, ..., 0.9]) = [0.9, 1.8, ..., 8.1]
        let data: Vec<f64> = (0..10).map(f64::from).collect();
        let edges = bin_edges(&data, 10);
        assert_eq!(edges.len(), 9);
        for (i, e) in edges.iter().enumerate() {
            assert!((e - 0.9 * (i + 1) as f64).abs() < 1e-12, "{edges:?}");
        }
        // Unsorted input, median between 2 and 3.
        assert_eq!(bin_edges(&[4.0, 1.0, 3.0, 2.0], 2), vec![2.5]);
    }

    #[test]
    fn identical_samples_have_zero_psi() {
        let x = normal_sample(1, 0.0, 1000);
        let edges = bin_edges(&x, 10);
        assert_eq!(psi(&edges, &x, &x), 0.0);
    }

    #[test]
    fn hand_computed_psi() {
        // Training [1, 2, 3, 4], 2 bins: median edge 2 + 0.5 · (3 − 2) = 2.5.
        // Expected shares: (≤ 2.5) 2/4 = 0.5, (> 2.5) 2/4 = 0.5.
        // Actual [1, 1, 1, 4]: 3/4 = 0.75, 1/4 = 0.25.
        // PSI = (0.75 − 0.5) ln(0.75 / 0.5) + (0.25 − 0.5) ln(0.25 / 0.5)
        //     = 0.25 · 0.405465 + 0.25 · 0.693147 = 0.274653
        let training = [1.0, 2.0, 3.0, 4.0];
        let edges = bin_edges(&training, 2);
        assert!((psi(&edges, &training, &[1.0, 1.0, 1.0, 4.0]) - 0.274_653_072_167).abs() < 1e-9);
        // Actual [1, 1, 1, 1]: shares 1 and 0 → floored to 1e-4.
        // PSI = (1 − 0.5) ln(1 / 0.5) + (1e-4 − 0.5) ln(1e-4 / 0.5)
        //     = 0.346574 + (−0.4999)(−8.517193) = 0.346574 + 4.257745 = 4.604318
        assert!((psi(&edges, &training, &[1.0; 4]) - 4.604_318_466_669).abs() < 1e-9);
    }

    #[test]
    fn shifted_normal_drifts_same_distribution_does_not() {
        let training = normal_sample(1, 0.0, 10_000);
        let edges = bin_edges(&training, 10);
        let same = psi(&edges, &training, &normal_sample(2, 0.0, 10_000));
        let shifted = psi(&edges, &training, &normal_sample(3, 1.0, 10_000));
        assert!(same < 0.1, "same-distribution PSI {same}");
        assert!(shifted > 0.25, "shifted PSI {shifted}");
    }

    #[test]
    fn constant_and_discrete_features() {
        let constant = vec![5.0; 100];
        let edges = bin_edges(&constant, 10);
        assert_eq!(edges, vec![5.0]);
        assert_eq!(psi(&edges, &constant, &constant), 0.0);
        let moved = psi(&edges, &constant, &[6.0; 50]);
        assert!(moved.is_finite() && moved > 0.25);

        // 70 % zeros, 30 % ones: deciles 0 (×6), ≈0.3, 1 (×2) collapse to three edges.
        let binary: Vec<f64> = (0..10).map(|i| if i < 7 { 0.0 } else { 1.0 }).collect();
        let edges = bin_edges(&binary, 10);
        assert_eq!(edges.len(), 3);
        assert_eq!((edges[0], edges[2]), (0.0, 1.0));
        assert_eq!(psi(&edges, &binary, &binary), 0.0);
    }

    #[test]
    fn nan_is_ignored_and_counted() {
        let names = vec!["recency".to_string(), "all_missing".to_string()];
        let expected = vec![vec![1.0, 2.0, f64::NAN, 3.0, 4.0], vec![f64::NAN; 3]];
        let actual = vec![vec![1.0, 2.0, 3.0, 4.0, f64::NAN, f64::NAN], vec![1.0]];
        let d = feature_drift(&names, &expected, &actual, 2).unwrap();
        assert_eq!(d[0].psi, 0.0);
        assert_eq!((d[0].missing_expected, d[0].missing_actual, d[0].bins), (1, 2, 2));
        assert!(d[1].psi.is_nan());
        assert_eq!((d[1].missing_expected, d[1].missing_actual, d[1].bins), (3, 0, 1));
    }

    #[test]
    fn feature_drift_checks_shapes() {
        let names = vec!["a".to_string()];
        assert_eq!(
            feature_drift(&names, &[], &[vec![]], 10),
            Err(DriftError::ColumnCount {
                names: 1,
                expected: 0,
                actual: 1
            })
        );
        assert_eq!(
            feature_drift(&names, &[vec![1.0]], &[vec![1.0]], 0),
            Err(DriftError::NoBins)
        );
        assert_eq!(bin_edges(&[], 10), Vec::<f64>::new());
        assert_eq!(bin_edges(&[1.0, 2.0], 1), Vec::<f64>::new());
    }

    #[test]
    fn share_changes_cover_the_union() {
        let changes = share_changes(&[(2, 30), (0, 70)], &[(0, 50), (5, 50)]);
        let rows: Vec<_> = changes
            .iter()
            .map(|c| (c.segment, c.previous_share, c.current_share))
            .collect();
        assert_eq!(rows, vec![(0, 0.7, 0.5), (2, 0.3, 0.0), (5, 0.0, 0.5)]);
        assert!((changes[0].change + 0.2).abs() < 1e-12);
        assert!(share_changes(&[], &[]).is_empty());
        assert_eq!(share_changes(&[(1, 0)], &[])[0].previous_share, 0.0);
    }
}
