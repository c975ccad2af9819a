//! The top-level error and its exit codes.
//!
//! Each layer has its own error type carrying its context (file, view, column, URL). This
//! enum only gathers them and decides the process exit code, which cron and Airflow rely on:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the run failed while reading data, fitting models or publishing |
//! | 2 | bad job file, bad SQL view, bad parameter or bad command-line arguments (nothing was read) |

use crate::clv::ClvError;
use crate::text::one_line;
use crate::engine::{EngineError, StoreError};
use crate::features::FeatureError;
use crate::job::JobError;
use crate::privacy::PrivacyError;
use crate::publish::PublishError;
use crate::quality::QualityError;
use crate::segment::SegmentError;
use crate::sources::SourceError;
use crate::views::ViewError;

/// Exit code for a run that failed after the job was accepted.
pub const EXIT_RUN_FAILED: u8 = 1;
/// Exit code for a job, view, parameter or argument that is wrong before anything runs.
pub const EXIT_BAD_JOB: u8 = 2;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    View(#[from] ViewError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Quality(#[from] QualityError),
    #[error(transparent)]
    Privacy(#[from] PrivacyError),
    #[error(transparent)]
    Feature(#[from] FeatureError),
    #[error(transparent)]
    Segment(#[from] SegmentError),
    #[error(transparent)]
    Clv(#[from] ClvError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    #[error(transparent)]
    Model(#[from] crate::models::ModelError),
    /// A query over already-registered views failed while running.
    #[error("{context}: {}", one_line(source))]
    Query {
        context: String,
        source: datafusion::error::DataFusionError,
    },
    #[error("{0}")]
    Usage(String),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Job(_) | Error::View(_) | Error::Store(_) | Error::Privacy(_) | Error::Usage(_) => EXIT_BAD_JOB,
            Error::Engine(e) if e.is_config() => EXIT_BAD_JOB,
            Error::Model(e) if !matches!(e, crate::models::ModelError::Unreadable { .. }) => EXIT_BAD_JOB,
            Error::Feature(e) if e.is_config() => EXIT_BAD_JOB,
            Error::Quality(e) if e.is_config() => EXIT_BAD_JOB,
            Error::Segment(e) if e.is_config() => EXIT_BAD_JOB,
            _ => EXIT_RUN_FAILED,
        }
    }

    pub fn query(context: impl Into<String>, source: datafusion::error::DataFusionError) -> Self {
        Error::Query { context: context.into(), source }
    }
}
