//! Lifetime value: a purchase model for purchases and P(alive) (BG/NBD, MBG/NBD, Pareto/NBD
//! or BG/BB), Gamma-Gamma for spend, discounted CLV, the simple CLV formula, and the holdout
//! check. Pure: summaries in, values out; no DataFusion, no TOML.
//!
//! Papers: BG/NBD — Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way"
//! (`bgnbd`, with MBG/NBD); Pareto/NBD — Schmittlein, Morrison & Colombo (1987) (`pareto_nbd`);
//! BG/BB — Fader, Hardie & Shang (2010) (`bgbb`);
//! Gamma-Gamma — Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer
//! Base Analysis" (`gamma_gamma`). Numerics follow lifetimes 0.11.3.
//!
//! 1. [`Summary`]: per customer (Fader–Hardie summary, in `time_unit`) x = `frequency` (repeat
//!    purchase periods), t_x = `recency`, T = `tenure`, m̄ = `monetary_value` (mean repeat
//!    purchase value), checked by [`Summary::check`].
//! 2. [`fit`] both models (the purchase model on (x, t_x, T) tuples, `tuples` and `purchase`)
//!    or [`with_params`] for saved ones, into [`ClvModels`].
//! 3. [`predict`] per customer into a [`ClvResult`] ([`value`] does 2 and 3); intervals per
//!    customer from the purchase process and the parameters' Laplace uncertainty
//!    ([`Laplace`], [`Predictive`], `predictive`).
//! 4. [`holdout`]: actual against predicted purchases in a holdout period; [`select`]: the
//!    purchase model chosen by a rolling-origin backtest of it (`model = "auto"`).

mod bgbb;
mod bgnbd;
mod counts;
mod covariates;
mod error;
mod fitting;
mod gamma_gamma;
mod holdout;
mod models;
mod optimize;
mod pareto_nbd;
mod predict;
mod predictive;
mod purchase;
mod selection;
mod spec;
mod summary;
mod tuples;

pub use bgbb::BgBbParams;
pub use covariates::{Coefficient, CovariateFit, Effects, Group, coefficients, fit_groups, group};
pub use bgnbd::{BgNbdParams, hyp2f1_series};
pub use pareto_nbd::ParetoNbdParams;
pub use purchase::{PurchaseFit, PurchaseParams, fit_tuples as fit_purchases};
pub use tuples::{PurchaseTuple, compress};
pub use error::{ClvError, describe_params, out_of_range};
pub use fitting::{FALLBACK_PENALIZER, Fallback};
pub use gamma_gamma::{GammaGammaFit, GammaGammaParams};
pub use holdout::{Holdout, HoldoutBucket, HoldoutTuple, TrackingPoint, calibration_tuples, holdout, tracking};
pub use models::{ClvModels, fit, fit_tuples, fit_with_covariates, with_params, with_params_groups, with_params_tuples};
pub use optimize::{Minimum, minimize};
pub use predictive::{AliveTails, Coverage, Laplace, Predictive, coverage};
pub use predict::{ClvResult, discounted_clv, is_amount, is_probability, discounted_numerators_over, lifetime_periods, predict, value};
pub use selection::{BACKTEST_CUTOFFS, Fold, FoldScore, Selection, candidates, select};
pub use spec::{ClvSpec, CovariateSpec, PurchaseModel, Tracking, DEFAULT_FIT_SAMPLE, MAX_HOLDOUT_DAYS, MAX_HORIZON_MONTHS, TimeUnit};
pub use summary::Summary;
