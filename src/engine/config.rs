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
    /// How long one query may run on a Ballista cluster before the driver cancels its job and
    /// fails the run (0: no limit); see `engine::deadline`.
    pub query_timeout_secs: u64,
    /// Compute an aggregating view read more than once in a run only once, held in memory
    /// (local engine; see `views::CachedView`).
    pub cache_views: bool,
    /// Plan `COUNT(DISTINCT x)` beside other aggregates as a join of two aggregates
    /// (local engine; see `engine::distinct`).
    pub distinct_rewrite: bool,
    /// Memory for DataFusion's operators and the cached views, e.g. "4G" (units K, M, G);
    /// sorts and aggregations spill to disk past it, and joins sort-merge so they can too.
    /// When absent, [`DEFAULT_MEMORY_SHARE`] of the machine's memory up to
    /// [`DEFAULT_MEMORY_MAX`] (local engine).
    pub memory_limit: Option<String>,
}

/// Six hours: far above any query of the jobs this tool is measured on (the 100M-order job runs
/// in about 12 minutes on one machine), so it only ends runs whose cluster lost the job.
pub const DEFAULT_QUERY_TIMEOUT_SECS: u64 = 6 * 3600;

/// The share of the machine's (or the container's) memory the engine's pool gets when the job
/// sets no `memory_limit`, up to [`DEFAULT_MEMORY_MAX`]: the rest is for the model stages on
/// the driver, the allocator's slack and the page cache, so a default run ends with a
/// "Resources exhausted" error rather than being killed by the kernel.
pub const DEFAULT_MEMORY_SHARE: f64 = 0.5;

/// The largest default pool. Every operator of the shipped job spills (sort-merge joins,
/// spilling sorts and aggregations, cached views in temporary files), so a bounded pool costs
/// little time and makes a default run's memory predictable on a shared machine: the
/// 100M-order job peaks at about 3 GB with it against 14 GB with half of 24 GB
/// (BENCHMARKS.md). A job that wants more sets `memory_limit`.
pub const DEFAULT_MEMORY_MAX: usize = 2 << 30;

/// The engine's memory pool: its size, and whether the job chose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryPoolSize {
    pub bytes: usize,
    pub explicit: bool,
}

impl EngineSection {
    /// The job's own `memory_limit` in bytes (checked when the job is loaded).
    pub fn memory_limit_bytes(&self) -> Option<usize> {
        self.memory_limit.as_deref().and_then(|v| parse_memory_limit(v).ok())
    }

    /// The pool a run is planned to fit (sort-merge joins, bounded sort reservations and merges,
    /// cached views up to a quarter of it): the job's `memory_limit`, or the default pool on
    /// the embedded engine. None on a cluster without a `memory_limit` (the executors' own).
    pub fn planned_pool(&self) -> Option<usize> {
        if self.mode.is_distributed() { self.memory_limit_bytes() } else { self.memory_pool().map(|p| p.bytes) }
    }

    /// `memory_limit` in bytes (checked when the job is loaded), else the default share of
    /// the memory this process may use: the cgroup's limit inside a container, else the
    /// machine's. None when the memory cannot be read (an unbounded pool, as before).
    pub fn memory_pool(&self) -> Option<MemoryPoolSize> {
        if let Some(bytes) = self.memory_limit_bytes() {
            return Some(MemoryPoolSize { bytes, explicit: true });
        }
        let total = usable_memory()?;
        Some(MemoryPoolSize {
            bytes: ((total as f64 * DEFAULT_MEMORY_SHARE) as usize).min(DEFAULT_MEMORY_MAX),
            explicit: false,
        })
    }
}

/// Bytes of memory this process may use: the smaller of the machine's and its cgroup's limit.
fn usable_memory() -> Option<u64> {
    use sysinfo::{MemoryRefreshKind, RefreshKind, System};
    let sys = System::new_with_specifics(RefreshKind::nothing().with_memory(MemoryRefreshKind::nothing().with_ram()));
    let machine = sys.total_memory();
    let limit = sys.cgroup_limits().map(|c| c.total_memory).filter(|&m| m > 0).map_or(machine, |c| c.min(machine));
    (limit > 0).then_some(limit)
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
            query_timeout_secs: DEFAULT_QUERY_TIMEOUT_SECS,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_s_memory_limit_wins_else_half_the_machine_s_memory_up_to_2_gib() {
        let set = EngineSection {
            memory_limit: Some("300M".into()),
            ..EngineSection::default()
        };
        assert_eq!(set.memory_pool(), Some(MemoryPoolSize { bytes: 300 << 20, explicit: true }));
        // Read independently of sysinfo: no cgroup can grant more than the machine has.
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
        let kb: u64 = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:")).unwrap().trim().trim_end_matches(" kB").parse().unwrap();
        let default = EngineSection::default().memory_pool().unwrap();
        assert!(!default.explicit);
        assert!(default.bytes > 0 && default.bytes as u64 <= kb * 1024 / 2, "{default:?} of {kb} kB");
        assert!(default.bytes <= 2 << 30, "{default:?}");
    }
}
