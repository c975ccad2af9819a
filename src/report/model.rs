//! The report's input: plain data describing one run, built by the caller (the pipeline) and
//! drawn by `page` and `charts`. Nothing here draws or formats.

/// Everything the report shows for one run. Plain data: build it, then call
/// [`render_html`](super::render_html).
#[derive(Debug, Clone, Default)]
pub struct ReportData {
    /// Page title, e.g. "retail — run 2025-12-31".
    pub title: String,
    /// Ordered (label, value) pairs shown at the top: row counts, chosen k, model parameters,
    /// data-quality counts, run id, engine…
    pub key_numbers: Vec<(String, String)>,
    pub k_selection: Option<KSelection>,
    /// Customers per segment, in display order.
    pub segments: Option<Vec<SegmentSize>>,
    /// Feature z-scores per segment.
    pub profile: Option<ProfileHeatmap>,
    /// Each segment's customers' CLV values, summarised as box plots.
    pub clv_by_segment: Option<Vec<SegmentValues>>,
    pub p_alive: Option<PAliveMatrix>,
    pub holdout: Option<Vec<HoldoutBucket>>,
    /// Cumulative actual and expected purchases through the holdout (`[clv] tracking`).
    pub holdout_tracking: Option<Vec<TrackingPoint>>,
    /// Per action key, what `customer_actions` recommends.
    pub actions: Option<Vec<ActionTotals>>,
}

/// One action key's customers in `customer_actions`, and what contacting those worth it
/// costs and is expected to earn.
#[derive(Debug, Clone)]
pub struct ActionTotals {
    pub key: String,
    pub action: String,
    pub customers: u64,
    /// Customers whose expected value is above zero.
    pub contact: u64,
    /// Sums over the customers to contact; the expected value is net of the cost.
    pub cost: f64,
    pub expected_value: f64,
}

#[derive(Debug, Clone)]
pub struct KSelection {
    pub rows: Vec<KRow>,
    pub chosen_k: usize,
}

#[derive(Debug, Clone, Copy)]
pub struct KRow {
    pub k: usize,
    pub inertia: f64,
    pub silhouette: f64,
    pub stability: f64,
}

#[derive(Debug, Clone)]
pub struct SegmentSize {
    pub id: i64,
    pub name: String,
    pub customers: u64,
    /// The segment's rule from `segment_rules`, when one was learned.
    pub rule: Option<SegmentRuleText>,
    /// Per profiled categorical column: (column, most common value, its share).
    pub mostly: Vec<(String, String, f64)>,
}

#[derive(Debug, Clone)]
pub struct SegmentRuleText {
    pub rule: String,
    pub precision: f64,
    pub coverage: f64,
}

#[derive(Debug, Clone)]
pub struct ProfileHeatmap {
    pub features: Vec<String>,
    pub segments: Vec<String>,
    /// `z[segment][feature]`.
    pub z: Vec<Vec<f64>>,
}

#[derive(Debug, Clone)]
pub struct SegmentValues {
    pub name: String,
    /// Non-finite values are ignored.
    pub values: Vec<f64>,
}

#[derive(Debug, Clone)]
pub struct PAliveMatrix {
    /// Grid values, finite and strictly increasing.
    pub frequency: Vec<f64>,
    /// Grid values in `time_unit`, finite and strictly increasing.
    pub recency: Vec<f64>,
    /// `p[i_frequency][j_recency]` in [0, 1]; NaN marks an impossible cell, drawn blank.
    pub p: Vec<Vec<f64>>,
    /// e.g. "weeks"; used in the axis label.
    pub time_unit: String,
    /// The purchase model it comes from, e.g. "BG/NBD"; named in the caption.
    pub model: String,
}

/// Purchases from the calibration end to `days` after it.
#[derive(Debug, Clone)]
pub struct TrackingPoint {
    pub days: u32,
    pub actual: f64,
    pub expected: f64,
    /// The model that predicts them, e.g. "BG/NBD"; named in the caption.
    pub model: &'static str,
}

#[derive(Debug, Clone)]
pub struct HoldoutBucket {
    /// e.g. "0", "1", "7+".
    pub label: String,
    pub actual: f64,
    pub predicted: f64,
}
