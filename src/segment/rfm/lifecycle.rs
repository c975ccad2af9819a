//! Lifecycle stages (new, active, silent, churned): the [`Lifecycle`] enum, its day
//! thresholds ([`LifecycleThresholds`]) and the rule [`lifecycle`].

use std::fmt;

/// Where a customer is in their relationship with us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum Lifecycle {
    New,
    Active,
    Silent,
    Churned,
}

impl Lifecycle {
    pub const ALL: [Lifecycle; 4] = [Lifecycle::New, Lifecycle::Active, Lifecycle::Silent, Lifecycle::Churned];

    /// The published name: the variant in lowercase ("new", "active", "silent", "churned").
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

// Written by hand rather than derived: strum's `Display` pads to a width (`{:8}`), this one
// writes the bare name as before.
impl fmt::Display for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Day thresholds for [`lifecycle`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LifecycleThresholds {
    pub new_days: f64,
    pub silent_days: f64,
    pub churned_days: f64,
}

impl Default for LifecycleThresholds {
    fn default() -> Self {
        LifecycleThresholds {
            new_days: 30.0,
            silent_days: 60.0,
            churned_days: 180.0,
        }
    }
}

impl LifecycleThresholds {
    /// All finite and >= 0, and silent_days < churned_days; the message names the key and value.
    pub fn check(&self) -> Result<(), String> {
        for (key, v) in [
            ("new_days", self.new_days),
            ("silent_days", self.silent_days),
            ("churned_days", self.churned_days),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("lifecycle {key} = {v} must be a finite number >= 0"));
            }
        }
        if self.silent_days >= self.churned_days {
            return Err(format!(
                "lifecycle silent_days = {} must be less than churned_days = {}",
                self.silent_days, self.churned_days
            ));
        }
        Ok(())
    }
}

/// new: age_days <= new_days; else churned: recency_days > churned_days; else silent: recency_days > silent_days;
/// else active.
///
/// `age_days` is days since signup or first purchase, `recency_days` days since the last purchase. New wins
/// over recency so that a recent signup who has not bought yet is onboarded, not won back. NaN inputs fail
/// every comparison and give Active; the caller guarantees finite values.
pub fn lifecycle(age_days: f64, recency_days: f64, t: &LifecycleThresholds) -> Lifecycle {
    if age_days <= t.new_days {
        Lifecycle::New
    } else if recency_days > t.churned_days {
        Lifecycle::Churned
    } else if recency_days > t.silent_days {
        Lifecycle::Silent
    } else {
        Lifecycle::Active
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_wins_over_recency() {
        let t = LifecycleThresholds::default();
        assert_eq!(lifecycle(10.0, 500.0, &t), Lifecycle::New);
        assert_eq!(lifecycle(30.0, 90.0, &t), Lifecycle::New); // age <= new_days is inclusive
    }

    #[test]
    fn thresholds_are_exclusive_for_recency() {
        let t = LifecycleThresholds::default();
        assert_eq!(lifecycle(31.0, 0.0, &t), Lifecycle::Active);
        assert_eq!(lifecycle(31.0, 60.0, &t), Lifecycle::Active);
        assert_eq!(lifecycle(31.0, 60.5, &t), Lifecycle::Silent);
        assert_eq!(lifecycle(400.0, 180.0, &t), Lifecycle::Silent);
        assert_eq!(lifecycle(400.0, 181.0, &t), Lifecycle::Churned);
    }

    #[test]
    fn lifecycle_defaults_are_30_60_180() {
        let t = LifecycleThresholds::default();
        assert_eq!((t.new_days, t.silent_days, t.churned_days), (30.0, 60.0, 180.0));
        assert_eq!(t.check(), Ok(()));
    }

    #[test]
    fn bad_lifecycle_thresholds_name_the_key() {
        let check = |new_days, silent_days, churned_days| {
            LifecycleThresholds {
                new_days,
                silent_days,
                churned_days,
            }
            .check()
        };
        assert_eq!(
            check(-1.0, 60.0, 180.0),
            Err("lifecycle new_days = -1 must be a finite number >= 0".into())
        );
        assert_eq!(
            check(30.0, f64::NAN, 180.0),
            Err("lifecycle silent_days = NaN must be a finite number >= 0".into())
        );
        assert_eq!(
            check(30.0, 60.0, f64::INFINITY),
            Err("lifecycle churned_days = inf must be a finite number >= 0".into())
        );
        assert_eq!(
            check(30.0, 180.0, 180.0),
            Err("lifecycle silent_days = 180 must be less than churned_days = 180".into())
        );
        assert_eq!(check(0.0, 0.0, 0.5), Ok(()));
    }

    #[test]
    fn lifecycle_names_and_order() {
        let names: Vec<&str> = Lifecycle::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, ["new", "active", "silent", "churned"]);
        assert_eq!(Lifecycle::Silent.to_string(), "silent");
    }
}
