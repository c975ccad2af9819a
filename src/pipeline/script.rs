//! `segvalue sql`: the SQL a run executes, as one script another engine can run.
//!
//! Sources become comment lines (`-- source <table> <format> <url>`) for the reader to bind;
//! then come the quality checks, the filtering views and the view files in dependency order
//! with parameters substituted. Views a run computes once ([`views::CachedView`]) are
//! `CREATE TEMP TABLE`, the rest `CREATE VIEW`, so a peer such as DuckDB does the same work.

use chrono::NaiveDate;

use super::session::{Open, open_with};
use crate::error::Error;
use crate::job::{Job, SourceFormat};
use crate::location::redact;
use crate::params::ParamValue;
use crate::quality::{self, quote};
use crate::views;

pub async fn script(job: &Job, run_date: NaiveDate, cli_params: &[(String, ParamValue)]) -> Result<String, Error> {
    let session = open_with(job, run_date, cli_params, Open::Run).await?;
    let mut out = vec![format!("-- segvalue sql: job {}, run date {run_date}", job.name)];
    for s in &job.sources {
        let table = if job.quality.contains_key(&s.name) { quality::raw_name(&s.name) } else { s.name.clone() };
        let format = match s.format {
            SourceFormat::Parquet => "parquet",
            SourceFormat::Csv => "csv",
        };
        out.push(format!("-- source {table} {format} {}", redact(s.url.as_str())));
    }
    for (name, rules) in &job.quality {
        let dedupe = session.quality.iter().find(|(n, _, _)| n == name).map_or(quality::Dedupe::All, |(_, _, d)| d.clone());
        out.extend(quality::check_script(name, rules, &session.params, &dedupe).into_iter().map(|s| s + ";"));
        out.push(format!("CREATE VIEW {} AS {};", quote(name), quality::view_sql(name, rules, &session.params, &dedupe)));
    }
    for (v, registered) in session.files.iter().zip(&session.views) {
        let kind = if registered.cached { "TEMP TABLE" } else { "VIEW" };
        out.push(format!("CREATE {kind} {} AS {};", quote(&v.name), views::substituted(v, &session.params)?));
    }
    Ok(out.join("\n") + "\n")
}
