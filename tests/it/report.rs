//! The run report: `<root>/_reports/run_date=D/report.html`, drawn from the run's own tables.

use std::path::Path;

use crate::common::*;

fn report(out: &Path) -> String {
    std::fs::read_to_string(out.join("_reports/run_date=2025-12-31/report.html")).expect("report written")
}

#[test]
fn default_job_report_has_every_chart_from_the_run_data() {
    let out = tempfile::tempdir().unwrap();
    let job = format!("{ROOT}/jobs/retail.toml");
    segvalue_ok(&["run", &job, "--run-date", "2025-12-31", "--output-root", out.path().to_str().unwrap()]);
    let html = report(out.path());

    // Six charts, inline, and nothing fetched from anywhere.
    assert_eq!(html.matches("<svg").count(), 6, "charts");
    assert!(!html.contains("Not run in this job"));
    for external in ["http://", "https://", "src=", "url(", "<script", "<link"] {
        assert!(!html.contains(external), "report references {external}");
    }

    // Drawn from this run: its id, its chosen k, each segment's name and size, and the
    // fitted BG/NBD parameters, as the published tables and manifest give them.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("_manifests/run_date=2025-12-31/manifest.json")).unwrap())
            .unwrap();
    assert!(html.contains(manifest["run_id"].as_str().unwrap()));
    let k = manifest["segmentation"]["k"].as_i64().unwrap();
    assert!(html.contains(&format!("chosen k = {k}")), "chosen k {k} not marked");
    let summary = duckdb(&format!(
        "SELECT segment_name, customers FROM read_parquet('{}/segment_summary/*/*.parquet') ORDER BY segment_id",
        out.path().display()
    ));
    assert_eq!(summary.len() as i64, k);
    for row in &summary {
        let (name, customers) = (row[0].as_str().unwrap(), row[1].as_i64().unwrap());
        let escaped = name.replace('&', "&amp;").replace('<', "&lt;");
        assert!(html.contains(&escaped), "segment {name} missing");
        let formatted = format!("{},{:03}", customers / 1000, customers % 1000);
        let shown = if customers >= 1000 { formatted } else { customers.to_string() };
        assert!(html.contains(&shown), "size {shown} of {name} missing");
    }
    let r = manifest["clv"]["bgnbd"]["params"]["r"].as_f64().unwrap();
    assert!(html.contains(&format!("r = {r:.4}")), "BG/NBD r = {r:.4} missing");
    for title in ["Choosing k", "Segment sizes", "Segment profiles", "CLV by segment", "P(alive)", "Holdout"] {
        assert!(html.contains(title), "section {title} missing");
    }
}

#[test]
fn a_job_without_models_gets_a_report_that_says_so() {
    let j = JobDir::retail("[output]\nroot = \"out\"\npublish_views = [\"kpi_monthly_retention\"]\n");
    segvalue_ok(&["run", &j.job(), "--run-date", "2025-12-31"]);
    let html = report(&j.out());
    assert_eq!(html.matches("<svg").count(), 0);
    assert_eq!(html.matches("Not run in this job").count(), 6);
    assert!(html.contains("kpi_monthly_retention"));
}

#[test]
fn a_failed_run_writes_no_report() {
    let j = JobDir::retail(&format!("{}\n[output]\nroot = \"out\"\n", retail_segmentation("100000")));
    fails(&["run", &j.job(), "--run-date", "2025-12-31"], 2);
    assert!(!j.out().join("_reports").exists());
}
