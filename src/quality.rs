//! Data-quality rules on sources, checked before anything is modelled.
//!
//! A source with rules is registered under a hidden raw name, and the source's own name
//! becomes a view that filters out the rows broken by `drop` rules, so every feature view
//! reads clean data without knowing about the rules. [`check`] counts the broken rows of each
//! rule on the raw input (a row can break several rules) and fails on `error` rules.
//!
//! Rules, each `{ column(s) = …, action = "error" | "drop" }`:
//! - `duplicate_ids`: more than one row per id; `drop` keeps the first (ordered by the other
//!   rule columns), so counts are rows beyond the first;
//! - `null_ids`: a null in any of `columns`;
//! - `bad_amounts`: negative, NaN, infinite or null values in any of `columns`;
//! - `future_timestamps`: `column` at or after the end of the run date.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::execution::context::SessionContext;
use serde::{Deserialize, Serialize};

use crate::text::one_line;
use crate::params::{Params, RUN_END_TS};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Error,
    Drop,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnRule {
    pub column: String,
    pub action: Action,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnsRule {
    pub columns: Vec<String>,
    pub action: Action,
}

/// `[quality.<source>]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceRules {
    pub duplicate_ids: Option<ColumnRule>,
    pub null_ids: Option<ColumnsRule>,
    pub bad_amounts: Option<ColumnsRule>,
    pub future_timestamps: Option<ColumnRule>,
}

#[derive(Debug, thiserror::Error)]
pub enum QualityError {
    #[error("source '{source_name}': quality rule {rule} failed: {count} row(s) with {what}")]
    Failed {
        source_name: String,
        rule: &'static str,
        what: String,
        count: u64,
    },
    #[error("source '{source_name}': quality rules do not fit the source: {message}")]
    BadRule { source_name: String, message: String },
    #[error("source '{source_name}': quality rule {rule}: {message}")]
    Query {
        source_name: String,
        rule: &'static str,
        message: String,
    },
}

impl QualityError {
    pub fn is_config(&self) -> bool {
        matches!(self, QualityError::BadRule { .. })
    }
}

/// One rule's outcome, as the manifest records it.
#[derive(Debug, Clone, Serialize)]
pub struct RuleCount {
    pub source: String,
    pub rule: &'static str,
    pub columns: Vec<String>,
    pub action: Action,
    pub rows: u64,
}

/// The hidden name the raw source is registered under when it has rules.
pub fn raw_name(source: &str) -> String {
    format!("__raw_{source}")
}

/// A quoted SQL identifier.
pub(crate) fn quote(c: &str) -> String {
    format!("\"{}\"", c.replace('"', "\"\""))
}

struct Rule<'a> {
    name: &'static str,
    columns: Vec<&'a str>,
    action: Action,
    /// SQL predicate true for a broken row (all rules but duplicates).
    broken: Option<String>,
    what: String,
}

fn rules<'a>(r: &'a SourceRules, params: &Params) -> Vec<Rule<'a>> {
    let mut out = Vec::new();
    if let Some(n) = &r.null_ids {
        out.push(Rule {
            name: "null_ids",
            columns: n.columns.iter().map(String::as_str).collect(),
            action: n.action,
            broken: Some(n.columns.iter().map(|c| format!("{} IS NULL", quote(c))).collect::<Vec<_>>().join(" OR ")),
            what: format!("a null {}", n.columns.join(" or ")),
        });
    }
    if let Some(b) = &r.bad_amounts {
        let pred = b
            .columns
            .iter()
            .map(|c| {
                let v = format!("CAST({} AS DOUBLE)", quote(c));
                format!("({v} IS NULL OR isnan({v}) OR {v} < 0 OR {v} = CAST('inf' AS DOUBLE))")
            })
            .collect::<Vec<_>>()
            .join(" OR ");
        out.push(Rule {
            name: "bad_amounts",
            columns: b.columns.iter().map(String::as_str).collect(),
            action: b.action,
            broken: Some(pred),
            what: format!("a negative, NaN, infinite or null {}", b.columns.join(" or ")),
        });
    }
    if let Some(f) = &r.future_timestamps {
        let end = params.get(RUN_END_TS).map(|v| v.to_sql()).unwrap_or_default();
        out.push(Rule {
            name: "future_timestamps",
            columns: vec![f.column.as_str()],
            action: f.action,
            broken: Some(format!("{} >= {end}", quote(&f.column))),
            what: format!("{} after the run date", f.column),
        });
    }
    if let Some(d) = &r.duplicate_ids {
        out.push(Rule {
            name: "duplicate_ids",
            columns: vec![d.column.as_str()],
            action: d.action,
            broken: None,
            what: format!("a duplicate {}", d.column),
        });
    }
    out
}

/// How the filtering view removes duplicate ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dedupe {
    /// `DISTINCT ON` over every row: what `validate`, `preview` and `explain` plan.
    All,
    /// The check found no id on more than one row, so the view only filters.
    Nothing,
    /// Only rows whose id is NULL or listed in this table (the ids the check found on more
    /// than one row) go through `DISTINCT ON`; the rest pass unchanged. Same rows as [`All`]
    /// without hashing every id: duplicates are rare, a full `DISTINCT ON` costs a
    /// first-value aggregate per column over all rows.
    ///
    /// [`All`]: Dedupe::All
    Only(String),
}

/// The hidden table holding `source`'s duplicated ids for [`Dedupe::Only`].
pub fn duplicates_name(source: &str) -> String {
    format!("__duplicated_{source}")
}

/// The SQL of the filtering view that replaces `source`.
pub fn view_sql(source: &str, r: &SourceRules, params: &Params, dedupe: &Dedupe) -> String {
    let raw = quote(&raw_name(source));
    let rules = rules(r, params);
    let drops: Vec<String> = rules
        .iter()
        .filter(|r| r.action == Action::Drop)
        // A null predicate (e.g. a null timestamp) is not a broken row: keep it.
        .filter_map(|r| r.broken.as_ref().map(|p| format!("NOT COALESCE(({p}), FALSE)")))
        .collect();
    let filtered = if drops.is_empty() {
        format!("SELECT * FROM {raw}")
    } else {
        format!("SELECT * FROM {raw} WHERE {}", drops.join(" AND "))
    };
    let Some(d) = r.duplicate_ids.as_ref().filter(|d| d.action == Action::Drop) else {
        return filtered;
    };
    let id = quote(&d.column);
    // Order by the timestamp rule's column when there is one, so "first" is the earliest.
    let tie = r.future_timestamps.as_ref().map(|f| format!(", {}", quote(&f.column))).unwrap_or_default();
    // Parenthesised: as a branch of the UNION ALL below, a bare ORDER BY would sort the union
    // and leave DISTINCT ON to keep an arbitrary row per id.
    let distinct_on = |rows: &str| format!("SELECT * FROM (SELECT DISTINCT ON ({id}) * FROM ({rows}) ORDER BY {id}{tie})");
    match dedupe {
        Dedupe::All => distinct_on(&filtered),
        Dedupe::Nothing => filtered,
        Dedupe::Only(table) => {
            let dup = format!("EXISTS (SELECT 1 FROM {} d WHERE d.{id} = f.{id})", quote(table));
            format!(
                "SELECT * FROM ({filtered}) f WHERE f.{id} IS NOT NULL AND NOT {dup} \
                 UNION ALL {}",
                distinct_on(&format!("SELECT * FROM ({filtered}) f WHERE f.{id} IS NULL OR {dup}"))
            )
        }
    }
}

/// One query counting the rows each row rule (all but duplicates) matches.
fn row_rules_sql(raw: &str, rules: &[Rule]) -> Option<String> {
    let cols: Vec<String> = rules
        .iter()
        .filter_map(|r| r.broken.as_ref().map(|p| format!("count(*) FILTER (WHERE {p})")))
        .collect();
    (!cols.is_empty()).then(|| format!("SELECT {} FROM {raw}", cols.join(", ")))
}

/// The ids on more than one row, with their row counts.
fn duplicates_sql(raw: &str, column: &str) -> String {
    let c = quote(column);
    format!("SELECT {c}, count(*) AS n FROM {raw} GROUP BY {c} HAVING count(*) > 1")
}

/// The statements [`check`] runs on `source` and, for [`Dedupe::Only`], the one creating the
/// duplicated-ids table, as SQL text (for `segvalue sql`).
pub fn check_script(source: &str, r: &SourceRules, params: &Params, dedupe: &Dedupe) -> Vec<String> {
    let raw = quote(&raw_name(source));
    let rules = rules(r, params);
    let mut out: Vec<String> = row_rules_sql(&raw, &rules).into_iter().collect();
    if let Some(d) = &r.duplicate_ids {
        // One grouping serves the count and, when ids repeat, the table of them.
        out.push(match dedupe {
            Dedupe::Only(table) => format!("CREATE TEMP TABLE {} AS {}", quote(table), duplicates_sql(&raw, &d.column)),
            _ => duplicates_sql(&raw, &d.column),
        });
    }
    out
}

/// What [`check`] found on one source.
#[derive(Debug, Clone)]
pub struct Checked {
    pub counts: Vec<RuleCount>,
    /// With a `duplicate_ids` rule: the non-null ids on more than one raw row.
    pub duplicated: Option<datafusion::arrow::record_batch::RecordBatch>,
}

impl Checked {
    /// The dedupe the filtering view needs.
    pub fn dedupe_for(&self, source: &str) -> Dedupe {
        match &self.duplicated {
            Some(ids) if ids.num_rows() > 0 => Dedupe::Only(duplicates_name(source)),
            _ => Dedupe::Nothing,
        }
    }

    /// [`Checked::dedupe_for`], registering the duplicated ids when there are any.
    pub fn dedupe(&self, ctx: &SessionContext, source: &str) -> datafusion::error::Result<Dedupe> {
        let dedupe = self.dedupe_for(source);
        if let (Dedupe::Only(name), Some(ids)) = (&dedupe, &self.duplicated) {
            let table = datafusion::datasource::MemTable::try_new(ids.schema(), vec![vec![ids.clone()]])?;
            ctx.register_table(name.as_str(), std::sync::Arc::new(table))?;
        }
        Ok(dedupe)
    }
}

/// Counts broken rows per rule on the raw source, in one scan for the row rules and one
/// grouping for duplicates; fails on the first `error` rule (in rule order) with rows.
pub async fn check(
    ctx: &SessionContext,
    source: &str,
    r: &SourceRules,
    params: &Params,
) -> Result<Checked, QualityError> {
    let raw = quote(&raw_name(source));
    let rules = rules(r, params);
    let query = |rule: &'static str, sql: String| async move {
        let qerr = |e: &dyn std::fmt::Display| QualityError::Query {
            source_name: source.to_string(),
            rule,
            message: one_line(e),
        };
        let batches = ctx.sql(&sql).await.map_err(|e| qerr(&e))?.collect().await.map_err(|e| qerr(&e))?;
        let schema = batches.first().map(|b| b.schema());
        match schema {
            Some(schema) => datafusion::arrow::compute::concat_batches(&schema, &batches).map_err(|e| qerr(&e)),
            None => Ok(datafusion::arrow::record_batch::RecordBatch::new_empty(std::sync::Arc::new(
                datafusion::arrow::datatypes::Schema::empty(),
            ))),
        }
    };
    let mut rows_of: Vec<u64> = Vec::with_capacity(rules.len());
    let row_counts = match (rules.iter().find(|r| r.broken.is_some()), row_rules_sql(&raw, &rules)) {
        (Some(first), Some(sql)) => Some(query(first.name, sql).await?),
        _ => None,
    };
    let mut duplicated = None;
    let mut next_row_rule = 0;
    for rule in &rules {
        let rows = match &rule.broken {
            Some(_) => {
                let b = row_counts.as_ref().expect("row rules counted");
                next_row_rule += 1;
                b.columns().get(next_row_rule - 1).and_then(|c| c.as_primitive_opt::<Int64Type>()).filter(|c| !c.is_empty()).map_or(0, |c| c.value(0))
            }
            None => {
                let ids = query(rule.name, duplicates_sql(&raw, rule.columns[0])).await?;
                // Rows beyond the first per non-null id; NULL ids are the null_ids rule's business.
                let mut extra = 0i64;
                if ids.num_columns() == 2 {
                    let n = ids.column(1).as_primitive::<Int64Type>();
                    extra = (0..ids.num_rows()).filter(|&i| ids.column(0).is_valid(i)).map(|i| n.value(i) - 1).sum();
                    duplicated = Some(ids.project(&[0]).map_err(|e| QualityError::Query {
                        source_name: source.to_string(),
                        rule: rule.name,
                        message: one_line(&e),
                    })?);
                }
                extra
            }
        };
        rows_of.push(rows.max(0) as u64);
    }
    let mut counts = Vec::new();
    for (rule, rows) in rules.into_iter().zip(rows_of) {
        if rows > 0 {
            tracing::warn!(source, rule = rule.name, rows, action = ?rule.action, "data-quality rule matched rows");
        }
        if rows > 0 && rule.action == Action::Error {
            return Err(QualityError::Failed {
                source_name: source.to_string(),
                rule: rule.name,
                what: rule.what,
                count: rows,
            });
        }
        counts.push(RuleCount {
            source: source.to_string(),
            rule: rule.name,
            columns: rule.columns.iter().map(|c| c.to_string()).collect(),
            action: rule.action,
            rows,
        });
    }
    Ok(Checked { counts, duplicated })
}
