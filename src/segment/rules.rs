//! A readable rule per segment (`segment_rules`): a shallow decision tree (linfa-trees, CART
//! with Gini impurity; Breiman et al. 1984) learns to tell the segment's customers from the
//! rest on the features in their original units, and the rule is the path to its best leaf,
//! e.g. `recency_days > 180 AND frequency <= 1`.
//!
//! The best leaf is the one predicting the segment with the highest F1 (the harmonic mean of
//! precision and coverage on these rows). Thresholds are rounded to the fewest significant digits
//! (three or more) that move no row across the rule; precision and coverage are measured
//! for the rule as written, so applying it to the same rows gives the stated figures. A missing
//! value (NaN) never meets a condition, as NULL never does in SQL.

use linfa::prelude::*;
use linfa_trees::{DecisionTree, TreeNode};
use ndarray::{Array1, Array2, ArrayView2, Axis};

/// Tree depth: at most this many conditions per rule, so a marketer can read it.
pub const MAX_DEPTH: usize = 3;
/// The most rows a tree is trained on (evenly spaced among the complete rows): it only has to
/// place a few thresholds, and precision and coverage are still measured on every row. Below
/// 4096 so that [`OTHERS_WEIGHT`] keeps every class total exact in f32.
const MAX_TREE_ROWS: usize = 4_000;
/// The weight of a row outside the segment (the segment's rows weigh 1). linfa-trees keeps
/// class totals in a `HashMap` with a random hasher: when a node's two classes weigh the same,
/// the class it predicts (and so how the tree is pruned) changes from process to process. With
/// m < 4096 rows outside the segment their total m + m/4096 is exact in f32 and never a whole
/// number, so it never equals the segment's count: the same rows give the same tree.
const OTHERS_WEIGHT: f32 = 1.0 + 1.0 / 4096.0;

/// One condition of a rule: `feature <= threshold` (`at_most`) or `feature > threshold`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub feature: usize,
    pub at_most: bool,
    pub threshold: f64,
}

impl Condition {
    fn holds(&self, v: f64) -> bool {
        if self.at_most { v <= self.threshold } else { v > self.threshold }
    }
}

/// The rule found for one segment and how well it describes the segment on the rows given.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRule {
    pub segment_id: i32,
    /// Empty when no split separates the segment (the rule is then every customer).
    pub conditions: Vec<Condition>,
    /// Rows meeting the rule that are in the segment, over rows meeting the rule.
    pub precision: f64,
    /// Rows of the segment meeting the rule, over rows of the segment.
    pub coverage: f64,
    /// Rows meeting the rule.
    pub matching: usize,
    /// Rows the figures are measured on.
    pub rows: usize,
}

impl SegmentRule {
    /// The rule as text over `features` (their names), conditions joined by `AND`: valid SQL
    /// for a WHERE clause when the names are plain identifiers.
    pub fn text(&self, features: &[String]) -> String {
        if self.conditions.is_empty() {
            return "TRUE".into();
        }
        let cond = |c: &Condition| format!("{} {} {}", features[c.feature], if c.at_most { "<=" } else { ">" }, c.threshold);
        self.conditions.iter().map(cond).collect::<Vec<_>>().join(" AND ")
    }
}

/// A rule for each segment id in `labels` (noise, −1, gets none), learned on the rows of `x`
/// (original units, NaN for missing) with their segment ids `labels`.
pub fn segment_rules(x: ArrayView2<f64>, labels: &[i32]) -> Result<Vec<SegmentRule>, linfa::Error> {
    let mut ids: Vec<i32> = labels.iter().copied().filter(|&s| s >= 0).collect();
    ids.sort_unstable();
    ids.dedup();
    // The tree cannot take NaN: train on the complete rows (every `step`-th above
    // MAX_TREE_ROWS, for time), measure on every row.
    let complete: Vec<usize> = (0..x.nrows()).filter(|&i| x.row(i).iter().all(|v| v.is_finite())).collect();
    let step = complete.len().div_ceil(MAX_TREE_ROWS).max(1);
    let complete: Vec<usize> = complete.into_iter().step_by(step).collect();
    if complete.is_empty() {
        return Ok(ids.into_iter().map(|id| measure(x, labels, id, Vec::new())).collect());
    }
    let train: Array2<f64> = x.select(Axis(0), &complete);
    ids.into_iter()
        .map(|id| {
            let target: Array1<usize> = complete.iter().map(|&i| usize::from(labels[i] == id)).collect();
            let weights = target.mapv(|t| if t == 1 { 1.0 } else { OTHERS_WEIGHT });
            let data = DatasetBase::new(train.clone(), target).with_weights(weights);
            let tree = DecisionTree::params().max_depth(Some(MAX_DEPTH)).min_weight_leaf(1.0).fit(&data)?;
            let mut leaves = Vec::new();
            paths(tree.root_node(), &mut Vec::new(), &mut leaves);
            let best = leaves
                .into_iter()
                .map(|conditions| measure(x, labels, id, simplify(conditions)))
                .max_by(|a, b| f1(a).total_cmp(&f1(b)).then(b.conditions.len().cmp(&a.conditions.len())))
                .unwrap_or_else(|| measure(x, labels, id, Vec::new()));
            // The fewest significant digits (from three) that move no row across the rule.
            let rounded = (3..=8)
                .map(|digits| {
                    let conditions = best.conditions.iter().map(|c| Condition { threshold: round_sig(c.threshold, digits), ..c.clone() }).collect();
                    measure(x, labels, id, conditions)
                })
                .find(|r| (r.matching, r.precision) == (best.matching, best.precision));
            Ok(rounded.unwrap_or(best))
        })
        .collect()
}

/// F1 of precision and coverage; 0 when either is undefined (a rule no row meets), so such a
/// rule never wins (`total_cmp` would rank NaN first).
fn f1(r: &SegmentRule) -> f64 {
    let f = 2.0 * r.precision * r.coverage / (r.precision + r.coverage);
    if f.is_finite() { f } else { 0.0 }
}

/// The conditions leading to each leaf that predicts the segment (label 1).
fn paths(node: &TreeNode<f64, usize>, path: &mut Vec<Condition>, out: &mut Vec<Vec<Condition>>) {
    if node.is_leaf() {
        if node.prediction() == Some(1) {
            out.push(path.clone());
        }
        return;
    }
    let (feature, threshold, _) = node.split();
    for (child, at_most) in node.children().into_iter().zip([true, false]) {
        if let Some(child) = child {
            path.push(Condition { feature, at_most, threshold });
            paths(child, path, out);
            path.pop();
        }
    }
}

/// Keeps the tightest bound per feature and direction, in the order first seen.
fn simplify(conditions: Vec<Condition>) -> Vec<Condition> {
    let mut out: Vec<Condition> = Vec::new();
    for c in conditions {
        match out.iter_mut().find(|o| o.feature == c.feature && o.at_most == c.at_most) {
            Some(o) if c.at_most => o.threshold = o.threshold.min(c.threshold),
            Some(o) => o.threshold = o.threshold.max(c.threshold),
            None => out.push(c),
        }
    }
    out
}

/// `v` to `digits` significant digits.
fn round_sig(v: f64, digits: i32) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let scale = 10f64.powi(digits - 1 - v.abs().log10().floor() as i32);
    (v * scale).round() / scale
}

fn measure(x: ArrayView2<f64>, labels: &[i32], id: i32, conditions: Vec<Condition>) -> SegmentRule {
    let (mut matching, mut hits, mut members) = (0usize, 0usize, 0usize);
    for (row, &l) in x.rows().into_iter().zip(labels) {
        let meets = conditions.iter().all(|c| c.holds(row[c.feature]));
        matching += usize::from(meets);
        hits += usize::from(meets && l == id);
        members += usize::from(l == id);
    }
    let ratio = |a: usize, b: usize| if b == 0 { f64::NAN } else { a as f64 / b as f64 };
    SegmentRule { segment_id: id, conditions, precision: ratio(hits, matching), coverage: ratio(hits, members), matching, rows: labels.len() }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;

    #[test]
    fn a_segment_cut_by_two_thresholds_gets_them_as_its_rule() {
        // Segment 1 is exactly recency > 180 and frequency <= 1; the third column is noise.
        let n = 600;
        let x = Array2::from_shape_fn((n, 3), |(i, j)| match j {
            0 => (i * 7 % 365) as f64,
            1 => (i * 3 % 5) as f64,
            _ => (i * 13 % 17) as f64,
        });
        let labels: Vec<i32> = (0..n).map(|i| i32::from(x[[i, 0]] > 180.0 && x[[i, 1]] <= 1.0)).collect();
        let rules = segment_rules(x.view(), &labels).unwrap();
        let one = rules.iter().find(|r| r.segment_id == 1).unwrap();
        assert_eq!((one.precision, one.coverage), (1.0, 1.0), "{one:?}");
        let names = ["recency_days".to_string(), "frequency".into(), "noise".into()];
        let text = one.text(&names);
        assert!(text.contains("recency_days >") && text.contains("frequency <="), "{text}");
    }

    #[test]
    fn a_node_with_equal_classes_gives_the_same_rule_every_time() {
        // x = 0: two rows of segment 1 and two others (a tie the tree's leaf must break);
        // x = 1: three of segment 1 and one other. Whether the x = 0 leaf predicts the segment
        // decides between the rule TRUE and `x > 0.5`.
        let x = Array2::from_shape_vec((8, 1), vec![0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]).unwrap();
        let labels = [1, 1, 0, 0, 1, 1, 1, 0];
        let first = segment_rules(x.view(), &labels).unwrap();
        for _ in 0..50 {
            assert_eq!(segment_rules(x.view(), &labels).unwrap(), first);
        }
    }

    #[test]
    fn thresholds_round_to_significant_digits() {
        assert_eq!(round_sig(180.5, 3), 181.0);
        assert_eq!(round_sig(180.5, 4), 180.5);
        assert_eq!(round_sig(0.012345, 3), 0.0123);
        assert_eq!(round_sig(-2.5, 3), -2.5);
    }
}
