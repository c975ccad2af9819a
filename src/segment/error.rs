//! The segmentation stage's error type, shared by preparation, fitting and scoring.

#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("invalid segmentation parameters: {0}")]
    Params(String),
    #[error("k = {k} is more than the {rows} rows to cluster")]
    TooFewRows { k: usize, rows: usize },
    #[error("choosing k by silhouette from k = {min} needs at least {} rows, found {rows}", min + 1)]
    TooFewRowsToChoose { min: usize, rows: usize },
    #[error("k-means with k = {k} left cluster {cluster} empty; lower k")]
    EmptyCluster { k: usize, cluster: usize },
    #[error(
        "view '{view}': feature '{column}' has {count} null value(s); set an imputation \
         ([segmentation] impute = \"mean\", \"median\" or a number)"
    )]
    Nulls { view: String, column: String, count: usize },
    #[error("view '{view}': feature '{column}' has {count} non-finite value(s) after preparation: {why}")]
    NonFinite { view: String, column: String, count: usize, why: String },
    #[error("{0}")]
    Fit(String),
    #[error(transparent)]
    Linfa(#[from] linfa::Error),
}

impl SegmentError {
    /// Errors the job file can fix (bad parameters) rather than the data.
    pub fn is_config(&self) -> bool {
        matches!(self, SegmentError::Params(_) | SegmentError::TooFewRows { .. } | SegmentError::TooFewRowsToChoose { .. })
    }
}
