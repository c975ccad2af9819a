//! Publishing: Hive-partitioned Parquet tables, `_SUCCESS` markers and the run manifest.
//!
//! Plan, then act:
//! 1. [`Publisher::stage`] writes each table to `<root>/_staging/<run_id>/<table>/`. Nothing a
//!    reader looks at changes while tables are being computed, so a run that fails before
//!    [`Publisher::commit`] publishes nothing.
//! 2. [`Publisher::lock_run_date`] waits until no other run of the date is committing (see
//!    [`lock`]); the run holds the lock from its first table to its manifest.
//! 3. [`Publisher::commit`] moves each table's one data file onto
//!    `<root>/<table>/run_date=D/part-00000.parquet` (atomic replace: rename locally, object
//!    copy on S3) between removing the old `_SUCCESS` and writing the new one, so a marker
//!    always names the run whose data sits beside it.
//! 4. [`Publisher::write_manifest`] writes `<root>/_manifests/run_date=D/manifest.json` last.
//!
//! Files are written through DataFusion and `object_store`, so the same code serves local
//! paths, S3, GCS and Azure. The README ("How publishing stays atomic") gives the reader's view.
//!
//! With `[output] format = "delta"` ([`TableFormat::Delta`], [`delta`]) step 3 is a Delta
//! commit per table instead (a replace-where on the run date, by delta-rs), with no markers;
//! steps 1, 2 and 4 are the same.

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::{LexicographicalComparator, SortColumn, SortOptions};
use datafusion::arrow::datatypes::{DataType, TimeUnit, UInt64Type};
use datafusion::common::config::TableParquetOptions;
use datafusion::dataframe::{DataFrame, DataFrameWriteOptions};
use datafusion::execution::context::SessionContext;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::MemTable;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::logical_expr::{Expr, SortExpr, cast, ident};
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use object_store::path::Path as ObjectPath;
use serde::Serialize;
use url::Url;

use crate::text::one_line;
use crate::location::redact;
use crate::privacy::Privacy;

pub mod delta;
mod lock;
pub use lock::CommitLock;

/// How tables are published (`[output] format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TableFormat {
    /// Hive-partitioned Parquet: `<table>/run_date=D/part-00000.parquet` and `_SUCCESS`.
    #[default]
    Parquet,
    /// A Delta Lake table per published table, partitioned by `run_date` ([`delta`]).
    Delta,
}

impl TableFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            TableFormat::Parquet => "parquet",
            TableFormat::Delta => "delta",
        }
    }
}

/// The result stream of a plan executed elsewhere (a Ballista cluster), read once.
struct RemoteStream {
    schema: SchemaRef,
    stream: std::sync::Mutex<Option<SendableRecordBatchStream>>,
}

impl std::fmt::Debug for RemoteStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteStream").field("schema", &self.schema).finish_non_exhaustive()
    }
}

impl PartitionStream for RemoteStream {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let taken = self.stream.lock().map(|mut s| s.take()).unwrap_or(None);
        taken.unwrap_or_else(|| {
            let again = datafusion::error::DataFusionError::Internal("a remote result stream can be read once".into());
            Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), futures::stream::once(async { Err(again) })))
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("table '{table}': {message}")]
    Write { table: String, message: String },
    #[error("{location}: {message}")]
    Store { location: String, message: String },
}

/// The file name of every published table's data (one file per table and run date).
pub const DATA_FILE: &str = "part-00000.parquet";
pub const SUCCESS: &str = "_SUCCESS";

/// Ends the process here when the crash tests ask (`SEGVALUE_FAILPOINTS=publish-step=…`, see
/// `cli::failpoints`): called after each object a commit and the files after it write, move
/// or delete, so a test can crash at every step in turn, even where a step lasts microseconds
/// and a timed kill would not land. `abort` ends the process as SIGKILL does (no destructor,
/// no flush). fail-rs fail points, as TiKV tests its recovery; off unless configured.
fn crash_point() {
    fail::fail_point!("publish-step", |_| std::process::abort());
}

/// What was published for one table; recorded in the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub table: String,
    pub rows: u64,
    pub location: String,
    /// The Delta table's version after this run's commit (`format = "delta"` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta_version: Option<u64>,
}

pub struct Publisher {
    ctx: SessionContext,
    store: Arc<dyn ObjectStore>,
    root: Url,
    /// `root`'s path inside its object store.
    prefix: ObjectPath,
    run_date: NaiveDate,
    run_id: String,
    privacy: Privacy,
    /// Frames to stage come from another session (a Ballista cluster): collect them here
    /// before writing.
    remote_input: bool,
    format: TableFormat,
    /// `[output] vacuum_days`: Delta files unreferenced for longer are deleted after a commit.
    vacuum_days: Option<u32>,
    staged: Vec<TableReport>,
}

impl Publisher {
    pub fn new(
        ctx: &SessionContext,
        root: &Url,
        run_date: NaiveDate,
        run_id: &str,
        privacy: Privacy,
    ) -> Result<Publisher, PublishError> {
        let store_err = |e: &dyn std::fmt::Display| PublishError::Store {
            location: redact(root.as_str()),
            message: one_line(e),
        };
        let base = ObjectStoreUrl::parse(&root[..url::Position::BeforePath]).map_err(|e| store_err(&e))?;
        let store = ctx.runtime_env().object_store(&base).map_err(|e| store_err(&e))?;
        let prefix = ObjectPath::from_url_path(root.path()).map_err(|e| store_err(&e))?;
        Ok(Publisher {
            ctx: ctx.clone(),
            store,
            root: root.clone(),
            prefix,
            run_date,
            run_id: run_id.to_string(),
            privacy,
            remote_input: false,
            format: TableFormat::Parquet,
            vacuum_days: None,
            staged: Vec::new(),
        })
    }

    /// Publishes in `format`; with Delta, vacuums files older than `vacuum_days` after each
    /// commit when set.
    pub fn with_format(mut self, format: TableFormat, vacuum_days: Option<u32>) -> Publisher {
        self.format = format;
        self.vacuum_days = vacuum_days;
        self
    }

    /// Frames passed to [`Publisher::stage`] belong to a distributed session: their results
    /// are streamed to this process (a batch at a time) and written by its own (local)
    /// session, so writing, pseudonyms and sorting never depend on the cluster's file system
    /// or secrets.
    pub fn with_remote_input(mut self, remote: bool) -> Publisher {
        self.remote_input = remote;
        self
    }

    fn child(&self, parts: &[&str]) -> ObjectPath {
        parts.iter().fold(self.prefix.clone(), |p, part| p.join(*part))
    }

    fn url_of(&self, path: &ObjectPath) -> String {
        format!("{}{}", &self.root[..url::Position::BeforePath], if path.as_ref().is_empty() { "/".to_string() } else { format!("/{path}") })
    }

    /// `<root>/<top>/run_date=D`: a table's partition, or the date's manifest, report or model.
    fn dated(&self, top: &str, date: NaiveDate) -> ObjectPath {
        self.child(&[top, &format!("run_date={date}")])
    }

    fn partition_dir(&self, table: &str) -> ObjectPath {
        self.dated(table, self.run_date)
    }

    /// `<root>/_staging/<run_id>/<table>/<file>`: a table's data or marker before the commit.
    fn staging_file(&self, table: &str, file: &str) -> ObjectPath {
        self.child(&["_staging", &self.run_id, table, file])
    }

    /// Writes `df` (sorted by `sort_by`, with BI-friendly types) to the staging area.
    pub async fn stage(&mut self, table: &str, df: DataFrame, sort_by: &[String]) -> Result<u64, PublishError> {
        self.stage_with(table, df, sort_by, true).await
    }

    /// [`Publisher::stage`] for a frame computed from tables as published (see
    /// [`Publisher::read_staged_as_published`]): its ids are pseudonyms already.
    pub async fn stage_from_published(&mut self, table: &str, df: DataFrame, sort_by: &[String]) -> Result<u64, PublishError> {
        self.stage_with(table, df, sort_by, false).await
    }

    async fn stage_with(&mut self, table: &str, df: DataFrame, sort_by: &[String], privacy: bool) -> Result<u64, PublishError> {
        let werr = |e: &dyn std::fmt::Display| PublishError::Write {
            table: table.to_string(),
            message: one_line(e),
        };
        let df = if self.remote_input { self.stream_here(df).await.map_err(|e| werr(&e))? } else { df };
        let df = if privacy { self.privacy.apply(df) } else { Ok(df) };
        let df = df.and_then(bi_types).map_err(|e| werr(&e))?;
        let sort: Vec<_> = sort_by
            .iter()
            .filter(|c| df.schema().has_column_with_unqualified_name(c))
            .map(|c| ident(c.as_str()).sort(true, true))
            .collect();
        let target = self.url_of(&self.staging_file(table, DATA_FILE));
        let mut opts = TableParquetOptions::default();
        opts.global.compression = Some("zstd(1)".into());
        opts.global.statistics_enabled = Some("page".into());
        // Row groups are the unit readers split a file by (DataFusion, DuckDB, Spark): a table
        // of 845k customers in one row group is read by one core. 128 Ki rows is DuckDB's own
        // size give or take, and the writer holds less in memory.
        opts.global.max_row_group_size = PUBLISHED_ROW_GROUP_ROWS;
        opts.global.created_by = format!("segvalue {}", env!("CARGO_PKG_VERSION"));
        // Float columns and customer ids are mostly distinct values: a dictionary only costs
        // hashing every value before the writer falls back to plain pages (interning the ids
        // was 2 % of the CLV job's CPU time). zstd level 1: 40 % less write time than level 3
        // for 3 % larger files (customer_clv, 845k rows).
        let ids = self.privacy.id_columns();
        for f in df.schema().fields() {
            if matches!(f.data_type(), DataType::Float64 | DataType::Float32) || ids.contains(f.name()) {
                let col = datafusion::common::config::ParquetColumnOptions { dictionary_enabled: Some(false), ..Default::default() };
                opts.column_specific_options.insert(f.name().clone(), col);
            }
        }
        let write = DataFrameWriteOptions::new().with_single_file_output(true).with_sort_by(sort);
        let out = df.write_parquet(&target, write, Some(opts)).await.map_err(|e| werr(&e))?;
        let rows = count_rows(&out);
        let location = match self.format {
            TableFormat::Parquet => self.partition_dir(table),
            TableFormat::Delta => self.child(&[table]),
        };
        self.staged.push(TableReport { table: table.to_string(), rows, location: redact(&self.url_of(&location)), delta_version: None });
        Ok(rows)
    }

    /// A frame of a distributed session as a one-pass table of this process's session: the
    /// cluster computes it and this process reads its result stream batch by batch while
    /// writing, so the driver never holds a whole table (the writer's sort spills locally).
    async fn stream_here(&self, df: DataFrame) -> datafusion::error::Result<DataFrame> {
        let schema = Arc::new(df.schema().as_arrow().clone());
        let stream = df.execute_stream().await?;
        let partition = RemoteStream { schema: schema.clone(), stream: std::sync::Mutex::new(Some(stream)) };
        let table = datafusion::catalog::streaming::StreamingTable::try_new(schema, vec![Arc::new(partition)])?;
        self.ctx.read_table(Arc::new(table))
    }

    /// Stages a batch computed on the driver (model output). A batch already in `sort_by` order
    /// (model outputs follow the id order they were loaded in) is declared sorted, so the
    /// writer checks the order once instead of sorting again.
    pub async fn stage_batch(&mut self, table: &str, batch: RecordBatch, sort_by: &[String]) -> Result<u64, PublishError> {
        let werr = |e: &dyn std::fmt::Display| PublishError::Write {
            table: table.to_string(),
            message: one_line(e),
        };
        let batch = bi_types_batch(batch).map_err(|e| werr(&e))?;
        let order = sorted_by(&batch, sort_by).map_err(|e| werr(&e))?;
        let df = MemTable::try_new(batch.schema(), vec![vec![batch]])
            .map(|t| if order.is_empty() { t } else { t.with_sort_order(vec![order]) })
            .and_then(|t| self.ctx.read_table(Arc::new(t)))
            .map_err(|e| werr(&e))?;
        self.stage(table, df, sort_by).await
    }

    /// Moves every staged table into its partition and writes `_SUCCESS` after its data.
    ///
    /// A partition is one data file, so replacing it is a single atomic step: a POSIX rename
    /// over the old file locally, an object copy on S3 (a reader gets the old object or the
    /// new one, never a mixture). The old partition is never deleted first, so it stays
    /// readable until the instant it is replaced.
    ///
    /// Each table's old `_SUCCESS` goes first: a run killed between the move and the new marker
    /// leaves a partition without a marker (which `segvalue runs` reports), never another
    /// run's marker beside this run's data.
    pub async fn commit(&self, lock: &mut CommitLock) -> Result<Vec<TableReport>, PublishError> {
        if self.format == TableFormat::Delta {
            return self.commit_delta(lock).await;
        }
        for t in &self.staged {
            lock.renew().await?;
            let dir = self.partition_dir(&t.table);
            let data = dir.clone().join(DATA_FILE);
            let success = dir.clone().join(SUCCESS);
            self.delete_if_exists(&success).await?;
            crash_point();
            self.store
                .rename(&self.staging_file(&t.table, DATA_FILE), &data)
                .await
                .map_err(|e| self.store_err(&data, &e))?;
            crash_point();
            // Files of another layout (e.g. written by hand) would be read beside ours.
            let strays: Vec<ObjectPath> = self
                .store
                .list(Some(&dir))
                .map_ok(|m| m.location)
                .try_filter(|p| futures::future::ready(*p != data && *p != success))
                .try_collect()
                .await
                .map_err(|e| self.store_err(&dir, &e))?;
            for p in strays {
                self.delete_if_exists(&p).await?;
                crash_point();
            }
            // Written beside the staged data and moved in: a local put goes through a temporary
            // file next to its target, which a kill would leave in the partition.
            let marker = format!("run_id={}\nrows={}\n", self.run_id, t.rows);
            let staged_marker = self.staging_file(&t.table, SUCCESS);
            self.store
                .put(&staged_marker, marker.into_bytes().into())
                .await
                .map_err(|e| self.store_err(&staged_marker, &e))?;
            crash_point();
            self.store
                .rename(&staged_marker, &success)
                .await
                .map_err(|e| self.store_err(&success, &e))?;
            crash_point();
        }
        self.remove_staging(&self.child(&["_staging", &self.run_id])).await;
        Ok(self.staged.clone())
    }

    /// [`Publisher::commit`] for Delta tables: one delta-rs write per table, replacing the run
    /// date's partition with the staged file's rows in one commit (see [`delta`]), then the
    /// vacuum when the job asks for one. A table whose commit fails leaves its log as it was
    /// (delta-rs writes the log entry last, put-if-absent); tables committed before it stay
    /// committed, as with Parquet, and the manifest is not written.
    async fn commit_delta(&self, lock: &mut CommitLock) -> Result<Vec<TableReport>, PublishError> {
        let mut committed = Vec::with_capacity(self.staged.len());
        for t in &self.staged {
            lock.renew().await?;
            let werr = |e: &dyn std::fmt::Display| PublishError::Write { table: t.table.clone(), message: format!("Delta commit: {}", one_line(e)) };
            let url = self.table_url(&t.table).map_err(|e| werr(&e))?;
            let staged = self.read_staged_file(&t.table).await?;
            let table = delta::replace_partition(&self.ctx, self.store.clone(), &url, staged, self.run_date, &self.run_id).await.map_err(|e| werr(&e))?;
            let version = delta::version(&table).map_err(|e| werr(&e))?;
            crash_point();
            tracing::info!(table = %t.table, version, "Delta table committed");
            if let Some(days) = self.vacuum_days {
                // The commit stands whatever the vacuum does: a failure is logged, and the next
                // run's vacuum tries again.
                match delta::vacuum(table, days).await {
                    Ok(deleted) => tracing::info!(table = %t.table, deleted, days, "Delta table vacuumed"),
                    Err(e) => tracing::warn!(table = %t.table, error = %one_line(&e), "Delta vacuum failed"),
                }
            }
            committed.push(TableReport { delta_version: Some(version), ..t.clone() });
        }
        self.remove_staging(&self.child(&["_staging", &self.run_id])).await;
        Ok(committed)
    }

    /// `<root>/<table>` as a URL: the Delta table's location.
    fn table_url(&self, table: &str) -> Result<Url, url::ParseError> {
        Url::parse(&self.url_of(&self.child(&[table])))
    }

    /// Whether `<root>/<table>` holds a Delta table (a `_delta_log` directory).
    async fn is_delta(&self, table: &str) -> Result<bool, PublishError> {
        Ok(self.subdirectories(&self.child(&[table])).await?.iter().any(|d| d == delta::LOG_DIR))
    }

    /// The names of `dir`'s subdirectories (none when it does not exist).
    async fn subdirectories(&self, dir: &ObjectPath) -> Result<Vec<String>, PublishError> {
        match self.store.list_with_delimiter(Some(dir)).await {
            Ok(l) => Ok(l.common_prefixes.iter().filter_map(|p| p.filename().map(str::to_string)).collect()),
            Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(self.store_err(dir, &e)),
        }
    }

    /// Refuses to publish into a root whose tables are of the other format: a Delta table's
    /// directory read as Hive partitions, or Parquet partitions beside a Delta log, would show
    /// readers rows of several runs. Part of [`Publisher::probe`], so it fails before anything
    /// is computed.
    async fn check_layouts(&self) -> Result<(), PublishError> {
        for table in self.subdirectories(&self.prefix).await?.into_iter().filter(|t| !t.starts_with('_')) {
            let dir = self.child(&[&table]);
            let children = self.subdirectories(&dir).await?;
            let delta = children.iter().any(|d| d == delta::LOG_DIR);
            let partitions = children.iter().any(|d| d.starts_with("run_date="));
            let other = match self.format {
                TableFormat::Parquet if delta => "a Delta table",
                TableFormat::Delta if partitions && !delta => "Parquet partitions",
                _ => continue,
            };
            return Err(PublishError::Write {
                table,
                message: format!(
                    "{} holds {other}, not {} output; publish to another output root or move the table away",
                    redact(&self.url_of(&dir)),
                    self.format.as_str()
                ),
            });
        }
        Ok(())
    }

    /// `<root>/_staging/<run_id>/_reserved`: see [`Publisher::reserve_commit_space`].
    fn reserved_file(&self) -> ObjectPath {
        self.child(&["_staging", &self.run_id, "_reserved"])
    }

    /// On a local root, sets aside the disk space the commit and what follows it write (each
    /// table's marker and lock renewal, then the files of `after_commit`'s sizes: model, report,
    /// manifest) as a file in this run's staging area, until
    /// [`Publisher::release_commit_space`] frees it as the commit starts. A disk that is full
    /// fails the run here, before any table moves, instead of between two tables or before the
    /// manifest. Object stores do not fill up: nothing is written there.
    pub async fn reserve_commit_space(&self, after_commit: &[usize]) -> Result<(), PublishError> {
        if self.root.scheme() != "file" {
            return Ok(());
        }
        // File systems allocate whole blocks. Each table adds a marker (its lock renewal and old
        // marker replace files of the same size); a local put writes a temporary copy before
        // it renames, so a file may briefly take its size twice.
        const BLOCK: usize = 4096;
        let blocks = |n: usize| n.div_ceil(BLOCK).max(1) * BLOCK;
        let bytes = (self.staged.len() + 8) * BLOCK + after_commit.iter().map(|&n| 2 * blocks(n)).sum::<usize>();
        let path = self.reserved_file();
        self.store.put(&path, vec![0u8; bytes].into()).await.map_err(|e| PublishError::Store {
            location: redact(self.root.as_str()),
            message: format!("no room to commit ({} KiB for the markers, model, report and manifest): {}", bytes / 1024, one_line(&e)),
        })?;
        Ok(())
    }

    /// Frees the space [`Publisher::reserve_commit_space`] set aside.
    pub async fn release_commit_space(&self) {
        if self.root.scheme() == "file" {
            let _ = self.store.delete(&self.reserved_file()).await;
        }
    }

    /// Waits until no other run of this date is committing, then holds the date for this
    /// run's commit, model, report and manifest (release it after the manifest).
    pub async fn lock_run_date(&self) -> Result<CommitLock, PublishError> {
        let dir = self.dated("_manifests", self.run_date).join("_commit");
        CommitLock::acquire(self.store.clone(), dir, &self.run_id, |p| self.url_of(p)).await
    }

    /// Puts one small object under this run's staging area and deletes it: a root that cannot
    /// take the run's writes (no such bucket, access denied, a read-only directory) fails
    /// here, before anything is computed.
    pub async fn probe(&self) -> Result<(), PublishError> {
        // A local root the probe creates goes again: a run that fails later leaves no trace.
        let new_local_root = self.root.to_file_path().ok().filter(|p| !p.exists());
        let dir = self.child(&["_staging", &self.run_id]);
        let path = dir.clone().join("_preflight");
        // On a local root a run removes `_staging` once it is empty (`remove_staging`); two runs
        // starting together each probe while the other may be removing it, and a put creating
        // `_staging/<run>` can find `_staging` gone in between. That race fails once; a root
        // that cannot take writes fails every time.
        let mut attempts = 1;
        while let Err(e) = self.store.put(&path, b"segvalue preflight".to_vec().into()).await {
            if attempts == 3 || self.root.scheme() != "file" {
                return Err(self.store_err(&self.prefix, &e));
            }
            attempts += 1;
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        self.store.delete(&path).await.map_err(|e| self.store_err(&self.prefix, &e))?;
        self.remove_staging(&dir).await;
        if let Some(root) = new_local_root {
            let _ = std::fs::remove_dir(root);
        }
        // After the put: a root that cannot take writes is named for that first.
        self.check_layouts().await?;
        Ok(())
    }

    /// Removes this run's staging objects, when the run is abandoned before commit.
    pub async fn abandon(&self) {
        self.remove_staging(&self.child(&["_staging", &self.run_id])).await;
    }

    /// Removes staging left by runs that died (kill -9, lost machine) more than `max_age`
    /// ago. Younger leftovers may belong to a run still going, so they are left alone; no
    /// reader looks under `_staging` (Hive readers skip `_`-prefixed directories).
    pub async fn remove_stale_staging(&self, max_age: chrono::Duration) {
        let staging = self.child(&["_staging"]);
        let cutoff = chrono::Utc::now() - max_age;
        let Ok(listing) = self.store.list_with_delimiter(Some(&staging)).await else { return };
        for run_dir in listing.common_prefixes {
            let objects: Vec<object_store::ObjectMeta> = match self.store.list(Some(&run_dir)).try_collect().await {
                Ok(v) => v,
                Err(_) => continue,
            };
            if objects.iter().all(|m| m.last_modified < cutoff) {
                tracing::info!(staging = %self.url_of(&run_dir), "removing stale staging");
                self.remove_staging(&run_dir).await;
            }
        }
    }

    async fn remove_staging(&self, dir: &ObjectPath) {
        let objects: Vec<ObjectPath> = match self.store.list(Some(dir)).map_ok(|m| m.location).try_collect().await {
            Ok(v) => v,
            Err(_) => return,
        };
        for p in objects {
            let _ = self.store.delete(&p).await;
        }
        // Local stores leave empty directories behind; `_staging` itself goes once empty
        // (remove_dir fails, harmlessly, while another run is staging).
        if self.root.scheme() == "file" {
            let path = std::path::Path::new("/").join(dir.as_ref());
            let _ = std::fs::remove_dir_all(&path);
            if let Some(parent) = path.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }

    pub fn root(&self) -> &Url {
        &self.root
    }

    pub fn privacy(&self) -> &Privacy {
        &self.privacy
    }

    /// A table staged by this run, read back from its file when it holds the values as
    /// computed (no pseudonyms or dropped columns): a later stage reads it instead of
    /// computing it again.
    ///
    /// `None` when it is not staged or not as computed; a staged file that cannot be read is
    /// an error, not a silent second computation.
    pub async fn read_staged(&self, table: &str) -> Result<Option<DataFrame>, PublishError> {
        if !self.privacy.is_identity() {
            return Ok(None);
        }
        self.read_staged_as_published(table).await
    }

    /// A table staged by this run as it will be published (ids pseudonymised where the job
    /// says so): for counts and for joins between published tables. `None` when not staged.
    pub async fn read_staged_as_published(&self, table: &str) -> Result<Option<DataFrame>, PublishError> {
        if !self.staged.iter().any(|t| t.table == table) {
            return Ok(None);
        }
        self.read_staged_file(table).await.map(Some)
    }

    async fn read_staged_file(&self, table: &str) -> Result<DataFrame, PublishError> {
        let path = self.staging_file(table, DATA_FILE);
        let options = datafusion::prelude::ParquetReadOptions::default();
        self.ctx.read_parquet(self.url_of(&path), options).await.map_err(|e| self.store_err(&path, &e))
    }

    /// Tables staged so far.
    pub fn staged(&self) -> &[TableReport] {
        &self.staged
    }

    /// Writes `<root>/_reports/run_date=D/report.html` in one put (atomic on every store).
    pub async fn write_report(&self, html: &str) -> Result<String, PublishError> {
        let path = self.dated("_reports", self.run_date).join("report.html");
        self.store.put(&path, html.as_bytes().to_vec().into()).await.map_err(|e| self.store_err(&path, &e))?;
        crash_point();
        Ok(redact(&self.url_of(&path)))
    }

    fn model_path(&self, date: NaiveDate) -> ObjectPath {
        self.dated(crate::models::DIR, date).join(crate::models::FILE)
    }

    /// Dates with a saved model, ascending.
    pub async fn model_dates(&self) -> Result<Vec<NaiveDate>, PublishError> {
        let dir = self.child(&[crate::models::DIR]);
        let listing = self.store.list_with_delimiter(Some(&dir)).await.map_err(|e| self.store_err(&dir, &e))?;
        let mut dates: Vec<NaiveDate> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename()?.strip_prefix("run_date=").and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()))
            .collect();
        dates.sort();
        Ok(dates)
    }

    /// The model saved by the run of `date`, if there is one.
    pub async fn read_model(&self, date: NaiveDate) -> Result<Option<crate::models::SavedModel>, crate::models::ModelError> {
        let path = self.model_path(date);
        let unreadable = |message: String| crate::models::ModelError::Unreadable {
            location: redact(&self.url_of(&path)),
            message,
        };
        let bytes = match self.store.get(&path).await {
            Ok(r) => r.bytes().await.map_err(|e| unreadable(one_line(&e)))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(unreadable(one_line(&e))),
        };
        let model: crate::models::SavedModel = serde_json::from_slice(&bytes).map_err(|e| unreadable(one_line(&e)))?;
        if model.format != crate::models::FORMAT {
            return Err(unreadable(format!("format '{}', expected '{}'", model.format, crate::models::FORMAT)));
        }
        Ok(Some(model))
    }

    /// Writes `<root>/_models/run_date=D/model.json` in one put (atomic on every store).
    pub async fn write_model(&self, model: &crate::models::SavedModel) -> Result<String, PublishError> {
        let path = self.model_path(self.run_date);
        let json = serde_json::to_vec_pretty(model).map_err(|e| self.store_err(&path, &e))?;
        self.store.put(&path, json.into()).await.map_err(|e| self.store_err(&path, &e))?;
        crash_point();
        Ok(redact(&self.url_of(&path)))
    }

    /// Reads a table's published partition of `date`.
    pub async fn read_published(&self, table: &str, date: NaiveDate) -> Result<Vec<RecordBatch>, PublishError> {
        let df = self.published_frame(table, date).await?;
        df.collect().await.map_err(|e| Self::read_err(table, date, &e))
    }

    /// A published partition as a plan, for queries that should not collect it: of the Delta
    /// table when `<root>/<table>` is one (whatever this job's format), else the Parquet file.
    pub async fn published_frame(&self, table: &str, date: NaiveDate) -> Result<DataFrame, PublishError> {
        if self.is_delta(table).await? {
            let url = self.table_url(table).map_err(|e| Self::read_err(table, date, &e))?;
            return delta::read_partition(&self.ctx, self.store.clone(), &url, date).await.map_err(|e| Self::read_err(table, date, &e));
        }
        let file = self.dated(table, date).join(DATA_FILE);
        let options = datafusion::prelude::ParquetReadOptions::default();
        self.ctx.read_parquet(self.url_of(&file), options).await.map_err(|e| Self::read_err(table, date, &e))
    }

    fn read_err(table: &str, date: NaiveDate, e: &dyn std::fmt::Display) -> PublishError {
        PublishError::Write { table: table.to_string(), message: format!("reading run {date}: {}", one_line(e)) }
    }

    pub async fn write_manifest<T: Serialize>(&self, manifest: &T) -> Result<String, PublishError> {
        let path = self.dated("_manifests", self.run_date).join("manifest.json");
        let json = serde_json::to_vec_pretty(manifest).map_err(|e| self.store_err(&path, &e))?;
        self.store.put(&path, json.into()).await.map_err(|e| self.store_err(&path, &e))?;
        crash_point();
        Ok(redact(&self.url_of(&path)))
    }

    async fn delete_if_exists(&self, p: &ObjectPath) -> Result<(), PublishError> {
        match self.store.delete(p).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.store_err(p, &e)),
        }
    }

    fn store_err(&self, p: &ObjectPath, e: &dyn std::fmt::Display) -> PublishError {
        PublishError::Store {
            location: redact(&self.url_of(p)),
            message: one_line(e),
        }
    }
}

fn count_rows(batches: &[RecordBatch]) -> u64 {
    batches
        .iter()
        .filter_map(|b| b.column_by_name("count"))
        .filter_map(|c| c.as_primitive_opt::<UInt64Type>())
        .flat_map(|c| c.values().iter().copied())
        .sum()
}

/// The ascending, nulls-first order on `sort_by` (as [`Publisher::stage`] sorts) when `batch`
/// is already in it; empty otherwise. One comparison per row.
fn sorted_by(batch: &RecordBatch, sort_by: &[String]) -> datafusion::error::Result<Vec<SortExpr>> {
    let options = SortOptions { descending: false, nulls_first: true };
    let columns: Vec<SortColumn> = sort_by
        .iter()
        .filter_map(|c| batch.column_by_name(c))
        .map(|values| SortColumn { values: values.clone(), options: Some(options) })
        .collect();
    if columns.len() != sort_by.len() || columns.is_empty() {
        return Ok(Vec::new());
    }
    let cmp = LexicographicalComparator::try_new(&columns)?;
    let sorted = (1..batch.num_rows()).all(|i| cmp.compare(i - 1, i) != std::cmp::Ordering::Greater);
    Ok(if sorted { sort_by.iter().map(|c| ident(c.as_str()).sort(true, true)).collect() } else { Vec::new() })
}

/// Rows per row group of a published file.
const PUBLISHED_ROW_GROUP_ROWS: usize = 128 * 1024;

/// Casts types some BI readers reject: timestamps become UTC microseconds, view and large
/// string types become plain strings, `Date64` becomes `Date32`.
pub fn bi_types(df: DataFrame) -> datafusion::error::Result<DataFrame> {
    let fields = df.schema().fields().clone();
    if fields.iter().all(|f| bi_type(f.data_type()).is_none()) {
        return Ok(df);
    }
    let exprs: Vec<Expr> = fields
        .iter()
        .map(|f| match bi_type(f.data_type()) {
            Some(t) => cast(ident(f.name()), t).alias(f.name()),
            None => ident(f.name()),
        })
        .collect();
    df.select(exprs)
}

/// [`bi_types`] on a batch: a cast in the plan would hide the batch's row order from the
/// writer, a cast here keeps it visible.
fn bi_types_batch(batch: RecordBatch) -> datafusion::error::Result<RecordBatch> {
    let schema = batch.schema();
    if schema.fields().iter().all(|f| bi_type(f.data_type()).is_none()) {
        return Ok(batch);
    }
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (f, c) in schema.fields().iter().zip(batch.columns()) {
        match bi_type(f.data_type()) {
            Some(t) => {
                columns.push(datafusion::arrow::compute::cast(c, &t)?);
                fields.push(f.as_ref().clone().with_data_type(t));
            }
            None => {
                columns.push(c.clone());
                fields.push(f.as_ref().clone());
            }
        }
    }
    Ok(RecordBatch::try_new(Arc::new(datafusion::arrow::datatypes::Schema::new(fields)), columns)?)
}

/// The type BI tools read for `t`, when it differs from `t`.
fn bi_type(t: &DataType) -> Option<DataType> {
    match t {
        DataType::Timestamp(unit, tz) if *unit != TimeUnit::Microsecond || tz.is_none() => {
            Some(DataType::Timestamp(TimeUnit::Microsecond, Some(tz.clone().unwrap_or_else(|| "UTC".into()))))
        }
        DataType::Utf8View | DataType::LargeUtf8 => Some(DataType::Utf8),
        DataType::BinaryView | DataType::LargeBinary => Some(DataType::Binary),
        DataType::Date64 => Some(DataType::Date32),
        DataType::Dictionary(_, v) => Some(v.as_ref().clone()),
        _ => None,
    }
}
