//! The segmentation stage past `fit_sample` customers (issue #20): the driver holds a seeded
//! sample and per-segment statistics, never every customer.
//!
//! 1. The preparation is fitted by the engine over every customer: counts, means and
//!    standard deviations from one aggregate query, quantiles (median fills, clip bounds,
//!    robust scaling) as exact order statistics (a sort the engine can spill, fetching the
//!    two rows each quantile interpolates, [`crate::stats::quantile_positions`]), so fill values,
//!    clip bounds and robust scales are the driver's to the bit.
//! 2. K-means (or mini-batch K-means) fits every candidate k and chooses k on a sample of
//!    about `fit_sample` customers: those whose salted id hash falls below a threshold, so
//!    the same customers for a seed whatever the partitioning, read in id order.
//! 3. The engine assigns every customer (`nearest_centroid` over the prepared columns as SQL
//!    expressions) in a `GROUP BY` that counts, measures and profiles the segments, and in the
//!    plan that writes `customer_segments` with its RFM scores, lifecycle stages and value
//!    tiers (quintile edges and tier cut-offs from order statistics, scores as `CASE`).
//! 4. What is published per segment (actions, CLV totals, transitions) is counted from the
//!    staged tables.
//!
//! The report's charts, the drift check and the saved model's drift bins read the sample.

mod assign;
mod order_stats;
mod prep;
mod rfm;
mod sql;
mod staged;

use std::time::Instant;

use ndarray::Axis;

use super::clv::ClvOutcome;
use super::history;
use super::manifest::{ModelUse, Stages};
use super::segment_outputs::{Outcome, log_outcome, report, rules, stage_segment_tables};
use super::session::Session;
use super::tables::{CategoryCounts, summary_batch};
use crate::engine::materialize;
use crate::error::Error;
use crate::model_mode::ModelMode;
use crate::publish::Publisher;
use crate::quality::quote;
use crate::segment::profile::{SegmentStats, actions_for, named_profiles, size_order};
use crate::segment::spec::Algorithm;
use crate::segment::{self, SegmentError, Segmentation, SegmentationSpec};
use assign::{category_counts, profile, sample, segments_sql};
use sql::{CURRENT, FEATURES, RFM};
use prep::{fit_preparation, population};
use rfm::rfm_plan;
use staged::{clv_by_segment, dominant_groups, staged_counts, transitions};

/// Whether this stage runs here: more customers than `fit_sample` and a model that assigns
/// new rows by the nearest centroid (K-means, mini-batch K-means, Ward, any saved model). DBSCAN
/// and GMM refits stay on the driver.
pub(super) fn applies(spec: &SegmentationSpec, rows: u64) -> bool {
    let by_centroid = spec.mode == ModelMode::Score || matches!(spec.algorithm, Algorithm::KMeans | Algorithm::MiniBatchKMeans { .. } | Algorithm::Hierarchical);
    by_centroid && rows > spec.fit_sample as u64
}

pub(super) async fn segmentation_stage(
    s: &Session,
    spec: &SegmentationSpec,
    clv: Option<&ClvOutcome>,
    publisher: &mut Publisher,
    stages: &mut Stages,
    rows: u64,
) -> Result<Outcome, Error> {
    let ctx = &s.ctx;
    let q = |e| Error::query(format!("view '{}'", spec.view), e);
    let local = !s.job.engine.mode.is_distributed();
    // The queries below read the staged file, not the view (computed again for each of them,
    // or held in memory by its cache: let go now). Pseudonymised ids would not join the RFM
    // view, so then the view's own rows, on disk when the engine is embedded.
    let mut on_disk = Vec::new();
    match publisher.read_staged("customer_features").await? {
        Some(df) => ctx.register_table(FEATURES, df.into_view()).map(|_| ()).map_err(q)?,
        None if local => on_disk.push(materialize(ctx, ctx.table(spec.view.as_str()).await.map_err(q)?, FEATURES).await.map_err(q)?),
        None => ctx.register_table(FEATURES, ctx.table(spec.view.as_str()).await.map_err(q)?.into_view()).map(|_| ()).map_err(q)?,
    }
    crate::views::release(ctx, &spec.view).await;
    // The RFM view is read once per quantile column and by the plan of customer_segments.
    let rfm_table = match &s.job.rfm {
        Some(r) if local => {
            let t = Instant::now();
            let cols: Vec<String> = [r.id.as_str(), "recency_days", "frequency", "monetary", &r.age_column, &r.value_column].iter().map(|c| quote(c)).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
            let q = |e| Error::query(format!("view '{}'", r.view), e);
            let df = ctx.sql(&format!("SELECT {} FROM {}", cols.join(", "), quote(&r.view))).await.map_err(q)?;
            on_disk.push(materialize(ctx, df, RFM).await.map_err(q)?);
            stages.record("rfm_load", t, None, Some(on_disk.last().expect("pushed").rows as u64));
            RFM.to_string()
        }
        Some(r) => r.view.clone(),
        None => String::new(),
    };
    let out = engine_stage(s, spec, clv, publisher, stages, rows, &rfm_table).await;
    for table in [FEATURES, RFM, CURRENT] {
        let _ = ctx.deregister_table(table);
    }
    drop(on_disk);
    out
}

async fn engine_stage(
    s: &Session,
    spec: &SegmentationSpec,
    clv: Option<&ClvOutcome>,
    publisher: &mut Publisher,
    stages: &mut Stages,
    rows: u64,
    rfm_table: &str,
) -> Result<Outcome, Error> {
    let ctx = &s.ctx;
    let t = Instant::now();
    let pop = population(ctx, spec).await?;
    let model = history::find_model(publisher, s.run_date, spec.model_from).await?;
    let previous = model.as_ref().and_then(|m| m.segmentation.as_ref().map(|sg| (m.run_date, sg)));
    let saved = match spec.mode {
        ModelMode::Score => {
            let (date, saved) = previous.ok_or_else(|| history::missing("segmentation", publisher, s.run_date, spec.model_from))?;
            Some((date, saved.fitted(date, &spec.features, &spec.categorical)?))
        }
        ModelMode::Refit => None,
    };
    let columns = match &saved {
        Some((_, fitted)) => {
            // A column the saved preparation does not impute must have no NULLs.
            for (j, f) in spec.features.iter().enumerate() {
                let nulls = pop.rows - pop.present[j];
                if nulls > 0 && fitted.columns.iter().any(|c| &c.source == f && c.category.is_none() && c.fill_value.is_none()) {
                    return Err(SegmentError::Nulls { view: spec.view.clone(), column: f.clone(), count: nulls }.into());
                }
            }
            fitted.columns.clone()
        }
        None => fit_preparation(ctx, spec, &pop).await?,
    };
    let (frame, sampled) = sample(s, spec, pop.rows).await?;
    stages.record("load_features", t, Some(rows), Some(frame.x.nrows() as u64));

    let t = Instant::now();
    let z = segment::prep::apply(&spec.view, &spec.features, &frame.x, &spec.categorical, &frame.categorical, &columns)?;
    tracing::info!(rows = pop.rows, fit_rows = z.nrows(), "fitting the clustering on a sample; the engine assigns every customer");
    let (centroids, labels, k_selection, n_iter, relocated) = match &saved {
        Some((_, fitted)) => {
            let model = segment::KMeansModel { centroids: fitted.centroids.clone(), inertia: 0.0, n_iter: 0, relocated: 0 };
            (fitted.centroids.clone(), model.assign(z.view()).0.to_vec(), Vec::new(), 0, 0)
        }
        None => {
            let fit = segment::fit_sample(z.view(), spec)?;
            (fit.centroids, fit.labels, fit.k_selection, fit.n_iter, fit.relocated)
        }
    };
    let profiled = profile(ctx, spec, &columns, &centroids).await?;
    let k = centroids.nrows();
    // Refits number segments by size over every customer; a saved model keeps its rows.
    let order: Vec<usize> = match saved {
        Some(_) => (0..k).collect(),
        None => size_order(&profiled.stats.iter().map(|s| s.customers).collect::<Vec<_>>(), &centroids),
    };
    let mut new_id = vec![0usize; k];
    for (new, &old) in order.iter().enumerate() {
        new_id[old] = new;
    }
    let mut stats: Vec<Option<SegmentStats>> = profiled.stats.into_iter().map(Some).collect();
    let ordered_stats = order
        .iter()
        .enumerate()
        .map(|(new, &old)| SegmentStats { segment_id: new as i32, ..stats[old].take().expect("each cluster once") })
        .collect();
    let profiles = named_profiles(ordered_stats, &profiled.overall, pop.rows, spec);
    let ordered = centroids.select(Axis(0), &order);
    let mut seg = Segmentation {
        columns,
        k,
        // The sample's rows: the charts, drift and saved bins read them.
        segment: labels.iter().map(|&l| new_id[l] as i32).collect(),
        distance: z
            .axis_iter(Axis(0))
            .zip(&labels)
            .map(|(row, &l)| Some(row.iter().zip(centroids.row(l)).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt()))
            .collect(),
        centroids: ordered,
        k_selection,
        profiles,
        n_iter,
        relocated,
        fit_rows: if saved.is_some() { 0 } else { z.nrows() },
    };
    let model_use = match (&saved, previous) {
        (Some((date, fitted)), _) => {
            seg.relabel(&fitted.ids, Some(&fitted.names));
            Some(ModelUse { mode: "score", model_run_date: Some(*date), matched: fitted.ids.clone(), fresh: Vec::new(), vanished: Vec::new() })
        }
        (None, Some((date, prev))) if spec.align_ids => history::align_ids(prev, date, &mut seg)?,
        _ => None,
    };
    let drift = previous.map(|(_, saved)| history::drift(saved, &spec.features, &frame.x, &seg, spec.drift_warn_psi));
    log_outcome(&seg, model_use.as_ref(), spec.mode);
    stages.record("segment", t, Some(pop.rows as u64), Some(seg.k as u64));

    let t = Instant::now();
    let rfm = match &s.job.rfm {
        Some(r) => Some((r, rfm_plan(ctx, r, rfm_table).await?)),
        None => None,
    };
    if let Some((_, plan)) = &rfm {
        stages.record("rfm", t, Some(plan.report.customers as u64), None);
    }

    let t = Instant::now();
    // Centroid row i (fitted numbering) is profile new_id[i], which carries its final id and name.
    let ids: Vec<i32> = (0..k).map(|i| seg.profiles[new_id[i]].segment_id).collect();
    let names: Vec<String> = (0..k).map(|i| seg.profiles[new_id[i]].name.clone()).collect();
    let sql = segments_sql(spec, &seg.columns, &centroids, &ids, &names, rfm.as_ref().map(|(r, p)| (*r, p, rfm_table)));
    let df = ctx.sql(&sql).await.map_err(|e| Error::query("customer_segments", e))?;
    let mut out = publisher.stage("customer_segments", df, std::slice::from_ref(&spec.id)).await?;
    let (groups, counts, missing) = staged_counts(ctx, publisher).await?;
    if let Some((r, _)) = &rfm
        && missing > 0
    {
        tracing::warn!(view = %r.view, missing, "customers of the segmentation are missing from the RFM view");
    }
    let actions = actions_for(&seg.profiles, &dominant_groups(&seg, &groups), &s.job.actions);
    let transitions = transitions(s, publisher, &spec.id, rfm.is_some()).await?;
    out += publisher
        .stage_batch("segment_transitions", transitions, &["segmentation".into(), "from_segment".into(), "to_segment".into()])
        .await?;
    let (totals, pairs) = match clv {
        Some(_) => {
            let (t, p) = clv_by_segment(ctx, publisher, &seg, &spec.id, &sampled).await?;
            (Some(t), Some(p))
        }
        None => (None, None),
    };
    let counted = category_counts(ctx, spec, &seg.columns, &centroids).await?;
    let shares: Vec<CategoryCounts> = spec
        .profile
        .iter()
        .zip(counted)
        .map(|(column, per_row)| {
            let mut per_profile = vec![Vec::new(); seg.profiles.len()];
            for (i, counts) in per_row.into_iter().enumerate() {
                per_profile[new_id[i]] = counts;
            }
            (column.clone(), per_profile)
        })
        .collect();
    let summary = summary_batch(&spec.features, &seg, &actions, totals.as_deref(), &shares);
    let rules = rules(&frame.x, &seg)?;
    let charts = super::report::segmentation_charts(&spec.features, &frame.x, &seg, pairs.as_deref(), &rules, &shares);
    out += stage_segment_tables(publisher, spec, &seg, summary, &actions, rfm.as_ref().map(|_| &counts), &s.job.actions, &rules).await?;
    stages.record("segment_tables", t, None, Some(out));

    let (trained_on, reference) = match (spec.mode, previous) {
        (ModelMode::Score, Some((_, saved))) => (saved.trained_on, Some(saved)),
        _ => (s.run_date, None),
    };
    let saved_model = history::saved_segmentation(spec, &seg, &actions, &frame.x, trained_on, reference);
    let report = report(spec, &seg, pop.rows, rfm.map(|(_, p)| p.report), model_use, drift);
    Ok((report, charts, saved_model))
}
