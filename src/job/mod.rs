//! Job files: raw TOML → validated [`Job`], one file per section.
//!
//! 1. [`file`] parses the text into raw structs that mirror the file and reject unknown keys
//!    (errors name the line).
//! 2. Each section's file checks its values and builds the domain type the pipeline uses:
//!    [`sources`], [`params`], [`quality`], [`engine`], [`segmentation`] (the
//!    `segment::spec` types), [`rfm`] (`[rfm]`, `[tiers]`, `[actions]`), [`clv`],
//!    [`privacy`], [`output`]. Errors name the key ([`error`]).
//! 3. [`Job::load`] resolves paths relative to the job file and returns a `Job` that the rest
//!    of the pipeline can trust. Nothing downstream re-validates the file.

mod clv;
mod engine;
mod error;
mod file;
mod model_mode;
mod output;
mod params;
mod privacy;
mod quality;
mod rfm;
mod segmentation;
mod sources;
mod value;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::clv::ClvSpec;
use crate::engine::{EngineConfig, EngineSection, StorageSection};
use crate::location::{absolute, normalize, resolve_location};
use crate::params::ParamValue;
use crate::privacy::PrivacySpec;
use crate::quality::SourceRules;
use crate::segment::spec::{ActionsSpec, RfmSpec, SegmentationSpec};

pub use error::JobError;
pub use output::OutputSpec;
pub use sources::{Source, SourceFormat};

use error::{At, Invalid};
use file::JobFile;
use value::Name;

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
        let raw = JobFile::parse(path, text)?;
        let base = absolute(path.parent().unwrap_or(Path::new(".")));
        validate(path, &base, raw).map_err(|e| e.in_file(path))
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
        self.output.root = resolve_location(&cwd, root, true).at("output.root").map_err(|e| e.in_file(Path::new("--output-root")))?;
        Ok(())
    }
}

/// Checks the sections in file order (the first bad key is the one reported).
fn validate(path: &Path, base: &Path, raw: JobFile) -> Result<Job, Invalid> {
    let name = Name::new(raw.job.name).at("job.name")?.into_string();
    let sources = sources::validate_sources(base, raw.sources)?;
    let params = params::validate_params(raw.params)?;
    quality::check_quality(&raw.quality, &sources)?;
    engine::check_engine(&raw.engine)?;
    let segmentation = raw.segmentation.map(segmentation::validate_segmentation).transpose()?;
    let rfm = rfm::validate_rfm_and_tiers(raw.rfm, raw.tiers, segmentation.as_ref())?;
    let actions = rfm::validate_actions(raw.actions)?;
    let clv = raw.clv.map(clv::validate_clv).transpose()?;
    privacy::check_privacy(&raw.privacy)?;
    let output = output::validate_output(base, raw.output)?;
    Ok(Job {
        name,
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
        output,
    })
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
    fn a_toml_syntax_error_names_its_line() {
        let err = parse("[job]\nname = 't'\nsql_dir = 'sql'\n[output]\nroot = \"out\n").unwrap_err().to_string();
        assert!(err.starts_with("/jobs/t.toml:5: "), "{err}");
    }

    #[test]
    fn unknown_words_list_the_choices() {
        let src = "[sources.s]\nurl = 'x'\nformat = 'json'\n";
        let err = parse(&format!("{MINIMAL}\n{src}")).unwrap_err().to_string();
        assert_eq!(err, "/jobs/t.toml: sources.s.format: unknown format 'json' (expected parquet or csv)");
        let seg = "[segmentation]\nview='v'\nid='c'\nfeatures=['a']\n";
        let err = parse(&format!("{MINIMAL}\n{seg}algorithm='x'\n")).unwrap_err().to_string();
        assert_eq!(
            err,
            "/jobs/t.toml: segmentation.algorithm: unknown algorithm 'x' (expected kmeans, minibatch_kmeans, dbscan, gmm or hierarchical)"
        );
        let err = parse(&format!("{MINIMAL}\n{seg}mode='x'\n")).unwrap_err().to_string();
        assert_eq!(err, "/jobs/t.toml: segmentation.mode: unknown mode 'x' (expected refit or score)");
        let err = parse(&format!("{MINIMAL}\n[clv]\nview='v'\nid='c'\ntime_unit='x'\n")).unwrap_err().to_string();
        assert_eq!(err, "/jobs/t.toml: clv.time_unit: unknown time unit 'x' (expected weeks, days or periods)");
        let err = parse(&format!("{MINIMAL}\n[clv]\nview='v'\nid='c'\nmodel='pareto'\n")).unwrap_err().to_string();
        assert_eq!(err, "/jobs/t.toml: clv.model: unknown model 'pareto' (expected bgnbd, mbgnbd, pareto_nbd, bgbb or auto)");
        let clv = |extra: &str| parse(&format!("{MINIMAL}\n[clv]\nview='v'\nid='c'\n{extra}\n"));
        let err = clv("model='bgbb'").unwrap_err().to_string();
        assert_eq!(err, "/jobs/t.toml: clv.model: bgbb counts purchase opportunities in whole periods: set time_unit = \"periods\" and period_days");
        let err = clv("model='bgbb'\ntime_unit='periods'").unwrap_err().to_string();
        assert_eq!(err, "/jobs/t.toml: clv.period_days: time_unit = \"periods\" needs the days in one period, e.g. 7, 30 or 365");
        let err = clv("period_days=7").unwrap_err().to_string();
        assert_eq!(err, "/jobs/t.toml: clv.period_days: only applies to time_unit = \"periods\"");
        let err = clv("time_unit='periods'\nperiod_days=30\nholdout_days=45").unwrap_err().to_string();
        assert_eq!(err, "/jobs/t.toml: clv.holdout_days: must be a whole number of periods (a multiple of period_days 30), got 45");
        let spec = clv("model='bgbb'\ntime_unit='periods'\nperiod_days=30\nholdout_days=90").unwrap().clv.unwrap();
        assert_eq!((spec.model, spec.time_unit, spec.time_unit.to_string()), (crate::clv::PurchaseModel::BgBb, crate::clv::TimeUnit::Periods(30), "periods of 30 days".to_string()));
        let err = clv("model='auto'").unwrap_err().to_string();
        assert_eq!(err, "/jobs/t.toml: clv.model: \"auto\" chooses by backtest over holdout periods: set holdout_days");
        let err = clv("model='auto'\nholdout_days=30\nmode='score'").unwrap_err().to_string();
        assert_eq!(err, "/jobs/t.toml: clv.model: \"auto\" chooses when fitting: it needs mode = \"refit\"");
        assert!(clv("model='auto'\nholdout_days=30").unwrap().clv.unwrap().auto);
        // Covariates: one list per rate; not for BG/BB or the backtest; a column once per rate.
        let spec = clv("covariates=['web']\npurchase_covariates=['age']\ndropout_covariates=['app']").unwrap().clv.unwrap();
        assert_eq!((spec.covariates.purchase, spec.covariates.dropout), (vec!["web".to_string(), "age".into()], vec!["web".to_string(), "app".into()]));
        let err = clv("model='bgbb'\ntime_unit='periods'\nperiod_days=30\ndropout_covariates=['web']").unwrap_err().to_string();
        assert_eq!(err, "/jobs/t.toml: clv.dropout_covariates: bgbb takes no covariates: use model bgnbd, mbgnbd or pareto_nbd");
        let err = clv("model='auto'\nholdout_days=30\ncovariates=['web']").unwrap_err().to_string();
        assert_eq!(err, "/jobs/t.toml: clv.covariates: model = \"auto\" compares the models without covariates: name the model (bgnbd, mbgnbd or pareto_nbd)");
        let err = clv("covariates=['web']\npurchase_covariates=['web']").unwrap_err().to_string();
        assert_eq!(err, "/jobs/t.toml: clv.purchase_covariates: 'web' is named twice for one rate");
        let err = clv("covariates=[' ']").unwrap_err().to_string();
        assert_eq!(err, "/jobs/t.toml: clv.covariates: a covariate name is empty");
        let err = clv("tracking = { view = 'orders', date = 'day' }").unwrap_err().to_string();
        assert_eq!(err, "/jobs/t.toml: clv.tracking: tracks the holdout period: set holdout_days");
        let spec = clv("holdout_days=30\ntracking = { view = 'orders', date = 'day' }").unwrap().clv.unwrap();
        assert_eq!(spec.tracking, Some(crate::clv::Tracking { view: "orders".into(), date: "day".into() }));
        assert_eq!(parse(&format!("{MINIMAL}\n[clv]\nview='v'\nid='c'\nmodel='mbgnbd'\n")).unwrap().clv.unwrap().model, crate::clv::PurchaseModel::MbgNbd);
        let err = parse(&format!("{MINIMAL}\n[clv]\nview='v'\nid='c'\nmodel_from='2025-01-01'\n")).unwrap_err().to_string();
        assert_eq!(err, "/jobs/t.toml: clv.model_from: only applies to mode = \"score\"");
        let err = parse(&format!("{MINIMAL}\n[clv]\nview='v'\nid='c'\nfit_sample=0\n")).unwrap_err().to_string();
        assert!(err.starts_with("/jobs/t.toml: clv.fit_sample: "), "{err}");
        assert_eq!(parse(&format!("{MINIMAL}\n[clv]\nview='v'\nid='c'\n")).unwrap().clv.unwrap().fit_sample, 5_000_000);
    }

    #[test]
    fn actions_take_texts_economics_and_a_margin_and_name_a_bad_value() {
        use crate::segment::rfm::{ActionKey, Economics, default_economics};
        let ok = "[actions]\nmargin = 0.25\nat_risk = 'call them'\n\"Can't lose them\" = 'account manager'\n\
                  [actions.champions]\ncost = 4\nresponse = 0.3\n[actions.silent]\nresponse = 0.1\ntext = 'nudge'\n";
        let a = parse(&format!("{MINIMAL}\n{ok}")).unwrap().actions;
        assert_eq!(a.margin, Some(0.25));
        assert_eq!(a.text(ActionKey::AtRisk), "call them");
        assert_eq!(a.text(ActionKey::Silent), "nudge");
        assert_eq!(a.action("Can't lose them", Some(ActionKey::AtRisk)).as_deref(), Some("account manager"));
        assert_eq!(a.economics(ActionKey::Champions), Economics { cost: 4.0, response: 0.3 });
        // A key that sets only one of the two keeps the shipped other.
        assert_eq!(a.economics(ActionKey::Silent), Economics { cost: default_economics(ActionKey::Silent).cost, response: 0.1 });
        assert_eq!(a.economics(ActionKey::Loyal), default_economics(ActionKey::Loyal));
        for (bad, key) in [
            ("margin = 0", "actions.margin"),
            ("margin = 1.5", "actions.margin"),
            ("margin = 'high'", "actions.margin"),
            ("champions = 3", "actions.champions"),
            ("champions = ''", "actions.champions"),
            ("champions = { cost = -1 }", "actions.champions.cost"),
            ("champions = { cost = nan }", "actions.champions.cost"),
            ("champions = { response = 1.2 }", "actions.champions.response"),
            ("champions = { text = 5 }", "actions.champions.text"),
            ("champions = { costs = 1 }", "actions.champions.costs"),
            ("'Big spenders' = { cost = 1 }", "actions.Big spenders.cost"),
        ] {
            let err = parse(&format!("{MINIMAL}\n[actions]\n{bad}\n")).unwrap_err().to_string();
            assert!(err.starts_with(&format!("/jobs/t.toml: {key}: ")), "{bad}: {err}");
        }
    }

    #[test]
    fn fit_sample_must_hold_the_largest_k_and_not_be_set_for_dbscan() {
        let seg = "[segmentation]\nview='v'\nid='c'\nfeatures=['a']\n";
        let err = parse(&format!("{MINIMAL}\n{seg}k={{min=2,max=8}}\nfit_sample=5\n")).unwrap_err().to_string();
        assert_eq!(err, "/jobs/t.toml: segmentation.fit_sample: must be at least the largest k (8), got 5");
        let err = parse(&format!("{MINIMAL}\n{seg}algorithm='dbscan'\neps=0.5\nfit_sample=5000\n")).unwrap_err().to_string();
        assert_eq!(err, "/jobs/t.toml: segmentation.fit_sample: does not apply to algorithm 'dbscan'");
        let job = parse(&format!("{MINIMAL}\n{seg}")).unwrap();
        assert_eq!(job.segmentation.unwrap().fit_sample, 1_000_000);
    }

    #[test]
    fn select_keys_choose_among_a_range_of_k() {
        use crate::segment::spec::{KSelect, SelectRule};
        let seg = "[segmentation]\nview='v'\nid='c'\nfeatures=['a']\n";
        let select = |extra: &str| parse(&format!("{MINIMAL}\n{seg}{extra}")).map(|j| j.segmentation.unwrap().select).map_err(|e| e.to_string());
        assert_eq!(select("").unwrap(), KSelect::default());
        let s = select("select='stability'\nmin_stability=0.8\nmin_segment_share=0.05\nstability_resamples=20\n").unwrap();
        assert_eq!(s, KSelect { rule: SelectRule::Stability, min_stability: Some(0.8), min_segment_share: 0.05, stability_resamples: 20 });
        for (extra, want) in [
            ("select='gap'\n", "segmentation.select: "),
            ("min_segment_share=0.5\n", "segmentation.min_segment_share: must be at least 0 and below 0.5, got 0.5"),
            ("min_stability=1.5\n", "segmentation.min_stability: must be between -0.5 and 1"),
            ("stability_resamples=1\n", "segmentation.stability_resamples: must be from 2 to 1000, got 1"),
            ("k=4\nselect='silhouette'\n", "segmentation.select: applies only when k is a range"),
            ("algorithm='dbscan'\neps=0.5\nmin_segment_share=0.1\n", "segmentation.min_segment_share: does not apply to algorithm 'dbscan'"),
        ] {
            let err = select(extra).unwrap_err();
            assert!(err.starts_with(&format!("/jobs/t.toml: {want}")), "{extra}: {err}");
        }
    }

    #[test]
    fn hierarchical_fits_a_bounded_sample() {
        let seg = "[segmentation]\nview='v'\nid='c'\nfeatures=['a']\nalgorithm='hierarchical'\n";
        assert_eq!(parse(&format!("{MINIMAL}\n{seg}")).unwrap().segmentation.unwrap().fit_sample, 5_000);
        let err = parse(&format!("{MINIMAL}\n{seg}fit_sample=1000000\n")).unwrap_err().to_string();
        assert!(err.starts_with("/jobs/t.toml: segmentation.fit_sample: the Ward linkage holds every pairwise distance, so at most 20000 rows"), "{err}");
        assert!(parse(&format!("{MINIMAL}\n{seg}mode='score'\n")).is_ok());
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
