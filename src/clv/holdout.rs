//! The holdout check (`clv_validation`): actual against predicted repeat purchases per
//! calibration-frequency bucket.

use super::purchase::PurchaseParams;
use super::tuples::PurchaseTuple;

/// One row of `clv_validation`.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldoutBucket {
    pub bucket: String,
    pub customers: usize,
    pub actual_holdout: f64,
    pub predicted_holdout: f64,
}

/// Customers who share a calibration summary (x, t_x, T as of the calibration end) and a
/// frequency at the run date: their holdout purchases and their prediction are the same, so
/// the check needs these tuples with counts, not the customers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HoldoutTuple {
    pub cal_frequency: f64,
    pub cal_recency: f64,
    pub cal_tenure: f64,
    /// Repeat purchase periods up to the run date; the holdout's are the difference.
    pub frequency: f64,
    pub customers: u64,
}

/// The check over every calibration customer.
#[derive(Debug, Clone, PartialEq)]
pub struct Holdout {
    /// Per calibration-frequency bucket (0 … 6, "7+"), the mean actual and predicted repeat
    /// purchases in the holdout.
    pub buckets: Vec<HoldoutBucket>,
    /// Mean absolute error per customer.
    pub mae: f64,
    pub total_actual: f64,
    pub total_predicted: f64,
    pub customers: u64,
}

/// The customers' summaries as of the calibration end, the tuples a holdout's fit takes.
pub fn calibration_tuples(tuples: &[HoldoutTuple]) -> Vec<PurchaseTuple> {
    tuples.iter().map(|t| PurchaseTuple { frequency: t.cal_frequency, recency: t.cal_recency, tenure: t.cal_tenure, customers: t.customers }).collect()
}

/// `tuples` sorted, equal ones merged: sums over them are the same however the customers were
/// grouped or ordered.
pub(super) fn canonical(tuples: &[HoldoutTuple]) -> Vec<HoldoutTuple> {
    let mut sorted = tuples.to_vec();
    let key = |t: &HoldoutTuple| [t.cal_frequency, t.cal_recency, t.cal_tenure, t.frequency];
    let order = |x: &HoldoutTuple, y: &HoldoutTuple| key(x).iter().zip(key(y)).map(|(a, b)| a.total_cmp(&b)).find(|o| o.is_ne()).unwrap_or(std::cmp::Ordering::Equal);
    sorted.sort_unstable_by(order);
    sorted.chunk_by(|x, y| order(x, y).is_eq()).map(|same| HoldoutTuple { customers: same.iter().map(|t| t.customers).sum(), ..same[0] }).collect()
}

/// One point of the holdout's tracking: purchases from the calibration end to `days` after it,
/// summed over every customer known at the calibration end.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackingPoint {
    pub days: u32,
    pub actual_cumulative: f64,
    pub expected_cumulative: f64,
}

/// Cumulative actual and expected repeat purchases week by week through the holdout's `days`
/// (the last point at `days`), as lifetimes' `plot_cumulative_transactions` draws them:
/// `daily` holds the actual purchases per day after the calibration end (day 1 … `days`),
/// each group's parameters predict over `d · per_day` periods for its calibration tuples (one
/// group without covariates, see [`holdout`]).
pub fn tracking(groups: &[(PurchaseParams, &[HoldoutTuple])], per_day: f64, days: u32, daily: &[(u32, f64)]) -> Vec<TrackingPoint> {
    let mut ends: Vec<u32> = (1..=days / 7).map(|w| 7 * w).collect();
    if days % 7 != 0 {
        ends.push(days);
    }
    let groups: Vec<(PurchaseParams, Vec<HoldoutTuple>)> = groups.iter().map(|(b, tuples)| (*b, canonical(tuples))).collect();
    ends.into_iter()
        .map(|end| TrackingPoint {
            days: end,
            actual_cumulative: daily.iter().filter(|(d, _)| *d <= end).map(|(_, n)| n).sum(),
            expected_cumulative: groups
                .iter()
                .flat_map(|(b, tuples)| tuples.iter().map(move |t| t.customers as f64 * b.expected_purchases(end as f64 * per_day, t.cal_frequency, t.cal_recency, t.cal_tenure)))
                .sum(),
        })
        .collect()
}

/// Calibration-frequency buckets of `clv_validation`: 0 … 6, and 7 for "7+".
pub(super) const BUCKETS: usize = 8;

/// The bucket of a calibration frequency, an index below [`BUCKETS`].
pub(super) fn bucket_index(cal_frequency: f64) -> usize {
    (cal_frequency as usize).min(BUCKETS - 1)
}

/// The bucket's name in `clv_validation`: "0" … "6", "7+".
pub(super) fn bucket_name(k: usize) -> String {
    if k == 7 { "7+".into() } else { k.to_string() }
}

/// Compares the purchases the model fitted on the calibration period predicts over the next
/// `horizon` periods with the actual ones: per group of customers, its parameters and tuples
/// (one group without covariates; with them, customers sharing their covariates). Tuples are
/// taken in ascending order, so the sums do not depend on the order they arrive in.
pub fn holdout(groups: &[(PurchaseParams, &[HoldoutTuple])], horizon: f64) -> Holdout {
    let mut sums = [(0u64, 0.0, 0.0); BUCKETS];
    let (mut abs_err, mut customers) = (0.0, 0u64);
    for (b, t) in groups.iter().flat_map(|(b, tuples)| canonical(tuples).into_iter().map(move |t| (b, t))) {
        let w = t.customers as f64;
        let actual = t.frequency - t.cal_frequency;
        let predicted = b.expected_purchases(horizon, t.cal_frequency, t.cal_recency, t.cal_tenure);
        let k = bucket_index(t.cal_frequency);
        sums[k].0 += t.customers;
        sums[k].1 += w * actual;
        sums[k].2 += w * predicted;
        abs_err += w * (actual - predicted).abs();
        customers += t.customers;
    }
    let buckets = sums
        .iter()
        .enumerate()
        .filter(|(_, s)| s.0 > 0)
        .map(|(k, s)| HoldoutBucket {
            bucket: bucket_name(k),
            customers: s.0 as usize,
            actual_holdout: s.1 / s.0 as f64,
            predicted_holdout: s.2 / s.0 as f64,
        })
        .collect();
    Holdout {
        buckets,
        mae: abs_err / customers.max(1) as f64,
        total_actual: sums.iter().map(|s| s.1).sum(),
        total_predicted: sums.iter().map(|s| s.2).sum(),
        customers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuples_weigh_as_many_customers_as_they_count_in_any_order() {
        let b = PurchaseParams::new(Default::default(), [0.5, 4.0, 0.8, 2.5]);
        let t = |cal_frequency, frequency, customers| HoldoutTuple { cal_frequency, cal_recency: cal_frequency * 2.0, cal_tenure: 30.0, frequency, customers };
        let grouped = [t(0.0, 1.0, 3), t(2.0, 2.0, 1), t(9.0, 11.0, 2)];
        let single = [t(9.0, 11.0, 1), t(0.0, 1.0, 1), t(2.0, 2.0, 1), t(0.0, 1.0, 1), t(9.0, 11.0, 1), t(0.0, 1.0, 1)];
        let (g, s) = (holdout(&[(b, &grouped)], 10.0), holdout(&[(b, &single)], 10.0));
        assert_eq!(g, s);
        assert_eq!(g.customers, 6);
        assert_eq!(g.buckets.iter().map(|b| (b.bucket.as_str(), b.customers)).collect::<Vec<_>>(), [("0", 3), ("2", 1), ("7+", 2)]);
        assert_eq!(g.buckets[2].actual_holdout, 2.0);
        for (x, y) in [(g.mae, s.mae), (g.total_predicted, s.total_predicted), (g.total_actual, 7.0)] {
            assert!((x - y).abs() < 1e-12, "{x} vs {y}");
        }
        let reversed: Vec<HoldoutTuple> = grouped.iter().rev().copied().collect();
        assert_eq!(holdout(&[(b, &reversed)], 10.0), g);
    }
}
