//! `[output]`: the raw section and its validation into [`OutputSpec`] (a resolved root).

use std::path::Path;

use serde::Deserialize;
use url::Url;

use super::error::{At, Invalid};
use super::value::{Choice, Name};
use crate::location::resolve_location;
use crate::publish::TableFormat;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OutputSection {
    root: String,
    #[serde(default)]
    publish_views: Vec<String>,
    /// "parquet" (the default) or "delta".
    format: Option<String>,
    /// Delta only: after each commit, delete files no version of the last N days reads.
    vacuum_days: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct OutputSpec {
    pub root: Url,
    pub publish_views: Vec<String>,
    pub format: TableFormat,
    /// `None`: never vacuum (the default; every old version stays readable).
    pub vacuum_days: Option<u32>,
}

impl Choice for TableFormat {
    const WHAT: &'static str = "format";
    const WORDS: &'static [(&'static str, Self)] = &[("parquet", TableFormat::Parquet), ("delta", TableFormat::Delta)];
}

/// A relative `root` resolves against `base` (the job file's directory).
pub(super) fn validate_output(base: &Path, raw: OutputSection) -> Result<OutputSpec, Invalid> {
    let root = resolve_location(base, &raw.root, true).at("output.root")?;
    for v in &raw.publish_views {
        Name::check(v).at("output.publish_views")?;
    }
    let format = TableFormat::parse_or(raw.format.as_deref(), TableFormat::Parquet).at("output.format")?;
    if raw.vacuum_days.is_some() && format != TableFormat::Delta {
        return Err(Invalid::new("output.vacuum_days", "only applies to format = \"delta\" (Parquet partitions are replaced whole)"));
    }
    Ok(OutputSpec {
        root,
        publish_views: raw.publish_views,
        format,
        vacuum_days: raw.vacuum_days,
    })
}
