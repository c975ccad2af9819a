//! A plan's rows written once to a local temporary Parquet file (in the engine's spill
//! directory) and registered as a table: what a stage reads many times, read from disk rather
//! than computed again from the orders each time or held in memory.
//!
//! Embedded engine only: on a cluster the driver's local file would be out of the executors'
//! reach (callers read the view itself there).

use std::sync::Arc;

use datafusion::dataframe::DataFrame;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SpillFile;
use datafusion::execution::context::SessionContext;
use datafusion::parquet::arrow::ArrowWriter;
use futures::StreamExt;

/// A registered table over a temporary file; the file goes when this is dropped (deregister
/// the table first).
pub struct Materialized {
    pub name: String,
    pub rows: usize,
    _file: Arc<dyn SpillFile>,
}

/// Streams `df` into a temporary Parquet file and registers it as `name`.
pub async fn materialize(ctx: &SessionContext, df: DataFrame, name: &str) -> Result<Materialized> {
    let file = ctx.runtime_env().disk_manager.create_tmp_file(name)?;
    let path = file.path().ok_or_else(|| DataFusionError::Execution(format!("{name}: the spill directory is not a local one")))?.to_path_buf();
    let planned = Arc::new(df.schema().as_arrow().clone());
    let mut stream = df.execute_stream().await?;
    let mut writer = None;
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        rows += batch.num_rows();
        // The batches' schema, which may differ from the plan's in nullability.
        let w = match &mut writer {
            Some(w) => w,
            None => writer.insert(ArrowWriter::try_new(std::fs::File::create(&path)?, batch.schema(), None)?),
        };
        w.write(&batch)?;
    }
    match writer {
        Some(w) => w.close().map(|_| ())?,
        None => ArrowWriter::try_new(std::fs::File::create(&path)?, planned, None)?.close().map(|_| ())?,
    }
    // Spill files have no extension.
    let options = datafusion::prelude::ParquetReadOptions::default().file_extension("");
    let table = ctx.read_parquet(path.to_string_lossy().as_ref(), options).await?;
    ctx.register_table(name, table.into_view())?;
    Ok(Materialized { name: name.to_string(), rows, _file: file })
}
