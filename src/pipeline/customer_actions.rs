//! `customer_actions`: each customer's recommended action, its expected value and the order in
//! which a CRM should contact customers. A plan over the staged `customer_segments` (lifecycle
//! stage and value tier give the action key) and `customer_clv` (P(alive) and the expected
//! order value), so the engine computes it and the driver never holds the customers.

use std::time::Instant;

use super::manifest::Stages;
use super::query::{collect, f64s, i64s, num, strings, text};
use super::session::Session;
use crate::error::Error;
use crate::publish::Publisher;
use crate::quality::quote;
use crate::report::ActionTotals;
use crate::segment::rfm::{ActionKey, Lifecycle, ValueTier, group_action_key};
use crate::segment::spec::ActionsSpec;

const TABLE: &str = "customer_actions";
/// The staged tables, as the plan reads them.
const SEGMENTS: &str = "__segvalue_actions_segments";
const CLV: &str = "__segvalue_actions_clv";
const STAGED: &str = "__segvalue_actions_staged";

/// Stages `customer_actions` when the run has clusters with RFM tiers and CLV, ranked by
/// expected value (`priority` 1 is the customer most worth contacting); returns its totals
/// per action key for the report.
pub(super) async fn customer_actions_stage(s: &Session, publisher: &mut Publisher, stages: &mut Stages) -> Result<Option<Vec<ActionTotals>>, Error> {
    let (Some(seg), Some(clv), Some(_)) = (&s.job.segmentation, &s.job.clv, &s.job.rfm) else {
        return Ok(None);
    };
    let t = Instant::now();
    let q = |e| Error::query(TABLE, e);
    // As published (pseudonymised ids): both tables carry the same pseudonyms, and the result
    // is staged without pseudonymising again.
    for (table, name) in [("customer_segments", SEGMENTS), ("customer_clv", CLV)] {
        let df = publisher.read_staged_as_published(table).await?.ok_or_else(|| q(not_staged(table)))?;
        s.ctx.register_table(name, df.into_view()).map_err(q)?;
    }
    let margin = s.job.actions.margin.unwrap_or(clv.margin);
    let sql = actions_sql(&s.job.actions, margin, &seg.id, &clv.id);
    let df = s.ctx.sql(&sql).await.map_err(q)?;
    // Not sorted again: the window's one ordered partition is already in priority order (the
    // test reads the file in its order).
    let rows = publisher.stage_from_published(TABLE, df, &[]).await?;
    for name in [SEGMENTS, CLV] {
        s.ctx.deregister_table(name).map_err(q)?;
    }
    let totals = totals(s, publisher).await?;
    stages.record("actions", t, None, Some(rows));
    tracing::info!(customers = rows, margin, "customer actions ranked by expected value");
    Ok(Some(totals))
}

/// Per action key of the staged table: customers, and over those to contact the customers,
/// cost and expected value. Summed as decimals, exact whatever order the engine adds in.
async fn totals(s: &Session, publisher: &Publisher) -> Result<Vec<ActionTotals>, Error> {
    let df = publisher.read_staged_as_published(TABLE).await?.ok_or_else(|| Error::query(TABLE, not_staged(TABLE)))?;
    s.ctx.register_table(STAGED, df.into_view()).map_err(|e| Error::query(TABLE, e))?;
    let exact = |x: &str| format!("CAST(sum(CASE WHEN contact THEN CAST({x} AS DECIMAL(38, 12)) END) AS DOUBLE)");
    let sql = format!(
        "SELECT action_key, recommended_action, count(*) AS customers, count(CASE WHEN contact THEN 1 END) AS contact, \
           {} AS cost, {} AS expected_value FROM {} GROUP BY action_key, recommended_action ORDER BY expected_value DESC NULLS LAST, action_key",
        exact("cost"),
        exact("expected_value"),
        quote(STAGED)
    );
    let b = collect(&s.ctx, TABLE, &sql).await?;
    s.ctx.deregister_table(STAGED).map_err(|e| Error::query(TABLE, e))?;
    let (key, action, customers, contact) = (strings(&b, "action_key"), strings(&b, "recommended_action"), i64s(&b, "customers"), i64s(&b, "contact"));
    let (cost, value) = (f64s(&b, "cost"), f64s(&b, "expected_value"));
    Ok((0..key.len())
        .map(|i| ActionTotals {
            key: key[i].clone().unwrap_or_default(),
            action: action[i].clone().unwrap_or_default(),
            customers: customers[i] as u64,
            contact: contact[i] as u64,
            // No customer to contact: a NULL sum, nothing spent or earned.
            cost: if contact[i] == 0 { 0.0 } else { cost[i] },
            expected_value: if contact[i] == 0 { 0.0 } else { value[i] },
        })
        .collect())
}

fn not_staged(table: &str) -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::Execution(format!("{table} was not staged before customer_actions"))
}

/// The plan: each customer's key from (lifecycle stage, value tier) as [`group_action_key`]
/// maps them, that key's text, cost and response, and
/// expected value = P(alive) × response × margin × expected order value − cost
/// (see [`crate::segment::rfm::Economics`]). `contact` is true where it is above zero;
/// `priority` numbers customers by expected value, highest first, ties by id, customers
/// without a CLV last.
///
/// Built to fit a small memory pool: the key's text, cost and response are CASE expressions
/// on the key (no join), and the rows the window sorts carry only the key, not the texts,
/// which are added after it.
fn actions_sql(actions: &ActionsSpec, margin: f64, id: &str, clv_id: &str) -> String {
    let pairs: Vec<(Lifecycle, ValueTier)> = Lifecycle::ALL.iter().flat_map(|&stage| ValueTier::ALL.iter().map(move |&tier| (stage, tier))).collect();
    let key_of: Vec<String> = pairs
        .iter()
        .map(|(stage, tier)| {
            let key = group_action_key(*stage, *tier);
            format!("WHEN lifecycle_stage = {} AND value_tier = {} THEN {}", text(stage.as_str()), text(tier.as_str()), text(key.as_str()))
        })
        .collect();
    // One CASE per property of the key, over every key.
    let by_key = |value: &dyn Fn(ActionKey) -> String| {
        let arms: Vec<String> = ActionKey::ALL.iter().map(|&k| format!("WHEN {} THEN {}", text(k.as_str()), value(k))).collect();
        format!("CASE action_key {} END", arms.join(" "))
    };
    let cost = by_key(&|k| num(actions.economics(k).cost));
    let response = by_key(&|k| num(actions.economics(k).response));
    let action = by_key(&|k| text(&actions.text(k)));
    let id = quote(id);
    format!(
        "SELECT {id}, CAST(row_number() OVER (ORDER BY expected_value DESC NULLS LAST, {id}) AS BIGINT) AS priority, action_key, \
           {action} AS recommended_action, expected_value, coalesce(expected_value > 0, false) AS contact, segment_id, segment_name, \
           lifecycle_stage, value_tier, p_alive, expected_avg_value, {cost} AS cost, {response} AS response \
         FROM (SELECT s.*, c.p_alive, c.expected_avg_value, c.p_alive * {response} * {margin} * c.expected_avg_value - {cost} AS expected_value \
               FROM (SELECT {id}, segment_id, segment_name, lifecycle_stage, value_tier, CASE {keys} END AS action_key FROM {segments}) s \
               LEFT JOIN (SELECT {clv_id}, p_alive, expected_avg_value FROM {clv}) c ON s.{id} = c.{clv_id} \
               WHERE s.action_key IS NOT NULL) a",
        keys = key_of.join(" "),
        margin = num(margin),
        segments = quote(SEGMENTS),
        clv = quote(CLV),
        clv_id = quote(clv_id),
    )
}
