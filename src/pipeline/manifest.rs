//! The run manifest (`_manifests/run_date=D/manifest.json`) and every report it holds: stage
//! timings, input hashes, and what the segmentation and CLV stages found.
//!
//! Only types and the input hashing live here, so every stage can fill its part of the
//! manifest without importing another stage.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::NaiveDate;
use serde::Serialize;

use super::session::Session;
use crate::publish::TableReport;
use crate::quality::RuleCount;
use crate::segment::drift::{FeatureDrift, ShareChange};

/// `<root>/_manifests/run_date=D/manifest.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub run_id: String,
    pub job: String,
    pub run_date: NaiveDate,
    pub segvalue_version: &'static str,
    pub engine: String,
    pub started_at: String,
    pub finished_at: String,
    pub output_root: String,
    pub params: BTreeMap<String, String>,
    pub inputs: Inputs,
    /// Rows matched by each data-quality rule (dropped or, for `error` rules, zero).
    pub quality: Vec<RuleCount>,
    pub tables: Vec<TableReport>,
    pub stages: Vec<StageReport>,
    pub segmentation: Option<SegmentationReport>,
    pub clv: Option<ClvReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClvReport {
    pub view: String,
    pub customers: usize,
    pub time_unit: String,
    /// The purchase model, "bgnbd", "mbgnbd", "pareto_nbd" or "bgbb"; `bgnbd` holds its fit.
    pub model: &'static str,
    pub bgnbd: ModelReport,
    pub gamma_gamma: ModelReport,
    pub frequency_monetary_corr: f64,
    /// The expected lifetime `clv_simple` used, in `time_unit`.
    pub lifetime_periods: f64,
    pub holdout: Option<HoldoutReport>,
    /// `model = "auto"`: the backtest that chose `model`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selection: Option<SelectionReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SelectionReport {
    pub chosen: &'static str,
    pub cutoffs: Vec<NaiveDate>,
    /// Per candidate, its mean holdout MAE over the cut-offs (the choice's first criterion).
    pub mean_mae: BTreeMap<&'static str, f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelReport {
    pub params: BTreeMap<String, f64>,
    /// The purchase model's standard errors (Laplace approximation, delta method); absent for
    /// Gamma-Gamma and when the Hessian at the fit is not positive definite.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub std_errors: Option<BTreeMap<String, f64>>,
    pub log_likelihood: f64,
    pub iterations: u64,
    /// Customers the model was fitted on.
    pub customers: usize,
    /// When they were a seeded sample (Gamma-Gamma above `[clv] fit_sample` repeat
    /// buyers), how many there were to sample from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampled_from: Option<u64>,
    /// Set when the job's penalizer gave no fit: the penalizer the parameters were fitted
    /// with, and why the first fit failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<FallbackReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FallbackReport {
    pub penalizer: f64,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HoldoutReport {
    pub days: u32,
    pub calibration_end: NaiveDate,
    pub customers: usize,
    pub mae: f64,
    pub total_actual: f64,
    pub total_predicted: f64,
    /// Share of the holdout's customers whose purchases lie in their 80 % interval
    /// [purchases_p10, purchases_p90] (at least 0.8 for counts when calibrated).
    pub interval_coverage: f64,
    /// Expected share whose randomised PIT lies in [0.1, 0.9]: 0.8 when calibrated
    /// (`clv::predictive`).
    pub pit_coverage: f64,
}

/// Seconds and row counts of one stage, for logs and the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    pub stage: String,
    pub seconds: f64,
    pub rows_in: Option<u64>,
    pub rows_out: Option<u64>,
}

/// The stage reports of a run so far, each also logged as `stage done` (the progress display
/// follows these events).
pub(super) struct Stages(pub(super) Vec<StageReport>);

impl Stages {
    pub(super) fn record(&mut self, stage: &str, started: Instant, rows_in: Option<u64>, rows_out: Option<u64>) {
        self.push(stage, started.elapsed().as_secs_f64(), rows_in, rows_out);
    }

    pub(super) fn push(&mut self, stage: &str, seconds: f64, rows_in: Option<u64>, rows_out: Option<u64>) {
        let seconds = crate::text::millis(seconds);
        tracing::info!(stage, seconds, rows_in, rows_out, "stage done");
        self.0.push(StageReport {
            stage: stage.to_string(),
            seconds,
            rows_in,
            rows_out,
        });
    }
}

/// What the run read, by content hash, so a run can be tied to the exact job and SQL.
#[derive(Debug, Clone, Serialize)]
pub struct Inputs {
    pub job_file: String,
    pub job_sha256: String,
    /// SQL file name → SHA-256 of its content.
    pub sql_sha256: BTreeMap<String, String>,
}

fn sha256_file(path: &std::path::Path) -> String {
    use sha2::{Digest, Sha256};
    match std::fs::read(path) {
        Ok(bytes) => hex::encode(Sha256::digest(&bytes)),
        Err(_) => String::new(),
    }
}

pub(super) fn inputs(s: &Session) -> Inputs {
    Inputs {
        job_file: s.job.path.display().to_string(),
        job_sha256: sha256_file(&s.job.path),
        sql_sha256: s
            .views
            .iter()
            .map(|v| (v.path.file_name().unwrap_or_default().to_string_lossy().into_owned(), sha256_file(&v.path)))
            .collect(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SegmentationReport {
    pub view: String,
    pub customers: usize,
    pub features: Vec<String>,
    pub categorical: Vec<String>,
    pub algorithm: String,
    pub k: usize,
    /// The rule that chose k (`select`) and the chosen k's silhouette and bootstrap stability.
    pub select: String,
    pub silhouette: f64,
    pub stability: f64,
    /// Inertia of the chosen k as `segmentation_k_selection` reports it (on the fit sample).
    pub inertia: f64,
    /// Rows the clustering was fitted on: `fit_sample` rows when there are more customers,
    /// else every customer (0 for a score run).
    pub fit_rows: usize,
    pub iterations: u64,
    /// Empty K-means clusters re-seeded with far rows (scikit-learn's rule) in the chosen fit.
    pub empty_clusters_relocated: usize,
    /// NULLs filled by imputation, per feature.
    pub nulls_filled: BTreeMap<String, usize>,
    /// The fitted preparation, also published as `segmentation_prep`.
    pub preparation: Vec<PrepReport>,
    /// Centroids in prepared units before scaling, row = segment id, columns as `preparation`.
    pub centroids: Vec<Vec<f64>>,
    pub rfm: Option<RfmReport>,
    /// Score run, or refit aligned with the previous model (ids matched, fresh, vanished).
    pub model: Option<ModelUse>,
    /// Drift of the features against the model's training data (when there is a model).
    pub drift: Option<DriftReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PrepReport {
    pub column: String,
    pub fill_value: Option<f64>,
    pub clip: Option<[f64; 2]>,
    pub log1p: bool,
    pub center: f64,
    pub scale: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RfmReport {
    pub view: String,
    pub customers: usize,
    /// Value-tier cut-offs on `value_column`.
    pub value_high_from: f64,
    pub value_low_below: f64,
    pub lifecycle: BTreeMap<String, usize>,
}

/// How this run's segmentation relates to saved models; recorded in the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct ModelUse {
    pub mode: &'static str,
    /// Score runs: the saved model used. Refits: the previous model ids were aligned with.
    pub model_run_date: Option<NaiveDate>,
    /// Ids kept from that model, ids new in this run, and its ids no cluster matched.
    pub matched: Vec<i32>,
    pub fresh: Vec<i32>,
    pub vanished: Vec<i32>,
}

/// Feature drift against a model's training data and segment share changes; in the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct DriftReport {
    /// The run date whose data trained the reference model.
    pub against_trained_on: NaiveDate,
    pub warn_psi: f64,
    pub features: Vec<FeatureDrift>,
    pub share_changes: Vec<ShareChange>,
}
