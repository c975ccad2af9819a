//! The engine: a DataFusion [`SessionContext`] with the object stores a job needs.
//!
//! Everything SQL runs through this context, so the pipeline is the same whichever engine
//! executes it: embedded DataFusion (`local`, the default) or a Ballista cluster
//! ([`EngineMode`], [`cluster`]). Object stores are built from each process's own standard
//! environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`); credentials are never put in URLs, plans,
//! logs or errors.

use std::time::Duration;

use datafusion::execution::context::SessionContext;

pub mod cluster;
mod config;
mod deadline;
pub mod distinct;
mod error;
mod local;
mod materialize;
mod mode;
mod resume;
mod stores;

pub use config::{EngineConfig, EngineSection, StorageSection, parse_memory_limit};
pub use error::{EngineError, StoreError};
pub use local::{local_context, session_config};
pub use materialize::{Materialized, TempFile, TempParquet, materialize, temp_table};
pub use mode::{EngineMode, parse_host_port};
pub use stores::{register_stores, runtime_env, store_base};

/// The session every SQL statement of a run goes through, on the job's engine.
///
/// For Ballista the session plans on this driver and sends each query to the scheduler; it
/// first waits (up to `[engine] executor_wait_secs`) for an executor to be registered, so a
/// cluster without executors is an error and never a silent local run.
pub async fn context(config: &EngineConfig) -> Result<SessionContext, EngineError> {
    let engine = &config.settings;
    match &engine.mode {
        EngineMode::Local => Ok(local_context(config)?),
        EngineMode::Ballista { host, port } => {
            let url = format!("http://{host}:{port}");
            cluster::wait_for_executors(&engine.mode, &url, Duration::from_secs(engine.executor_wait_secs)).await?;
            cluster::client_context(config, &url)
        }
        EngineMode::Standalone => {
            // Its executor is started with it, in this process.
            let url = cluster::standalone(&config.storage).await?;
            cluster::client_context(config, &url)
        }
    }
}
