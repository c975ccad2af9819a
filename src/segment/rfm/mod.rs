//! RFM scoring, named RFM segments, lifecycle stages, value tiers and default recommended actions.
//!
//! RFM (Hughes, "Strategic Database Marketing", 1994) scores each customer on Recency (days since the
//! last purchase), Frequency (number of purchases) and Monetary value (spend), each on a 1-5 scale by
//! rank, so that 5 is always best: the most recent, most frequent, highest spending fifth scores 5.
//!
//! - `scores`: [`quintile_scores`] and the named segments; [`default_rules`] is the widely used
//!   R × F segment map (M is ignored), 11 segments, with Hibernating split from Lost by R.
//! - `lifecycle`: [`LifecycleThresholds`] default to new within 30 days of signup,
//!   silent after 60 days without a purchase, churned after 180.
//! - `tiers`: [`ValueThresholds`] default to high value at or above the 80th percentile of spend,
//!   low below the median.
//! - `actions`: [`default_action`] and [`default_economics`], one recommended action per
//!   [`ActionKey`].
//!
//! Everything here is pure: values in, values out, no I/O, no global state. Bad configuration is
//! reported as `Err(String)` by the `check*`/`parse*` functions; scoring functions never panic.

mod actions;
mod lifecycle;
mod scores;
mod tiers;

pub use actions::{ActionKey, Economics, default_action, default_economics, group_action_key, rfm_action_key};
pub use lifecycle::{Lifecycle, LifecycleThresholds, lifecycle};
pub use scores::{RfmRule, check_rules, default_rules, parse_range, quintile_scores, rfm_cell, rfm_segment};
pub use tiers::{ValueThresholds, ValueTier, value_tiers};
