//! Value tiers (high, medium, low spend relative to the run): the [`ValueTier`] enum, its
//! quantile thresholds ([`ValueThresholds`]) and the rule [`value_tiers`].

use std::fmt;

use crate::stats::quantile;

/// Spend tier relative to the other customers in the same run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum ValueTier {
    High,
    Medium,
    Low,
}

impl ValueTier {
    pub const ALL: [ValueTier; 3] = [ValueTier::High, ValueTier::Medium, ValueTier::Low];

    /// The published name: the variant in lowercase ("high", "medium", "low").
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

// By hand, not strum's padding `Display`: see `Lifecycle`.
impl fmt::Display for ValueTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Quantiles of spend that separate the tiers in [`value_tiers`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValueThresholds {
    pub high_quantile: f64,
    pub low_quantile: f64,
}

impl Default for ValueThresholds {
    fn default() -> Self {
        ValueThresholds {
            high_quantile: 0.8,
            low_quantile: 0.5,
        }
    }
}

impl ValueThresholds {
    /// 0 < low_quantile < high_quantile < 1; the message names the key and value.
    pub fn check(&self) -> Result<(), String> {
        for (key, v) in [
            ("high_quantile", self.high_quantile),
            ("low_quantile", self.low_quantile),
        ] {
            // Written positively so that NaN fails.
            if !(v > 0.0 && v < 1.0) {
                return Err(format!("value {key} = {v} must be strictly between 0 and 1"));
            }
        }
        if self.low_quantile >= self.high_quantile {
            return Err(format!(
                "value low_quantile = {} must be less than high_quantile = {}",
                self.low_quantile, self.high_quantile
            ));
        }
        Ok(())
    }
}

/// Cut-offs are quantiles of `spend` with linear interpolation (numpy's default "linear" method):
/// high: spend >= q_high; low: spend < q_low; medium otherwise. Returns the tiers and the two cut-off values.
///
/// Returns `(tiers in input order, q_high, q_low)`. Empty `spend` gives no tiers and NaN cut-offs. When many
/// customers share the cut-off value the tiers are uneven (e.g. all-equal spend makes everyone high); that is
/// the rule, not an error. Call [`ValueThresholds::check`] first; the quantiles are clamped to 0..=1 here.
pub fn value_tiers(spend: &[f64], t: &ValueThresholds) -> (Vec<ValueTier>, f64, f64) {
    let mut sorted = spend.to_vec();
    sorted.sort_by(f64::total_cmp);
    let q_high = quantile(&sorted, t.high_quantile);
    let q_low = quantile(&sorted, t.low_quantile);
    let tiers = spend
        .iter()
        .map(|&s| {
            if s >= q_high {
                ValueTier::High
            } else if s < q_low {
                ValueTier::Low
            } else {
                ValueTier::Medium
            }
        })
        .collect();
    (tiers, q_high, q_low)
}

#[cfg(test)]
mod tests {
    use super::*;

    // From numpy 2.4.6 (see `stats::tests`): the value list used there.
    const SPEND: [f64; 11] = [12.5, 0.0, 99.99, 42.0, 7.25, 63.1, 18.0, 250.0, 5.5, 31.4, 77.7];

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn high_at_or_above_the_cut_low_strictly_below() {
        // 0, 10, ..., 90: q80 = 70 + 0.2 · 10 = 72, q50 = 45.
        let spend: Vec<f64> = (0..10).map(|i| f64::from(i) * 10.0).collect();
        let (tiers, hi, lo) = value_tiers(&spend, &ValueThresholds::default());
        assert!(close(hi, 72.0) && close(lo, 45.0), "{hi} {lo}");
        use ValueTier::{High as H, Low as L, Medium as M};
        assert_eq!(tiers, vec![L, L, L, L, L, M, M, M, H, H]);
    }

    #[test]
    fn cut_off_values_themselves_are_high_and_medium() {
        // numpy: q80 of SPEND is exactly 77.7 and q50 exactly 31.4, both data points.
        let (tiers, hi, lo) = value_tiers(&SPEND, &ValueThresholds::default());
        assert_eq!((hi, lo), (77.7, 31.4));
        use ValueTier::{High as H, Low as L, Medium as M};
        // 12.5 0 99.99 42 7.25 63.1 18 250 5.5 31.4 77.7
        assert_eq!(tiers, vec![L, L, H, M, L, M, L, H, L, M, H]);
    }

    #[test]
    fn equal_spend_is_all_high() {
        let (tiers, hi, lo) = value_tiers(&[5.0; 4], &ValueThresholds::default());
        assert_eq!((hi, lo), (5.0, 5.0));
        assert_eq!(tiers, vec![ValueTier::High; 4]);
    }

    #[test]
    fn no_spend_no_tiers() {
        let (tiers, hi, lo) = value_tiers(&[], &ValueThresholds::default());
        assert!(tiers.is_empty() && hi.is_nan() && lo.is_nan());
    }

    #[test]
    fn value_thresholds_must_be_ordered_inside_zero_one() {
        let check = |high_quantile, low_quantile| {
            ValueThresholds {
                high_quantile,
                low_quantile,
            }
            .check()
        };
        let d = ValueThresholds::default();
        assert_eq!((d.high_quantile, d.low_quantile), (0.8, 0.5));
        assert_eq!(d.check(), Ok(()));
        assert_eq!(
            check(1.0, 0.5),
            Err("value high_quantile = 1 must be strictly between 0 and 1".into())
        );
        assert_eq!(
            check(0.8, 0.0),
            Err("value low_quantile = 0 must be strictly between 0 and 1".into())
        );
        assert_eq!(
            check(0.8, f64::NAN),
            Err("value low_quantile = NaN must be strictly between 0 and 1".into())
        );
        assert_eq!(
            check(0.5, 0.5),
            Err("value low_quantile = 0.5 must be less than high_quantile = 0.5".into())
        );
    }

    #[test]
    fn value_tier_names_and_order() {
        let names: Vec<&str> = ValueTier::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(names, ["high", "medium", "low"]);
    }
}
