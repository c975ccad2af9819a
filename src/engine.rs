//! The engine: a DataFusion [`SessionContext`] with the object stores a job needs.
//!
//! Everything SQL runs through this context, so the pipeline is the same whichever engine
//! executes it. Object stores are built from the standard environment (`AWS_*`,
//! `GOOGLE_*`, `AZURE_*`); credentials are never put in URLs, logs or errors.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::execution::context::SessionContext;
use datafusion::prelude::SessionConfig;
use std::time::Duration;

use object_store::{BackoffConfig, ObjectStore, RetryConfig};
use url::Url;

use crate::job::{Job, StorageSection};

#[derive(Debug, thiserror::Error)]
#[error("{url}: cannot set up object store: {message}")]
pub struct StoreError {
    pub url: String,
    pub message: String,
}

/// Builds the embedded DataFusion session for `job` and registers an object store for every
/// bucket or container its sources and output root use.
pub fn local_context(job: &Job) -> Result<SessionContext, StoreError> {
    let mut config = SessionConfig::new()
        .with_information_schema(false)
        .with_default_catalog_and_schema("segvalue", "public");
    if let Some(n) = job.engine.target_partitions {
        config = config.with_target_partitions(n);
    }
    if let Some(n) = job.engine.batch_size {
        config = config.with_batch_size(n);
    }
    let ctx = SessionContext::new_with_config(config);
    let urls = job.sources.iter().map(|s| &s.url).chain(std::iter::once(&job.output.root));
    register_stores(&ctx, urls, &job.storage)?;
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
        message: crate::error::one_line(&e),
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
