//! Preflight: what a run needs from outside its job file, checked before any source is
//! scanned, so that a typo in a bucket name fails in seconds instead of after every stage
//! has computed. The output root takes a write (an object put and deleted under its staging
//! area), every source lists at least one file of its format, and a score run's saved model
//! exists. `segvalue check` runs this without running the job.

use chrono::NaiveDate;

use super::history;
use crate::engine;
use crate::error::Error;
use crate::job::Job;
use crate::location::redact;
use crate::model_mode::ModelMode;
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

/// Checks `job`'s sources, output root and saved models for a run of `run_date`.
pub async fn preflight(job: &Job, run_date: NaiveDate, run_id: &str, privacy: &Privacy) -> Result<Preflight, Error> {
    // The driver's own session: on Ballista the executors read the sources, but the URLs
    // and credentials are the job's either way, and this process writes the outputs.
    let ctx = engine::local_context(&job.engine_config())?;
    let mut found = Vec::new();
    for s in &job.sources {
        found.push((s.name.clone(), redact(s.url.as_str()), sources::count_files(&ctx, s).await?));
    }
    let publisher = Publisher::new(&ctx, &job.output.root, run_date, run_id, privacy.clone())?;
    publisher.probe().await?;
    let mut models = Vec::new();
    let score = [
        job.segmentation.as_ref().filter(|s| s.mode == ModelMode::Score).map(|s| ("segmentation", s.model_from)),
        job.clv.as_ref().filter(|c| c.mode == ModelMode::Score).map(|c| ("clv", c.model_from)),
    ];
    for (what, from) in score.into_iter().flatten() {
        let model = history::find_model(&publisher, run_date, from).await?;
        let has = |m: &crate::models::SavedModel| if what == "clv" { m.clv.is_some() } else { m.segmentation.is_some() };
        match model.filter(has) {
            Some(m) => models.push((what, m.run_date)),
            None => return Err(history::missing(what, &publisher, run_date, from)),
        }
    }
    Ok(Preflight {
        sources: found,
        output: redact(job.output.root.as_str()),
        models,
    })
}
