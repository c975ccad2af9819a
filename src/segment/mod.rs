//! Segmentation: prepare the features, cluster them, profile and name the clusters; RFM
//! scores, lifecycle stages, value tiers and recommended actions.
//!
//! 1. [`prep`]: impute, log1p, clip, scale, one-hot ([`prep::PrepColumn`] records every fitted
//!    number).
//! 2. [`select_k`]: K-means ([`kmeans`]), mini-batch K-means, GMM, DBSCAN or Ward
//!    ([`hierarchical`]); k chosen by the
//!    `select` rule (silhouette by default, stability, Calinski–Harabasz or Davies–Bouldin,
//!    [`metrics`]) among the candidates that pass the segment-share and stability floors.
//! 3. [`profile`]: segment ids ordered by size, profiles in original units, auto-names;
//!    [`rules`]: a readable rule per segment from a shallow decision tree.
//! 4. [`rfm`]: RFM quintiles and named segments, lifecycle stages, value tiers, actions.
//! 5. Across runs: [`score`] with a saved model, [`align`] ids with the previous model,
//!    [`transitions`] between runs and [`drift`] of the features.
//!
//! The entry points are [`segment`] (fit) and [`score`] (apply a saved [`FittedModel`]).
//!
//! Everything here is pure: matrices and specs in, values out; no DataFusion, no TOML (the job
//! file is read elsewhere into a [`SegmentationSpec`]).
//!
//! Own crate later? Yes, when the workspace is split (as DataFusion splits its crates): this
//! module and `clv` need only ndarray/linfa/rayon and `stats`, so a `segvalue-models` crate
//! would compile and test without DataFusion (minutes saved per change on a 2-core machine)
//! and keep the models reusable. Not now: `spec.rs` still holds job-file types and `stats`/
//! `model_mode` would have to move with it; split once those boundaries settle.

pub mod align;
pub mod drift;
mod error;
pub mod hierarchical;
mod kmeans;
mod metrics;
pub mod prep;
pub mod profile;
pub mod rfm;
pub mod rules;
mod segmentation;
mod select_k;
pub mod spec;
mod stage;
pub mod transitions;

pub use error::SegmentError;
pub use kmeans::{KMeansAlgorithm, KMeansInit, KMeansModel, KMeansParams, KMeansValidParams};
pub use metrics::adjusted_rand_score;
pub use profile::SegmentProfile;
pub use segmentation::{Features, FittedModel, Segmentation};
pub use select_k::KScore;
pub use spec::{KChoice, Scale, SegmentationSpec};
pub use stage::{SampleFit, fit_sample, score, segment};
