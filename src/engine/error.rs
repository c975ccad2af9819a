//! The engine's errors: object stores that cannot be set up, clusters that cannot be reached.

#[derive(Debug, thiserror::Error)]
#[error("{url}: cannot set up object store: {message}")]
pub struct StoreError {
    pub url: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The cluster could not be reached, or has no executor to run on.
    #[error("{engine}: {message}")]
    Cluster { engine: String, message: String },
}

impl EngineError {
    pub fn is_config(&self) -> bool {
        matches!(self, EngineError::Store(_))
    }
}
