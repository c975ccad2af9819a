//! A run from start to end: read the pseudonym key, check the sources, output root and saved
//! models (the preflight), open the session (checking the quality
//! rules), compute and stage every table, draw the report, set aside (on a local root) the disk
//! space the rest needs, take the run date's commit lock, commit, then save the model, the
//! report and the manifest and release the lock. Any failure before the commit abandons the
//! staged files.

use std::time::Instant;

use chrono::NaiveDate;

use super::clv::clv_stage;
use super::customer_actions::customer_actions_stage;
use super::manifest::{ClvReport, Manifest, SegmentationReport, Stages, inputs};
use super::preflight::{Preflight, before_compute};
use super::session::{Open, Session, open_with};
use super::{report, segmentation};
use crate::engine;
use crate::error::Error;
use crate::job::Job;
use crate::location::redact;
use crate::params::ParamValue;
use crate::publish::Publisher;
use crate::quality::RuleCount;

/// Staging older than this is from a run that died; see [`Publisher::remove_stale_staging`].
const STALE_STAGING: chrono::Duration = chrono::Duration::hours(6);

/// Runs `job` for `run_date` and publishes its tables. Returns the manifest.
pub async fn run(job: &Job, run_date: NaiveDate, cli_params: &[(String, ParamValue)]) -> Result<Manifest, Error> {
    let started_at = chrono::Utc::now();
    let run_id = uuid::Uuid::new_v4().to_string();
    tracing::info!(job = %job.name, %run_date, run_id, output = %redact(job.output.root.as_str()), "run started");
    let mut stages = Stages(Vec::new());

    let t = Instant::now();
    let (privacy, checked) = before_compute(job, run_date, &run_id).await?;
    stages.record("preflight", t, None, Some(checked.sources.len() as u64));

    let t = Instant::now();
    let session = open_with(job, run_date, cli_params, Open::Run).await?;
    let quality_counts: Vec<RuleCount> = session.quality.iter().flat_map(|(_, c, _)| c.counts.clone()).collect();
    let dropped: u64 = quality_counts.iter().map(|c| c.rows).sum();
    let plan_seconds = t.elapsed().as_secs_f64() - session.quality_seconds;
    stages.push("plan", plan_seconds, None, Some(session.views.len() as u64));
    stages.push("quality", session.quality_seconds, None, Some(dropped));

    // Files are written by this process; on Ballista, published views are computed on the
    // cluster and streamed here (see `Publisher::stage`). On the local engine the session
    // writes them itself, so the run has one memory pool, not one per context.
    let writer = if job.engine.mode.is_distributed() { engine::local_context(&job.engine_config())? } else { session.ctx.clone() };
    let mut publisher = Publisher::new(&writer, &job.output.root, run_date, &run_id, privacy)?
        .with_remote_input(job.engine.mode.is_distributed())
        .with_format(job.output.format, job.output.vacuum_days);
    publisher.remove_stale_staging(STALE_STAGING).await;
    let result = compute_and_stage(&session, &mut publisher, &mut stages).await;
    let computed = match result {
        Ok(c) => c,
        Err(e) => {
            publisher.abandon().await;
            return Err(e);
        }
    };

    let mut manifest = Manifest {
        run_id,
        job: job.name.clone(),
        run_date,
        segvalue_version: env!("CARGO_PKG_VERSION"),
        engine: job.engine.mode.to_string(),
        started_at: started_at.to_rfc3339(),
        finished_at: String::new(),
        output_root: redact(job.output.root.as_str()),
        params: session.params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        inputs: inputs(&session),
        quality: quality_counts,
        tables: publisher.staged().to_vec(),
        stages: Vec::new(),
        segmentation: computed.segmentation,
        clv: computed.clv,
    };
    // Drawn before anything is committed: a report that cannot be drawn fails the run whole.
    let t = Instant::now();
    let data = report::report_data(&manifest, computed.charts, computed.p_alive, computed.holdout, computed.actions);
    let html = match crate::report::render_html(&data) {
        Ok(h) => h,
        Err(e) => {
            publisher.abandon().await;
            return Err(e.into());
        }
    };
    stages.record("report", t, None, Some(1));

    let model = crate::models::SavedModel {
        format: crate::models::FORMAT.to_string(),
        job: job.name.clone(),
        run_date,
        run_id: manifest.run_id.clone(),
        segmentation: computed.saved_segmentation,
        clv: computed.saved_clv,
    };
    let model = (model.segmentation.is_some() || model.clv.is_some()).then_some(model);

    let t = Instant::now();
    // Space for everything written from the commit on, held until the commit starts: a full
    // disk fails the run here, with nothing published, never between two tables.
    let after_commit = [html.len(), serde_json::to_vec_pretty(&model).map_or(0, |m| m.len()), serde_json::to_vec_pretty(&manifest).map_or(0, |m| m.len())];
    // From the first table to the manifest, no other run of this date commits.
    let lock = async {
        publisher.reserve_commit_space(&after_commit).await?;
        publisher.lock_run_date().await
    };
    let mut lock = match lock.await {
        Ok(lock) => lock,
        Err(e) => {
            publisher.abandon().await;
            return Err(e.into());
        }
    };
    publisher.release_commit_space().await;
    let finished = async {
        manifest.tables = publisher.commit(&mut lock).await?;
        stages.record("commit", t, None, Some(manifest.tables.iter().map(|t| t.rows).sum()));
        if let Some(model) = &model {
            let at = publisher.write_model(model).await?;
            tracing::info!(model = at, "model saved");
        }
        let report_at = publisher.write_report(&html).await?;
        tracing::info!(report = report_at, "run report written");
        manifest.stages = stages.0;
        manifest.finished_at = chrono::Utc::now().to_rfc3339();
        lock.renew().await?;
        Ok::<_, Error>(publisher.write_manifest(&manifest).await?)
    }
    .await;
    lock.release().await;
    tracing::info!(manifest = finished?, "run finished");
    Ok(manifest)
}

/// What the stages hand to the manifest and the run report.
#[derive(Default)]
struct Computed {
    segmentation: Option<SegmentationReport>,
    clv: Option<ClvReport>,
    charts: report::SegmentationCharts,
    p_alive: Option<crate::report::PAliveMatrix>,
    holdout: Option<report::HoldoutCharts>,
    saved_segmentation: Option<crate::models::SavedSegmentation>,
    saved_clv: Option<crate::models::SavedClv>,
    actions: Option<Vec<crate::report::ActionTotals>>,
}

async fn compute_and_stage(s: &Session, publisher: &mut Publisher, stages: &mut Stages) -> Result<Computed, Error> {
    let mut out = Computed::default();
    let clv = match &s.job.clv {
        Some(spec) => Some(clv_stage(s, spec, publisher, stages).await?),
        None => None,
    };
    if let Some(spec) = &s.job.segmentation {
        let (r, charts, saved) = segmentation::segmentation_stage(s, spec, clv.as_ref(), publisher, stages).await?;
        out.segmentation = Some(r);
        out.charts = charts;
        out.saved_segmentation = Some(saved);
    }
    out.actions = customer_actions_stage(s, publisher, stages).await?;
    for name in &s.job.output.publish_views {
        let t = Instant::now();
        let df = s.ctx.table(name.as_str()).await.map_err(|e| Error::query(format!("view '{name}'"), e))?;
        // Sorting on every column makes the file contents deterministic.
        let all: Vec<String> = df.schema().fields().iter().map(|f| f.name().clone()).collect();
        let rows = publisher.stage(name, df, &all).await?;
        stages.record(name, t, None, Some(rows));
    }
    if let Some(c) = clv {
        out.clv = Some(c.report);
        out.p_alive = Some(c.p_alive);
        out.holdout = c.holdout;
        out.saved_clv = Some(c.saved);
    }
    Ok(out)
}

/// `segvalue check`: everything a run checks before it computes (the job, the pseudonym
/// key, the preflight, every view planned), without running anything. Reads no source rows.
pub async fn check(job: &Job, run_date: NaiveDate, cli_params: &[(String, ParamValue)]) -> Result<(Preflight, Session), Error> {
    let (_, checked) = before_compute(job, run_date, &format!("check-{}", uuid::Uuid::new_v4())).await?;
    let session = open_with(job, run_date, cli_params, Open::Plan).await?;
    Ok((checked, session))
}
