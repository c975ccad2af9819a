//! The end-to-end run: job → sources → views → segmentation → publish.
//!
//! [`open`] does everything that can fail because of the job itself (job references, SQL,
//! parameters, column names) before any table is scanned; `validate`, `preview` and
//! `explain` stop there. [`run`] then computes and publishes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use datafusion::arrow::array::{ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::execution::context::SessionContext;
use serde::Serialize;

use crate::error::Error;
use crate::features::{self, FeatureMatrix};
use crate::job::{Job, SegmentationSpec, redact};
use crate::params::{ParamValue, Params};
use crate::publish::{Publisher, TableReport};
use crate::segment::{self, Segmentation};
use crate::views::{self, RegisteredView};
use crate::privacy::{Privacy, PrivacyError};
use crate::quality::{self, QualityError, RuleCount};
use crate::{engine, sources};

/// Staging older than this is from a run that died; see [`Publisher::remove_stale_staging`].
const STALE_STAGING: chrono::Duration = chrono::Duration::hours(6);

/// A job with its session opened and every view planned.
pub struct Session {
    pub job: Job,
    pub ctx: SessionContext,
    pub params: Params,
    /// In dependency order.
    pub views: Vec<RegisteredView>,
}

/// Registers sources and plans every view, checking everything the job refers to.
pub async fn open(job: &Job, run_date: NaiveDate, cli_params: &[(String, ParamValue)]) -> Result<Session, Error> {
    let params = Params::new(run_date, &job.params, cli_params);
    let source_names: BTreeSet<String> = job.sources.iter().map(|s| s.name.clone()).collect();
    // Parse and order first: a broken SQL file fails before any data is touched.
    let ordered = views::order_views(views::load_views(&job.sql_dir)?, &source_names)?;
    let ctx = engine::local_context(job)?;
    let raw_or_plain = |s: &crate::job::Source| {
        if job.quality.contains_key(&s.name) { quality::raw_name(&s.name) } else { s.name.clone() }
    };
    sources::register_sources(&ctx, &job.sources, raw_or_plain).await?;
    for (name, rules) in &job.quality {
        let sql = quality::view_sql(name, rules, &params);
        ctx.sql(&sql)
            .await
            .and_then(|df| ctx.register_table(name.as_str(), df.into_view()))
            .map_err(|e| QualityError::BadRule {
                source_name: name.clone(),
                message: crate::error::one_line(&e),
            })?;
    }
    let views = views::register_views(&ctx, &ordered, &params).await?;

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
        features::check_columns(&seg.view, &v.schema, &seg.id, &seg.features)?;
    }
    Ok(Session {
        job: job.clone(),
        ctx,
        params,
        views,
    })
}

/// Seconds and row counts of one stage, for logs and the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    pub stage: String,
    pub seconds: f64,
    pub rows_in: Option<u64>,
    pub rows_out: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SegmentationReport {
    pub view: String,
    pub customers: usize,
    pub features: Vec<String>,
    pub k: usize,
    pub silhouette: f64,
    pub inertia: f64,
    /// Fitted scaling per feature: z = (x - center) / scale.
    pub scaling: Vec<FeatureScaling>,
    /// Segment centroids in original feature units, row = segment id.
    pub centroids: Vec<Vec<f64>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FeatureScaling {
    pub feature: String,
    pub center: f64,
    pub scale: f64,
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
    pub engine: &'static str,
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
}

struct Stages(Vec<StageReport>);

impl Stages {
    fn record(&mut self, stage: &str, started: Instant, rows_in: Option<u64>, rows_out: Option<u64>) {
        let seconds = started.elapsed().as_secs_f64();
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
    let session = open(job, run_date, cli_params).await?;
    stages.record("plan", t, None, Some(session.views.len() as u64));

    let t = Instant::now();
    let mut quality_counts = Vec::new();
    for (source, rules) in &job.quality {
        quality_counts.extend(quality::check(&session.ctx, source, rules, &session.params).await?);
    }
    let dropped: u64 = quality_counts.iter().map(|c| c.rows).sum();
    stages.record("quality", t, None, Some(dropped));

    let mut publisher = Publisher::new(&session.ctx, &job.output.root, run_date, &run_id, privacy)?;
    publisher.remove_stale_staging(STALE_STAGING).await;
    let result = compute_and_stage(&session, &mut publisher, &mut stages).await;
    let segmentation = match result {
        Ok(s) => s,
        Err(e) => {
            publisher.abandon().await;
            return Err(e);
        }
    };

    let t = Instant::now();
    let tables = publisher.commit().await?;
    stages.record("commit", t, None, Some(tables.iter().map(|t| t.rows).sum()));

    let manifest = Manifest {
        run_id,
        job: job.name.clone(),
        run_date,
        segvalue_version: env!("CARGO_PKG_VERSION"),
        engine: "local",
        started_at: started_at.to_rfc3339(),
        finished_at: chrono::Utc::now().to_rfc3339(),
        output_root: redact(job.output.root.as_str()),
        params: session.params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        inputs: inputs(&session),
        quality: quality_counts,
        tables,
        stages: stages.0,
        segmentation,
    };
    let at = publisher.write_manifest(&manifest).await?;
    tracing::info!(manifest = at, "run finished");
    Ok(manifest)
}

async fn compute_and_stage(
    s: &Session,
    publisher: &mut Publisher,
    stages: &mut Stages,
) -> Result<Option<SegmentationReport>, Error> {
    let mut report = None;
    if let Some(spec) = &s.job.segmentation {
        let t = Instant::now();
        let df = s.ctx.table(spec.view.as_str()).await.map_err(|e| Error::query(format!("view '{}'", spec.view), e))?;
        let rows = publisher.stage("customer_features", df, std::slice::from_ref(&spec.id)).await?;
        stages.record("customer_features", t, None, Some(rows));

        let t = Instant::now();
        let m = features::load_matrix(&s.ctx, &spec.view, &spec.id, &spec.features).await?;
        stages.record("load_features", t, Some(rows), Some(m.x.nrows() as u64));

        let t = Instant::now();
        let seg = segment::segment(&m.x, spec)?;
        let chosen = seg.k_selection.iter().find(|r| r.chosen).cloned();
        tracing::info!(k = seg.k, silhouette = chosen.as_ref().map(|c| c.silhouette), "segmentation fitted");
        stages.record("segment", t, Some(m.x.nrows() as u64), Some(seg.k as u64));

        let t = Instant::now();
        let id = vec![spec.id.clone()];
        let mut out = publisher.stage_batch("customer_segments", segments_batch(spec, &m, &seg), &id).await?;
        out += publisher.stage_batch("segment_summary", summary_batch(&m, &seg), &["segment_id".into()]).await?;
        out += publisher.stage_batch("segmentation_k_selection", k_selection_batch(&seg), &["k".into()]).await?;
        stages.record("segment_tables", t, None, Some(out));
        report = Some(SegmentationReport {
            view: spec.view.clone(),
            customers: m.x.nrows(),
            features: spec.features.clone(),
            k: seg.k,
            silhouette: chosen.as_ref().map_or(f64::NAN, |c| c.silhouette),
            inertia: chosen.as_ref().map_or(f64::NAN, |c| c.inertia),
            scaling: (0..m.names.len())
                .map(|j| FeatureScaling {
                    feature: m.names[j].clone(),
                    center: seg.scaler.center[j],
                    scale: seg.scaler.scale[j],
                })
                .collect(),
            centroids: seg.scaler.inverse(&seg.centroids).rows().into_iter().map(|r| r.to_vec()).collect(),
        });
    }
    for name in &s.job.output.publish_views {
        let t = Instant::now();
        let df = s.ctx.table(name.as_str()).await.map_err(|e| Error::query(format!("view '{name}'"), e))?;
        // Sorting on every column makes the file contents deterministic.
        let all: Vec<String> = df.schema().fields().iter().map(|f| f.name().clone()).collect();
        let rows = publisher.stage(name, df, &all).await?;
        stages.record(name, t, None, Some(rows));
    }
    Ok(report)
}

fn f64_col(v: impl IntoIterator<Item = f64>) -> ArrayRef {
    Arc::new(Float64Array::from_iter_values(v))
}

fn batch(fields: Vec<Field>, cols: Vec<ArrayRef>) -> RecordBatch {
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).expect("columns match the schema")
}

fn segments_batch(spec: &SegmentationSpec, m: &FeatureMatrix, seg: &Segmentation) -> RecordBatch {
    batch(
        vec![
            Field::new(&spec.id, m.ids.data_type().clone(), false),
            Field::new("segment_id", DataType::Int32, false),
            Field::new("distance_to_centroid", DataType::Float64, false),
        ],
        vec![
            m.ids.clone(),
            Arc::new(Int32Array::from_iter_values(seg.segment.iter().map(|&s| s as i32))),
            f64_col(seg.distance.iter().copied()),
        ],
    )
}

fn summary_batch(m: &FeatureMatrix, seg: &Segmentation) -> RecordBatch {
    let mut fields = vec![
        Field::new("segment_id", DataType::Int32, false),
        Field::new("customers", DataType::Int64, false),
        Field::new("share", DataType::Float64, false),
    ];
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from_iter_values(seg.profiles.iter().map(|p| p.segment_id as i32))),
        Arc::new(Int64Array::from_iter_values(seg.profiles.iter().map(|p| p.customers as i64))),
        f64_col(seg.profiles.iter().map(|p| p.share)),
    ];
    for (j, name) in m.names.iter().enumerate() {
        fields.push(Field::new(format!("mean_{name}"), DataType::Float64, false));
        cols.push(f64_col(seg.profiles.iter().map(|p| p.means[j])));
    }
    batch(fields, cols)
}

fn k_selection_batch(seg: &Segmentation) -> RecordBatch {
    let rows = &seg.k_selection;
    batch(
        vec![
            Field::new("k", DataType::Int32, false),
            Field::new("inertia", DataType::Float64, false),
            Field::new("silhouette", DataType::Float64, true),
            Field::new("chosen", DataType::Boolean, false),
        ],
        vec![
            Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.k as i32))),
            f64_col(rows.iter().map(|r| r.inertia)),
            Arc::new(Float64Array::from_iter(rows.iter().map(|r| Some(r.silhouette).filter(|s| s.is_finite())))),
            Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(r.chosen)))),
        ],
    )
}
