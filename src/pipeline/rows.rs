//! What the segmentation stage hands to the table builders ([`super::tables`]) and the
//! cross-run history ([`super::history`]): RFM columns per customer and `segment_actions` rows.

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
