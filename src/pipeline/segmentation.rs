//! The segmentation stage: stage `customer_features`, then segment past `fit_sample`
//! customers in the engine ([`super::segmentation_sql`]) or, up to it (and for DBSCAN and GMM
//! refits), on the driver here: load features, cluster, score RFM and tiers, stage the tables.

use std::collections::BTreeMap;
use std::time::Instant;

use datafusion::arrow::array::{Array, StringArray};

use super::clv::ClvOutcome;
use super::history;
use super::ids::{id_array, id_index};
use super::manifest::{ModelUse, RfmReport, Stages};
use super::rows::{RfmColumns, RfmCounts};
use super::segment_outputs::{Outcome, log_outcome, report, rules, stage_segment_tables};
use super::session::Session;
use super::tables::{CategoryCounts, clv_totals, segments_batch, summary_batch};
use crate::error::Error;
use crate::features;
use crate::publish::Publisher;
use crate::segment::profile::{category_counts, segment_actions};
use crate::segment::rfm::{self, Lifecycle};
use crate::model_mode::ModelMode;
use crate::segment::spec::RfmSpec;
use crate::segment::{self, SegmentationSpec};

pub(super) async fn segmentation_stage(
    s: &Session,
    spec: &SegmentationSpec,
    clv: Option<&ClvOutcome>,
    publisher: &mut Publisher,
    stages: &mut Stages,
) -> Result<Outcome, Error> {
    let t = Instant::now();
    let df = s.ctx.table(spec.view.as_str()).await.map_err(|e| Error::query(format!("view '{}'", spec.view), e))?;
    let rows = publisher.stage("customer_features", df, std::slice::from_ref(&spec.id)).await?;
    stages.record("customer_features", t, None, Some(rows));
    if super::segmentation_sql::applies(spec, rows) {
        return super::segmentation_sql::segmentation_stage(s, spec, clv, publisher, stages, rows).await;
    }
    in_memory(s, spec, clv, publisher, stages, rows).await
}

/// Every customer's features on the driver: up to `fit_sample` customers, and for the
/// algorithms that cannot assign by the nearest centroid (DBSCAN, GMM).
async fn in_memory(
    s: &Session,
    spec: &SegmentationSpec,
    clv: Option<&ClvOutcome>,
    publisher: &mut Publisher,
    stages: &mut Stages,
    rows: u64,
) -> Result<Outcome, Error> {
    let t = Instant::now();
    // The profiled columns that are not clustered are loaded after the clustered ones.
    let mut categorical = spec.categorical.clone();
    categorical.extend(spec.profile.iter().filter(|c| !spec.categorical.contains(c)).cloned());
    let frame = features::load_frame(&s.ctx, &spec.view, &spec.id, &spec.features, &categorical).await?;
    stages.record("load_features", t, Some(rows), Some(frame.x.nrows() as u64));

    let t = Instant::now();
    // Score runs use the chosen saved model; refits align ids with the newest earlier one.
    let model = history::find_model(publisher, s.run_date, spec.model_from).await?;
    let previous = model.as_ref().and_then(|m| m.segmentation.as_ref().map(|sg| (m.run_date, sg)));
    let input = segment::Features {
        x: &frame.x,
        categorical: &frame.categorical[..spec.categorical.len()],
    };
    let (seg, model_use) = match spec.mode {
        ModelMode::Score => {
            let (date, saved) =
                previous.ok_or_else(|| history::missing("segmentation", publisher, s.run_date, spec.model_from))?;
            let fitted = saved.fitted(date, &spec.features, &spec.categorical)?;
            let used = ModelUse {
                mode: "score",
                model_run_date: Some(date),
                matched: fitted.ids.clone(),
                fresh: Vec::new(),
                vanished: Vec::new(),
            };
            (segment::score(&input, spec, &fitted)?, Some(used))
        }
        ModelMode::Refit => {
            let mut seg = segment::segment(&input, spec)?;
            let used = match previous {
                Some((date, saved)) if spec.align_ids => history::align_ids(saved, date, &mut seg)?,
                _ => None,
            };
            (seg, used)
        }
    };
    let drift = previous.map(|(_, saved)| history::drift(saved, &spec.features, &frame.x, &seg, spec.drift_warn_psi));
    log_outcome(&seg, model_use.as_ref(), spec.mode);
    stages.record("segment", t, Some(frame.x.nrows() as u64), Some(seg.k as u64));

    let ids = id_array(&frame.ids)?;
    let (rfm_cols, rfm_report) = match &s.job.rfm {
        Some(r) => {
            let t = Instant::now();
            let (cols, report) = rfm_stage(s, r, &ids).await?;
            stages.record("rfm", t, Some(report.customers as u64), Some(ids.len() as u64));
            (Some(cols), Some(report))
        }
        None => (None, None),
    };
    let actions = segment_actions(
        &seg.profiles,
        &seg.segment,
        rfm_cols.as_ref().map(|c| c.stage.as_slice()),
        rfm_cols.as_ref().map(|c| c.tier.as_slice()),
        &s.job.actions,
    );

    let t = Instant::now();
    // Sorted again although built in id order: the writer may repartition its input, and only
    // the sort fixes the row order in the file whatever the partition count.
    let id = vec![spec.id.clone()];
    let batch = segments_batch(spec, &frame.ids, &seg, rfm_cols.as_ref());
    let mut out = publisher.stage_batch("customer_segments", batch, &id).await?;
    let clv_join = match clv {
        Some(c) => {
            let (clv_ids, value, p_alive) = c.per_customer(publisher).await?;
            let index = id_index(&clv_ids);
            Some(ids.iter().map(|id| index.get(id.unwrap_or_default()).map(|&i| (value[i], p_alive[i]))).collect::<Vec<_>>())
        }
        None => None,
    };
    let transitions = history::transitions_batch(publisher, s.run_date, &spec.id, &ids, &seg, rfm_cols.as_ref()).await?;
    out += publisher
        .stage_batch("segment_transitions", transitions, &["segmentation".into(), "from_segment".into(), "to_segment".into()])
        .await?;
    let totals = clv_join.as_deref().map(|c| clv_totals(&seg, c));
    let shares: Vec<CategoryCounts> = spec
        .profile
        .iter()
        .map(|c| {
            let values = &frame.categorical[categorical.iter().position(|n| n == c).expect("loaded")];
            (c.clone(), category_counts(&seg.segment, values, &seg.profiles))
        })
        .collect();
    let summary = summary_batch(&spec.features, &seg, &actions, totals.as_deref(), &shares);
    let clv_pairs: Option<Vec<(i32, f64)>> =
        clv_join.as_deref().map(|c| seg.segment.iter().zip(c).filter_map(|(&s, v)| v.map(|(v, _)| (s, v))).collect());
    let rules = rules(&frame.x, &seg)?;
    let charts = super::report::segmentation_charts(&spec.features, &frame.x, &seg, clv_pairs.as_deref(), &rules, &shares);
    let counts = rfm_cols.as_ref().map(RfmCounts::of);
    out += stage_segment_tables(publisher, spec, &seg, summary, &actions, counts.as_ref(), &s.job.actions, &rules).await?;
    stages.record("segment_tables", t, None, Some(out));

    let (trained_on, reference) = match (spec.mode, previous) {
        (ModelMode::Score, Some((_, saved))) => (saved.trained_on, Some(saved)),
        _ => (s.run_date, None),
    };
    let saved = history::saved_segmentation(spec, &seg, &actions, &frame.x, trained_on, reference);
    let report = report(spec, &seg, frame.x.nrows(), rfm_report, model_use, drift);
    Ok((report, charts, saved))
}

/// RFM scores over the RFM view's customers, lifecycle stages and value tiers, aligned to the
/// segmentation's customers.
async fn rfm_stage<'a>(s: &Session, r: &'a RfmSpec, seg_ids: &StringArray) -> Result<(RfmColumns<'a>, RfmReport), Error> {
    let wanted = ["recency_days", "frequency", "monetary", &r.age_column, &r.value_column];
    // Each column once: the age or value column may be one of the first three.
    let mut cols: Vec<String> = Vec::new();
    for c in wanted {
        if !cols.iter().any(|x| x == c) {
            cols.push(c.to_string());
        }
    }
    let m = features::load_matrix(&s.ctx, &r.view, &r.id, &cols).await?;
    let ids = id_array(&m.ids)?;
    let col = |j: usize| m.x.column(cols.iter().position(|c| c == wanted[j]).expect("listed")).to_vec();
    let (recency, frequency, monetary, age, value) = (col(0), col(1), col(2), col(3), col(4));
    let rs = rfm::quintile_scores(&recency, false);
    let fs = rfm::quintile_scores(&frequency, true);
    let ms = rfm::quintile_scores(&monetary, true);
    let (tiers, high_from, low_below) = rfm::value_tiers(&value, &r.value);
    let stages: Vec<Lifecycle> = age.iter().zip(&recency).map(|(&a, &d)| rfm::lifecycle(a, d, &r.lifecycle)).collect();
    let mut lifecycle = BTreeMap::new();
    for st in &stages {
        *lifecycle.entry(st.as_str().to_string()).or_insert(0) += 1;
    }
    let index = id_index(&ids);
    let at: Vec<Option<usize>> = seg_ids.iter().map(|id| index.get(id.unwrap_or_default()).copied()).collect();
    let pick = |v: &[u8]| at.iter().map(|i| i.map(|i| v[i])).collect::<Vec<_>>();
    let cols = RfmColumns {
        r: pick(&rs),
        f: pick(&fs),
        m: pick(&ms),
        segment: at
            .iter()
            .map(|i| i.and_then(|i| rfm::rfm_segment(&r.rules, rs[i], fs[i], ms[i])))
            .collect(),
        stage: at.iter().map(|i| i.map(|i| stages[i])).collect(),
        tier: at.iter().map(|i| i.map(|i| tiers[i])).collect(),
    };
    let missing = at.iter().filter(|i| i.is_none()).count();
    if missing > 0 {
        tracing::warn!(view = %r.view, missing, "customers of the segmentation are missing from the RFM view");
    }
    let report = RfmReport {
        view: r.view.clone(),
        customers: ids.len(),
        value_high_from: high_from,
        value_low_below: low_below,
        lifecycle,
    };
    Ok((cols, report))
}

