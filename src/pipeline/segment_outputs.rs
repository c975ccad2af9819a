//! What both ways of segmenting (on the driver, [`super::segmentation`]; in the engine,
//! [`super::segmentation_sql`]) hand out the same way: the manifest's account, the log line, the
//! rules, and the per-segment tables after `customer_segments`.

use std::collections::BTreeMap;

use datafusion::arrow::array::RecordBatch;

use super::manifest::{ModelUse, PrepReport, RfmReport, SegmentationReport};
use super::rows::{ActionRow, RfmCounts};
use super::tables::{k_selection_batch, prep_batch, segment_actions_batch, segment_rules_batch};
use crate::error::Error;
use crate::model_mode::ModelMode;
use crate::publish::Publisher;
use crate::segment::profile::SegmentAction;
use crate::segment::rules::SegmentRule;
use crate::segment::spec::ActionsSpec;
use crate::segment::rfm::{self, ActionKey, Lifecycle, ValueTier};
use crate::segment::{self, Segmentation, SegmentationSpec};

/// What the stage gives the run: the manifest's part, the report's charts, the model to save.
pub(super) type Outcome = (SegmentationReport, super::report::SegmentationCharts, crate::models::SavedSegmentation);

/// "scored with the saved model" or "fitted", with k.
pub(super) fn log_outcome(seg: &Segmentation, model_use: Option<&ModelUse>, mode: ModelMode) {
    match (model_use, mode) {
        (Some(used), ModelMode::Score) => {
            let model = used.model_run_date.map(|d| d.to_string()).unwrap_or_default();
            tracing::info!(k = seg.k, model = %model, "segmentation scored with the saved model");
        }
        _ => {
            let chosen = seg.k_selection.iter().find(|r| r.chosen);
            tracing::info!(k = seg.k, silhouette = chosen.map(|c| c.silhouette), stability = chosen.map(|c| c.stability), "segmentation fitted");
        }
    }
}

/// `segment_actions` staged, warning about `[actions]` entries that match nothing.
async fn stage_actions(
    publisher: &mut Publisher,
    seg: &Segmentation,
    actions: &[SegmentAction],
    counts: Option<&RfmCounts>,
    spec: &ActionsSpec,
) -> Result<u64, Error> {
    let table = action_rows(seg, actions, counts, spec);
    // An [actions] entry that is neither an action key nor a segment of this run is most
    // likely a typo; say so rather than ignore it silently.
    for name in spec.by_segment.keys().filter(|n| !table.iter().any(|r| &r.segment == *n)) {
        tracing::warn!(action = %name, "[actions] entry matches no action key and no segment of this run");
    }
    let sort = ["segmentation".into(), "segment".into()];
    Ok(publisher.stage_batch("segment_actions", segment_actions_batch(&table), &sort).await?)
}

/// The manifest's account of the segmentation over `customers` rows.
pub(super) fn report(
    spec: &SegmentationSpec,
    seg: &Segmentation,
    customers: usize,
    rfm: Option<RfmReport>,
    model: Option<ModelUse>,
    drift: Option<super::manifest::DriftReport>,
) -> SegmentationReport {
    let chosen = seg.k_selection.iter().find(|r| r.chosen);
    SegmentationReport {
        view: spec.view.clone(),
        customers,
        features: spec.features.clone(),
        categorical: spec.categorical.clone(),
        algorithm: spec.algorithm.name().to_string(),
        k: seg.k,
        select: spec.select.rule.name().to_string(),
        silhouette: chosen.map_or(f64::NAN, |c| c.silhouette),
        stability: chosen.map_or(f64::NAN, |c| c.stability),
        inertia: chosen.map_or(f64::NAN, |c| c.inertia),
        fit_rows: seg.fit_rows,
        iterations: seg.n_iter,
        empty_clusters_relocated: seg.relocated,
        nulls_filled: seg.columns.iter().filter(|c| c.category.is_none()).map(|c| (c.source.clone(), c.nulls_filled)).collect(),
        preparation: seg
            .columns
            .iter()
            .map(|c| PrepReport {
                column: c.column.clone(),
                fill_value: c.fill_value,
                clip: c.clip_lower.zip(c.clip_upper).map(|(a, b)| [a, b]),
                log1p: c.log1p,
                center: c.center,
                scale: c.scale,
            })
            .collect(),
        centroids: segment::prep::unscale(&seg.centroids, &seg.columns).rows().into_iter().map(|r| r.to_vec()).collect(),
        rfm,
        model,
        drift,
    }
}

fn stage_key(s: Lifecycle) -> ActionKey {
    match s {
        Lifecycle::New => ActionKey::New,
        Lifecycle::Active => ActionKey::Loyal,
        Lifecycle::Silent => ActionKey::Silent,
        Lifecycle::Churned => ActionKey::Churned,
    }
}

fn tier_key(t: ValueTier) -> ActionKey {
    match t {
        ValueTier::High => ActionKey::Champions,
        ValueTier::Medium => ActionKey::Potential,
        ValueTier::Low => ActionKey::LowValue,
    }
}

/// The segment → recommended-action table over every segmentation: clusters, RFM segments,
/// lifecycle stages and value tiers.
fn action_rows(
    seg: &Segmentation,
    actions: &[SegmentAction],
    counts: Option<&RfmCounts>,
    spec: &crate::segment::spec::ActionsSpec,
) -> Vec<ActionRow> {
    let mut rows: Vec<ActionRow> = seg
        .profiles
        .iter()
        .zip(actions)
        .map(|(p, a)| ActionRow {
            segmentation: "cluster",
            segment: p.name.clone(),
            customers: p.customers,
            key: a.key,
            action: a.action.clone(),
        })
        .collect();
    let Some(c) = counts else { return rows };
    let mut add = |segmentation: &'static str, by: &BTreeMap<String, usize>, key: &dyn Fn(&str) -> Option<ActionKey>| {
        for (name, &customers) in by {
            let k = key(name);
            rows.push(ActionRow {
                segmentation,
                action: spec.action(name, k),
                segment: name.clone(),
                customers,
                key: k,
            });
        }
    };
    add("rfm", &c.rfm, &rfm::rfm_action_key);
    add("lifecycle", &c.lifecycle, &|n| Lifecycle::ALL.iter().find(|s| s.as_str() == n).map(|&s| stage_key(s)));
    add("value", &c.value, &|n| ValueTier::ALL.iter().find(|t| t.as_str() == n).map(|&t| tier_key(t)));
    rows
}

/// A rule per segment learned on the driver's rows `x` (original units) and their segments,
/// with precision and coverage measured on those rows (every customer up to `fit_sample`, the
/// fit sample above).
pub(super) fn rules(x: &ndarray::Array2<f64>, seg: &Segmentation) -> Result<Vec<SegmentRule>, Error> {
    segment::rules::segment_rules(x.view(), &seg.segment).map_err(|e| Error::from(segment::SegmentError::Fit(format!("segment rules: {e}"))))
}

/// The per-segment tables both paths stage alike: `segment_summary` (built by the path),
/// `segmentation_k_selection`, `segmentation_prep`, `segment_actions` and `segment_rules`;
/// returns the rows staged.
#[allow(clippy::too_many_arguments)]
pub(super) async fn stage_segment_tables(
    publisher: &mut Publisher,
    spec: &SegmentationSpec,
    seg: &Segmentation,
    summary: RecordBatch,
    actions: &[SegmentAction],
    counts: Option<&RfmCounts>,
    actions_spec: &ActionsSpec,
    rules: &[SegmentRule],
) -> Result<u64, Error> {
    let id = ["segment_id".to_string()];
    let mut out = publisher.stage_batch("segment_summary", summary, &id).await?;
    out += publisher.stage_batch("segmentation_k_selection", k_selection_batch(seg), &["k".into()]).await?;
    out += publisher.stage_batch("segmentation_prep", prep_batch(&seg.columns), &["column".into()]).await?;
    out += stage_actions(publisher, seg, actions, counts, actions_spec).await?;
    out += publisher.stage_batch("segment_rules", segment_rules_batch(&spec.features, seg, rules), &id).await?;
    Ok(out)
}
