//! Object stores (S3, GCS, Azure, HTTP) built from each process's own environment, with the
//! job's retry settings, registered once per bucket.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use datafusion::execution::context::SessionContext;
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use object_store::{BackoffConfig, ObjectStore, RetryConfig};
use url::Url;

use super::config::StorageSection;
use super::error::StoreError;

/// A runtime whose object stores are built on first use from this process's environment,
/// so Ballista's scheduler and executors can read any bucket a job names without
/// credentials travelling in the plan.
pub fn runtime_env(storage: &StorageSection) -> datafusion::error::Result<Arc<RuntimeEnv>> {
    Ok(Arc::new(runtime_builder(storage).build()?))
}

pub(super) fn runtime_builder(storage: &StorageSection) -> RuntimeEnvBuilder {
    let registry = EnvStoreRegistry {
        inner: DefaultObjectStoreRegistry::new(),
        retry: *storage,
    };
    RuntimeEnvBuilder::new().with_object_store_registry(Arc::new(registry))
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
    // A listing's page can break off mid-body, which the stores' own retries do not cover.
    Ok(Arc::new(super::resume::ResumingStore::new(store)))
}
