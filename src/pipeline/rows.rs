//! What the segmentation stage hands to the table builders ([`super::tables`]) and the
//! cross-run history ([`super::history`]): RFM columns per customer and `segment_actions` rows.

use std::collections::BTreeMap;

use crate::segment::rfm::{ActionKey, Lifecycle, ValueTier};

/// Per customer of the segmentation (matrix row order); `None` where the RFM view lacks them.
pub(super) struct RfmColumns<'a> {
    pub r: Vec<Option<u8>>,
    pub f: Vec<Option<u8>>,
    pub m: Vec<Option<u8>>,
    /// Names borrowed from the job's RFM rules.
    pub segment: Vec<Option<&'a str>>,
    pub stage: Vec<Option<Lifecycle>>,
    pub tier: Vec<Option<ValueTier>>,
}

/// One row of `segment_actions`.
pub(super) struct ActionRow {
    pub segmentation: &'static str,
    pub segment: String,
    pub customers: usize,
    pub key: Option<ActionKey>,
    pub action: Option<String>,
}

/// Customers of the segmentation per RFM segment, lifecycle stage and value tier (those the
/// RFM view has), for `segment_actions`.
#[derive(Debug, Default)]
pub(super) struct RfmCounts {
    pub rfm: BTreeMap<String, usize>,
    pub lifecycle: BTreeMap<String, usize>,
    pub value: BTreeMap<String, usize>,
}

impl RfmCounts {
    pub fn of(c: &RfmColumns) -> RfmCounts {
        let mut out = RfmCounts::default();
        let add = |by: &mut BTreeMap<String, usize>, name: &str| *by.entry(name.to_string()).or_insert(0) += 1;
        c.segment.iter().flatten().for_each(|n| add(&mut out.rfm, n));
        c.stage.iter().flatten().for_each(|s| add(&mut out.lifecycle, s.as_str()));
        c.tier.iter().flatten().for_each(|t| add(&mut out.value, t.as_str()));
        out
    }
}
