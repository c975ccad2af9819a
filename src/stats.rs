//! Order statistics shared by every stage and the report: quantiles exactly as numpy
//! computes them, rank deciles, box-plot statistics and the most common value. One home, so
//! preparation, RFM tiers, drift bins, CLV deciles and the charts all agree to the bit.

use std::collections::BTreeMap;

use rayon::prelude::*;

/// The `q`-quantile of ascending `sorted` values as `numpy.quantile(x, q)` computes it by default: virtual
/// index `h = (n − 1) · q`, interpolated linearly between `sorted[floor(h)]` and the next value. `q` is
/// clamped to 0..=1; a NaN `q` gives NaN.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    let (lo, hi, t) = quantile_positions(sorted.len(), q);
    lerp(sorted[lo], sorted[hi], t)
}

/// The two 0-based sorted positions [`quantile`] reads for `n > 0` values and the weight of
/// the second: an engine that sorts can fetch these two rows instead of returning them all, and
/// [`lerp`] gives the same bits.
pub fn quantile_positions(n: usize, q: f64) -> (usize, usize, f64) {
    let h = (n - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = (h.floor() as usize).min(n - 1);
    (lo, (lo + 1).min(n - 1), h - lo as f64)
}

/// numpy's `_lerp` from `a` to `b` at `t`: from the nearer end, so that t = 1 gives exactly b.
pub fn lerp(a: f64, b: f64, t: f64) -> f64 {
    if t >= 0.5 { b - (b - a) * (1.0 - t) } else { a + (b - a) * t }
}

/// [`quantile`] (linear interpolation, numpy's default) by selection instead of a full sort:
/// O(n) per call, which matters for medians of a million rows. Reorders `v`.
pub fn quantile_of(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let h = (v.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let n = v.len();
    let (_, &mut a, above) = v.select_nth_unstable_by(lo, f64::total_cmp);
    if lo + 1 >= n || h == lo as f64 {
        return a;
    }
    let b = above.iter().copied().fold(f64::INFINITY, f64::min);
    lerp(a, b, h - lo as f64)
}

/// Decile 1..=10 by rank (ties broken by position, so every decile has n/10 customers).
pub fn deciles(v: &[f64]) -> Vec<i32> {
    let n = v.len();
    let mut order: Vec<(f64, usize)> = v.iter().copied().zip(0..n).collect();
    // (value, position) is a total order: an unstable sort is deterministic.
    order.par_sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut out = vec![0; n];
    for (rank, &(_, i)) in order.iter().enumerate() {
        out[i] = (rank * 10 / n.max(1)) as i32 + 1;
    }
    out
}

/// Box-plot numbers for one segment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoxStats {
    /// Finite values used.
    pub n: usize,
    pub p5: f64,
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
    pub p95: f64,
    pub mean: f64,
}

/// Quantiles of the finite values, or `None` when there are none. Sorts a copy: O(n log n),
/// ~0.1 s for a million values, small next to the models.
pub fn box_stats(values: &[f64]) -> Option<BoxStats> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_unstable_by(f64::total_cmp);
    let n = v.len();
    // Mean of x/n rather than sum/n, so huge values cannot overflow to infinity.
    let mean = v.iter().map(|x| x / n as f64).sum();
    Some(BoxStats {
        n,
        p5: quantile(&v, 0.05),
        q1: quantile(&v, 0.25),
        median: quantile(&v, 0.5),
        q3: quantile(&v, 0.75),
        p95: quantile(&v, 0.95),
        mean,
    })
}

/// Most common value (ties → the first in `ALL` order) — used to find a group's dominant stage / tier.
///
/// Ties go to the smallest value by `Ord`; for [`Lifecycle`], [`ValueTier`] and [`ActionKey`] the derived
/// order is declaration order, which is `ALL` order. Empty input gives None.
pub fn dominant<T: Copy + Ord>(values: impl IntoIterator<Item = T>) -> Option<T> {
    let mut counts: BTreeMap<T, usize> = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_insert(0) += 1;
    }
    dominant_of_counts(counts)
}

/// [`dominant`] from counts already taken (e.g. by a `GROUP BY`).
pub fn dominant_of_counts<T: Copy + Ord>(counts: BTreeMap<T, usize>) -> Option<T> {
    // Ascending keys and a strict `>` keep the smallest of the tied values.
    let mut best: Option<(T, usize)> = None;
    for (v, c) in counts {
        if best.is_none_or(|(_, bc)| c > bc) {
            best = Some((v, c));
        }
    }
    best.map(|(v, _)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

        // From numpy 2.4.6:
    //   x = [12.5, 0.0, 99.99, 42.0, 7.25, 63.1, 18.0, 250.0, 5.5, 31.4, 77.7]
    //   [repr(float(np.quantile(x, q))) for q in (0.0, 0.1, 0.25, 0.33, 0.5, 0.62, 0.8, 0.85, 0.95, 1.0)]
    //   y = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    //   [repr(float(np.quantile(y, q))) for q in (0.5, 0.8, 1/3)];  np.quantile([7.0], 0.8)
    const SPEND: [f64; 11] = [12.5, 0.0, 99.99, 42.0, 7.25, 63.1, 18.0, 250.0, 5.5, 31.4, 77.7];
    const NUMPY_SPEND: [(f64, f64); 10] = [
        (0.0, 0.0),
        (0.1, 5.5),
        (0.25, 9.875),
        (0.33, 14.150000000000002),
        (0.5, 31.4),
        (0.62, 46.220000000000006),
        (0.8, 77.7),
        (0.85, 88.845),
        (0.95, 174.995),
        (1.0, 250.0),
    ];
    const NUMPY_Y: [(f64, f64); 3] = [(0.5, 3.5), (0.8, 5.6000000000000005), (1.0 / 3.0, 2.333333333333333)];

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    fn sorted(v: &[f64]) -> Vec<f64> {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        s
    }

    #[test]
    fn quantile_matches_numpy_linear() {
        let s = sorted(&SPEND);
        for (q, expected) in NUMPY_SPEND {
            assert!(
                close(quantile(&s, q), expected),
                "q = {q}: {} vs numpy {expected}",
                quantile(&s, q)
            );
        }
        let s = sorted(&[3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]);
        for (q, expected) in NUMPY_Y {
            assert!(
                close(quantile(&s, q), expected),
                "q = {q}: {} vs numpy {expected}",
                quantile(&s, q)
            );
        }
        assert_eq!(quantile(&[7.0], 0.8), 7.0);
    }

    #[test]
    fn quantile_interpolates_between_neighbours() {
        // h = (5 - 1) · 0.3 = 1.2 -> 10 + 0.2 · (20 - 10) = 12.
        assert!(close(quantile(&[0.0, 10.0, 20.0, 30.0, 40.0], 0.3), 12.0));
    }

    #[test]
    fn quantile_of_nothing_is_nan() {
        assert!(quantile(&[], 0.5).is_nan());
        assert!(quantile(&[1.0, 2.0], f64::NAN).is_nan());
        assert_eq!(quantile(&[1.0, 2.0], 1.5), 2.0); // clamped
        assert_eq!(quantile(&[1.0, 2.0], -0.5), 1.0);
    }

    #[test]
    fn selection_quantile_equals_the_sorted_one() {
        let v: Vec<f64> = (0..101).map(|i| ((i * 37) % 101) as f64 / 3.0 + if i % 7 == 0 { 5.0 } else { 0.0 }).collect();
        let mut sorted = v.clone();
        sorted.sort_by(f64::total_cmp);
        for q in [0.0, 0.01, 0.25, 0.333, 0.5, 0.75, 0.99, 1.0] {
            assert_eq!(quantile_of(&mut v.clone(), q).to_bits(), quantile(&sorted, q).to_bits(), "q = {q}");
        }
    }

    #[test]
    fn box_stats_match_hand_computed_quartiles() {
        // Sorted 1..=10; type-7 quantile h = 9p: p5 at h = 0.45 → 1.45, Q1 at 2.25 → 3.25,
        // median at 4.5 → 5.5, Q3 at 6.75 → 7.75, p95 at 8.55 → 9.55. Non-finite values ignored.
        let v = [7.0, 3.0, f64::NAN, 10.0, 1.0, 9.0, 2.0, f64::INFINITY, 8.0, 5.0, 4.0, 6.0];
        let b = box_stats(&v).unwrap();
        let close = |a: f64, e: f64| (a - e).abs() < 1e-12;
        assert_eq!(b.n, 10);
        assert!(close(b.p5, 1.45) && close(b.q1, 3.25) && close(b.median, 5.5), "{b:?}");
        assert!(close(b.q3, 7.75) && close(b.p95, 9.55) && close(b.mean, 5.5), "{b:?}");

        let one = box_stats(&[4.0]).unwrap();
        assert!([one.p5, one.q1, one.median, one.q3, one.p95, one.mean].iter().all(|&x| x == 4.0));
        assert_eq!(box_stats(&[f64::NAN]), None);
        assert_eq!(box_stats(&[]), None);
    }

    #[test]
    fn deciles_split_evenly_and_order_by_value() {
        let v: Vec<f64> = (0..20).map(|i| (20 - i) as f64).collect();
        let d = deciles(&v);
        assert_eq!(d[0], 10);
        assert_eq!(d[19], 1);
        for k in 1..=10 {
            assert_eq!(d.iter().filter(|&&x| x == k).count(), 2);
        }
    }

    #[test]
    fn dominant_is_the_most_common() {
        assert_eq!(dominant(['c', 'a', 'c', 'n']), Some('c'));
        assert_eq!(dominant(Vec::<char>::new()), None);
    }

    #[test]
    fn dominant_ties_go_to_the_smallest_value() {
        // 1 and 2 both appear twice: the smaller wins (for enums, the first declared).
        assert_eq!(dominant([2, 1, 2, 3, 1]), Some(1));
    }
}
