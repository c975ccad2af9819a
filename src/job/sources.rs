//! `[sources.<name>]`: the raw section and its validation into [`Source`] (a resolved URL).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use url::Url;

use super::error::{At, Invalid};
use super::value::{Choice, Name};
use crate::location::resolve_location;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SourceSection {
    url: String,
    format: String,
    #[serde(default)]
    partition_cols: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    /// Resolved location: `file:///abs/dir/`, `s3://bucket/prefix/`, …
    pub url: Url,
    pub format: SourceFormat,
    pub partition_cols: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Parquet,
    Csv,
}

impl Choice for SourceFormat {
    const WHAT: &'static str = "format";
    const WORDS: &'static [(&'static str, Self)] = &[("parquet", SourceFormat::Parquet), ("csv", SourceFormat::Csv)];
}

/// Every source, in name order; relative locations resolve against `base` (the job file's
/// directory).
pub(super) fn validate_sources(base: &Path, raw: BTreeMap<String, SourceSection>) -> Result<Vec<Source>, Invalid> {
    let mut sources = Vec::with_capacity(raw.len());
    for (name, s) in raw {
        let key = format!("sources.{name}");
        let name = Name::new(name).at(&key)?.into_string();
        let format = SourceFormat::parse(&s.format).at(format!("{key}.format"))?;
        let url = resolve_location(base, &s.url, true).at(format!("{key}.url"))?;
        for c in &s.partition_cols {
            Name::check(c).at(format!("{key}.partition_cols"))?;
        }
        sources.push(Source {
            name,
            url,
            format,
            partition_cols: s.partition_cols,
        });
    }
    Ok(sources)
}
