//! The embedded DataFusion session: the job's session settings, its memory pool and the
//! `COUNT(DISTINCT)` rewrite.

use std::num::NonZeroUsize;
use std::sync::Arc;

use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SessionContext;
use datafusion::execution::memory_pool::{FairSpillPool, MemoryPool, TrackConsumersPool};
use datafusion::prelude::SessionConfig;

use super::config::{EngineConfig, EngineSection};
use super::distinct;
use super::error::StoreError;
use super::stores::{register_stores, runtime_builder};

/// The job's session settings (partitions, batch size), shared by every engine.
pub fn session_config(engine: &EngineSection) -> SessionConfig {
    let mut config = SessionConfig::new()
        .with_information_schema(false)
        .with_default_catalog_and_schema("segvalue", "public");
    // DataFusion 55 plans a UNION ALL under a filter with the filter's non-null columns in
    // the logical schema and nullable ones in the physical (apache/datafusion#19049's class of
    // bug); the quality rules' partial dedupe is such a union, and with a multi-file source
    // the aggregate above it failed planning ("Physical input schema should be the same...").
    // The values are the same either way: skip that nullability check, DataFusion's
    // documented workaround.
    config.options_mut().execution.skip_physical_aggregate_schema_check = true;
    if let Some(n) = engine.target_partitions {
        config = config.with_target_partitions(n);
    }
    if let Some(n) = engine.batch_size {
        config = config.with_batch_size(n);
    }
    if let Some(limit) = engine.planned_pool() {
        if engine.batch_size.is_none() {
            let rows = capped_batch_size(limit, config.target_partitions(), config.batch_size());
            config = config.with_batch_size(rows);
        }
        let options = config.options_mut();
        // Hash joins hold their build side in memory and cannot spill (DataFusion 55);
        // sort-merge joins, whose sorts spill, keep the run inside its pool. They cost some
        // speed on joins that would fit (20 % of the 10M-order job when the default pool was
        // half the memory, BENCHMARKS.md), the price of a bounded default pool.
        options.optimizer.prefer_hash_join = false;
        // Every sort sets this aside per partition to merge its spilled runs; DataFusion's
        // 10 MB would take a small cap whole before any row is sorted.
        let reserve = &mut options.execution.sort_spill_reservation_bytes;
        *reserve = (*reserve).min(limit / 64);
    }
    config
}

/// Rows per batch in a pool. The fair pool gives each of its spillable
/// operators an equal share, and an operator must hold at least one batch before it can
/// spill; a plan has a dozen or more such operators per partition, so a small cap with full
/// 8192-row batches fails (measured: 24M on 25k customers, 2 partitions, a sort short of
/// one 738 KB batch) where smaller batches fit. 4 KiB of cap per row and partition makes a
/// batch of the shipped views' ≈100-byte rows about a third of such a share; caps of 32 MB
/// per partition and more keep DataFusion's default.
fn capped_batch_size(limit: usize, partitions: usize, default: usize) -> usize {
    (limit / (partitions.max(1) * 4096)).clamp(512, default.max(512))
}

/// How many spilled runs a sort merges at once in a pool. DataFusion's
/// merge of spilled runs grows its (unspillable) reservation to seat as many runs as the pool
/// allows, about a batch or two per run; with no bound, two sorts' merges took a 200M pool
/// whole at 10M orders and the aggregation above them failed (BENCHMARKS.md). With the fan-in
/// bounded, a merge that would hold more runs merges in several passes instead. 8 MiB of cap
/// per run and partition, within 2..=64.
fn merge_fan_in(limit: usize, partitions: usize) -> usize {
    (limit / (partitions.max(1) * 8 * 1024 * 1024)).clamp(2, 64)
}

/// `[engine] memory_limit` (or its default share of memory) as a memory pool: sorts and
/// aggregations share it fairly and spill to the OS temp directory past their share; an
/// operator that cannot spill fails the run with an error naming the largest consumers,
/// instead of the process being killed. Cached views count against it too
/// (`views::CachedView`).
fn memory_pool(limit: usize) -> Arc<dyn MemoryPool> {
    Arc::new(TrackConsumersPool::new(FairSpillPool::new(limit), NonZeroUsize::new(5).expect("5 > 0")))
}

/// Builds the embedded DataFusion session and registers an object store for every
/// bucket or container its sources and output root use.
pub fn local_context(config: &EngineConfig) -> Result<SessionContext, StoreError> {
    let settings = session_config(&config.settings);
    let mut runtime = runtime_builder(&config.storage);
    if let Some(pool) = config.settings.memory_pool() {
        tracing::debug!(bytes = pool.bytes, explicit = pool.explicit, "engine memory pool");
        runtime = runtime.with_memory_pool(memory_pool(pool.bytes));
        runtime = runtime.with_max_spill_merge_fan_in(merge_fan_in(pool.bytes, settings.target_partitions()));
    }
    let runtime = runtime.build_arc().map_err(|e| StoreError {
        url: String::new(),
        message: crate::text::one_line(&e),
    })?;
    let mut state = SessionStateBuilder::new().with_default_features().with_config(settings).with_runtime_env(runtime);
    if config.settings.distinct_rewrite {
        // Only over plain scans: the rewrite reads its input twice.
        state = distinct::register_rule(state, distinct::MixedDistinctToJoin::scans_only());
    }
    let ctx = SessionContext::new_with_state(crate::functions::with_functions(state).build());
    register_stores(&ctx, config.urls.iter(), &config.storage)?;
    Ok(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_cap_shrinks_batches_and_an_explicit_batch_size_wins() {
        let section = |limit: Option<&str>, batch_size: Option<usize>| EngineSection {
            target_partitions: Some(2),
            memory_limit: limit.map(str::to_string),
            batch_size,
            ..EngineSection::default()
        };
        assert_eq!(session_config(&section(None, None)).batch_size(), 8192);
        assert_eq!(session_config(&section(Some("24M"), None)).batch_size(), 3072);
        assert_eq!(session_config(&section(Some("1M"), None)).batch_size(), 512);
        assert_eq!(session_config(&section(Some("2G"), None)).batch_size(), 8192);
        assert_eq!(session_config(&section(Some("24M"), Some(100))).batch_size(), 100);
    }

    #[test]
    fn a_cap_bounds_the_merge_fan_in() {
        let mib = 1024 * 1024;
        assert_eq!(merge_fan_in(200 * mib, 2), 12);
        assert_eq!(merge_fan_in(48 * mib, 2), 3);
        assert_eq!(merge_fan_in(8 * mib, 4), 2);
        assert_eq!(merge_fan_in(2048 * mib, 2), 64);
    }
}
