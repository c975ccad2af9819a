//! Opening a run's session: the engine, the sources behind their quality rules, and every
//! view planned, with the columns the stages need checked.
//!
//! [`open`] does everything that can fail because of the job itself (job references, SQL,
//! parameters, column names) before any table is scanned; `validate`, `preview` and
//! `explain` stop there. A run opens with [`Open::Run`], which also checks the quality rules
//! and caches the views it reads more than once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use chrono::NaiveDate;
use datafusion::execution::context::SessionContext;

use crate::error::Error;
use crate::features;
use crate::job::Job;
use crate::params::{ParamValue, Params};
use crate::privacy::PrivacyError;
use crate::quality::{self, QualityError};
use crate::views::{self, RegisteredView};
use crate::{engine, sources};

/// A job with its session opened and every view planned.
pub struct Session {
    pub job: Job,
    pub ctx: SessionContext,
    pub params: Params,
    pub run_date: NaiveDate,
    pub(super) cli_params: Vec<(String, ParamValue)>,
    /// In dependency order.
    pub views: Vec<RegisteredView>,
    /// The view files behind `views`, same order.
    pub(super) files: Vec<views::ViewFile>,
    /// What the quality rules found, per source (empty unless opened for a run).
    pub(super) quality: Vec<(String, quality::Checked, quality::Dedupe)>,
    pub(super) quality_seconds: f64,
}

/// Registers sources and plans every view, checking everything the job refers to. Reads no
/// data: `validate`, `preview` and `explain` use this.
pub async fn open(job: &Job, run_date: NaiveDate, cli_params: &[(String, ParamValue)]) -> Result<Session, Error> {
    open_with(job, run_date, cli_params, Open::Plan).await
}

/// The job's SQL files parsed and in dependency order: syntax errors, unknown tables and
/// cycles, found without touching a source or a store.
pub(super) fn ordered_views(job: &Job) -> Result<Vec<views::ViewFile>, Error> {
    let source_names: BTreeSet<String> = job.sources.iter().map(|s| s.name.clone()).collect();
    let files = views::load_views(&job.sql_dir).map_err(|e| match e {
        views::ViewError::Empty { .. } | views::ViewError::ReadDir { .. } => views::ViewError::SqlDir { job: job.path.clone(), source: Box::new(e) },
        e => e,
    })?;
    Ok(views::order_views(files, &source_names)?)
}

/// What [`open_with`] does beyond planning.
pub(super) enum Open<'a> {
    Plan,
    /// Checks the quality rules first, so the filtering views can skip needless work, and
    /// computes views the run reads more than once only once.
    Run,
    /// A second session of a run (the CLV holdout): reuses the run's quality findings.
    Again(&'a Session),
}

pub(super) async fn open_with(job: &Job, run_date: NaiveDate, cli_params: &[(String, ParamValue)], how: Open<'_>) -> Result<Session, Error> {
    let holdout = job.clv.as_ref().and_then(|c| c.holdout_days).map_or(0, u64::from);
    let calibration_end = run_date.checked_sub_days(chrono::Days::new(holdout)).unwrap_or(run_date);
    let params = Params::new(run_date, calibration_end, &job.params, cli_params);
    // Parse and order first: a broken SQL file fails before any data is touched.
    let ordered = ordered_views(job)?;
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
    let reads = match how {
        Open::Run | Open::Again(_) if job.engine.cache_views && !job.engine.mode.is_distributed() => read_twice(job, &ordered),
        _ => BTreeMap::new(),
    };
    let cache = views::Caching {
        reads,
        hold_at_most: job.engine.planned_pool().map(|limit| limit / 4),
    };
    let views = views::register_views(&ctx, &ordered, &params, &cache).await?;

    for name in &job.output.publish_views {
        let v = views::find_for_job(&views, name, &job.path, "output.publish_views")?;
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
        let v = views::find_for_job(&views, &seg.view, &job.path, "segmentation.view")?;
        features::check_columns(&seg.view, &v.schema, &seg.id, &seg.features, &seg.categorical)?;
    }
    if let Some(r) = &job.rfm {
        let v = views::find_for_job(&views, &r.view, &job.path, "rfm.view")?;
        let cols = ["recency_days", "frequency", "monetary", &r.age_column, &r.value_column].map(String::from);
        features::check_columns(&r.view, &v.schema, &r.id, &cols, &[])?;
    }
    if let Some(c) = &job.clv {
        let v = views::find_for_job(&views, &c.view, &job.path, "clv.view")?;
        let mut numeric: Vec<String> = SUMMARY_COLUMNS.map(String::from).into();
        numeric.extend(c.covariates.columns());
        features::check_columns(&c.view, &v.schema, &c.id, &numeric, &[])?;
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
        // The CLV fit's tuples, duplicate check and Gamma-Gamma rows, then customer_clv; the
        // segment summary reads the scores from the staged file, or once more from the view
        // when pseudonyms or dropped columns changed that file.
        job.clv.as_ref().map(|c| (c.view.as_str(), 4 + usize::from(job.segmentation.is_some() && !job.privacy.is_identity()))),
    ];
    let view_reads = ordered.iter().flat_map(|v| v.references.iter().map(|r| (r.as_str(), 1)));
    let published = job.output.publish_views.iter().map(|v| (v.as_str(), 1));
    for (name, n) in stage_reads.into_iter().flatten().chain(view_reads).chain(published) {
        *reads.entry(name).or_default() += n;
    }
    reads.into_iter().filter(|(_, n)| *n > 1).map(|(name, n)| (name.to_string(), n)).collect()
}

/// The columns of a CLV summary view, in the order [`crate::clv::Summary`] takes them.
pub(super) const SUMMARY_COLUMNS: [&str; 4] = ["frequency", "recency", "tenure", "monetary_value"];
