//! Across runs: saved models, aligned segment ids, transitions and drift (issue #11).
//!
//! The math is in `segment::{align, drift, transitions}`; this module finds the previous run's
//! model and tables under the output root and hands them over.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use ndarray::Array2;

use super::manifest::{DriftReport, ModelUse};
use super::rows::RfmColumns;
use crate::error::Error;
use crate::models::{ModelError, SavedModel, SavedSegment, SavedSegmentation, drift_reference};
use crate::publish::Publisher;
use crate::segment::align::align;
use crate::segment::drift::{FeatureDrift, bin_shares, psi_of_shares, share_changes};
use crate::segment::profile::SegmentAction;
use crate::model_mode::ModelFrom;
use crate::segment::transitions::{Transition, transitions};
use crate::segment::{SegmentError, Segmentation};

/// The saved model a run uses: for `Latest`, the newest one dated before `run_date`.
pub(super) async fn find_model(p: &Publisher, run_date: NaiveDate, from: ModelFrom) -> Result<Option<SavedModel>, Error> {
    let date = match from {
        ModelFrom::Date(d) => Some(d),
        ModelFrom::Latest => p.model_dates().await?.into_iter().filter(|d| *d < run_date).next_back(),
    };
    Ok(match date {
        Some(d) => p.read_model(d).await?,
        None => None,
    })
}

pub(super) fn missing(what: &'static str, p: &Publisher, run_date: NaiveDate, from: ModelFrom) -> Error {
    ModelError::Missing {
        what,
        root: crate::location::redact(p.root().as_str().trim_end_matches('/')),
        when: match from {
            ModelFrom::Latest => format!("dated before {run_date}"),
            ModelFrom::Date(d) => format!("for run_date={d}"),
        },
    }
    .into()
}

/// Matches this fit's clusters to the previous model's by minimum total centroid distance
/// (Kuhn–Munkres) and renumbers them: matched clusters keep the old id and name, new ones get
/// fresh ids. `None` when the two were prepared differently (ids then stay as fitted).
pub(super) fn align_ids(prev: &SavedSegmentation, prev_date: NaiveDate, seg: &mut Segmentation) -> Result<Option<ModelUse>, Error> {
    let Some(old) = prev.centroids_in(&seg.columns) else {
        tracing::warn!(model = %prev_date, "the previous model was prepared with other columns; segment ids are not aligned");
        return Ok(None);
    };
    let new: Vec<Vec<f64>> = seg.centroids.rows().into_iter().map(|r| r.to_vec()).collect();
    let old_ids: Vec<i64> = prev.segments.iter().map(|s| s.id as i64).collect();
    let a = align(&old_ids, &old, &new, None).map_err(|e| SegmentError::Fit(format!("aligning segment ids: {e}")))?;
    let ids: Vec<i32> = a.ids.iter().map(|&i| i as i32).collect();
    let mut names: Vec<String> = (0..ids.len())
        .map(|i| match a.fresh.contains(&i) {
            true => seg.profiles[i].name.clone(),
            false => prev.segments.iter().find(|s| s.id == ids[i]).map_or_else(|| seg.profiles[i].name.clone(), |s| s.name.clone()),
        })
        .collect();
    // A fresh cluster's auto-name may repeat a kept one; names must tell segments apart.
    for &i in &a.fresh {
        if names.iter().filter(|n| **n == names[i]).count() > 1 {
            names[i] = format!("{} (segment {})", names[i], ids[i]);
        }
    }
    seg.relabel(&ids, Some(&names));
    let fresh: Vec<i32> = a.fresh.iter().map(|&i| ids[i]).collect();
    let vanished: Vec<i32> = a.vanished.iter().map(|&i| i as i32).collect();
    if !fresh.is_empty() || !vanished.is_empty() {
        tracing::info!(previous = %prev_date, ?fresh, ?vanished, "segments appeared or vanished since the previous model");
    }
    Ok(Some(ModelUse {
        mode: "refit",
        model_run_date: Some(prev_date),
        matched: ids.iter().copied().filter(|i| !fresh.contains(i)).collect(),
        fresh,
        vanished,
    }))
}

/// PSI of each numeric feature against the reference model's training bins, and the change in
/// each segment's share; warns when a feature's PSI exceeds `warn_psi`.
pub(super) fn drift(reference: &SavedSegmentation, features: &[String], x: &Array2<f64>, seg: &Segmentation, warn_psi: f64) -> DriftReport {
    let mut out = Vec::new();
    for r in &reference.drift_reference {
        let Some(j) = features.iter().position(|f| f == &r.feature) else { continue };
        let actual: Vec<f64> = x.column(j).to_vec();
        let psi = psi_of_shares(&r.shares, &bin_shares(&r.edges, &actual));
        if psi > warn_psi {
            tracing::warn!(
                feature = %r.feature, psi, threshold = warn_psi, trained_on = %reference.trained_on,
                "feature has drifted from the model's training data; consider a refit"
            );
        }
        out.push(FeatureDrift {
            feature: r.feature.clone(),
            psi,
            bins: r.shares.len(),
            missing_expected: r.missing,
            missing_actual: actual.iter().filter(|v| v.is_nan()).count(),
        });
    }
    let previous: Vec<(i64, u64)> = reference.segments.iter().map(|s| (s.id as i64, s.customers as u64)).collect();
    let current: Vec<(i64, u64)> = seg.profiles.iter().map(|p| (p.segment_id as i64, p.customers as u64)).collect();
    DriftReport {
        against_trained_on: reference.trained_on,
        warn_psi,
        features: out,
        share_changes: share_changes(&previous, &current),
    }
}

/// What this run saves of its segmentation.
pub(super) fn saved_segmentation(
    spec: &crate::segment::SegmentationSpec,
    seg: &Segmentation,
    actions: &[SegmentAction],
    x: &Array2<f64>,
    trained_on: NaiveDate,
    reference: Option<&SavedSegmentation>,
) -> SavedSegmentation {
    SavedSegmentation {
        trained_on,
        view: spec.view.clone(),
        features: spec.features.clone(),
        categorical: spec.categorical.clone(),
        algorithm: spec.algorithm.name().to_string(),
        preparation: seg.columns.iter().map(crate::models::SavedPrep::from_column).collect(),
        segments: (0..seg.k)
            .map(|i| SavedSegment {
                id: seg.profiles[i].segment_id,
                name: seg.profiles[i].name.clone(),
                customers: seg.profiles[i].customers,
                action: actions[i].action.clone(),
                centroid: seg.centroids.row(i).to_vec(),
            })
            .collect(),
        // A score run keeps the training data's bins: drift is always against training.
        drift_reference: match reference {
            Some(r) => r.drift_reference.clone(),
            None => spec.features.iter().enumerate().map(|(j, f)| drift_reference(f, &x.column(j).to_vec())).collect(),
        },
    }
}

/// `segment_transitions`: customers moving between segments (clusters, RFM segments and
/// lifecycle stages) from the newest complete run before this one, joined on the id as
/// published. Without such a run every customer is new (no `from`).
pub(super) async fn transitions_batch(
    p: &Publisher,
    run_date: NaiveDate,
    id_column: &str,
    ids: &StringArray,
    seg: &Segmentation,
    rfm: Option<&RfmColumns<'_>>,
) -> Result<RecordBatch, Error> {
    let previous = previous_run(p, run_date).await?;
    let previous_rows = match previous {
        Some(d) => p.read_published("customer_segments", d).await?,
        None => Vec::new(),
    };
    // Borrowed ids and labels throughout: at 20M customers an owned (id, label) pair per row
    // and segmentation was several GB.
    let published: Vec<std::borrow::Cow<str>> =
        ids.iter().map(|id| p.privacy().published_id(id_column, id.unwrap_or_default())).collect();
    let cluster_names: std::collections::HashMap<i32, String> =
        seg.segment.iter().collect::<BTreeSet<_>>().into_iter().map(|&s| (s, s.to_string())).collect();
    let mut kinds: Vec<(&str, Vec<Option<&str>>)> =
        vec![("cluster", seg.segment.iter().map(|s| Some(cluster_names[s].as_str())).collect())];
    if let Some(r) = rfm {
        kinds.push(("rfm", r.segment.clone()));
        kinds.push(("lifecycle", r.stage.iter().map(|s| s.map(|s| s.as_str())).collect()));
    }
    let mut rows = Vec::new();
    for (name, labels) in kinds {
        let now: Vec<(&str, &str)> = published.iter().zip(labels).filter_map(|(id, l)| l.map(|l| (id.as_ref(), l))).collect();
        let columns = previous_labels(&previous_rows, id_column, TRANSITION_COLUMNS.iter().find(|c| c.0 == name).expect("listed").1);
        let before = first_labels(&columns);
        let found = transitions(&before, &now).map_err(|e| SegmentError::Fit(format!("segment transitions ({name}): {e}")))?;
        rows.extend(found.into_iter().map(|t| (name, t)));
    }
    Ok(transitions_table(previous, rows))
}

/// Each segmentation in `segment_transitions` and the `customer_segments` column it follows.
pub(super) const TRANSITION_COLUMNS: [(&str, &str); 3] = [("cluster", "segment_id"), ("rfm", "rfm_segment"), ("lifecycle", "lifecycle_stage")];

/// The newest complete run before `run_date`, whose `customer_segments` the transitions start from.
pub(super) async fn previous_run(p: &Publisher, run_date: NaiveDate) -> Result<Option<NaiveDate>, Error> {
    let runs = crate::runs::list_runs(p.root().as_str()).await?;
    Ok(runs
        .iter()
        .filter(|r| r.incomplete.is_none())
        .filter_map(|r| NaiveDate::parse_from_str(&r.run_date, "%Y-%m-%d").ok())
        .filter(|d| *d < run_date)
        .max())
}

/// `segment_transitions` from (segmentation, transition) rows.
pub(super) fn transitions_table(previous: Option<NaiveDate>, rows: Vec<(&str, Transition)>) -> RecordBatch {
    let days = previous.map(|d| (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32);
    let schema = Schema::new(vec![
        Field::new("segmentation", DataType::Utf8, false),
        Field::new("from_run_date", DataType::Date32, true),
        Field::new("from_segment", DataType::Utf8, true),
        Field::new("to_segment", DataType::Utf8, true),
        Field::new("customers", DataType::Int64, false),
        Field::new("share_of_from", DataType::Float64, false),
    ]);
    let n = rows.len();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(Date32Array::from(vec![days; n])),
        Arc::new(StringArray::from_iter(rows.iter().map(|r| r.1.from.as_deref()))),
        Arc::new(StringArray::from_iter(rows.iter().map(|r| r.1.to.as_deref()))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1.customers as i64))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.1.share_of_from))),
    ];
    RecordBatch::try_new(Arc::new(schema), cols).expect("columns match the schema")
}

/// (id, label) columns, as text, of one column of a previous `customer_segments` partition;
/// a column the previous run did not publish gives none (everyone is new for that
/// segmentation).
fn previous_labels(batches: &[RecordBatch], id_column: &str, column: &str) -> Vec<(StringArray, StringArray)> {
    let text = |b: &RecordBatch, name: &str| -> Option<StringArray> {
        let c = b.column_by_name(name)?;
        datafusion::arrow::compute::cast(c, &DataType::Utf8).ok().map(|c| c.as_string::<i32>().clone())
    };
    batches.iter().filter_map(|b| Some((text(b, id_column)?, text(b, column)?))).collect()
}

/// The (id, label) pairs of [`previous_labels`], the first one of each id.
fn first_labels(columns: &[(StringArray, StringArray)]) -> Vec<(&str, &str)> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (ids, labels) in columns {
        for i in 0..ids.len() {
            if ids.is_valid(i) && labels.is_valid(i) && seen.insert(ids.value(i)) {
                out.push((ids.value(i), labels.value(i)));
            }
        }
    }
    out
}
