//! The holdout check (`clv_validation`): actual against predicted repeat purchases per
//! calibration-frequency bucket.

/// One row of `clv_validation`.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldoutBucket {
    pub bucket: String,
    pub customers: usize,
    pub actual_holdout: f64,
    pub predicted_holdout: f64,
}

/// Holdout summary: per calibration-frequency bucket (0 … 6, "7+"), the mean actual and
/// predicted repeat purchases in the holdout, plus the mean absolute error per customer.
pub fn holdout(frequency_cal: &[f64], actual: &[f64], predicted: &[f64]) -> (Vec<HoldoutBucket>, f64) {
    let mut sums = [(0usize, 0.0, 0.0); 8];
    let mut abs_err = 0.0;
    for i in 0..frequency_cal.len() {
        let k = (frequency_cal[i] as usize).min(7);
        sums[k].0 += 1;
        sums[k].1 += actual[i];
        sums[k].2 += predicted[i];
        abs_err += (actual[i] - predicted[i]).abs();
    }
    let rows = sums
        .iter()
        .enumerate()
        .filter(|(_, s)| s.0 > 0)
        .map(|(k, s)| HoldoutBucket {
            bucket: if k == 7 { "7+".into() } else { k.to_string() },
            customers: s.0,
            actual_holdout: s.1 / s.0 as f64,
            predicted_holdout: s.2 / s.0 as f64,
        })
        .collect();
    (rows, abs_err / frequency_cal.len().max(1) as f64)
}
