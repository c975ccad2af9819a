//! `[output] format = "delta"`: each published table is a Delta Lake table at
//! `<root>/<table>/`, partitioned by `run_date`, written and committed by delta-rs.
//!
//! A run stages its tables as it does for Parquet (nothing a reader sees changes while they
//! are computed). Its commit then hands each staged file to delta-rs's write operation with a
//! replace-where on the run's date: one Delta commit per table removes the date's old files
//! and adds the new ones, and records the run id and date in the commit's metadata. Readers
//! of the log see the old partition or the new one, never a mixture, and other dates are left
//! alone. Commits are put-if-absent writes of the next log entry (the object store's
//! conditional put on S3), so two writers of one table both commit or one gets a conflict.

use std::sync::{Arc, Once};

use chrono::NaiveDate;
use datafusion::arrow::datatypes::Date32Type;
use datafusion::execution::context::SessionContext;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::{col, lit};
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::prelude::DataFrame;
use deltalake_core::delta_datafusion::planner::DeltaPlanner;
use deltalake_core::kernel::transaction::CommitProperties;
use deltalake_core::logstore::{LogStore, LogStoreFactory, StorageConfig, default_logstore, logstore_factories};
use deltalake_core::operations::write::SchemaMode;
use deltalake_core::protocol::SaveMode;
use deltalake_core::{DeltaTable, DeltaTableBuilder, DeltaTableError, ObjectStore};
use futures::TryStreamExt;
use url::Url;

/// The partition column every Delta table of a run has (the Parquet layout's directory name).
pub const PARTITION: &str = "run_date";
/// The directory that makes a table directory a Delta table.
pub const LOG_DIR: &str = "_delta_log";
/// Commit metadata keys: the run that wrote a commit and the date it replaced.
pub const RUN_ID_KEY: &str = "segvalue.run_id";
pub const RUN_DATE_KEY: &str = "segvalue.run_date";

/// delta-rs's log store for commits by put-if-absent, for the object stores segvalue writes
/// to. delta-rs itself registers it for local paths only; its S3 crate would bring a second
/// AWS SDK for a DynamoDB lock that S3's conditional writes (object_store's default) make
/// unnecessary.
#[derive(Debug, Default)]
struct ConditionalPutLogStore;

impl LogStoreFactory for ConditionalPutLogStore {
    fn with_options(
        &self,
        prefixed_store: Arc<dyn ObjectStore>,
        root_store: Arc<dyn ObjectStore>,
        location: &Url,
        options: &StorageConfig,
    ) -> deltalake_core::DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(prefixed_store, root_store, location, options))
    }
}

fn register_log_stores() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let factories = logstore_factories();
        for scheme in ["s3://", "s3a://", "gs://", "az://", "abfs://", "abfss://"] {
            let url = Url::parse(scheme).expect("a scheme is a URL");
            if !factories.contains_key(&url) {
                factories.insert(url, Arc::new(ConditionalPutLogStore));
            }
        }
    });
}

/// The Delta table at `url`, through `store` (the run's object store for that root, with its
/// credentials): loaded at its newest version, or not yet created.
pub async fn open(store: Arc<dyn ObjectStore>, url: &Url) -> Result<DeltaTable, DeltaTableError> {
    register_log_stores();
    // delta-rs wants a local table's directory to exist, even to create the table.
    if let Ok(dir) = url.to_file_path() {
        std::fs::create_dir_all(&dir).map_err(|e| DeltaTableError::Generic(format!("{}: {e}", dir.display())))?;
    }
    let mut table = DeltaTableBuilder::from_url(url.clone())?.with_storage_backend(store, url.clone()).build()?;
    match table.load().await {
        Ok(()) | Err(DeltaTableError::NotATable(_)) => Ok(table),
        Err(e) => Err(e),
    }
}

/// Replaces `run_date`'s partition of the Delta table at `url` with the rows of `staged` (a
/// staged table's frame), in one commit carrying `run_id`; creates the table on first use.
/// Returns the table at its version after the commit.
///
/// Columns the table does not have yet are added to its schema in the same commit (as
/// delta-rs's schema merge does); a column whose type changed is refused by delta-rs, naming
/// it, and nothing is committed.
pub async fn replace_partition(
    ctx: &SessionContext,
    store: Arc<dyn ObjectStore>,
    url: &Url,
    staged: DataFrame,
    run_date: NaiveDate,
    run_id: &str,
) -> Result<DeltaTable, DeltaTableError> {
    let table = open(store, url).await?;
    let date = date_literal(run_date);
    let input: DataFrame = staged.with_column(PARTITION, date.clone())?;
    // One partition in: one data file per commit, in the staged (sorted) row order.
    let config = ctx.copied_config().with_target_partitions(1).with_repartition_file_scans(false);
    // delta-rs plans its write with its own planner (its metric and writer nodes).
    let state = SessionStateBuilder::new_from_existing(ctx.state()).with_config(config).with_query_planner(DeltaPlanner::new()).build();
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("zstd level 1 exists")))
        .set_created_by(format!("segvalue {} (delta-rs)", env!("CARGO_PKG_VERSION")))
        .build();
    let metadata = [
        (RUN_ID_KEY.to_string(), serde_json::Value::from(run_id)),
        (RUN_DATE_KEY.to_string(), serde_json::Value::from(run_date.to_string())),
    ];
    table
        .write(Vec::new())
        .with_input_plan(input.into_unoptimized_plan())
        .with_session_state(Arc::new(state))
        .with_save_mode(SaveMode::Overwrite)
        .with_replace_where(col(PARTITION).eq(date))
        .with_partition_columns([PARTITION])
        .with_schema_mode(SchemaMode::Merge)
        .with_writer_properties(properties)
        .with_commit_properties(CommitProperties::default().with_metadata(metadata))
        .await
}

/// `table`'s version (after a commit there is one).
pub fn version(table: &DeltaTable) -> Result<u64, DeltaTableError> {
    table.version().map(|v| v as u64).ok_or_else(|| DeltaTableError::Generic("the write left no table version".into()))
}

/// A Delta table's rows of one run date, without the partition column, as the Parquet
/// layout's partition file reads.
pub async fn read_partition(ctx: &SessionContext, store: Arc<dyn ObjectStore>, url: &Url, run_date: NaiveDate) -> Result<DataFrame, DeltaTableError> {
    let table = open(store, url).await?;
    if table.version().is_none() {
        return Err(DeltaTableError::NotATable(url.to_string()));
    }
    let provider = table.table_provider().await?;
    let date = date_literal(run_date);
    let df = ctx.read_table(provider)?.filter(col(PARTITION).eq(date))?;
    Ok(df.drop_columns(&[PARTITION])?)
}

/// Removes files no version newer than `days` days refers to (delta-rs's vacuum, which keeps
/// every file the current version reads). Returns how many it deleted.
pub async fn vacuum(table: DeltaTable, days: u32) -> Result<usize, DeltaTableError> {
    let (_, metrics) = table
        .vacuum()
        .with_retention_period(chrono::Duration::days(i64::from(days)))
        // Delta's 7-day floor guards readers of old versions; the job's setting is the choice.
        .with_enforce_retention_duration(false)
        .await?;
    Ok(metrics.files_deleted.len())
}

/// One commit of a table's log that a segvalue run made: its version, run id and date.
#[derive(Debug, Clone, PartialEq)]
pub struct RunCommit {
    pub version: u64,
    pub run_id: String,
    pub run_date: String,
}

/// The table's commits made by segvalue runs, newest first, and the oldest version its log
/// still holds (older entries go once past the log retention); `None` when `url` holds no
/// Delta table.
pub async fn run_commits(store: Arc<dyn ObjectStore>, url: &Url) -> Result<Option<(Vec<RunCommit>, u64)>, DeltaTableError> {
    let table = open(store, url).await?;
    let Some(newest) = table.version() else { return Ok(None) };
    let infos: Vec<_> = table.history(None).try_collect().await?;
    // History lists the log's commit files newest first; they are consecutive versions.
    let newest = newest as u64;
    let oldest = newest + 1 - infos.len() as u64;
    let text = |info: &deltalake_core::kernel::CommitInfo, key: &str| info.info.get(key).and_then(|v| v.as_str()).map(str::to_string);
    let commits = infos
        .iter()
        .enumerate()
        .filter_map(|(i, info)| Some(RunCommit { version: newest - i as u64, run_id: text(info, RUN_ID_KEY)?, run_date: text(info, RUN_DATE_KEY)? }))
        .collect();
    Ok(Some((commits, oldest)))
}

/// `date` as a DATE literal (the partition column's type).
fn date_literal(date: NaiveDate) -> datafusion::logical_expr::Expr {
    lit(datafusion::scalar::ScalarValue::Date32(Some(Date32Type::from_naive_date(date))))
}
