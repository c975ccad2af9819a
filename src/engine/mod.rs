//! The engine: a DataFusion [`SessionContext`] with the object stores a job needs.
//!
//! Everything SQL runs through this context, so the pipeline is the same whichever engine
//! executes it: embedded DataFusion (`local`, the default) or a Ballista cluster
//! ([`EngineMode`], [`cluster`]). Object stores are built from each process's own standard
//! environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`); credentials are never put in URLs, plans,
//! logs or errors.

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::sync::Arc;

use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SessionContext;
use datafusion::execution::memory_pool::{FairSpillPool, MemoryPool, TrackConsumersPool};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::SessionConfig;
use std::time::Duration;

use object_store::{BackoffConfig, ObjectStore, RetryConfig};
use url::Url;


pub mod cluster;
mod config;
pub mod distinct;

pub use config::{EngineConfig, EngineSection, StorageSection, parse_memory_limit};

#[derive(Debug, thiserror::Error)]
#[error("{url}: cannot set up object store: {message}")]
pub struct StoreError {
    pub url: String,
    pub message: String,
}

/// Where the SQL runs: `local`, `ballista://HOST:PORT` or `ballista-standalone`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum EngineMode {
    /// Embedded DataFusion in this process.
    #[default]
    Local,
    /// A Ballista scheduler started with `segvalue scheduler` (or any Ballista 55 scheduler).
    Ballista { host: String, port: u16 },
    /// A scheduler and one executor inside this process, for tests and demos.
    Standalone,
}

impl EngineMode {
    pub fn parse(s: &str) -> Result<EngineMode, String> {
        let bad = || format!("engine '{s}': expected local, ballista://HOST:PORT or ballista-standalone");
        match s {
            "local" => Ok(EngineMode::Local),
            "ballista-standalone" => Ok(EngineMode::Standalone),
            _ => {
                let rest = s.strip_prefix("ballista://").ok_or_else(bad)?;
                let (host, port) = parse_host_port(rest.trim_end_matches('/')).ok_or_else(bad)?;
                Ok(EngineMode::Ballista { host, port })
            }
        }
    }

    pub fn is_distributed(&self) -> bool {
        !matches!(self, EngineMode::Local)
    }
}

/// `HOST:PORT` with a non-empty host and a port from 1 to 65535.
pub fn parse_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port = port.parse::<u16>().ok().filter(|p| *p != 0)?;
    (!host.is_empty()).then(|| (host.to_string(), port))
}

impl std::fmt::Display for EngineMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineMode::Local => f.write_str("local"),
            EngineMode::Ballista { host, port } => write!(f, "ballista://{host}:{port}"),
            EngineMode::Standalone => f.write_str("ballista-standalone"),
        }
    }
}

impl<'de> serde::Deserialize<'de> for EngineMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        EngineMode::parse(&s).map_err(serde::de::Error::custom)
    }
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

/// The job's session settings (partitions, batch size), shared by every engine.
pub fn session_config(engine: &EngineSection) -> SessionConfig {
    let mut config = SessionConfig::new()
        .with_information_schema(false)
        .with_default_catalog_and_schema("segvalue", "public");
    if let Some(n) = engine.target_partitions {
        config = config.with_target_partitions(n);
    }
    if let Some(n) = engine.batch_size {
        config = config.with_batch_size(n);
    }
    config
}

/// A runtime whose object stores are built on first use from this process's environment,
/// so Ballista's scheduler and executors can read any bucket a job names without
/// credentials travelling in the plan.
pub fn runtime_env(storage: &StorageSection) -> datafusion::error::Result<Arc<RuntimeEnv>> {
    Ok(Arc::new(runtime_builder(storage).build()?))
}

fn runtime_builder(storage: &StorageSection) -> RuntimeEnvBuilder {
    let registry = EnvStoreRegistry {
        inner: DefaultObjectStoreRegistry::new(),
        retry: *storage,
    };
    RuntimeEnvBuilder::new().with_object_store_registry(Arc::new(registry))
}

/// `[engine] memory_limit` as a memory pool: sorts and aggregations share it fairly and spill
/// to the OS temp directory past their share; an operator that cannot spill fails the run with
/// an error naming the largest consumers, instead of the process being killed. Cached views
/// count against it too (`views::CachedView`).
fn memory_pool(limit: usize) -> Arc<dyn MemoryPool> {
    Arc::new(TrackConsumersPool::new(FairSpillPool::new(limit), NonZeroUsize::new(5).expect("5 > 0")))
}

#[derive(Debug)]
struct EnvStoreRegistry {
    inner: DefaultObjectStoreRegistry,
    retry: StorageSection,
}

impl ObjectStoreRegistry for EnvStoreRegistry {
    fn register_store(&self, url: &Url, store: Arc<dyn ObjectStore>) -> Option<Arc<dyn ObjectStore>> {
        self.inner.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        self.inner.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        if let Ok(store) = self.inner.get_store(url) {
            return Ok(store);
        }
        let base = store_base(url);
        let store = build_store(&base, retry_config(&self.retry))
            .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
        self.inner.register_store(&base, store.clone());
        Ok(store)
    }
}

/// Builds the embedded DataFusion session and registers an object store for every
/// bucket or container its sources and output root use.
pub fn local_context(config: &EngineConfig) -> Result<SessionContext, StoreError> {
    let mut runtime = runtime_builder(&config.storage);
    if let Some(limit) = config.settings.memory_limit_bytes() {
        runtime = runtime.with_memory_pool(memory_pool(limit));
    }
    let runtime = runtime.build_arc().map_err(|e| StoreError {
        url: String::new(),
        message: crate::text::one_line(&e),
    })?;
    let mut state = SessionStateBuilder::new().with_default_features().with_config(session_config(&config.settings)).with_runtime_env(runtime);
    if config.settings.distinct_rewrite {
        // Only over plain scans: the rewrite reads its input twice.
        state = distinct::register_rule(state, distinct::MixedDistinctToJoin::scans_only());
    }
    let ctx = SessionContext::new_with_state(state.build());
    register_stores(&ctx, config.urls.iter(), &config.storage)?;
    Ok(ctx)
}

/// Registers one store per distinct `scheme://authority` (local files are built in).
pub fn register_stores<'a>(
    ctx: &SessionContext,
    urls: impl Iterator<Item = &'a Url>,
    storage: &StorageSection,
) -> Result<(), StoreError> {
    let mut done = BTreeSet::new();
    for url in urls {
        if url.scheme() == "file" {
            continue;
        }
        let base = store_base(url);
        if !done.insert(base.clone()) {
            continue;
        }
        let store = build_store(&base, retry_config(storage))?;
        ctx.runtime_env().register_object_store(&base, store);
    }
    Ok(())
}

/// `s3://bucket/a/b/` → `s3://bucket/`: object stores are registered per bucket.
pub fn store_base(url: &Url) -> Url {
    let mut base = url.clone();
    base.set_path("/");
    base.set_query(None);
    base.set_fragment(None);
    base
}

fn retry_config(s: &StorageSection) -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(s.initial_backoff_ms),
            max_backoff: Duration::from_millis(s.max_backoff_ms),
            base: 2.0,
        },
        max_retries: s.max_retries,
        retry_timeout: Duration::from_secs(s.retry_timeout_secs),
    }
}

fn build_store(base: &Url, retry: RetryConfig) -> Result<Arc<dyn ObjectStore>, StoreError> {
    let err = |e: object_store::Error| StoreError {
        url: base.to_string(),
        message: crate::text::one_line(&e),
    };
    let store: Arc<dyn ObjectStore> = match base.scheme() {
        "s3" | "s3a" => {
            let mut b = object_store::aws::AmazonS3Builder::from_env().with_url(base.as_str()).with_retry(retry);
            // S3-compatible servers on plain HTTP (MinIO, moto) need this opt-in.
            let endpoint = std::env::var("AWS_ENDPOINT_URL").or_else(|_| std::env::var("AWS_ENDPOINT"));
            if endpoint.is_ok_and(|e| e.starts_with("http://")) {
                b = b.with_allow_http(true);
            }
            Arc::new(b.build().map_err(err)?)
        }
        "gs" => Arc::new(
            object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(base.as_str())
                .with_retry(retry)
                .build()
                .map_err(err)?,
        ),
        "az" | "abfs" | "abfss" => Arc::new(
            object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(base.as_str())
                .with_retry(retry)
                .build()
                .map_err(err)?,
        ),
        "http" | "https" => Arc::new(
            object_store::http::HttpBuilder::new()
                .with_url(base.as_str())
                .with_retry(retry)
                .build()
                .map_err(err)?,
        ),
        other => {
            return Err(StoreError {
                url: base.to_string(),
                message: format!("unsupported scheme '{other}'"),
            });
        }
    };
    Ok(store)
}
