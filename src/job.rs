//! Job files: raw TOML ([`JobFile`]) → validated [`Job`].
//!
//! The raw structs mirror the file and reject unknown keys; [`Job::load`] resolves paths
//! relative to the job file, checks every value and returns a `Job` that the rest of the
//! pipeline can trust. Nothing downstream re-validates the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Deserialize;
use url::Url;

use crate::location::{absolute, normalize, resolve_location};
use crate::names::check_name;

use crate::clv::{ClvSpec, TimeUnit};
use crate::engine::{EngineConfig, EngineSection, StorageSection, parse_memory_limit};
use crate::params::ParamValue;
use crate::privacy::PrivacySpec;
use crate::quality::SourceRules;
use crate::segment::spec::{
    ActionsSpec, RfmSection, RfmSpec, SegmentationSection, SegmentationSpec, TiersSection, validate_actions, validate_rfm,
    validate_segmentation,
};

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{path}: cannot read job file: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

// ---------------------------------------------------------------------------------------------
// Raw file layout. Field names are the documented contract (README "Job file").
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobFile {
    job: JobSection,
    #[serde(default)]
    sources: BTreeMap<String, SourceSection>,
    #[serde(default)]
    params: BTreeMap<String, toml::Value>,
    #[serde(default)]
    quality: BTreeMap<String, SourceRules>,
    #[serde(default)]
    engine: EngineSection,
    #[serde(default)]
    storage: StorageSection,
    #[serde(default)]
    privacy: PrivacySpec,
    segmentation: Option<SegmentationSection>,
    rfm: Option<RfmSection>,
    tiers: Option<TiersSection>,
    #[serde(default)]
    actions: BTreeMap<String, String>,
    clv: Option<ClvSection>,
    output: OutputSection,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClvSection {
    view: String,
    id: String,
    time_unit: Option<String>,
    horizon_months: Option<u32>,
    monthly_discount_rate: Option<f64>,
    margin: Option<f64>,
    holdout_days: Option<u32>,
    penalizer: Option<f64>,
    lifetime_periods: Option<f64>,
    mode: Option<String>,
    model_from: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobSection {
    name: String,
    sql_dir: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceSection {
    url: String,
    format: String,
    #[serde(default)]
    partition_cols: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputSection {
    root: String,
    #[serde(default)]
    publish_views: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Validated job.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    /// The job file itself, for error messages.
    pub path: PathBuf,
    pub sql_dir: PathBuf,
    pub sources: Vec<Source>,
    pub params: BTreeMap<String, ParamValue>,
    /// Data-quality rules per source name.
    pub quality: BTreeMap<String, SourceRules>,
    pub engine: EngineSection,
    pub storage: StorageSection,
    pub privacy: PrivacySpec,
    pub segmentation: Option<SegmentationSpec>,
    /// RFM scores, lifecycle stages and value tiers (needs `segmentation`).
    pub rfm: Option<RfmSpec>,
    pub actions: ActionsSpec,
    pub clv: Option<ClvSpec>,
    pub output: OutputSpec,
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

#[derive(Debug, Clone)]
pub struct OutputSpec {
    pub root: Url,
    pub publish_views: Vec<String>,
}

impl Job {
    /// Reads, parses and validates a job file.
    pub fn load(path: &Path) -> Result<Job, JobError> {
        let text = std::fs::read_to_string(path).map_err(|source| JobError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses job text as if it were read from `path` (relative paths resolve against
    /// `path`'s directory).
    pub fn parse(path: &Path, text: &str) -> Result<Job, JobError> {
        let raw: JobFile = toml::from_str(text).map_err(|e| JobError::Parse {
            path: path.to_path_buf(),
            line: e.span().map(|s| line_of(text, s.start)).unwrap_or(0),
            message: e.message().trim().to_string(),
        })?;
        let base = absolute(path.parent().unwrap_or(Path::new(".")));
        let invalid = |key: &str, message: String| JobError::Invalid {
            path: path.to_path_buf(),
            key: key.to_string(),
            message,
        };

        check_name(&raw.job.name).map_err(|m| invalid("job.name", m))?;

        let mut sources = Vec::with_capacity(raw.sources.len());
        for (name, s) in raw.sources {
            let key = format!("sources.{name}");
            check_name(&name).map_err(|m| invalid(&key, m))?;
            let format = match s.format.as_str() {
                "parquet" => SourceFormat::Parquet,
                "csv" => SourceFormat::Csv,
                other => {
                    return Err(invalid(
                        &format!("{key}.format"),
                        format!("unknown format '{other}' (expected parquet or csv)"),
                    ));
                }
            };
            let url = resolve_location(&base, &s.url, true).map_err(|m| invalid(&format!("{key}.url"), m))?;
            for c in &s.partition_cols {
                check_name(c).map_err(|m| invalid(&format!("{key}.partition_cols"), m))?;
            }
            sources.push(Source {
                name,
                url,
                format,
                partition_cols: s.partition_cols,
            });
        }

        let mut params = BTreeMap::new();
        for (name, value) in raw.params {
            let key = format!("params.{name}");
            crate::params::check_user_name(&name).map_err(|m| invalid(&key, m))?;
            let value = ParamValue::from_toml(&value).map_err(|m| invalid(&key, m))?;
            params.insert(name, value);
        }

        for (name, rules) in &raw.quality {
            let key = format!("quality.{name}");
            if !sources.iter().any(|s| &s.name == name) {
                return Err(invalid(&key, format!("'{name}' is not a source")));
            }
            let lists = [rules.null_ids.as_ref().map(|r| &r.columns), rules.bad_amounts.as_ref().map(|r| &r.columns)];
            if lists.into_iter().flatten().any(|c| c.is_empty()) {
                return Err(invalid(&key, "a rule's columns list is empty".into()));
            }
        }

        for (key, v) in [("engine.target_partitions", raw.engine.target_partitions), ("engine.batch_size", raw.engine.batch_size)] {
            if v == Some(0) {
                return Err(invalid(key, "must be at least 1".into()));
            }
        }
        if let Some(v) = &raw.engine.memory_limit {
            parse_memory_limit(v).map_err(|m| invalid("engine.memory_limit", m))?;
        }

        let segmentation = raw
            .segmentation
            .map(|s| validate_segmentation(s).map_err(|(k, m)| invalid(&format!("segmentation.{k}"), m)))
            .transpose()?;
        let rfm = match (raw.rfm, &segmentation) {
            (None, _) => {
                if raw.tiers.is_some() {
                    return Err(invalid("tiers", "tiers are computed from the [rfm] view; add an [rfm] section".into()));
                }
                None
            }
            (Some(_), None) => return Err(invalid("rfm", "RFM scores join the segmentation; add a [segmentation] section".into())),
            (Some(r), Some(seg)) => Some(
                validate_rfm(r, raw.tiers.unwrap_or_default(), &seg.id).map_err(|(k, m)| invalid(&k, m))?,
            ),
        };
        let actions = validate_actions(raw.actions).map_err(|(k, m)| invalid(&k, m))?;

        let clv = raw
            .clv
            .map(|c| validate_clv(c).map_err(|(k, m)| invalid(&format!("clv.{k}"), m)))
            .transpose()?;

        if let Some(var) = &raw.privacy.key_env
            && var.trim().is_empty()
        {
            return Err(invalid("privacy.key_env", "must name an environment variable".into()));
        }

        let root = resolve_location(&base, &raw.output.root, true).map_err(|m| invalid("output.root", m))?;
        for v in &raw.output.publish_views {
            check_name(v).map_err(|m| invalid("output.publish_views", m))?;
        }

        Ok(Job {
            name: raw.job.name,
            path: path.to_path_buf(),
            sql_dir: normalize(&base.join(&raw.job.sql_dir)),
            sources,
            params,
            quality: raw.quality,
            engine: raw.engine,
            storage: raw.storage,
            privacy: raw.privacy,
            segmentation,
            rfm,
            actions,
            clv,
            output: OutputSpec {
                root,
                publish_views: raw.output.publish_views,
            },
        })
    }

    /// What the engine needs: its settings and every location the run reads or writes.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            settings: self.engine.clone(),
            storage: self.storage,
            urls: self.sources.iter().map(|s| s.url.clone()).chain(std::iter::once(self.output.root.clone())).collect(),
        }
    }

    /// Replaces `[output] root`, e.g. from `--output-root`. Relative paths resolve against the
    /// current directory, as a user typing them expects.
    pub fn set_output_root(&mut self, root: &str) -> Result<(), JobError> {
        let cwd = absolute(Path::new("."));
        self.output.root = resolve_location(&cwd, root, true).map_err(|message| JobError::Invalid {
            path: PathBuf::from("--output-root"),
            key: "output.root".into(),
            message,
        })?;
        Ok(())
    }
}

fn validate_clv(c: ClvSection) -> Result<ClvSpec, (&'static str, String)> {
    check_name(&c.view).map_err(|m| ("view", m))?;
    let time_unit = match c.time_unit.as_deref().unwrap_or("weeks") {
        "weeks" => TimeUnit::Weeks,
        "days" => TimeUnit::Days,
        other => return Err(("time_unit", format!("unknown time unit '{other}' (expected weeks or days)"))),
    };
    let horizon_months = c.horizon_months.unwrap_or(12);
    if horizon_months == 0 {
        return Err(("horizon_months", "must be at least 1".into()));
    }
    let rate = c.monthly_discount_rate.unwrap_or(0.01);
    if !(rate.is_finite() && rate >= 0.0) {
        return Err(("monthly_discount_rate", format!("must be a finite number >= 0, got {rate}")));
    }
    let margin = c.margin.unwrap_or(1.0);
    if !(margin.is_finite() && margin > 0.0) {
        return Err(("margin", format!("must be a finite number > 0, got {margin}")));
    }
    let penalizer = c.penalizer.unwrap_or(0.0);
    if !(penalizer.is_finite() && penalizer >= 0.0) {
        return Err(("penalizer", format!("must be a finite number >= 0, got {penalizer}")));
    }
    if c.holdout_days == Some(0) {
        return Err(("holdout_days", "must be at least 1".into()));
    }
    if let Some(l) = c.lifetime_periods
        && !(l.is_finite() && l > 0.0)
    {
        return Err(("lifetime_periods", format!("must be a finite number > 0, got {l}")));
    }
    let (mode, model_from) = crate::model_mode::parse_model_mode(c.mode.as_deref(), c.model_from.as_deref())
        .map_err(|(k, m)| (if k == "mode" { "mode" } else { "model_from" }, m))?;
    Ok(ClvSpec {
        view: c.view,
        id: c.id,
        time_unit,
        horizon_months,
        monthly_discount_rate: rate,
        margin,
        holdout_days: c.holdout_days,
        penalizer,
        lifetime_periods: c.lifetime_periods,
        mode,
        model_from,
    })
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Parses a `YYYY-MM-DD` run date with an error that quotes the bad value.
pub fn parse_run_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| format!("run date '{s}' is not a valid YYYY-MM-DD date: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[job]
name = "t"
sql_dir = "sql"
[output]
root = "out"
"#;

    fn parse(text: &str) -> Result<Job, JobError> {
        Job::parse(Path::new("/jobs/t.toml"), text)
    }

    #[test]
    fn relative_paths_resolve_against_the_job_file() {
        let job = parse(MINIMAL).unwrap();
        assert_eq!(job.sql_dir, PathBuf::from("/jobs/sql"));
        assert_eq!(job.output.root.as_str(), "file:///jobs/out/");
    }

    #[test]
    fn unknown_key_is_named() {
        let err = parse(&format!("{MINIMAL}\n[segmentation]\nview='v'\nid='c'\nfeatures=['a']\nkk=3\n"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/jobs/t.toml:12: unknown field `kk`"), "{err}");
    }

    #[test]
    fn k_range_must_be_ordered() {
        let err = parse(&format!("{MINIMAL}\n[segmentation]\nview='v'\nid='c'\nfeatures=['a']\nk={{min=5,max=3}}\n"))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "/jobs/t.toml: segmentation.k: max (3) must not be below min (5)");
    }

    #[test]
    fn rfm_segments_must_cover_every_cell() {
        let seg = "[segmentation]\nview='v'\nid='c'\nfeatures=['a']\n";
        let rfm = "[rfm]\nview='r'\n[[rfm.segments]]\nname='Top'\nr='4-5'\nf='1-5'\n";
        let err = parse(&format!("{MINIMAL}\n{seg}{rfm}")).unwrap_err().to_string();
        assert_eq!(err, "/jobs/t.toml: rfm.segments: cell 1-1-1 (r=1, f=1, m=1) matches no segment");
        let ok = parse(&format!("{MINIMAL}\n{seg}{rfm}[[rfm.segments]]\nname='Rest'\nr='1-3'\nf='1-5'\n")).unwrap();
        assert_eq!(ok.rfm.unwrap().rules.len(), 2);
    }

    #[test]
    fn rfm_needs_a_segmentation() {
        let err = parse(&format!("{MINIMAL}\n[rfm]\nview='r'\n")).unwrap_err().to_string();
        assert_eq!(err, "/jobs/t.toml: rfm: RFM scores join the segmentation; add a [segmentation] section");
    }

    #[test]
    fn s3_urls_keep_their_bucket_and_gain_a_slash() {
        let u = resolve_location(Path::new("/x"), "s3://bucket/raw/orders", true).unwrap();
        assert_eq!(u.as_str(), "s3://bucket/raw/orders/");
    }

    #[test]
    fn credentials_in_urls_are_refused_without_echoing_them() {
        let err = resolve_location(Path::new("/x"), "s3://AKIA:secret@bucket/x", true).unwrap_err();
        assert!(!err.contains("secret") && !err.contains("AKIA"), "{err}");
    }

    #[test]
    fn run_date_error_quotes_the_value() {
        assert!(parse_run_date("2025-13-01").unwrap_err().starts_with("run date '2025-13-01'"));
    }
}
