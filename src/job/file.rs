//! The job file as written: the top-level [`JobFile`] with `[job]`, and TOML parsing that
//! names the line of a syntax error or unknown key. Field names are the documented contract
//! (README "Job file"); every struct rejects unknown keys.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::clv::ClvSection;
use super::error::JobError;
use super::output::OutputSection;
use super::rfm::{RfmSection, TiersSection};
use super::segmentation::SegmentationSection;
use super::sources::SourceSection;
use crate::engine::{EngineSection, StorageSection};
use crate::privacy::PrivacySpec;
use crate::quality::SourceRules;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JobFile {
    pub job: JobSection,
    #[serde(default)]
    pub sources: BTreeMap<String, SourceSection>,
    #[serde(default)]
    pub params: BTreeMap<String, toml::Value>,
    #[serde(default)]
    pub quality: BTreeMap<String, SourceRules>,
    #[serde(default)]
    pub engine: EngineSection,
    #[serde(default)]
    pub storage: StorageSection,
    #[serde(default)]
    pub privacy: PrivacySpec,
    pub segmentation: Option<SegmentationSection>,
    pub rfm: Option<RfmSection>,
    pub tiers: Option<TiersSection>,
    #[serde(default)]
    pub actions: BTreeMap<String, toml::Value>,
    pub clv: Option<ClvSection>,
    pub output: OutputSection,
}

/// `[job]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JobSection {
    pub name: String,
    pub sql_dir: String,
}

impl JobFile {
    /// Parses the text of the file at `path`; errors name the file and line.
    pub fn parse(path: &Path, text: &str) -> Result<JobFile, JobError> {
        toml::from_str(text).map_err(|e| JobError::Parse {
            path: path.to_path_buf(),
            line: e.span().map(|s| line_of(text, s.start)).unwrap_or(0),
            message: e.message().trim().to_string(),
        })
    }
}

/// The 1-based line holding byte `offset`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}
