//! Feature views: one `SELECT` per `<sql_dir>/<name>.sql`, registered as view `<name>`.
//!
//! 1. [`load_views`] reads and parses every file and records the tables it references.
//! 2. [`order_views`] sorts them so each view comes after what it reads (ties by name), and
//!    rejects unknown tables and cycles, naming the files involved.
//! 3. [`register_views`] substitutes parameters, plans each view in that order and registers
//!    it with the session, so later views and the pipeline stages can query it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use datafusion::arrow::array::{ArrayData, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::view::ViewTable;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNode;
use datafusion::datasource::{MemTable, TableType, source_as_provider};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::SessionContext;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_plan::{ExecutionPlan, execute_stream_partitioned};
use datafusion::sql::parser::{DFParserBuilder, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use futures::StreamExt;

use crate::engine::{TempFile, TempParquet, temp_table};
use crate::params::Params;
use crate::text::one_line;

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("{}: cannot read SQL directory: {source}", dir.display())]
    ReadDir { dir: PathBuf, source: std::io::Error },
    #[error("{}: cannot read view: {source}", file.display())]
    Read { file: PathBuf, source: std::io::Error },
    #[error("{}: no .sql files found", dir.display())]
    Empty { dir: PathBuf },
    #[error("{}: {message}", file.display())]
    BadName { file: PathBuf, message: String },
    #[error("{}: SQL syntax error: {message}", file.display())]
    Syntax { file: PathBuf, message: String },
    #[error("{}: a view file must hold exactly one query, found {found}", file.display())]
    NotOneStatement { file: PathBuf, found: usize },
    #[error("{}: only SELECT queries are allowed in view files, found {kind}", file.display())]
    NotAQuery { file: PathBuf, kind: String },
    #[error("{}: view '{view}' has the same name as a source", file.display())]
    ShadowsSource { file: PathBuf, view: String },
    #[error("{}: unknown table '{table}' (sources: {sources}; views: {views})", file.display())]
    UnknownTable {
        file: PathBuf,
        table: String,
        sources: String,
        views: String,
    },
    #[error("dependency cycle between views: {path}")]
    Cycle { path: String },
    #[error("{}: unknown parameter '{name}' (defined: {defined})", file.display())]
    UnknownParam { file: PathBuf, name: String, defined: String },
    #[error("{}: {}", file.display(), one_line(source))]
    Plan {
        file: PathBuf,
        source: datafusion::error::DataFusionError,
    },
    #[error("unknown view '{name}' (views: {views})")]
    UnknownView { name: String, views: String },
    /// A view the job file names under `key` does not exist.
    #[error("{}: {key}: unknown view '{name}' (views: {views})", job.display())]
    UnknownJobView { job: PathBuf, key: String, name: String, views: String },
    /// The job's `sql_dir` cannot be read or holds no views.
    #[error("{}: job.sql_dir: {source}", job.display())]
    SqlDir { job: PathBuf, source: Box<ViewError> },
}

/// A parsed view file.
#[derive(Debug, Clone)]
pub struct ViewFile {
    pub name: String,
    pub path: PathBuf,
    pub sql: String,
    statement: Statement,
    /// Tables the query reads (CTE names excluded), lower-cased as the planner sees them.
    pub references: BTreeSet<String>,
}

/// A view after planning: what `validate` prints and what later stages query.
#[derive(Debug, Clone)]
pub struct RegisteredView {
    pub name: String,
    pub path: PathBuf,
    pub schema: SchemaRef,
    /// Computed once on first read and held for the session, in memory or in temporary files
    /// ([`CachedView`]).
    pub cached: bool,
}

/// Reads and parses every `*.sql` file directly in `dir`, sorted by file name.
pub fn load_views(dir: &Path) -> Result<Vec<ViewFile>, ViewError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ViewError::ReadDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "sql") && p.is_file())
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(ViewError::Empty { dir: dir.to_path_buf() });
    }
    paths.iter().map(|p| parse_view(p)).collect()
}

fn parse_view(path: &Path) -> Result<ViewFile, ViewError> {
    let file = path.to_path_buf();
    let name = path.file_stem().unwrap_or_default().to_string_lossy().to_string();
    crate::names::check_name(&name).map_err(|message| ViewError::BadName {
        file: file.clone(),
        message: format!("view file name: {message}"),
    })?;
    let sql = std::fs::read_to_string(path).map_err(|source| ViewError::Read {
        file: file.clone(),
        source,
    })?;
    let mut statements = DFParserBuilder::new(sql.as_str())
        .with_dialect(&GenericDialect {})
        .build()
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| ViewError::Syntax {
            file: file.clone(),
            message: one_line(&e).trim_start_matches("SQL error: ").to_string(),
        })?;
    if statements.len() != 1 {
        return Err(ViewError::NotOneStatement {
            file,
            found: statements.len(),
        });
    }
    let statement = match statements.pop_front() {
        Some(DFStatement::Statement(s)) if matches!(*s, Statement::Query(_)) => *s,
        Some(other) => {
            return Err(ViewError::NotAQuery {
                file,
                kind: statement_kind(&other),
            });
        }
        None => unreachable!("length checked above"),
    };
    let (refs, _ctes) = datafusion::sql::resolve::resolve_table_references(
        &DFStatement::Statement(Box::new(statement.clone())),
        true,
    )
    .map_err(|e| ViewError::Syntax {
        file: file.clone(),
        message: one_line(&e),
    })?;
    let references = refs.iter().map(|r| r.to_string()).collect();
    Ok(ViewFile {
        name,
        path: file,
        sql,
        statement,
        references,
    })
}

/// The first keywords of a rejected statement, e.g. `CREATE TABLE` or `COPY`.
fn statement_kind(s: &DFStatement) -> String {
    let text = s.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    match words.as_slice() {
        [first, second] if ["CREATE", "DROP", "ALTER"].contains(&first.to_uppercase().as_str()) => {
            format!("{} {}", first.to_uppercase(), second.to_uppercase())
        }
        [first, ..] => first.to_uppercase(),
        [] => "an empty statement".into(),
    }
}

/// Orders views so each comes after the views it reads; ready views are taken by name, so
/// the order depends only on the SQL, never on how files happen to be listed.
///
/// Kahn's algorithm is written out here rather than taken from a graph crate because the
/// errors must name the files and the full cycle path.
pub fn order_views(views: Vec<ViewFile>, sources: &BTreeSet<String>) -> Result<Vec<ViewFile>, ViewError> {
    let by_name: BTreeMap<String, ViewFile> = views.into_iter().map(|v| (v.name.clone(), v)).collect();
    for v in by_name.values() {
        if sources.contains(&v.name) {
            return Err(ViewError::ShadowsSource {
                file: v.path.clone(),
                view: v.name.clone(),
            });
        }
        for t in &v.references {
            if !sources.contains(t) && !by_name.contains_key(t) {
                return Err(ViewError::UnknownTable {
                    file: v.path.clone(),
                    table: t.clone(),
                    sources: join(sources.iter()),
                    views: join(by_name.keys()),
                });
            }
        }
    }
    let view_deps = |v: &ViewFile| -> BTreeSet<String> {
        v.references.iter().filter(|t| by_name.contains_key(*t)).cloned().collect()
    };
    let mut pending: BTreeMap<&str, BTreeSet<String>> =
        by_name.values().map(|v| (v.name.as_str(), view_deps(v))).collect();
    let mut order = Vec::with_capacity(by_name.len());
    while !pending.is_empty() {
        let ready: Vec<&str> = pending
            .iter()
            .filter(|(_, deps)| deps.is_empty())
            .map(|(n, _)| *n)
            .collect();
        let Some(next) = ready.first().copied() else {
            return Err(ViewError::Cycle {
                path: cycle_path(&by_name, &pending),
            });
        };
        pending.remove(next);
        for deps in pending.values_mut() {
            deps.remove(next);
        }
        order.push(by_name[next].clone());
    }
    Ok(order)
}

/// Follows unresolved dependencies from the first stuck view until one repeats.
fn cycle_path(by_name: &BTreeMap<String, ViewFile>, pending: &BTreeMap<&str, BTreeSet<String>>) -> String {
    let file = |n: &str| by_name[n].path.file_name().unwrap_or_default().to_string_lossy().to_string();
    let mut seen: Vec<&str> = Vec::new();
    let mut cur: &str = pending.keys().next().copied().unwrap_or_default();
    while !seen.contains(&cur) {
        seen.push(cur);
        cur = pending[cur].iter().next().map(String::as_str).unwrap_or(cur);
    }
    let start = seen.iter().position(|n| *n == cur).unwrap_or(0);
    let mut names: Vec<String> = seen[start..].iter().map(|n| file(n)).collect();
    names.push(file(cur));
    let dir = by_name[cur].path.parent().map(|p| p.display().to_string()).unwrap_or_default();
    format!("{dir}/{}", names.join(" → "))
}

fn join<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = names.map(String::as_str).collect();
    if v.is_empty() { "none".into() } else { v.join(", ") }
}

/// Substitutes parameters, plans and registers each view in order.
///
/// Which views a session computes once ([`CachedView`]), and how much one may hold.
#[derive(Debug, Clone, Default)]
pub struct Caching {
    /// Planned reads per view name.
    pub reads: BTreeMap<String, usize>,
    /// At most this many bytes of rows per view in memory (a quarter of the pool: held rows
    /// cannot spill, and later queries' sorts, aggregations and joins need the rest); beyond
    /// it the view's rows go to temporary files. None: what the memory pool grants.
    pub hold_at_most: Option<usize>,
}

/// Views named in `cache` that aggregate (a GROUP BY or DISTINCT somewhere in their plan,
/// views they read included) are registered as [`CachedView`]s.
pub async fn register_views(
    ctx: &SessionContext,
    ordered: &[ViewFile],
    params: &Params,
    cache: &Caching,
) -> Result<Vec<RegisteredView>, ViewError> {
    let state = ctx.state();
    let mut out = Vec::with_capacity(ordered.len());
    for v in ordered {
        let stmt = substituted(v, params)?;
        let plan_err = |source| ViewError::Plan {
            file: v.path.clone(),
            source,
        };
        let plan = state
            .statement_to_plan(DFStatement::Statement(Box::new(stmt)))
            .await
            .map_err(plan_err)?;
        let schema: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
        let reads = cache.reads.get(&v.name).copied().filter(|_| aggregates(&plan));
        let cached = reads.is_some();
        let table: Arc<dyn TableProvider> = if let Some(reads) = reads {
            Arc::new(CachedView::new(v.name.clone(), plan, reads, cache.hold_at_most))
        } else {
            Arc::new(ViewTable::new(plan, Some(v.sql.clone())))
        };
        ctx.register_table(v.name.as_str(), table).map_err(plan_err)?;
        out.push(RegisteredView {
            name: v.name.clone(),
            path: v.path.clone(),
            schema,
            cached,
        });
    }
    Ok(out)
}

/// The view's statement with every `$name` replaced by its value.
pub fn substituted(v: &ViewFile, params: &Params) -> Result<Statement, ViewError> {
    let mut stmt = v.statement.clone();
    params.substitute(&mut stmt).map_err(|name| ViewError::UnknownParam {
        file: v.path.clone(),
        name,
        defined: params.names().map(|n| format!("${n}")).collect::<Vec<_>>().join(", "),
    })?;
    Ok(stmt)
}

/// Whether `plan` groups rows anywhere, looking through the views it reads.
fn aggregates(plan: &LogicalPlan) -> bool {
    plan.exists(|node| {
        Ok(match node {
            LogicalPlan::Aggregate(_) | LogicalPlan::Distinct(_) => true,
            LogicalPlan::TableScan(scan) => source_as_provider(&scan.source).is_ok_and(|p| {
                p.downcast_ref::<CachedView>().is_some() || p.get_logical_plan().is_some_and(|inner| aggregates(&inner))
            }),
            _ => false,
        })
    })
    .unwrap_or(false)
}

/// A view computed in full on its first scan and served from memory (or, when larger than
/// its share of the pool, from temporary Parquet files) afterwards.
///
/// Views are otherwise inlined into every query that reads them, so a per-customer view read
/// by two stages (or by a stage and another view) would be aggregated from the orders twice.
/// Only aggregating views are cached: they hold about one row per customer, while row-level
/// views (cleaned orders) stay streamed.
///
/// The run knows how often it reads each view; rows held in memory are let go at the last
/// planned read (that query still holds them until it finishes), so a per-customer view does
/// not stay in memory through the model stages, and a read beyond the plan computes the view
/// again. Rows in temporary files stay until the session ends (they cost disk, not memory).
#[derive(Debug)]
pub struct CachedView {
    name: String,
    plan: LogicalPlan,
    schema: SchemaRef,
    /// See [`Caching::hold_at_most`].
    hold_at_most: Option<usize>,
    data: tokio::sync::Mutex<Cached>,
}

#[derive(Debug)]
enum Cached {
    /// Not computed yet; this many reads are planned.
    Pending { reads: usize },
    /// The view's rows, with their bytes reserved in the session's memory pool, until the
    /// last of `reads_left` reads.
    Held { table: Arc<MemTable>, reads_left: usize, _reserved: MemoryReservation },
    /// Larger than [`Caching::hold_at_most`] or than what the memory pool had left: the rows
    /// are in temporary files, read by every later read. The files stay until the session
    /// goes, since a query planned over them opens them only when it runs.
    OnDisk { table: Arc<dyn TableProvider>, _files: Vec<TempFile> },
    /// Too large and no local spill directory: every read computes the view again, as an
    /// uncached view would.
    TooLarge,
    /// Every planned read is done; a further one computes the view again.
    Released,
}

impl CachedView {
    /// A view cached for `reads` reads (at least 2, or caching would not pay).
    fn new(name: String, plan: LogicalPlan, reads: usize, hold_at_most: Option<usize>) -> CachedView {
        let schema = Arc::new(plan.schema().as_arrow().clone());
        CachedView {
            name,
            plan,
            schema,
            hold_at_most,
            data: tokio::sync::Mutex::new(Cached::Pending { reads }),
        }
    }

    /// Runs the view's plan, reserving its rows' bytes in `reservation` as they arrive. Once
    /// they pass [`Caching::hold_at_most`] or what the pool grants, every partition writes its
    /// rows (those held so far, then the rest as they come) to a temporary Parquet file in the
    /// spill directory instead, so a view too large to hold is never held whole, even for a
    /// moment, and is still computed once. Without a local spill directory the partial rows
    /// are let go (None) and each read computes the view again.
    async fn compute(&self, state: &dyn Session, reservation: &MemoryReservation) -> datafusion::error::Result<Option<Computed>> {
        let started = std::time::Instant::now();
        let physical = state.create_physical_plan(&self.plan).await?;
        let runtime = state.runtime_env();
        let too_large = AtomicBool::new(false);
        let seen = std::sync::Mutex::new(HashSet::new());
        let take = |mut stream: SendableRecordBatchStream| {
            let (too_large, seen, runtime) = (&too_large, &seen, &runtime);
            async move {
                let mut held = Vec::new();
                let mut file: Option<TempParquet> = None;
                while let Some(batch) = stream.next().await {
                    let batch = batch?;
                    if file.is_none() {
                        let bytes = unseen_bytes(&batch, seen);
                        let fits = self.hold_at_most.is_none_or(|cap| reservation.size() + bytes <= cap);
                        if !too_large.load(Ordering::Relaxed) && fits && reservation.try_grow(bytes).is_ok() {
                            held.push(batch);
                            continue;
                        }
                        too_large.store(true, Ordering::Relaxed);
                        let Ok(out) = self.spill(runtime, held.drain(..)) else {
                            return Ok(Part::Dropped);
                        };
                        file = Some(out);
                    }
                    file.as_mut().expect("set above").write(&batch)?;
                }
                Ok::<_, datafusion::error::DataFusionError>(match file {
                    Some(out) => Part::Disk(out.finish(&self.schema)?),
                    None => Part::Memory(held),
                })
            }
        };
        let streams = execute_stream_partitioned(physical, state.task_ctx())?;
        let parts = futures::future::try_join_all(streams.into_iter().map(take)).await?;
        if !too_large.into_inner() {
            let partitions: Vec<Vec<RecordBatch>> = parts.into_iter().map(|p| if let Part::Memory(b) = p { b } else { Vec::new() }).collect();
            let rows: usize = partitions.iter().flatten().map(|b| b.num_rows()).sum();
            tracing::debug!(view = self.name, rows, bytes = reservation.size(), seconds = crate::text::millis(started.elapsed().as_secs_f64()), "view computed");
            // Physical batches may carry other nullability than the logical schema.
            let schema = partitions.iter().flatten().next().map_or(self.schema.clone(), |b| b.schema());
            return Ok(Some(Computed::Memory(MemTable::try_new(schema, partitions)?)));
        }
        reservation.free();
        // A partition that could not open a file: no spill directory, so none of them can.
        if parts.iter().any(|p| matches!(p, Part::Dropped)) {
            return Ok(None);
        }
        // Partitions that finished before the others overflowed go to disk too, so the view
        // is read from one kind of table.
        let mut files = Vec::with_capacity(parts.len());
        for part in parts {
            files.push(match part {
                Part::Disk(f) => f,
                Part::Memory(batches) => self.spill(&runtime, batches)?.finish(&self.schema)?,
                Part::Dropped => unreachable!("returned above"),
            });
        }
        let rows: usize = files.iter().map(|f| f.rows).sum();
        // The first file with rows has the batches' schema (as the in-memory table would).
        let schema = files.iter().find(|f| f.rows > 0).or(files.first()).map(|f| f.schema.clone());
        let table = temp_table(state, &files, schema).await?;
        tracing::info!(view = self.name, rows, files = files.len(), seconds = crate::text::millis(started.elapsed().as_secs_f64()), "view larger than its share of memory; held in temporary files");
        Ok(Some(Computed::Disk { table, _files: files }))
    }
}

impl CachedView {
    /// A temporary file for this view's rows, with `batches` written to it.
    fn spill(&self, runtime: &RuntimeEnv, batches: impl IntoIterator<Item = RecordBatch>) -> datafusion::error::Result<TempParquet> {
        let mut out = TempParquet::create(runtime, &format!("cached view {}", self.name))?;
        for b in batches {
            out.write(&b)?;
        }
        Ok(out)
    }
}

/// What a partition of a cached view's first computation produced.
enum Part {
    Memory(Vec<RecordBatch>),
    Disk(TempFile),
    /// Too large, and no local spill directory to write it to.
    Dropped,
}

/// A cached view's rows: in memory, or in temporary files when larger than its share.
enum Computed {
    Memory(MemTable),
    Disk { table: Arc<dyn TableProvider>, _files: Vec<TempFile> },
}

/// Bytes of the buffers behind `batch` not yet in `seen` (buffer addresses). An aggregation
/// emits its groups as slices of a few large arrays, and `get_array_memory_size` would count
/// each large array once per slice: at 10M orders, many times the view's real size.
fn unseen_bytes(batch: &RecordBatch, seen: &std::sync::Mutex<HashSet<usize>>) -> usize {
    fn walk(data: &ArrayData, seen: &mut HashSet<usize>, total: &mut usize) {
        let nulls = data.nulls().map(|n| n.buffer());
        for buffer in data.buffers().iter().chain(nulls) {
            if seen.insert(buffer.data_ptr().as_ptr() as usize) {
                *total += buffer.capacity();
            }
        }
        for child in data.child_data() {
            walk(child, seen, total);
        }
    }
    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    let mut total = 0;
    for column in batch.columns() {
        walk(&column.to_data(), &mut seen, &mut total);
    }
    total
}

#[async_trait::async_trait]
impl TableProvider for CachedView {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let mut data = self.data.lock().await;
        let serve: Arc<dyn TableProvider> = match &mut *data {
            Cached::Pending { reads } => {
                let reads_left = reads.saturating_sub(1);
                let pool = &state.runtime_env().memory_pool;
                let reservation = MemoryConsumer::new(format!("cached view {}", self.name)).register(pool);
                match self.compute(state, &reservation).await? {
                    None => {
                        tracing::warn!(view = self.name, "view too large to hold in memory and no local spill directory; computed again on each read");
                        *data = Cached::TooLarge;
                        drop(data);
                        return ViewTable::new(self.plan.clone(), None).scan(state, projection, filters, limit).await;
                    }
                    Some(Computed::Disk { table, _files }) => {
                        *data = Cached::OnDisk { table: table.clone(), _files };
                        table
                    }
                    Some(Computed::Memory(table)) => {
                        let table = Arc::new(table);
                        *data = if reads_left == 0 {
                            Cached::Released
                        } else {
                            Cached::Held { table: table.clone(), reads_left, _reserved: reservation }
                        };
                        table
                    }
                }
            }
            Cached::Held { table, reads_left, .. } => {
                let table: Arc<dyn TableProvider> = table.clone();
                *reads_left = reads_left.saturating_sub(1);
                if *reads_left == 0 {
                    tracing::debug!(view = self.name, "last planned read; rows released");
                    *data = Cached::Released;
                }
                table
            }
            Cached::OnDisk { table, .. } => table.clone(),
            Cached::TooLarge | Cached::Released => {
                return ViewTable::new(self.plan.clone(), None).scan(state, projection, filters, limit).await;
            }
        };
        drop(data);
        serve.scan(state, projection, filters, limit).await
    }
}

/// Lets go of a cached view's rows before its planned reads are done, for a stage that read
/// it fewer times than planned (the segmentation past `fit_sample` reads its staged file
/// instead). A later read computes the view again; other views are left alone.
pub async fn release(ctx: &SessionContext, name: &str) {
    let Ok(provider) = ctx.table_provider(name).await else { return };
    let any: &dyn std::any::Any = provider.as_ref();
    if let Some(view) = any.downcast_ref::<CachedView>() {
        let mut data = view.data.lock().await;
        if matches!(*data, Cached::Held { .. }) {
            tracing::debug!(view = name, "rows released before the planned reads");
            *data = Cached::Released;
        }
    }
}

/// [`find`] for a view named in the job file at `key` (e.g. `segmentation.view`): the error
/// names the file and the key.
pub fn find_for_job<'a>(views: &'a [RegisteredView], name: &str, job: &Path, key: &str) -> Result<&'a RegisteredView, ViewError> {
    find(views, name).map_err(|e| match e {
        ViewError::UnknownView { name, views } => ViewError::UnknownJobView { job: job.to_path_buf(), key: key.to_string(), name, views },
        e => e,
    })
}

/// Finds a registered view by name, with an error that lists the known ones.
pub fn find<'a>(views: &'a [RegisteredView], name: &str) -> Result<&'a RegisteredView, ViewError> {
    views.iter().find(|v| v.name == name).ok_or_else(|| ViewError::UnknownView {
        name: name.to_string(),
        views: views.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session with a memory pool of `limit` bytes (unbounded when None) and a table `t`
    /// of 20,000 rows over 10,000 ids.
    fn session(limit: Option<usize>) -> SessionContext {
        session_with(limit, true)
    }

    /// [`session`], with or without a spill directory.
    fn session_with(limit: Option<usize>, spill: bool) -> SessionContext {
        use datafusion::arrow::array::{Int64Array, RecordBatch};
        use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
        use datafusion::execution::memory_pool::GreedyMemoryPool;
        use datafusion::execution::runtime_env::RuntimeEnvBuilder;
        let mut rt = RuntimeEnvBuilder::new();
        if !spill {
            rt = rt.with_disk_manager_builder(DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled));
        }
        if let Some(limit) = limit {
            rt = rt.with_memory_pool(Arc::new(GreedyMemoryPool::new(limit)));
        }
        let config = datafusion::prelude::SessionConfig::new().with_target_partitions(2);
        let ctx = SessionContext::new_with_config_rt(config, rt.build_arc().unwrap());
        let ids = Int64Array::from_iter_values((0..20_000).map(|i| i % 10_000));
        let batch = RecordBatch::try_from_iter([("id", Arc::new(ids) as _)]).unwrap();
        ctx.register_batch("t", batch).unwrap();
        ctx
    }

    /// Registers `SELECT id, <1,000-character pad>, random() FROM t GROUP BY id` as a cached
    /// view: the grouping needs little memory, the 10 MB of rows it yields need more, and the
    /// random column tells a computation from the next.
    async fn padded_view(ctx: &SessionContext, reads: usize, hold_at_most: Option<usize>) -> Arc<dyn TableProvider> {
        let sql = "SELECT id, repeat('x', 1000) AS pad, random() AS draw FROM (SELECT id FROM t GROUP BY id)";
        let plan = ctx.state().create_logical_plan(sql).await.unwrap();
        let view: Arc<dyn TableProvider> = Arc::new(CachedView::new("padded".into(), plan, reads, hold_at_most));
        ctx.register_table("padded", view.clone()).unwrap();
        view
    }

    async fn read(ctx: &SessionContext) -> Vec<(i64, usize)> {
        // Sorted here: a sort in the query would need more than the pool has.
        let df = ctx.sql("SELECT id, length(pad) AS n FROM padded").await.unwrap();
        let batches = df.collect().await.unwrap();
        let mut rows = Vec::new();
        for b in &batches {
            let (ids, n) = (b.column(0).as_any().downcast_ref::<datafusion::arrow::array::Int64Array>().unwrap(), b.column(1));
            let n = datafusion::arrow::compute::cast(n, &datafusion::arrow::datatypes::DataType::Int64).unwrap();
            let n = n.as_any().downcast_ref::<datafusion::arrow::array::Int64Array>().unwrap();
            rows.extend((0..b.num_rows()).map(|i| (ids.value(i), n.value(i) as usize)));
        }
        rows.sort_unstable();
        rows
    }

    /// Each id's random draw: the same on two reads if and only if the view was computed once.
    async fn draws(ctx: &SessionContext) -> Vec<(i64, u64)> {
        use datafusion::arrow::array::{Float64Array, Int64Array};
        let batches = ctx.sql("SELECT id, draw FROM padded").await.unwrap().collect().await.unwrap();
        let mut rows = Vec::new();
        for b in &batches {
            let ids = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            let draws = b.column(1).as_any().downcast_ref::<Float64Array>().unwrap();
            rows.extend((0..b.num_rows()).map(|i| (ids.value(i), draws.value(i).to_bits())));
        }
        rows.sort_unstable();
        rows
    }

    /// Held, OnDisk, TooLarge or Released, and the bytes the pool counts.
    async fn state(ctx: &SessionContext, view: &Arc<dyn TableProvider>) -> (&'static str, usize) {
        let held = match &*view.downcast_ref::<CachedView>().unwrap().data.lock().await {
            Cached::Pending { .. } => "pending",
            Cached::Held { .. } => "held",
            Cached::OnDisk { .. } => "on disk",
            Cached::TooLarge => "too large",
            Cached::Released => "released",
        };
        (held, ctx.runtime_env().memory_pool.reserved())
    }

    #[tokio::test]
    async fn a_cached_view_beyond_the_memory_limit_is_computed_once_into_temporary_files() {
        let expected: Vec<(i64, usize)> = (0..10_000).map(|i| (i, 1000)).collect();
        let ctx = session(Some(4 << 20));
        let view = padded_view(&ctx, 3, None).await;
        let first = draws(&ctx).await;
        assert_eq!(first.len(), 10_000);
        // Nothing stays reserved: the rows are on disk.
        assert_eq!(state(&ctx, &view).await, ("on disk", 0));
        for read_no in 2..=4 {
            assert_eq!(read(&ctx).await, expected, "read {read_no}");
            assert_eq!(state(&ctx, &view).await, ("on disk", 0), "after read {read_no}");
        }
        assert_eq!(draws(&ctx).await, first, "a read after the planned ones computed the view again");
    }

    #[tokio::test]
    async fn without_a_spill_directory_a_cached_view_beyond_the_limit_is_computed_again() {
        let expected: Vec<(i64, usize)> = (0..10_000).map(|i| (i, 1000)).collect();
        let ctx = session_with(Some(4 << 20), false);
        let view = padded_view(&ctx, 2, None).await;
        let first = draws(&ctx).await;
        assert_eq!(state(&ctx, &view).await, ("too large", 0));
        assert_eq!(read(&ctx).await, expected);
        assert_eq!(state(&ctx, &view).await, ("too large", 0));
        assert_ne!(draws(&ctx).await, first, "each read computes the view");
    }

    #[test]
    fn slices_of_one_array_are_counted_once() {
        use datafusion::arrow::array::Int64Array;
        let whole = RecordBatch::try_from_iter([("x", Arc::new(Int64Array::from_iter_values(0..10_000)) as _)]).unwrap();
        let seen = std::sync::Mutex::new(HashSet::new());
        let sliced: usize = (0..10).map(|i| unseen_bytes(&whole.slice(i * 1000, 1000), &seen)).sum();
        assert!((80_000..=90_000).contains(&sliced), "{sliced} bytes for 80,000 bytes of values");
        // What the batches' own sizes add up to: the whole array once per slice.
        let naive: usize = (0..10).map(|i| whole.slice(i * 1000, 1000).get_array_memory_size()).sum();
        assert!(naive >= 10 * 80_000, "{naive}");
    }

    #[tokio::test]
    async fn a_cached_view_over_its_hold_limit_is_not_held_whatever_the_pool_grants() {
        let expected: Vec<(i64, usize)> = (0..10_000).map(|i| (i, 1000)).collect();
        // The pool has room for the ~10 MB of rows, the hold limit does not.
        let ctx = session(Some(80 << 20));
        let view = padded_view(&ctx, 2, Some(5 << 20)).await;
        for read_no in 1..=2 {
            assert_eq!(read(&ctx).await, expected, "read {read_no}");
            assert_eq!(state(&ctx, &view).await, ("on disk", 0), "after read {read_no}");
        }
        // Room under both holds them.
        let ctx = session(Some(80 << 20));
        let view = padded_view(&ctx, 2, Some(20 << 20)).await;
        assert_eq!(read(&ctx).await, expected);
        let (held, reserved) = state(&ctx, &view).await;
        assert_eq!(held, "held");
        assert!(reserved > 10_000 * 1000 && reserved <= 20 << 20, "{reserved} bytes reserved");
    }

    #[tokio::test]
    async fn a_cached_view_is_let_go_at_its_last_planned_read_and_computed_again_after() {
        let expected: Vec<(i64, usize)> = (0..10_000).map(|i| (i, 1000)).collect();
        let ctx = session(None);
        let view = padded_view(&ctx, 3, None).await;
        for read_no in 1..=2 {
            assert_eq!(read(&ctx).await, expected, "read {read_no}");
            let (held, reserved) = state(&ctx, &view).await;
            // What is kept is what the pool counts.
            assert_eq!(held, "held", "after read {read_no}");
            assert!(reserved > 10_000 * 1000, "{reserved} bytes reserved after read {read_no}");
        }
        assert_eq!(read(&ctx).await, expected, "the last planned read");
        assert_eq!(state(&ctx, &view).await, ("released", 0));
        assert_eq!(read(&ctx).await, expected, "a read beyond the plan");
        assert_eq!(state(&ctx, &view).await, ("released", 0));
    }

    fn write(dir: &Path, name: &str, sql: &str) {
        std::fs::write(dir.join(name), sql).unwrap();
    }

    fn names(v: &[ViewFile]) -> Vec<&str> {
        v.iter().map(|v| v.name.as_str()).collect()
    }

    fn sources() -> BTreeSet<String> {
        ["orders".to_string()].into()
    }

    #[test]
    fn order_follows_references_not_file_names() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "a_final.sql", "SELECT * FROM m_middle JOIN z_base USING (id)");
        write(d.path(), "m_middle.sql", "SELECT id FROM z_base");
        write(d.path(), "z_base.sql", "WITH t AS (SELECT customer_id AS id FROM orders) SELECT id FROM t");
        let ordered = order_views(load_views(d.path()).unwrap(), &sources()).unwrap();
        assert_eq!(names(&ordered), ["z_base", "m_middle", "a_final"]);
    }

    #[test]
    fn cycle_names_every_file_on_it() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "a.sql", "SELECT * FROM b");
        write(d.path(), "b.sql", "SELECT * FROM c");
        write(d.path(), "c.sql", "SELECT * FROM a");
        write(d.path(), "d.sql", "SELECT * FROM orders");
        let err = order_views(load_views(d.path()).unwrap(), &sources()).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("dependency cycle between views: {}/a.sql → b.sql → c.sql → a.sql", d.path().display())
        );
    }

    #[test]
    fn unknown_table_names_the_file_and_the_table() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "v.sql", "SELECT * FROM ordrs");
        let err = order_views(load_views(d.path()).unwrap(), &sources()).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("{}/v.sql: unknown table 'ordrs' (sources: orders; views: v)", d.path().display())
        );
    }

    #[test]
    fn write_statements_are_not_views() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "v.sql", "CREATE TABLE x AS SELECT 1");
        let err = load_views(d.path()).unwrap_err().to_string();
        assert!(err.ends_with("v.sql: only SELECT queries are allowed in view files, found CREATE TABLE"), "{err}");
        write(d.path(), "v.sql", "COPY (SELECT 1) TO '/tmp/x.parquet'");
        let err = load_views(d.path()).unwrap_err().to_string();
        assert!(err.ends_with("found COPY"), "{err}");
    }

    #[test]
    fn two_statements_in_one_file_are_rejected() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "v.sql", "SELECT 1; SELECT 2;");
        let err = load_views(d.path()).unwrap_err().to_string();
        assert!(err.ends_with("v.sql: a view file must hold exactly one query, found 2"), "{err}");
    }
}
