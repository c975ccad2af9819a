//! The end-to-end run, one file per stage. A run ([`run()`], in `run.rs`) goes:
//!
//! 0. `preflight.rs` — check what the run needs from outside the job file (the output root
//!    takes a write, every source lists files, a score run's saved model exists) before any
//!    source is scanned; `segvalue check` stops after it and the planning.
//! 1. `session.rs` — [`open`] the engine session: register the sources behind their quality
//!    rules, plan every view and check the columns the stages need. Everything that can fail
//!    because of the job itself fails here, before any table is scanned; `validate`,
//!    `preview` and `explain` stop here (`inspect.rs` computes what the last two show).
//! 2. `clv.rs` — fit the purchase model and Gamma-Gamma (or score with a saved model), value
//!    every customer and check the fit against a holdout period (`clv_holdout.rs`, which also
//!    runs `model = "auto"`'s backtest); `clv_sql.rs` has its queries (the fits' tuples and
//!    sample, the plan that scores every customer in the engine).
//! 3. `segmentation.rs` — cluster the features, score RFM, lifecycle and value tiers and
//!    recommend actions; `history.rs` ties the run to earlier ones (saved models, aligned
//!    segment ids, transitions, drift).
//! 4. `customer_actions.rs` — rank every customer's recommended action by its expected value,
//!    from the staged segments and CLV.
//! 5. `tables.rs` — build the Arrow batches of the published tables, from the shared rows in
//!    `rows.rs` and ids in `ids.rs`.
//! 6. `report.rs` — gather the run report's charts; `manifest.rs` — the manifest's types and
//!    the input hashes.
//!
//! `script.rs` writes the SQL a run executes as one script (`segvalue sql`).

mod clv;
mod clv_holdout;
mod clv_sql;
mod customer_actions;
mod history;
mod ids;
mod inspect;
mod manifest;
mod preflight;
mod query;
mod report;
mod rows;
mod run;
mod script;
mod segment_outputs;
mod segmentation;
mod segmentation_sql;
mod session;
mod tables;

pub use inspect::{ViewPlan, explain, explain_targets, preview};
pub use manifest::{
    ClvReport, DriftReport, HoldoutReport, Inputs, Manifest, ModelReport, ModelUse, PrepReport, RfmReport, SegmentationReport,
    StageReport,
};
pub use preflight::Preflight;
pub use run::{check, run};
pub use script::script;
pub use session::{Session, open};
