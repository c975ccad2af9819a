//! The end-to-end run: job → sources → views → segmentation → publish.
//!
//! [`open`] does everything that can fail because of the job itself (job references, SQL,
//! parameters, column names) before any table is scanned; `validate`, `preview` and
//! `explain` stop there. [`run`] then computes and publishes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use chrono::NaiveDate;
use datafusion::execution::context::SessionContext;
use datafusion::arrow::array::{Array, StringArray};
use serde::Serialize;

use crate::error::Error;
use crate::clv::{self, ClvResult, ClvSpec, Summary};
use crate::features::{self, FeatureMatrix};
use crate::job::Job;
use crate::location::redact;
use crate::params::{ParamValue, Params};
use crate::publish::{Publisher, TableReport};
use crate::views::{self, RegisteredView};
use crate::privacy::{Privacy, PrivacyError};
use crate::quality::{self, QualityError, RuleCount};
use crate::{engine, sources};

mod history;
mod report;
mod script;
pub use script::script;
mod tables;
mod segmentation;
pub use segmentation::{PrepReport, RfmReport, SegmentationReport};
use tables::{clv_batch, clv_model_batch, validation_batch};

/// Staging older than this is from a run that died; see [`Publisher::remove_stale_staging`].
const STALE_STAGING: chrono::Duration = chrono::Duration::hours(6);

/// A job with its session opened and every view planned.
pub struct Session {
    pub job: Job,
    pub ctx: SessionContext,
    pub params: Params,
    pub run_date: NaiveDate,
    cli_params: Vec<(String, ParamValue)>,
    /// In dependency order.
    pub views: Vec<RegisteredView>,
    /// The view files behind `views`, same order.
    files: Vec<views::ViewFile>,
    /// What the quality rules found, per source (empty unless opened for a run).
    quality: Vec<(String, quality::Checked, quality::Dedupe)>,
    quality_seconds: f64,
}

/// Registers sources and plans every view, checking everything the job refers to. Reads no
/// data: `validate`, `preview` and `explain` use this.
pub async fn open(job: &Job, run_date: NaiveDate, cli_params: &[(String, ParamValue)]) -> Result<Session, Error> {
    open_with(job, run_date, cli_params, Open::Plan).await
}

/// What [`open_with`] does beyond planning.
enum Open<'a> {
    Plan,
    /// Checks the quality rules first, so the filtering views can skip needless work, and
    /// computes views the run reads more than once only once.
    Run,
    /// A second session of a run (the CLV holdout): reuses the run's quality findings.
    Again(&'a Session),
}

async fn open_with(job: &Job, run_date: NaiveDate, cli_params: &[(String, ParamValue)], how: Open<'_>) -> Result<Session, Error> {
    let params = Params::new(run_date, &job.params, cli_params);
    let source_names: BTreeSet<String> = job.sources.iter().map(|s| s.name.clone()).collect();
    // Parse and order first: a broken SQL file fails before any data is touched.
    let ordered = views::order_views(views::load_views(&job.sql_dir)?, &source_names)?;
    let ctx = engine::context(&job.engine_config()).await?;
    let raw_or_plain = |s: &crate::job::Source| {
        if job.quality.contains_key(&s.name) { quality::raw_name(&s.name) } else { s.name.clone() }
    };
    sources::register_sources(&ctx, &job.sources, raw_or_plain).await?;
    let t = Instant::now();
    let mut checked = Vec::new();
    for (name, rules) in &job.quality {
        let bad_rule = |e: &dyn std::fmt::Display| QualityError::BadRule {
            source_name: name.clone(),
            message: crate::text::one_line(e),
        };
        let found = match &how {
            Open::Plan => None,
            Open::Run => {
                // Planning the plain view first names a rule that does not fit the source
                // before the check queries it.
                ctx.sql(&quality::view_sql(name, rules, &params, &quality::Dedupe::All)).await.map_err(|e| bad_rule(&e))?;
                Some(quality::check(&ctx, name, rules, &params).await?)
            }
            Open::Again(first) => first.quality.iter().find(|(n, _, _)| n == name).map(|(_, c, _)| c.clone()),
        };
        let dedupe = match &found {
            // A Ballista cluster gets the plain DISTINCT ON: the duplicated ids live in this
            // process's memory, which executors cannot read.
            Some(c) if job.engine.mode.is_distributed() && c.dedupe_for(name) != quality::Dedupe::Nothing => quality::Dedupe::All,
            Some(c) => c.dedupe(&ctx, name).map_err(|e| bad_rule(&e))?,
            None => quality::Dedupe::All,
        };
        ctx.sql(&quality::view_sql(name, rules, &params, &dedupe))
            .await
            .and_then(|df| ctx.register_table(name.as_str(), df.into_view()))
            .map_err(|e| bad_rule(&e))?;
        checked.extend(found.map(|c| (name.clone(), c, dedupe)));
    }
    let quality_seconds = t.elapsed().as_secs_f64();
    let cache = match how {
        Open::Run | Open::Again(_) if job.engine.cache_views && !job.engine.mode.is_distributed() => read_twice(job, &ordered),
        _ => BTreeMap::new(),
    };
    let views = views::register_views(&ctx, &ordered, &params, &cache).await?;

    for name in &job.output.publish_views {
        let v = views::find(&views, name)?;
        // Published views go out as they are, so a forbidden column is the job's mistake.
        if let Some(column) = v.schema.fields().iter().find(|f| job.privacy.drop_columns.contains(f.name())) {
            return Err(PrivacyError::ForbiddenColumn {
                view: name.clone(),
                column: column.name().clone(),
            }
            .into());
        }
    }
    if let Some(seg) = &job.segmentation {
        let v = views::find(&views, &seg.view)?;
        features::check_columns(&seg.view, &v.schema, &seg.id, &seg.features, &seg.categorical)?;
    }
    if let Some(r) = &job.rfm {
        let v = views::find(&views, &r.view)?;
        let cols = ["recency_days", "frequency", "monetary", &r.age_column, &r.value_column].map(String::from);
        features::check_columns(&r.view, &v.schema, &r.id, &cols, &[])?;
    }
    if let Some(c) = &job.clv {
        let v = views::find(&views, &c.view)?;
        features::check_columns(&c.view, &v.schema, &c.id, &SUMMARY_COLUMNS.map(String::from), &[])?;
    }
    Ok(Session {
        job: job.clone(),
        ctx,
        params,
        run_date,
        cli_params: cli_params.to_vec(),
        views,
        files: ordered,
        quality: checked,
        quality_seconds,
    })
}

/// Views a run reads more than once (from other views' SQL and from the stages), with the
/// number of reads. A view read through an uncached view that is itself read twice is counted
/// once: its rows are then let go early and computed again, never wrong.
fn read_twice(job: &Job, ordered: &[views::ViewFile]) -> BTreeMap<String, usize> {
    let mut reads: BTreeMap<&str, usize> = BTreeMap::new();
    let stage_reads = [
        // The segmentation view is published as customer_features and loaded for the model.
        job.segmentation.as_ref().map(|s| (s.view.as_str(), 2)),
        job.rfm.as_ref().map(|r| (r.view.as_str(), 1)),
        job.clv.as_ref().map(|c| (c.view.as_str(), 1)),
    ];
    let view_reads = ordered.iter().flat_map(|v| v.references.iter().map(|r| (r.as_str(), 1)));
    let published = job.output.publish_views.iter().map(|v| (v.as_str(), 1));
    for (name, n) in stage_reads.into_iter().flatten().chain(view_reads).chain(published) {
        *reads.entry(name).or_default() += n;
    }
    reads.into_iter().filter(|(_, n)| *n > 1).map(|(name, n)| (name.to_string(), n)).collect()
}

/// The columns of a CLV summary view, in the order [`Summary`] takes them.
const SUMMARY_COLUMNS: [&str; 4] = ["frequency", "recency", "tenure", "monetary_value"];

/// Seconds and row counts of one stage, for logs and the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    pub stage: String,
    pub seconds: f64,
    pub rows_in: Option<u64>,
    pub rows_out: Option<u64>,
}

/// What the run read, by content hash, so a run can be tied to the exact job and SQL.
#[derive(Debug, Clone, Serialize)]
pub struct Inputs {
    pub job_file: String,
    pub job_sha256: String,
    /// SQL file name → SHA-256 of its content.
    pub sql_sha256: std::collections::BTreeMap<String, String>,
}

fn sha256_file(path: &std::path::Path) -> String {
    use sha2::{Digest, Sha256};
    match std::fs::read(path) {
        Ok(bytes) => Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect(),
        Err(_) => String::new(),
    }
}

fn inputs(s: &Session) -> Inputs {
    Inputs {
        job_file: s.job.path.display().to_string(),
        job_sha256: sha256_file(&s.job.path),
        sql_sha256: s
            .views
            .iter()
            .map(|v| (v.path.file_name().unwrap_or_default().to_string_lossy().into_owned(), sha256_file(&v.path)))
            .collect(),
    }
}

/// `<root>/_manifests/run_date=D/manifest.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub run_id: String,
    pub job: String,
    pub run_date: NaiveDate,
    pub segvalue_version: &'static str,
    pub engine: String,
    pub started_at: String,
    pub finished_at: String,
    pub output_root: String,
    pub params: std::collections::BTreeMap<String, String>,
    pub inputs: Inputs,
    /// Rows matched by each data-quality rule (dropped or, for `error` rules, zero).
    pub quality: Vec<RuleCount>,
    pub tables: Vec<TableReport>,
    pub stages: Vec<StageReport>,
    pub segmentation: Option<SegmentationReport>,
    pub clv: Option<ClvReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClvReport {
    pub view: String,
    pub customers: usize,
    pub time_unit: String,
    pub bgnbd: ModelReport,
    pub gamma_gamma: ModelReport,
    pub frequency_monetary_corr: f64,
    /// The expected lifetime `clv_simple` used, in `time_unit`.
    pub lifetime_periods: f64,
    pub holdout: Option<HoldoutReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelReport {
    pub params: std::collections::BTreeMap<&'static str, f64>,
    pub log_likelihood: f64,
    pub iterations: u64,
    pub customers: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct HoldoutReport {
    pub days: u32,
    pub calibration_end: NaiveDate,
    pub customers: usize,
    pub mae: f64,
    pub total_actual: f64,
    pub total_predicted: f64,
}

/// The CLV stage's results, kept for the segment summary.
struct ClvOutcome {
    /// Customer ids, in the order of `result`'s columns.
    ids: StringArray,
    result: ClvResult,
    report: ClvReport,
    /// For the run report.
    p_alive: crate::report::PAliveMatrix,
    holdout: Option<Vec<crate::report::HoldoutBucket>>,
    saved: crate::models::SavedClv,
}

struct Stages(Vec<StageReport>);

impl Stages {
    fn record(&mut self, stage: &str, started: Instant, rows_in: Option<u64>, rows_out: Option<u64>) {
        self.push(stage, started.elapsed().as_secs_f64(), rows_in, rows_out);
    }

    fn push(&mut self, stage: &str, seconds: f64, rows_in: Option<u64>, rows_out: Option<u64>) {
        tracing::info!(stage, seconds, rows_in, rows_out, "stage done");
        self.0.push(StageReport {
            stage: stage.to_string(),
            seconds,
            rows_in,
            rows_out,
        });
    }
}

/// Runs `job` for `run_date` and publishes its tables. Returns the manifest.
pub async fn run(job: &Job, run_date: NaiveDate, cli_params: &[(String, ParamValue)]) -> Result<Manifest, Error> {
    let started_at = chrono::Utc::now();
    let run_id = uuid::Uuid::new_v4().to_string();
    tracing::info!(job = %job.name, %run_date, run_id, output = %redact(job.output.root.as_str()), "run started");
    let mut stages = Stages(Vec::new());

    // Read the pseudonym key first: a missing key must stop the run before any work.
    let default_id = job.segmentation.as_ref().map_or("customer_id", |s| s.id.as_str());
    let privacy = Privacy::new(&job.privacy, default_id)?;

    let t = Instant::now();
    let session = open_with(job, run_date, cli_params, Open::Run).await?;
    let quality_counts: Vec<RuleCount> = session.quality.iter().flat_map(|(_, c, _)| c.counts.clone()).collect();
    let dropped: u64 = quality_counts.iter().map(|c| c.rows).sum();
    let plan_seconds = t.elapsed().as_secs_f64() - session.quality_seconds;
    stages.push("plan", plan_seconds, None, Some(session.views.len() as u64));
    stages.push("quality", session.quality_seconds, None, Some(dropped));

    // Files are written by this process; on Ballista, published views are computed on the
    // cluster and streamed here (see `Publisher::stage`).
    let writer = engine::local_context(&job.engine_config())?;
    let mut publisher = Publisher::new(&writer, &job.output.root, run_date, &run_id, privacy)?
        .with_remote_input(job.engine.mode.is_distributed());
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
    let data = report::report_data(&manifest, computed.charts, computed.p_alive, computed.holdout);
    let html = match crate::report::render_html(&data) {
        Ok(h) => h,
        Err(e) => {
            publisher.abandon().await;
            return Err(e.into());
        }
    };
    stages.record("report", t, None, Some(1));

    let t = Instant::now();
    manifest.tables = publisher.commit().await?;
    stages.record("commit", t, None, Some(manifest.tables.iter().map(|t| t.rows).sum()));
    let model = crate::models::SavedModel {
        format: crate::models::FORMAT.to_string(),
        job: job.name.clone(),
        run_date,
        run_id: manifest.run_id.clone(),
        segmentation: computed.saved_segmentation,
        clv: computed.saved_clv,
    };
    if model.segmentation.is_some() || model.clv.is_some() {
        let at = publisher.write_model(&model).await?;
        tracing::info!(model = at, "model saved");
    }
    let report_at = publisher.write_report(&html).await?;
    tracing::info!(report = report_at, "run report written");
    manifest.stages = stages.0;
    manifest.finished_at = chrono::Utc::now().to_rfc3339();
    let at = publisher.write_manifest(&manifest).await?;
    tracing::info!(manifest = at, "run finished");
    Ok(manifest)
}

/// Customer ids as one Utf8 array: no allocation per customer.
fn id_array(ids: &datafusion::arrow::array::ArrayRef) -> Result<StringArray, Error> {
    use datafusion::arrow::array::AsArray;
    let s = datafusion::arrow::compute::cast(ids, &datafusion::arrow::datatypes::DataType::Utf8)
        .map_err(|e| Error::query("customer ids", e.into()))?;
    Ok(s.as_string::<i32>().clone())
}

/// Position of each id in `ids`.
fn id_index(ids: &StringArray) -> HashMap<&str, usize> {
    ids.iter().enumerate().map(|(i, id)| (id.unwrap_or_default(), i)).collect()
}

async fn load_summary(ctx: &SessionContext, spec: &ClvSpec) -> Result<(FeatureMatrix, Summary, StringArray), Error> {
    let cols = SUMMARY_COLUMNS.map(String::from);
    let m = features::load_matrix(ctx, &spec.view, &spec.id, &cols).await?;
    let col = |j: usize| m.x.column(j).to_vec();
    let summary = Summary {
        frequency: col(0),
        recency: col(1),
        tenure: col(2),
        monetary_value: col(3),
    };
    let ids = id_array(&m.ids)?;
    summary.check(&|i| ids.value(i).to_string()).map_err(|e| match e {
        clv::ClvError::Input(msg) => clv::ClvError::Input(format!("view '{}': {msg}", spec.view)),
        other => other,
    })?;
    Ok((m, summary, ids))
}

fn model_report(params: &[(&'static str, f64)], log_likelihood: f64, iterations: u64, customers: usize) -> ModelReport {
    ModelReport {
        params: params.iter().copied().collect(),
        log_likelihood,
        iterations,
        customers,
    }
}

async fn clv_stage(s: &Session, spec: &ClvSpec, publisher: &mut Publisher, stages: &mut Stages) -> Result<ClvOutcome, Error> {
    let t = Instant::now();
    let (m, summary, ids) = load_summary(&s.ctx, spec).await?;
    stages.record("clv_load", t, None, Some(summary.frequency.len() as u64));
    let t = Instant::now();
    tracing::info!(model = "BG/NBD and Gamma-Gamma", customers = summary.frequency.len(), "fitting");
    let time_unit = format!("{:?}", spec.time_unit).to_lowercase();
    let (models, trained_on) = match spec.mode {
        crate::model_mode::ModelMode::Score => {
            let model = history::find_model(publisher, s.run_date, spec.model_from).await?;
            let (date, saved) = model
                .as_ref()
                .and_then(|m| m.clv.as_ref().map(|c| (m.run_date, c)))
                .ok_or_else(|| history::missing("clv", publisher, s.run_date, spec.model_from))?;
            let (b, g) = saved.params(date, &time_unit)?;
            tracing::info!(model = %date, "CLV parameters from the saved model (mode = score)");
            (clv::with_params(&summary, b, g), saved.trained_on)
        }
        crate::model_mode::ModelMode::Refit => (clv::fit(&summary, spec.penalizer)?, s.run_date),
    };
    stages.record("clv_fit", t, Some(summary.frequency.len() as u64), Some(7));
    let t = Instant::now();
    let result = clv::predict(&summary, spec, models)?;
    stages.record("clv_predict", t, Some(summary.frequency.len() as u64), Some(summary.frequency.len() as u64));
    let (b, g) = (result.bgnbd.params, result.gamma_gamma.params);
    tracing::info!(
        r = b.r, alpha = b.alpha, a = b.a, b = b.b, log_likelihood = result.bgnbd.log_likelihood,
        iterations = result.bgnbd.iterations, unique_tuples = result.bgnbd.unique_tuples, "BG/NBD fitted"
    );
    tracing::info!(p = g.p, q = g.q, gamma = g.gamma, log_likelihood = result.gamma_gamma.log_likelihood, "Gamma-Gamma fitted");
    if result.frequency_monetary_corr.abs() > 0.3 {
        tracing::warn!(
            corr = result.frequency_monetary_corr,
            "frequency and monetary value are correlated; Gamma-Gamma assumes independence"
        );
    }

    let (holdout, buckets) = match spec.holdout_days {
        Some(days) => {
            let (r, b) = holdout_stage(s, spec, days, &summary, &ids, publisher, stages).await?;
            (Some(r), Some(report::holdout_buckets(&b)))
        }
        None => (None, None),
    };

    let t = Instant::now();
    let id = vec![spec.id.clone()];
    let mut rows = publisher.stage_batch("customer_clv", clv_batch(spec, &m, &summary, &result), &id).await?;
    rows += publisher
        .stage_batch("clv_model", clv_model_batch(&result), &["model".into(), "parameter".into()])
        .await?;
    stages.record("clv_tables", t, None, Some(rows));

    let report = ClvReport {
        view: spec.view.clone(),
        customers: summary.frequency.len(),
        time_unit: time_unit.clone(),
        bgnbd: model_report(
            &[("r", b.r), ("alpha", b.alpha), ("a", b.a), ("b", b.b)],
            result.bgnbd.log_likelihood,
            result.bgnbd.iterations,
            result.bgnbd.customers,
        ),
        gamma_gamma: model_report(
            &[("p", g.p), ("q", g.q), ("gamma", g.gamma)],
            result.gamma_gamma.log_likelihood,
            result.gamma_gamma.iterations,
            result.gamma_gamma.customers,
        ),
        frequency_monetary_corr: result.frequency_monetary_corr,
        lifetime_periods: result.lifetime_periods,
        holdout,
    };
    let p_alive = report::p_alive_matrix(&result.bgnbd.params, &summary, &report.time_unit);
    let saved = crate::models::SavedClv {
        trained_on,
        time_unit,
        bgnbd: report.bgnbd.params.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        gamma_gamma: report.gamma_gamma.params.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
    };
    Ok(ClvOutcome {
        ids,
        result,
        report,
        p_alive,
        holdout: buckets,
        saved,
    })
}

/// Fits on data up to `run_date − days` and compares predicted with actual repeat purchases
/// in the last `days` days, for the customers known at the calibration end.
async fn holdout_stage(
    s: &Session,
    spec: &ClvSpec,
    days: u32,
    full: &Summary,
    full_ids: &StringArray,
    publisher: &mut Publisher,
    stages: &mut Stages,
) -> Result<(HoldoutReport, Vec<clv::HoldoutBucket>), Error> {
    let t = Instant::now();
    let cal_end = s.run_date - chrono::Days::new(days as u64);
    let cal_session = open_with(&s.job, cal_end, &s.cli_params, Open::Again(s)).await?;
    let (_, cal, cal_ids) = load_summary(&cal_session.ctx, spec).await?;
    let fitted = clv::fit(&cal, spec.penalizer)?;
    let index = id_index(full_ids);
    let h = days as f64 * spec.time_unit.per_day();
    let b = fitted.bgnbd.params;
    let (mut actual, mut predicted) = (Vec::with_capacity(cal_ids.len()), Vec::with_capacity(cal_ids.len()));
    for (i, id) in cal_ids.iter().map(Option::unwrap_or_default).enumerate() {
        // Everyone known at the calibration end is in the full summary; repeat purchase days
        // after it are the difference of the two frequencies.
        let full_x = index.get(id).map_or(cal.frequency[i], |&j| full.frequency[j]);
        actual.push(full_x - cal.frequency[i]);
        predicted.push(b.expected_purchases(h, cal.frequency[i], cal.recency[i], cal.tenure[i]));
    }
    let (buckets, mae) = clv::holdout(&cal.frequency, &actual, &predicted);
    let report = HoldoutReport {
        days,
        calibration_end: cal_end,
        customers: cal_ids.len(),
        mae,
        total_actual: actual.iter().sum(),
        total_predicted: predicted.iter().sum(),
    };
    tracing::info!(days, mae, total_actual = report.total_actual, total_predicted = report.total_predicted, "CLV holdout check");
    let rows = publisher.stage_batch("clv_validation", validation_batch(&buckets), &["bucket".into()]).await?;
    stages.record("clv_holdout", t, Some(cal_ids.len() as u64), Some(rows));
    Ok((report, buckets))
}

/// What the stages hand to the manifest and the run report.
#[derive(Default)]
struct Computed {
    segmentation: Option<SegmentationReport>,
    clv: Option<ClvReport>,
    charts: report::SegmentationCharts,
    p_alive: Option<crate::report::PAliveMatrix>,
    holdout: Option<Vec<crate::report::HoldoutBucket>>,
    saved_segmentation: Option<crate::models::SavedSegmentation>,
    saved_clv: Option<crate::models::SavedClv>,
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
