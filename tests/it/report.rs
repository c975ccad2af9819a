//! The run report: `<root>/_reports/run_date=D/report.html`, drawn from the run's own tables.

use std::path::Path;

use crate::common::*;

fn report(out: &Path) -> String {
    std::fs::read_to_string(out.join("_reports/run_date=2025-12-31/report.html")).expect("report written")
}

/// The texts drawn in the SVG of the section with this id, in drawing order (plotters writes
/// each `<text …>` element's content between newlines).
fn svg_texts(html: &str, section: &str) -> Vec<String> {
    let start = html.find(&format!("<section id=\"{section}\">")).unwrap_or_else(|| panic!("section {section}"));
    let body = &html[start..];
    let body = &body[..body.find("</section>").expect("section closed")];
    body.split("<text")
        .skip(1)
        .map(|t| {
            let (open, close) = (t.find('>').expect("text tag"), t.find("</text>").expect("text closed"));
            t[open + 1..close].trim().to_string()
        })
        .collect()
}

/// A bar's label: "1,234 (56.7%)".
fn is_bar_label(t: &str) -> bool {
    let Some((count, share)) = t.split_once(" (") else { return false };
    let share = share.strip_suffix("%)").unwrap_or("");
    !count.is_empty()
        && count.chars().all(|c| c.is_ascii_digit() || c == ',')
        && share.split_once('.').is_some_and(|(a, b)| {
            !a.is_empty() && a.chars().all(|c| c.is_ascii_digit()) && b.len() == 1 && b.chars().all(|c| c.is_ascii_digit())
        })
}

/// 1234567 → "1,234,567".
fn thousands(n: i64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[test]
fn default_job_report_has_every_chart_from_the_run_data() {
    let out = tempfile::tempdir().unwrap();
    let job = format!("{ROOT}/jobs/retail.toml");
    segvalue_ok(&["run", &job, "--run-date", "2025-12-31", "--output-root", out.path().to_str().unwrap()]);
    let html = report(out.path());

    // Seven charts, inline, and nothing fetched from anywhere.
    assert_eq!(html.matches("<svg").count(), 7, "charts");
    assert!(!html.contains("Not run in this job"));
    for external in ["http://", "https://", "src=", "url(", "<script", "<link"] {
        assert!(!html.contains(external), "report references {external}");
    }

    // Drawn from this run: its id, its chosen k, each segment's name and size, and the
    // fitted BG/NBD parameters, as the published tables and manifest give them.
    let manifest = manifest(out.path(), "2025-12-31");
    assert!(html.contains(manifest["run_id"].as_str().unwrap()));
    let k = manifest["segmentation"]["k"].as_i64().unwrap();
    assert!(html.contains(&format!("chosen k = {k}")), "chosen k {k} not marked");
    // Segments in display order: ids 0..k, then noise (-1) if any, as the segmentation lists them.
    let summary = duckdb(&format!(
        "SELECT segment_name, customers FROM read_parquet('{}/segment_summary/*/*.parquet') \
         ORDER BY segment_id < 0, segment_id",
        out.path().display()
    ));
    assert_eq!(summary.len() as i64, k);
    for row in &summary {
        let name = row[0].as_str().unwrap();
        let escaped = name.replace('&', "&amp;").replace('<', "&lt;");
        assert!(html.contains(&escaped), "segment {name} missing");
    }
    // Each size where it is drawn: the label at the end of its bar in the segment-size chart,
    // "count (share%)", one per bar in display order.
    let total: i64 = summary.iter().map(|r| r[1].as_i64().unwrap()).sum();
    let expected: Vec<String> = summary
        .iter()
        .map(|r| {
            let customers = r[1].as_i64().unwrap();
            format!("{} ({:.1}%)", thousands(customers), 100.0 * customers as f64 / total as f64)
        })
        .collect();
    let bar_labels: Vec<String> = svg_texts(&html, "segment-sizes").into_iter().filter(|t| is_bar_label(t)).collect();
    assert_eq!(bar_labels, expected, "segment sizes drawn at the bars");
    let r = manifest["clv"]["bgnbd"]["params"]["r"].as_f64().unwrap();
    assert!(html.contains(&format!("r = {r:.4}")), "BG/NBD r = {r:.4} missing");
    for title in ["Choosing k", "Segment sizes", "Segment profiles", "CLV by segment", "P(alive)", "Holdout", "Who to contact"] {
        assert!(html.contains(title), "section {title} missing");
    }
    // Who to contact: per action key, its customers and those worth contacting, as counted by
    // DuckDB from the published customer_actions.
    let actions = duckdb(&format!(
        "SELECT action_key, recommended_action, count(*), count(*) FILTER (WHERE contact) \
         FROM read_parquet('{}/customer_actions/*/*.parquet') GROUP BY ALL ORDER BY 1",
        out.path().display()
    ));
    assert!(actions.len() >= 5, "{actions:?}");
    for a in &actions {
        let row = format!(
            "<td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            a[0].as_str().unwrap(),
            a[1].as_str().unwrap(),
            thousands(a[2].as_i64().unwrap()),
            thousands(a[3].as_i64().unwrap())
        );
        assert!(html.contains(&row), "{row} missing");
    }
}

/// The default job on the shipped sample finds the generator's five personas (issue #22): an
/// adjusted Rand index of at least 0.8 against the truth (scikit-learn's, in
/// `tests/support/personas.py`), each persona's dominant segment a different one, named for the
/// persona's defining trait and drawn in the report's segment-size chart.
#[test]
fn default_job_finds_the_sample_personas_and_the_report_names_them() {
    let out = tempfile::tempdir().unwrap();
    segvalue_ok(&["run", &format!("{ROOT}/jobs/retail.toml"), "--run-date", "2025-12-31", "--output-root", out.path().to_str().unwrap()]);
    let got = std::process::Command::new(python())
        .arg(Path::new(ROOT).join("tests/support/personas.py"))
        .arg(out.path())
        .arg(Path::new(ROOT).join("data/sample/truth/customers.parquet"))
        .output()
        .unwrap();
    assert!(got.status.success(), "{}", String::from_utf8_lossy(&got.stderr));
    let v: serde_json::Value = serde_json::from_slice(&got.stdout).unwrap();
    let ari = v["ari"].as_f64().unwrap();
    assert!(ari >= 0.8, "adjusted Rand index {ari:.3} against the personas\n{v:#}");
    assert!(v["k"].as_i64().unwrap() > 2, "{v:#}");
    let drawn = svg_texts(&report(out.path()), "segment-sizes");
    // The chart shortens long names with an ellipsis.
    let is_drawn = |name: &str| drawn.iter().any(|t| t == name || t.strip_suffix('…').is_some_and(|p| name.starts_with(p)));
    let mut segments = std::collections::BTreeSet::new();
    for (persona, word) in [
        ("app regulars", "app-first"),
        ("bargain hunters", "frequent"),
        ("browsers", "engaged online"),
        ("lapsed one-timers", "lapsed"),
        ("store big spenders", "rarely online"),
    ] {
        let d = &v["dominant"][persona];
        let name = d["segment_name"].as_str().unwrap_or_else(|| panic!("{persona} missing\n{v:#}"));
        assert!(name.contains(word), "{persona}'s segment is '{name}', without '{word}'");
        assert!(is_drawn(name), "'{name}' not drawn in the segment sizes: {drawn:?}");
        segments.insert(d["segment_id"].as_i64().unwrap());
    }
    assert_eq!(segments.len(), 5, "two personas share a segment\n{v:#}");
}

#[test]
fn a_job_without_models_gets_a_report_that_says_so() {
    let j = JobDir::retail("[output]\nroot = \"out\"\npublish_views = [\"kpi_monthly_retention\"]\n");
    segvalue_ok(&["run", &j.job(), "--run-date", "2025-12-31"]);
    let html = report(&j.out());
    assert_eq!(html.matches("<svg").count(), 0);
    assert_eq!(html.matches("Not run in this job").count(), 8);
    assert!(html.contains("kpi_monthly_retention"));
}

#[test]
fn a_failed_run_writes_no_report() {
    let j = JobDir::retail(&format!("{}\n[output]\nroot = \"out\"\n", retail_segmentation("100000")));
    fails(&["run", &j.job(), "--run-date", "2025-12-31"], 2);
    assert!(!j.out().join("_reports").exists());
}

/// The report as a browser shows it: Chromium opens the default job's report from disk; no
/// console message, page error or failed request, every section's chart drawn at a readable
/// size with its marks, and no text drawn outside its chart. The screenshot stays in
/// `target/test-output/report.png` for a person to look at.
#[test]
fn the_report_renders_in_chromium_without_errors_or_clipped_text() {
    let chromium = std::env::var("SEGVALUE_CHROMIUM").expect("SEGVALUE_CHROMIUM: run the tests with scripts/test.sh, which installs Chromium");
    let out = tempfile::tempdir().unwrap();
    segvalue_ok(&["run", &format!("{ROOT}/jobs/retail.toml"), "--run-date", "2025-12-31", "--output-root", out.path().to_str().unwrap()]);
    let shots = Path::new(&std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| format!("{ROOT}/target"))).join("test-output");
    std::fs::create_dir_all(&shots).unwrap();
    let png = shots.join("report.png");
    let _ = std::fs::remove_file(&png);
    let html = out.path().join("_reports/run_date=2025-12-31/report.html");
    let o = std::process::Command::new(python())
        .args([&format!("{ROOT}/tests/support/report_browser.py"), &chromium, html.to_str().unwrap(), png.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let seen: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(seen["console"], serde_json::json!([]), "console messages");
    assert_eq!(seen["failed_requests"], serde_json::json!([]), "failed requests");
    let charts = seen["charts"].as_array().unwrap();
    let with_chart: Vec<&str> = charts.iter().map(|c| c["section"].as_str().unwrap_or("")).collect();
    assert_eq!(charts.len(), 7, "{with_chart:?}");
    for c in charts {
        let what = &c["section"];
        assert!(c["width"].as_f64().unwrap() >= 300.0 && c["height"].as_f64().unwrap() >= 200.0, "{what}: drawn at {c}");
        assert!(c["marks"].as_u64().unwrap() >= 10 && c["texts"].as_u64().unwrap() >= 3, "{what}: {c}");
        assert_eq!(c["outside"], serde_json::json!([]), "{what}: text drawn outside the chart");
    }
    // Every section but the key numbers and the actions table holds a chart.
    let sections: Vec<&str> = seen["sections"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(sections.last(), Some(&"actions"), "{sections:?}");
    for s in &sections[1..sections.len() - 1] {
        assert!(with_chart.contains(s), "section {s} has no chart ({with_chart:?})");
    }
    assert!(std::fs::metadata(&png).unwrap().len() > 50_000, "no screenshot at {}", png.display());
}
