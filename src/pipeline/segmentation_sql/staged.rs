//! What is counted from the staged tables: groups per segment, CLV totals and transitions.

use std::collections::{BTreeMap, HashMap};

use datafusion::arrow::array::RecordBatch;
use datafusion::execution::context::SessionContext;

use super::sql::{CURRENT, PREVIOUS, f64s, i64s, not_staged, strings};
use crate::error::Error;
use crate::pipeline::query::collect;
use crate::pipeline::history;
use crate::pipeline::rows::RfmCounts;
use crate::pipeline::session::Session;
use crate::pipeline::tables::ClvTotals;
use crate::publish::Publisher;
use crate::quality::quote;
use crate::segment::rfm::{Lifecycle, ValueTier};
use crate::segment::{self, Segmentation};
use crate::stats::dominant_of_counts;


/// Per published segment id: customers by (lifecycle stage, value tier).
pub(super) type Groups = HashMap<i32, Vec<(Option<String>, Option<String>, usize)>>;

/// Per published segment id: customers by (lifecycle stage, value tier), and the RFM counts,
/// from the staged `customer_segments`.
pub(super) async fn staged_counts(ctx: &SessionContext, publisher: &Publisher) -> Result<(Groups, RfmCounts, usize), Error> {
    let seg = publisher.read_staged_as_published("customer_segments").await?.ok_or_else(|| not_staged("customer_segments"))?;
    ctx.register_table(CURRENT, seg.into_view()).map_err(|e| Error::query("customer_segments", e))?;
    let sql = format!(
        "SELECT segment_id, rfm_segment, lifecycle_stage, value_tier, count(*) AS n FROM {} GROUP BY segment_id, rfm_segment, lifecycle_stage, value_tier",
        quote(CURRENT)
    );
    let b = collect(ctx, "customer_segments", &sql).await?;
    let (id, rfm, stage, tier, n) = (i64s(&b, "segment_id"), strings(&b, "rfm_segment"), strings(&b, "lifecycle_stage"), strings(&b, "value_tier"), i64s(&b, "n"));
    let mut groups = Groups::new();
    let mut counts = RfmCounts::default();
    let mut missing = 0;
    for i in 0..n.len() {
        let k = n[i] as usize;
        groups.entry(id[i] as i32).or_default().push((stage[i].clone(), tier[i].clone(), k));
        let add = |by: &mut BTreeMap<String, usize>, v: &Option<String>| {
            if let Some(v) = v {
                *by.entry(v.clone()).or_insert(0) += k;
            }
        };
        add(&mut counts.rfm, &rfm[i]);
        add(&mut counts.lifecycle, &stage[i]);
        add(&mut counts.value, &tier[i]);
        missing += if stage[i].is_none() { k } else { 0 };
    }
    Ok((groups, counts, missing))
}

/// The dominant (lifecycle stage, value tier) of each profile, as `stats::dominant` picks it.
pub(super) fn dominant_groups(seg: &Segmentation, groups: &Groups) -> Vec<(Option<Lifecycle>, Option<ValueTier>)> {
    let stage_of = |s: &str| Lifecycle::ALL.iter().copied().find(|l| l.as_str() == s);
    let tier_of = |s: &str| ValueTier::ALL.iter().copied().find(|t| t.as_str() == s);
    seg.profiles
        .iter()
        .map(|p| {
            let (mut stages, mut tiers) = (BTreeMap::new(), BTreeMap::new());
            for (s, t, n) in groups.get(&p.segment_id).into_iter().flatten() {
                if let Some(s) = s.as_deref().and_then(stage_of) {
                    *stages.entry(s).or_insert(0) += n;
                }
                if let Some(t) = t.as_deref().and_then(tier_of) {
                    *tiers.entry(t).or_insert(0) += n;
                }
            }
            (dominant_of_counts(stages), dominant_of_counts(tiers))
        })
        .collect()
}

/// Per profile, CLV totals over its customers with a CLV: the two staged tables joined on the
/// published id; and (segment, CLV) pairs of the customers whose hash is in the sample, for
/// the report's chart.
pub(super) async fn clv_by_segment(ctx: &SessionContext, publisher: &Publisher, seg: &Segmentation, id: &str, sampled: &str) -> Result<(Vec<ClvTotals>, Vec<(i32, f64)>), Error> {
    let clv = publisher.read_staged_as_published("customer_clv").await?.ok_or_else(|| not_staged("customer_clv"))?;
    let table = "__segvalue_clv_staged";
    ctx.register_table(table, clv.into_view()).map_err(|e| Error::query("customer_clv", e))?;
    let join = format!("{} s JOIN {} c ON s.{id} = c.{id}", quote(CURRENT), quote(table), id = quote(id));
    // Summed as decimals: exact, so the totals do not depend on the order the engine adds
    // rows in (partitions, spilling under a cap); CLV to 1e-12 and P(alive) to 1e-18 each.
    let exact = |x: &str, scale: u8| format!("CAST(sum(CAST({x} AS DECIMAL(38, {scale}))) AS DOUBLE)");
    let sums = format!("{} AS clv, {} AS p", exact("c.clv", 12), exact("c.p_alive", 18));
    let b = collect(ctx, "customer_clv", &format!("SELECT s.segment_id, {sums}, count(c.clv) AS n FROM {join} GROUP BY s.segment_id")).await?;
    let (ids, clv_sum, p_sum, n) = (i64s(&b, "segment_id"), f64s(&b, "clv"), f64s(&b, "p"), i64s(&b, "n"));
    let totals = seg
        .profiles
        .iter()
        .map(|p| match ids.iter().position(|&i| i as i32 == p.segment_id) {
            Some(r) => (clv_sum[r], p_sum[r], n[r] as usize),
            None => (0.0, 0.0, 0),
        })
        .collect();
    let sampled = sampled.replace(&quote(id), &format!("s.{}", quote(id)));
    let b = collect(ctx, "customer_clv", &format!("SELECT s.segment_id, c.clv FROM {join} WHERE c.clv IS NOT NULL AND {sampled}")).await?;
    let pairs = i64s(&b, "segment_id").into_iter().map(|s| s as i32).zip(f64s(&b, "clv")).collect();
    ctx.deregister_table(table).map_err(|e| Error::query("customer_clv", e))?;
    Ok((totals, pairs))
}

/// `segment_transitions` by the engine: the previous run's published `customer_segments`
/// and this run's staged one, full-outer-joined on the published id per segmentation.
pub(super) async fn transitions(s: &Session, publisher: &Publisher, id: &str, with_rfm: bool) -> Result<RecordBatch, Error> {
    let previous = history::previous_run(publisher, s.run_date).await?;
    let before = match previous {
        Some(d) => Some(publisher.published_frame("customer_segments", d).await?),
        None => None,
    };
    let had: Vec<String> = before.as_ref().map(|df| df.schema().fields().iter().map(|f| f.name().clone()).collect()).unwrap_or_default();
    if let Some(df) = before {
        s.ctx.register_table(PREVIOUS, df.into_view()).map_err(|e| Error::query("customer_segments", e))?;
    }
    let mut rows = Vec::new();
    for (kind, column) in history::TRANSITION_COLUMNS {
        if kind != "cluster" && !with_rfm {
            continue;
        }
        let side = |t: &str| format!("SELECT CAST({} AS VARCHAR) AS i, CAST({c} AS VARCHAR) AS l FROM {} WHERE {c} IS NOT NULL", quote(id), quote(t), c = quote(column));
        let sql = if had.iter().any(|c| c == column) && had.iter().any(|c| c == id) {
            format!("SELECT p.l AS f, c.l AS t, count(*) AS n FROM ({}) p FULL OUTER JOIN ({}) c ON p.i = c.i GROUP BY p.l, c.l", side(PREVIOUS), side(CURRENT))
        } else {
            format!("SELECT CAST(NULL AS VARCHAR) AS f, l AS t, count(*) AS n FROM ({}) c GROUP BY l", side(CURRENT))
        };
        let b = collect(&s.ctx, "customer_segments", &sql).await?;
        let pairs = strings(&b, "f").into_iter().zip(strings(&b, "t")).zip(i64s(&b, "n")).map(|((f, t), n)| (f, t, n as u64)).collect();
        rows.extend(segment::transitions::from_pair_counts(pairs).into_iter().map(|t| (kind, t)));
    }
    if previous.is_some() {
        s.ctx.deregister_table(PREVIOUS).map_err(|e| Error::query("customer_segments", e))?;
    }
    Ok(history::transitions_table(previous, rows))
}
