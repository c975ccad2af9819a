//! Gathers a run's results into [`ReportData`] for the run report (`_reports/…/report.html`).
//!
//! Everything here is computed from what the stages already hold; nothing is re-read.

use ndarray::Array2;

use super::tables::{CategoryCounts, top_share};
use crate::clv::{self, PurchaseParams, PurchaseTuple};
use crate::report::{
    HoldoutBucket, TrackingPoint, KRow, KSelection, PAliveMatrix, ProfileHeatmap, ReportData, SegmentRuleText, SegmentSize, SegmentValues,
};
use crate::segment::Segmentation;
use crate::segment::rules::SegmentRule;

/// The holdout check's buckets and, with `[clv] tracking`, its week-by-week tracking.
pub(super) type HoldoutCharts = (Vec<HoldoutBucket>, Option<Vec<TrackingPoint>>);

/// The segmentation's charts: k choice, sizes, profile heat map, CLV by segment.
#[derive(Debug, Clone, Default)]
pub(super) struct SegmentationCharts {
    pub k_selection: Option<KSelection>,
    pub segments: Option<Vec<SegmentSize>>,
    pub profile: Option<ProfileHeatmap>,
    pub clv_by_segment: Option<Vec<SegmentValues>>,
}

/// `x` holds the raw numeric features (NaN = NULL) in the segmentation's row order;
/// `clv` the CLV per row where the customer has one.
pub(super) fn segmentation_charts(
    features: &[String],
    x: &Array2<f64>,
    seg: &Segmentation,
    clv: Option<&[(i32, f64)]>,
    rules: &[SegmentRule],
    shares: &[CategoryCounts],
) -> SegmentationCharts {
    let chosen_k = seg.k_selection.iter().find(|r| r.chosen).map_or(seg.k, |r| r.k);
    let k_selection = KSelection {
        rows: seg.k_selection.iter().map(|r| KRow { k: r.k, inertia: r.inertia, silhouette: r.silhouette, stability: r.stability }).collect(),
        chosen_k,
    };
    let segments = seg
        .profiles
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let rule = rules.iter().find(|r| r.segment_id == p.segment_id);
            let mostly = shares.iter().filter_map(|(c, per)| top_share(&per[i]).map(|(v, s)| (c.clone(), v.to_string(), s))).collect();
            SegmentSize {
                id: p.segment_id as i64,
                name: p.name.clone(),
                customers: p.customers as u64,
                rule: rule.map(|r| SegmentRuleText { rule: r.text(features), precision: r.precision, coverage: r.coverage }),
                mostly,
            }
        })
        .collect();
    // Each segment's mean as a z-score against all customers, whatever scaling the model used.
    let (mean, sd): (Vec<f64>, Vec<f64>) = (0..features.len()).map(|j| mean_sd(x.column(j).iter().copied())).unzip();
    let profile = ProfileHeatmap {
        features: features.to_vec(),
        segments: seg.profiles.iter().map(|p| p.name.clone()).collect(),
        z: seg
            .profiles
            .iter()
            .map(|p| (0..features.len()).map(|j| if sd[j] > 0.0 { (p.means[j] - mean[j]) / sd[j] } else { 0.0 }).collect())
            .collect(),
    };
    let clv_by_segment = clv.map(|clv| {
        seg.profiles
            .iter()
            .map(|p| SegmentValues {
                name: p.name.clone(),
                values: clv.iter().filter(|(s, _)| *s == p.segment_id).map(|&(_, v)| v).collect(),
            })
            .collect()
    });
    SegmentationCharts {
        k_selection: Some(k_selection),
        segments: Some(segments),
        profile: Some(profile),
        clv_by_segment,
    }
}

fn mean_sd(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// P(alive) over frequency × recency for a customer observed as long as the longest tenure,
/// as lifetimes' `plot_probability_alive_matrix` draws it (Fader, Hardie & Lee 2005, eq. 11).
pub(super) fn p_alive_matrix(b: &PurchaseParams, tuples: &[PurchaseTuple], time_unit: &str) -> PAliveMatrix {
    const CELLS: usize = 24;
    let max_of = |v: &dyn Fn(&PurchaseTuple) -> f64| tuples.iter().map(v).filter(|x| x.is_finite()).fold(0.0_f64, f64::max);
    let t = max_of(&|p| p.tenure).max(1.0);
    let max_f = max_of(&|p| p.frequency).max(1.0);
    let grid = |max: f64| -> Vec<f64> {
        let step = (max / (CELLS - 1) as f64).max(1.0).ceil();
        let mut g: Vec<f64> = (0..CELLS).map(|i| i as f64 * step).take_while(|&v| v <= max).collect();
        if g.len() < 2 {
            g.push(step);
        }
        g
    };
    let (frequency, recency) = (grid(max_f), grid(t));
    // Cells no customer can have are left blank: recency beyond the tenure, and for BG/BB more
    // purchases than periods.
    let impossible = |x: f64, tx: f64| tx > t || (b.model().discrete() && x > tx);
    let p = frequency.iter().map(|&x| recency.iter().map(|&tx| if impossible(x, tx) { f64::NAN } else { b.p_alive(x, tx, t) }).collect()).collect();
    PAliveMatrix { frequency, recency, p, time_unit: time_unit.to_string(), model: b.model().title().to_string() }
}

pub(super) fn tracking_points(points: &[clv::TrackingPoint], model: clv::PurchaseModel) -> Vec<TrackingPoint> {
    points.iter().map(|p| TrackingPoint { days: p.days, actual: p.actual_cumulative, expected: p.expected_cumulative, model: model.title() }).collect()
}

pub(super) fn holdout_buckets(buckets: &[clv::HoldoutBucket]) -> Vec<HoldoutBucket> {
    buckets
        .iter()
        .map(|b| HoldoutBucket {
            label: b.bucket.clone(),
            actual: b.actual_holdout,
            predicted: b.predicted_holdout,
        })
        .collect()
}

/// The page's data: key numbers from the manifest plus the stages' charts.
pub(super) fn report_data(
    m: &super::manifest::Manifest,
    charts: SegmentationCharts,
    p_alive: Option<PAliveMatrix>,
    holdout: Option<HoldoutCharts>,
    actions: Option<Vec<crate::report::ActionTotals>>,
) -> ReportData {
    let (holdout, holdout_tracking) = holdout.map_or((None, None), |(b, t)| (Some(b), t));
    let mut key = vec![
        ("job".to_string(), m.job.clone()),
        ("run date".to_string(), m.run_date.to_string()),
        ("run id".to_string(), m.run_id.clone()),
        ("engine".to_string(), m.engine.clone()),
        ("segvalue".to_string(), m.segvalue_version.to_string()),
    ];
    for t in &m.tables {
        key.push((format!("rows: {}", t.table), t.rows.to_string()));
    }
    for q in &m.quality {
        let action = if q.action == crate::quality::Action::Drop { "dropped" } else { "checked" };
        key.push((format!("quality: {}.{} ({action})", q.source, q.rule), q.rows.to_string()));
    }
    if let Some(s) = &m.segmentation {
        key.push(("segmentation".into(), format!("{} over {} customers", s.algorithm, s.customers)));
        key.push(("chosen k".into(), format!("{} (silhouette {:.3})", s.k, s.silhouette)));
    }
    if let Some(c) = &m.clv {
        // In the models' own order (as `clv_model` lists them), not the manifest's sorted keys.
        let params = |p: &std::collections::BTreeMap<String, f64>, order: &[&str]| {
            order.iter().filter_map(|k| p.get(*k).map(|v| format!("{k} = {v:.4}"))).collect::<Vec<_>>().join(", ")
        };
        let model = c.model.parse::<clv::PurchaseModel>().unwrap_or_default();
        key.push((model.title().into(), format!("{} (log-likelihood {:.1})", params(&c.bgnbd.params, &model.parameters()), c.bgnbd.log_likelihood)));
        // Covariates' coefficients: every purchase-model key that is not a parameter.
        let effects: Vec<String> = c.bgnbd.params.iter().filter(|(k, _)| !model.parameters().contains(&k.as_str())).map(|(k, v)| format!("{k} = {v:.4}")).collect();
        if !effects.is_empty() {
            key.push(("covariate effects".into(), effects.join(", ")));
        }
        key.push(("Gamma-Gamma".into(), format!("{} (log-likelihood {:.1})", params(&c.gamma_gamma.params, &["p", "q", "gamma"]), c.gamma_gamma.log_likelihood)));
        if let Some(sel) = &c.selection {
            let maes: Vec<String> = sel.mean_mae.iter().map(|(m, v)| format!("{m} {v:.4}")).collect();
            key.push((
                "model choice".into(),
                format!("{} by backtest over {} cut-offs (mean holdout MAE per customer: {})", sel.chosen, sel.cutoffs.len(), maes.join(", ")),
            ));
        }
        if let Some(h) = &c.holdout {
            key.push((
                format!("holdout ({} days)", h.days),
                format!("MAE {:.3}; actual {:.0}, predicted {:.0} purchases", h.mae, h.total_actual, h.total_predicted),
            ));
            key.push((
                "80 % intervals on the holdout".into(),
                format!(
                    "{:.1} % of customers inside [p10, p90]; randomised PIT inside [0.1, 0.9] for {:.1} % (80 % when calibrated)",
                    100.0 * h.interval_coverage,
                    100.0 * h.pit_coverage
                ),
            ));
        }
    }
    ReportData {
        title: format!("{} — run {}", m.job, m.run_date),
        key_numbers: key,
        k_selection: charts.k_selection,
        segments: charts.segments,
        profile: charts.profile,
        clv_by_segment: charts.clv_by_segment,
        p_alive,
        holdout,
        holdout_tracking,
        actions,
    }
}
