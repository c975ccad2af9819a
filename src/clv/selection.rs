//! Choosing the purchase model by backtest (`[clv] model = "auto"`): every candidate is fitted
//! on the summary as of several calibration cut-offs (rolling origin: the run date minus 1, 2
//! and 3 holdout periods) and scored on the purchases its customers made in the holdout
//! period after each, as Hyndman & Athanasopoulos's "evaluation on a rolling forecasting
//! origin" (Forecasting: Principles and Practice, 3rd ed., §5.10) scores forecasts.
//!
//! The rule: the candidate with the lowest mean holdout MAE (repeat purchases per customer)
//! over the cut-offs; within 1e-9 relative of it, the lower mean |total error|; then the
//! order of [`PurchaseModel::ALL`] (BG/NBD first). A candidate that fails to fit at any
//! cut-off is not chosen. The calibration log-likelihood is reported, not used: BG/BB's is a
//! probability and the others' a density, so they do not compare.

use super::error::ClvError;
use super::holdout::{HoldoutTuple, calibration_tuples, holdout};
use super::purchase::fit_tuples;
use super::spec::{PurchaseModel, TimeUnit};

/// Cut-offs of a rolling-origin backtest.
pub const BACKTEST_CUTOFFS: u32 = 3;

/// The models `model = "auto"` chooses among: the continuous-time ones always, BG/BB when the
/// summary counts periods.
pub fn candidates(unit: TimeUnit) -> Vec<PurchaseModel> {
    PurchaseModel::ALL.into_iter().filter(|m| !m.discrete() || matches!(unit, TimeUnit::Periods(_))).collect()
}

/// One cut-off: every customer known at it, with their calibration summary and their
/// frequency at the end of the holdout, and the holdout's length in `time_unit`.
#[derive(Debug, Clone)]
pub struct Fold<C> {
    pub cutoff: C,
    pub tuples: Vec<HoldoutTuple>,
    pub horizon: f64,
}

/// One candidate at one cut-off.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldScore<C> {
    pub model: PurchaseModel,
    pub cutoff: C,
    /// Mean |actual − predicted| holdout purchases per customer.
    pub mae: f64,
    /// (predicted − actual) / actual total holdout purchases (actual at least 1).
    pub total_error: f64,
    /// The calibration fit's log-likelihood per customer.
    pub log_likelihood: f64,
}

/// The backtest: every candidate's scores, the ones that failed to fit (with the reason), and
/// the choice.
#[derive(Debug, Clone)]
pub struct Selection<C> {
    pub scores: Vec<FoldScore<C>>,
    pub failed: Vec<(PurchaseModel, C, String)>,
    pub chosen: PurchaseModel,
}

impl<C> Selection<C> {
    /// A candidate's mean MAE and mean |total error| over the cut-offs.
    pub fn means(&self, model: PurchaseModel) -> Option<(f64, f64)> {
        let rows: Vec<&FoldScore<C>> = self.scores.iter().filter(|s| s.model == model).collect();
        let n = rows.len() as f64;
        (!rows.is_empty()).then(|| (rows.iter().map(|s| s.mae).sum::<f64>() / n, rows.iter().map(|s| s.total_error.abs()).sum::<f64>() / n))
    }
}

/// Fits every candidate on every fold and chooses by the rule above.
pub fn select<C: Clone>(folds: &[Fold<C>], candidates: &[PurchaseModel], penalizer: f64) -> Result<Selection<C>, ClvError> {
    let (mut scores, mut failed) = (Vec::new(), Vec::new());
    for fold in folds {
        let cal = calibration_tuples(&fold.tuples);
        for &model in candidates {
            match fit_tuples(&cal, model, penalizer) {
                Ok(fit) => {
                    let check = holdout(&[(fit.params, &fold.tuples)], fold.horizon);
                    scores.push(FoldScore {
                        model,
                        cutoff: fold.cutoff.clone(),
                        mae: check.mae,
                        total_error: (check.total_predicted - check.total_actual) / check.total_actual.max(1.0),
                        log_likelihood: fit.log_likelihood / fit.customers.max(1) as f64,
                    });
                }
                Err(e) => failed.push((model, fold.cutoff.clone(), e.to_string())),
            }
        }
    }
    let eligible: Vec<PurchaseModel> = candidates.iter().copied().filter(|m| !failed.iter().any(|f| f.0 == *m)).collect();
    let mut selection = Selection { scores, failed, chosen: PurchaseModel::default() };
    selection.chosen = choose(&eligible, |m| selection.means(m)).ok_or_else(|| {
        let reasons: Vec<String> = selection.failed.iter().map(|(m, _, e)| format!("{}: {e}", m.as_str())).collect();
        ClvError::Input(format!("model = \"auto\": no candidate fits at every backtest cut-off ({})", reasons.join("; ")))
    })?;
    Ok(selection)
}

/// The rule: lowest mean MAE; within 1e-9 relative, lower mean |total error|; then the
/// candidates' order.
fn choose(eligible: &[PurchaseModel], means: impl Fn(PurchaseModel) -> Option<(f64, f64)>) -> Option<PurchaseModel> {
    let scored: Vec<(PurchaseModel, (f64, f64))> = eligible.iter().filter_map(|&m| means(m).map(|v| (m, v))).filter(|(_, v)| v.0.is_finite()).collect();
    let best_mae = scored.iter().map(|(_, v)| v.0).fold(f64::INFINITY, f64::min);
    let tied = scored.iter().filter(|(_, v)| v.0 <= best_mae * (1.0 + 1e-9));
    // min_by keeps the first of equals: the candidates' order breaks the last tie.
    tied.min_by(|a, b| a.1.1.total_cmp(&b.1.1)).map(|(m, _)| *m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_takes_the_lowest_mean_mae_then_the_total_error_then_the_order() {
        use PurchaseModel::*;
        let table = |rows: Vec<(PurchaseModel, f64, f64)>| move |m: PurchaseModel| rows.iter().find(|r| r.0 == m).map(|r| (r.1, r.2));
        assert_eq!(choose(&[BgNbd, MbgNbd, ParetoNbd], table(vec![(BgNbd, 0.5, 0.1), (MbgNbd, 0.4, 0.3), (ParetoNbd, 0.45, 0.0)])), Some(MbgNbd));
        // A tie on MAE (to 1e-9): the smaller total error.
        assert_eq!(choose(&[BgNbd, MbgNbd, ParetoNbd], table(vec![(BgNbd, 0.4, 0.2), (MbgNbd, 0.4 * (1.0 + 1e-12), 0.1), (ParetoNbd, 0.5, 0.0)])), Some(MbgNbd));
        // A full tie: the first candidate.
        assert_eq!(choose(&[ParetoNbd, BgNbd], table(vec![(BgNbd, 0.4, 0.1), (ParetoNbd, 0.4, 0.1)])), Some(ParetoNbd));
        // Not eligible, or never scored: not chosen.
        assert_eq!(choose(&[BgNbd], table(vec![(MbgNbd, 0.1, 0.0), (BgNbd, 0.9, 0.9)])), Some(BgNbd));
        assert_eq!(choose(&[MbgNbd], table(vec![(BgNbd, 0.1, 0.0)])), None);
        assert_eq!(choose(&[BgNbd], table(vec![(BgNbd, f64::NAN, 0.0)])), None);
    }

    #[test]
    fn bgbb_is_a_candidate_only_for_periods() {
        assert_eq!(candidates(TimeUnit::Weeks), vec![PurchaseModel::BgNbd, PurchaseModel::MbgNbd, PurchaseModel::ParetoNbd]);
        assert_eq!(candidates(TimeUnit::Periods(30)).last(), Some(&PurchaseModel::BgBb));
    }
}
