//! The per-customer summary both models read ([`Summary`]), and the input rules it must meet.
//!
//! Fader–Hardie summary, in `time_unit`: x = `frequency` (repeat purchase periods),
//! t_x = `recency`, T = `tenure`, m̄ = `monetary_value` (mean repeat purchase value).

use super::error::ClvError;

/// Per-customer summary columns, in matching order.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub frequency: Vec<f64>,
    pub recency: Vec<f64>,
    pub tenure: Vec<f64>,
    pub monetary_value: Vec<f64>,
}

impl Summary {
    /// The input rules of the models, checked with the offending row and value in the error:
    /// frequency is a whole number ≥ 0; 0 ≤ recency ≤ tenure; recency = 0 and
    /// monetary_value = 0 when frequency = 0; monetary_value > 0 when frequency > 0. With
    /// `discrete` (BG/BB's whole periods) recency and tenure are whole numbers too, and
    /// frequency ≤ recency (one purchase per period at most).
    pub fn check(&self, discrete: bool, ids: &dyn Fn(usize) -> String) -> Result<(), ClvError> {
        if self.frequency.is_empty() {
            return Err(ClvError::Input("the summary view has no customers".into()));
        }
        for i in 0..self.frequency.len() {
            let (x, tx, t, m) = (self.frequency[i], self.recency[i], self.tenure[i], self.monetary_value[i]);
            let bad = |what: String| Err(ClvError::Input(format!("customer '{}': {what}", ids(i))));
            if x < 0.0 || x.fract() != 0.0 {
                return bad(format!("frequency {x} is not a whole number >= 0"));
            }
            if !(0.0..=t).contains(&tx) {
                return bad(format!("recency {tx} must be between 0 and tenure {t}"));
            }
            if x == 0.0 && tx != 0.0 {
                return bad(format!("recency {tx} must be 0 when frequency is 0"));
            }
            // Repeat purchases come on later days than the first (the summary counts purchase
            // days): without time between them the likelihood has no maximum.
            if x > 0.0 && tx == 0.0 {
                return bad(format!("frequency {x} with recency 0: repeat purchases come after the first, so recency must be above 0"));
            }
            if discrete {
                if let Some((name, v)) = [("recency", tx), ("tenure", t)].into_iter().find(|(_, v)| v.fract() != 0.0) {
                    return bad(format!("{name} {v} is not a whole number of periods (the model is bgbb)"));
                }
                if x > tx {
                    return bad(format!("frequency {x} is above recency {tx}: with bgbb a period holds one purchase at most"));
                }
            }
            if m < 0.0 {
                return bad(format!("monetary_value {m} is negative"));
            }
            if x > 0.0 && m == 0.0 {
                return bad("monetary_value is 0 for a repeat buyer".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_monetary_value_is_refused_naming_the_customer() {
        let s = Summary {
            frequency: vec![1.0],
            recency: vec![2.0],
            tenure: vec![3.0],
            monetary_value: vec![-5.0],
        };
        let err = s.check(false, &|_| "C1".to_string()).unwrap_err();
        assert_eq!(err.to_string(), "invalid CLV input: customer 'C1': monetary_value -5 is negative");
    }

    #[test]
    fn recency_cannot_exceed_tenure() {
        let s = Summary {
            frequency: vec![2.0],
            recency: vec![4.0],
            tenure: vec![3.0],
            monetary_value: vec![5.0],
        };
        assert!(s.check(false, &|_| "C1".to_string()).unwrap_err().to_string().contains("recency 4 must be between 0 and tenure 3"));
    }

    #[test]
    fn bgbb_summaries_count_whole_periods_with_a_purchase_at_most_per_period() {
        let s = |x: f64, tx: f64, t: f64| Summary { frequency: vec![x], recency: vec![tx], tenure: vec![t], monetary_value: vec![5.0] };
        assert!(s(2.0, 3.5, 6.0).check(false, &|_| "C1".into()).is_ok());
        let err = s(2.0, 3.5, 6.0).check(true, &|_| "C1".into()).unwrap_err().to_string();
        assert_eq!(err, "invalid CLV input: customer 'C1': recency 3.5 is not a whole number of periods (the model is bgbb)");
        let err = s(2.0, 3.0, 6.5).check(true, &|_| "C1".into()).unwrap_err().to_string();
        assert!(err.ends_with("tenure 6.5 is not a whole number of periods (the model is bgbb)"), "{err}");
        let err = s(4.0, 3.0, 6.0).check(true, &|_| "C1".into()).unwrap_err().to_string();
        assert!(err.ends_with("frequency 4 is above recency 3: with bgbb a period holds one purchase at most"), "{err}");
        assert!(s(3.0, 3.0, 6.0).check(true, &|_| "C1".into()).is_ok());
    }

    #[test]
    fn repeat_purchases_need_time_after_the_first() {
        let s = Summary {
            frequency: vec![22.0],
            recency: vec![0.0],
            tenure: vec![0.0],
            monetary_value: vec![5.0],
        };
        let err = s.check(false, &|_| "C1".to_string()).unwrap_err().to_string();
        assert_eq!(err, "invalid CLV input: customer 'C1': frequency 22 with recency 0: repeat purchases come after the first, so recency must be above 0");
    }
}
