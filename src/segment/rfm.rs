//! RFM scoring, named RFM segments, lifecycle stages, value tiers and default recommended actions.
//!
//! RFM (Hughes, "Strategic Database Marketing", 1994) scores each customer on Recency (days since the
//! last purchase), Frequency (number of purchases) and Monetary value (spend), each on a 1-5 scale by
//! rank, so that 5 is always best: the most recent, most frequent, highest spending fifth scores 5.
//!
//! Tie rule: [`quintile_scores`] ranks like SQL `RANK()` — equal values share the lowest rank of their
//! group — and maps rank `r` of `n` to `1 + floor(5 (r - 1) / n)`. Equal values therefore always get
//! equal scores; a value shared by many rows (e.g. frequency 1) gets the score of where its group starts,
//! so quintiles can be uneven or empty when the data are heavily tied.
//!
//! Defaults:
//! - [`default_rules`]: the widely used R × F segment map (M is ignored), 11 segments, with
//!   Hibernating split from Lost by R.
//! - [`LifecycleThresholds`]: new within 30 days of signup, silent after 60 days without a purchase,
//!   churned after 180.
//! - [`ValueThresholds`]: high value at or above the 80th percentile of spend, low below the median.
//! - [`default_action`]: one recommended action per [`ActionKey`].
//!
//! Everything here is pure: values in, values out, no I/O, no global state. Bad configuration is
//! reported as `Err(String)` by the `check*`/`parse*` functions; scoring functions never panic.

use std::fmt;

use crate::stats::quantile;

// ---------------------------------------------------------------------------------------------------------------
// Quintile scores
// ---------------------------------------------------------------------------------------------------------------

/// Scores 1..=5 by rank. `higher_is_better`: for frequency and monetary (true) the largest values score 5; for
/// recency_days (false) the smallest (most recent) score 5.
///
/// Rule: sort the values so that "worse" comes first (ascending when `higher_is_better`, descending
/// otherwise; stable, by [`f64::total_cmp`]). Each row's rank `r` is the 1-based position of the FIRST row
/// with an equal value (ties share the lowest rank, like SQL `RANK()`), and its score is
/// `1 + floor(5 · (r − 1) / n)`. Equal values always get equal scores, and a value shared by many rows
/// gets the score of where its group starts — so if every value is equal, every row scores 1.
///
/// The caller guarantees finite values (a NaN does not panic but gets an unspecified score).
/// Scores are returned in input order; `n = 0` gives an empty vector.
pub fn quintile_scores(values: &[f64], higher_is_better: bool) -> Vec<u8> {
    let n = values.len();
    let mut order: Vec<usize> = (0..n).collect();
    if higher_is_better {
        order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    } else {
        order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    }
    let mut scores = vec![0u8; n];
    let mut group_start = 0usize; // 0-based position of the first row of the current tie group
    for (pos, &row) in order.iter().enumerate() {
        // `==` rather than total_cmp so that -0.0 and 0.0 tie; they are adjacent after the sort.
        if pos > 0 && values[row] != values[order[pos - 1]] {
            group_start = pos;
        }
        // group_start = r - 1 < n, so the quotient is 0..=4.
        scores[row] = 1 + (5 * group_start / n) as u8;
    }
    scores
}

// ---------------------------------------------------------------------------------------------------------------
// RFM cell and named segments
// ---------------------------------------------------------------------------------------------------------------

/// A named RFM segment: the cells whose R, F and M scores all fall in the inclusive ranges (within 1..=5).
#[derive(Debug, Clone, PartialEq)]
pub struct RfmRule {
    pub name: String,
    pub r: (u8, u8),
    pub f: (u8, u8),
    pub m: (u8, u8),
}

impl RfmRule {
    fn matches(&self, r: u8, f: u8, m: u8) -> bool {
        let within = |(lo, hi): (u8, u8), v: u8| lo <= v && v <= hi;
        within(self.r, r) && within(self.f, f) && within(self.m, m)
    }
}

/// The widely used RFM segment map on the R × F grid (M any), with Hibernating split from Lost by R.
/// The rules are disjoint and cover all 125 cells, so their order does not matter.
///
/// | R \ F | 1 | 2 | 3 | 4 | 5 |
/// |---|---|---|---|---|---|
/// | 5 | New | Potential loyalist | Potential loyalist | Champions | Champions |
/// | 4 | Promising | Potential loyalist | Potential loyalist | Loyal | Loyal |
/// | 3 | About to sleep | About to sleep | Need attention | Loyal | Loyal |
/// | 2 | Hibernating | Hibernating | At risk | At risk | Can't lose them |
/// | 1 | Lost | Lost | At risk | At risk | Can't lose them |
pub fn default_rules() -> Vec<RfmRule> {
    let rule = |name: &str, r: (u8, u8), f: (u8, u8)| RfmRule {
        name: name.to_string(),
        r,
        f,
        m: (1, 5),
    };
    vec![
        rule("Champions", (5, 5), (4, 5)),
        rule("Loyal", (3, 4), (4, 5)),
        rule("Potential loyalist", (4, 5), (2, 3)),
        rule("New", (5, 5), (1, 1)),
        rule("Promising", (4, 4), (1, 1)),
        rule("Need attention", (3, 3), (3, 3)),
        rule("About to sleep", (3, 3), (1, 2)),
        rule("At risk", (1, 2), (3, 4)),
        rule("Can't lose them", (1, 2), (5, 5)),
        rule("Hibernating", (2, 2), (1, 2)),
        rule("Lost", (1, 1), (1, 2)),
    ]
}

/// Checks ranges are within 1..=5 and lo <= hi, names non-empty, and that every one of the 125 (r,f,m) cells matches
/// some rule; the first uncovered cell is named in the error, e.g. "cell 3-1-2 (r=3, f=1, m=2) matches no segment".
///
/// Overlaps are allowed (the first matching rule wins, see [`rfm_segment`]), and so are repeated names, so that
/// a segment that is not a box can be written as several rules.
pub fn check_rules(rules: &[RfmRule]) -> Result<(), String> {
    for (i, rule) in rules.iter().enumerate() {
        if rule.name.trim().is_empty() {
            return Err(format!("RFM segment rule {} has an empty name", i + 1));
        }
        for (axis, (lo, hi)) in [("r", rule.r), ("f", rule.f), ("m", rule.m)] {
            if !(1..=5).contains(&lo) || !(1..=5).contains(&hi) || lo > hi {
                return Err(format!(
                    "RFM segment \"{}\": {axis} range {lo}-{hi} must lie within 1-5 with low <= high",
                    rule.name
                ));
            }
        }
    }
    for r in 1..=5 {
        for f in 1..=5 {
            for m in 1..=5 {
                if rfm_segment(rules, r, f, m).is_none() {
                    return Err(format!("cell {r}-{f}-{m} (r={r}, f={f}, m={m}) matches no segment"));
                }
            }
        }
    }
    Ok(())
}

/// First matching rule wins.
pub fn rfm_segment(rules: &[RfmRule], r: u8, f: u8, m: u8) -> Option<&str> {
    rules
        .iter()
        .find(|rule| rule.matches(r, f, m))
        .map(|rule| rule.name.as_str())
}

/// The RFM cell label, e.g. `rfm_cell(5, 4, 3) == "543"`.
pub fn rfm_cell(r: u8, f: u8, m: u8) -> String {
    format!("{r}{f}{m}")
}

/// Parses "4-5" or "3" into an inclusive range (for the job file), errors name the text.
///
/// Both ends must be scores 1..=5 with low <= high; spaces around the numbers are allowed.
pub fn parse_range(s: &str) -> Result<(u8, u8), String> {
    let bad = |why: &str| format!("invalid RFM score range \"{s}\": {why}");
    let score = |part: &str| -> Result<u8, String> {
        let part = part.trim();
        // Digits only: u8::from_str would also accept "+3".
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("expected a score 1-5 or a range like 4-5"));
        }
        match part.parse::<u8>() {
            Ok(v) if (1..=5).contains(&v) => Ok(v),
            _ => Err(bad("scores must be between 1 and 5")),
        }
    };
    let (lo, hi) = match s.split_once('-') {
        Some((lo, hi)) => (score(lo)?, score(hi)?),
        None => {
            let v = score(s)?;
            (v, v)
        }
    };
    if lo > hi {
        return Err(bad("the low end is above the high end"));
    }
    Ok((lo, hi))
}

// ---------------------------------------------------------------------------------------------------------------
// Lifecycle stage
// ---------------------------------------------------------------------------------------------------------------

/// Where a customer is in their relationship with us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lifecycle {
    New,
    Active,
    Silent,
    Churned,
}

impl Lifecycle {
    pub const ALL: [Lifecycle; 4] = [Lifecycle::New, Lifecycle::Active, Lifecycle::Silent, Lifecycle::Churned];

    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::New => "new",
            Lifecycle::Active => "active",
            Lifecycle::Silent => "silent",
            Lifecycle::Churned => "churned",
        }
    }
}

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

// ---------------------------------------------------------------------------------------------------------------
// Value tiers
// ---------------------------------------------------------------------------------------------------------------

/// Spend tier relative to the other customers in the same run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ValueTier {
    High,
    Medium,
    Low,
}

impl ValueTier {
    pub const ALL: [ValueTier; 3] = [ValueTier::High, ValueTier::Medium, ValueTier::Low];

    pub fn as_str(self) -> &'static str {
        match self {
            ValueTier::High => "high",
            ValueTier::Medium => "medium",
            ValueTier::Low => "low",
        }
    }
}

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


// ---------------------------------------------------------------------------------------------------------------
// Default actions
// ---------------------------------------------------------------------------------------------------------------

/// Key of the segment → recommended-action table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ActionKey {
    Champions,
    Loyal,
    New,
    Potential,
    Silent,
    AtRisk,
    Churned,
    LowValue,
}

impl ActionKey {
    pub const ALL: [ActionKey; 8] = [
        ActionKey::Champions,
        ActionKey::Loyal,
        ActionKey::New,
        ActionKey::Potential,
        ActionKey::Silent,
        ActionKey::AtRisk,
        ActionKey::Churned,
        ActionKey::LowValue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionKey::Champions => "champions",
            ActionKey::Loyal => "loyal",
            ActionKey::New => "new",
            ActionKey::Potential => "potential",
            ActionKey::Silent => "silent",
            ActionKey::AtRisk => "at_risk",
            ActionKey::Churned => "churned",
            ActionKey::LowValue => "low_value",
        }
    }

    /// Inverse of [`ActionKey::as_str`]; exact (case-sensitive) match.
    pub fn parse(s: &str) -> Option<Self> {
        ActionKey::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for ActionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The default recommended action for each key, from our users' requirements.
pub fn default_action(key: ActionKey) -> &'static str {
    match key {
        ActionKey::Champions => "VIP service, dedicated support, exclusive offers, early access to new products",
        ActionKey::Loyal => "membership, points and rewards, personalised recommendations",
        ActionKey::New => "welcome message, onboarding guide, first-purchase coupon or free trial",
        ActionKey::Potential => "targeted recommendations and coupons to raise conversion",
        ActionKey::Silent => "reactivation: coupons, campaigns, reminders at the hours they are active",
        ActionKey::AtRisk => "win-back: personal offer, feedback request",
        ActionKey::Churned => "low-cost win-back campaign; survey why they left",
        ActionKey::LowValue => "promotions, low-cost wide-reach channels",
    }
}

/// Default key for each default RFM segment name: Champions→champions, Loyal→loyal, Potential loyalist→potential,
/// New→new, Promising→potential, Need attention→potential, About to sleep→silent, At risk→at_risk,
/// Can't lose them→at_risk, Hibernating→churned, Lost→churned; unknown names → None.
///
/// Names must match [`default_rules`] exactly (case-sensitive).
pub fn rfm_action_key(segment: &str) -> Option<ActionKey> {
    Some(match segment {
        "Champions" => ActionKey::Champions,
        "Loyal" => ActionKey::Loyal,
        "Potential loyalist" => ActionKey::Potential,
        "New" => ActionKey::New,
        "Promising" => ActionKey::Potential,
        "Need attention" => ActionKey::Potential,
        "About to sleep" => ActionKey::Silent,
        "At risk" => ActionKey::AtRisk,
        "Can't lose them" => ActionKey::AtRisk,
        "Hibernating" => ActionKey::Churned,
        "Lost" => ActionKey::Churned,
        _ => return None,
    })
}

/// Default key for a group of customers (e.g. a cluster) from its dominant lifecycle stage and value tier:
/// churned→churned; silent + high value→at_risk; silent→silent; new→new; active + high→champions;
/// active + medium→loyal; active + low→low_value.
pub fn group_action_key(stage: Lifecycle, tier: ValueTier) -> ActionKey {
    match (stage, tier) {
        (Lifecycle::Churned, _) => ActionKey::Churned,
        (Lifecycle::Silent, ValueTier::High) => ActionKey::AtRisk,
        (Lifecycle::Silent, _) => ActionKey::Silent,
        (Lifecycle::New, _) => ActionKey::New,
        (Lifecycle::Active, ValueTier::High) => ActionKey::Champions,
        (Lifecycle::Active, ValueTier::Medium) => ActionKey::Loyal,
        (Lifecycle::Active, ValueTier::Low) => ActionKey::LowValue,
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    // --- quintile scores ---

    #[test]
    fn distinct_values_fill_the_quintiles_evenly() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(quintile_scores(&v, true), vec![1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
    }

    #[test]
    fn most_recent_scores_five() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(quintile_scores(&v, false), vec![5, 5, 4, 4, 3, 3, 2, 2, 1, 1]);
    }

    #[test]
    fn scores_come_back_in_input_order() {
        // Ranks (ascending) 3, 1, 2 of n = 3: 1 + floor(5·2/3) = 4, 1 + 0 = 1, 1 + floor(5/3) = 2.
        assert_eq!(quintile_scores(&[30.0, 10.0, 20.0], true), vec![4, 1, 2]);
        // Descending: 30 is rank 1, 20 rank 2, 10 rank 3.
        assert_eq!(quintile_scores(&[30.0, 10.0, 20.0], false), vec![1, 4, 2]);
    }

    #[test]
    fn ties_share_the_lowest_rank() {
        // Six 1s share rank 1 -> 1; 2 is rank 7 -> 1 + floor(30/10) = 4; 3 rank 8 -> 1 + floor(35/10) = 4;
        // 4 rank 9 -> 5; 5 rank 10 -> 5. Quintiles 2 and 3 are empty.
        let v = [1.0, 5.0, 1.0, 1.0, 2.0, 1.0, 4.0, 1.0, 3.0, 1.0];
        assert_eq!(quintile_scores(&v, true), vec![1, 5, 1, 1, 4, 1, 5, 1, 4, 1]);
    }

    #[test]
    fn ties_share_the_lowest_rank_when_lower_is_better() {
        // Descending: 9 rank 1 -> 1; the three 4s start at rank 2 -> 1 + floor(5/5) = 2; 0 rank 5 -> 5.
        assert_eq!(quintile_scores(&[4.0, 9.0, 4.0, 0.0, 4.0], false), vec![2, 1, 2, 5, 2]);
    }

    #[test]
    fn all_equal_values_score_one() {
        assert_eq!(quintile_scores(&[7.0; 6], true), vec![1; 6]);
        assert_eq!(quintile_scores(&[7.0; 6], false), vec![1; 6]);
    }

    #[test]
    fn negative_and_positive_zero_tie() {
        assert_eq!(quintile_scores(&[0.0, -0.0, 1.0], true), vec![1, 1, 4]);
    }

    #[test]
    fn no_values_no_scores() {
        assert!(quintile_scores(&[], true).is_empty());
        assert_eq!(quintile_scores(&[3.5], false), vec![1]);
    }

    // --- RFM rules ---

    #[test]
    fn default_rules_cover_every_cell() {
        assert_eq!(check_rules(&default_rules()), Ok(()));
    }

    #[test]
    fn default_rules_are_disjoint() {
        let rules = default_rules();
        for r in 1..=5 {
            for f in 1..=5 {
                for m in 1..=5 {
                    let hits = rules.iter().filter(|rule| rule.matches(r, f, m)).count();
                    assert_eq!(hits, 1, "cell {}", rfm_cell(r, f, m));
                }
            }
        }
    }

    #[test]
    fn default_rules_have_the_eleven_names() {
        let names: Vec<String> = default_rules().into_iter().map(|r| r.name).collect();
        let expected = [
            "Champions",
            "Loyal",
            "Potential loyalist",
            "New",
            "Promising",
            "Need attention",
            "About to sleep",
            "At risk",
            "Can't lose them",
            "Hibernating",
            "Lost",
        ];
        assert_eq!(names, expected);
    }

    #[test]
    fn default_rules_follow_the_segment_map() {
        let rules = default_rules();
        // One row per R (5 down to 1), one column per F (1 to 5); M must not matter.
        let map = [
            [
                "New",
                "Potential loyalist",
                "Potential loyalist",
                "Champions",
                "Champions",
            ],
            [
                "Promising",
                "Potential loyalist",
                "Potential loyalist",
                "Loyal",
                "Loyal",
            ],
            ["About to sleep", "About to sleep", "Need attention", "Loyal", "Loyal"],
            ["Hibernating", "Hibernating", "At risk", "At risk", "Can't lose them"],
            ["Lost", "Lost", "At risk", "At risk", "Can't lose them"],
        ];
        for (row, names) in map.iter().enumerate() {
            let r = 5 - row as u8;
            for (col, name) in names.iter().enumerate() {
                let f = col as u8 + 1;
                for m in 1..=5 {
                    assert_eq!(rfm_segment(&rules, r, f, m), Some(*name), "cell {}", rfm_cell(r, f, m));
                }
            }
        }
    }

    #[test]
    fn first_matching_rule_wins() {
        let rule = |name: &str| RfmRule {
            name: name.into(),
            r: (1, 5),
            f: (1, 5),
            m: (1, 5),
        };
        let rules = [
            RfmRule {
                r: (5, 5),
                ..rule("Top")
            },
            rule("Everyone"),
        ];
        assert_eq!(rfm_segment(&rules, 5, 1, 1), Some("Top"));
        assert_eq!(rfm_segment(&rules, 4, 1, 1), Some("Everyone"));
        assert_eq!(check_rules(&rules), Ok(()));
    }

    #[test]
    fn uncovered_cell_is_named() {
        // Drop "About to sleep" (R 3, F 1-2): the first gap in r, f, m order is 3-1-1.
        let rules: Vec<RfmRule> = default_rules()
            .into_iter()
            .filter(|r| r.name != "About to sleep")
            .collect();
        assert_eq!(
            check_rules(&rules),
            Err("cell 3-1-1 (r=3, f=1, m=1) matches no segment".to_string())
        );
        assert_eq!(rfm_segment(&rules, 3, 2, 4), None);
    }

    #[test]
    fn uncovered_m_cell_is_named() {
        let mut rules = default_rules();
        for rule in &mut rules {
            if rule.name == "Lost" {
                rule.m = (3, 5);
            }
        }
        assert_eq!(
            check_rules(&rules),
            Err("cell 1-1-1 (r=1, f=1, m=1) matches no segment".to_string())
        );
    }

    #[test]
    fn out_of_range_or_reversed_ranges_are_rejected() {
        let mut rules = default_rules();
        rules[0].f = (0, 5);
        let err = check_rules(&rules).unwrap_err();
        assert!(err.contains("\"Champions\"") && err.contains("f range 0-5"), "{err}");

        let mut rules = default_rules();
        rules[1].m = (4, 2);
        let err = check_rules(&rules).unwrap_err();
        assert!(err.contains("\"Loyal\"") && err.contains("m range 4-2"), "{err}");

        let mut rules = default_rules();
        rules[2].r = (4, 6);
        assert!(check_rules(&rules).unwrap_err().contains("r range 4-6"));
    }

    #[test]
    fn blank_names_are_rejected() {
        let mut rules = default_rules();
        rules[3].name = "  ".into();
        assert_eq!(
            check_rules(&rules),
            Err("RFM segment rule 4 has an empty name".to_string())
        );
    }

    #[test]
    fn no_rules_cover_nothing() {
        assert_eq!(
            check_rules(&[]),
            Err("cell 1-1-1 (r=1, f=1, m=1) matches no segment".to_string())
        );
    }

    #[test]
    fn cell_is_three_digits() {
        assert_eq!(rfm_cell(5, 4, 3), "543");
        assert_eq!(rfm_cell(1, 1, 1), "111");
    }

    #[test]
    fn ranges_parse_from_text() {
        assert_eq!(parse_range("4-5"), Ok((4, 5)));
        assert_eq!(parse_range("3"), Ok((3, 3)));
        assert_eq!(parse_range(" 1 - 2 "), Ok((1, 2)));
        assert_eq!(parse_range("2-2"), Ok((2, 2)));
    }

    #[test]
    fn bad_ranges_name_the_text() {
        assert_eq!(
            parse_range("5-4"),
            Err("invalid RFM score range \"5-4\": the low end is above the high end".into())
        );
        assert_eq!(
            parse_range("1-6"),
            Err("invalid RFM score range \"1-6\": scores must be between 1 and 5".into())
        );
        assert_eq!(
            parse_range("4-"),
            Err("invalid RFM score range \"4-\": expected a score 1-5 or a range like 4-5".into())
        );
        for text in ["", "x", "0", "6", "-3", "+3", "1-2-3", "256", "2.5"] {
            let err = parse_range(text).unwrap_err();
            assert!(
                err.starts_with(&format!("invalid RFM score range \"{text}\": ")),
                "{text:?}: {err}"
            );
        }
    }

    // --- lifecycle ---

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

    // --- value tiers ---

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

    // --- actions ---

    #[test]
    fn action_keys_round_trip() {
        let keys: Vec<&str> = ActionKey::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "champions",
                "loyal",
                "new",
                "potential",
                "silent",
                "at_risk",
                "churned",
                "low_value"
            ]
        );
        for k in ActionKey::ALL {
            assert_eq!(ActionKey::parse(k.as_str()), Some(k));
        }
        assert_eq!(ActionKey::parse("At_Risk"), None);
        assert_eq!(ActionKey::parse("at-risk"), None);
    }

    #[test]
    fn every_key_has_its_own_action() {
        assert_eq!(
            default_action(ActionKey::AtRisk),
            "win-back: personal offer, feedback request"
        );
        assert_eq!(
            default_action(ActionKey::LowValue),
            "promotions, low-cost wide-reach channels"
        );
        let mut actions: Vec<&str> = ActionKey::ALL.iter().map(|&k| default_action(k)).collect();
        actions.sort();
        actions.dedup();
        assert_eq!(actions.len(), ActionKey::ALL.len());
    }

    #[test]
    fn every_default_segment_has_an_action_key() {
        use ActionKey::*;
        let expected = [
            Champions, Loyal, Potential, New, Potential, Potential, Silent, AtRisk, AtRisk, Churned, Churned,
        ];
        let got: Vec<Option<ActionKey>> = default_rules().iter().map(|r| rfm_action_key(&r.name)).collect();
        assert_eq!(got, expected.map(Some));
        assert_eq!(rfm_action_key("champions"), None);
        assert_eq!(rfm_action_key("Whales"), None);
    }

    #[test]
    fn churned_wins_then_silent_high_value_is_at_risk() {
        use ActionKey as A;
        for tier in ValueTier::ALL {
            assert_eq!(group_action_key(Lifecycle::Churned, tier), A::Churned);
            assert_eq!(group_action_key(Lifecycle::New, tier), A::New);
        }
        assert_eq!(group_action_key(Lifecycle::Silent, ValueTier::High), A::AtRisk);
        assert_eq!(group_action_key(Lifecycle::Silent, ValueTier::Medium), A::Silent);
        assert_eq!(group_action_key(Lifecycle::Silent, ValueTier::Low), A::Silent);
        assert_eq!(group_action_key(Lifecycle::Active, ValueTier::High), A::Champions);
        assert_eq!(group_action_key(Lifecycle::Active, ValueTier::Medium), A::Loyal);
        assert_eq!(group_action_key(Lifecycle::Active, ValueTier::Low), A::LowValue);
    }


}
