//! Segment ids, profiles, readable names and recommended actions.
//!
//! Ids are ordered by size (0 = largest, ties by centroid), so they do not depend on the
//! algorithm's arbitrary numbering; DBSCAN noise is -1. A segment's name comes from the
//! features on which its members differ most from everyone, in standard deviations of the
//! prepared feature, e.g. "frequent · high spend · recent".

use std::collections::{BTreeMap, HashMap};

use ndarray::{Array2, Axis};

use super::prep::{NULL_CATEGORY, Prepared, unscale};
use crate::stats::{dominant, quantile_of};
use super::rfm::{self, ActionKey, Lifecycle, ValueTier};
use super::select_k::Clustering;
use super::spec::{ActionsSpec, SegmentationSpec};

/// A feature joins the name when the segment mean is at least this many standard deviations
/// from the overall mean.
const NAME_MIN_Z: f64 = 0.5;
/// At most this many features in a name.
const NAME_MAX_TERMS: usize = 3;

/// One row of `segment_summary`, before tiers and CLV are joined.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentProfile {
    pub segment_id: i32,
    pub name: String,
    pub customers: usize,
    pub share: f64,
    /// Mean and median of each numeric feature in original units (NULLs skipped).
    pub means: Vec<f64>,
    pub medians: Vec<f64>,
}

pub struct Ordered {
    pub segment: Vec<i32>,
    pub distance: Vec<Option<f64>>,
    pub centroids: Array2<f64>,
}

/// Renumbers clusters by size (desc), then by centroid coordinates, and measures each row's
/// distance to its centroid in the prepared space `z`.
pub(super) fn order_by_size(c: &Clustering, z: &Array2<f64>) -> Ordered {
    let k = c.centroids.nrows();
    let mut counts = vec![0usize; k];
    c.labels.iter().flatten().for_each(|&l| counts[l] += 1);
    let order = size_order(&counts, &c.centroids);
    let mut new_id = vec![0i32; k];
    for (new, &old) in order.iter().enumerate() {
        new_id[old] = new as i32;
    }
    let distance = z
        .axis_iter(Axis(0))
        .zip(&c.labels)
        .map(|(row, l)| l.map(|l| row.iter().zip(c.centroids.row(l)).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt()))
        .collect();
    Ordered {
        segment: c.labels.iter().map(|l| l.map_or(-1, |l| new_id[l])).collect(),
        distance,
        centroids: c.centroids.select(Axis(0), &order),
    }
}

/// Cluster indices from the largest cluster to the smallest (`counts[i]` rows in cluster `i`),
/// ties by centroid coordinates, so the ids do not depend on the algorithm's numbering.
pub fn size_order(counts: &[usize], centroids: &Array2<f64>) -> Vec<usize> {
    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.sort_by(|&a, &b| {
        counts[b].cmp(&counts[a]).then_with(|| {
            let (ca, cb) = (centroids.row(a), centroids.row(b));
            ca.iter().zip(cb.iter()).map(|(x, y)| x.total_cmp(y)).find(|o| o.is_ne()).unwrap_or(std::cmp::Ordering::Equal)
        })
    });
    order
}

/// Profiles of every segment id present (noise last), with auto-names.
pub(super) fn profiles(x: &Array2<f64>, prepared: &Prepared, o: &Ordered, spec: &SegmentationSpec) -> Vec<SegmentProfile> {
    let n = x.nrows();
    let mut ids: Vec<i32> = (0..o.centroids.nrows() as i32).collect();
    if o.segment.contains(&-1) {
        ids.push(-1);
    }
    let p = spec.features.len();
    let values = unscale(&prepared.z, &prepared.columns);
    let overall: Vec<(f64, f64)> = (0..p)
        .map(|j| {
            let c = values.column(j);
            let mean = c.sum() / n as f64;
            (mean, (c.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64).sqrt())
        })
        .collect();
    let stats = ids
        .iter()
        .map(|&id| {
            let rows: Vec<usize> = (0..n).filter(|&i| o.segment[i] == id).collect();
            let mut means = Vec::with_capacity(p);
            let mut medians = Vec::with_capacity(p);
            let mut prepared_means = Vec::with_capacity(p);
            for j in 0..p {
                let mut v: Vec<f64> = rows.iter().map(|&i| x[[i, j]]).filter(|v| !v.is_nan()).collect();
                means.push(if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 });
                medians.push(quantile_of(&mut v, 0.5));
                prepared_means.push(rows.iter().map(|&i| values[[i, j]]).sum::<f64>() / rows.len().max(1) as f64);
            }
            SegmentStats { segment_id: id, customers: rows.len(), means, medians, prepared_means }
        })
        .collect();
    named_profiles(stats, &overall, n, spec)
}

/// What a segment's profile and name are made of, whoever computed it: the driver over its
/// rows ([`profiles`]) or the engine's `GROUP BY` over every customer.
pub struct SegmentStats {
    pub segment_id: i32,
    pub customers: usize,
    /// Mean and median of each numeric feature in original units (NULLs skipped).
    pub means: Vec<f64>,
    pub medians: Vec<f64>,
    /// Mean of each numeric feature in prepared units before scaling (imputed, transformed,
    /// clipped), against which `overall` measures the segment.
    pub prepared_means: Vec<f64>,
}

/// Profiles with readable names: `overall[j]` is the (mean, population std) of numeric feature
/// `j` in prepared units over all `n` rows.
pub fn named_profiles(stats: Vec<SegmentStats>, overall: &[(f64, f64)], n: usize, spec: &SegmentationSpec) -> Vec<SegmentProfile> {
    let mut out: Vec<SegmentProfile> = stats
        .into_iter()
        .map(|s| {
            let mut terms: Vec<(f64, &str)> = Vec::new();
            for (j, &m) in s.prepared_means.iter().enumerate() {
                let (mu, sd) = overall[j];
                let z = if sd > 0.0 { (m - mu) / sd } else { 0.0 };
                if z.abs() >= NAME_MIN_Z {
                    terms.push((z, if z > 0.0 { &spec.prep[j].high } else { &spec.prep[j].low }));
                }
            }
            terms.sort_by(|a, b| b.0.abs().total_cmp(&a.0.abs()));
            let name = if s.segment_id == -1 {
                "noise".to_string()
            } else if terms.is_empty() {
                "typical".to_string()
            } else {
                terms.iter().take(NAME_MAX_TERMS).map(|t| t.1).collect::<Vec<_>>().join(" · ")
            };
            SegmentProfile {
                segment_id: s.segment_id,
                name,
                customers: s.customers,
                share: s.customers as f64 / n as f64,
                means: s.means,
                medians: s.medians,
            }
        })
        .collect();
    let names: Vec<String> = out.iter().map(|p| p.name.clone()).collect();
    for p in &mut out {
        if names.iter().filter(|n| **n == p.name).count() > 1 {
            p.name = format!("{} (segment {})", p.name, p.segment_id);
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
pub struct SegmentAction {
    pub stage: Option<Lifecycle>,
    pub tier: Option<ValueTier>,
    pub key: Option<ActionKey>,
    pub action: Option<String>,
}

/// Customers per value of one categorical column (`values`, a row's segment in `segment`),
/// for each profile in `profiles`' order: (value, customers) by value; NULL is [`NULL_CATEGORY`].
pub fn category_counts(segment: &[i32], values: &[Option<String>], profiles: &[SegmentProfile]) -> Vec<Vec<(String, usize)>> {
    let at: HashMap<i32, usize> = profiles.iter().enumerate().map(|(i, p)| (p.segment_id, i)).collect();
    let mut counts = vec![BTreeMap::<String, usize>::new(); profiles.len()];
    for (s, v) in segment.iter().zip(values) {
        if let Some(&i) = at.get(s) {
            *counts[i].entry(v.as_deref().unwrap_or(NULL_CATEGORY).to_string()).or_insert(0) += 1;
        }
    }
    counts.into_iter().map(|m| m.into_iter().collect()).collect()
}

/// Per profile: the action configured for its name, else the default for its dominant
/// lifecycle stage and value tier ([`rfm::group_action_key`]).
pub fn segment_actions(
    profiles: &[SegmentProfile],
    segment: &[i32],
    stages: Option<&[Option<Lifecycle>]>,
    tiers: Option<&[Option<ValueTier>]>,
    actions: &ActionsSpec,
) -> Vec<SegmentAction> {
    let groups: Vec<(Option<Lifecycle>, Option<ValueTier>)> = profiles
        .iter()
        .map(|p| {
            let members = || segment.iter().enumerate().filter(move |(_, s)| **s == p.segment_id).map(|(i, _)| i);
            let stage = stages.and_then(|s| dominant(members().filter_map(|i| s[i])));
            let tier = tiers.and_then(|t| dominant(members().filter_map(|i| t[i])));
            (stage, tier)
        })
        .collect();
    actions_for(profiles, &groups, actions)
}

/// The action of each profile from its dominant (lifecycle stage, value tier), `groups[i]` for
/// `profiles[i]`, however they were counted.
pub fn actions_for(profiles: &[SegmentProfile], groups: &[(Option<Lifecycle>, Option<ValueTier>)], actions: &ActionsSpec) -> Vec<SegmentAction> {
    profiles
        .iter()
        .zip(groups)
        .map(|(p, &(stage, tier))| {
            let key = stage.zip(tier).map(|(s, t)| rfm::group_action_key(s, t));
            SegmentAction {
                stage,
                tier,
                key,
                action: actions.action(&p.name, key),
            }
        })
        .collect()
}
