//! What `validate`, `check`, `preview`, `explain` and `runs` print: the library computes the views,
//! rows, plans and runs; this module lays them out on stdout and stderr.

use anyhow::Context;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use segvalue::pipeline::{Preflight, Session, ViewPlan};
use segvalue::runs::RunStatus;

/// `validate`: one line per view (name, file, columns), then a count on stderr.
pub fn print_views(session: &Session) {
    for v in &session.views {
        let cols: Vec<String> = v.schema.fields().iter().map(|f| format!("{} {}", f.name(), f.data_type())).collect();
        println!("{}\t{}\t{}", v.name, v.path.display(), cols.join(", "));
    }
    eprintln!("ok: {} views planned", session.views.len());
}

/// `check`: what the preflight found, one line each, then the views as `validate` prints them.
pub fn print_check(checked: &Preflight, session: &Session) {
    for (name, url, files) in &checked.sources {
        println!("source\t{name}\t{files} files\t{url}");
    }
    println!("output\twritable\t{}", checked.output);
    for (what, date) in &checked.models {
        println!("model\t{what}\tsaved {date}");
    }
    print_views(session);
}

/// `preview`: the rows as a table.
pub fn print_rows(batches: &[RecordBatch]) -> anyhow::Result<()> {
    println!("{}", pretty_format_batches(batches).context("formatting rows")?);
    Ok(())
}

/// `explain`: one view's plans under a `-- view` line.
pub fn print_plan(plan: &ViewPlan) {
    println!("-- view {}", plan.view);
    for (kind, text) in &plan.plans {
        println!("{kind}:\n{text}");
    }
}

/// `runs`: a tab-separated table of the run dates under `root`.
pub fn print_runs(root: &str, runs: Vec<RunStatus>) {
    if runs.is_empty() {
        eprintln!("no runs under {}", segvalue::location::redact(root));
    }
    println!("run_date\tstatus\ttables\trows\trun_id\treason\tdelta_versions");
    for r in runs {
        let status = if r.incomplete.is_some() { "incomplete" } else { "complete" };
        // Delta tables: "table=version" per table, the version holding the date's rows.
        let versions: Vec<String> = r.delta_versions.iter().map(|(t, v)| format!("{t}={v}")).collect();
        println!(
            "{}\t{status}\t{}\t{}\t{}\t{}\t{}",
            r.run_date,
            r.tables,
            r.rows,
            r.run_id.unwrap_or_default(),
            r.incomplete.unwrap_or_default(),
            versions.join(" ")
        );
    }
}
