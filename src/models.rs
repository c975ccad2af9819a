//! Saved models: every run's fitted artefacts at `<root>/_models/run_date=D/model.json`, so
//! later runs can score with them (`mode = "score"`), keep segment ids stable and measure
//! drift. Plain, versioned JSON (format `segvalue-model/1`, documented in the README).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::clv::{Coefficient, Effects, GammaGammaParams, PurchaseModel, PurchaseParams};
use crate::segment::FittedModel;
use crate::segment::prep::PrepColumn;

pub const FORMAT: &str = "segvalue-model/1";
pub const DIR: &str = "_models";
pub const FILE: &str = "model.json";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{what}: no saved model under {root}/{DIR}/ {when}; run with mode = \"refit\" first")]
    Missing { what: &'static str, root: String, when: String },
    #[error("{what}: the saved model of {date} does not fit this job: {message}")]
    Incompatible { what: &'static str, date: NaiveDate, message: String },
    #[error("{location}: unreadable saved model: {message}")]
    Unreadable { location: String, message: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedModel {
    pub format: String,
    pub job: String,
    /// The run that wrote this file.
    pub run_date: NaiveDate,
    pub run_id: String,
    pub segmentation: Option<SavedSegmentation>,
    pub clv: Option<SavedClv>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedSegmentation {
    /// The run date whose data fitted the model (earlier than `run_date` after score runs).
    pub trained_on: NaiveDate,
    pub view: String,
    pub features: Vec<String>,
    pub categorical: Vec<String>,
    pub algorithm: String,
    /// Every prepared column, in matrix order: z = (step(x) − center) / scale.
    pub preparation: Vec<SavedPrep>,
    pub segments: Vec<SavedSegment>,
    /// Per numeric feature, the training data's decile bins, for drift (PSI).
    pub drift_reference: Vec<DriftReference>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPrep {
    pub column: String,
    pub source: String,
    pub category: Option<String>,
    pub impute: String,
    pub fill_value: Option<f64>,
    pub log1p: bool,
    pub clip_lower: Option<f64>,
    pub clip_upper: Option<f64>,
    pub center: f64,
    pub scale: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedSegment {
    pub id: i32,
    pub name: String,
    pub customers: usize,
    pub action: Option<String>,
    /// In the prepared space, one value per `preparation` column.
    pub centroid: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DriftReference {
    pub feature: String,
    /// Interior bin edges (training deciles, duplicates merged).
    pub edges: Vec<f64>,
    /// Share of the training rows in each of the `edges.len() + 1` bins.
    pub shares: Vec<f64>,
    /// Training rows where the feature was NULL (left out of the shares).
    #[serde(default)]
    pub missing: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedClv {
    pub trained_on: NaiveDate,
    pub time_unit: String,
    /// The purchase model `bgnbd` holds the parameters of, named as in `clv_model`: "bgnbd"
    /// (models saved before there was a choice), "mbgnbd" or "pareto_nbd". The key `bgnbd`
    /// stays for every model, so models saved before keep loading.
    #[serde(default = "bgnbd")]
    pub model: String,
    pub bgnbd: BTreeMap<String, f64>,
    pub gamma_gamma: BTreeMap<String, f64>,
    /// The purchase model's Laplace covariance of its log-parameters, for score runs'
    /// intervals (absent in models saved before there were intervals).
    #[serde(default)]
    pub log_covariance: Option<[[f64; 4]; 4]>,
    /// With covariates: the coefficients' names (as `clv_model` names them, their values in
    /// `bgnbd`) in the order of the rows and columns of `covariate_covariance`, the Laplace
    /// covariance of the log-parameters then the coefficients, 4 + K square.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coefficients: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covariate_covariance: Option<Vec<Vec<f64>>>,
}

impl SavedPrep {
    pub fn from_column(c: &PrepColumn) -> SavedPrep {
        SavedPrep {
            column: c.column.clone(),
            source: c.source.clone(),
            category: c.category.clone(),
            impute: c.impute.to_string(),
            fill_value: c.fill_value,
            log1p: c.log1p,
            clip_lower: c.clip_lower,
            clip_upper: c.clip_upper,
            center: c.center,
            scale: c.scale,
        }
    }

    fn to_column(&self) -> PrepColumn {
        PrepColumn {
            column: self.column.clone(),
            source: self.source.clone(),
            category: self.category.clone(),
            impute: match self.impute.as_str() {
                "mean" => "mean",
                "median" => "median",
                "constant" => "constant",
                _ => "none",
            },
            fill_value: self.fill_value,
            nulls_filled: 0,
            log1p: self.log1p,
            clip_lower: self.clip_lower,
            clip_upper: self.clip_upper,
            center: self.center,
            scale: self.scale,
        }
    }
}

impl SavedSegmentation {
    pub fn prep_columns(&self) -> Vec<PrepColumn> {
        self.preparation.iter().map(SavedPrep::to_column).collect()
    }

    /// The model for [`crate::segment::score`], after checking it was fitted on `features`.
    pub fn fitted(&self, date: NaiveDate, features: &[String], categorical: &[String]) -> Result<FittedModel, ModelError> {
        let incompatible = |message: String| ModelError::Incompatible { what: "segmentation", date, message };
        if self.features != features || self.categorical != categorical {
            return Err(incompatible(format!(
                "it was fitted on features [{}] (categorical [{}]), the job has [{}] ([{}])",
                self.features.join(", "),
                self.categorical.join(", "),
                features.join(", "),
                categorical.join(", ")
            )));
        }
        let p = self.preparation.len();
        if self.segments.is_empty() || self.segments.iter().any(|s| s.centroid.len() != p) {
            return Err(incompatible(format!("its centroids do not have the {p} prepared columns")));
        }
        let flat: Vec<f64> = self.segments.iter().flat_map(|s| s.centroid.iter().copied()).collect();
        Ok(FittedModel {
            columns: self.prep_columns(),
            centroids: Array2::from_shape_vec((self.segments.len(), p), flat).expect("k × p values"),
            ids: self.segments.iter().map(|s| s.id).collect(),
            names: self.segments.iter().map(|s| s.name.clone()).collect(),
        })
    }

    /// This model's centroids moved into the prepared space of `columns` (another fit of the
    /// same features): back to pre-scaling units with the saved center and scale, then scaled
    /// with the new ones. `None` when the prepared columns differ.
    pub fn centroids_in(&self, columns: &[PrepColumn]) -> Option<Vec<Vec<f64>>> {
        let same = self.preparation.len() == columns.len()
            && self.preparation.iter().zip(columns).all(|(a, b)| a.column == b.column && a.log1p == b.log1p);
        same.then(|| {
            self.segments
                .iter()
                .map(|s| {
                    s.centroid
                        .iter()
                        .zip(self.preparation.iter().zip(columns))
                        .map(|(z, (old, new))| (z * old.scale + old.center - new.center) / new.scale)
                        .collect()
                })
                .collect()
        })
    }
}

fn bgnbd() -> String {
    PurchaseModel::BgNbd.as_str().to_string()
}

impl SavedClv {
    /// The saved parameters, and the covariates' effects when the job has covariates (its
    /// `coefficients`, their values read by name). A saved model must have exactly the job's
    /// coefficients: scoring without one would value its customers as if it were 0.
    pub fn params(&self, date: NaiveDate, time_unit: &str, model: PurchaseModel, coefficients: &[Coefficient]) -> Result<(PurchaseParams, GammaGammaParams, Option<Effects>), ModelError> {
        let incompatible = |message: String| ModelError::Incompatible { what: "clv", date, message };
        if self.time_unit != time_unit {
            return Err(incompatible(format!("it was fitted in {}, the job uses {time_unit}", self.time_unit)));
        }
        if self.model != model.as_str() {
            return Err(incompatible(format!("it is a {} model, the job uses {}", self.model, model.as_str())));
        }
        let get = |m: &BTreeMap<String, f64>, k: &str| {
            m.get(k).copied().filter(|v| v.is_finite() && *v > 0.0).ok_or_else(|| incompatible(format!("parameter {k} is missing")))
        };
        let mut values = [0.0; 4];
        for (v, name) in values.iter_mut().zip(model.parameters()) {
            *v = get(&self.bgnbd, name)?;
        }
        let b = PurchaseParams::new(model, values);
        let g = GammaGammaParams {
            p: get(&self.gamma_gamma, "p")?,
            q: get(&self.gamma_gamma, "q")?,
            gamma: get(&self.gamma_gamma, "gamma")?,
        };
        let is_coefficient = |k: &&String| !model.parameters().contains(&k.as_str());
        if let Some(extra) = self.bgnbd.keys().filter(is_coefficient).find(|k| !coefficients.iter().any(|c| &c.name == *k)) {
            return Err(incompatible(format!("it has the covariate coefficient {extra}, which the job's covariates do not")));
        }
        if coefficients.is_empty() {
            return Ok((b, g, None));
        }
        let mut fitted = Vec::with_capacity(coefficients.len());
        for c in coefficients {
            let value = self.bgnbd.get(&c.name).copied().filter(|v| v.is_finite()).ok_or_else(|| incompatible(format!("it has no covariate coefficient {}", c.name)))?;
            fitted.push(Coefficient { value, ..c.clone() });
        }
        // The saved rows in the job's order (the job may list its covariates in another).
        let dim = 4 + coefficients.len();
        let at: Option<Vec<usize>> = (0..dim).map(|i| if i < 4 { Some(i) } else { self.coefficients.iter().position(|n| *n == coefficients[i - 4].name).map(|k| 4 + k) }).collect();
        let covariance = match (&self.covariate_covariance, at) {
            (Some(rows), Some(at)) if rows.len() == dim && rows.iter().all(|r| r.len() == dim) => Some(Array2::from_shape_fn((dim, dim), |(i, j)| rows[at[i]][at[j]])),
            _ => None,
        };
        Ok((b, g, Some(Effects { coefficients: fitted, covariance })))
    }
}

/// The bins of one training column for later PSI: deciles and the share in each bin.
pub fn drift_reference(feature: &str, training: &[f64]) -> DriftReference {
    let edges = crate::segment::drift::bin_edges(training, 10);
    let shares = crate::segment::drift::bin_shares(&edges, training);
    DriftReference {
        feature: feature.to_string(),
        edges,
        shares,
        missing: training.iter().filter(|v| v.is_nan()).count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prep(column: &str, center: f64, scale: f64) -> SavedPrep {
        SavedPrep {
            column: column.into(),
            source: column.into(),
            category: None,
            impute: "none".into(),
            fill_value: None,
            log1p: false,
            clip_lower: None,
            clip_upper: None,
            center,
            scale,
        }
    }

    #[test]
    fn a_saved_clv_model_names_its_purchase_model_and_older_files_read_as_bgnbd() {
        let old = r#"{"trained_on": "2025-01-01", "time_unit": "weeks", "bgnbd": {"r": 0.2, "alpha": 4.0, "a": 0.8, "b": 2.4},
                     "gamma_gamma": {"p": 6.0, "q": 3.9, "gamma": 15.0}}"#;
        let saved: SavedClv = serde_json::from_str(old).unwrap();
        let date = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        let (b, _, effects) = saved.params(date, "weeks", PurchaseModel::BgNbd, &[]).unwrap();
        assert_eq!((b.values()[0], b.model(), effects), (0.2, PurchaseModel::BgNbd, None));
        let err = saved.params(date, "weeks", PurchaseModel::MbgNbd, &[]).unwrap_err().to_string();
        assert!(err.contains("it is a bgnbd model, the job uses mbgnbd"), "{err}");
        let mbg = SavedClv { model: "mbgnbd".into(), ..saved };
        assert_eq!(mbg.params(date, "weeks", PurchaseModel::MbgNbd, &[]).unwrap().0.model(), PurchaseModel::MbgNbd);
    }

    /// A model saved with covariates scores only jobs with the same coefficients; their
    /// covariance rows follow the job's order, whatever order the model saved them in.
    #[test]
    fn a_saved_model_with_covariates_needs_the_same_coefficients() {
        use crate::clv::{CovariateSpec, coefficients};
        let mut saved: SavedClv = serde_json::from_str(
            r#"{"trained_on": "2025-01-01", "time_unit": "weeks", "bgnbd": {"r": 0.2, "alpha": 4.0, "a": 0.8, "b": 2.4,
                "purchase_coefficient_alpha[web]": 0.5, "purchase_coefficient_alpha[app]": -0.25},
                "gamma_gamma": {"p": 6.0, "q": 3.9, "gamma": 15.0}, "coefficients": ["purchase_coefficient_alpha[web]", "purchase_coefficient_alpha[app]"]}"#,
        )
        .unwrap();
        // The joint covariance: entry (i, j) = 10 i + j, in the saved order.
        saved.covariate_covariance = Some((0..6).map(|i| (0..6).map(|j| (10 * i + j) as f64).collect()).collect());
        let date = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        let err = saved.params(date, "weeks", PurchaseModel::BgNbd, &[]).unwrap_err().to_string();
        assert!(err.contains("it has the covariate coefficient purchase_coefficient_alpha[app], which the job's covariates do not"), "{err}");
        let job = |names: &[&str]| coefficients(PurchaseModel::BgNbd, &CovariateSpec { purchase: names.iter().map(|n| n.to_string()).collect(), dropout: vec![] }).unwrap();
        let err = saved.params(date, "weeks", PurchaseModel::BgNbd, &job(&["app", "web", "age"])).unwrap_err().to_string();
        assert!(err.contains("it has no covariate coefficient purchase_coefficient_alpha[age]"), "{err}");
        let (_, _, effects) = saved.params(date, "weeks", PurchaseModel::BgNbd, &job(&["app", "web"])).unwrap();
        let e = effects.unwrap();
        assert_eq!(e.coefficients.iter().map(|c| c.value).collect::<Vec<_>>(), [-0.25, 0.5]);
        let c = e.covariance.unwrap();
        // The job's first coefficient (app) is the saved fifth row's (index 5), web index 4.
        assert_eq!((c[[4, 4]], c[[4, 5]], c[[5, 4]], c[[1, 4]], c[[0, 0]]), (55.0, 54.0, 45.0, 15.0, 0.0));
    }

    #[test]
    fn centroids_move_between_prepared_spaces() {
        let saved = SavedSegmentation {
            trained_on: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
            view: "v".into(),
            features: vec!["a".into()],
            categorical: vec![],
            algorithm: "kmeans".into(),
            preparation: vec![prep("a", 10.0, 2.0)],
            segments: vec![SavedSegment { id: 4, name: "x".into(), customers: 1, action: None, centroid: vec![1.5] }],
            drift_reference: vec![],
        };
        // 1.5 · 2 + 10 = 13 in original units; (13 − 12) / 4 in the new space.
        let new = SavedPrep { center: 12.0, scale: 4.0, ..prep("a", 0.0, 1.0) }.to_column();
        assert_eq!(saved.centroids_in(&[new]), Some(vec![vec![0.25]]));
        let other = prep("b", 0.0, 1.0).to_column();
        assert_eq!(saved.centroids_in(&[other]), None);
        let err = saved.fitted(saved.trained_on, &["b".into()], &[]).unwrap_err().to_string();
        assert!(err.contains("fitted on features [a]") && err.contains("the job has [b]"), "{err}");
    }
}
