//! The engine's own configuration: `[engine]` and `[storage]` of the job file, and the
//! locations a run touches. The engine reads nothing else of a job.

use serde::Deserialize;
use url::Url;

use super::mode::EngineMode;

/// Everything [`super::context`] needs to open a session.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub settings: EngineSection,
    pub storage: StorageSection,
    /// Every source location and the output root: one object store is registered per bucket.
    pub urls: Vec<Url>,
}

/// `[engine]`: where the SQL runs and DataFusion session settings (defaults: embedded
/// DataFusion, one partition per core, 8192 rows). `segvalue run --engine` overrides `mode`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSection {
    pub mode: EngineMode,
    pub target_partitions: Option<usize>,
    pub batch_size: Option<usize>,
    /// How long a Ballista run waits for the scheduler to have an executor.
    pub executor_wait_secs: u64,
    /// Compute an aggregating view read more than once in a run only once, held in memory
    /// (local engine; see `views::CachedView`).
    pub cache_views: bool,
    /// Plan `COUNT(DISTINCT x)` beside other aggregates as a join of two aggregates
    /// (local engine; see `engine::distinct`).
    pub distinct_rewrite: bool,
    /// Memory for DataFusion's operators and the cached views, e.g. "4G" (units K, M, G);
    /// sorts and aggregations spill to disk past it. Unlimited when absent (local engine).
    pub memory_limit: Option<String>,
}

impl EngineSection {
    /// `memory_limit` in bytes (checked when the job is loaded).
    pub fn memory_limit_bytes(&self) -> Option<usize> {
        self.memory_limit.as_deref().and_then(|v| parse_memory_limit(v).ok())
    }
}

pub fn parse_memory_limit(v: &str) -> Result<usize, String> {
    match datafusion::prelude::SessionContext::parse_capacity_limit("engine.memory_limit", v) {
        Ok(0) => Err("must be more than 0".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("'{v}' is not a size such as \"512M\" or \"4G\" (units K, M, G)")),
    }
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            mode: EngineMode::Local,
            target_partitions: None,
            batch_size: None,
            executor_wait_secs: 60,
            cache_views: true,
            distinct_rewrite: true,
            memory_limit: None,
        }
    }
}

/// `[storage]`: retries for object stores (S3, GCS, Azure, HTTP) on 5xx answers, throttling
/// and dropped connections, with exponential backoff.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    pub max_retries: usize,
    pub retry_timeout_secs: u64,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
}

impl Default for StorageSection {
    /// object_store's own defaults.
    fn default() -> Self {
        StorageSection {
            max_retries: 10,
            retry_timeout_secs: 180,
            initial_backoff_ms: 100,
            max_backoff_ms: 15_000,
        }
    }
}
