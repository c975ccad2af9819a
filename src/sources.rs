//! Sources: the job's Parquet and CSV inputs, registered as tables under their names.
//!
//! A source URL is a directory (every `*.parquet` / `*.csv` file under it) or one file.
//! Hive partition columns (`dt=2025-01-01/`) listed in `partition_cols` become string
//! columns; cast them in SQL if another type is wanted.

use datafusion::arrow::datatypes::DataType;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::context::SessionContext;
use datafusion::prelude::{CsvReadOptions, ParquetReadOptions};
use futures::TryStreamExt;

use crate::text::one_line;
use crate::job::{Source, SourceFormat};
use crate::location::redact;

#[derive(Debug, thiserror::Error)]
#[error("source '{name}' ({url}): {message}")]
pub struct SourceError {
    pub name: String,
    pub url: String,
    pub message: String,
}

/// Registers each source under its name, or under `table_name(source)` when given.
pub async fn register_sources(
    ctx: &SessionContext,
    sources: &[Source],
    table_name: impl Fn(&Source) -> String,
) -> Result<(), SourceError> {
    for s in sources {
        register_source(ctx, s, &table_name(s)).await?;
    }
    Ok(())
}

async fn register_source(ctx: &SessionContext, s: &Source, table: &str) -> Result<(), SourceError> {
    let cols: Vec<(String, DataType)> = s.partition_cols.iter().map(|c| (c.clone(), DataType::Utf8)).collect();
    let url = s.url.as_str();
    let res = match s.format {
        SourceFormat::Parquet => {
            let opts = ParquetReadOptions::default().table_partition_cols(cols);
            ctx.register_parquet(table, url, opts).await
        }
        SourceFormat::Csv => {
            let opts = CsvReadOptions::new().has_header(true).table_partition_cols(cols);
            ctx.register_csv(table, url, opts).await
        }
    };
    res.map_err(|e| SourceError {
        name: s.name.clone(),
        url: redact(url),
        message: one_line(&e),
    })
}

/// How many files of its format `s` lists (a file URL counts as one when it exists). None is
/// an error: a registered source without files has no columns, and every view over it would
/// fail later with a less helpful message.
pub async fn count_files(ctx: &SessionContext, s: &Source) -> Result<usize, SourceError> {
    let err = |message: String| SourceError {
        name: s.name.clone(),
        url: redact(s.url.as_str()),
        message,
    };
    let url = ListingTableUrl::parse(s.url.as_str()).map_err(|e| err(one_line(&e)))?;
    let store = ctx.runtime_env().object_store(url.object_store()).map_err(|e| err(one_line(&e)))?;
    let state = ctx.state();
    // The extensions `register_source`'s read options look for.
    let extension = match s.format {
        SourceFormat::Parquet => ParquetReadOptions::default().file_extension,
        SourceFormat::Csv => CsvReadOptions::new().file_extension,
    };
    let files = url.list_all_files(&state, store.as_ref(), extension).await.map_err(|e| err(one_line(&e)))?;
    let n = files.try_fold(0usize, |n, _| futures::future::ready(Ok(n + 1))).await.map_err(|e| err(one_line(&e)))?;
    if n == 0 {
        return Err(err(format!("no {extension} file there")));
    }
    Ok(n)
}
