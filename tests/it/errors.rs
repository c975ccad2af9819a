//! Bad input ends in one clear line, the documented exit code, and nothing published.

use crate::common::*;

const SEGMENT: &str = r#"
[segmentation]
view = "feats"
id = "customer_id"
features = ["n", "spend"]
k = 3

[output]
root = "out"
"#;

#[test]
fn unknown_job_key_is_named_with_exit_2() {
    let j = JobDir::new(&[("v.sql", "SELECT 1 AS x")], "[output]\nroot = \"out\"\nroot_dir = \"x\"\n");
    let (code, _, err) = segvalue(&["validate", &j.job()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("job.toml:") && err.contains("unknown field `root_dir`"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn bad_run_date_quotes_the_value() {
    let j = JobDir::new(&[("v.sql", "SELECT 1 AS x")], "[output]\nroot = \"out\"\n");
    let (code, _, err) = segvalue(&["run", &j.job(), "--run-date", "2025-02-30"]);
    assert_eq!(code, 2);
    assert!(err.contains("run date '2025-02-30' is not a valid YYYY-MM-DD date"), "{err}");
}

#[test]
fn null_feature_names_the_column_and_publishes_nothing() {
    let j = JobDir::new(
        &[(
            "feats.sql",
            "SELECT customer_id, CAST(count(*) AS DOUBLE) AS n,
                    CASE WHEN count(*) > 3 THEN sum(amount) END AS spend
             FROM orders GROUP BY customer_id",
        )],
        SEGMENT,
    );
    let (code, _, err) = segvalue(&["run", &j.job(), "--run-date", "2025-12-31"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("view 'feats': feature 'spend' has") && err.contains("null value(s); set an imputation"), "{err}");
    // Nothing was published and no staging is left behind.
    let out = j.out();
    let left: Vec<String> = files_under(&out).iter().map(|p| p.display().to_string()).collect();
    assert!(left.iter().all(|p| !p.ends_with(".parquet") && !p.ends_with("_SUCCESS")), "{left:?}");
}

#[test]
fn missing_feature_column_is_a_bad_job() {
    let j = JobDir::new(&[("feats.sql", "SELECT customer_id, count(*) AS n FROM orders GROUP BY customer_id")], SEGMENT);
    let (code, _, err) = segvalue(&["run", &j.job(), "--run-date", "2025-12-31"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("view 'feats': no column 'spend' (columns: customer_id, n)"), "{err}");
    assert!(!j.out().exists());
}

#[test]
fn missing_source_names_the_source() {
    let j = JobDir::new(&[("v.sql", "SELECT 1 AS x")], "[sources.extra]\nurl = \"does/not/exist/\"\nformat = \"parquet\"\n\n[output]\nroot = \"out\"\n");
    let (code, _, err) = segvalue(&["run", &j.job(), "--run-date", "2025-12-31"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("source 'extra' (file://") && err.contains("does/not/exist/"), "{err}");
}

fn one_source_job(dir: &std::path::Path) -> JobDir {
    JobDir::new(
        &[("v.sql", "SELECT count(*) AS n FROM extra")],
        &format!("[sources.extra]\nurl = \"{}/\"\nformat = \"parquet\"\n\n[output]\nroot = \"out\"\npublish_views = [\"v\"]\n", dir.display()),
    )
}

#[test]
fn a_file_that_is_not_parquet_names_the_source() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("part-0.parquet"), b"this is not parquet").unwrap();
    let j = one_source_job(d.path());
    let err = fails(&["run", &j.job(), "--run-date", "2025-12-31"], 1);
    assert!(err.contains("source 'extra' (file://") && err.contains("Parquet"), "{err}");
    assert!(!j.out().exists());
}

/// A source directory without a file of its format (here only a text file) stops `check` and
/// `run` in the preflight, and the run leaves no output root behind.
#[test]
fn an_empty_source_directory_names_the_source() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("notes.txt"), "not data").unwrap();
    let j = one_source_job(d.path());
    for command in ["check", "run"] {
        let err = fails(&[command, &j.job(), "--run-date", "2025-12-31"], 1);
        let expected = format!("source 'extra' (file://{}/): no .parquet file there exit_code=1", d.path().display());
        assert!(err.ends_with(&expected), "{err}");
    }
    assert!(!j.out().exists());
}

#[test]
fn an_empty_segmentation_view_is_an_error_not_an_empty_table() {
    let j = JobDir::new(
        &[("feats.sql", "SELECT customer_id, CAST(count(*) AS DOUBLE) AS n, sum(amount) AS spend FROM orders WHERE amount < 0 GROUP BY customer_id")],
        SEGMENT,
    );
    let err = fails(&["run", &j.job(), "--run-date", "2025-12-31"], 1);
    assert!(err.contains("view 'feats': no rows"), "{err}");
    assert!(!j.out().join("customer_segments").exists());
}

#[test]
fn k_larger_than_the_rows_names_k() {
    let j = JobDir::new(
        &[("feats.sql", "SELECT customer_id, CAST(count(*) AS DOUBLE) AS n, sum(amount) AS spend FROM orders WHERE customer_id < 'C0000010' GROUP BY customer_id")],
        &SEGMENT.replace("k = 3", "k = 50"),
    );
    let err = fails(&["run", &j.job(), "--run-date", "2025-12-31"], 2);
    assert!(err.contains("k = 50 is more than the") && err.contains("rows to cluster"), "{err}");
    assert!(!j.out().join("customer_features").exists());
}

#[test]
fn malformed_toml_names_the_file_and_line() {
    let j = JobDir::new(&[("v.sql", "SELECT 1 AS x")], "[output]\nroot = \"out\n");
    let err = fails(&["run", &j.job()], 2);
    // The unterminated string's line, counted in the file as written.
    let text = std::fs::read_to_string(j.job()).unwrap();
    let line = text.lines().position(|l| l == "root = \"out").expect("fixture line") + 1;
    assert!(err.contains(&format!("{}:{line}: ", j.job())), "{err}");
}

#[test]
fn a_sql_error_at_run_time_publishes_nothing() {
    let j = JobDir::new(&[("v.sql", "SELECT count(* AS n FROM orders")], "[output]\nroot = \"out\"\npublish_views = [\"v\"]\n");
    let err = fails(&["run", &j.job(), "--run-date", "2025-12-31"], 2);
    assert!(err.contains("v.sql: SQL syntax error"), "{err}");
    assert!(!j.out().exists());
}

#[test]
fn an_unknown_column_at_run_time_names_the_file() {
    let j = JobDir::new(&[("v.sql", "SELECT count(amout) AS n FROM orders")], "[output]\nroot = \"out\"\npublish_views = [\"v\"]\n");
    let err = fails(&["run", &j.job(), "--run-date", "2025-12-31"], 2);
    assert!(err.contains("v.sql:") && err.contains("amout"), "{err}");
    assert!(!j.out().exists());
}

#[test]
fn memory_limit_must_be_a_size() {
    let j = JobDir::new(&[("v.sql", "SELECT 1 AS x")], "[engine]\nmemory_limit = \"lots\"\n\n[output]\nroot = \"out\"\n");
    let line = fails(&["validate", &j.job()], 2);
    assert!(line.contains("engine.memory_limit") && line.contains("'lots' is not a size"), "{line}");
}

#[test]
fn a_job_beyond_its_memory_limit_fails_with_one_line_and_publishes_nothing() {
    // 1 MB cannot hold the default views' aggregations: DataFusion refuses the allocation and
    // the run ends cleanly instead of the process being killed.
    let job = |limit: &str| {
        JobDir::retail(&format!(
            "[engine]\nmemory_limit = \"{limit}\"\n\n[output]\nroot = \"out\"\npublish_views = [\"customer_features\"]\n"
        ))
    };
    let tight = job("1M");
    let line = fails(&["run", &tight.job(), "--run-date", "2025-12-31"], 1);
    assert!(line.contains("Resources exhausted"), "{line}");
    let left: Vec<String> = files_under(&tight.out()).iter().map(|p| p.display().to_string()).collect();
    assert!(left.iter().all(|p| !p.ends_with(".parquet") && !p.ends_with("_SUCCESS")), "{left:?}");
    // The same job with room publishes (the limit is what failed it).
    let roomy = job("512M");
    segvalue_ok(&["run", &roomy.job(), "--run-date", "2025-12-31"]);
    assert!(files_under(&roomy.out()).iter().any(|p| p.ends_with("customer_features/run_date=2025-12-31/part-00000.parquet")));
}
