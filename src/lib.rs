//! segvalue: customer segmentation and lifetime value as a batch job on DataFusion.
//!
//! A run flows through one module per stage:
//!
//! 1. [`job`] — load and validate `jobs/<name>.toml`.
//! 2. [`engine`] — open a DataFusion session with the object stores the job needs.
//! 3. [`sources`] — register the Parquet / CSV inputs as tables, behind the [`quality`]
//!    rules that filter or reject bad rows.
//! 4. [`views`] — parse `sql/<dir>/*.sql`, order them by their table references, substitute
//!    [`params`] and register each as a view.
//! 5. [`features`] — stream the segmentation view into a matrix (NULLs kept for imputation).
//! 6. [`segment`] — prepare the features, cluster them (k chosen by silhouette), profile and
//!    name the segments, score RFM, lifecycle and value tiers and recommend actions; [`clv`] —
//!    fit BG/NBD and Gamma-Gamma and value every customer.
//! 7. [`publish`] — stage, commit and describe the output tables, through the [`privacy`]
//!    rules (pseudonymised ids, dropped columns).
//!
//! [`functions`] puts the fitted models into SQL (P(alive), expected purchases and value, CLV,
//! nearest centroid) so the engine, or a Ballista cluster, can apply them to every customer.
//!
//! [`pipeline`] strings the stages together, one file per stage: [`pipeline::open`] does
//! steps 2–4 (all that can fail because of the job, before any data is read),
//! [`pipeline::run`] the rest and writes the manifest, [`pipeline::script`] prints the SQL a
//! run executes. [`generate`] draws the synthetic sample data; [`runs`] reports which
//! published run dates are complete; [`error`] maps every stage's error to an exit code.
//! The `segvalue` binary (`src/main.rs`, `src/cli/`) is a thin command-line layer over
//! [`pipeline`]: arguments, logging, the progress display and printing.

pub mod clv;
pub mod engine;
pub mod error;
pub mod features;
pub mod functions;
pub mod generate;
pub mod job;
pub mod location;
pub mod model_mode;
pub mod models;
pub mod names;
pub mod params;
pub mod pipeline;
pub mod privacy;
pub mod publish;
pub mod quality;
pub mod report;
pub mod runs;
pub mod segment;
pub mod sources;
pub mod stats;
pub mod text;
pub mod views;

pub use error::Error;
pub use job::Job;
