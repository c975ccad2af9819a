//! Aligning K-means cluster ids across runs (issue #11).
//!
//! K-means numbers its clusters arbitrarily, so "segment 3" of today's run is not necessarily
//! "segment 3" of yesterday's. Dashboards need stable ids, so new clusters take over the id of
//! the old cluster whose centroid is closest, where "closest" is the assignment with the minimum
//! *total* Euclidean centroid distance (Hungarian / Kuhn–Munkres), not a greedy nearest-first pass.
//!
//! Both centroid sets must live in the same prepared (scaled) feature space, otherwise distances
//! are meaningless.
//!
//! Tie rule: when several assignments have the same (fixed-point) total, the one returned by
//! `pathfinding::kuhn_munkres_min` is kept as is. It is a pure function of the weight matrix
//! (integer arithmetic, scans in index order), so the same input always yields the same ids;
//! reordering the input may pick a different one of the tied assignments. In practice tied
//! columns go to the lowest old index first (pinned in `ties_are_deterministic`). Distances that
//! differ by less than the fixed-point resolution (1e-9) count as ties.


use pathfinding::prelude::{Matrix, kuhn_munkres_min};
use thiserror::Error;

/// Fixed-point scale for distances: 1e-9 of a scaled-feature unit, far below any difference
/// between centroids that matters, so the integer optimum is the real optimum up to rounding.
const FIXED_POINT_SCALE: f64 = 1e9;

#[derive(Debug, Clone, PartialEq)]
pub struct Alignment {
    /// For each new cluster (by its index in `new`), the id it gets: the matched old id, or a fresh id.
    pub ids: Vec<i64>,
    /// Old ids with no new cluster matched to them (vanished clusters), ascending.
    pub vanished: Vec<i64>,
    /// New cluster indices that got fresh ids.
    pub fresh: Vec<usize>,
    /// Distance of each new cluster to its matched old centroid (None for fresh ones).
    pub distances: Vec<Option<f64>>,
}

/// Which centroid set a validation error refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display)]
#[strum(serialize_all = "lowercase")]
pub enum Side {
    Old,
    New,
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum AlignError {
    #[error("{ids} old ids given for {centroids} old centroids")]
    IdCountMismatch { ids: usize, centroids: usize },
    #[error("{side} centroid {index} has {len} values but {ref_side} centroid {ref_index} has {ref_len}")]
    DimensionMismatch {
        side: Side,
        index: usize,
        len: usize,
        ref_side: Side,
        ref_index: usize,
        ref_len: usize,
    },
    #[error("{side} centroid {index} has a non-finite value at position {position}")]
    NonFinite { side: Side, index: usize, position: usize },
    #[error("old id {0} appears more than once")]
    DuplicateOldId(i64),
    #[error("max_distance must be a non-negative number, got {0}")]
    InvalidMaxDistance(f64),
    #[error("distance between new centroid {new} and old centroid {old} overflows f64")]
    DistanceOverflow { new: usize, old: usize },
    #[error("no fresh cluster id is left: ids would pass i64::MAX")]
    IdOverflow,
}

/// Matches `new` centroids to `old` ones (ids `old_ids`) by minimum total Euclidean distance.
///
/// New clusters without a partner (more new than old, or farther than `max_distance`) get fresh
/// ids `max(old_ids) + 1, + 2, …` (from 0 when there are no old ids) in new-index order.
/// `max_distance` is applied after the optimal assignment: a matched pair that is too far apart is
/// split (new one fresh, old one vanished) rather than re-matched.
pub fn align(
    old_ids: &[i64],
    old: &[Vec<f64>],
    new: &[Vec<f64>],
    max_distance: Option<f64>,
) -> Result<Alignment, AlignError> {
    validate(old_ids, old, new, max_distance)?;

    // distances[i * old.len() + j]: new cluster i to old cluster j.
    let mut distances = Vec::with_capacity(new.len() * old.len());
    for (i, n) in new.iter().enumerate() {
        for (j, o) in old.iter().enumerate() {
            let d = euclidean(n, o);
            if !d.is_finite() {
                return Err(AlignError::DistanceOverflow { new: i, old: j });
            }
            distances.push(d);
        }
    }

    let mut matched: Vec<Option<usize>> = vec![None; new.len()];
    if !new.is_empty() && !old.is_empty() {
        let scale = fixed_point_scale(&distances, new.len().max(old.len()));
        // Kuhn–Munkres needs an ordered, exactly-summing weight type: f64 is not `Ord`, and float
        // rounding in its label updates could break the "tight edge" tests (NaN can even make it
        // loop forever). Fixed-point i64 weights avoid all of that.
        let weight = |i: usize, j: usize| (distances[i * old.len() + j] * scale).round() as i64;
        // The solver requires rows <= columns (every row gets a column), so put the smaller side on rows.
        if new.len() <= old.len() {
            let (_, cols) = kuhn_munkres_min(&Matrix::from_fn(new.len(), old.len(), |(i, j)| weight(i, j)));
            for (i, j) in cols.into_iter().enumerate() {
                matched[i] = Some(j);
            }
        } else {
            let (_, cols) = kuhn_munkres_min(&Matrix::from_fn(old.len(), new.len(), |(j, i)| weight(i, j)));
            for (j, i) in cols.into_iter().enumerate() {
                matched[i] = Some(j);
            }
        }
    }

    if let Some(limit) = max_distance {
        for (i, m) in matched.iter_mut().enumerate() {
            if m.is_some_and(|j| distances[i * old.len() + j] > limit) {
                *m = None;
            }
        }
    }

    let mut next_fresh = match old_ids.iter().max() {
        Some(&m) => m.checked_add(1),
        None => Some(0),
    };
    let mut ids = Vec::with_capacity(new.len());
    let mut fresh = Vec::new();
    let mut dists = Vec::with_capacity(new.len());
    let mut old_used = vec![false; old.len()];
    for (i, m) in matched.iter().enumerate() {
        match *m {
            Some(j) => {
                old_used[j] = true;
                ids.push(old_ids[j]);
                dists.push(Some(distances[i * old.len() + j]));
            }
            None => {
                // `None` only once i64::MAX was reached (by max(old_ids) or a fresh id).
                let id = next_fresh.ok_or(AlignError::IdOverflow)?;
                next_fresh = id.checked_add(1);
                ids.push(id);
                fresh.push(i);
                dists.push(None);
            }
        }
    }
    let mut vanished: Vec<i64> = old_ids
        .iter()
        .zip(&old_used)
        .filter(|&(_, &used)| !used)
        .map(|(&id, _)| id)
        .collect();
    vanished.sort_unstable();

    Ok(Alignment {
        ids,
        vanished,
        fresh,
        distances: dists,
    })
}

fn validate(old_ids: &[i64], old: &[Vec<f64>], new: &[Vec<f64>], max_distance: Option<f64>) -> Result<(), AlignError> {
    if old_ids.len() != old.len() {
        return Err(AlignError::IdCountMismatch {
            ids: old_ids.len(),
            centroids: old.len(),
        });
    }
    let mut sorted = old_ids.to_vec();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(AlignError::DuplicateOldId(w[0]));
    }
    if let Some(d) = max_distance
        && (d.is_nan() || d < 0.0)
    {
        return Err(AlignError::InvalidMaxDistance(d));
    }

    let all = || {
        old.iter()
            .enumerate()
            .map(|(i, c)| (Side::Old, i, c))
            .chain(new.iter().enumerate().map(|(i, c)| (Side::New, i, c)))
    };
    let Some((ref_side, ref_index, reference)) = all().next() else {
        return Ok(());
    };
    for (side, index, c) in all() {
        if c.len() != reference.len() {
            return Err(AlignError::DimensionMismatch {
                side,
                index,
                len: c.len(),
                ref_side,
                ref_index,
                ref_len: reference.len(),
            });
        }
        if let Some(position) = c.iter().position(|v| !v.is_finite()) {
            return Err(AlignError::NonFinite { side, index, position });
        }
    }
    Ok(())
}

fn euclidean(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt()
}

/// 1e9 unless the largest distance would leave too little headroom. With a free column at label
/// 0, the solver's labels stay within ±max weight, so sums of n labels (and slacks of three terms)
/// fit in i64 when max weight <= i64::MAX / (4 (n + 1)); beyond that the resolution is reduced
/// rather than risking an overflow panic.
fn fixed_point_scale(distances: &[f64], n: usize) -> f64 {
    let max_d = distances.iter().copied().fold(0.0, f64::max);
    let limit = (i64::MAX / (n as i64).saturating_add(1).saturating_mul(4)) as f64;
    if max_d * FIXED_POINT_SCALE <= limit {
        FIXED_POINT_SCALE
    } else {
        limit / max_d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rand_distr::{Distribution, Normal};

    fn centroids() -> Vec<Vec<f64>> {
        vec![
            vec![0.0, 0.0, 0.0],
            vec![3.0, 0.0, 1.0],
            vec![0.0, 4.0, -1.0],
            vec![-2.0, -2.0, 2.0],
            vec![5.0, 5.0, 5.0],
        ]
    }

    fn total(a: &Alignment) -> f64 {
        a.distances.iter().flatten().sum()
    }

    #[test]
    fn permutation_is_recovered_exactly() {
        let old = centroids();
        let old_ids = vec![10, 11, 12, 13, 14];
        let perm = [3, 0, 4, 1, 2]; // new cluster i is old cluster perm[i]
        let new: Vec<_> = perm.iter().map(|&j| old[j].clone()).collect();
        let a = align(&old_ids, &old, &new, None).unwrap();
        assert_eq!(a.ids, perm.iter().map(|&j| old_ids[j]).collect::<Vec<_>>());
        assert!(a.vanished.is_empty() && a.fresh.is_empty());
        assert!(a.distances.iter().all(|d| *d == Some(0.0)));
    }

    #[test]
    fn noisy_permutation_is_recovered() {
        let old = centroids();
        let old_ids = vec![0, 1, 2, 3, 4];
        let perm = [2, 4, 1, 0, 3];
        let mut rng = StdRng::seed_from_u64(11);
        let noise = Normal::new(0.0, 0.1).unwrap();
        let new: Vec<Vec<f64>> = perm
            .iter()
            .map(|&j| old[j].iter().map(|v| v + noise.sample(&mut rng)).collect())
            .collect();
        let a = align(&old_ids, &old, &new, None).unwrap();
        assert_eq!(a.ids, perm.iter().map(|&j| j as i64).collect::<Vec<_>>());
        assert!(a.distances.iter().all(|d| d.is_some_and(|d| d > 0.0 && d < 1.0)));
    }

    #[test]
    fn k_grows_gives_fresh_id() {
        let old = vec![vec![0.0, 0.0], vec![10.0, 0.0], vec![0.0, 10.0]];
        let new = vec![vec![10.1, 0.0], vec![50.0, 50.0], vec![0.0, 0.1], vec![0.0, 9.9]];
        let a = align(&[5, 7, 2], &old, &new, None).unwrap();
        assert_eq!(a.ids, vec![7, 8, 5, 2]);
        assert_eq!(a.fresh, vec![1]);
        assert!(a.vanished.is_empty());
        assert_eq!(a.distances[1], None);
    }

    #[test]
    fn k_shrinks_gives_vanished_id() {
        let old = vec![vec![0.0, 0.0], vec![10.0, 0.0], vec![0.0, 10.0], vec![50.0, 50.0]];
        let new = vec![vec![0.0, 9.8], vec![0.2, 0.0], vec![10.0, 0.3]];
        let a = align(&[1, 2, 3, 4], &old, &new, None).unwrap();
        assert_eq!(a.ids, vec![3, 1, 2]);
        assert_eq!(a.vanished, vec![4]);
        assert!(a.fresh.is_empty());
    }

    #[test]
    fn optimum_is_global_not_greedy() {
        // 1-D: old A = 0, B = 2; new X = 1.9, Y = 3.
        // Greedy (closest pair first) takes X–B (0.1), leaving Y–A (3.0): total 3.1.
        // Optimal is X–A (1.9) + Y–B (1.0): total 2.9.
        let old = vec![vec![0.0], vec![2.0]];
        let new = vec![vec![1.9], vec![3.0]];
        let greedy_total = 0.1 + 3.0;
        let a = align(&[100, 200], &old, &new, None).unwrap();
        assert_eq!(a.ids, vec![100, 200]);
        assert!((total(&a) - 2.9).abs() < 1e-12);
        assert!(total(&a) < greedy_total);
    }

    #[test]
    fn max_distance_splits_far_pairs() {
        let old = vec![vec![0.0], vec![10.0]];
        let new = vec![vec![0.5], vec![14.0]];
        let a = align(&[0, 1], &old, &new, Some(1.0)).unwrap();
        assert_eq!(a.ids, vec![0, 2]);
        assert_eq!(a.fresh, vec![1]);
        assert_eq!(a.vanished, vec![1]);
        assert_eq!(a.distances, vec![Some(0.5), None]);
        // Exactly at the limit still matches; no limit matches everything.
        assert_eq!(align(&[0, 1], &old, &new, Some(4.0)).unwrap().ids, vec![0, 1]);
        assert_eq!(align(&[0, 1], &old, &new, None).unwrap().ids, vec![0, 1]);
    }

    #[test]
    fn ties_are_deterministic() {
        // All three old centroids are equidistant from both new ones: every assignment ties.
        let old = vec![vec![1.0, 0.0], vec![-1.0, 0.0], vec![0.0, 1.0]];
        let new = vec![vec![0.0, 0.0], vec![0.0, 0.0]];
        let first = align(&[7, 8, 9], &old, &new, None).unwrap();
        for _ in 0..50 {
            assert_eq!(align(&[7, 8, 9], &old, &new, None).unwrap(), first);
        }
        // Observed solver behaviour (pinned so a pathfinding upgrade that changes it is noticed):
        // tied columns resolve to the lowest old index first.
        assert_eq!((first.ids, first.vanished), (vec![7, 8], vec![9]));
        let same = vec![vec![0.0, 0.0]; 3];
        assert_eq!(align(&[7, 8, 9], &same, &same, None).unwrap().ids, vec![7, 8, 9]);
    }

    #[test]
    fn empty_inputs() {
        let c = vec![vec![1.0, 2.0], vec![3.0, 4.0]];
        let all_fresh = align(&[], &[], &c, None).unwrap();
        assert_eq!(all_fresh.ids, vec![0, 1]);
        assert_eq!(all_fresh.fresh, vec![0, 1]);
        let all_vanished = align(&[4, 3], &c, &[], None).unwrap();
        assert!(all_vanished.ids.is_empty());
        assert_eq!(all_vanished.vanished, vec![3, 4]);
        assert_eq!(align(&[], &[], &[], None).unwrap().ids, Vec::<i64>::new());
    }

    #[test]
    fn bad_input_is_an_error() {
        let old = vec![vec![0.0, 0.0], vec![1.0, 1.0]];
        assert_eq!(
            align(&[0, 1], &old, &[vec![0.0, 0.0, 0.0]], None),
            Err(AlignError::DimensionMismatch {
                side: Side::New,
                index: 0,
                len: 3,
                ref_side: Side::Old,
                ref_index: 0,
                ref_len: 2
            })
        );
        assert_eq!(
            align(&[0, 1], &old, &[vec![0.0, f64::NAN]], None),
            Err(AlignError::NonFinite {
                side: Side::New,
                index: 0,
                position: 1
            })
        );
        assert_eq!(align(&[3, 3], &old, &[], None), Err(AlignError::DuplicateOldId(3)));
        assert_eq!(
            align(&[0], &old, &[], None),
            Err(AlignError::IdCountMismatch { ids: 1, centroids: 2 })
        );
        assert!(matches!(
            align(&[0, 1], &old, &[], Some(f64::NAN)),
            Err(AlignError::InvalidMaxDistance(_))
        ));
        assert_eq!(
            align(&[0], &[vec![-1e200]], &[vec![1e200]], None),
            Err(AlignError::DistanceOverflow { new: 0, old: 0 })
        );
        assert_eq!(
            align(&[i64::MAX], &[vec![0.0]], &[vec![0.0], vec![1.0]], None),
            Err(AlignError::IdOverflow)
        );
        let msg = align(&[0, 1], &old, &[vec![0.0]], None).unwrap_err().to_string();
        assert_eq!(msg, "new centroid 0 has 1 values but old centroid 0 has 2");
    }

    #[test]
    fn huge_distances_do_not_overflow() {
        // 1e150 * 1e9 would not fit in i64; the scale is reduced instead of panicking.
        let old = vec![vec![0.0], vec![1e150]];
        let new = vec![vec![1e150], vec![1.0]];
        assert_eq!(align(&[0, 1], &old, &new, None).unwrap().ids, vec![1, 0]);
    }
}
