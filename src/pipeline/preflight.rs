//! Preflight: what a run needs from outside its job file, checked before any source is
//! scanned, so that a typo in a bucket name fails in seconds instead of after every stage
//! has computed. The output root takes a write (an object put and deleted under its staging
//! area), every source lists at least one file of its format, and a score run's saved model
//! exists. `segvalue check` runs this without running the job.

use chrono::NaiveDate;

use super::history;
use super::session::ordered_views;
use crate::engine;
use crate::error::Error;
use crate::job::Job;
use crate::location::redact;
use crate::model_mode::{ModelFrom, ModelMode};
use crate::models::SavedModel;
use crate::privacy::Privacy;
use crate::publish::Publisher;
use crate::sources;

/// What the preflight found.
#[derive(Debug)]
pub struct Preflight {
    /// Source name, its URL (redacted) and how many files of its format it lists.
    pub sources: Vec<(String, String, usize)>,
    /// The output root (redacted), which took a write.
    pub output: String,
    /// Per model a score run uses: what it is for and the date of the saved model.
    pub models: Vec<(&'static str, NaiveDate)>,
}

/// What a run (and `segvalue check`) does before it plans anything: read the pseudonym key
/// (a missing key stops the run before any work), parse the SQL (a broken view is the job's
/// fault, exit 2, whatever the stores say), then the [`preflight`].
pub(super) async fn before_compute(job: &Job, run_date: NaiveDate, run_id: &str) -> Result<(Privacy, Preflight), Error> {
    let default_id = job.segmentation.as_ref().map_or("customer_id", |s| s.id.as_str());
    let privacy = Privacy::new(&job.privacy, default_id)?;
    ordered_views(job)?;
    let checked = preflight(job, run_date, run_id, &privacy).await?;
    Ok((privacy, checked))
}

/// Checks `job`'s sources, output root and saved models for a run of `run_date`.
pub async fn preflight(job: &Job, run_date: NaiveDate, run_id: &str, privacy: &Privacy) -> Result<Preflight, Error> {
    // The driver's own session: on Ballista the executors read the sources, but the URLs
    // and credentials are the job's either way, and this process writes the outputs.
    let ctx = engine::local_context(&job.engine_config())?;
    let mut found = Vec::new();
    for s in &job.sources {
        found.push((s.name.clone(), redact(s.url.as_str()), sources::count_files(&ctx, s).await?));
    }
    let publisher = Publisher::new(&ctx, &job.output.root, run_date, run_id, privacy.clone())?.with_format(job.output.format, job.output.vacuum_days);
    publisher.probe().await?;
    let mut models = Vec::new();
    if let Some(s) = job.segmentation.as_ref().filter(|s| s.mode == ModelMode::Score) {
        models.push(("segmentation", saved(&publisher, run_date, "segmentation", s.model_from, |m| m.segmentation.is_some()).await?));
    }
    if let Some(c) = job.clv.as_ref().filter(|c| c.mode == ModelMode::Score) {
        models.push(("clv", saved(&publisher, run_date, "clv", c.model_from, |m| m.clv.is_some()).await?));
    }
    Ok(Preflight {
        sources: found,
        output: redact(job.output.root.as_str()),
        models,
    })
}

/// The date of the saved model a score run of `what` would use, or the error it would stop with.
async fn saved(
    p: &Publisher,
    run_date: NaiveDate,
    what: &'static str,
    from: ModelFrom,
    has: impl Fn(&SavedModel) -> bool,
) -> Result<NaiveDate, Error> {
    match history::find_model(p, run_date, from).await?.filter(|m| has(m)) {
        Some(m) => Ok(m.run_date),
        None => Err(history::missing(what, p, run_date, from)),
    }
}
