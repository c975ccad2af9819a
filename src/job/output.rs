//! `[output]`: the raw section and its validation into [`OutputSpec`] (a resolved root).

use std::path::Path;

use serde::Deserialize;
use url::Url;

use super::error::{At, Invalid};
use super::value::Name;
use crate::location::resolve_location;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OutputSection {
    root: String,
    #[serde(default)]
    publish_views: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct OutputSpec {
    pub root: Url,
    pub publish_views: Vec<String>,
}

/// A relative `root` resolves against `base` (the job file's directory).
pub(super) fn validate_output(base: &Path, raw: OutputSection) -> Result<OutputSpec, Invalid> {
    let root = resolve_location(base, &raw.root, true).at("output.root")?;
    for v in &raw.publish_views {
        Name::check(v).at("output.publish_views")?;
    }
    Ok(OutputSpec {
        root,
        publish_views: raw.publish_views,
    })
}
