//! Recommended actions: the [`ActionKey`] table keys, their default texts ([`default_action`])
//! and economics ([`default_economics`]), and the default key of an RFM segment
//! ([`rfm_action_key`]) or of a group of customers ([`group_action_key`]).

use std::fmt;

use super::lifecycle::Lifecycle;
use super::tiers::ValueTier;

/// Key of the segment → recommended-action table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
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

    /// The key as written in the job file and the tables: the variant in snake_case
    /// ("champions", …, "at_risk", "low_value").
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Inverse of [`ActionKey::as_str`]; exact (case-sensitive) match.
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

// By hand, not strum's padding `Display`: see `Lifecycle`.
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

/// What one contact with an action costs and how often it works. A customer's expected value
/// of the contact (`customer_actions.expected_value`) is
/// P(alive) × response × margin × expected order value − cost: only a customer who is still
/// active (BG/NBD's P(alive)) can answer, and an answer is one order of the customer's
/// Gamma-Gamma expected value, of which the margin is kept. Contacting pays when it is above
/// zero, the break-even rule of direct marketing (Bult and Wansbeek 1995, "Optimal selection
/// for direct mail", Marketing Science 14(4)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Economics {
    /// Money spent per customer contacted (voucher, call time, mailing), in the data's currency.
    pub cost: f64,
    /// Share of contacted customers still alive who place an order because of it, in [0, 1].
    pub response: f64,
}

/// The shipped cost and response of each key's default action: cheap wide-reach contacts
/// answer rarely, personal ones cost more and answer more often. Ballpark figures for a
/// retailer whose orders are worth tens of currency units; `[actions.<key>]` replaces them.
pub fn default_economics(key: ActionKey) -> Economics {
    let (cost, response) = match key {
        ActionKey::Champions => (3.0, 0.25),
        ActionKey::Loyal => (1.0, 0.15),
        ActionKey::New => (2.0, 0.20),
        ActionKey::Potential => (1.0, 0.10),
        ActionKey::Silent => (0.5, 0.08),
        ActionKey::AtRisk => (5.0, 0.20),
        ActionKey::Churned => (0.2, 0.02),
        ActionKey::LowValue => (0.1, 0.05),
    };
    Economics { cost, response }
}

/// Default key for each default RFM segment name: Champions→champions, Loyal→loyal, Potential loyalist→potential,
/// New→new, Promising→potential, Need attention→potential, About to sleep→silent, At risk→at_risk,
/// Can't lose them→at_risk, Hibernating→churned, Lost→churned; unknown names → None.
///
/// Names must match [`default_rules`](super::default_rules) exactly (case-sensitive).
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
    use crate::segment::rfm::default_rules;

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
