//! Rows written to local temporary Parquet files (in the engine's spill directory) and read
//! back as a table: what a stage or a cached view reads many times, read from disk rather than
//! computed again from the orders each time or held in memory.
//!
//! Embedded engine only: on a cluster the driver's local file would be out of the executors'
//! reach (callers read the view itself there).

use std::fs::File;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::dataframe::DataFrame;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SpillFile;
use datafusion::execution::context::SessionContext;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::file::properties::WriterProperties;
use futures::StreamExt;

/// Rows per row group: the writer holds one row group's pages in memory (outside the memory
/// pool), so it stays small next to the pool; readers still get row groups to split.
const ROW_GROUP_ROWS: usize = 64 * 1024;

/// One temporary Parquet file being written, batch by batch.
pub struct TempParquet {
    file: Arc<dyn SpillFile>,
    writer: Option<(ArrowWriter<File>, SchemaRef)>,
    rows: usize,
}

/// A finished temporary file; it is deleted when the last handle is dropped (drop the table
/// reading it first).
#[derive(Clone)]
pub struct TempFile {
    file: Arc<dyn SpillFile>,
    pub rows: usize,
    /// The schema of the rows written, which may differ from a plan's in nullability.
    pub schema: SchemaRef,
}

impl std::fmt::Debug for TempFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TempFile").field("path", &self.file.path()).field("rows", &self.rows).finish()
    }
}

impl TempParquet {
    /// A new empty file in the spill directory; an error when the engine has no local one.
    pub fn create(runtime: &RuntimeEnv, name: &str) -> Result<TempParquet> {
        let file = runtime.disk_manager.create_tmp_file(name)?;
        if file.path().is_none() {
            return Err(DataFusionError::Execution(format!("{name}: the spill directory is not a local one")));
        }
        Ok(TempParquet { file, writer: None, rows: 0 })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let (writer, _) = match &mut self.writer {
            Some(w) => w,
            None => {
                let path = self.file.path().expect("checked in create");
                let props = WriterProperties::builder().set_max_row_group_row_count(Some(ROW_GROUP_ROWS)).build();
                self.writer.insert((ArrowWriter::try_new(File::create(path)?, batch.schema(), Some(props))?, batch.schema()))
            }
        };
        self.rows += batch.num_rows();
        Ok(writer.write(batch)?)
    }

    /// Closes the file; `empty_schema` is written when no batch came.
    pub fn finish(self, empty_schema: &SchemaRef) -> Result<TempFile> {
        let (writer, schema) = match self.writer {
            Some(w) => w,
            None => (ArrowWriter::try_new(File::create(self.file.path().expect("checked in create"))?, empty_schema.clone(), None)?, empty_schema.clone()),
        };
        writer.close()?;
        Ok(TempFile { file: self.file, rows: self.rows, schema })
    }
}

/// A table over temporary files, one file group each. `schema` is the table's (the first
/// file's when None).
pub async fn temp_table(state: &dyn Session, files: &[TempFile], schema: Option<SchemaRef>) -> Result<Arc<dyn TableProvider>> {
    let urls = files
        .iter()
        .map(|f| ListingTableUrl::parse(f.file.path().expect("checked in create").to_string_lossy()))
        .collect::<Result<Vec<_>>>()?;
    // Spill files have no extension.
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension("");
    let config = ListingTableConfig::new_with_multi_paths(urls).with_listing_options(options);
    let config = match schema.or_else(|| files.first().map(|f| f.schema.clone())) {
        Some(schema) => config.with_schema(schema),
        None => config.infer_schema(state).await?,
    };
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// A registered table over a temporary file; the file goes when this is dropped (deregister
/// the table first).
pub struct Materialized {
    pub name: String,
    pub rows: usize,
    _file: TempFile,
}

/// Streams `df` into a temporary Parquet file and registers it as `name`.
pub async fn materialize(ctx: &SessionContext, df: DataFrame, name: &str) -> Result<Materialized> {
    let planned = Arc::new(df.schema().as_arrow().clone());
    let mut out = TempParquet::create(&ctx.runtime_env(), name)?;
    let mut stream = df.execute_stream().await?;
    while let Some(batch) = stream.next().await {
        out.write(&batch?)?;
    }
    let file = out.finish(&planned)?;
    let table = temp_table(&ctx.state(), std::slice::from_ref(&file), None).await?;
    ctx.register_table(name, table)?;
    Ok(Materialized { name: name.to_string(), rows: file.rows, _file: file })
}
