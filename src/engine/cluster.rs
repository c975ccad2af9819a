//! Apache DataFusion Ballista: the client session, the `segvalue scheduler` and
//! `segvalue executor` processes, and the in-process standalone cluster.
//!
//! Everything here is Ballista 55's own scheduler and executor; segvalue only supplies its
//! session settings and an object-store registry that builds stores from each process's
//! environment (see [`super::stores`]), and the model functions of [`crate::functions`] in
//! every session and executor registry, so plans calling them run on the executors (their
//! parameters travel as literals). Pseudonyms are applied on the driver while publishing, so the
//! key never leaves it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ballista_core::config::BALLISTA_CLIENT_PULL;
use ballista_core::extension::{SessionConfigExt, SessionStateExt};
use ballista_core::serde::BallistaCodec;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::{ConfigProducer, RuntimeProducer};
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SessionContext;
use datafusion::prelude::SessionConfig;

use super::config::{EngineConfig, StorageSection};
use super::deadline::DeadlinePlanner;
use super::error::EngineError;
use super::local::session_config;
use super::mode::EngineMode;
use super::stores::{register_stores, runtime_env};
use crate::functions::{executor_registry, with_functions};

fn cluster_err(engine: &EngineMode, e: impl std::fmt::Display) -> EngineError {
    EngineError::Cluster {
        engine: engine.to_string(),
        message: crate::text::one_line(&e),
    }
}

/// A driver session whose queries are planned here and executed by the scheduler at `url`.
pub fn client_context(config: &EngineConfig, url: &str) -> Result<SessionContext, EngineError> {
    let engine = &config.settings.mode;
    let runtime = runtime_env(&config.storage).map_err(|e| cluster_err(engine, e))?;
    let state = SessionStateBuilder::new()
        .with_default_features()
        // Pull tracking: the scheduler answers the submission with the job id, so a query past
        // its deadline can be cancelled (push tracking learns the id from the job's first status
        // update, which a stuck job may never send).
        .with_config(session_config(&config.settings).upgrade_for_ballista().set_bool(BALLISTA_CLIENT_PULL, true))
        .with_runtime_env(runtime)
        .build()
        .upgrade_for_ballista(url.to_string())
        .map_err(|e| cluster_err(engine, e))?;
    let state = match config.settings.query_timeout_secs {
        0 => state,
        secs => {
            let planner = DeadlinePlanner {
                inner: Arc::clone(state.query_planner()),
                limit: Duration::from_secs(secs),
                scheduler_url: url.to_string(),
            };
            SessionStateBuilder::new_from_existing(state).with_query_planner(Arc::new(planner)).build()
        }
    };
    let ctx = SessionContext::new_with_state(state);
    crate::functions::register(&ctx);
    // The driver lists source files while planning; build its stores now so a bad bucket
    // fails here, with the job's retry settings.
    register_stores(&ctx, config.urls.iter(), &config.storage)?;
    Ok(ctx)
}

/// Waits until the scheduler at `url` reports a registered executor (its `/readyz`).
///
/// Without this, a query sent to a cluster with no executors would wait in the scheduler's
/// queue for ever.
pub async fn wait_for_executors(engine: &EngineMode, url: &str, max_wait: Duration) -> Result<(), EngineError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| cluster_err(engine, e))?;
    let started = Instant::now();
    let mut logged = false;
    loop {
        let last = match client.get(format!("{url}/readyz")).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => r.text().await.unwrap_or_default().trim().to_string(),
            Err(e) => format!("cannot reach the scheduler ({})", crate::text::one_line(&e)),
        };
        if started.elapsed() >= max_wait {
            return Err(cluster_err(
                engine,
                format!("{last} after waiting {} s (see [engine] executor_wait_secs)", max_wait.as_secs()),
            ));
        }
        if !logged {
            tracing::info!(engine = %engine, status = last, "waiting for a Ballista executor");
            logged = true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The scheduler's session for planning stages: Ballista's defaults plus segvalue's stores.
fn scheduler_session(storage: StorageSection) -> ballista_scheduler::scheduler_server::SessionBuilder {
    Arc::new(move |config: SessionConfig| {
        Ok(with_functions(SessionStateBuilder::new().with_default_features())
            .with_config(config)
            .with_runtime_env(runtime_env(&storage)?)
            .with_optimizer_rules(ballista_core::optimizer::ballista_default_optimizer_rules())
            .build())
    })
}

fn executor_runtime(storage: StorageSection) -> datafusion::error::Result<RuntimeProducer> {
    let runtime = runtime_env(&storage)?;
    Ok(Arc::new(move |_: &SessionConfig| Ok(runtime.clone())))
}

fn config_producer() -> ConfigProducer {
    Arc::new(SessionConfig::new_with_ballista)
}

/// `segvalue scheduler`: serves Ballista's scheduler on `bind` until the process is stopped.
/// An executor silent for `executor_timeout_secs` is dropped and its tasks run on the others.
pub async fn run_scheduler(bind: SocketAddr, external_host: Option<String>, executor_timeout_secs: u64) -> Result<(), EngineError> {
    let engine = EngineMode::Ballista {
        host: bind.ip().to_string(),
        port: bind.port(),
    };
    let mut config = SchedulerConfig {
        bind_host: bind.ip().to_string(),
        bind_port: bind.port(),
        ..Default::default()
    }
    .with_hostname(external_host.unwrap_or_else(|| bind.ip().to_string()))
    .with_override_config_producer(config_producer())
    .with_override_session_builder(scheduler_session(StorageSection::default()));
    config.executor_timeout_seconds = executor_timeout_secs;
    // Checked a few times per timeout, at most every 15 s (Ballista's default interval).
    config.expire_dead_executor_interval_seconds = (executor_timeout_secs / 3).clamp(1, 15);
    // A lost last executor fails running jobs after this grace instead of hanging them.
    config.no_executors_grace_period_seconds = config.executor_timeout_seconds;
    let cluster = BallistaCluster::new_from_config(&config).await.map_err(|e| cluster_err(&engine, e))?;
    tracing::info!(%bind, "Ballista scheduler listening");
    start_server(cluster, bind, Arc::new(config)).await.map_err(|e| cluster_err(&engine, e))
}

/// What `segvalue executor` needs to join a cluster.
#[derive(Debug, Clone)]
pub struct ExecutorArgs {
    pub scheduler_host: String,
    pub scheduler_port: u16,
    pub bind_host: String,
    pub external_host: Option<String>,
    /// Arrow Flight port (shuffle and results).
    pub port: u16,
    /// gRPC port (push-based scheduling).
    pub grpc_port: u16,
    /// Task slots; 0 = one per core.
    pub concurrent_tasks: usize,
    pub work_dir: Option<PathBuf>,
    /// Seconds between heartbeats to the scheduler.
    pub heartbeat_secs: u64,
}

/// `segvalue executor`: serves Ballista's executor until the process is stopped.
pub async fn run_executor(args: ExecutorArgs) -> Result<(), EngineError> {
    let engine = EngineMode::Ballista {
        host: args.scheduler_host.clone(),
        port: args.scheduler_port,
    };
    let storage = StorageSection::default();
    let config = ExecutorProcessConfig {
        bind_host: args.bind_host,
        external_host: args.external_host,
        port: args.port,
        grpc_port: args.grpc_port,
        scheduler_host: args.scheduler_host,
        scheduler_port: args.scheduler_port,
        // Keep retrying while the scheduler starts.
        scheduler_connect_timeout_seconds: 60,
        vcores: args.concurrent_tasks,
        work_dir: args.work_dir.map(|p| p.display().to_string()),
        executor_heartbeat_interval_seconds: args.heartbeat_secs,
        override_config_producer: Some(config_producer()),
        // The model functions (`crate::functions`) run here, in the plans the driver sends.
        override_function_registry: Some(Arc::new(executor_registry())),
        override_runtime_producer: Some(executor_runtime(storage).map_err(|e| cluster_err(&engine, e))?),
        ..Default::default()
    };
    tracing::info!(port = config.port, grpc_port = config.grpc_port, "Ballista executor starting");
    start_executor_process(Arc::new(config)).await.map_err(|e| cluster_err(&engine, e))
}

/// The in-process scheduler and executor of `ballista-standalone`, started once per process.
static STANDALONE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();

/// Starts (once) a scheduler and one executor in this process; returns the scheduler URL.
pub async fn standalone(storage: &StorageSection) -> Result<String, EngineError> {
    let engine = EngineMode::Standalone;
    let storage = *storage;
    STANDALONE
        .get_or_try_init(|| async move {
            let err = |e: &dyn std::fmt::Display| cluster_err(&engine, e);
            let addr = ballista_scheduler::standalone::new_standalone_scheduler_with_builder(
                scheduler_session(storage),
                config_producer(),
                BallistaCodec::default(),
            )
            .await
            .map_err(|e| err(&e))?;
            let url = format!("http://localhost:{}", addr.port());
            let scheduler = connect(&url, Duration::from_secs(30)).await.map_err(|e| err(&e))?;
            let state = with_functions(SessionStateBuilder::new().with_default_features())
                .with_runtime_env(runtime_env(&storage).map_err(|e| err(&e))?)
                .build();
            let slots = std::thread::available_parallelism().map_or(2, |n| n.get());
            ballista_executor::new_standalone_executor_from_builder(
                scheduler,
                slots,
                config_producer(),
                executor_runtime(storage).map_err(|e| err(&e))?,
                BallistaCodec::default(),
                (&state).into(),
            )
            .await
            .map_err(|e| err(&e))?;
            tracing::info!(scheduler = url, slots, "Ballista standalone cluster started");
            Ok(url)
        })
        .await
        .cloned()
}

async fn connect(url: &str, max_wait: Duration) -> Result<SchedulerGrpcClient<tonic::transport::Channel>, String> {
    let started = Instant::now();
    loop {
        match SchedulerGrpcClient::connect(url.to_string()).await {
            Ok(c) => return Ok(c),
            Err(e) if started.elapsed() >= max_wait => return Err(format!("cannot reach the in-process scheduler: {e}")),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_modes_parse_and_print() {
        for s in ["local", "ballista-standalone", "ballista://127.0.0.1:50050", "ballista://sched.example:7000"] {
            assert_eq!(EngineMode::parse(s).unwrap().to_string(), s);
        }
        for bad in ["", "ballista", "ballista://host", "ballista://:50050", "ballista://h:0", "ballista://h:x", "df://h:1"] {
            assert!(EngineMode::parse(bad).is_err(), "{bad}");
        }
    }
}
