//! SQL parameters: `$name` placeholders in view files.
//!
//! Before a view is planned, every `$name` in its parsed SQL is replaced by a typed SQL
//! literal. Doing this on the AST (not on text, and not through DataFusion's untyped
//! placeholders) gives the planner full type information, e.g. `$run_date - INTERVAL '90 days'`
//! is a DATE expression, and a `$name` inside a string literal is left alone.
//!
//! Built-in parameters:
//! - `$run_date` — `DATE 'YYYY-MM-DD'`, the observation end;
//! - `$run_end_ts` — the first instant after the run date, UTC (`TIMESTAMP`), the exclusive
//!   upper bound for event timestamps: `WHERE order_ts < $run_end_ts`;
//! - `$calibration_end` — `DATE`, the end of the CLV holdout's calibration period
//!   (`run_date − [clv] holdout_days`; the run date when there is no holdout), so a summary
//!   view can compute the calibration columns in the same scan (README "Lifetime value").
//!
//! User parameters come from `[params]` in the job file and `--param name=value` (which wins).
//! A `--param` value is read as a TOML value: `10` is BIGINT, `2.5` DOUBLE, `true` BOOLEAN,
//! `2025-01-01` DATE, anything else a string.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use chrono::{Days, NaiveDate};
use datafusion::sql::sqlparser::ast::{Expr, Statement, Value, visit_expressions_mut};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

pub const RUN_DATE: &str = "run_date";
pub const RUN_END_TS: &str = "run_end_ts";
pub const CALIBRATION_END: &str = "calibration_end";
const BUILT_IN: &[&str] = &[RUN_DATE, RUN_END_TS, CALIBRATION_END];

#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Date(NaiveDate),
    /// UTC timestamp, microsecond precision.
    Timestamp(chrono::NaiveDateTime),
}

impl ParamValue {
    pub fn from_toml(v: &toml::Value) -> Result<ParamValue, String> {
        Ok(match v {
            toml::Value::Integer(i) => ParamValue::Int(*i),
            toml::Value::Float(f) => ParamValue::Float(*f),
            toml::Value::Boolean(b) => ParamValue::Bool(*b),
            toml::Value::String(s) => ParamValue::Str(s.clone()),
            toml::Value::Datetime(d) => match (d.date, d.time) {
                (Some(date), None) => ParamValue::Date(
                    NaiveDate::from_ymd_opt(date.year as i32, date.month as u32, date.day as u32)
                        .ok_or_else(|| format!("invalid date {d}"))?,
                ),
                _ => return Err(format!("only plain dates are supported as parameters, got {d}")),
            },
            other => return Err(format!("a parameter must be a number, boolean, string or date, got {other}")),
        })
    }

    /// Reads a `--param` value: a TOML scalar if it parses as one, otherwise a string.
    pub fn from_cli(s: &str) -> ParamValue {
        toml::from_str::<toml::Table>(&format!("v = {s}"))
            .ok()
            .and_then(|t| t.get("v").and_then(|v| ParamValue::from_toml(v).ok()))
            .unwrap_or_else(|| ParamValue::Str(s.to_string()))
    }

    /// The SQL literal that replaces the placeholder.
    pub(crate) fn to_sql(&self) -> String {
        match self {
            ParamValue::Int(i) => i.to_string(),
            // `{:?}` keeps a decimal point (`1.0`), so the literal stays a DOUBLE.
            ParamValue::Float(f) if f.is_finite() => format!("{f:?}"),
            ParamValue::Float(f) => format!("CAST('{f}' AS DOUBLE)"),
            ParamValue::Bool(b) => b.to_string(),
            ParamValue::Str(s) => format!("'{}'", s.replace('\'', "''")),
            ParamValue::Date(d) => format!("DATE '{d}'"),
            ParamValue::Timestamp(t) => format!("TIMESTAMP '{}'", t.format("%Y-%m-%dT%H:%M:%S%.6f")),
        }
    }

    fn to_expr(&self) -> Expr {
        let sql = self.to_sql();
        // The literals above are always valid SQL; a failure here is a bug, not bad input.
        Parser::new(&GenericDialect {})
            .try_with_sql(&sql)
            .and_then(|mut p| p.parse_expr())
            .unwrap_or_else(|e| panic!("internal: parameter literal {sql} does not parse: {e}"))
    }
}

/// The plain value, as the manifest records it.
impl std::fmt::Display for ParamValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Float(x) => write!(f, "{x:?}"),
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Str(s) => f.write_str(s),
            ParamValue::Date(d) => write!(f, "{d}"),
            ParamValue::Timestamp(t) => write!(f, "{}Z", t.format("%Y-%m-%dT%H:%M:%S")),
        }
    }
}

/// User parameter names must not shadow the built-ins.
pub fn check_user_name(name: &str) -> Result<(), String> {
    crate::names::check_name(name)?;
    if BUILT_IN.contains(&name) {
        return Err(format!("'{name}' is a built-in parameter and cannot be set"));
    }
    Ok(())
}

/// Parses `name=value` from the command line.
pub fn parse_cli_param(s: &str) -> Result<(String, ParamValue), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("--param '{s}' must look like name=value"))?;
    let name = name.trim();
    check_user_name(name).map_err(|m| format!("--param {m}"))?;
    Ok((name.to_string(), ParamValue::from_cli(value)))
}

/// The full parameter set for one run.
#[derive(Debug, Clone)]
pub struct Params {
    values: BTreeMap<String, ParamValue>,
}

impl Params {
    pub fn new(
        run_date: NaiveDate,
        calibration_end: NaiveDate,
        job_params: &BTreeMap<String, ParamValue>,
        cli: &[(String, ParamValue)],
    ) -> Params {
        let mut values = job_params.clone();
        for (k, v) in cli {
            values.insert(k.clone(), v.clone());
        }
        let end = run_date
            .checked_add_days(Days::new(1))
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("run date + 1 day is representable");
        values.insert(RUN_DATE.into(), ParamValue::Date(run_date));
        values.insert(RUN_END_TS.into(), ParamValue::Timestamp(end));
        values.insert(CALIBRATION_END.into(), ParamValue::Date(calibration_end));
        Params { values }
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.values.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &ParamValue)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Replaces every `$name` in `stmt` with its literal; a name without a value is returned
    /// as the error.
    pub fn substitute(&self, stmt: &mut Statement) -> Result<(), String> {
        let flow = visit_expressions_mut(stmt, |expr| {
            if let Expr::Value(v) = expr
                && let Value::Placeholder(p) = &v.value
            {
                let name = p.trim_start_matches(['$', ':', '@']);
                match self.values.get(name) {
                    Some(value) => *expr = value.to_expr(),
                    None => return ControlFlow::Break(p.clone()),
                }
            }
            ControlFlow::Continue(())
        });
        match flow {
            ControlFlow::Break(p) => Err(p),
            ControlFlow::Continue(()) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_values_are_typed_like_toml() {
        assert_eq!(ParamValue::from_cli("10"), ParamValue::Int(10));
        assert_eq!(ParamValue::from_cli("2.5"), ParamValue::Float(2.5));
        assert_eq!(ParamValue::from_cli("true"), ParamValue::Bool(true));
        assert_eq!(
            ParamValue::from_cli("2025-01-31"),
            ParamValue::Date(NaiveDate::from_ymd_opt(2025, 1, 31).unwrap())
        );
        assert_eq!(ParamValue::from_cli("tier1"), ParamValue::Str("tier1".into()));
        assert_eq!(ParamValue::from_cli("it's"), ParamValue::Str("it's".into()));
    }

    #[test]
    fn strings_are_quoted_safely() {
        assert_eq!(ParamValue::Str("a'b".into()).to_sql(), "'a''b'");
    }

    #[test]
    fn built_ins_cannot_be_overridden() {
        assert_eq!(
            parse_cli_param("run_date=2020-01-01").unwrap_err(),
            "--param 'run_date' is a built-in parameter and cannot be set"
        );
    }

    #[test]
    fn run_end_is_the_next_midnight() {
        let day = NaiveDate::from_ymd_opt(2025, 12, 31).unwrap();
        let p = Params::new(day, day, &BTreeMap::new(), &[]);
        assert_eq!(p.values[RUN_END_TS].to_sql(), "TIMESTAMP '2026-01-01T00:00:00.000000'");
    }

    #[test]
    fn calibration_end_is_a_built_in_date() {
        let p = Params::new(NaiveDate::from_ymd_opt(2025, 12, 31).unwrap(), NaiveDate::from_ymd_opt(2025, 10, 2).unwrap(), &BTreeMap::new(), &[]);
        assert_eq!(p.values[CALIBRATION_END].to_sql(), "DATE '2025-10-02'");
        assert!(parse_cli_param("calibration_end=2020-01-01").is_err());
    }
}
